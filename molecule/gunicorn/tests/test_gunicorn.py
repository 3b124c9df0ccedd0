"""The gunicorn role on a real container: socket activation, workers, the app's environment,
recovery after a crash and restarts that drop no request."""
import html
import json
import re

SOCKET = "/run/flaskapp/gunicorn.sock"
SERVICE = "flaskapp.service"
ENV_FILE = "/srv/flaskapp/shared/.env"

# What molecule.yml puts in app_environment: the app must see exactly this.
EXPECTED_ENVIRONMENT = {
    "FLASK_APP": "wsgi:app",
    "FLASK_CONFIG": "production",
    "DATABASE_URL": "sqlite:////srv/flaskapp/shared/guestbook.db",
    "GUESTBOOK_TITLE": 'Gunicorn guestbook $HOME #1 "50%"',
    "GUESTBOOK_TEST_SECRET": ' p@ss$word#1 %h %% `id` "dq" ;&|<>*?=  ',
}

# Runs on the target with its python3: requests go through curl on the unix socket, timed
# there, so the figures do not include the test connection's own delays.
CLIENT = r'''
import json, os, subprocess, sys, time

SOCKET = "/run/flaskapp/gunicorn.sock"
SERVICE = "flaskapp.service"


def get(path="/healthz", timeout=30):
    out = subprocess.run(
        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", str(timeout),
         "--unix-socket", SOCKET, "http://localhost" + path],
        capture_output=True, text=True).stdout
    return out or "000"


def wait_for_200(limit):
    """Poll the site until it answers 200, at most `limit` seconds."""
    start = time.monotonic()
    code = "000"
    while time.monotonic() - start < limit:
        code = get(timeout=2)
        if code == "200":
            break
        time.sleep(0.1)
    return code, round(time.monotonic() - start, 2)


def show(prop):
    return subprocess.run(["systemctl", "show", "-p", prop, "--value", SERVICE],
                          capture_output=True, text=True).stdout.strip()


def main_pid():
    return int(show("MainPID") or 0)


def wait_for_new_master(old, limit=30):
    """Wait until systemd reports a running service with a master other than old."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        pid = main_pid()
        if pid not in (0, old) and show("ActiveState") == "active":
            return pid
        time.sleep(0.05)
    return 0


def running_master():
    """The master's pid once the service runs (it may still be starting from a previous
    test). Never 0: os.kill(0, 9) would kill this script's own process group."""
    pid = wait_for_new_master(0)
    if not pid:
        raise RuntimeError("%s is not running" % SERVICE)
    return pid


def kill_master():
    """kill -9 the master; wait until systemd runs a new one and the site answers, at most
    10 s in all. The dead master's workers may still answer for a moment, so a 200 alone does
    not show that the service came back."""
    old = running_master()
    start = time.monotonic()
    os.kill(old, 9)
    new = wait_for_new_master(old, limit=10)
    code, _ = wait_for_200(max(0.1, 10 - (time.monotonic() - start)))
    return {"old": old, "new": new, "code": code, "seconds": round(time.monotonic() - start, 2)}


def outage(seconds):
    """gunicorn cannot start for `seconds` (its environment file is gone) after a crash;
    systemd must keep trying, and the site must answer by itself once the file is back."""
    env_file = "/srv/flaskapp/shared/.env"
    master = running_master()
    restarts = int(show("NRestarts"))
    os.rename(env_file, env_file + ".away")
    try:
        os.kill(master, 9)
        time.sleep(seconds)
        state = show("ActiveState")
        attempts = int(show("NRestarts")) - restarts
    finally:
        os.rename(env_file + ".away", env_file)
    code, seconds = wait_for_200(15)
    return {"attempts": attempts, "state": state, "code": code, "seconds": seconds}


def restart_under_load():
    """Requests in a tight loop while `systemctl restart` runs; every one must answer 200."""
    old = running_master()
    inode = os.stat(SOCKET).st_ino
    results = []
    window = {}
    import threading

    stop = threading.Event()

    def load():
        while not stop.is_set():
            begin = time.monotonic()
            code = get(timeout=30)
            results.append((begin, time.monotonic() - begin, code))

    workers = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1)
        window["start"] = time.monotonic()
        subprocess.run(["systemctl", "restart", SERVICE], check=True, timeout=120)
        window["end"] = time.monotonic()
        time.sleep(1)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=35)
    during = [r for r in results if window["start"] <= r[0] <= window["end"]]
    return {
        "old": old, "new": main_pid(), "same_socket": os.stat(SOCKET).st_ino == inode,
        "requests": len(results), "during_restart": len(during),
        "failed": [r[2] for r in results if r[2] != "200"],
        "restart_seconds": round(window["end"] - window["start"], 2),
        "slowest_during_restart": round(max((r[1] for r in during), default=0), 2),
    }


print(json.dumps(globals()[sys.argv[1]](*[int(a) for a in sys.argv[2:]])))
'''


def client(host, action, *args):
    command = "python3 -c %s " + " ".join(["%s"] * (len(args) + 1))
    out = host.check_output(command, CLIENT, action, *[str(a) for a in args])
    return json.loads(out)


def main_pid(host):
    """The gunicorn master's process id, as a string for commands."""
    pid = host.check_output("systemctl show -p MainPID --value %s", SERVICE)
    assert int(pid) > 0
    return pid


def fetch(host, path):
    """Status code and body of a request on the unix socket."""
    out = host.check_output(
        "curl -sS --max-time 30 --unix-socket %s -w '\\n%%{http_code}' http://localhost%s",
        SOCKET,
        path,
    )
    body, _, status = out.rpartition("\n")
    return int(status), body


def process_environment(host, pid):
    raw = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid)
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def test_socket_and_service_are_enabled_and_running(host):
    for unit in ("flaskapp.socket", SERVICE):
        assert host.service(unit).is_enabled, unit
        assert host.service(unit).is_running, unit


def test_service_is_socket_activated_and_notifies_systemd(host):
    assert host.check_output("systemctl show -p Triggers --value flaskapp.socket") == SERVICE
    props = dict(
        line.split("=", 1)
        for line in host.check_output(
            "systemctl show -p Type -p NotifyAccess -p StatusText -p Restart %s", SERVICE
        ).splitlines()
    )
    assert props["Type"] == "notify"
    assert props["Restart"] == "always"
    # gunicorn's master sends READY=1 with this status text through NOTIFY_SOCKET.
    assert props["StatusText"] == "Gunicorn arbiter booted"


def test_service_is_sandboxed(host):
    # The directives as systemd applies them, not as the file spells them.
    expected = {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ReadWritePaths": "/var/log/flaskapp /srv/flaskapp/shared",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "ProtectHome": "yes",
        "ProtectProc": "invisible",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "RestrictSUIDSGID": "yes",
        "RestrictRealtime": "yes",
        "RestrictNamespaces": "yes",
        "LockPersonality": "yes",
        "RemoveIPC": "yes",
        "CapabilityBoundingSet": "",
        "AmbientCapabilities": "",
        "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
        "SystemCallArchitectures": "native",
        "UMask": "0027",
    }
    out = host.check_output(
        "systemctl show %s " + " ".join("-p " + name for name in expected), SERVICE
    )
    props = dict(line.split("=", 1) for line in out.splitlines())
    assert props == expected
    assert host.check_output("systemctl show -p SystemCallFilter --value %s", SERVICE)


def test_sandbox_leaves_the_app_its_writable_directories_only(host):
    # The master's own mount table (readable by its user; root here lacks CAP_SYS_PTRACE):
    # the file system is read-only, shared/ and the log directory are writable again.
    mounts = {}
    master = main_pid(host)
    for line in host.check_output("runuser -u flaskapp -- cat /proc/%s/mountinfo", master).splitlines():
        fields = line.split()
        mounts[fields[4]] = fields[5].split(",")
    assert "ro" in mounts["/"]
    for path in ("/srv/flaskapp/shared", "/var/log/flaskapp"):
        assert "rw" in mounts[path], path
    # The app user may write to releases/ outside the service, not inside.
    assert host.run("runuser -u flaskapp -- test -w /srv/flaskapp/releases").rc == 0
    assert "/srv/flaskapp/releases" not in mounts or "ro" in mounts["/srv/flaskapp/releases"]


def test_exposure_score_is_low(host):
    out = host.check_output("systemd-analyze security --no-pager %s", SERVICE)
    score = float(re.search(r"Overall exposure level for \S+: ([0-9.]+)", out).group(1))
    print("systemd-analyze security %s: %s" % (SERVICE, score))
    assert score <= 2.0


def test_master_and_workers_run_as_the_app_user(host):
    master = main_pid(host)
    workers = host.check_output("pgrep -P %s", master).split()
    assert workers
    for pid in [master] + workers:
        assert host.check_output("ps -o user= -p %s", pid) == "flaskapp", pid
        assert host.check_output("ps -o group= -p %s", pid) == "flaskapp", pid


def test_worker_count_is_twice_the_cores_plus_one(host):
    cores = int(host.check_output("nproc"))
    workers = host.check_output("pgrep -P %s", main_pid(host)).split()
    assert len(workers) == 2 * cores + 1
    assert "workers = %d" % (2 * cores + 1) in host.file("/etc/flaskapp/gunicorn.conf.py").content_string


def test_gunicorn_reads_its_configuration_as_written(host):
    # gunicorn's own view of the file, including the extra settings from molecule.yml.
    out = host.check_output(
        "cd /srv/flaskapp/current && runuser -u flaskapp -- venv/bin/gunicorn"
        " --config /etc/flaskapp/gunicorn.conf.py --print-config"
    )
    settings = dict(re.split(r"\s+=\s+", line, maxsplit=1) for line in out.splitlines() if " = " in line)
    assert settings["wsgi_app"] == "wsgi:app"
    assert settings["chdir"] == "/srv/flaskapp/current"
    assert settings["preload_app"] == "True"
    assert settings["capture_output"] == "True"
    assert settings["limit_request_field_size"] == "16380"


def test_unix_socket_is_for_the_web_server_group_only(host):
    sock = host.file(SOCKET)
    assert sock.is_socket
    assert sock.user == "flaskapp"
    assert sock.group == "www-data"
    assert sock.mode == 0o660


def test_configuration_is_not_world_readable(host):
    conf = host.file("/etc/flaskapp/gunicorn.conf.py")
    assert conf.user == "root"
    assert conf.group == "flaskapp"
    assert conf.mode == 0o640


def test_guestbook_page_answers_with_the_title_from_the_env_file(host):
    status, body = fetch(host, "/")
    assert status == 200
    title = re.search(r"<title>(.*)</title>", body).group(1)
    assert html.unescape(title) == EXPECTED_ENVIRONMENT["GUESTBOOK_TITLE"]
    assert "stored in sqlite" in body


def test_health_check_reaches_the_database(host):
    status, body = fetch(host, "/healthz")
    assert status == 200
    assert json.loads(body) == {"status": "ok", "database": "sqlite"}


def test_systemd_passes_the_env_file_verbatim(host):
    # systemd reads KEY='value' lines verbatim: $, ${...}, #, %, quotes and the spaces inside
    # the quotes reach gunicorn's master and its workers unchanged.
    master = main_pid(host)
    secret = re.search(r"^SECRET_KEY='(.*)'$", host.file(ENV_FILE).content_string, re.M).group(1)
    for pid in [master] + host.check_output("pgrep -P %s", master).split():
        env = process_environment(host, pid)
        for name, value in EXPECTED_ENVIRONMENT.items():
            assert env.get(name) == value, (pid, name)
        assert env["SECRET_KEY"] == secret


def test_python_dotenv_parses_the_env_file_like_systemd(host):
    # The same file read by python-dotenv (the app's load_dotenv, the flask CLI) without
    # ${VAR} expansion gives the same values. python-dotenv does expand ${VAR}, even inside
    # single quotes; it never overrides a variable systemd has already set (the page title
    # above shows the app kept systemd's value).
    script = (
        "import json; from dotenv import dotenv_values;"
        "print(json.dumps(dotenv_values('%s', interpolate=False)))" % ENV_FILE
    )
    values = json.loads(host.check_output("/srv/flaskapp/current/venv/bin/python -c %s", script))
    env = process_environment(host, main_pid(host))
    assert values == {name: env[name] for name in values}


def test_access_log_records_requests(host):
    fetch(host, "/healthz")
    log = host.file("/var/log/flaskapp/gunicorn-access.log")
    assert log.user == "flaskapp"
    assert "GET /healthz" in log.content_string


def test_a_request_starts_the_stopped_service(host):
    host.check_output("systemctl stop %s", SERVICE)
    assert not host.service(SERVICE).is_running
    assert host.service("flaskapp.socket").is_running
    status, _ = fetch(host, "/healthz")
    assert status == 200
    assert host.service(SERVICE).is_running


def test_site_answers_again_within_10_seconds_after_kill_9_of_the_master(host):
    result = client(host, "kill_master")
    print("kill -9 of the gunicorn master: answered again after %(seconds)s s" % result)
    assert result["code"] == "200"
    assert result["seconds"] < 10
    assert result["new"] not in (0, result["old"])


def test_systemd_keeps_trying_until_gunicorn_can_start_again(host):
    # 12 s in which every start fails at once: more than systemd's default start limit
    # (5 starts in 10 s), after which a service stays down until someone starts it.
    result = client(host, "outage", 12)
    print(
        "12 s outage: %(attempts)s start attempts, service %(state)s; answered %(seconds)s s "
        "after the cause was gone" % result
    )
    assert result["attempts"] > 5
    assert result["state"] != "failed"
    assert result["code"] == "200"


def test_restart_keeps_the_socket_and_drops_no_request(host):
    result = client(host, "restart_under_load")
    print(
        "systemctl restart under load: %(restart_seconds)s s, %(requests)s requests, "
        "%(during_restart)s made during the restart (slowest %(slowest_during_restart)s s), "
        "failed: %(failed)s" % result
    )
    assert result["new"] != result["old"]
    assert result["same_socket"]
    assert result["during_restart"] >= 1
    assert result["failed"] == []
