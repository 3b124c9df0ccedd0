"""Behaviour of the logging role: rotation of the app's and nginx's logs, the persistent
journal, and forwarding to the stand-in syslog server (the receiver container)."""

import os
import re
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
_RUNNER = AnsibleRunner(INVENTORY)
# The `host` fixture is the app host; the receiver is reached through its own fixture.
testinfra_hosts = _RUNNER.get_hosts("log_senders")

APP = "blog"
LOG_DIR = "/var/log/blog"
CONFIG = "/etc/logrotate.d/blog"
STATE = "/var/tmp/logrotate-test.state"


@pytest.fixture(scope="module")
def receiver():
    name = _RUNNER.get_hosts("syslog_receivers")[0]
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


def run_ok(host, cmd):
    result = host.run(cmd)
    assert result.rc == 0, f"{cmd}: rc={result.rc} {result.stdout} {result.stderr}"
    return result


def wait_for(check, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.5)
    return check()


def append_as_app_user(host, path, line):
    run_ok(host, f"runuser -u {APP} -- sh -c 'echo {line} >> {path}'")


def force_rotation(host, config):
    """Rotate now, as the daily logrotate run would once the interval is up."""
    result = run_ok(host, f"logrotate -v -f -s {STATE} {config}")
    assert "error:" not in result.stderr, result.stderr


@pytest.mark.parametrize("config", [CONFIG, "/etc/logrotate.d/nginx"])
def test_logrotate_reads_the_config_without_errors(host, config):
    result = run_ok(host, f"logrotate -d {config}")
    assert "error:" not in result.stderr, result.stderr


def test_app_rotation_uses_the_chosen_interval_count_and_size(host):
    # logrotate's own reading of the file, not a text match on it.
    debug = run_ok(host, f"logrotate -d {CONFIG}").stderr
    # logrotate 3.21 (Debian 12) and 3.22 (Debian 13) word this line differently.
    assert re.search(r"rotating pattern: /var/log/blog/\*\.log .*weekly.*\(5 rotations\)", debug), debug
    assert "log files >= 10485760 are rotated earlier" in debug
    assert f"switching euid from 0 to {host.user(APP).uid}" in debug


def test_app_log_directory_is_writable_by_the_app_user_only(host):
    log_dir = host.file(LOG_DIR)
    assert log_dir.user == APP and log_dir.group == "adm" and log_dir.mode == 0o750
    run_ok(host, f"runuser -u {APP} -- touch {LOG_DIR}/x.log")
    run_ok(host, f"rm -f {LOG_DIR}/x.log")
    assert host.run(f"runuser -u nobody -- ls {LOG_DIR}").rc != 0


def test_app_logs_rotate_as_the_app_user_and_gunicorn_reopens_its_log(host):
    marker = uuid.uuid4().hex
    append_as_app_user(host, f"{LOG_DIR}/app.log", marker)
    append_as_app_user(host, f"{LOG_DIR}/gunicorn-error.log", "before-" + marker)
    assert host.service("blog.service").is_running

    force_rotation(host, CONFIG)

    rotated = host.file(f"{LOG_DIR}/app.log.1")
    assert rotated.contains(marker)
    assert (rotated.user, rotated.group, rotated.mode) == (APP, "adm", 0o640)
    live = host.file(f"{LOG_DIR}/app.log")
    assert (live.user, live.group, live.mode) == (APP, "adm", 0o640)
    assert not live.contains(marker)
    assert host.file(f"{LOG_DIR}/gunicorn-error.log.1").contains("before-" + marker)
    # The postrotate script sent SIGUSR1 to the main process: it now writes to the new file.
    assert wait_for(lambda: host.file(f"{LOG_DIR}/gunicorn-error.log").contains("reopened log files"))

    # A second rotation compresses the first one (delaycompress) and keeps it readable.
    append_as_app_user(host, f"{LOG_DIR}/app.log", "second-" + marker)
    force_rotation(host, CONFIG)
    run_ok(host, f"zgrep -q {marker} {LOG_DIR}/app.log.2.gz")
    assert host.file(f"{LOG_DIR}/app.log.1").contains("second-" + marker)
    assert host.file(f"{LOG_DIR}/app.log.2.gz").user == APP


def test_app_rotation_does_not_fail_when_gunicorn_is_stopped(host):
    run_ok(host, "systemctl stop blog.service")
    try:
        append_as_app_user(host, f"{LOG_DIR}/app.log", "while-stopped")
        force_rotation(host, CONFIG)
        assert host.file(f"{LOG_DIR}/app.log.1").contains("while-stopped")
    finally:
        run_ok(host, "systemctl start blog.service")


def http_get(host, path):
    host.run(f"python3 -c \"import urllib.request as u; u.urlopen('http://127.0.0.1{path}')\"")


def test_nginx_logs_rotate_and_nginx_reopens_them(host):
    debug = run_ok(host, "logrotate -d /etc/logrotate.d/nginx").stderr
    assert re.search(r"rotating pattern: /var/log/nginx/\*\.log .*after 1 days.*\(7 rotations\)", debug), debug
    marker = uuid.uuid4().hex
    http_get(host, "/before-" + marker)
    assert wait_for(lambda: host.file("/var/log/nginx/access.log").contains("before-" + marker))

    force_rotation(host, "/etc/logrotate.d/nginx")

    assert host.file("/var/log/nginx/access.log.1").contains("before-" + marker)
    live = host.file("/var/log/nginx/access.log")
    assert (live.user, live.group, live.mode) == ("www-data", "adm", 0o640)
    # nginx writes to the new file only if the postrotate script made it reopen its logs.
    assert wait_for(lambda: (http_get(host, "/after-" + marker)
                             or host.file("/var/log/nginx/access.log").contains("after-" + marker)))
    assert host.service("nginx").is_running


def test_journal_is_persistent_with_the_size_cap(host):
    config = run_ok(host, "systemd-analyze cat-config systemd/journald.conf").stdout
    assert "Storage=persistent" in config
    assert "SystemMaxUse=64M" in config
    assert "MaxRetentionSec=1month" in config
    # journald reports the limit it applies when it opens the persistent journal.
    status = run_ok(host, "journalctl -b -u systemd-journald -o cat").stdout
    assert re.search(r"System Journal \(/var/log/journal/.*, max 64(\.0)?M", status), status
    marker = uuid.uuid4().hex
    run_ok(host, f"logger -t flaskstack-journal-test {marker}")
    assert wait_for(lambda: marker in host.run(
        "journalctl --sync; journalctl -D /var/log/journal -t flaskstack-journal-test -o cat").stdout)


def test_forwarded_messages_reach_the_syslog_server(host, receiver):
    assert host.service("rsyslog").is_running
    marker = uuid.uuid4().hex
    run_ok(host, f"logger -t flaskstack-test {marker}")
    assert wait_for(lambda: receiver.file("/var/log/remote/received.log").contains(marker), timeout=15)


def test_messages_sent_while_the_syslog_server_is_down_arrive_later(host, receiver):
    marker = uuid.uuid4().hex
    run_ok(receiver, "systemctl stop rsyslog")
    try:
        run_ok(host, f"logger -t flaskstack-test outage-{marker}")
        # Logged locally at once, whatever the state of the server.
        assert wait_for(lambda: marker in host.run(
            "journalctl -t flaskstack-test -o cat --since -5min").stdout, timeout=10)
        # The forwarding queue takes further messages while the server is away.
        run_ok(host, f"logger -t flaskstack-test outage-second-{marker}")
    finally:
        run_ok(receiver, "systemctl start rsyslog")
    # Delivered from the queue once the server is back (retried every 10 s).
    received = receiver.file("/var/log/remote/received.log")
    assert wait_for(lambda: received.contains("outage-" + marker) and received.contains("outage-second-" + marker),
                    timeout=45)


def test_host_without_app_or_nginx_only_gets_the_journal(receiver):
    assert not receiver.file("/etc/logrotate.d/blog").exists
    assert not receiver.file("/etc/logrotate.d/nginx").exists
    assert not receiver.file(LOG_DIR).exists
    assert not receiver.file("/etc/rsyslog.d/90-flaskstack-forward.conf").exists
    config = receiver.run("systemd-analyze cat-config systemd/journald.conf").stdout
    assert "Storage=persistent" in config and "SystemMaxUse=500M" in config
