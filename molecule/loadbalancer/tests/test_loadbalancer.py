"""The loadbalancer role on a real HAProxy in front of two stand-in web hosts (converge.yml):
redirect, TLS, round robin, forwarded headers, health checks, the runtime API.

The tests run in file order: those that take a web host out come last, and each puts it back.
"""
import csv
import io
import json
import time

import pytest

NAME = "lb.test"
CERT = "/etc/haproxy/tls/%s.pem" % NAME
KEY = CERT + ".key"
ADMIN_SOCKET = "/run/haproxy/admin.sock"
BACKEND = "flaskapp"
WEB_HOSTS = {"web1": "127.0.0.2", "web2": "127.0.0.3"}
# curl to the site by its name, trusting the balancer's own certificate only.
HTTPS = "curl -sS --max-time 10 --resolve {0}:443:127.0.0.1 --cacert {1} ".format(NAME, CERT)
STAT = (
    "python3 -c \"import socket; s = socket.socket(socket.AF_UNIX); s.connect('%s'); "
    "s.sendall(b'show stat\\n'); print(s.makefile().read())\"" % ADMIN_SOCKET)


def servers(host):
    """HAProxy's view of the web hosts, from its runtime API: {server: row of show stat}."""
    rows = csv.DictReader(io.StringIO(host.check_output(STAT).lstrip("# ")))
    return {row["svname"]: row for row in rows
            if row["pxname"] == BACKEND and row["svname"] not in ("FRONTEND", "BACKEND")}


def settled_servers(host):
    """servers() at a moment when no health check is under way: while one is, HAProxy shows
    its check status with a leading "* " and no check code yet."""
    rows = {}

    def settled():
        rows.clear()
        rows.update(servers(host))
        return not any(row["check_status"].startswith("*") for row in rows.values())

    assert wait_for(settled, timeout=10), rows
    return rows


def states(host):
    return {name: row["status"] for name, row in servers(host).items()}


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def get(host, path, *options):
    """GET through the balancer: (status code, body)."""
    out = host.run(HTTPS + "-w '\\n%%{http_code}' %s 'https://%s%s'" % (" ".join(options), NAME, path))
    assert out.rc == 0, out.stderr
    body, _, code = out.stdout.rpartition("\n")
    return code, body


def answering(host, count):
    """Who answers `count` requests for / through the balancer, in order."""
    names = []
    for _ in range(count):
        code, body = get(host, "/")
        assert code == "200", (code, body)
        names.append(body.strip())
    return names


def s_client(host, *options):
    out = host.run("openssl s_client -connect 127.0.0.1:443 -servername %s %s </dev/null 2>&1"
                   % (NAME, " ".join(options)))
    return out.rc, out.stdout


@pytest.fixture
def all_up(host):
    """Every test that takes a web host out starts and ends with both of them UP."""
    assert wait_for(lambda: set(states(host).values()) == {"UP"}), states(host)
    yield
    assert wait_for(lambda: set(states(host).values()) == {"UP"}), states(host)


def test_haproxy_runs_with_a_valid_configuration(host):
    service = host.service("haproxy")
    assert service.is_running
    assert service.is_enabled
    host.run_expect([0], "haproxy -c -q -f /etc/haproxy/haproxy.cfg")
    assert host.socket("tcp://0.0.0.0:80").is_listening
    assert host.socket("tcp://0.0.0.0:443").is_listening


def test_the_stand_in_web_hosts_run(host):
    for name, address in WEB_HOSTS.items():
        assert host.service("https-backend-%s" % name).is_running
        assert host.socket("tcp://%s:8443" % address).is_listening


def test_http_redirects_permanently_to_https_on_the_server_name(host):
    out = host.check_output(
        "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' 'http://127.0.0.1/entries?page=2'")
    assert out == "301 https://%s/entries?page=2" % NAME


def test_certificate_is_for_the_server_name_and_its_key_is_root_only(host):
    subject = host.check_output("openssl x509 -noout -subject -nameopt RFC2253 -in %s", CERT)
    assert subject == "subject=CN=%s" % NAME
    names = host.check_output("openssl x509 -noout -ext subjectAltName -in %s", CERT)
    assert names.split()[-1] == "DNS:%s" % NAME, names
    key = host.file(KEY)
    assert key.user == "root" and key.mode == 0o600
    assert host.file("/etc/haproxy/tls").mode == 0o700
    # The key HAProxy serves with belongs to the certificate.
    assert (host.check_output("openssl pkey -in %s -pubout", KEY)
            == host.check_output("openssl x509 -in %s -noout -pubkey", CERT))


def test_https_answers_and_spreads_requests_over_both_web_hosts(host):
    names = answering(host, 6)
    assert set(names) == set(WEB_HOSTS), names
    # Round robin: consecutive requests alternate between the web hosts.
    assert all(a != b for a, b in zip(names, names[1:])), names


def sent_to_web_hosts(host, method):
    """How many times the web hosts received `method /bad-gateway`; empties their logs."""
    count = 0
    for name in WEB_HOSTS:
        log = "/run/https-backend-%s.requests" % name
        count += host.run("cat %s", log).stdout.split("\n").count("%s /bad-gateway" % method)
        host.run("rm -f %s", log)
    return count


def test_a_post_that_got_a_502_is_not_sent_again(host):
    """The web host may have acted on it before failing (a worker killed mid-request): the
    balancer hands the 502 to the client instead of replaying the POST on another web host."""
    sent_to_web_hosts(host, "POST")
    code, _ = get(host, "/bad-gateway", "-X POST", "--data 'order=1'")
    assert code == "502"
    assert sent_to_web_hosts(host, "POST") == 1


def test_a_get_that_got_a_502_is_tried_on_another_web_host(host):
    # GET is safe to repeat: an app down behind one web host costs no page view.
    sent_to_web_hosts(host, "GET")
    code, _ = get(host, "/bad-gateway")
    assert code == "502"
    assert sent_to_web_hosts(host, "GET") == 3  # the request and its two retries


def test_https_speaks_http2(host):
    out = host.check_output(HTTPS + "--http2 -o /dev/null -w '%%{http_version}' https://%s/", NAME)
    assert out == "2"


def test_web_hosts_see_the_balancers_forwarded_headers_not_the_clients(host):
    # A fresh HAProxy process, whose pooled connections did not come from a retry: HAProxy
    # 2.6 may open a retried request's connection without SNI (the role's README), and the
    # tests above made retries.
    host.run_expect([0], "systemctl reload haproxy")
    # The tests after this one read the web hosts' health: wait for the new process's checks.
    assert wait_for(lambda: all((row["status"], row["check_status"]) == ("UP", "L7OK")
                                for row in servers(host).values())), servers(host)
    code, body = get(host, "/headers", "-H 'X-Forwarded-For: 203.0.113.9'",
                     "-H 'X-Real-IP: 203.0.113.9'", "-H 'X-Forwarded-Host: evil.example'")
    assert code == "200", body
    seen = json.loads(body)
    headers = {key.lower(): value for key, value in seen["headers"].items()}
    assert headers["host"] == NAME
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert "x-real-ip" not in headers and "x-forwarded-host" not in headers
    # The balancer asks the web hosts for the site's name (SNI), as nginx there expects.
    assert seen["sni"] == NAME


def test_web_hosts_are_reached_over_checked_https(host):
    # Their certificate is checked against the trust anchors the role installed.
    config = host.file("/etc/haproxy/haproxy.cfg").content_string
    assert "verify required ca-file /etc/haproxy/backends-ca.pem verifyhost %s" % NAME in config
    anchors = host.file("/etc/haproxy/backends-ca.pem").content_string
    assert anchors == host.file("/etc/https-backend/web.pem").content_string


def test_tls_1_1_is_refused_by_the_balancer(host):
    # SECLEVEL=0 lets the client offer TLS 1.1: the refusal must come from the balancer.
    rc, out = s_client(host, "-tls1_1", "-cipher 'DEFAULT:@SECLEVEL=0'")
    assert rc != 0
    assert "alert protocol version" in out, out


@pytest.mark.parametrize("version, protocol", [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")])
def test_tls_1_2_and_1_3_are_accepted(host, version, protocol):
    rc, out = s_client(host, version, "-verify_return_error", "-CAfile %s" % CERT)
    assert rc == 0, out
    assert "New, %s, Cipher is " % protocol in out, out
    assert "Verify return code: 0 (ok)" in out, out


def test_tls_1_2_offers_forward_secret_ciphers_only(host):
    # CBC ciphers for the balancer's ECDSA key: outside Mozilla's intermediate list.
    for cipher in ("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384"):
        rc, out = s_client(host, "-tls1_2", "-cipher %s" % cipher)
        assert rc != 0 and "alert handshake failure" in out, (cipher, out)
    rc, out = s_client(host, "-tls1_2", "-cipher ECDHE-ECDSA-AES128-GCM-SHA256")
    assert rc == 0 and "New, TLSv1.2, Cipher is ECDHE-ECDSA-AES128-GCM-SHA256" in out, out


def test_health_checks_find_both_web_hosts_up(host):
    rows = settled_servers(host)
    assert sorted(rows) == sorted(WEB_HOSTS)
    for name, row in rows.items():
        # L7OK: the HTTPS check got an expected status, the certificate passed verification.
        assert (row["status"], row["check_status"], row["check_code"]) == ("UP", "L7OK", "200"), (name, row)


def test_admin_socket_is_for_root_and_haproxy_group_only(host):
    socket_file = host.file(ADMIN_SOCKET)
    assert socket_file.is_socket
    assert socket_file.group == "haproxy"
    assert socket_file.mode & 0o007 == 0, oct(socket_file.mode)
    refused = host.run("runuser -u nobody -- " + STAT)
    assert refused.rc != 0 and "Permission denied" in refused.stderr, refused.stderr


def test_a_web_host_failing_its_health_check_is_taken_out(host, all_up):
    # web1 still accepts connections, but its /healthz answers 503 (the app behind it is down).
    flag = "/run/https-backend-web1.unhealthy"
    host.run_expect([0], "touch %s", flag)
    try:
        started = time.monotonic()
        assert wait_for(lambda: states(host)["web1"] == "DOWN", timeout=15), states(host)
        taken_out = time.monotonic() - started
        # inter 2 s, fall 2: about 4 s.
        assert taken_out < 10, taken_out
        assert settled_servers(host)["web1"]["check_code"] == "503"
        assert answering(host, 4) == ["web2"] * 4
    finally:
        host.run_expect([0], "rm -f %s", flag)
    assert wait_for(lambda: states(host)["web1"] == "UP", timeout=15), states(host)
    assert set(answering(host, 4)) == set(WEB_HOSTS)


def test_a_stopped_web_host_is_taken_out_and_the_site_keeps_answering(host, all_up):
    host.run_expect([0], "systemctl stop https-backend-web2")
    try:
        # Right after the stop the checks have not noticed yet: a refused connection is
        # retried on the other web host, so no request fails.
        answers = answering(host, 6)
        assert wait_for(lambda: states(host)["web2"] == "DOWN", timeout=15), states(host)
        answers += answering(host, 4)
        assert set(answers) == {"web1"}, answers
    finally:
        host.run_expect([0], "systemctl start https-backend-web2")
    assert wait_for(lambda: states(host)["web2"] == "UP", timeout=15), states(host)
    assert set(answering(host, 4)) == set(WEB_HOSTS)


def haproxy_module(host, state, server):
    return host.ansible("community.general.haproxy",
                        "state=%s host=%s backend=%s socket=%s wait=true"
                        % (state, server, BACKEND, ADMIN_SOCKET), check=False)


def test_community_general_haproxy_drains_disables_and_enables_a_web_host(host, all_up):
    try:
        result = haproxy_module(host, "drain", "web1")
        assert result.get("changed") is True, result
        assert states(host)["web1"] == "DRAIN"
        assert answering(host, 4) == ["web2"] * 4

        result = haproxy_module(host, "disabled", "web1")
        assert states(host)["web1"] == "MAINT", result
        assert answering(host, 4) == ["web2"] * 4
    finally:
        result = haproxy_module(host, "enabled", "web1")
    # wait=true returns once the server is back in rotation (UP, or UP 1/2 while its
    # health is still rising).
    assert states(host)["web1"].startswith("UP"), result
    assert set(answering(host, 4)) == set(WEB_HOSTS)
