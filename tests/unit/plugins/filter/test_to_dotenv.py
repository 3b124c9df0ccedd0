import subprocess

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskstack.deploy.plugins.filter.to_dotenv import to_dotenv


def test_renders_sorted_single_quoted_lines():
    text = to_dotenv({"SECRET_KEY": "s3cr$t", "FLASK_APP": "wsgi:app", "EMPTY": None, "DEBUG": False})
    assert text == "DEBUG='false'\nEMPTY=''\nFLASK_APP='wsgi:app'\nSECRET_KEY='s3cr$t'\n"


def test_empty_mapping_gives_empty_file():
    assert to_dotenv({}) == ""


def test_numbers_become_strings():
    assert to_dotenv({"PORT": 8000}) == "PORT='8000'\n"


@pytest.mark.parametrize("name", ["1ST", "WITH-DASH", "has space", ""])
def test_rejects_invalid_names(name):
    with pytest.raises(AnsibleFilterError, match="not a valid environment variable name"):
        to_dotenv({name: "x"})


def test_a_value_with_a_single_quote_is_double_quoted():
    text = to_dotenv({"FLASK_APP": "guestbook:create_app('production')"})
    assert text == "FLASK_APP=\"guestbook:create_app('production')\"\n"


@pytest.mark.parametrize("value", [
    "back\\slash", "two\nlines", "pa${HOME}ss", "it's \"quoted\"", "it's $HOME", "it's `id`",
])
def test_rejects_values_read_differently_and_names_the_key(value):
    with pytest.raises(AnsibleFilterError, match="MAIL_PASSWORD"):
        to_dotenv({"MAIL_PASSWORD": value})


def test_rejects_non_mapping():
    with pytest.raises(AnsibleFilterError, match="mapping"):
        to_dotenv(["A=1"])


READ_BACK = {"A": "x y", "B": "p@ss:w/rd$HOME#1", "C": "", "D": "app:create_app('production')", "E": "\"x\" #2"}


def test_python_dotenv_reads_it_back(tmp_path):
    dotenv = pytest.importorskip("dotenv")
    path = tmp_path / ".env"
    path.write_text(to_dotenv(READ_BACK))
    assert dotenv.dotenv_values(path) == READ_BACK


def test_sh_reads_it_back(tmp_path):
    path = tmp_path / ".env"
    path.write_text(to_dotenv(READ_BACK))
    script = "set -a; . %s; printf '%%s\\0' \"$A\" \"$B\" \"$C\" \"$D\" \"$E\"" % path
    out = subprocess.run(["sh", "-c", script], check=True, capture_output=True, text=True, env={}).stdout
    assert out.split("\0")[:-1] == [READ_BACK[k] for k in "ABCDE"]
