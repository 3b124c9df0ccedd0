# Copyright: flaskstack maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Render a mapping as a .env file that systemd and python-dotenv read alike."""

from __future__ import annotations

DOCUMENTATION = r"""
name: to_dotenv
author: flaskstack maintainers
version_added: 0.1.0
short_description: Render a mapping as .env lines readable by systemd and python-dotenv
description:
  - Turns a mapping of environment variables into C(KEY='value') lines, sorted by key.
  - The same file serves systemd's C(EnvironmentFile=), python-dotenv (C(load_dotenv)) and
    C(sh) (C(set -a; . .env)), which disagree on escapes inside double quotes; single-quoted
    values are read literally by all three, except that python-dotenv expands C(${NAME}) even
    there.
  - A value with a single quote (a factory entry point such as C(app:create_app('production')))
    is written in double quotes instead, which all three read literally as long as the value has
    no double quote, C($), backquote or backslash.
  - Fails, naming the key, on a key that is not a valid variable name and on a value that one of
    the readers would understand differently (a backslash, a line break, C(${), or a single quote
    together with a double quote, C($) or a backquote).
positional: _input
options:
  _input:
    description: Mapping of variable names to values. Values are converted to strings; C(None) is an empty string.
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Write the app's environment file
  ansible.builtin.copy:
    content: "{{ {'FLASK_APP': 'wsgi:app', 'SECRET_KEY': secret} | flaskstack.deploy.to_dotenv }}"
    dest: /srv/app/shared/.env
    mode: "0600"
"""

RETURN = r"""
_value:
  description: The file's text, one C(KEY='value') (or C(KEY="value")) line per key, ending with a newline.
  type: str
"""

import re

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_UNSAFE = ("\\", "\n", "\r", "\x00", "${")
# Special inside double quotes, to sh at least: a value with a single quote must have none.
_DOUBLE_QUOTED_SPECIAL = ('"', "$", "`")


def to_dotenv(variables):
    if not isinstance(variables, dict):
        raise AnsibleFilterError("to_dotenv expects a mapping, got %s" % type(variables).__name__)
    lines = []
    for key in sorted(variables, key=to_text):
        name = to_text(key)
        if not _NAME.match(name):
            raise AnsibleFilterError(
                "to_dotenv: %r is not a valid environment variable name "
                "(letters, digits and _, not starting with a digit)" % name
            )
        value = variables[key]
        if isinstance(value, bool):
            value = "true" if value else "false"
        value = "" if value is None else to_text(value)
        if any(char in value for char in _UNSAFE) or (
            "'" in value and any(char in value for char in _DOUBLE_QUOTED_SPECIAL)
        ):
            raise AnsibleFilterError(
                "to_dotenv: the value of %s contains a backslash, a line break, ${, or a single quote "
                "together with a double quote, $ or `, which systemd, python-dotenv and sh would "
                "read differently" % name
            )
        if "'" in value:
            lines.append('%s="%s"' % (name, value))
        else:
            lines.append("%s='%s'" % (name, value))
    return "".join(line + "\n" for line in lines)


class FilterModule:
    def filters(self):
        return {"to_dotenv": to_dotenv}
