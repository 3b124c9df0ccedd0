"""Make flaskstack.deploy importable as ansible_collections.flaskstack.deploy from this checkout.

Under ansible-test the collection already sits in an ansible_collections/ tree and is
importable; run with `python -m pytest tests/unit` from a checkout, it is linked into
.cache/collections first.
"""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
IN_COLLECTIONS_TREE = os.path.basename(os.path.dirname(os.path.dirname(ROOT))) == "ansible_collections"

if not IN_COLLECTIONS_TREE:
    COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
    link = os.path.join(COLLECTIONS, "ansible_collections", "flaskstack", "deploy")
    if not os.path.exists(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(ROOT, link)
    sys.path.insert(0, COLLECTIONS)
