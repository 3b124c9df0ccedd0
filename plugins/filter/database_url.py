# Copyright: flaskstack maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build a SQLAlchemy database URL with the credentials escaped."""

from __future__ import annotations

DOCUMENTATION = r"""
name: database_url
author: flaskstack maintainers
version_added: 0.1.0
short_description: Build a SQLAlchemy-style database URL from its parts
description:
  - Builds C(scheme://user:password@host:port/name) with the user name and password
    percent-encoded, so passwords holding C(@), C(/), C(:) or C(%) still give a valid URL.
  - The scheme follows the engine, for the driver the app role installs (psycopg2 for PostgreSQL,
    PyMySQL for MySQL/MariaDB) unless I(scheme) names another.
  - For MySQL/MariaDB the URL names the connection's character set (C(?charset=utf8mb4) by
    default). Without it some ORMs pick one themselves (Flask-SQLAlchemy 2.x adds
    C(charset=utf8), MySQL's 3-byte UTF-8), and 4-byte characters such as emoji are refused
    although the tables are utf8mb4.
positional: _input
options:
  _input:
    description: Database engine.
    type: str
    choices: [postgresql, mysql]
    required: true
  user:
    description: Login name.
    type: str
    required: true
  password:
    description: Password; empty for none.
    type: str
    default: ""
  host:
    description: Host name or address; an IPv6 address is put in brackets.
    type: str
    default: localhost
  port:
    description: TCP port.
    type: int
  name:
    description: Database name.
    type: str
    required: true
  scheme:
    description: URL scheme to use instead of the engine's default.
    type: str
  charset:
    description:
      - MySQL/MariaDB only, the connection's character set, added as C(?charset=...).
      - An empty string leaves it out. Ignored for PostgreSQL.
    type: str
    default: utf8mb4
  query:
    description:
      - Further parameters of the URL's query string, name to value, in their order (for
        PostgreSQL C(sslmode) and C(sslrootcert)). Empty values are left out.
    type: dict
    default: {}
"""

EXAMPLES = r"""
- name: Build the app's DATABASE_URL
  ansible.builtin.set_fact:
    app_database_url: "{{ 'postgresql' | flaskstack.deploy.database_url(user='blog', password=pw, host='db1', port=5432, name='blog') }}"

- name: The same, verifying the server's certificate against a CA file
  ansible.builtin.set_fact:
    app_database_url: >-
      {{ 'postgresql' | flaskstack.deploy.database_url(user='blog', password=pw, host='10.0.0.5', name='blog',
                                                       query={'sslmode': 'verify-full', 'sslrootcert': '/srv/ca.crt'}) }}
"""

RETURN = r"""
_value:
  description: >-
    The URL, for example C(postgresql://blog:p%40ss@db1:5432/blog),
    C(postgresql://blog:p%40ss@db1/blog?sslmode=verify-full&sslrootcert=/srv/ca.crt) or
    C(mysql+pymysql://blog:p%40ss@db1:3306/blog?charset=utf8mb4).
  type: str
"""

from urllib.parse import quote, urlencode

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_SCHEMES = {"postgresql": "postgresql", "mysql": "mysql+pymysql"}


def database_url(engine, user, password="", host="localhost", port=None, name=None, scheme=None, charset="utf8mb4", query=None):
    engine = to_text(engine)
    if engine not in _SCHEMES and not scheme:
        raise AnsibleFilterError(
            "database_url: unknown engine %r (known: %s)" % (engine, ", ".join(sorted(_SCHEMES)))
        )
    if not user or not name:
        raise AnsibleFilterError("database_url: user and name are required")
    credentials = quote(to_text(user), safe="")
    if password:
        credentials += ":" + quote(to_text(password), safe="")
    host = to_text(host or "localhost")
    if ":" in host and not host.startswith("["):
        host = "[%s]" % host
    netloc = "%s@%s" % (credentials, host)
    if port not in (None, ""):
        try:
            netloc += ":%d" % int(port)
        except (TypeError, ValueError):
            raise AnsibleFilterError("database_url: port must be a number, got %r" % (port,))
    url = "%s://%s/%s" % (scheme or _SCHEMES[engine], netloc, quote(to_text(name), safe=""))
    params = []
    if engine == "mysql" and charset:
        params.append(("charset", to_text(charset)))
    if query is not None and not isinstance(query, dict):
        raise AnsibleFilterError("database_url: query must be a dictionary, got %r" % (query,))
    params.extend((to_text(key), to_text(value)) for key, value in (query or {}).items()
                  if value not in (None, ""))
    if params:
        url += "?" + urlencode(params, quote_via=quote, safe="/")
    return url


class FilterModule:
    def filters(self):
        return {"database_url": database_url}
