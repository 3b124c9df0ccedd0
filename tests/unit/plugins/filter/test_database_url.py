import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskstack.deploy.plugins.filter.database_url import database_url


def test_postgresql_url():
    assert (
        database_url("postgresql", user="blog", password="pw", host="db1", port=5432, name="blog")
        == "postgresql://blog:pw@db1:5432/blog"
    )


def test_mysql_uses_pymysql():
    assert (
        database_url("mysql", user="u", password="p", port=3306, name="d")
        == "mysql+pymysql://u:p@localhost:3306/d?charset=utf8mb4"
    )


def test_mysql_url_names_the_4_byte_charset():
    # Flask-SQLAlchemy 2.x adds charset=utf8 (3 bytes, no emoji) to MySQL URLs that name none.
    url = database_url("mysql", user="u", name="d", scheme="mysql+mysqldb")
    assert url == "mysql+mysqldb://u@localhost/d?charset=utf8mb4"


def test_mysql_charset_can_be_changed_or_left_out():
    assert database_url("mysql", user="u", name="d", charset="utf8mb3").endswith("/d?charset=utf8mb3")
    assert database_url("mysql", user="u", name="d", charset="") == "mysql+pymysql://u@localhost/d"


def test_postgresql_url_has_no_charset():
    assert "?" not in database_url("postgresql", user="u", name="d")


def test_special_characters_are_escaped():
    url = database_url("postgresql", user="a@b", password="p@ss/w:rd%", host="db", name="x y")
    assert url == "postgresql://a%40b:p%40ss%2Fw%3Ard%25@db/x%20y"


def test_ipv6_host_is_bracketed():
    assert database_url("postgresql", user="u", host="::1", port=5432, name="d") == "postgresql://u@[::1]:5432/d"


def test_scheme_override():
    assert database_url("postgresql", user="u", name="d", scheme="postgresql+psycopg").startswith("postgresql+psycopg://")


def test_unknown_engine():
    with pytest.raises(AnsibleFilterError, match="unknown engine"):
        database_url("oracle", user="u", name="d")


def test_bad_port():
    with pytest.raises(AnsibleFilterError, match="port"):
        database_url("postgresql", user="u", name="d", port="five")


def test_sqlalchemy_parses_it_back():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = sqlalchemy.engine.make_url(
        database_url("postgresql", user="blog", password="p@ss/w:rd%", host="db1", port=5432, name="blog")
    )
    assert (url.username, url.password, url.host, url.port, url.database) == ("blog", "p@ss/w:rd%", "db1", 5432, "blog")


def test_mysql_url_for_a_remote_mariadb():
    url = database_url("mysql", user="flaskapp", password="p@ss/w:rd%", host="db1.example.com", port="3306", name="guest_book")
    assert url == "mysql+pymysql://flaskapp:p%40ss%2Fw%3Ard%25@db1.example.com:3306/guest_book?charset=utf8mb4"


def test_sqlalchemy_parses_a_mysql_url_back():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = sqlalchemy.engine.make_url(
        database_url("mysql", user="flaskapp", password="p@ss/w:rd%", host="db1", port=3306, name="guest_book")
    )
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "mysql+pymysql", "flaskapp", "p@ss/w:rd%", "db1", 3306, "guest_book"
    )
    # What the driver gets: Flask-SQLAlchemy 2.x's query.setdefault("charset", "utf8") keeps it.
    assert url.query == {"charset": "utf8mb4"}


def test_query_adds_tls_parameters_in_order():
    url = database_url("postgresql", user="blog", password="pw", host="10.0.0.5", port=5432, name="blog",
                       query={"sslmode": "verify-full", "sslrootcert": "/srv/app/shared/database ca.crt"})
    assert url == ("postgresql://blog:pw@10.0.0.5:5432/blog"
                   "?sslmode=verify-full&sslrootcert=/srv/app/shared/database%20ca.crt")


def test_query_leaves_out_empty_values_and_follows_the_charset():
    assert database_url("postgresql", user="u", name="d", query={"sslmode": ""}) == "postgresql://u@localhost/d"
    assert database_url("mysql", user="u", name="d", query={"ssl_ca": "/ca.pem"}) == (
        "mysql+pymysql://u@localhost/d?charset=utf8mb4&ssl_ca=/ca.pem")


def test_query_must_be_a_dictionary():
    with pytest.raises(AnsibleFilterError, match="query"):
        database_url("postgresql", user="u", name="d", query="sslmode=require")


def test_sqlalchemy_reads_the_tls_parameters_back():
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = sqlalchemy.engine.make_url(
        database_url("postgresql", user="u", name="d", host="db1",
                     query={"sslmode": "verify-full", "sslrootcert": "/srv/app/shared/database-ca.crt"}))
    assert url.query == {"sslmode": "verify-full", "sslrootcert": "/srv/app/shared/database-ca.crt"}
