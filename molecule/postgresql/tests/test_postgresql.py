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
