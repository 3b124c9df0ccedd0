"""The mysql role on a real MariaDB, and the sample app on another host using it over the network."""
import json
import os
import re
import time
import uuid

import pytest
import testinfra
from testinfra.utils.ansible_runner import AnsibleRunner

INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
_RUNNER = AnsibleRunner(INVENTORY)
# The `host` fixture is the database host; the web host has its own fixture.
testinfra_hosts = _RUNNER.get_hosts("dbservers")

DATABASE = "guest_book"
USER = "flaskapp"
APP_PYTHON = "/srv/flaskapp/current/venv/bin/python"
SOCKET = "/run/flaskapp/gunicorn.sock"
BACKUP_DIR = "/var/backups/mysql"
BACKUP = "mysql-%s-backup" % DATABASE

CA_FILE = "/srv/flaskapp/shared/database-ca.crt"

# Runs a statement as the app's user with PyMySQL (the app's own driver, from its virtualenv)
# and prints {"rows": [...]} or {"error": [code, message]}. With DB_SSL_CA over TLS, the server's
# certificate verified against that file and the host name.
CLIENT = """
import json, os, sys
import pymysql
ssl = {"ca": os.environ["DB_SSL_CA"], "check_hostname": True} if os.environ.get("DB_SSL_CA") else None
try:
    db = pymysql.connect(host=sys.argv[1], user=sys.argv[2], password=os.environ["DB_PASSWORD"],
                         database=sys.argv[3] or None, connect_timeout=5, autocommit=True, ssl=ssl)
    with db.cursor() as cursor:
        cursor.execute(sys.argv[4])
        print(json.dumps({"rows": [list(map(str, row)) for row in cursor.fetchall()]}))
except pymysql.MySQLError as error:
    print(json.dumps({"error": [error.args[0], str(error.args[-1])]}))
"""

# Adds a guestbook entry through the app's own model and reads it back in a new session, run
# with the app's environment (shared/.env) and its virtualenv. The URL first gets what
# Flask-SQLAlchemy 2.x does to a MySQL URL that names no charset (charset=utf8, MySQL's 3-byte
# UTF-8), as apps still on 2.x connect; a URL naming utf8mb4 keeps it. Prints JSON.
APP_ROUND_TRIP = """
import json, os, sys
from sqlalchemy.engine import make_url
url = make_url(os.environ["DATABASE_URL"])
if url.drivername.startswith("mysql") and "charset" not in url.query:
    url = url.update_query_dict({"charset": "utf8"})
os.environ["DATABASE_URL"] = url.render_as_string(hide_password=False)
from guestbook import create_app, db
from guestbook.models import Entry
with create_app().app_context():
    try:
        db.session.add(Entry(author=sys.argv[1], message=sys.argv[2]))
        db.session.commit()
    except Exception as error:
        print(json.dumps({"error": str(getattr(error, "orig", error))}))
        sys.exit()
    db.session.remove()
    entry = db.session.execute(db.select(Entry).filter_by(author=sys.argv[1])).scalar_one()
    print(json.dumps({"charset": url.query["charset"], "message": entry.message}))
"""


@pytest.fixture(scope="module")
def password():
    """The throwaway password the shared test config generated for this run."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "db-password")
    with open(path) as stream:
        return stream.read().split()[0]


@pytest.fixture(scope="module")
def web():
    name = _RUNNER.get_hosts("webservers")[0]
    return testinfra.get_host("ansible://" + name, ansible_inventory=INVENTORY)


@pytest.fixture(scope="module")
def db_address(host):
    return host.check_output("hostname -I").split()[0]


@pytest.fixture(scope="module")
def web_address(web):
    return web.check_output("hostname -I").split()[0]


def root_sql(host, query, database=""):
    """Run a statement as MariaDB's root, through the unix socket (tab-separated output)."""
    return host.check_output("mariadb -N -B -e %s %s", query, database)


def app_sql(client, password, address, query, database=DATABASE, user=USER, tls=True):
    """Run a statement as the app's user over TCP from `client`, with the app's PyMySQL; from
    the web host over TLS (its accounts require it) unless `tls` is false."""
    python = APP_PYTHON if client.file(APP_PYTHON).exists else "python3"
    ca = CA_FILE if tls and python == APP_PYTHON else ""
    out = client.check_output(
        "DB_SSL_CA=%s DB_PASSWORD=%s %s -c %s %s %s %s %s", ca, password, python, CLIENT, address, user, database, query
    )
    return json.loads(out)


# The app's own connection, from the web host: its DATABASE_URL (read there, so the password
# never reaches the test's output) through SQLAlchemy and PyMySQL from the release, with the
# host or query parameters replaced (NAME= drops one). Prints what the server says of the
# session's TLS, or the refusal.
APP_PROBE = r"""
import json, sys
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
url = make_url(next(l.split("=", 1)[1].strip("'") for l in open("/srv/flaskapp/shared/.env").read().splitlines()
                    if l.startswith("DATABASE_URL=")))
if sys.argv[1] != "-":
    url = url.set(host=sys.argv[1])
query = dict(url.query)
for arg in sys.argv[2:]:
    name, value = arg.split("=", 1)
    query.pop(name, None)
    if value:
        query[name] = value
try:
    with create_engine(url.set(query=query)).connect() as conn:
        rows = conn.execute(text(
            "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.SESSION_STATUS "
            "WHERE VARIABLE_NAME IN ('SSL_VERSION', 'SSL_CIPHER') UNION ALL SELECT 'USER', CURRENT_USER()")).all()
    print(json.dumps({"connected": {name.lower(): value for name, value in rows}}))
except Exception as error:
    print(json.dumps({"refused": str(getattr(error, "orig", error)).replace(url.password or "\0", "***")}))
"""


def app_probe(web, host="-", **query):
    web.run_expect([0], "cat > /root/mysql_probe.py <<'EOF'\n%sEOF" % APP_PROBE)
    args = ["%s=%s" % item for item in query.items()]
    return json.loads(web.check_output("%s /root/mysql_probe.py %s" + " %s" * len(args), APP_PYTHON, host, *args))


# --- The server and what a default installation may leave open --------------------------------


def test_server_is_running_and_enabled(host):
    service = host.service("mariadb")
    assert service.is_running
    assert service.is_enabled
    version = root_sql(host, "SELECT VERSION()")
    release = host.system_info.release.split(".")[0]
    assert version.startswith({"12": "10.11.", "13": "11.8."}[release]), version


def test_no_anonymous_accounts_and_no_test_database(host):
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''") == "0"
    assert "test" not in root_sql(host, "SHOW DATABASES").split()
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.db WHERE Db LIKE 'test%'") == "0"


def test_root_exists_only_for_the_local_socket(host):
    assert root_sql(host, "SELECT Host FROM mysql.global_priv WHERE User = 'root'") == "localhost"
    assert root_sql(host, "SHOW CREATE USER root@localhost").endswith(
        "IDENTIFIED VIA mysql_native_password USING 'invalid' OR unix_socket"
    )


@pytest.mark.parametrize("secret", ["", "invalid", "root"])
def test_root_cannot_log_in_over_tcp(host, secret):
    # Over TCP the unix_socket plugin cannot identify the client, and no password matches.
    result = host.run("mariadb --protocol=TCP -h 127.0.0.1 -u root --password=%s -e 'SELECT 1'", secret)
    assert result.rc != 0
    assert "Access denied for user 'root'@'127.0.0.1'" in result.stderr


def test_other_unix_users_cannot_log_in_as_root(host):
    result = host.run("runuser -u nobody -- mariadb -u root -e 'SELECT 1'")
    assert result.rc != 0
    assert "Access denied for user 'root'@'localhost'" in result.stderr


# --- The app's database and user ------------------------------------------------------------


def test_app_database_is_utf8mb4(host):
    row = root_sql(
        host,
        "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA "
        "WHERE SCHEMA_NAME = '%s'" % DATABASE,
    )
    assert row.split("\t") == ["utf8mb4", "utf8mb4_unicode_ci"]


def test_app_user_exists_for_local_and_listed_hosts_only(host, web_address):
    hosts = root_sql(host, "SELECT Host FROM mysql.global_priv WHERE User = '%s' ORDER BY Host" % USER)
    assert sorted(hosts.split()) == sorted(["localhost", "127.0.0.1", "::1", web_address, "198.51.100.%"])


def test_app_user_has_its_privileges_on_its_database_only(host, web_address):
    grants = root_sql(host, "SHOW GRANTS FOR '%s'@'%s'" % (USER, web_address)).splitlines()
    assert len(grants) == 2, grants
    assert grants[0].startswith("GRANT USAGE ON *.* TO `%s`@`%s`" % (USER, web_address))
    # The underscore is escaped: the grant does not cover guestXbook.
    match = re.fullmatch(r"GRANT (.+) ON `guest\\\\_book`\.\* TO `%s`@`%s`" % (USER, re.escape(web_address)), grants[1])
    assert match, grants[1]
    assert sorted(match.group(1).split(", ")) == sorted([
        "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX", "ALTER",
        "CREATE TEMPORARY TABLES", "CREATE VIEW", "SHOW VIEW",
    ])


def test_app_user_works_in_its_database_from_the_web_host(web, password, db_address, web_address):
    # By name, as the app reaches it (the network's DNS).
    result = app_sql(web, password, testinfra_hosts[0], "SELECT CURRENT_USER(), DATABASE()")
    assert result == {"rows": [["%s@%s" % (USER, web_address), DATABASE]]}
    for statement in (
        "CREATE TABLE login_check (id INT PRIMARY KEY)",
        "INSERT INTO login_check VALUES (42)",
        "ALTER TABLE login_check ADD COLUMN note VARCHAR(20)",
        "DROP TABLE login_check",
    ):
        assert "rows" in app_sql(web, password, db_address, statement), statement


@pytest.mark.parametrize("database", ["mysql", "information_schema_x", "guestXbook"])
def test_app_user_cannot_use_other_databases(host, web, password, db_address, web_address, database):
    root_sql(host, "CREATE DATABASE IF NOT EXISTS guestXbook")
    try:
        result = app_sql(web, password, db_address, "SELECT 1", database=database)
        assert result["error"][0] == 1044, result
        assert "Access denied for user '%s'@'%s' to database '%s'" % (USER, web_address, database) in result["error"][1]
    finally:
        root_sql(host, "DROP DATABASE IF EXISTS guestXbook")


def test_app_user_has_no_administrative_powers(web, password, db_address):
    for statement, code in (
        ("CREATE DATABASE sneaky", 1044),
        ("CREATE USER sneaky", 1227),
        ("SELECT * FROM mysql.global_priv", 1142),
        ("SHOW PROCESSLIST", None),
        ("SELECT LOAD_FILE('/etc/passwd')", None),
    ):
        result = app_sql(web, password, db_address, statement)
        if code:
            assert result.get("error", [None])[0] == code, (statement, result)
        elif statement.startswith("SHOW"):
            # Without PROCESS only its own connection is listed.
            assert all(row[1] == USER for row in result["rows"]), result
        else:
            # Without FILE, LOAD_FILE returns NULL.
            assert result == {"rows": [["None"]]}, result


def test_wrong_password_is_refused(web, password, db_address, web_address):
    result = app_sql(web, password + "x", db_address, "SELECT 1")
    assert result["error"][0] == 1045
    assert "Access denied for user '%s'@'%s'" % (USER, web_address) in result["error"][1]


def test_app_user_logs_in_locally_with_its_password(host, password):
    result = host.run(
        "mariadb --protocol=TCP -h 127.0.0.1 -u %s --password=%s -N -B -e 'SELECT CURRENT_USER()' %s",
        USER, password, DATABASE,
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "%s@127.0.0.1" % USER


def test_hosts_not_listed_are_refused(host, password, db_address):
    # The database host's own network address is not among mysql_app_client_hosts.
    result = host.run(
        "mariadb --protocol=TCP -h %s -u %s --password=%s -e 'SELECT 1' %s", db_address, USER, password, DATABASE
    )
    assert result.rc != 0
    assert "Host '%s' is not allowed to connect" % db_address in result.stderr or "Access denied" in result.stderr


# --- Network and settings ------------------------------------------------------------------------


def test_server_listens_on_the_bind_addresses_only(host, db_address):
    assert host.socket("tcp://127.0.0.1:3306").is_listening
    assert host.socket("tcp://%s:3306" % db_address).is_listening
    assert not host.socket("tcp://0.0.0.0:3306").is_listening
    assert root_sql(host, "SELECT @@bind_address, @@port, @@skip_name_resolve").split("\t") == [
        "127.0.0.1,%s" % db_address, "3306", "1"
    ]


def test_settings_follow_the_configured_memory_and_come_from_the_drop_in(host):
    # molecule.yml: mysql_memory_mb 2048, max_connections 60, slow_query_log, long_query_time 2.
    assert root_sql(
        host,
        "SELECT @@innodb_buffer_pool_size DIV 1048576, @@max_connections, @@slow_query_log, "
        "@@long_query_time, @@character_set_server, @@collation_server",
    ).split("\t") == ["512", "60", "1", "2.000000", "utf8mb4", "utf8mb4_unicode_ci"]
    drop_in = host.file("/etc/mysql/mariadb.conf.d/70-flaskstack.cnf")
    assert drop_in.user == "root"
    assert drop_in.mode == 0o644
    assert "innodb_buffer_pool_size = 512M" in drop_in.content_string.splitlines()


# --- The app on MariaDB ------------------------------------------------------------------------


def test_app_tables_are_in_the_app_database(host):
    tables = root_sql(
        host,
        "SELECT TABLE_NAME, ENGINE, TABLE_COLLATION FROM information_schema.TABLES "
        "WHERE TABLE_SCHEMA = '%s' ORDER BY TABLE_NAME" % DATABASE,
    )
    assert [row.split("\t") for row in tables.splitlines()] == [
        ["alembic_version", "InnoDB", "utf8mb4_unicode_ci"],
        ["entries", "InnoDB", "utf8mb4_unicode_ci"],
    ]
    assert len(root_sql(host, "SELECT version_num FROM alembic_version", DATABASE)) == 12
    # Nowhere else: no stray SQLite file on the web host either.
    assert root_sql(host, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_NAME = 'entries'") == "1"


def test_app_environment_points_at_mariadb(web):
    env = web.file("/srv/flaskapp/shared/.env").content_string
    url = next(line for line in env.splitlines() if line.startswith("DATABASE_URL="))
    # Only the part after the password, which must not reach the test's output.
    tail = url.split("@", 1)[1]
    assert url.startswith("DATABASE_URL='mysql+pymysql://flaskapp:"), tail
    assert re.fullmatch(
        r"flaskstack-mysql-db-[a-z]+:3306/guest_book\?charset=utf8mb4"
        r"&ssl_ca=/srv/flaskapp/shared/database-ca\.crt&ssl_check_hostname=true'",
        tail,
    ), tail


# --- TLS between the app and the server ---------------------------------------------------------


def test_server_presents_a_certificate_for_its_name_and_address(host, web, db_address):
    assert root_sql(host, "SELECT @@have_ssl, @@ssl_cert, @@ssl_key").split("\t") == [
        "YES", "/etc/mysql/tls/server.crt", "/etc/mysql/tls/server.key"
    ]
    key = host.file("/etc/mysql/tls/server.key")
    assert (key.user, key.mode) == ("mysql", 0o600)
    names = host.check_output("openssl x509 -noout -ext subjectAltName -in /etc/mysql/tls/server.crt")
    assert "DNS:%s" % testinfra_hosts[0] in names and "IP Address:%s" % db_address in names, names
    # The web host trusts this very certificate, read from the database host.
    ca = web.file(CA_FILE)
    assert ca.content_string.strip() == host.file("/etc/mysql/tls/server.crt").content_string.strip()
    assert (ca.user, ca.group, ca.mode) == ("root", "flaskapp", 0o644)


def test_web_hosts_accounts_require_tls_and_local_ones_do_not(host, web_address):
    rows = root_sql(host, "SELECT Host, ssl_type FROM mysql.user WHERE User = '%s' ORDER BY Host" % USER)
    assert dict(row.split("\t") if "\t" in row else (row, "") for row in rows.splitlines()) == {
        "localhost": "", "127.0.0.1": "", "::1": "", web_address: "ANY", "198.51.100.%": "ANY",
    }, rows


def test_the_apps_connection_is_encrypted_and_verified(web, web_address):
    connected = app_probe(web)["connected"]
    assert connected["ssl_version"].startswith("TLSv1."), connected
    assert connected["ssl_cipher"], connected
    assert connected["user"] == "%s@%s" % (USER, web_address)
    # The certificate is checked against ssl_ca: the system's CAs do not vouch for it.
    refused = app_probe(web, ssl_ca="/etc/ssl/certs/ca-certificates.crt")["refused"]
    assert "CERTIFICATE_VERIFY_FAILED" in refused, refused
    # And the host name too: a name the certificate does not hold, for the same server, fails.
    db_ip = web.check_output("getent hosts %s", testinfra_hosts[0]).split()[0]
    # Docker bind-mounts /etc/hosts: it is rewritten in place, not replaced.
    web.run_expect([0], "cp /etc/hosts /root/hosts.orig && echo '%s flaskstack-mysql-alias' >> /etc/hosts" % db_ip)
    try:
        refused = app_probe(web, "flaskstack-mysql-alias")["refused"]
    finally:
        web.run_expect([0], "cat /root/hosts.orig > /etc/hosts && rm /root/hosts.orig")
    assert "Hostname mismatch" in refused or "doesn't match" in refused, refused


def test_clear_text_logins_from_the_web_host_are_refused(web, password, db_address, web_address):
    # The app's URL without its TLS parameters: the right password, no TLS, no login.
    refused = app_probe(web, ssl_ca="", ssl_check_hostname="")["refused"]
    assert "(1045, \"Access denied for user '%s'@'%s'" % (USER, web_address) in refused, refused
    result = app_sql(web, password, db_address, "SELECT 1", tls=False)
    assert result["error"][0] == 1045, result
    assert app_sql(web, password, db_address, "SELECT 1") == {"rows": [["1"]]}


def test_the_running_apps_connections_come_from_the_tls_only_account(host, web, web_address):
    # A page that reads the database, so gunicorn's app holds a connection; the server matched
    # it to the web host's account, which admits TLS connections only.
    web.check_output("curl -fsS -o /dev/null --unix-socket %s http://localhost/", SOCKET)
    peers = root_sql(host, "SELECT DISTINCT SUBSTRING_INDEX(HOST, ':', 1) FROM information_schema.PROCESSLIST "
                           "WHERE USER = '%s' AND DB = '%s'" % (USER, DATABASE))
    assert peers.split() == [web_address], peers
    assert root_sql(host, "SELECT ssl_type FROM mysql.user WHERE User = '%s' AND Host = '%s'" % (USER, web_address)) == "ANY"


def test_emoji_round_trip_through_the_app_with_a_flask_sqlalchemy_2_connection(host, web):
    # The URL's charset=utf8mb4 survives Flask-SQLAlchemy 2.x's default; without it the
    # connection is 3-byte utf8 and MariaDB refuses the emoji ("Incorrect string value").
    author = "emoji-" + uuid.uuid4().hex[:12]
    marker = "4-byte \U0001F600 \U0001F44D and 3-byte \u2713"
    out = web.check_output(
        "runuser -u flaskapp -- sh -c %s sh %s %s %s",
        'set -a && . /srv/flaskapp/shared/.env && cd /srv/flaskapp/current && exec venv/bin/python -c "$1" "$2" "$3"',
        APP_ROUND_TRIP, author, marker,
    )
    assert json.loads(out) == {"charset": "utf8mb4", "message": marker}
    stored = root_sql(host, "SELECT HEX(message) FROM entries WHERE author = '%s'" % author, DATABASE)
    assert stored == marker.encode().hex().upper()
    page = web.check_output("curl -fsS --unix-socket %s http://localhost/", SOCKET)
    assert marker in page


def test_guestbook_entry_round_trip(host, web):
    marker = "mariadb-" + uuid.uuid4().hex[:12] + " ✓ 😀"
    health = json.loads(web.check_output("curl -fsS --unix-socket %s http://localhost/healthz", SOCKET))
    assert health == {"database": "mysql", "status": "ok"}
    web.check_output(
        "curl -fsS -o /dev/null --unix-socket %s --data-urlencode author=tester --data-urlencode %s http://localhost/",
        SOCKET, "message=" + marker,
    )
    page = web.check_output("curl -fsS --unix-socket %s http://localhost/", SOCKET)
    assert marker in page
    # Stored as the same UTF-8 bytes, 4-byte emoji included (utf8mb4).
    stored = root_sql(host, "SELECT HEX(message) FROM entries WHERE author = 'tester' ORDER BY id DESC LIMIT 1", DATABASE)
    assert stored == marker.encode().hex().upper()


# --- Backups -------------------------------------------------------------------------------------


def dumps(host):
    out = host.check_output("find %s -maxdepth 1 -name '%s-*.sql.gz' -printf '%%f\\n' | sort", BACKUP_DIR, DATABASE)
    return out.split()


def test_backup_timer_is_scheduled(host):
    timer = host.service(BACKUP + ".timer")
    assert timer.is_enabled
    assert timer.is_running
    assert host.check_output("systemctl show -P Persistent %s.timer", BACKUP) == "yes"
    backup_dir = host.file(BACKUP_DIR)
    assert backup_dir.user == "mysql"
    assert backup_dir.mode == 0o700


def test_backup_restores_lost_data(host, web):
    root_sql(
        host,
        "CREATE TABLE restore_check (id INT PRIMARY KEY, note VARCHAR(40)); "
        "INSERT INTO restore_check VALUES (1, 'written before the backup')",
        DATABASE,
    )
    entries = root_sql(host, "SELECT COUNT(*) FROM entries", DATABASE)
    assert int(entries) >= 1
    before = set(dumps(host))
    host.run_expect([0], "systemctl start %s.service", BACKUP)
    new = sorted(set(dumps(host)) - before)
    assert len(new) == 1, new
    dump = "%s/%s" % (BACKUP_DIR, new[0])
    assert host.file(dump).user == "mysql"
    assert host.file(dump).mode == 0o600
    assert not host.file("%s/.%s.sql.partial" % (BACKUP_DIR, DATABASE)).exists
    assert "--single-transaction" in host.check_output("cat /usr/local/sbin/%s", BACKUP)

    # Lose data: a row changed, a row deleted, then a whole table dropped.
    root_sql(host, "UPDATE restore_check SET note = 'changed after'; DELETE FROM entries; DROP TABLE restore_check", DATABASE)
    assert root_sql(host, "SELECT COUNT(*) FROM entries", DATABASE) == "0"

    # The README's restore procedure: the whole database from the dump.
    host.run_expect([0], "mariadb -e 'DROP DATABASE %s'" % DATABASE)
    host.run_expect([0], "zcat %s | mariadb", dump)
    assert root_sql(host, "SELECT id, note FROM restore_check", DATABASE) == "1\twritten before the backup"
    assert root_sql(host, "SELECT COUNT(*) FROM entries", DATABASE) == entries
    root_sql(host, "DROP TABLE restore_check", DATABASE)
    # The database came back with its character set, and the app with its data.
    assert root_sql(
        host, "SELECT DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '%s'" % DATABASE
    ) == "utf8mb4_unicode_ci"
    page = web.check_output("curl -fsS --unix-socket %s http://localhost/", SOCKET)
    assert "tester" in page


def test_backup_deletes_only_expired_dumps(host):
    old = "%s/%s-20000101T000000Z.sql.gz" % (BACKUP_DIR, DATABASE)
    recent = "%s/%s-20000102T000000Z.sql.gz" % (BACKUP_DIR, DATABASE)
    other = "%s/other-20000101T000000Z.sql.gz" % BACKUP_DIR
    # molecule.yml keeps 7 days.
    host.run_expect([0], "touch -d '8 days ago' %s %s && touch -d '6 days ago' %s", old, other, recent)
    try:
        host.run_expect([0], "systemctl start %s.service", BACKUP)
        assert not host.file(old).exists
        assert host.file(recent).exists
        assert host.file(other).exists
    finally:
        host.run("rm -f %s %s %s", old, recent, other)


def test_failed_backup_keeps_old_dumps_and_fails_the_unit(host):
    old = "%s/%s-20000101T000000Z.sql.gz" % (BACKUP_DIR, DATABASE)
    host.run_expect([0], "touch -d '30 days ago' %s", old)
    host.run_expect([0], "systemctl stop mariadb")
    try:
        result = host.run("systemctl start %s.service", BACKUP)
        assert result.rc != 0
        assert host.file(old).exists
        assert host.check_output("systemctl show -P Result %s.service", BACKUP) != "success"
        assert not host.file("%s/.%s.sql.partial" % (BACKUP_DIR, DATABASE)).exists
    finally:
        host.run("rm -f %s", old)
        host.run_expect([0], "systemctl start mariadb")
        host.run("systemctl reset-failed %s.service", BACKUP)
        deadline = time.monotonic() + 30
        while host.run("mariadb -e 'SELECT 1'").rc != 0 and time.monotonic() < deadline:
            time.sleep(1)
