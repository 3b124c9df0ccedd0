"""The app role on a real container: release layout, .env, SECRET_KEY, virtualenv, migrations."""
import hashlib
import json
import os
import re

from testinfra.utils.ansible_runner import AnsibleRunner

# The web host; the git host serves the repository over SSH.
testinfra_hosts = AnsibleRunner(os.environ["MOLECULE_INVENTORY_FILE"]).get_hosts("webservers")

ROOT = "/srv/flaskapp"
MIGRATIONS = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "examples", "guestbook", "migrations", "versions"
)


def release_dir(host):
    return host.file(ROOT + "/current").linked_to


def head_revision():
    """The revision examples/guestbook/migrations ends at: the one no other revises."""
    revisions, revised = set(), set()
    for name in os.listdir(MIGRATIONS):
        if name.endswith(".py"):
            with open(os.path.join(MIGRATIONS, name)) as source:
                text = source.read()
            revisions.add(re.search(r"^revision = '(\w+)'", text, re.M).group(1))
            down = re.search(r"^down_revision = '(\w+)'", text, re.M)
            if down:
                revised.add(down.group(1))
    heads = revisions - revised
    assert len(heads) == 1, heads
    return heads.pop()


def as_app(host, command, *args):
    return host.check_output("runuser -u flaskapp -- " + command, *args)


def test_app_user_is_a_system_user_without_login_shell(host):
    user = host.user("flaskapp")
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000
    assert user.home == ROOT
    assert user.group == "flaskapp"


def test_current_points_at_a_release_of_app_version(host):
    target = release_dir(host)
    assert re.fullmatch(ROOT + r"/releases/[0-9a-f]{12}", target)
    head = as_app(host, "git -C %s rev-parse HEAD", target)
    tag = host.check_output("git -C /srv/git/guestbook.git rev-parse 'v1.0^{commit}'")
    assert head == tag
    assert target.endswith("/" + tag[:12])
    assert as_app(host, "git -C %s status --porcelain --untracked-files=no", target) == ""


def test_release_is_a_shallow_checkout_over_ssh(host):
    target = release_dir(host)
    assert as_app(host, "git -C %s rev-parse --is-shallow-repository", target) == "true"
    assert as_app(host, "git -C %s rev-list --count HEAD", target) == "1"
    assert as_app(host, "git -C %s remote get-url origin", target).startswith("ssh://git@")


def test_deploy_key_and_host_keys_are_the_app_users_alone(host):
    ssh_dir = host.file(ROOT + "/.ssh")
    assert (ssh_dir.user, ssh_dir.mode) == ("flaskapp", 0o700)
    key = host.file(ROOT + "/.ssh/git_deploy_key")
    assert (key.user, key.group, key.mode) == ("flaskapp", "flaskapp", 0o600)
    with open(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"] + "/deploy_key") as source:
        assert key.content_string == source.read()
    known_hosts = host.file(ROOT + "/.ssh/git_known_hosts").content_string.splitlines()
    assert len(known_hosts) == 1 and known_hosts[0].split()[1] == "ssh-ed25519"
    for release in host.file(ROOT + "/releases").listdir():
        assert not host.file("%s/releases/%s/.ssh" % (ROOT, release)).exists


def test_release_code_belongs_to_the_app_user_and_is_readable(host):
    target = host.file(release_dir(host))
    assert target.user == "flaskapp"
    assert target.mode & 0o005 == 0o005
    assert host.file(ROOT).user == "root"


def test_env_file_is_private_to_the_app_user(host):
    env = host.file(ROOT + "/shared/.env")
    assert env.user == "flaskapp"
    assert env.group == "flaskapp"
    assert env.mode == 0o600
    content = env.content_string
    assert re.search(r"^SECRET_KEY='[A-Za-z0-9]{64}'$", content, re.M)
    assert re.search(r"^DATABASE_URL='sqlite:////srv/flaskapp/shared/guestbook\.db'$", content, re.M)
    assert re.search(r"^FLASK_APP='wsgi:app'$", content, re.M)
    assert re.search(r"^FLASK_CONFIG='production'$", content, re.M)
    assert host.file(release_dir(host) + "/.env").linked_to == ROOT + "/shared/.env"
    shared = host.file(ROOT + "/shared")
    assert shared.mode == 0o750


def test_secret_key_file_is_private_to_the_app_user(host):
    key = host.file(ROOT + "/shared/secret_key")
    assert key.user == "flaskapp"
    assert key.mode == 0o600


def test_secret_key_survives_the_second_run(host):
    first = host.file("/root/first-run-secret-key").content_string.strip()
    env = host.file(ROOT + "/shared/.env").content_string
    assert re.fullmatch(r"[A-Za-z0-9]{64}", first)
    assert "SECRET_KEY='%s'\n" % first in env


def test_requirements_gunicorn_and_driver_are_in_the_release_virtualenv(host):
    venv = release_dir(host) + "/venv"
    pip = host.check_output("%s/bin/pip freeze", venv)
    assert "gunicorn==23.0.0" in pip
    assert "psycopg2-binary==2.9.10" in pip
    assert "Flask-Migrate==4.1.0" in pip
    # Installed is not enough: each must import in the venv, as the app user.
    out = as_app(
        host,
        "%s/bin/python -c %s",
        venv,
        "import flask_migrate, gunicorn, psycopg2; print(gunicorn.__version__, psycopg2.__libpq_version__ > 0)",
    )
    assert out == "23.0.0 True"


def test_release_virtualenv_is_stamped_with_the_inputs_it_was_built_from(host):
    release = release_dir(host)
    stamp = host.file(release + "/venv/.flaskstack-build")
    assert stamp.user == "flaskapp"
    assert re.fullmatch(r"[0-9a-f]{64}\n", stamp.content_string)
    # One requirements file: the app's pins, then the collection's packages.
    lines = host.file(release + "/.flaskstack-effective-requirements.txt").content_string.splitlines()
    assert "Flask==3.1.3" in lines
    assert lines[-2:] == ["gunicorn==23.0.0", "psycopg2-binary==2.9.10"]


def test_overridden_pins_are_not_in_the_pinning_release(host):
    # side_effect built the branch pins-overridden, whose requirements/prod.txt pins
    # gunicorn==21.2.0 and, in common.txt, PyYAML==5.4.1; app_extra_pip_packages had PyYAML==6.0.2.
    commit = host.check_output("git -C /srv/git/guestbook.git rev-parse pins-overridden")
    venv = "%s/releases/%s/venv" % (ROOT, commit[:12])
    out = as_app(
        host,
        "%s/bin/python -c %s",
        venv,
        "import importlib.metadata as m; print(m.version('gunicorn'), m.version('PyYAML'), m.version('Flask'))",
    )
    assert out == "23.0.0 6.0.2 3.1.3"


def test_releases_share_a_virtualenv_only_when_built_from_the_same_inputs(host):
    # The pinning release's requirements differ from the live release's: each links to one of
    # its own under venvs/, made by the app user.
    commit = host.check_output("git -C /srv/git/guestbook.git rev-parse pins-overridden")
    live = host.file(release_dir(host) + "/venv")
    pins = host.file("%s/releases/%s/venv" % (ROOT, commit[:12]))
    assert live.is_symlink and pins.is_symlink
    assert live.linked_to != pins.linked_to
    for venv in (live.linked_to, pins.linked_to):
        assert os.path.dirname(venv) == ROOT + "/venvs"
        assert host.file(venv).user == "flaskapp"


def test_migrations_brought_the_database_to_the_committed_head(host):
    query = (
        "import sqlite3; c = sqlite3.connect('/srv/flaskapp/shared/guestbook.db');"
        "print(','.join(sorted(r[0] for r in c.execute(\"select name from sqlite_master where type='table'\"))));"
        "print(c.execute('select version_num from alembic_version').fetchone()[0]);"
        "print(','.join(r[1] for r in c.execute('pragma table_info(entries)')))"
    )
    tables, revision, columns = host.check_output("python3 -c %s", query).splitlines()
    assert tables.split(",") == ["alembic_version", "entries"]
    assert revision == head_revision()
    assert columns.split(",") == ["id", "author", "message", "created_at"]


def test_first_migration_reported_changed_and_later_runs_did_not(host):
    # Idempotence proves the later runs reported ok; this is the first run's record.
    first = json.loads(host.file("/root/first-run-migration.json").content_string)
    assert first["changed"] is True
    assert "Running upgrade  -> %s" % head_revision() in first["output"]


def test_database_belongs_to_the_app_user(host):
    assert host.file(ROOT + "/shared/guestbook.db").user == "flaskapp"


def test_app_serves_its_page_with_the_release_environment(host):
    # The release answers a request in-process with the same environment gunicorn gets.
    script = (
        "from wsgi import app; r = app.test_client().get('/');"
        "print(r.status_code, b'Molecule guestbook' in r.data)"
    )
    out = host.check_output(
        "cd %s && set -a && . ./.env && set +a && runuser -u flaskapp -- venv/bin/python -c %s",
        release_dir(host),
        script,
    )
    assert out == "200 True"


def test_log_directory_is_writable_by_the_app_user(host):
    log_dir = host.file("/var/log/flaskapp")
    assert log_dir.user == "flaskapp"
    assert log_dir.group == "adm"
    assert log_dir.mode == 0o750


def test_deploy_command_got_a_secret_from_the_app_environment(host):
    """`"$MAIL_PASSWORD"` in a deploy command expanded to the value in shared/.env."""
    seen = host.file(ROOT + "/shared/mail-password.sha256")
    assert seen.user == "flaskapp"
    digest = hashlib.sha256(b"molecule-mail-password-3f9c2a").hexdigest()
    assert seen.content_string.split()[0] == digest
