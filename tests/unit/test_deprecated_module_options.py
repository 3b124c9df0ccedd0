"""The roles and playbooks use no module option that its collection marks for removal.

A module announces an option's removal in its argument spec (``removed_in_version``), or the
removal of one of an option's names (``deprecated_aliases``, e.g. ``database`` of
community.postgresql's modules, now ``login_db``); Ansible only warns at run time, on the hosts
that reach the task. This test reads the argument specs of the installed collections' modules
(without importing them) and fails on any task that sets such an option or alias, so a
deprecation is fixed before the collection's next major version removes it.
"""
import ast
import glob
import os

import pytest
import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TASK_FILES = sorted(
    glob.glob(os.path.join(ROOT, "roles", "*", "tasks", "*.yml"))
    + glob.glob(os.path.join(ROOT, "roles", "*", "handlers", "*.yml"))
    + glob.glob(os.path.join(ROOT, "playbooks", "**", "*.yml"), recursive=True)
)
BLOCK_KEYS = ("block", "rescue", "always", "tasks", "pre_tasks", "post_tasks", "handlers")


def _collections_roots():
    try:
        import ansible_collections
    except ImportError:
        return []
    return list(ansible_collections.__path__)


def _dict_keys(node):
    """Yield (name, value node) of a call's keyword arguments (dict(...), spec.update(...)) or of
    a {...} literal."""
    if isinstance(node, ast.Call):
        for keyword in node.keywords:
            if keyword.arg:
                yield keyword.arg, keyword.value
    elif isinstance(node, ast.Dict):
        for key, value in zip(node.keys, node.values):
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                yield key.value, value


def removed_options(source):
    """Names of the options whose spec carries removed_in_version, and the aliases listed in a
    spec's deprecated_aliases, in a module's source."""
    removed = set()
    for node in ast.walk(ast.parse(source)):
        for name, value in _dict_keys(node):
            spec = dict(_dict_keys(value))
            if "removed_in_version" in spec:
                removed.add(name)
            aliases = spec.get("deprecated_aliases")
            if isinstance(aliases, (ast.List, ast.Tuple)):
                for alias in aliases.elts:
                    alias_name = dict(_dict_keys(alias)).get("name")
                    if isinstance(alias_name, ast.Constant) and isinstance(alias_name.value, str):
                        removed.add(alias_name.value)
    return removed


def module_source(fqcn):
    namespace, collection, module = fqcn.split(".", 2)
    for root in _collections_roots():
        path = os.path.join(root, namespace, collection, "plugins", "modules", module + ".py")
        if os.path.exists(path):
            with open(path, encoding="utf-8") as handle:
                return handle.read()
    return None


def tasks_in(items):
    for item in items or []:
        if not isinstance(item, dict):
            continue
        yield item
        for key in BLOCK_KEYS:
            if isinstance(item.get(key), list):
                yield from tasks_in(item[key])


def module_calls():
    """(file, task name, module FQCN, option names) of every task that calls a module with options."""
    for path in TASK_FILES:
        with open(path, encoding="utf-8") as handle:
            document = yaml.safe_load(handle)
        if not isinstance(document, list):
            continue
        for task in tasks_in(document):
            for key, value in task.items():
                if key.count(".") >= 2 and not key.startswith("ansible.builtin.") and isinstance(value, dict):
                    yield os.path.relpath(path, ROOT), task.get("name", "?"), key, set(value)


def test_the_parser_finds_removed_options():
    source = (
        "spec = dict(keep=dict(type='bool', removed_in_version='5.0.0'), other=dict(type='str'))\n"
        "spec2 = {'old': {'type': 'str', 'removed_in_version': '2.0.0'}}\n"
        "spec.update(gone=dict(type='str', removed_in_version='3.0.0'))\n"
        "spec.update(login_db=dict(type='str', aliases=['db', 'database', 'name'], deprecated_aliases=[\n"
        "    {'name': 'db', 'version': '5.0.0', 'collection_name': 'c.n'},\n"
        "    dict(name='database', version='5.0.0', collection_name='c.n')]))\n"
    )
    assert removed_options(source) == {"keep", "old", "gone", "db", "database"}


def test_no_task_sets_an_option_marked_for_removal():
    if not _collections_roots():
        pytest.skip("no installed collections to read the modules' argument specs from")
    cache = {}
    offenders = []
    for path, name, module, options in module_calls():
        if module not in cache:
            source = module_source(module)
            cache[module] = removed_options(source) if source else set()
        for option in sorted(options & cache[module]):
            offenders.append("%s: %r sets %s of %s" % (path, name, option, module))
    assert offenders == []
