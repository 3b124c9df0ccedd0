"""The whole stack from site.yml on one server, checked from the outside in."""
import re
import uuid

import pytest

NAME = "guestbook.test"
CERT = "/etc/nginx/tls/%s.crt" % NAME
# curl against the live site by its name, trusting only the site's own certificate.
HTTPS = "curl -sS --resolve {0}:443:127.0.0.1 --cacert {1} ".format(NAME, CERT)
ROOT = "/srv/flaskapp"


def psql(host, query):
    return host.check_output("runuser -u postgres -- psql -d flaskapp -Atc %s", query)


def headers_of(host, url):
    out = host.check_output(HTTPS + "-o /dev/null -D - %s", url)
    lines = out.splitlines()
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return lines[0], headers


def test_http_redirects_permanently_to_https(host):
    out = host.check_output(
        "curl -s -o /dev/null -w '%{http_code} %{redirect_url}' http://127.0.0.1/entries?page=2")
    assert out == "301 https://%s/entries?page=2" % NAME


def test_https_serves_the_app_with_data_from_postgresql(host):
    page = host.check_output(HTTPS + "https://%s/", NAME)
    assert "<h1>Molecule guestbook</h1>" in page
    assert "stored in postgresql." in page


def test_an_entry_goes_into_postgresql_and_comes_back(host):
    message = "hello-%s" % uuid.uuid4().hex[:12]
    code = host.check_output(
        HTTPS + "-o /dev/null -w '%%{http_code}' --data-urlencode author=molecule "
        "--data-urlencode message=%s https://%s/", message, NAME)
    assert code == "302"
    assert message in host.check_output(HTTPS + "https://%s/", NAME)
    assert psql(host, "SELECT author FROM entries WHERE message = '%s'" % message) == "molecule"


def test_the_apps_tables_belong_to_its_own_unprivileged_role(host):
    tables = psql(host, "SELECT tablename || ':' || tableowner FROM pg_tables "
                        "WHERE schemaname = 'public' ORDER BY 1").splitlines()
    assert tables == ["alembic_version:flaskapp", "entries:flaskapp"]
    assert psql(host, "SELECT version_num FROM alembic_version") == "0fa6799e3123"
    assert psql(host, "SELECT rolsuper OR rolcreaterole OR rolcreatedb FROM pg_roles "
                      "WHERE rolname = 'flaskapp'") == "f"


def test_static_files_come_from_nginx_with_cache_headers(host):
    probe = uuid.uuid4().hex
    status, headers = headers_of(host, "https://%s/static/style.css?probe=%s" % (NAME, probe))
    assert " 200" in status
    assert headers["content-type"].startswith("text/css")
    assert re.search(r"max-age=(\d+)", headers["cache-control"])
    assert int(re.search(r"max-age=(\d+)", headers["cache-control"]).group(1)) >= 7 * 86400
    assert "expires" in headers
    # Requests gunicorn answers are in its access log; the static one is not.
    host.check_output(HTTPS + "-o /dev/null https://%s/healthz?probe=%s", NAME, probe)
    access_log = host.file("/var/log/flaskapp/gunicorn-access.log").content_string
    assert "/healthz?probe=%s" % probe in access_log
    assert "/static/style.css?probe=%s" % probe not in access_log


def test_gunicorn_runs_as_the_app_user(host):
    processes = [line.split(None, 1) for line in host.check_output("ps -eo user=,args=").splitlines()]
    users = [user for user, args in processes if "bin/gunicorn --config" in args]
    assert len(users) >= 2  # the master and its workers
    assert set(users) == {"flaskapp"}


def test_env_file_is_private_to_the_app_user(host):
    env = host.file(ROOT + "/shared/.env")
    assert env.user == "flaskapp"
    assert env.mode == 0o600
    assert re.search(r"^DATABASE_URL=.*postgresql", env.content_string, re.M)


def test_secret_key_survived_the_second_run(host):
    first = host.file("/root/first-run-secret-key").content_string.strip()
    assert len(first) >= 32
    assert host.file(ROOT + "/shared/secret_key").content_string.strip() == first
    assert first in host.file(ROOT + "/shared/.env").content_string


@pytest.mark.parametrize("unit", [
    "nginx.service", "postgresql.service", "flaskapp.socket", "flaskapp.service",
    "ssh.service", "unattended-upgrades.service", "fail2ban.service",
    "cron.service", "systemd-journald.service",
])
def test_every_service_runs_and_starts_at_boot(host, unit):
    service = host.service(unit)
    assert service.is_running
    assert service.is_enabled or unit == "systemd-journald.service"


def test_ssh_refuses_root_and_passwords(host):
    settings = host.check_output("sshd -T").lower().splitlines()
    assert "permitrootlogin no" in settings
    assert "passwordauthentication no" in settings


def test_deploy_user_has_sudo_and_the_key(host):
    keys = host.file("/home/deploy/.ssh/authorized_keys").content_string
    assert "molecule-default" in keys
    assert host.run("sudo -l -U deploy").stdout.count("ALL") >= 1


def test_firewall_allows_only_ssh_http_https(host):
    assert host.service("ufw").is_enabled  # a oneshot unit: loads the rules at boot
    status = host.check_output("ufw status")
    assert "Status: active" in status
    ports = sorted(set(re.findall(r"^(\d+)(?:/tcp)?\s+(?:ALLOW|LIMIT)", status, re.M)))
    assert ports == ["22", "443", "80"]


def test_logs_are_rotated(host):
    for path in ("/etc/logrotate.d/flaskapp", "/etc/logrotate.d/nginx"):
        assert host.file(path).exists
    host.run_expect([0], "logrotate --debug /etc/logrotate.conf")
