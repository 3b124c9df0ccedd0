"""The app role on a real container: release layout, .env, SECRET_KEY, migrations."""
import re

ROOT = "/srv/flaskapp"


def release_dir(host):
    return host.file(ROOT + "/current").linked_to


def test_app_user_is_a_system_user_without_login_shell(host):
    user = host.user("flaskapp")
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


def test_current_points_at_a_release_named_after_its_commit(host):
    target = release_dir(host)
    assert re.fullmatch(ROOT + r"/releases/[0-9a-f]{12}", target)
    head = host.check_output("git -C %s rev-parse HEAD", target)
    assert head.startswith(target.rsplit("/", 1)[1])
    tag = host.check_output("git -C /srv/git/guestbook.git rev-parse 'v1.0^{commit}'")
    assert head == tag


def test_env_file_is_private_to_the_app_user(host):
    env = host.file(ROOT + "/shared/.env")
    assert env.user == "flaskapp"
    assert env.mode == 0o600
    content = env.content_string
    assert re.search(r"^SECRET_KEY='[A-Za-z0-9]{64}'$", content, re.M)
    assert "DATABASE_URL='sqlite:////srv/flaskapp/shared/guestbook.db'" in content
    assert "FLASK_CONFIG='production'" in content
    assert host.file(release_dir(host) + "/.env").linked_to == ROOT + "/shared/.env"


def test_secret_key_survives_the_second_run(host):
    first = host.file("/root/first-run-secret-key").content_string.strip()
    env = host.file(ROOT + "/shared/.env").content_string
    assert len(first) == 64
    assert "SECRET_KEY='%s'" % first in env


def test_gunicorn_and_driver_are_in_the_release_virtualenv(host):
    pip = host.check_output("%s/venv/bin/pip freeze", release_dir(host))
    assert "gunicorn==23.0.0" in pip
    assert "psycopg2-binary==" in pip
    assert "Flask-Migrate==4.1.0" in pip


def test_migrations_created_the_tables(host):
    query = (
        "import sqlite3; c = sqlite3.connect('/srv/flaskapp/shared/guestbook.db');"
        "print(sorted(r[0] for r in c.execute(\"select name from sqlite_master where type='table'\")));"
        "print(c.execute('select version_num from alembic_version').fetchone()[0])"
    )
    out = host.check_output("python3 -c %s", query)
    assert "'entries'" in out
    assert "0fa6799e3123" in out


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
