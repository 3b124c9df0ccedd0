"""site.yml on a fleet: the app through the load balancer, and who may talk to whom.

The database container doubles as the outside client: it is neither a balancer nor a web
host, so what it sees of the web hosts and the balancer is what the internet sees.
"""

import csv
import io
import os
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
_RUNNER = AnsibleRunner(INVENTORY)
# Tests that take a `host` run once, on the balancer; the others use the fixtures below.
testinfra_hosts = _RUNNER.get_hosts("loadbalancers")

NAME = "guestbook.test"
LB_CERT = "/etc/haproxy/tls/%s.pem" % NAME
CLIENT_CERT = "/tmp/balancer.pem"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
GUNICORN_LOG = "/var/log/flaskapp/gunicorn-access.log"
NGINX_LOG = "/var/log/nginx/access.log"
DB_PORT = 5432


def _host(name):
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def lb():
    return _host(_RUNNER.get_hosts("loadbalancers")[0])


@pytest.fixture(scope="module")
def db():
    return _host(_RUNNER.get_hosts("dbservers")[0])


@pytest.fixture(scope="module")
def webs():
    return [_host(name) for name in _RUNNER.get_hosts("webservers")]


def address(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def client(db, lb):
    """The outside client, trusting the balancer's certificate only."""
    pem = lb.file(LB_CERT).content_string
    db.run_expect([0], "cat > %s <<'EOF'\n%sEOF" % (CLIENT_CERT, pem))
    return db


def https(client, lb, args):
    """curl to the site through the balancer, by its name."""
    return client.run(
        "curl -sS --max-time 10 --resolve {0}:443:{1} --cacert {2} {3}".format(
            NAME, address(lb), CLIENT_CERT, args))


def tcp_open(source, target_address, port):
    # bash's /dev/tcp: a connect without extra tools; ufw drops, so a timeout bounds it.
    return source.run(
        "timeout 4 bash -c '</dev/tcp/%s/%d'" % (target_address, port)).rc == 0


def servers_state(lb):
    """HAProxy's view of the web hosts, from its runtime API: {server name: status}."""
    out = lb.check_output(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
        "s.sendall(b'show stat\\n'); print(s.makefile().read())\"" % ADMIN_SOCKET)
    rows = csv.DictReader(io.StringIO(out.lstrip("# ")))
    return {row["svname"]: row["status"] for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] == "flaskapp"}


def wait_for(check, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def test_haproxy_runs_with_a_valid_configuration(host):
    assert host.service("haproxy").is_running
    assert host.service("haproxy").is_enabled
    host.run_expect([0], "haproxy -c -q -f /etc/haproxy/haproxy.cfg")


def test_balancer_checks_both_web_hosts_and_finds_them_up(host, webs):
    states = servers_state(host)
    assert sorted(states) == sorted(web.backend.get_hostname() for web in webs)
    assert set(states.values()) == {"UP"}


def test_http_redirects_permanently_to_https(client, lb):
    out = client.check_output(
        "curl -s -o /dev/null -w '%%{http_code} %%{redirect_url}' http://%s/entries?page=2",
        address(lb))
    assert out == "301 https://%s/entries?page=2" % NAME


def test_tls_follows_the_intermediate_profile(client, lb):
    assert https(client, lb, "-o /dev/null --tls-max 1.1 https://%s/" % NAME).rc != 0
    out = https(client, lb, "-o /dev/null -w '%%{http_version}' --tlsv1.2 --http2 https://%s/healthz"
                % NAME)
    assert out.rc == 0 and out.stdout == "2", out.stderr


def test_an_entry_posted_through_the_balancer_comes_back_from_every_web_host(client, lb, webs):
    message = "fleet-%s" % uuid.uuid4().hex[:12]
    post = https(client, lb, "-o /dev/null -w '%%{http_code}' --data-urlencode author=molecule "
                             "--data-urlencode message=%s https://%s/" % (message, NAME))
    assert post.stdout == "302", post.stderr
    # Round robin: consecutive requests alternate between the web hosts.
    for _ in range(4):
        page = https(client, lb, "https://%s/" % NAME)
        assert page.rc == 0 and message in page.stdout
    assert "stored in postgresql." in page.stdout


def test_both_web_hosts_serve_and_see_the_client_address(client, lb, webs):
    probe = uuid.uuid4().hex
    for _ in range(6):
        # A forged X-Forwarded-For: the balancer drops it, so the web hosts see the client.
        out = https(client, lb, "-o /dev/null -w '%%{http_code}' -H 'X-Forwarded-For: 203.0.113.9' "
                                "https://%s/healthz?probe=%s" % (NAME, probe))
        assert out.stdout == "200", out.stderr
    client_address = address(client)
    for web in webs:
        assert "/healthz?probe=%s" % probe in web.file(GUNICORN_LOG).content_string
        lines = [line for line in web.file(NGINX_LOG).content_string.splitlines() if probe in line]
        assert lines and all(line.startswith(client_address + " ") for line in lines), lines


def test_web_hosts_believe_forwarded_for_from_the_balancer_only(webs):
    web = webs[0]
    probe = uuid.uuid4().hex
    web.check_output(
        "curl -sk -o /dev/null --resolve %s:443:127.0.0.1 -H 'X-Forwarded-For: 198.51.100.7' "
        "https://%s/healthz?probe=%s", NAME, NAME, probe)
    lines = [line for line in web.file(NGINX_LOG).content_string.splitlines() if probe in line]
    assert lines and lines[0].startswith("127.0.0.1 "), lines


def test_web_hosts_admit_https_from_the_balancer_only(client, lb, webs):
    for web in webs:
        web_address = address(web)
        assert tcp_open(lb, web_address, 443)
        assert not tcp_open(client, web_address, 443)
        assert not tcp_open(client, web_address, 80)


def test_database_admits_the_web_hosts_only(db, lb, webs):
    db_address = address(db)
    for web in webs:
        assert tcp_open(web, db_address, DB_PORT)
    assert not tcp_open(lb, db_address, DB_PORT)
    # It listens on loopback and its private address, not on every interface.
    listening = db.check_output("ss -Hltn 'sport = :%d'" % DB_PORT)
    assert "%s:%d" % (db_address, DB_PORT) in listening
    assert "0.0.0.0:%d" % DB_PORT not in listening and "*:%d" % DB_PORT not in listening


def test_the_web_hosts_connect_to_the_database_host(db, webs):
    for web in webs:
        env = web.file("/srv/flaskapp/shared/.env").content_string
        assert "@%s:%d/" % (address(db), DB_PORT) in env
    peers = db.check_output(
        "runuser -u postgres -- psql -Atc \"SELECT DISTINCT client_addr FROM pg_stat_ssl "
        "JOIN pg_stat_activity USING (pid) WHERE usename = 'flaskapp' AND ssl\"")
    assert set(peers.split()) <= {address(web) for web in webs}
    assert peers


def test_public_ports_are_open_on_the_balancer_only(host, db, webs):
    def open_ports(h):
        status = h.check_output("ufw status")
        assert "Status: active" in status
        return sorted({line.split()[0] for line in status.splitlines()
                       if " ALLOW " in line and "Anywhere" in line.split("ALLOW", 1)[1]
                       and "(v6)" not in line})
    assert open_ports(host) == ["443/tcp", "80/tcp"]
    assert open_ports(db) == []
    for web in webs:
        assert open_ports(web) == []


def test_a_stopped_web_host_is_taken_out_and_the_site_keeps_answering(host, client, webs):
    web = webs[0]
    name = web.backend.get_hostname()
    web.run_expect([0], "systemctl stop flaskapp.socket flaskapp.service")
    try:
        codes = []
        for _ in range(20):
            codes.append(https(client, host, "-o /dev/null -w '%%{http_code}' https://%s/healthz"
                               % NAME).stdout)
            time.sleep(0.2)
        assert wait_for(lambda: servers_state(host)[name] == "DOWN"), servers_state(host)
        for _ in range(6):
            codes.append(https(client, host, "-o /dev/null -w '%%{http_code}' https://%s/healthz"
                               % NAME).stdout)
        assert set(codes) == {"200"}, codes
    finally:
        web.run_expect([0], "systemctl start flaskapp.socket")
    assert wait_for(lambda: servers_state(host)[name] == "UP"), servers_state(host)
