# Copyright: flaskstack maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn a Pipfile.lock or a pyproject.toml into the lines of a pip requirements file."""

from __future__ import annotations

DOCUMENTATION = r"""
name: pip_requirements
author: flaskstack maintainers
version_added: 0.1.0
short_description: Requirements-file lines from a Pipfile.lock or a pyproject.toml
description:
  - Reads the text of an app's dependency file and returns what C(pip install -r) takes, one
    requirement per line, so every format installs the same way.
  - C(Pipfile.lock) (pipenv) gives the locked C(default) packages (not C(develop)) as
    C(name[extras]==version ; markers); packages from git become C(name @ git+URL@ref); the
    app's own path entries (C(path) or C(editable)) are left out, as the app runs from its
    checkout.
  - C(pyproject.toml) gives the PEP 621 C([project] dependencies), plus the optional dependency
    groups named in O(extras). A pyproject without them (for example a Poetry project) fails with
    a message saying to export a requirements file instead.
positional: _input, filename
options:
  _input:
    description: The text of the file.
    type: str
    required: true
  filename:
    description: The file's name; C(Pipfile.lock) or C(pyproject.toml), in any directory.
    type: str
    required: true
  extras:
    description: Optional dependency groups of a C(pyproject.toml) to add.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read the app's Pipfile.lock
  ansible.builtin.slurp:
    src: /srv/app/releases/abc/Pipfile.lock
  register: lock

- name: Write it as a requirements file
  ansible.builtin.copy:
    content: "{{ lock.content | b64decode | flaskstack.deploy.pip_requirements('Pipfile.lock') }}"
    dest: /srv/app/releases/abc/.requirements.txt
    mode: "0644"
"""

RETURN = r"""
_value:
  description: Requirement lines, each ending with a newline.
  type: str
"""

import json
import posixpath

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None

from ansible.errors import AnsibleFilterError
from ansible.module_utils.common.text.converters import to_text


def _pipfile_lock(text):
    try:
        lock = json.loads(text)
    except ValueError as e:
        raise AnsibleFilterError("Pipfile.lock is not valid JSON: %s" % e)
    if not isinstance(lock, dict) or not isinstance(lock.get("default"), dict):
        raise AnsibleFilterError("Pipfile.lock has no \"default\" section of packages")
    lines = []
    for name, spec in sorted(lock["default"].items()):
        if isinstance(spec, str):
            spec = {"version": spec}
        if not isinstance(spec, dict):
            raise AnsibleFilterError("Pipfile.lock: package %r has an entry pip cannot read" % name)
        if "path" in spec or spec.get("editable"):
            continue
        extras = "[%s]" % ",".join(spec["extras"]) if spec.get("extras") else ""
        if "git" in spec:
            ref = "@" + spec["ref"] if spec.get("ref") else ""
            requirement = "%s%s @ git+%s%s" % (name, extras, spec["git"], ref)
        elif "file" in spec:
            requirement = "%s%s @ %s" % (name, extras, spec["file"])
        else:
            version = spec.get("version", "")
            if version == "*":
                version = ""
            requirement = "%s%s%s" % (name, extras, version)
        if spec.get("markers"):
            requirement += " ; %s" % spec["markers"]
        lines.append(requirement)
    return lines


def _pyproject(text, extras):
    if tomllib is None:
        raise AnsibleFilterError("reading pyproject.toml needs Python 3.11 or later on the controller")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AnsibleFilterError("pyproject.toml is not valid TOML: %s" % e)
    project = data.get("project")
    if not isinstance(project, dict) or "dependencies" not in project:
        raise AnsibleFilterError(
            "pyproject.toml has no [project] dependencies (PEP 621); for other tools (Poetry, "
            "PDM) export a requirements file and set app_requirements_file to it"
        )
    lines = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in extras:
        if extra not in optional:
            raise AnsibleFilterError(
                "pyproject.toml has no optional dependency group %r (it has: %s)"
                % (extra, ", ".join(sorted(optional)) or "none")
            )
        lines.extend(optional[extra])
    return lines


def pip_requirements(text, filename, extras=None):
    text = to_text(text)
    base = posixpath.basename(to_text(filename))
    if base == "Pipfile.lock":
        lines = _pipfile_lock(text)
    elif base == "pyproject.toml":
        lines = _pyproject(text, list(extras or []))
    else:
        raise AnsibleFilterError("%r is neither a Pipfile.lock nor a pyproject.toml" % to_text(filename))
    return "".join(line + "\n" for line in lines)


class FilterModule:
    def filters(self):
        return {"pip_requirements": pip_requirements}
