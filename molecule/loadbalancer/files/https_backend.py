#!/usr/bin/env python3
"""Stand-in web host for the load balancer tests: HTTPS on ADDRESS:PORT with CERT and KEY.

    https-backend NAME ADDRESS PORT CERT KEY

GET /          its own NAME, so a test sees which web host answered;
GET /healthz   200, or 503 while /run/https-backend-NAME.unhealthy exists (the app is down
               behind a web server that still accepts connections);
GET /headers   JSON: NAME, the TLS server name (SNI) the client asked for, the request headers.
GET or POST /bad-gateway
               502 (an app that died in the middle of the request), after appending
               "METHOD PATH" to /run/https-backend-NAME.requests, so a test counts how often
               the balancer sent the request.
"""
import http.server
import json
import os
import ssl
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keepalive, as HAProxy reuses its connections

    def setup(self):
        # The TLS handshake runs in the request's thread, not in the accepting one.
        self.request.do_handshake()
        super().setup()

    def do_GET(self):
        name = self.server.backend_name
        if self.path.split("?", 1)[0] == "/bad-gateway":
            with open("/run/https-backend-%s.requests" % name, "a") as log:
                log.write("%s %s\n" % (self.command, self.path))
            status, body = 502, "bad gateway\n"
        elif self.path == "/healthz":
            unhealthy = os.path.exists("/run/https-backend-%s.unhealthy" % name)
            status, body = (503, "unhealthy\n") if unhealthy else (200, "ok\n")
        elif self.path.split("?", 1)[0] == "/headers":
            status = 200
            body = json.dumps({"backend": name, "sni": getattr(self.request, "sni", None),
                               "headers": dict(self.headers)})
        elif self.path.split("?", 1)[0] == "/":
            status, body = 200, name + "\n"
        else:
            status, body = 404, "not found\n"
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain" if not body.startswith("{") else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_HEAD = do_GET

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.do_GET()

    def log_message(self, *args):
        # HAProxy checks every two seconds; the journal needs none of it.
        pass


def remember_server_name(sock, server_name, _context):
    sock.sni = server_name


def main():
    name, address, port, cert, key = sys.argv[1:6]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = remember_server_name
    server = http.server.ThreadingHTTPServer((address, int(port)), Handler)
    server.daemon_threads = True
    server.backend_name = name
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=False)
    server.serve_forever()


if __name__ == "__main__":
    main()
