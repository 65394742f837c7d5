# Make the checkout importable as ansible_collections.opdbus.infra, wherever it lives.
import importlib
import os
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _collections_root():
    installed = os.path.join(REPO, ".collections")
    if os.path.isdir(os.path.join(installed, "ansible_collections", "opdbus", "infra", "plugins")):
        return installed
    root = tempfile.mkdtemp(prefix="opdbus-unit-")
    os.makedirs(os.path.join(root, "ansible_collections", "opdbus"))
    os.symlink(REPO, os.path.join(root, "ansible_collections", "opdbus", "infra"))
    return root


sys.path.insert(0, _collections_root())

# pytest-ansible's collection finder wants the collection's routing metadata when it imports a module of
# the collection, and nothing loads it in a plain unit test run: give it none.
_COLLECTION = importlib.import_module("ansible_collections.opdbus.infra")
if getattr(_COLLECTION, "_collection_meta", None) is None:
    _COLLECTION._collection_meta = {}
