"""The modern-package shape of the sample app, deployed by site.yml, from the outside in.

shape-modern is a src/ package with only a pyproject.toml: it is importable only once
installed (app_install_project), its entry point is the factory create_app('production'), it
refuses to start without SERVER_NAME, and importing it takes 6 s. gevent workers serve it.
The tests run in file order: the v1.0 shape is live after converge and idempotence; the last
three update it to its 2.0 under steady HTTPS load, kill the master that took over, and try a
release on which a worker does not start.
"""
import json
import os
import sys

NAME = "shapes.test"
sys.path.insert(0, os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "tests"))
from loadgen import Load  # noqa: E402
from molecule_helpers import (  # noqa: E402
    DISTRO, FOOTER, ROOT, V1_REVISION, V2_REVISION, container_ip, https, newer_than_the_build, playbook, revision, sign)
from molecule_helpers import service as unit_property  # noqa: E402

CONTAINER = "flaskstack-shapes-%s" % DISTRO


def curl(host, path="/", options=""):
    return https(host, NAME, path, options)


def test_the_package_runs_from_its_installed_copy(host):
    """Nothing on the service's path but the virtualenv holds the package: the release's src/
    is not importable as it is, so a page proves pip install . ran."""
    site_packages = host.check_output("ls -d %s/current/venv/lib/python3*/site-packages", ROOT)
    assert host.file(site_packages + "/guestbook/templates/index.html").exists
    assert host.file(ROOT + "/current/src/guestbook/__init__.py").exists
    assert not host.file(ROOT + "/current/guestbook").exists


def test_the_drivers_source_pin_was_built_with_the_build_packages(host):
    """psycopg2 has no wheel for Linux: pip first failed for want of pg_config, then the role
    installed app_build_packages and pip compiled it. psycopg2-binary, the role's default
    driver, is not installed beside it (both install the import package psycopg2)."""
    venv = ROOT + "/current/venv"
    assert host.package("libpq-dev").is_installed
    assert host.package("build-essential").is_installed
    shown = host.check_output("%s/bin/pip show psycopg2", venv)
    assert "Version: 2.9.9" in shown
    assert host.run("%s/bin/pip show psycopg2-binary", venv).rc != 0
    # A source build links the system's libpq; the binary wheel bundles its own copy.
    extension = host.check_output("ls %s/lib/python3*/site-packages/psycopg2/_psycopg*.so", venv)
    libpq = [line for line in host.check_output("ldd %s", extension).splitlines() if "libpq.so" in line]
    assert len(libpq) == 1 and (" => /lib/" in libpq[0] or " => /usr/lib/" in libpq[0]), libpq


def test_pages_and_database(host):
    assert "Guestbook" in curl(host)
    assert sign(host, NAME, "from-a-src-package") == ("302", True, 1)
    assert revision(host) == V1_REVISION


def test_server_name_reaches_the_app(host):
    health = json.loads(curl(host, "/healthz"))
    assert health == {"status": "ok", "database": "postgresql", "url": "https://shapes.test/"}


def test_systemd_reads_the_quoted_entry_point_from_the_env_file(host):
    """FLASK_APP holds single quotes: .env has it in double quotes, which systemd, the
    deploy commands' sh and python-dotenv all read the same."""
    main_pid = host.check_output("systemctl show -P MainPID flaskapp.service")
    environ = host.check_output("tr '\\0' '\\n' < /proc/%s/environ", main_pid).splitlines()
    assert "FLASK_APP=guestbook:create_app('production')" in environ
    assert "SERVER_NAME=shapes.test" in environ


def test_gevent_workers_serve_it(host):
    main_pid = host.check_output("systemctl show -P MainPID flaskapp.service")
    workers = host.check_output("pgrep -P %s", main_pid).split()
    assert workers
    for pid in workers:
        assert "gevent" in host.check_output("cat /proc/%s/maps", pid)


def test_the_re_run_left_the_virtualenv_untouched(host):
    """Molecule's idempotence step ran site.yml again (changed=0)."""
    assert newer_than_the_build(host) == ""


def service(host, prop):
    return unit_property(host, "flaskapp.service", prop)


def test_update_to_2_0_under_load_loses_no_request(host):
    """The update hands over to a new gunicorn master: the service never stops (no request
    waits for the 6 s import), and the new master runs the new release through current."""
    master, active_since = service(host, "MainPID"), service(host, "ActiveEnterTimestampMonotonic")
    with Load(container_ip(CONTAINER), NAME, marker=FOOTER, max_seconds=1800) as load:
        run = playbook("update.yml", "-e", "app_version=shape-modern-2")
    line = load.report("update.yml shape-modern -> shape-modern-2 (gevent, 6 s import)")
    print("\nFIGURE " + line)
    assert run.returncode == 0, run.output[-3000:]
    new_master = service(host, "MainPID")
    assert new_master not in ("0", master)
    assert service(host, "ActiveEnterTimestampMonotonic") == active_since
    assert service(host, "ActiveState") == "active"
    assert host.check_output("tr '\\0' ' ' < /proc/%s/cmdline", new_master).startswith(ROOT + "/current/venv/bin/python ")
    # The old master stops once its workers have finished (gunicorn_graceful_timeout, 30 s).
    assert host.run("timeout 40 sh -c 'while kill -0 %s; do sleep 1; done'", master).succeeded
    assert load.failed == 0, line
    assert load.total >= 100, line
    assert load.pages[0] is False and load.pages[-1] is True
    assert FOOTER in curl(host)
    assert revision(host) == V2_REVISION
    assert "from-a-src-package" in curl(host)


def test_each_release_of_an_installed_project_has_a_virtualenv_of_its_own(host):
    """pip installs the project itself into the virtualenv (app_install_project): releases of
    other commits never share one, even with the same requirements."""
    releases = host.check_output("ls %s/releases", ROOT).split()
    links = [host.file("%s/releases/%s/venv" % (ROOT, release)) for release in releases]
    assert len(releases) >= 2 and all(link.is_symlink for link in links)
    assert len({link.linked_to for link in links}) == len(releases)


def test_systemd_restarts_the_master_it_was_handed(host):
    """After the hand-over the master is not systemd's child (it was the old master's): a
    master killed with SIGKILL must still be noticed and replaced."""
    master, restarts = service(host, "MainPID"), int(service(host, "NRestarts"))
    host.check_output("kill -9 %s", master)
    assert host.run(
        "timeout 60 sh -c 'until [ \"$(systemctl show -P ActiveState flaskapp.service)\" = active ]"
        " && [ \"$(systemctl show -P MainPID flaskapp.service)\" != %s ]; do sleep 1; done'", master).succeeded
    assert int(service(host, "NRestarts")) == restarts + 1
    assert FOOTER in curl(host)


def test_a_worker_that_does_not_start_puts_the_previous_release_back(host):
    """Workers are part of the release: when one does not run on the new release, update.yml
    puts the previous release back, as for a web app that fails its live probe. The worker here
    needs 2.0's code. It joins on 2.0, then an update back to 1.0 (no deploy commands: 1.0
    cannot migrate the 2.0 database down) must fail and leave 2.0 serving with its worker.
    Before that, a worker that does not start at all fails the run that adds it.
    A worker's command is one command, which its script execs: the test goes in sh -c."""
    live = host.file(ROOT + "/current").linked_to
    needs_2_0 = ("sh -c 'test -e migrations/versions/%s_add_likes_to_entries.py && exec sleep 86400'"
                 % V2_REVISION)
    # A new worker that does not keep running fails the run that adds it; systemd goes on
    # restarting it, so it has restarts of its own when the next run replaces its command.
    broken = {"app_workers": [{"name": "export", "command": "sh -c 'exit 3'", "stop_timeout": 5}],
              "app_deploy_commands": []}
    run = playbook("update.yml", "-e", json.dumps(dict(broken, app_version="shape-modern-2")))
    assert run.returncode != 0, run.output[-3000:]
    assert "flaskapp-worker-export@1" in run.output, run.output[-3000:]
    assert host.file(ROOT + "/current").linked_to == live
    assert int(host.check_output("systemctl show -P NRestarts flaskapp-worker-export@1")) > 0
    workers = {"app_workers": [{"name": "export", "command": needs_2_0, "stop_timeout": 5}],
               "app_deploy_commands": []}
    run = playbook("update.yml", "-e", json.dumps(dict(workers, app_version="shape-modern-2")))
    assert run.returncode == 0, run.output[-3000:]
    assert host.service("flaskapp-worker-export@1").is_running
    run = playbook("update.yml", "-e", json.dumps(dict(workers, app_version="shape-modern")))
    assert run.returncode != 0, run.output[-3000:]
    assert "flaskapp-worker-export@1" in run.output, run.output[-3000:]
    assert host.file(ROOT + "/current").linked_to == live
    assert FOOTER in curl(host)
    assert host.service("flaskapp-worker-export@1").is_running
    history = host.file(ROOT + "/releases.log").content_string
    assert "failed at" in history.splitlines()[-1], history
