"""The older-layout shape of the sample app, deployed by site.yml, from the outside in.

shape-legacy keeps its requirements in requirements/prod.txt (-r common.txt), pinning
gunicorn==21.2.0 and PyYAML==5.4.1 (no wheel for this Python, and its sdist no longer builds);
it writes logs/app.log next to its code when it is imported and ships uploads/avatars/.gitkeep
and uploads/README.txt. The inventory overrides PyYAML, shares logs/ and uploads/, and has a
deploy command that needs the secret ADMIN_PASSWORD from the app's environment. Sync workers
serve it. The tests run in file order: the v1.0 shape is live after converge and idempotence;
the last test updates it to its 2.0 under steady HTTPS load.
"""
import hashlib
import os
import sys

NAME = "legacy.test"
ROOT = "/srv/flaskapp"
V1_REVISION = "0fa6799e3123"
V2_REVISION = "5b1e2c3d4f60"
FOOTER = '<footer class="version">Guestbook 2.0</footer>'
SECRET = "legacy-admin-password-51c7e0"
sys.path.insert(0, os.path.join(os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.getcwd()), "tests"))
from loadgen import Load  # noqa: E402
from molecule_helpers import DISTRO, container_ip, https, playbook, service  # noqa: E402

CONTAINER = "flaskstack-legacy-%s" % DISTRO


def curl(host, path="/", options=""):
    return https(host, NAME, path, options)


def revision(host):
    return host.check_output("runuser -u postgres -- psql -d flaskapp -Atc 'SELECT version_num FROM alembic_version'")


def versions(host):
    """gunicorn's, PyYAML's and Flask's versions in the live virtualenv, as the app user."""
    return host.check_output(
        "runuser -u flaskapp -- %s/current/venv/bin/python -c %s", ROOT,
        "import importlib.metadata as m; print(m.version('gunicorn'), m.version('PyYAML'), m.version('Flask'))")


def test_the_collection_replaced_the_pins_it_overrides(host):
    assert versions(host) == "23.0.0 6.0.2 3.1.3"


def test_pages_and_database(host):
    assert "Guestbook" in curl(host)
    assert curl(host, "/", "-o /dev/null -w '%{http_code}' --data-urlencode message=from-an-old-layout") == "302"
    assert "from-an-old-layout" in curl(host)
    count = host.check_output(
        "runuser -u postgres -- psql -d flaskapp -Atc \"SELECT count(*) FROM entries WHERE message = 'from-an-old-layout'\"")
    assert count == "1"
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


def test_the_re_run_left_the_virtualenv_untouched(host):
    """Molecule's idempotence step ran site.yml again (changed=0): nothing in the live
    virtualenv is newer than the stamp written right after pip built it."""
    venv = ROOT + "/current/venv"
    assert host.file(venv + "/.flaskstack-build").exists
    assert host.check_output("find %s/ -mindepth 1 -newer %s/.flaskstack-build | head -5", venv, venv) == ""


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
