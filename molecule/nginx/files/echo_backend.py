#!/usr/bin/env python3
"""Stand-in app server for the nginx tests: answers every request with its headers as JSON.

A request for /slow/<seconds> is answered that many seconds late (a slow report, say).

Takes its listening socket from systemd (socket activation, file descriptor 3), like gunicorn
does in the gunicorn role, so nginx meets the same unix socket owner, group and mode.
"""
import http.server
import json
import socket
import socketserver
import time


class EchoHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keepalive, as nginx's upstream uses it

    def do_GET(self):
        length = int(self.headers.get("Content-Length") or 0)
        received = len(self.rfile.read(length)) if length else 0
        if self.path.startswith("/slow/"):
            time.sleep(float(self.path.split("/")[2]))
        body = json.dumps(
            {"backend": "echo", "method": self.command, "path": self.path, "headers": dict(self.headers),
             "body_length": received}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_POST = do_HEAD = do_GET

    def address_string(self):
        return "unix"


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


if __name__ == "__main__":
    server = Server("", EchoHandler, bind_and_activate=False)
    server.socket = socket.socket(fileno=3)
    server.serve_forever()
