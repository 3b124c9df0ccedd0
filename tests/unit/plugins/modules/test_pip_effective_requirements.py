import pytest

from ansible_collections.flaskstack.deploy.plugins.modules.pip_effective_requirements import (
    RequirementsError,
    build_stamp,
    effective_requirements,
    logical_lines,
    normalize,
    requirement_name,
    shareable,
)


def files(tmp_path, tree):
    for name, text in tree.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return str(tmp_path)


def read(path):
    with open(path) as f:
        return f.read()


def body(text):
    """The requirement lines, without the module's comments."""
    return [line for line in text.splitlines() if not line.startswith("#")]


def test_normalize_follows_pep_503():
    assert normalize("Flask_SQLAlchemy") == "flask-sqlalchemy"
    assert normalize("zope.interface") == "zope-interface"
    assert normalize("PyYAML") == "pyyaml"


@pytest.mark.parametrize(
    "line, name",
    [
        ("gunicorn==21.2.0", "gunicorn"),
        ("Werkzeug >= 2.0", "werkzeug"),
        ("uvicorn[standard]==0.30", "uvicorn"),
        ('psycopg2-binary==2.9.9 ; python_version >= "3.8"', "psycopg2-binary"),
        ("mylib @ https://example.com/mylib-1.0.tar.gz", "mylib"),
        ("requests", "requests"),
        ("gunicorn==23.0.0 --hash=sha256:abc", "gunicorn"),
        ("https://example.com/pkg-1.0.tar.gz", None),
        ("./vendor/pkg", None),
        ("-e git+https://example.com/x.git#egg=x", None),
        ("--index-url https://pypi.example.com/simple", None),
    ],
)
def test_requirement_name(line, name):
    assert requirement_name(line) == name


def test_logical_lines_join_continuations_and_drop_comments():
    text = "# top\nflask==3.0 \\\n    --hash=sha256:abc\n\ngunicorn  # the server\nurl#frag\n"
    assert logical_lines(text) == ["flask==3.0      --hash=sha256:abc", "gunicorn", "url#frag"]


def test_override_replaces_the_apps_pin_of_the_same_normalised_name(tmp_path):
    root = files(tmp_path, {"requirements.txt": "Flask==3.1.3\ngunicorn==21.2.0\nPyYAML==5.4.1\nWerkzeug==2.0.3\n"})
    text, constraints, replaced = effective_requirements(
        root + "/requirements.txt", ["gunicorn==23.0.0", "pyyaml==6.0.2", "werkzeug==3.1.9"], read
    )
    assert body(text) == ["Flask==3.1.3", "gunicorn==23.0.0", "pyyaml==6.0.2", "werkzeug==3.1.9"]
    assert replaced == ["gunicorn", "pyyaml", "werkzeug"]
    assert constraints == ""
    # The replaced pins stay visible as comments.
    assert "# replaced by gunicorn==23.0.0: gunicorn==21.2.0" in text


def test_a_later_override_replaces_an_earlier_one():
    text, constraints, replaced = effective_requirements(None, ["gunicorn==23.0.0", "psycopg2-binary==2.9.10", "Gunicorn==22.0.0"], read)
    assert body(text) == ["Gunicorn==22.0.0", "psycopg2-binary==2.9.10"]
    assert replaced == []
    assert constraints == ""


def test_nested_includes_are_followed_relative_to_the_including_file(tmp_path):
    root = files(
        tmp_path,
        {
            "requirements/prod.txt": "-r common.txt\ngunicorn==21.2.0\n",
            "requirements/common.txt": "--requirement=base/core.txt\nFlask==3.1.3\n",
            "requirements/base/core.txt": "-c ../pins.txt\nclick\n",
            "requirements/pins.txt": "click==8.1.0\nPyYAML==5.4.1\n",
        },
    )
    text, constraints, replaced = effective_requirements(
        root + "/requirements/prod.txt", ["gunicorn==23.0.0", "PyYAML==6.0.2"], read
    )
    assert body(text) == ["click", "Flask==3.1.3", "gunicorn==23.0.0", "PyYAML==6.0.2"]
    assert body(constraints) == ["click==8.1.0"]
    assert replaced == ["pyyaml", "gunicorn"]


def test_other_lines_stay_as_they_are(tmp_path):
    lines = [
        "--index-url https://pypi.example.com/simple",
        "--extra-index-url=https://other.example.com/simple",
        "-e git+https://example.com/lib.git@v1#egg=gunicorn",
        "https://example.com/pkg-1.0.tar.gz",
        "./vendor/localpkg",
        "-r https://example.com/remote-requirements.txt",
        'tomli==2.0.1 ; python_version < "3.11"',
        "--find-links https://example.com/wheels",
    ]
    root = files(tmp_path, {"requirements.txt": "\n".join(lines) + "\n"})
    text, constraints, replaced = effective_requirements(root + "/requirements.txt", ["gunicorn==23.0.0"], read)
    assert body(text) == lines + ["gunicorn==23.0.0"]
    assert replaced == []
    assert constraints == ""


def test_relative_find_links_of_an_included_file_becomes_absolute(tmp_path):
    root = files(tmp_path, {"requirements/prod.txt": "-r common.txt\n", "requirements/common.txt": "-f ./wheels\nflask\n"})
    (tmp_path / "requirements" / "wheels").mkdir()
    text = effective_requirements(root + "/requirements/prod.txt", [], read)[0]
    assert body(text) == ["-f %s/requirements/wheels" % root, "flask"]


def test_an_include_cycle_is_read_once(tmp_path):
    root = files(tmp_path, {"a.txt": "-r b.txt\nflask\n", "b.txt": "-r a.txt\nclick\n"})
    text = effective_requirements(root + "/a.txt", [], read)[0]
    assert body(text) == ["click", "flask"]


def test_a_missing_include_is_an_error_naming_it(tmp_path):
    root = files(tmp_path, {"requirements.txt": "-r common.txt\n"})
    with pytest.raises(RequirementsError, match="common.txt"):
        effective_requirements(root + "/requirements.txt", [], read)


def test_an_override_without_a_name_is_an_error():
    with pytest.raises(RequirementsError, match="names no package"):
        effective_requirements(None, ["https://example.com/x.tar.gz"], read)


def test_the_stamp_changes_with_each_input():
    base = build_stamp("a" * 40, "flask\n", "", "3.11")
    assert base == build_stamp("a" * 40, "flask\n", "", "3.11")
    assert base != build_stamp("b" * 40, "flask\n", "", "3.11")
    assert base != build_stamp("a" * 40, "flask\ngunicorn\n", "", "3.11")
    assert base != build_stamp("a" * 40, "flask\n", "click==8\n", "3.11")
    assert base != build_stamp("a" * 40, "flask\n", "", "3.13")
    assert base != build_stamp("a" * 40, "flask\n", "", "3.11", project=True)


def test_a_stamp_without_the_project_is_the_one_written_before_the_option_existed():
    # Upgrading the collection must not rebuild every live virtualenv.
    # The value build_stamp gave before the project option.
    assert build_stamp("a" * 40, "flask\n", "", "3.11", project=False) == "142cab8de62bceddf0e5bff5c2910ff176aa7db182b76566a1bc860d3556463b"


def test_psycopg2_and_its_binary_build_replace_each_other(tmp_path):
    """Both install the import package psycopg2: the collection's driver replaces the app's
    source pin, and an operator's source pin replaces the app's binary one."""
    root = files(tmp_path, {"requirements.txt": "Flask==3.1.3\npsycopg2==2.8.6\n", "binary.txt": "psycopg2_binary==2.9.3\n"})
    text, constraints, replaced = effective_requirements(root + "/requirements.txt", ["psycopg2-binary==2.9.10"], read)
    assert body(text) == ["Flask==3.1.3", "psycopg2-binary==2.9.10"]
    assert replaced == ["psycopg2"]
    text, constraints, replaced = effective_requirements(root + "/binary.txt", ["psycopg2==2.9.9"], read)
    assert body(text) == ["psycopg2==2.9.9"]
    assert replaced == ["psycopg2-binary"]
    assert constraints == ""


@pytest.mark.parametrize(
    "text",
    [
        "Flask==3.1.3\ngunicorn==23.0.0\n",
        "--index-url https://pypi.example/simple\nFlask>=3 ; python_version >= '3.11'\n",
        "Flask==3.1.3 --hash=sha256:0123\n-c .flaskstack-effective-requirements.txt.constraints\n",
        "# only comments\n",
    ],
)
def test_requirements_by_name_from_an_index_are_shareable(text):
    assert shareable(text, "click==8.1.7\n")


@pytest.mark.parametrize(
    "text",
    [
        "-e .\n",
        ".\n",
        "./vendor/lib\n",
        "/opt/wheels/lib-1.0-py3-none-any.whl\n",
        "https://example.org/lib-1.0.tar.gz\n",
        "git+https://example.org/lib.git@main\n",
        "lib @ https://example.org/lib-1.0.tar.gz\n",
        "--find-links /srv/blog/releases/abc/wheels\nlib\n",
        "-c https://example.org/constraints.txt\n",
    ],
)
def test_a_line_that_may_install_release_files_or_changing_urls_is_not_shareable(text):
    assert not shareable("Flask==3.1.3\n" + text, "")


def test_a_constraint_from_a_url_is_not_shareable():
    assert not shareable("Flask==3.1.3\n", "lib @ file:///srv/blog/releases/abc/lib\n")
