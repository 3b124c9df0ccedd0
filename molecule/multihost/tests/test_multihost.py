"""site.yml on a fleet: the app through the load balancer, and who may talk to whom; then
update.yml rolling a release over the web hosts under steady load through the balancer.

The database container doubles as the outside client: it is neither a balancer nor a web
host, so what it sees of the web hosts and the balancer is what the internet sees. The tests
run in file order: the rolling updates come last.
"""

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
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
# The balancer's trust anchors (one file per web host), and the certificate each web host's
# nginx serves.
BACKEND_CERTS = "/etc/haproxy/backends"
WEB_CERT = "/etc/nginx/tls/%s.crt" % NAME
GUNICORN_LOG = "/var/log/flaskapp/gunicorn-access.log"
NGINX_LOG = "/var/log/nginx/access.log"
DB_PORT = 5432
ROOT = "/srv/flaskapp"
# HAProxy's backend, named in group_vars/loadbalancers (molecule.yml).
BACKEND = "guestbook"
V2_REVISION = "5b1e2c3d4f60"
FOOTER = '<footer class="version">Guestbook 2.0</footer>'
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd())
EPHEMERAL = os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]
sys.path.insert(0, os.path.join(PROJECT, "tests"))
from loadgen import Load  # noqa: E402


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


def servers_stat(lb):
    """HAProxy's view of the web hosts, from its runtime API: {server name: show stat row}."""
    out = lb.check_output(
        "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
        "s.sendall(b'show stat\\n'); print(s.makefile().read())\"" % ADMIN_SOCKET)
    rows = csv.DictReader(io.StringIO(out.lstrip("# ")))
    return {row["svname"]: row for row in rows
            if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] == BACKEND}


def servers_state(lb):
    """{server name: status}, e.g. UP or DOWN."""
    return {name: row["status"] for name, row in servers_stat(lb).items()}


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


def test_balancer_checks_the_web_hosts_own_certificates(host, webs):
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert " ssl verify required verifyhost %s " % NAME in config
    assert "verify none" not in config
    # Each web host's trust anchor is its own certificate, the one its nginx serves, read
    # from it.
    for web in webs:
        name = web.backend.get_hostname()
        trusted = "%s/%s.pem" % (BACKEND_CERTS, name)
        assert re.search(r"\n    server %s \S+:443 ca-file %s\n" % (re.escape(name), re.escape(trusted)),
                         config), config
        assert host.file(trusted).content_string.strip() == web.file(WEB_CERT).content_string.strip()
    # Every health check passed over a verified connection: a failed verification fails the
    # TLS handshake, and the check with it (L6), before any HTTP status (L7OK).
    rows = servers_stat(host)
    assert sorted(rows) == sorted(web.backend.get_hostname() for web in webs)
    assert {row["status"] for row in rows.values()} == {"UP"}, rows
    assert {row["check_status"] for row in rows.values()} == {"L7OK"}, rows


def test_a_web_host_with_another_certificate_is_taken_out(host, webs):
    """A host that answers for a web host with a certificate of its own (same name, another
    key: an impostor) fails the balancer's check; the real certificate brings it back."""
    web = webs[1]
    name = web.backend.get_hostname()
    key = WEB_CERT[:-len(".crt")] + ".key"
    web.run_expect([0], "cp -p %s /root/real.crt && cp -p %s /root/real.key", WEB_CERT, key)
    try:
        web.run_expect(
            [0], "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
                 "-days 1 -subj /CN=%s -addext subjectAltName=DNS:%s -keyout %s -out %s "
                 "&& systemctl restart nginx", NAME, NAME, key, WEB_CERT)
        # Down for its certificate: the TLS handshake fails (L6), not the connection (L4,
        # which the moment of nginx's restart may cost one check).
        assert wait_for(lambda: servers_stat(host)[name]["status"] == "DOWN"
                        and servers_stat(host)[name]["check_status"].startswith("L6")), \
            servers_stat(host)[name]
        # Its nginx still answers: the balancer refused its certificate, not a dead host.
        assert web.check_output(
            "curl -sk -o /dev/null -w '%%{http_code}' --resolve %s:443:127.0.0.1 https://%s/healthz",
            NAME, NAME) == "200"
        assert servers_state(host)[webs[0].backend.get_hostname()] == "UP"
    finally:
        web.run_expect([0], "cp -p /root/real.crt %s && cp -p /root/real.key %s "
                            "&& systemctl restart nginx", WEB_CERT, key)
    assert wait_for(lambda: servers_state(host)[name] == "UP"), servers_stat(host)[name]


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
        url = next(line for line in env.splitlines() if line.startswith("DATABASE_URL="))
        # Only the part after the password, which must not reach the test's output.
        assert url.split("@", 1)[1].startswith("%s:%d/" % (address(db), DB_PORT)), url.split("@", 1)[1]
    peers = db.check_output(
        "runuser -u postgres -- psql -Atc \"SELECT DISTINCT client_addr FROM pg_stat_ssl "
        "JOIN pg_stat_activity USING (pid) WHERE usename = 'flaskapp' AND ssl\"")
    assert set(peers.split()) <= {address(web) for web in webs}
    assert peers


# The app's connection as the app makes it, from a web host: its DATABASE_URL (read there, so
# the password never reaches the test's output) with some query parameters replaced, through
# the release's psycopg2. Prints the connection's TLS state, or the server's refusal.
PG_PROBE = r"""
import sys, urllib.parse, psycopg2
url = next(l.split("=", 1)[1].strip("'") for l in open("/srv/flaskapp/shared/.env").read().splitlines()
           if l.startswith("DATABASE_URL="))
parts = urllib.parse.urlsplit(url)
query = dict(urllib.parse.parse_qsl(parts.query))
query.update(dict(arg.split("=", 1) for arg in sys.argv[2:] if arg))
netloc = parts.netloc if sys.argv[1] == "-" else parts.netloc.rsplit("@", 1)[0] + "@" + sys.argv[1]
try:
    conn = psycopg2.connect(urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=urllib.parse.urlencode(query))))
except psycopg2.OperationalError as error:
    print("refused:", str(error).replace(parts.password or "\0", "***"))
else:
    cur = conn.cursor()
    cur.execute("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
    print("connected:", *cur.fetchone())
"""


def pg_probe(web, host="-", **query):
    web.run_expect([0], "cat > /root/pg_probe.py <<'EOF'\n%sEOF" % PG_PROBE)
    return web.check_output("%s/current/venv/bin/python /root/pg_probe.py %s %s", ROOT, host,
                            " ".join("%s=%s" % item for item in query.items()))


def test_the_app_verifies_the_database_hosts_certificate(db, webs):
    db_address = address(db)
    server_cert = db.file("/etc/postgresql/tls/server.crt").content_string
    # Made for the address the web hosts connect to.
    assert "IP Address:%s" % db_address in db.check_output(
        "openssl x509 -noout -ext subjectAltName -in /etc/postgresql/tls/server.crt")
    for web in webs:
        env = web.file(ROOT + "/shared/.env").content_string
        # Only the part after the password, which must not reach the test's output.
        tail = next(line for line in env.splitlines() if line.startswith("DATABASE_URL=")).split("@", 1)[1]
        assert tail.rstrip("'").endswith("?sslmode=verify-full&sslrootcert=%s/shared/database-ca.crt" % ROOT), tail
        assert web.file(ROOT + "/shared/database-ca.crt").content_string.strip() == server_cert.strip()
        connected = pg_probe(web)
        assert connected.startswith("connected: True TLSv1."), connected
        # Verification is on: the same certificate does not name the database host's container
        # name, which resolves to the same server.
        refused = pg_probe(web, db.backend.get_hostname() + ":%d" % DB_PORT)
        assert refused.startswith("refused:") and "does not match host name" in refused, refused


def test_the_database_refuses_unencrypted_connections_from_the_web_hosts(webs):
    for web in webs:
        out = pg_probe(web, sslmode="disable")
        assert out.startswith("refused:") and "no pg_hba.conf entry" in out and "no encryption" in out, out


def test_the_apps_own_connections_are_encrypted(client, lb, db):
    # Pages that read the database, so each web host's app holds a connection.
    for _ in range(4):
        assert https(client, lb, "-o /dev/null -w '%%{http_code}' https://%s/" % NAME).stdout == "200"
    rows = db.check_output(
        "runuser -u postgres -- psql -Atc \"SELECT DISTINCT ssl FROM pg_stat_ssl JOIN pg_stat_activity "
        "USING (pid) WHERE usename = 'flaskapp' AND client_addr IS NOT NULL\"")
    assert rows.split() == ["t"], rows


def test_public_ports_are_open_on_the_balancer_only(host, db, webs):
    """SSH aside: every host opens it (to the controller's bursts of logins without ufw's
    limit in this scenario, base_firewall_ssh_rule: allow)."""
    def open_ports(h):
        status = h.check_output("ufw status")
        assert "Status: active" in status
        return sorted({line.split()[0] for line in status.splitlines()
                       if " ALLOW " in line and "Anywhere" in line.split("ALLOW", 1)[1]
                       and "(v6)" not in line and not line.startswith("22/tcp ")})
    assert open_ports(host) == ["443/tcp", "80/tcp"]
    assert open_ports(db) == []
    for web in webs:
        assert open_ports(web) == []


def test_the_web_hosts_share_one_secret_key(webs):
    keys = {web.check_output("sha256sum %s/shared/secret_key", ROOT).split()[0] for web in webs}
    assert len(keys) == 1


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


# --- Rolling updates -------------------------------------------------------------------


def steady_load(lb_address):
    """Steady GET / through the balancer from the controller (tests/loadgen.py)."""
    return Load(lb_address, NAME, marker=FOOTER, max_seconds=3600, max_requests=80000)


def figure(line):
    print("\nFIGURE " + line)
    with open(os.path.join(EPHEMERAL, "figures.txt"), "a") as figures:
        figures.write(line + "\n")


def playbook(name, *extra):
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(PROJECT, ".cache", "collections")
    cfg = os.path.join(EPHEMERAL, "ansible.cfg")
    if os.path.exists(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    cmd = ["ansible-playbook", "-i", INVENTORY, os.path.join(PROJECT, "playbooks", name)] + list(extra)
    started = time.monotonic()
    run = subprocess.run(cmd, capture_output=True, text=True, env=env)
    run.output = run.stdout + run.stderr
    run.seconds = time.monotonic() - started
    return run


def live_release(web):
    return os.path.basename(web.file(ROOT + "/current").linked_to)


STAT_SCRIPT = (
    "import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
    "s.sendall(b'show stat\\n'); print(s.makefile().read())" % ADMIN_SOCKET)


class Rotation:
    """Watches the balancer's view of the web hosts once a second (docker exec, bounded in
    time) and adds up how long each was out of rotation (not UP): {server: seconds}."""

    def __init__(self, lb_name, max_seconds=1200):
        self.lb_name, self.deadline = lb_name, time.monotonic() + max_seconds
        self.stop_event = threading.Event()
        self.out, self.since, self.both_out = {}, {}, False

    def _poll(self):
        run = subprocess.run(["docker", "exec", self.lb_name, "python3", "-c", STAT_SCRIPT],
                             capture_output=True, text=True)
        rows = csv.DictReader(io.StringIO(run.stdout.lstrip("# ")))
        return {row["svname"]: row["status"] for row in rows
                if row["svname"] not in ("FRONTEND", "BACKEND") and row["pxname"] == BACKEND}

    def _run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline:
            now, states = time.monotonic(), self._poll()
            for server, status in states.items():
                if not status.startswith("UP") and server not in self.since:
                    self.since[server] = now
                elif status.startswith("UP") and server in self.since:
                    self.out[server] = self.out.get(server, 0) + now - self.since.pop(server)
            if states and not any(status.startswith("UP") for status in states.values()):
                self.both_out = True
            self.stop_event.wait(1)

    def __enter__(self):
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_event.set()
        self.thread.join()


def test_rolling_update_under_load_loses_no_request(host, webs, db):
    releases_before = {web.backend.get_hostname(): live_release(web) for web in webs}
    env_before = [web.file(ROOT + "/shared/.env").sha256sum for web in webs]
    with Rotation(host.backend.get_hostname()) as rotation, steady_load(address(host)) as load:
        run = playbook("update.yml", "-e", "app_version=v2.0")
    spent = rotation.out
    figure("rolling update.yml v1.0 -> v2.0 over %d web hosts: %d requests, %d failed %s, "
           "%.0f s in all, out of the balancer %s" % (
               len(webs), load.total, load.failed, json.dumps(load.statuses, sort_keys=True),
               run.seconds, json.dumps({k: round(v, 1) for k, v in spent.items()}, sort_keys=True)))
    assert run.returncode == 0, run.output[-3000:]
    assert load.failed == 0, load.statuses
    assert load.total >= 200, load.statuses
    assert load.pages[0] is False and load.pages[-1] is True
    # One web host at a time: each left the balancer, never both at the same time.
    assert sorted(spent) == sorted(releases_before), spent
    assert not rotation.both_out
    for web in webs:
        assert live_release(web) != releases_before[web.backend.get_hostname()]
    assert set(servers_state(host).values()) == {"UP"}
    # update.yml derives the same settings as site.yml: the app's environment (its database
    # address included) is unchanged.
    assert [web.file(ROOT + "/shared/.env").sha256sum for web in webs] == env_before
    # The migration ran once, on the first web host, after a dump of the database there.
    first, second = webs
    assert first.check_output("ls %s/backups", ROOT).strip()
    assert not second.check_output("ls %s/backups", ROOT).strip()
    assert db.check_output("runuser -u postgres -- psql -d flaskapp -Atc "
                           "'SELECT version_num FROM alembic_version'") == V2_REVISION


def test_a_release_failing_its_probe_stops_the_roll_on_the_first_host(host, webs):
    releases_before = {web.backend.get_hostname(): live_release(web) for web in webs}
    with steady_load(address(host)) as load:
        run = playbook("update.yml", "-e", "app_version=broken-probe")
    figure("rolling update.yml to broken-probe: %d requests, %d failed %s, %.0f s" % (
        load.total, load.failed, json.dumps(load.statuses, sort_keys=True), run.seconds))
    assert run.returncode != 0
    assert "failed its health probe" in run.output, run.output[-3000:]
    assert load.failed == 0, load.statuses
    assert load.pages and all(load.pages), "a request was not answered by v2.0"
    # The second web host was never touched; both serve v2.0 and the balancer uses both.
    first, second = webs
    assert "Take the web server out of the load balancers" in run.output
    update_play = run.output.split("PLAY [Update the app]", 1)[1].split("PLAY RECAP", 1)[0]
    assert first.backend.get_hostname() in update_play
    assert second.backend.get_hostname() not in update_play
    for web in webs:
        assert live_release(web) == releases_before[web.backend.get_hostname()]
        assert not web.file(ROOT + "/.deploy-lock").exists
    assert set(servers_state(host).values()) == {"UP"}


def test_rollback_goes_back_one_web_host_at_a_time_under_load(host, webs):
    releases_before = {web.backend.get_hostname(): live_release(web) for web in webs}
    with Rotation(host.backend.get_hostname()) as rotation, steady_load(address(host)) as load:
        run = playbook("rollback.yml")
    spent = rotation.out
    figure("rolling rollback.yml v2.0 -> v1.0: %d requests, %d failed %s, %.0f s, "
           "out of the balancer %s" % (
               load.total, load.failed, json.dumps(load.statuses, sort_keys=True), run.seconds,
               json.dumps({k: round(v, 1) for k, v in spent.items()}, sort_keys=True)))
    assert run.returncode == 0, run.output[-3000:]
    assert load.failed == 0, load.statuses
    assert load.pages and load.pages[-1] is False, "v1.0 is not served after the rollback"
    assert sorted(spent) == sorted(releases_before), spent
    assert not rotation.both_out
    for web in webs:
        assert live_release(web) != releases_before[web.backend.get_hostname()]
        assert not web.file(ROOT + "/.deploy-lock").exists
    assert set(servers_state(host).values()) == {"UP"}


# --- Declarative firewall (last: the fleet loses a web host) -----------------------------


def marked_rules(host):
    """ufw's rules as `ufw show added` lists them."""
    return host.check_output("ufw show added")


def container_ip(name):
    return subprocess.run(["docker", "inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                           name], check=True, capture_output=True, text=True).stdout.strip()


def test_a_retired_web_hosts_firewall_rules_go_and_the_operators_stay(db, webs, tmp_path):
    """site.yml with web2 gone from the inventory: the database host's firewall no longer
    admits it, still admits web1, and keeps the rules the operator added by hand."""
    import yaml

    web1, web2 = webs
    db_address, web1_address, web2_address = address(db), address(web1), address(web2)
    db.run_expect([0], "ufw allow from 192.0.2.7 to any port %d proto tcp comment 'operator: vpn'" % DB_PORT)
    db.run_expect([0], "ufw allow from 192.0.2.8 to any port 9100 proto tcp")
    # The scenario's inventory without web2 (its group_vars and host_vars stay next to it).
    source = os.path.dirname(INVENTORY) if os.path.isfile(INVENTORY) else INVENTORY
    inventory = tmp_path / "inventory"
    subprocess.run(["cp", "-a", source, str(inventory)], check=True)
    path = inventory / "ansible_inventory.yml"
    data = yaml.safe_load(path.read_text())
    retired = web2.backend.get_hostname()
    for group in data.values():
        (group.get("hosts") or {}).pop(retired, None)
    # The addresses site.yml would otherwise gather, so that it can run on the database host
    # alone (--limit).
    for name, hostvars in data["all"]["hosts"].items():
        hostvars["flaskstack_private_address"] = container_ip(name)
    path.write_text(yaml.safe_dump(data))
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = os.path.join(PROJECT, ".cache", "collections")
    cfg = os.path.join(EPHEMERAL, "ansible.cfg")
    if os.path.exists(cfg):
        env["ANSIBLE_CONFIG"] = cfg
    started = time.monotonic()
    run = subprocess.run(["ansible-playbook", "-i", str(inventory), os.path.join(PROJECT, "playbooks", "site.yml"),
                          "--tags", "base", "--limit", db.backend.get_hostname()],
                         capture_output=True, text=True, env=env)
    figure("site.yml --tags base --limit db without web2: %.0f s" % (time.monotonic() - started))
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    assert "Delete the firewall rules the role added and no longer wants" in output
    rules = marked_rules(db)
    assert "from %s to any port %d" % (web1_address, DB_PORT) in rules, rules
    assert web2_address not in rules, rules
    assert "from 192.0.2.7 to any port %d proto tcp comment 'operator: vpn'" % DB_PORT in rules, rules
    assert "from 192.0.2.8 to any port 9100 proto tcp" in rules, rules
    assert tcp_open(web1, db_address, DB_PORT)
    assert not tcp_open(web2, db_address, DB_PORT)
