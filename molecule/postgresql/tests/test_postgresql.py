"""The postgresql role on a real PostgreSQL: the app's login, its limits, client authentication."""
import os

import pytest

DATABASE = "blog"
USER = "blog"


@pytest.fixture(scope="module")
def password():
    """The throwaway password the shared test config generated for this run."""
    path = os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "db-password")
    with open(path) as stream:
        return stream.read().split()[0]


@pytest.fixture(scope="module")
def version(host):
    return {"12": "15", "13": "17"}[host.system_info.release.split(".")[0]]


def admin_sql(host, query, database="postgres"):
    """Run a query as the postgres superuser (peer login over the socket)."""
    return host.check_output("runuser -u postgres -- psql -XAtq -d %s -c %s", database, query)


def app_psql(host, password, query, database=DATABASE, address="127.0.0.1", user=USER):
    """Run a query as the app's role with a password, over TCP unless address is a directory."""
    return host.run(
        "PGPASSWORD=%s PGCONNECT_TIMEOUT=5 psql -XAtq -h %s -U %s -d %s -c %s",
        password, address, user, database, query,
    )


def test_server_is_running_and_enabled(host, version):
    for unit in ("postgresql", "postgresql@%s-main" % version):
        service = host.service(unit)
        assert service.is_running, unit
        assert service.is_enabled, unit
    assert admin_sql(host, "SHOW server_version_num")[:2] == version


def test_app_user_logs_in_with_password_and_creates_a_table(host, password):
    result = app_psql(
        host, password,
        "CREATE TABLE login_check (id int); INSERT INTO login_check VALUES (42); "
        "SELECT current_user, current_database(), sum(id) FROM login_check; DROP TABLE login_check",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "%s|%s|42" % (USER, DATABASE)


def test_app_user_logs_in_over_the_socket_with_password(host, password):
    # The test containers have no IPv6; the ::1 rule is checked in pg_hba_file_rules below.
    result = app_psql(host, password, "SELECT current_user", address="/var/run/postgresql")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == USER


def test_app_user_has_no_administrative_powers(host, password):
    row = admin_sql(
        host,
        "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls "
        "FROM pg_roles WHERE rolname = '%s'" % USER,
    )
    assert row == "t|f|f|f|f|f"
    result = app_psql(host, password, "CREATE DATABASE sneaky")
    assert result.rc != 0
    assert "permission denied to create database" in result.stderr
    result = app_psql(host, password, "CREATE ROLE sneaky")
    assert result.rc != 0
    assert "permission denied to create role" in result.stderr


def test_app_user_owns_only_its_database(host):
    owned = admin_sql(
        host, "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = '%s')" % USER
    )
    assert owned.split() == [DATABASE]


def test_public_may_not_connect_to_the_app_database(host):
    acl = admin_sql(host, "SELECT datacl FROM pg_database WHERE datname = '%s'" % DATABASE)
    # Only the app's role (and superusers, which ignore ACLs) may connect: no "=c" entry for PUBLIC.
    entries = acl.strip("{}").split(",")
    assert not [e for e in entries if e.startswith("=")], acl
    assert admin_sql(host, "SELECT has_database_privilege('%s', '%s', 'CONNECT')" % (USER, DATABASE)) == "t"
    admin_sql(host, "CREATE ROLE hba_probe LOGIN")
    try:
        assert admin_sql(host, "SELECT has_database_privilege('hba_probe', '%s', 'CONNECT')" % DATABASE) == "f"
    finally:
        admin_sql(host, "DROP ROLE hba_probe")


@pytest.mark.parametrize("database", ["postgres", "template1"])
def test_app_user_cannot_connect_to_other_databases(host, password, database):
    result = app_psql(host, password, "SELECT 1", database=database)
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr


def test_wrong_or_missing_password_is_refused(host, password):
    result = app_psql(host, password + "x", "SELECT 1")
    assert result.rc != 0
    assert "password authentication failed" in result.stderr
    result = host.run("psql -XAtq -w -h 127.0.0.1 -U %s -d %s -c 'SELECT 1' </dev/null", USER, DATABASE)
    assert result.rc != 0
    assert "no password supplied" in result.stderr


def test_password_is_stored_as_scram_verifier(host):
    stored = admin_sql(host, "SELECT rolpassword FROM pg_authid WHERE rolname = '%s'" % USER)
    assert stored.startswith("SCRAM-SHA-256$")
    assert admin_sql(host, "SHOW password_encryption") == "scram-sha-256"


def test_hba_rules_are_only_the_administrator_and_the_app(host):
    rows = admin_sql(
        host,
        "SELECT type, array_to_string(database, ','), array_to_string(user_name, ','), "
        "coalesce(address, ''), coalesce(netmask, ''), auth_method, coalesce(error, '') "
        "FROM pg_hba_file_rules ORDER BY line_number",
    ).splitlines()
    assert rows == [
        "local|all|postgres|||peer|",
        "local|blog|blog|||scram-sha-256|",
        "host|blog|blog|127.0.0.1|255.255.255.255|scram-sha-256|",
        "host|blog|blog|::1|ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff|scram-sha-256|",
        "hostssl|blog|blog|192.0.2.0|255.255.255.0|scram-sha-256|",
        "hostssl|blog|blog|2001:db8::|ffff:ffff:ffff:ffff::|scram-sha-256|",
    ]


def test_other_local_users_cannot_log_in(host):
    result = host.run("runuser -u nobody -- psql -XAtq -w -d %s -U %s -c 'SELECT 1'", DATABASE, "nobody")
    assert result.rc != 0
    assert "no pg_hba.conf entry" in result.stderr


def test_hba_file_is_private(host, version):
    hba = host.file("/etc/postgresql/%s/main/pg_hba.conf" % version)
    assert hba.user == "postgres"
    assert hba.group == "postgres"
    assert hba.mode == 0o640


def test_hba_rules_carry_their_comments_on_their_own_lines(host, version):
    """Each rule says whom it is for, on its line, in the order the role lists them."""
    content = host.file("/etc/postgresql/%s/main/pg_hba.conf" % version).content_string
    rules = [line for line in content.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    comments = [line.split("#", 1)[1].strip() if "#" in line else None for line in rules]
    assert comments[:4] == [
        "database administrator, as the unix user postgres",
        "the app, over the unix socket",
        "the app, over IPv4 loopback",
        "the app, over IPv6 loopback",
    ]
    assert None not in comments


# --- Server settings --------------------------------------------------------------------------


def setting(host, name):
    return admin_sql(host, "SELECT setting || coalesce(unit, '') FROM pg_settings WHERE name = '%s'" % name)


def test_server_listens_where_configured(host):
    # converge.yml: localhost plus the container's own address.
    address = host.check_output("hostname -I").split()[0]
    assert host.socket("tcp://127.0.0.1:5432").is_listening
    assert host.socket("tcp://%s:5432" % address).is_listening
    assert not host.socket("tcp://0.0.0.0:5432").is_listening
    assert admin_sql(host, "SHOW listen_addresses") == "localhost,%s" % address


def test_hosts_not_listed_are_refused_over_the_network(host, password):
    # The container's own address is not among postgresql_app_client_addresses.
    address = host.check_output("hostname -I").split()[0]
    result = app_psql(host, password, "SELECT 1", address=address)
    assert result.rc != 0
    assert "no pg_hba.conf entry for host \"%s\"" % address in result.stderr


def test_memory_settings_follow_the_configured_memory(host):
    # converge.yml: postgresql_memory_mb 2048, max_connections 50.
    assert admin_sql(host, "SHOW shared_buffers") == "512MB"
    assert admin_sql(host, "SHOW effective_cache_size") == "1GB"
    assert admin_sql(host, "SHOW work_mem") == "10MB"
    assert admin_sql(host, "SHOW maintenance_work_mem") == "102MB"
    assert admin_sql(host, "SHOW max_connections") == "50"


def test_operator_settings_win_and_come_from_the_drop_in(host, version):
    rows = admin_sql(
        host,
        "SELECT name, setting, sourcefile FROM pg_settings "
        "WHERE name IN ('log_min_duration_statement', 'random_page_cost', 'log_connections') ORDER BY name",
    ).splitlines()
    drop_in = "/etc/postgresql/%s/main/conf.d/50-flaskstack.conf" % version
    assert rows == [
        "log_connections|on|" + drop_in,
        "log_min_duration_statement|250|" + drop_in,
        "random_page_cost|1.1|" + drop_in,
    ]
    # Nothing waits for a restart and nothing was refused after the last run.
    assert admin_sql(host, "SELECT count(*) FROM pg_settings WHERE pending_restart") == "0"
    assert admin_sql(host, "SELECT count(*) FROM pg_file_settings WHERE error IS NOT NULL") == "0"


# --- Extensions -------------------------------------------------------------------------------


def test_extensions_work_for_the_app(host, password):
    result = app_psql(
        host, password,
        "SELECT round(similarity('postgresql', 'postgres')::numeric, 2), 'Blog'::citext = 'BLOG'::citext",
    )
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "0.67|t"


# --- Backups ----------------------------------------------------------------------------------

BACKUP_DIR = "/var/backups/postgresql"
BACKUP = "postgresql-%s-backup" % DATABASE


def dumps(host):
    out = host.check_output("find %s -maxdepth 1 -name '%s-*.dump' -printf '%%f\\n' | sort", BACKUP_DIR, DATABASE)
    return out.split()


def test_backup_timer_is_scheduled(host):
    timer = host.service(BACKUP + ".timer")
    assert timer.is_enabled
    assert timer.is_running
    assert host.check_output("systemctl show -P Persistent %s.timer", BACKUP) == "yes"
    backup_dir = host.file(BACKUP_DIR)
    assert backup_dir.user == "postgres"
    assert backup_dir.mode == 0o700


def test_backup_restores_lost_data(host, password):
    setup = app_psql(
        host, password,
        "CREATE TABLE restore_check (id int PRIMARY KEY, note text); "
        "INSERT INTO restore_check VALUES (1, 'written before the backup')",
    )
    assert setup.rc == 0, setup.stderr
    before = set(dumps(host))
    host.run_expect([0], "systemctl start %s.service", BACKUP)
    new = sorted(set(dumps(host)) - before)
    assert len(new) == 1, new
    dump = "%s/%s" % (BACKUP_DIR, new[0])
    assert host.file(dump).user == "postgres"
    assert host.file(dump).mode == 0o600
    assert not host.file(dump + ".partial").exists

    # Lose the data: a row changed, then the whole database dropped.
    assert app_psql(host, password, "UPDATE restore_check SET note = 'changed after'").rc == 0
    admin_sql(host, "DROP DATABASE %s" % DATABASE)
    assert app_psql(host, password, "SELECT 1").rc != 0

    # The README's restore procedure.
    host.run_expect(
        [0], "cd /tmp && runuser -u postgres -- pg_restore --create --exit-on-error --dbname=postgres %s", dump
    )
    result = app_psql(host, password, "SELECT id, note FROM restore_check; DROP TABLE restore_check")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "1|written before the backup"
    # Owner and access rights came back with the database.
    acl = admin_sql(host, "SELECT pg_get_userbyid(datdba), datacl FROM pg_database WHERE datname = '%s'" % DATABASE)
    assert acl.split("|")[0] == USER
    assert not [e for e in acl.split("|")[1].strip("{}").split(",") if e.startswith("=")], acl


def test_backup_deletes_only_expired_dumps(host):
    old = "%s/%s-20000101T000000Z.dump" % (BACKUP_DIR, DATABASE)
    recent = "%s/%s-20000102T000000Z.dump" % (BACKUP_DIR, DATABASE)
    other = "%s/other-20000101T000000Z.dump" % BACKUP_DIR
    # converge.yml keeps 7 days.
    host.run_expect([0], "touch -d '8 days ago' %s %s && touch -d '6 days ago' %s", old, other, recent)
    try:
        host.run_expect([0], "systemctl start %s.service", BACKUP)
        assert not host.file(old).exists
        assert host.file(recent).exists
        assert host.file(other).exists
    finally:
        host.run("rm -f %s %s %s", old, recent, other)


def test_failed_backup_keeps_old_dumps_and_fails_the_unit(host, version):
    server = "postgresql@%s-main" % version
    old = "%s/%s-20000101T000000Z.dump" % (BACKUP_DIR, DATABASE)
    host.run_expect([0], "touch -d '30 days ago' %s", old)
    host.run_expect([0], "systemctl stop %s", server)
    try:
        result = host.run("systemctl start %s.service", BACKUP)
        assert result.rc != 0
        assert host.file(old).exists
        assert host.check_output("systemctl show -P Result %s.service", BACKUP) != "success"
    finally:
        host.run("rm -f %s", old)
        host.run_expect([0], "systemctl start %s", server)
        host.run("systemctl reset-failed %s.service", BACKUP)
