#!/usr/bin/python
# Copyright: flaskstack maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write the one requirements file a release's pip call installs, and the stamp of its build."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pip_effective_requirements
author: flaskstack maintainers (@flaskstack)
version_added: 0.1.0
short_description: One requirements file of an app's requirements and the packages that replace its pins
description:
  - Reads an app's pip requirements file O(src) on the managed host, follows its nested
    C(-r)/C(--requirement) and C(-c)/C(--constraint) includes (relative to the file that
    includes them, as pip does), and writes one file O(dest) with the requirements inlined, in
    which each package of O(overrides) replaces the app's requirement or constraint of the same
    name. Names are compared after PEP 503 normalisation (C(Flask_SQLAlchemy) is
    C(flask-sqlalchemy)). C(psycopg2) and C(psycopg2-binary) count as one name, as both install
    the import package C(psycopg2), and two copies would overwrite each other's files in one
    virtualenv.
  - Constraints of C(-c) files are written to a second file beside O(dest)
    (C(<dest>.constraints)), which O(dest) names with C(-c).
  - Other lines stay as they are (C(--index-url), C(-e), URLs, local paths, environment
    markers, hashes); a relative C(--find-links) directory of an included file is made absolute,
    since pip reads it relative to that file. A URL or path line names no package and is never
    replaced; C(name @ URL) is.
  - So the app's pins and the collection's packages resolve in one pip call, and a pin that no
    longer builds is never tried when an override replaces it.
  - Also returns a stamp of the build's inputs (O(commit), the written files' content and the
    major.minor version of O(python)) and whether O(stamp_file) holds that stamp already, that is
    whether the release's virtualenv is already built from these inputs.
  - With O(venvs_dir), releases share virtualenvs; see RV(venv) and RV(shared).
  - Nothing of the files' content is returned, as requirements files may hold index credentials.
options:
  src:
    description:
      - The app's requirements file, an absolute path on the managed host.
      - Omit it (or give an empty string) for an app without requirements; O(dest) then holds
        O(overrides) only.
    type: path
  dest:
    description: The requirements file to write, an absolute path on the managed host.
    type: path
    required: true
  overrides:
    description:
      - Requirement specifiers (C(name==version), C(name[extra]>=x)) added to the requirements;
        each replaces the app's requirement of the same name. A later one replaces an earlier one
        of the same name.
    type: list
    elements: str
    default: []
  commit:
    description: The release's commit, part of the stamp.
    type: str
    default: ""
  python:
    description: The Python the virtualenv is made with; its major.minor version is part of the stamp.
    type: str
    default: python3
  project:
    description:
      - Whether the app's own project (its C(pyproject.toml)) is installed into the virtualenv as
        well, after the requirements and without its dependencies (C(pip install --no-deps .)).
        Part of the stamp, so that turning it on or off rebuilds the virtualenv.
      - The module installs nothing; the caller does.
    type: bool
    default: false
  stamp_file:
    description:
      - A file holding the stamp of the last successful build (written after it), or none.
      - Not read when O(venvs_dir) is set.
    type: path
  venvs_dir:
    description:
      - A directory of virtualenvs that releases share, each named after the stamp of the inputs
        it is built from (the first 16 hex digits). Unset, each release has its own.
      - When set, the stamp leaves out O(commit), so that releases whose requirements, Python and
        packages are the same use one virtualenv, unless something installed may come from the
        release's own files or from a URL that can change (O(project), or a requirement line
        that names no package by name alone (C(-e), a local path, a URL, C(name @ URL),
        C(--find-links))). RV(shared) says which.
      - RV(built) then says whether O(stamp_name) in RV(venv) holds the stamp.
    type: path
  stamp_name:
    description: The stamp's file name inside a virtualenv of O(venvs_dir).
    type: str
    default: .flaskstack-build
extends_documentation_fragment:
  - ansible.builtin.files
attributes:
  check_mode:
    support: full
    description: Nothing is written; the result says what would be.
  diff_mode:
    support: none
    description: No diff is shown; the files may hold index credentials.
  platform:
    support: full
    platforms: posix
    description: Runs on the managed host, where the app's files are.
notes:
  - Files are written only when their content changes.
  - An override replaces the app's whole line, extras included (C(gunicorn[gevent]==21.2.0) gives way
    to C(gunicorn==23.0.0)); name the extras in the override to keep them.
  - Requirements with C(--hash) options put pip in hash-checking mode, in which every requirement
    needs a hash; give the overrides theirs (C(gunicorn==23.0.0 --hash=sha256:...)).
"""

EXAMPLES = r"""
- name: Write the effective requirements of a release
  flaskstack.deploy.pip_effective_requirements:
    src: /srv/blog/releases/abc/requirements/prod.txt
    dest: /srv/blog/releases/abc/.flaskstack-effective-requirements.txt
    overrides: [gunicorn==23.0.0, psycopg2-binary==2.9.10, Pillow==10.4.0]
    commit: abc0123456789abc0123456789abc0123456789a
    python: python3
    stamp_file: /srv/blog/releases/abc/venv/.flaskstack-build
    mode: "0644"
  register: effective

- name: Install them, unless the virtualenv is built from the same inputs already
  ansible.builtin.pip:
    requirements: /srv/blog/releases/abc/.flaskstack-effective-requirements.txt
    virtualenv: /srv/blog/releases/abc/venv
  when: not effective.built

- name: The same, with a virtualenv shared by releases built from the same inputs
  flaskstack.deploy.pip_effective_requirements:
    src: /srv/blog/releases/abc/requirements.txt
    dest: /srv/blog/releases/abc/.flaskstack-effective-requirements.txt
    overrides: [gunicorn==23.0.0]
    commit: abc0123456789abc0123456789abc0123456789a
    venvs_dir: /srv/blog/venvs
  register: shared
  # shared.venv is /srv/blog/venvs/<16 hex digits>; link the release's venv to it once built.
"""

RETURN = r"""
dest:
  description: The requirements file written.
  returned: success
  type: str
constraints:
  description: The constraints file written beside O(dest), or an empty string when there are no constraints.
  returned: success
  type: str
replaced:
  description: Normalised names of the app's requirements and constraints that an override replaced.
  returned: success
  type: list
  elements: str
  sample: [gunicorn, pyyaml]
python_version:
  description: The major.minor version of O(python), as in the stamp.
  returned: success
  type: str
  sample: "3.11"
stamp:
  description: SHA-256 of the build's inputs (commit, written content, Python version).
  returned: success
  type: str
built:
  description:
    - Whether O(stamp_file) (with O(venvs_dir), O(stamp_name) in RV(venv)) holds RV(stamp), that
      is the virtualenv is built from these inputs.
  returned: success
  type: bool
venv:
  description: The virtualenv of O(venvs_dir) for these inputs, built or not.
  returned: when O(venvs_dir) is set
  type: str
  sample: /srv/blog/venvs/3f2a9c0d4b5e6f71
shared:
  description: Whether the stamp leaves out O(commit), so that other releases may share RV(venv).
  returned: when O(venvs_dir) is set
  type: bool
"""

import hashlib
import json
import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

# A requirement's project name, as PEP 508 allows it, at the start of a line.
NAME_RE = re.compile(r"^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?=$|[\[(;=<>!~@\s])")
# A comment: at the start of a line or after whitespace (pip's rule).
COMMENT_RE = re.compile(r"(^|\s+)#.*$")
INCLUDE_RE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?<=^-r)|(?<=^-c))(\S.*)$")
FIND_LINKS_RE = re.compile(r"^(-f|--find-links)(\s*=\s*|\s+)(\S+)$")
URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class RequirementsError(Exception):
    pass


def normalize(name):
    """PEP 503 normalised project name."""
    return re.sub(r"[-_.]+", "-", name).lower()


# Distributions that install the same import package: each replaces the others' requirement.
SAME_PACKAGE = {"psycopg2-binary": "psycopg2"}


def replacement_key(name):
    """The key under which an override replaces a requirement: its name, or the name it shares."""
    return SAME_PACKAGE.get(name, name)


def requirement_name(line):
    """The normalised project name a requirement line names, or None (options, URLs, paths)."""
    if line.startswith("-") or URL_RE.match(line) or line.startswith((".", "/", "~")):
        return None
    match = NAME_RE.match(line)
    if not match:
        return None
    return normalize(match.group(1))


def logical_lines(text):
    """pip's logical lines: continuations joined, comments and blank lines dropped."""
    lines = []
    pending = ""
    for raw in text.splitlines():
        if raw.endswith("\\") and not COMMENT_RE.search(raw[:-1]):
            pending += raw[:-1] + " "
            continue
        line = COMMENT_RE.sub("", pending + raw).strip()
        pending = ""
        if line:
            lines.append(line)
    line = COMMENT_RE.sub("", pending).strip()
    if line:
        lines.append(line)
    return lines


def read_requirements(path, reader, constraint=False, seen=None):
    """Lines of PATH with its includes followed: a list of (line, is_constraint)."""
    seen = set() if seen is None else seen
    key = os.path.normpath(path)
    if key in seen:
        return []
    seen.add(key)
    try:
        text = reader(path)
    except (IOError, OSError) as e:
        raise RequirementsError("cannot read %s: %s" % (path, e))
    base = os.path.dirname(path)
    result = []
    for line in logical_lines(text):
        include = INCLUDE_RE.match(line)
        if include and not URL_RE.match(include.group(2)):
            nested = include.group(2).strip()
            nested_constraint = constraint or include.group(1) in ("-c", "--constraint")
            result.extend(read_requirements(os.path.join(base, nested), reader, nested_constraint, seen))
            continue
        find_links = FIND_LINKS_RE.match(line)
        if find_links and not URL_RE.match(find_links.group(3)) and not os.path.isabs(find_links.group(3)):
            local = os.path.normpath(os.path.join(base, find_links.group(3)))
            if os.path.isdir(local):
                line = "%s %s" % (find_links.group(1), local)
        result.append((line, constraint))
    return result


def effective_requirements(src, overrides, reader, source_label=None):
    """The text of the effective requirements and constraints files, and the names replaced.

    Returns (requirements_text, constraints_text, replaced_names); constraints_text is "" when
    the app has no constraints. The caller adds the -c line naming the constraints file.
    """
    chosen = {}
    order = []
    for spec in overrides:
        spec = spec.strip()
        name = requirement_name(spec)
        if name is None:
            raise RequirementsError("%r names no package; an override must start with a package name" % spec)
        name = replacement_key(name)
        if name not in chosen:
            order.append(name)
        chosen[name] = spec

    lines = read_requirements(src, reader) if src else []
    requirements, constraints, replaced = [], [], []
    for line, constraint in lines:
        name = requirement_name(line)
        if name is not None and replacement_key(name) in chosen:
            if name not in replaced:
                replaced.append(name)
            (constraints if constraint else requirements).append("# replaced by %s: %s" % (chosen[replacement_key(name)], line))
            continue
        (constraints if constraint else requirements).append(line)

    header = [
        "# Written by flaskstack.deploy: %s with its includes inlined," % (source_label or src or "no requirements file"),
        "# and the packages that replace its pins of the same name at the end.",
    ]
    text = "\n".join(header + requirements + ["# Replacing or added:"] + [chosen[n] for n in order]) + "\n"
    constraints_text = ""
    if constraints:
        constraints_text = "\n".join(["# Written by flaskstack.deploy: the app's constraints."] + constraints) + "\n"
    return text, constraints_text, replaced


# Options that only say where and how to fetch named packages: they keep a virtualenv shareable.
SHAREABLE_OPTIONS = (
    "-i", "--index-url", "--extra-index-url", "--trusted-host", "--pre",
    "--prefer-binary", "--only-binary", "--no-binary", "-c",
)


def shareable(requirements_text, constraints_text):
    """Whether every line installs a package by name from an index: none may install files of
    the release itself (-e, a local path) or from a URL or --find-links, which can change
    without the text changing; only then may releases of other commits share the virtualenv."""
    for line in logical_lines(requirements_text + "\n" + constraints_text):
        if line.startswith("-"):
            option = re.split(r"[\s=]", line, maxsplit=1)[0]
            if option not in SHAREABLE_OPTIONS or (option == "-c" and "://" in line):
                return False
            continue
        name = requirement_name(line)
        if name is None or re.match(r"^[^;]*@", line):
            return False
    return True


def build_stamp(commit, requirements_text, constraints_text, python_version, project=False):
    inputs = {"commit": commit, "requirements": requirements_text, "constraints": constraints_text, "python": python_version}
    # Only when set, so that stamps written before the option existed stay valid.
    if project:
        inputs["project"] = True
    data = json.dumps(inputs, sort_keys=True)
    return hashlib.sha256(to_bytes(data)).hexdigest()


def _read_text(path):
    with open(path, "rb") as f:
        return to_text(f.read(), errors="surrogate_or_strict")


def _write_if_different(module, path, text):
    """Write TEXT to PATH unless it holds it already; True when it changed (or would)."""
    try:
        if _read_text(path) == text:
            return False
    except (IOError, OSError):
        pass
    if not module.check_mode:
        tmp = "%s.tmp-%d" % (path, os.getpid())
        with open(tmp, "wb") as f:
            f.write(to_bytes(text))
        module.atomic_move(tmp, path)
    return True


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            dest=dict(type="path", required=True),
            overrides=dict(type="list", elements="str", default=[]),
            commit=dict(type="str", default=""),
            python=dict(type="str", default="python3"),
            project=dict(type="bool", default=False),
            stamp_file=dict(type="path"),
            venvs_dir=dict(type="path"),
            stamp_name=dict(type="str", default=".flaskstack-build"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    p = module.params
    dest = p["dest"]
    constraints_path = dest + ".constraints"

    try:
        text, constraints_text, replaced = effective_requirements(
            p["src"], p["overrides"], _read_text, source_label=os.path.basename(p["src"] or "") or None
        )
    except RequirementsError as e:
        module.fail_json(msg="Cannot write the effective requirements: %s" % e)

    if constraints_text:
        text += "-c %s\n" % os.path.basename(constraints_path)

    rc, out, err = module.run_command(
        [p["python"], "-c", "import sys; print('%d.%d' % sys.version_info[:2])"]
    )
    if rc != 0:
        module.fail_json(msg="Cannot run %s to read its version: %s" % (p["python"], err.strip()))
    python_version = out.strip()

    changed = _write_if_different(module, dest, text)
    if constraints_text:
        changed = _write_if_different(module, constraints_path, constraints_text) or changed
    elif os.path.exists(constraints_path):
        if not module.check_mode:
            os.remove(constraints_path)
        changed = True
    for path in [dest] + ([constraints_path] if constraints_text else []):
        if os.path.exists(path):
            file_args = module.load_file_common_arguments(p, path=path)
            changed = module.set_fs_attributes_if_different(file_args, changed)

    extra = {}
    stamp_file = p["stamp_file"]
    commit = p["commit"]
    if p["venvs_dir"]:
        shared = not p["project"] and shareable(text, constraints_text)
        if shared:
            commit = ""
        stamp = build_stamp(commit, text, constraints_text, python_version, p["project"])
        extra = dict(venv=os.path.join(p["venvs_dir"], stamp[:16]), shared=shared)
        stamp_file = os.path.join(extra["venv"], p["stamp_name"])
    else:
        stamp = build_stamp(commit, text, constraints_text, python_version, p["project"])
    built = False
    if stamp_file:
        try:
            built = _read_text(stamp_file).strip() == stamp
        except (IOError, OSError):
            built = False

    module.exit_json(
        changed=changed,
        dest=dest,
        constraints=constraints_path if constraints_text else "",
        replaced=replaced,
        python_version=python_version,
        stamp=stamp,
        built=built,
        **extra
    )


if __name__ == "__main__":
    main()
