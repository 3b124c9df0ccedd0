"""Redis on a host of its own and an RQ worker of the sample app, deployed by site.yml.

The web host (webservers and dbservers) runs the app's worker branch (tests/sample-repo.sh):
POST /jobs enqueues a job that waits half a second and signs the guestbook as "worker-1"
with the token it was given; GET /jobs/<id> shows the job. `rq worker guestbook` runs as two
instances of app_workers. The Redis host (redisservers) listens on its private address with a
generated password; its firewall admits the web host only. The tests run in file order; the
last updates to worker-2, whose job signs as "worker-2", under load while jobs are enqueued.
"""
import http.client
import json
import os
import socket
import ssl
import sys
import threading
import time
import urllib.parse

import pytest

NAME = "worker.test"
sys.path.insert(0, os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "tests"))
from loadgen import Load  # noqa: E402
from molecule_helpers import DISTRO, ROOT, container_ip, playbook, service  # noqa: E402

WEB = "flaskstack-worker-web-%s" % DISTRO
REDIS = "flaskstack-worker-redis-%s" % DISTRO
WORKERS = ["flaskapp-worker-rq@1.service", "flaskapp-worker-rq@2.service"]
PASSWORD_FILE = "/etc/redis/flaskstack-password"

testinfra_hosts = ["docker://" + WEB]


@pytest.fixture(scope="module")
def redis_host():
    import testinfra
    return testinfra.get_host("docker://" + REDIS)


def request(method, path, body=None):
    """METHOD PATH on the web host's nginx, from the controller; (status, parsed JSON or None)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection(container_ip(WEB), 443, context=context, timeout=15)
    headers = {"Host": NAME}
    data = None
    if body is not None:
        data = urllib.parse.urlencode(body)
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    conn.request(method, path, body=data, headers=headers)
    response = conn.getresponse()
    text = response.read().decode()
    conn.close()
    try:
        return response.status, json.loads(text)
    except ValueError:
        return response.status, None


def enqueue(token):
    status, answer = request("POST", "/jobs", {"token": token})
    assert status == 202, (status, answer)
    return answer["id"]


def authors(host, tokens):
    """The author of the entry of each token that has one (the code that ran its job)."""
    rows = host.check_output(
        "runuser -u postgres -- psql -d flaskapp -AtF ' ' -c \"SELECT message, author FROM entries "
        "WHERE message LIKE 'token-%%'\"")
    found = dict(line.split(" ", 1) for line in rows.splitlines() if line)
    return {token: found[token] for token in tokens if token in found}


def wait_for(host, tokens, seconds=60):
    deadline = time.monotonic() + seconds
    while True:
        done = authors(host, tokens)
        if len(done) == len(tokens) or time.monotonic() > deadline:
            return done
        time.sleep(1)


def raw_ping(host, address, auth=False):
    """Sends PING to Redis at ADDRESS from HOST (AUTH first, with the app's REDIS_URL password,
    if asked); returns what Redis answered, or the error."""
    script = (
        "import os, socket, urllib.parse\n"
        "s = socket.create_connection((%r, 6379), timeout=5)\n"
        "if %r:\n"
        "    pw = urllib.parse.unquote(urllib.parse.urlsplit(os.environ['REDIS_URL']).password)\n"
        "    s.sendall(b'AUTH ' + pw.encode() + b'\\r\\n'); s.recv(100)\n"
        "s.sendall(b'PING\\r\\n'); print(s.recv(100).decode().strip())\n") % (address, auth)
    # The app's environment, loaded by the shell from the .env file (not on a command line).
    run = host.run("set -a; . %s/shared/.env; set +a; python3 -c %s", ROOT, script)
    return (run.stdout + run.stderr).strip()


def test_redis_runs_with_the_settings(redis_host):
    assert redis_host.service("redis-server.service").is_running
    assert redis_host.service("redis-server.service").is_enabled
    config = redis_host.file("/etc/redis/redis.conf")
    assert config.mode == 0o640 and config.user == "redis"
    assert "maxmemory 64mb" in config.content_string
    assert "maxmemory-policy noeviction" in config.content_string
    assert "appendonly yes" in config.content_string
    password = redis_host.file(PASSWORD_FILE)
    assert password.mode == 0o640 and password.user == "root" and password.group == "redis"
    assert len(password.content_string) == 48


def test_redis_requires_the_password(host, redis_host):
    redis = container_ip(REDIS)
    assert "NOAUTH" in redis_host.run("redis-cli -h 127.0.0.1 ping").stdout
    assert raw_ping(host, redis).startswith("-NOAUTH")
    assert raw_ping(host, redis, auth=True) == "+PONG"
    # The password the app got is the one generated on the Redis host.
    url = host.check_output("set -a; . %s/shared/.env; printf %%s \"$REDIS_URL\"", ROOT)
    assert url == "redis://:%s@%s:6379/0" % (redis_host.file(PASSWORD_FILE).content_string, redis)


def test_redis_is_not_reachable_from_another_host():
    """The controller's address on the scenario's network is not a web host: the firewall
    drops its connections, while the web host (above) gets answers."""
    with pytest.raises(OSError):
        socket.create_connection((container_ip(REDIS), 6379), timeout=5).close()


def test_workers_run(host):
    for unit in WORKERS:
        assert host.service(unit).is_running and host.service(unit).is_enabled
        assert service(host, unit, "User") == "flaskapp"
        assert service(host, unit, "TimeoutStopUSec") == "30s"


def test_a_job_enqueued_by_a_request_runs(host):
    job = enqueue("token-first")
    assert wait_for(host, ["token-first"]) == {"token-first": "worker-1"}
    status, answer = request("GET", "/jobs/" + job)
    assert status == 200
    assert answer["status"] == "finished" and answer["result"] == "worker-1"


def test_update_under_load_loses_no_request_and_no_job(host):
    before = ["token-before-%d" % i for i in range(10)]
    during = ["token-during-%d" % i for i in range(10)]
    failed = []

    def enqueue_during():
        for token in during:
            try:
                enqueue(token)
            except Exception as e:  # a failed enqueue is a failed request
                failed.append((token, repr(e)))
            time.sleep(1.5)

    started = {unit: int(service(host, unit, "ActiveEnterTimestampMonotonic")) for unit in WORKERS}
    for token in before:
        enqueue(token)
    with Load(container_ip(WEB), NAME, max_seconds=1200) as load:
        enqueuer = threading.Thread(target=enqueue_during)
        enqueuer.start()
        run = playbook("update.yml", "-e", "app_version=worker-2")
        enqueuer.join()
    line = load.report("update.yml worker -> worker-2 (2 RQ workers, 20 jobs)")
    print("\nFIGURE " + line)
    assert run.returncode == 0, run.output[-3000:]
    assert load.failed == 0, line
    assert failed == []
    done = wait_for(host, before + during)
    assert sorted(done) == sorted(before + during)
    after = enqueue("token-after")
    assert wait_for(host, ["token-after"]) == {"token-after": "worker-2"}
    assert request("GET", "/jobs/" + after)[1]["result"] == "worker-2"
    # Each instance was restarted onto the new release, and is running.
    for unit in WORKERS:
        assert host.service(unit).is_running
        assert int(service(host, unit, "ActiveEnterTimestampMonotonic")) > started[unit]
