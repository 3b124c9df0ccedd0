"""Steady HTTP(S) load, bounded in time and count, for tests and benchmarks.

    with Load("172.17.0.5", host="guestbook.test") as load:
        ...                      # deploy something
    print(load.report("update"))  # requests, failed, statuses, p50/p99/max latency

Each thread sends one request at a time on a new connection and paces itself so that all
threads together send about `rate` requests per second. Anything but the expected status
(200) counts as failed, a refused or reset connection included. Only point it at loopback or
your own test containers.
"""
import http.client
import json
import ssl
import threading
import time


class Load:
    def __init__(self, address, host, path="/", port=443, tls=True, threads=4, rate=20.0,
                 max_seconds=1200, max_requests=30000, marker=None):
        self.address, self.host, self.path, self.port, self.tls = address, host, path, port, tls
        self.threads, self.period = threads, threads / rate
        self.max_seconds, self.max_requests = max_seconds, max_requests
        self.marker = marker
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.statuses, self.latencies, self.pages = {}, [], []
        self.context = ssl.create_default_context()
        self.context.check_hostname = False
        self.context.verify_mode = ssl.CERT_NONE

    def _connection(self):
        if self.tls:
            return http.client.HTTPSConnection(self.address, self.port, context=self.context, timeout=15)
        return http.client.HTTPConnection(self.address, self.port, timeout=15)

    def _one(self):
        start = time.monotonic()
        try:
            conn = self._connection()
            conn.request("GET", self.path, headers={"Host": self.host})
            response = conn.getresponse()
            body = response.read().decode("utf-8", "replace")
            status = str(response.status)
            conn.close()
        except Exception as e:  # a refused or reset connection is a failed request too
            status, body = type(e).__name__, ""
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.latencies.append(time.monotonic() - start)
            if status == "200" and self.marker is not None:
                self.pages.append(self.marker in body)

    def _run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            with self.lock:
                if sum(self.statuses.values()) >= self.max_requests:
                    return
            started = time.monotonic()
            self._one()
            time.sleep(max(0.0, self.period - (time.monotonic() - started)))

    def __enter__(self):
        self.deadline = time.monotonic() + self.max_seconds
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for worker in self.workers:
            worker.start()
        time.sleep(2)
        return self

    def __exit__(self, *exc):
        time.sleep(2)
        self.stop_event.set()
        for worker in self.workers:
            worker.join()

    @property
    def total(self):
        return sum(self.statuses.values())

    @property
    def failed(self):
        return self.total - self.statuses.get("200", 0)

    def percentile(self, fraction):
        latencies = sorted(self.latencies)
        if not latencies:
            return 0.0
        return latencies[min(len(latencies) - 1, int(len(latencies) * fraction))]

    def report(self, what):
        return "%s: %d requests, %d failed %s, p50 %.0f ms, p99 %.0f ms, max %.0f ms" % (
            what, self.total, self.failed, json.dumps(self.statuses, sort_keys=True),
            self.percentile(0.50) * 1000, self.percentile(0.99) * 1000,
            max(self.latencies, default=0.0) * 1000)
