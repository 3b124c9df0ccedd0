"""Make flaskstack.deploy importable as ansible_collections.flaskstack.deploy from this checkout."""
import os
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLLECTIONS = os.path.join(ROOT, ".cache", "collections")
link = os.path.join(COLLECTIONS, "ansible_collections", "flaskstack", "deploy")
if not os.path.exists(link):
    os.makedirs(os.path.dirname(link), exist_ok=True)
    os.symlink(ROOT, link)
sys.path.insert(0, COLLECTIONS)
