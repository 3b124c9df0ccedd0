import json

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.flaskstack.deploy.plugins.filter.pip_requirements import pip_requirements

LOCK = {
    "_meta": {"hash": {"sha256": "x"}},
    "default": {
        "flask": {"hashes": ["sha256:a"], "version": "==3.1.3"},
        "psycopg2-binary": {"version": "==2.9.10", "markers": "python_version >= '3.8'"},
        "requests": {"version": "==2.32.3", "extras": ["socks"]},
        "mylib": {"git": "https://git.example.org/mylib.git", "ref": "0123abc"},
        "app": {"path": ".", "editable": True},
        "anyver": {"version": "*"},
    },
    "develop": {"pytest": {"version": "==8.0.0"}},
}


def test_pipfile_lock_gives_the_locked_default_packages():
    out = pip_requirements(json.dumps(LOCK), "sub/Pipfile.lock")
    assert out.splitlines() == [
        "anyver",
        "flask==3.1.3",
        "mylib @ git+https://git.example.org/mylib.git@0123abc",
        "psycopg2-binary==2.9.10 ; python_version >= '3.8'",
        "requests[socks]==2.32.3",
    ]
    assert "pytest" not in out


def test_pipfile_lock_without_default_fails():
    with pytest.raises(AnsibleFilterError, match="default"):
        pip_requirements('{"develop": {}}', "Pipfile.lock")


def test_pipfile_lock_that_is_not_json_fails():
    with pytest.raises(AnsibleFilterError, match="JSON"):
        pip_requirements("[[", "Pipfile.lock")


PYPROJECT = """
[project]
name = "blog"
dependencies = ["flask>=3", "gunicorn"]
[project.optional-dependencies]
mail = ["flask-mail==0.10.0"]
"""


def test_pyproject_dependencies_and_extras():
    assert pip_requirements(PYPROJECT, "pyproject.toml") == "flask>=3\ngunicorn\n"
    assert pip_requirements(PYPROJECT, "pyproject.toml", ["mail"]).splitlines()[-1] == "flask-mail==0.10.0"


def test_pyproject_unknown_extra_names_it():
    with pytest.raises(AnsibleFilterError, match="'sms'"):
        pip_requirements(PYPROJECT, "pyproject.toml", ["sms"])


def test_poetry_pyproject_says_what_to_do():
    with pytest.raises(AnsibleFilterError, match="export a requirements file"):
        pip_requirements('[tool.poetry.dependencies]\nflask = "^3"\n', "pyproject.toml")


def test_other_file_names_fail():
    with pytest.raises(AnsibleFilterError, match="neither"):
        pip_requirements("flask", "requirements.txt")
