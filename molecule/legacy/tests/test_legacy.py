"""The older-layout shape of the sample app, deployed by site.yml, from the outside in.

shape-legacy keeps its requirements in requirements/prod.txt (-r common.txt), pinning
gunicorn==21.2.0 and PyYAML==5.4.1 (no wheel for this Python, and its sdist no longer builds);
it writes logs/app.log next to its code when it is imported and ships uploads/avatars/.gitkeep
and uploads/README.txt. The inventory overrides PyYAML, shares logs/ and uploads/, and has a
deploy command that needs the secret ADMIN_PASSWORD from the app's environment. Sync workers
serve it; two scheduled jobs and a worker with two instances come with it, and the mail relay
(the mail role), which sends through a stand-in smarthost, the smtp_sinks container, that requires
STARTTLS and a login and keeps each message in /var/mail/sink. Redis runs on the web host itself
(the redis role, the host in `redisservers` too). After idempotence, site.yml runs in check mode
with all of it. The tests run in file order: the v1.0 shape is live
after converge and idempotence; then it is updated to its 2.0 under steady HTTPS load, and the
last test drops a job and a worker instance from the lists.
"""
import hashlib
import os
import sys
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

NAME = "legacy.test"
SECRET = "legacy-admin-password-51c7e0"
sys.path.insert(0, os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "tests"))
from loadgen import Load  # noqa: E402
from molecule_helpers import (  # noqa: E402
    DISTRO, FOOTER, ROOT, V1_REVISION, V2_REVISION, container_ip, https, newer_than_the_build, playbook, revision, sign,
    service)

CONTAINER = "flaskstack-legacy-%s" % DISTRO
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
_RUNNER = AnsibleRunner(INVENTORY)
# The `host` fixture is the web host; the stand-in smarthost has its own fixture.
testinfra_hosts = _RUNNER.get_hosts("webservers")
WORKERS = ["flaskapp-worker-queue@1.service", "flaskapp-worker-queue@2.service"]


def curl(host, path="/", options=""):
    return https(host, NAME, path, options)


def versions(host):
    """gunicorn's, PyYAML's and Flask's versions in the live virtualenv, as the app user."""
    return host.check_output(
        "runuser -u flaskapp -- %s/current/venv/bin/python -c %s", ROOT,
        "import importlib.metadata as m; print(m.version('gunicorn'), m.version('PyYAML'), m.version('Flask'))")


def test_the_collection_replaced_the_pins_it_overrides(host):
    assert versions(host) == "23.0.0 6.0.2 3.1.3"


def test_pages_and_database(host):
    assert "Guestbook" in curl(host)
    assert sign(host, NAME, "from-an-old-layout") == ("302", True, 1)
    assert revision(host) == V1_REVISION


def test_the_log_written_next_to_the_code_lands_in_shared(host):
    log = host.file(ROOT + "/shared/logs/app.log")
    assert log.user == "flaskapp"
    assert "guestbook started" in log.content_string
    assert host.file(ROOT + "/current/logs").linked_to == ROOT + "/shared/logs"


def test_shipped_uploads_seeded_the_shared_directory(host):
    assert host.file(ROOT + "/shared/uploads/avatars/.gitkeep").exists
    assert host.file(ROOT + "/shared/uploads/README.txt").content_string == "Shipped by the repository.\n"


def test_the_deploy_command_got_the_secret(host):
    digest = host.file(ROOT + "/shared/uploads/admin.sha256").content_string.split()[0]
    assert digest == hashlib.sha256(SECRET.encode()).hexdigest()


def test_jobs_are_scheduled(host):
    for job in ("add-entry", "fails"):
        timer = host.service("flaskapp-job-%s.timer" % job)
        assert timer.is_enabled and timer.is_running
    assert service(host, "flaskapp-job-add-entry.timer", "TimersCalendar").startswith("{ OnCalendar=*-*-* 03:00:00 ;")
    assert service(host, "flaskapp-job-add-entry.timer", "RandomizedDelayUSec") == "10min"
    assert service(host, "flaskapp-job-fails.timer", "Persistent") == "no"


def test_a_job_runs_as_the_app_with_its_environment(host):
    """Started as its timer would start it: the row proves the .env's DATABASE_URL and the
    venv's SQLAlchemy; the service runs as the app user, in the live release, sandboxed."""
    host.check_output("systemctl start flaskapp-job-add-entry.service")
    count = host.check_output(
        "runuser -u postgres -- psql -d flaskapp -Atc \"SELECT count(*) FROM entries WHERE author = 'job'\"")
    assert count == "1"
    assert "written by a job" in curl(host)
    assert service(host, "flaskapp-job-add-entry.service", "Result") == "success"
    assert service(host, "flaskapp-job-add-entry.service", "User") == "flaskapp"
    assert service(host, "flaskapp-job-add-entry.service", "ProtectSystem") == "strict"


def test_a_failed_job_is_visible(host):
    assert not host.run("systemctl start flaskapp-job-fails.service").succeeded
    assert "flaskapp-job-fails.service" in host.check_output("systemctl --failed --no-legend")
    assert "this job fails" in host.check_output("journalctl -u flaskapp-job-fails.service --no-pager")
    host.check_output("systemctl reset-failed flaskapp-job-fails.service")


@pytest.fixture(scope="module")
def sink():
    return testinfra.get_host("ansible://" + _RUNNER.get_hosts("smtp_sinks")[0], ansible_inventory=INVENTORY)


def mails(sink, text):
    """The messages the stand-in smarthost received that contain TEXT, oldest first."""
    found = sink.run("grep -rlF -e %s /var/mail/sink/", text).stdout.split()
    return [sink.file(path).content_string for path in sorted(found)]


def wait_for_mails(sink, text, count=1, timeout=60):
    deadline = time.monotonic() + timeout
    while len(mails(sink, text)) < count and time.monotonic() < deadline:
        time.sleep(1)
    return mails(sink, text)


def test_a_failed_job_mails_its_journal(host, sink):
    """OnFailure= starts flaskapp-job-failed@flaskapp-job-fails.service.service, which mails root,
    whose alias is mail_root_address; the previous test's failed run mailed once already."""
    subject = "flaskapp-job-fails.service failed"
    before = len(wait_for_mails(sink, subject))
    assert before >= 1
    assert not host.run("systemctl start flaskapp-job-fails.service").succeeded
    received = wait_for_mails(sink, subject, before + 1)
    assert len(received) == before + 1
    mail = received[-1]
    assert "X-Sink-Rcpt-To: ops@example.test" in mail
    assert "X-Sink-Authenticated: True" in mail
    assert "this job fails" in mail
    assert "status=3" in mail
    host.check_output("systemctl reset-failed flaskapp-job-fails.service")


def test_a_schedule_systemd_rejects_fails_before_anything_changes(host):
    jobs = '{"app_jobs": [{"name": "bad", "command": "true", "on_calendar": "every tuesday-ish"}]}'
    run = playbook("site.yml", "-e", jobs)
    assert run.returncode != 0
    assert "app_jobs: the schedule of job bad" in run.output, run.output[-3000:]
    assert "changed=0 " in run.output
    assert not host.file("/etc/systemd/system/flaskapp-job-bad.timer").exists


def serving_from(host, unit):
    """The release directories the worker's runs said they served from, oldest first."""
    log = host.check_output("journalctl -u %s --no-pager -o cat", unit)
    return [line.split()[-1] for line in log.splitlines() if line.startswith("serving from ")]


def test_workers_run_from_the_live_release(host):
    live = host.check_output("readlink -f %s/current", ROOT)
    for unit in WORKERS:
        assert host.service(unit).is_running and host.service(unit).is_enabled
        assert service(host, unit, "User") == "flaskapp"
        assert service(host, unit, "ProtectSystem") == "strict"
        assert serving_from(host, unit)[-1] == live


def test_a_worker_without_a_command_fails_before_anything_changes(host):
    run = playbook("site.yml", "-e", '{"app_workers": [{"name": "nocommand"}]}')
    assert run.returncode != 0
    assert "app_workers" in run.output and "command" in run.output, run.output[-3000:]
    assert "changed=0 " in run.output
    assert not host.file("/etc/systemd/system/flaskapp-worker-nocommand@.service").exists


def test_the_app_sends_mail_through_the_relay(host, sink):
    """Sent as the app sends: smtplib to MAIL_SERVER:MAIL_PORT of its .env, as the app user from
    the live release; the relay hands it to the smarthost over verified TLS, logged in."""
    env = host.file(ROOT + "/shared/.env").content_string
    assert "MAIL_SERVER='localhost'" in env and "MAIL_PORT='25'" in env
    token = uuid.uuid4().hex
    script = (
        "import os, smtplib; from email.message import EmailMessage; m = EmailMessage(); "
        "m['From'] = 'flaskapp@legacy.test'; m['To'] = 'someone@example.test'; m['Subject'] = 'token %s'; "
        "m.set_content('sent by the app'); "
        "s = smtplib.SMTP(os.environ['MAIL_SERVER'], int(os.environ['MAIL_PORT'])); s.send_message(m); s.quit()" % token)
    send = ("cd {0}/current && runuser -u flaskapp -- /bin/sh -c "
            "'set -a && . {0}/shared/.env && set +a && exec venv/bin/python -c \"$0\"' %s").format(ROOT)
    host.check_output(send, script)
    received = wait_for_mails(sink, token)
    assert len(received) == 1
    assert "X-Sink-Rcpt-To: someone@example.test" in received[0]
    assert "X-Sink-Authenticated: True" in received[0]
    assert "Verified TLS connection established to %s" % sink.backend.host in host.check_output(
        "journalctl -u postfix@- --no-pager -o cat")


def test_the_relay_is_not_an_open_relay(host, sink):
    """Postfix listens on loopback only: the smarthost's container, on the same network, is
    refused at the web host's port 25, while the web host itself is served there."""
    assert host.check_output("postconf -h inet_interfaces") == "loopback-only"
    assert host.check_output("postconf -h mydestination") == ""
    probe = "import socket, sys; socket.create_connection((sys.argv[1], 25), 5).close()"
    assert host.run("python3 -c %s 127.0.0.1", probe).succeeded
    refused = sink.run("python3 -c %s %s", probe, CONTAINER)
    assert not refused.succeeded
    assert "ConnectionRefusedError" in refused.stderr, refused.stderr
    for table in ("/etc/postfix/sasl_passwd", "/etc/postfix/sasl_passwd.db"):
        assert host.file(table).mode == 0o600 and host.file(table).user == "root"


def test_redis_on_the_web_host_listens_on_loopback_only_with_a_password(host):
    assert host.service("redis-server.service").is_running
    listening = {address for address in host.check_output("ss -Hltn | awk '{print $4}'").split()
                 if address.rsplit(":", 1)[-1] == "6379"}
    # ::1 when the host has IPv6 (the role's "-::1" is optional; these containers have none).
    assert "127.0.0.1:6379" in listening and listening <= {"127.0.0.1:6379", "[::1]:6379"}
    assert "NOAUTH" in host.run("redis-cli -h 127.0.0.1 ping").stdout
    password = host.file("/etc/redis/flaskstack-password").content_string
    # The app's environment, loaded by the shell from the .env file (not on a command line).
    url = host.check_output("set -a; . %s/shared/.env; printf %%s \"$REDIS_URL\"", ROOT)
    assert url == "redis://:%s@localhost:6379/0" % password
    # AUTH <password> then PING, as the app's client does with that URL (redis-cli -u would
    # send the URL's empty user name too, which Redis refuses).
    script = (
        "import os, socket, urllib.parse\n"
        "url = urllib.parse.urlsplit(os.environ['REDIS_URL'])\n"
        "s = socket.create_connection((url.hostname, url.port), timeout=5)\n"
        "s.sendall(b'AUTH ' + urllib.parse.unquote(url.password).encode() + b'\\r\\n'); s.recv(100)\n"
        "s.sendall(b'PING\\r\\n'); print(s.recv(100).decode().strip())\n")
    pong = host.run("set -a; . %s/shared/.env; set +a; python3 -c %s", ROOT, script)
    assert pong.stdout.strip() == "+PONG", pong.stdout + pong.stderr


def test_the_re_run_left_the_virtualenv_untouched(host):
    """Molecule's idempotence step ran site.yml again (changed=0)."""
    assert newer_than_the_build(host) == ""


def test_update_to_2_0_under_load_loses_no_request(host):
    master = service(host, "flaskapp.service", "MainPID")
    active_since = service(host, "flaskapp.service", "ActiveEnterTimestampMonotonic")
    host.check_output("echo kept > %s/shared/uploads/avatars/kept.png", ROOT)
    with Load(container_ip(CONTAINER), NAME, marker=FOOTER, max_seconds=1800) as load:
        run = playbook("update.yml", "-e", "app_version=shape-legacy-2")
    line = load.report("update.yml shape-legacy -> shape-legacy-2 (sync workers, migration)")
    print("\nFIGURE " + line)
    assert run.returncode == 0, run.output[-3000:]
    assert SECRET not in run.output
    assert load.failed == 0, line
    assert load.total >= 100, line
    assert load.pages[0] is False and load.pages[-1] is True
    assert FOOTER in curl(host)
    assert revision(host) == V2_REVISION
    assert "from-an-old-layout" in curl(host)
    assert versions(host) == "23.0.0 6.0.2 3.1.3"
    # Handed over, not restarted; the shared directories kept what the app wrote.
    assert service(host, "flaskapp.service", "MainPID") not in ("0", master)
    assert service(host, "flaskapp.service", "ActiveEnterTimestampMonotonic") == active_since
    assert host.file(ROOT + "/shared/uploads/avatars/kept.png").content_string == "kept\n"
    assert host.file(ROOT + "/shared/logs/app.log").content_string.count("guestbook started") >= 2
    # The workers were restarted onto the new release.
    live = host.check_output("readlink -f %s/current", ROOT)
    for unit in WORKERS:
        assert serving_from(host, unit)[-1] == live
        assert host.service(unit).is_running


def test_jobs_and_worker_instances_no_longer_listed_are_removed(host):
    jobs = '{"app_jobs": [{"name": "add-entry", "command": "true", "on_calendar": "daily"}]}'
    one_worker = '{"app_workers": [{"name": "queue", "command": "sleep 86400", "instances": 1}]}'
    run = playbook("site.yml", "--tags", "app", "-e", jobs, "-e", one_worker, "-e", "app_version=shape-legacy-2")
    assert run.returncode == 0, run.output[-3000:]
    assert not host.file("/etc/systemd/system/flaskapp-job-fails.timer").exists
    assert not host.file("/etc/systemd/system/flaskapp-job-fails.service").exists
    assert not host.file("/etc/flaskapp/jobs/fails.sh").exists
    assert not host.service("flaskapp-job-fails.timer").is_running
    assert service(host, "flaskapp-job-add-entry.timer", "TimersCalendar").startswith("{ OnCalendar=*-*-* 00:00:00 ;")
    assert host.service("flaskapp-worker-queue@1.service").is_running
    assert not host.service("flaskapp-worker-queue@2.service").is_running
    assert not host.service("flaskapp-worker-queue@2.service").is_enabled
    assert "sleep 86400" in host.file("/etc/flaskapp/workers/queue.sh").content_string
