#!/usr/bin/env python3
"""Fail when the collection uses a module, filter or other plugin of a collection that
galaxy.yml does not declare, or when galaxy.yml and requirements.yml disagree.

Reads the collection's own files (roles/, playbooks/, plugins/, meta/); every FQCN
`namespace.collection.name` whose `namespace.collection` is an installed collection (as
`ansible-galaxy collection list` reports) must be ansible.builtin, flaskstack.deploy or a
dependency in galaxy.yml. The test bed (molecule/, tests/, scripts/) may use more.

    python scripts/collection_deps.py          prints what it found; exit 1 on an undeclared use
"""
import json
import os
import re
import subprocess
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHIPPED = ("roles", "playbooks", "plugins", "meta")
OWN = {"ansible.builtin", "flaskstack.deploy"}
FQCN = re.compile(r"(?<![\w.])([a-z][a-z0-9_]*\.[a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*")


def installed_collections():
    out = subprocess.run(
        ["ansible-galaxy", "collection", "list", "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    names = set()
    for path in json.loads(out).values():
        names.update(path)
    return names


def used_collections(known):
    uses = {}
    for top in SHIPPED:
        for folder, _dirs, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if not name.endswith((".yml", ".yaml", ".j2", ".py")):
                    continue
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8") as source:
                    for number, line in enumerate(source, 1):
                        # Python imports of ansible-core (ansible.module_utils...) are not plugins.
                        if name.endswith(".py") and re.match(r"\s*(from|import) ansible\.", line):
                            continue
                        for match in FQCN.finditer(line):
                            if match.group(1) in known:
                                where = "%s:%d" % (os.path.relpath(path, ROOT), number)
                                uses.setdefault(match.group(1), where)
    return uses


def main():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as source:
        declared = yaml.safe_load(source).get("dependencies") or {}
    with open(os.path.join(ROOT, "requirements.yml"), encoding="utf-8") as source:
        required = {c["name"]: str(c.get("version", "*")) for c in yaml.safe_load(source)["collections"]}
    errors = []
    if {k: str(v) for k, v in declared.items()} != required:
        errors.append("galaxy.yml's dependencies %s differ from requirements.yml's %s"
                      % (json.dumps(declared, sort_keys=True), json.dumps(required, sort_keys=True)))
    uses = used_collections(installed_collections() | set(declared) | OWN)
    for collection, where in sorted(uses.items()):
        state = "own" if collection in OWN else "declared %s" % declared[collection] if collection in declared else "NOT DECLARED"
        print("%-24s %-20s first used at %s" % (collection, state, where))
        if state == "NOT DECLARED":
            errors.append("%s is used (%s) but not declared in galaxy.yml's dependencies" % (collection, where))
    for collection in sorted(set(declared) - set(uses)):
        errors.append("%s is declared in galaxy.yml but not used" % collection)
    for error in errors:
        print("ERROR: " + error, file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
