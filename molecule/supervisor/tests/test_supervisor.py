"""The gunicorn role with gunicorn_process_manager: supervisor on a real container: the program
in supervisor, the socket's directory, the app's environment, recovery after a crash and what
a restart costs."""
import html
import json
import re

PROGRAM = "flaskapp"
SOCKET = "/run/flaskapp/gunicorn.sock"
PROGRAM_CONF = "/etc/supervisor/conf.d/flaskapp.conf"
ENV_FILE = "/srv/flaskapp/shared/.env"

# What molecule.yml puts in app_environment: the app must see exactly this.
EXPECTED_ENVIRONMENT = {
    "FLASK_APP": "wsgi:app",
    "FLASK_CONFIG": "production",
    "DATABASE_URL": "sqlite:////srv/flaskapp/shared/guestbook.db",
    "GUESTBOOK_TITLE": 'Supervised guestbook $HOME #1 "50%"',
    "GUESTBOOK_TEST_SECRET": ' p@ss$word#1 %h %% `id` "dq" ;&|<>*?=  ',
    "LANG": "C.UTF-8",
    "LC_ALL": "C.UTF-8",
    "HOME": "/srv/flaskapp",
}

# Runs on the target with its python3: requests go through curl on the unix socket, timed
# there, so the figures do not include the test connection's own delays.
CLIENT = r'''
import json, os, subprocess, sys, threading, time

SOCKET = "/run/flaskapp/gunicorn.sock"
PROGRAM = "flaskapp"


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


def master_pid():
    out = subprocess.run(["supervisorctl", "pid", PROGRAM], capture_output=True, text=True).stdout
    return int(out) if out.strip().isdigit() else 0


def running_master(limit=30):
    """The master's pid once supervisor reports the program RUNNING. Never 0: os.kill(0, 9)
    would kill this script's own process group."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        status = subprocess.run(["supervisorctl", "status", PROGRAM],
                                capture_output=True, text=True).stdout
        pid = master_pid()
        if " RUNNING " in status and pid:
            return pid
        time.sleep(0.1)
    raise RuntimeError("%s is not running" % PROGRAM)


def kill_master():
    """kill -9 the master; poll until a new master runs and the site answers, at most 10 s.
    (The old workers may answer for a moment on the old socket until the new master replaces
    it; they leave once they see their parent gone.)"""
    old = running_master()
    os.kill(old, 9)
    start = time.monotonic()
    code, new = "000", 0
    while time.monotonic() - start < 10:
        new = master_pid()
        if new not in (0, old):
            code = get(timeout=2)
            if code == "200":
                break
        time.sleep(0.1)
    return {"old": old, "new": new, "code": code, "seconds": round(time.monotonic() - start, 2)}


def restart_under_load():
    """Requests in a tight loop while `supervisorctl restart` runs: how many fail."""
    old = running_master()
    results = []
    window = {}
    stop = threading.Event()

    def load():
        while not stop.is_set():
            begin = time.monotonic()
            code = get(timeout=30)
            results.append((begin, time.monotonic() - begin, code))
            time.sleep(0.05)

    workers = [threading.Thread(target=load, daemon=True) for _ in range(2)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(1)
        window["start"] = time.monotonic()
        subprocess.run(["supervisorctl", "restart", PROGRAM], check=True, timeout=120,
                       capture_output=True)
        window["end"] = time.monotonic()
        time.sleep(3)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=35)
    failed = [r for r in results if r[2] != "200"]
    return {
        "old": old, "new": master_pid(), "requests": len(results),
        "failed": len(failed), "codes": sorted(set(r[2] for r in failed)),
        "failed_seconds": round(max((r[0] for r in failed), default=0)
                                - min((r[0] for r in failed), default=0), 2),
        "restart_seconds": round(window["end"] - window["start"], 2),
        "answered_after": wait_for_200(15),
    }


print(json.dumps(globals()[sys.argv[1]](*[int(a) for a in sys.argv[2:]])))
'''


def client(host, action, *args):
    command = "python3 -c %s " + " ".join(["%s"] * (len(args) + 1))
    out = host.check_output(command, CLIENT, action, *[str(a) for a in args])
    return json.loads(out)


def master_pid(host):
    """The gunicorn master's process id, as a string for commands."""
    pid = host.check_output("supervisorctl pid %s", PROGRAM)
    assert int(pid) > 0
    return pid


def fetch(host, path, user="root"):
    """Status code and body of a request on the unix socket, made as `user`."""
    out = host.check_output(
        "runuser -u %s -- curl -sS --max-time 30 --unix-socket %s -w '\\n%%{http_code}' http://localhost%s",
        user,
        SOCKET,
        path,
    )
    body, _, status = out.rpartition("\n")
    return int(status), body


def process_environment(host, pid):
    raw = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", pid)
    return dict(line.split("=", 1) for line in raw.splitlines() if "=" in line)


def test_supervisor_is_enabled_and_running(host):
    supervisor = host.service("supervisor")
    assert supervisor.is_enabled
    assert supervisor.is_running


def test_program_is_running_in_supervisor(host):
    status = host.check_output("supervisorctl status %s", PROGRAM)
    assert re.match(r"^flaskapp\s+RUNNING\s+pid \d+", status), status


def test_no_systemd_units_of_the_app(host):
    for unit in ("flaskapp.socket", "flaskapp.service"):
        assert not host.file("/etc/systemd/system/" + unit).exists
        assert host.check_output("systemctl show -p LoadState --value %s", unit) == "not-found"


def test_master_and_workers_run_as_the_app_user(host):
    master = master_pid(host)
    workers = host.check_output("pgrep -P %s", master).split()
    assert workers
    for pid in [master] + workers:
        assert host.check_output("ps -o user= -p %s", pid) == "flaskapp", pid
        assert host.check_output("ps -o group= -p %s", pid) == "flaskapp", pid
    # The master is gunicorn itself (the /bin/sh that started it became gunicorn).
    assert "gunicorn" in host.check_output("ps -o args= -p %s", master)


def test_workers_are_gevent_and_their_count_is_twice_the_cores_plus_one(host):
    cores = int(host.check_output("nproc"))
    workers = host.check_output("pgrep -P %s", master_pid(host)).split()
    assert len(workers) == 2 * cores + 1
    assert "Using worker: gevent" in host.file("/var/log/flaskapp/gunicorn-error.log").content_string


def test_gunicorn_binds_the_socket_itself(host):
    out = host.check_output(
        "cd /srv/flaskapp/current && runuser -u flaskapp -- venv/bin/gunicorn"
        " --config /etc/flaskapp/gunicorn.conf.py --print-config"
    )
    settings = dict(re.split(r"\s+=\s+", line, maxsplit=1) for line in out.splitlines() if " = " in line)
    assert settings["bind"] == "['unix:%s']" % SOCKET
    assert settings["worker_class"] == "gevent"


def test_socket_is_reachable_through_its_directory_only(host):
    directory = host.file("/run/flaskapp")
    assert directory.user == "flaskapp"
    assert directory.group == "www-data"
    assert directory.mode == 0o710
    assert host.file(SOCKET).is_socket
    assert "d /run/flaskapp 0710 flaskapp www-data -" in host.file("/etc/tmpfiles.d/flaskapp-gunicorn.conf").content_string


def test_nginx_user_may_connect_and_others_may_not(host):
    status, _ = fetch(host, "/healthz", user="www-data")
    assert status == 200
    refused = host.run("runuser -u nobody -- curl -sS --max-time 5 --unix-socket %s http://localhost/healthz", SOCKET)
    assert refused.rc != 0
    assert "Permission denied" in refused.stderr or "Couldn't connect" in refused.stderr


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


def test_the_env_file_reaches_every_process(host):
    master = master_pid(host)
    env_file = host.file(ENV_FILE).content_string
    assert re.search(r"^SECRET_KEY='.+'$", env_file, re.M)
    for pid in [master] + host.check_output("pgrep -P %s", master).split():
        env = process_environment(host, pid)
        for name, value in EXPECTED_ENVIRONMENT.items():
            assert env.get(name) == value, (pid, name)
        # Present and the .env's, without showing it in a failure message.
        assert len(env.get("SECRET_KEY", "")) >= 32, pid
        assert ("SECRET_KEY='%s'" % env["SECRET_KEY"]) in env_file, pid


def test_program_file_is_not_world_readable_and_holds_no_secret(host):
    conf = host.file(PROGRAM_CONF)
    assert conf.user == "root"
    assert conf.group == "root"
    assert conf.mode == 0o640
    content = conf.content_string
    assert "SECRET_KEY" not in content
    assert "GUESTBOOK_TEST_SECRET" not in content
    for setting in ("autostart=true", "autorestart=true", "stopasgroup=true", "killasgroup=true",
                    "stopsignal=TERM", "stopwaitsecs=35", "user=flaskapp"):
        assert setting in content.splitlines(), setting
    gunicorn_conf = host.file("/etc/flaskapp/gunicorn.conf.py")
    assert gunicorn_conf.mode == 0o640


def test_log_files_are_written(host):
    fetch(host, "/healthz")
    access = host.file("/var/log/flaskapp/gunicorn-access.log")
    assert access.user == "flaskapp"
    assert "GET /healthz" in access.content_string
    assert "Listening at: unix:%s" % SOCKET in host.file("/var/log/flaskapp/gunicorn-error.log").content_string
    # supervisor writes what the processes print into a directory of its own, closed to others.
    directory = host.file("/var/log/flaskapp/supervisor")
    assert (directory.user, directory.group, directory.mode) == ("root", "adm", 0o750)
    for name in ("stdout.log", "stderr.log"):
        log = host.file("/var/log/flaskapp/supervisor/" + name)
        assert log.is_file, name
        assert log.user == "root", name


def test_site_answers_again_within_10_seconds_after_kill_9_of_the_master(host):
    result = client(host, "kill_master")
    print("kill -9 of the gunicorn master: answered again after %(seconds)s s" % result)
    assert result["code"] == "200"
    assert result["seconds"] < 10
    assert result["new"] not in (0, result["old"])


def test_restart_refuses_connections_briefly(host):
    # Known limitation: no socket is held across the restart. Measured, not bounded: the
    # figure is printed; the test asserts that the site comes back by itself.
    result = client(host, "restart_under_load")
    print(
        "supervisorctl restart under light load: %(restart_seconds)s s, %(requests)s requests, "
        "%(failed)s failed (%(codes)s) over %(failed_seconds)s s" % result
    )
    assert result["new"] not in (0, result["old"])
    assert result["answered_after"][0] == "200"
    assert result["requests"] > result["failed"]
