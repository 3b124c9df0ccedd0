"""The nginx role in letsencrypt mode against pebble: issuance, redirect, chain, renewal."""
import uuid

import pytest

NAME = "flaskstack.test"
LIVE = "/etc/letsencrypt/live/%s" % NAME
PEBBLE_CA = "/etc/pebble/ca.pem"  # the CA of pebble's own HTTPS (management and ACME API)
ROOT = "/tmp/pebble-root.pem"
# What nginx serves on 443 for the site's name.
SERVED_CERT = ("openssl s_client -connect 127.0.0.1:443 -servername %s </dev/null 2>/dev/null"
               " | openssl x509 -noout -serial -fingerprint -sha256" % NAME)


@pytest.fixture(scope="module")
def pebble_root(host):
    """pebble makes a new root CA each time it starts; it publishes it on its management port."""
    host.run_expect([0], "curl -sSf --cacert %s -o %s https://localhost:15000/roots/0", PEBBLE_CA, ROOT)
    return ROOT


def served_certificate(host):
    out = host.check_output(SERVED_CERT)
    assert "serial=" in out
    return out


def live_certificate(host):
    return host.check_output("openssl x509 -noout -serial -fingerprint -sha256 -in %s/fullchain.pem", LIVE)


def test_certbot_is_installed_and_its_timer_runs(host):
    assert host.package("certbot").is_installed
    timer = host.service("certbot.timer")
    assert timer.is_enabled
    assert timer.is_running


def test_site_uses_the_certificate_from_the_acme_server(host):
    site = host.file("/etc/nginx/sites-available/flaskapp").content_string
    assert "ssl_certificate %s/fullchain.pem;" % LIVE in site
    assert "ssl_certificate_key %s/privkey.pem;" % LIVE in site
    host.run_expect([0], "nginx -t")


def test_renewal_configuration_points_at_the_acme_server_and_the_webroot(host):
    conf = host.file("/etc/letsencrypt/renewal/%s.conf" % NAME).content_string
    assert "server = https://localhost:14000/dir" in conf
    assert "authenticator = webroot" in conf
    assert "/var/www/letsencrypt" in conf


def test_http_redirects_to_https(host):
    out = host.check_output("curl -s -o /dev/null -w '%%{http_code} %%{redirect_url}' 'http://%s/login?next=/'", NAME)
    assert out == "301 https://%s/login?next=/" % NAME


def test_acme_challenges_are_served_over_http(host):
    token = uuid.uuid4().hex
    path = "/var/www/letsencrypt/.well-known/acme-challenge/" + token
    host.run_expect([0], "mkdir -p /var/www/letsencrypt/.well-known/acme-challenge && echo %s > %s", token, path)
    try:
        out = host.check_output("curl -s -w ' %%{http_code}' http://%s/.well-known/acme-challenge/%s", NAME, token)
    finally:
        host.run("rm -f %s", path)
    assert out == "%s\n 200" % token


def test_https_certificate_chains_to_pebbles_root(host, pebble_root):
    # curl checks the chain nginx sends against pebble's root only, and the name.
    code = host.check_output("curl -sS -o /dev/null -w '%%{http_code}' --cacert %s https://%s/", pebble_root, NAME)
    assert code == "200"
    out = host.check_output(
        "openssl s_client -connect 127.0.0.1:443 -servername %s -CAfile %s -verify_return_error </dev/null 2>&1",
        NAME, pebble_root)
    assert "Verify return code: 0 (ok)" in out
    issuer = host.check_output("openssl x509 -noout -issuer -in %s/cert.pem", LIVE)
    assert "Pebble Intermediate CA" in issuer
    # The temporary self-signed certificate does not chain to pebble's root.
    assert host.run("openssl verify -CAfile %s /etc/nginx/tls/%s.crt", pebble_root, NAME).rc != 0


def test_certbot_service_trusts_the_acme_servers_ca(host):
    env = host.check_output("systemctl show certbot.service -p Environment")
    assert "REQUESTS_CA_BUNDLE=%s" % PEBBLE_CA in env


def test_renewal_deploy_hook_puts_the_new_certificate_live(host, pebble_root):
    hook = host.file("/etc/letsencrypt/renewal-hooks/deploy/nginx-reload")
    assert hook.is_file and hook.mode == 0o755
    before = served_certificate(host)
    assert before == live_certificate(host)
    # The timer's own unit with its settings, forced to renew now (it would wait for the
    # certificate to be due, after a random delay of up to 8 minutes).
    dropin = "/run/systemd/system/certbot.service.d/zz-test-force.conf"
    host.run_expect([0], "mkdir -p %s && printf '%%s\\n' '[Service]' 'ExecStart=' "
                    "'ExecStart=/usr/bin/certbot -q renew --force-renewal --no-random-sleep-on-renew' > %s "
                    "&& systemctl daemon-reload", dropin.rsplit("/", 1)[0], dropin)
    try:
        host.run_expect([0], "systemctl start certbot.service")
    finally:
        host.run("rm -f %s && systemctl daemon-reload", dropin)
    renewed = live_certificate(host)
    assert renewed != before
    # Served without any other step than certbot's deploy hook.
    assert served_certificate(host) == renewed
    code = host.check_output("curl -sS -o /dev/null -w '%%{http_code}' --cacert %s https://%s/", pebble_root, NAME)
    assert code == "200"
