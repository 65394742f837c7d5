# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures and helpers of the btrfs tests (tests/integration/btrfs): two real btrfs filesystems.

The mount points come from ``OPDBUS_BTRFS_MNT`` and ``OPDBUS_BTRFS_REPLICA_MNT`` (``make
test-integration`` sources the lab's env file), or else from the lab's env file itself; without
them the tests are skipped. Each test gets fresh, uniquely named directories on both filesystems;
at teardown every subvolume under them is deleted (with the ``btrfs`` command, independent of the
code under test) and the directories are removed.

These tests do not use the ``lab`` fixture of the parent conftest (OVS is not needed here). The
fixtures are imported by tests/integration/conftest.py: a conftest.py in the subdirectory would
take the name ``conftest`` from this one and break the other tests' ``from conftest import``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _collections_root():
    """A directory holding ansible_collections/opdbus/infra that is this checkout (as tests/unit does)."""
    installed = REPO / ".collections"
    link = installed / "ansible_collections" / "opdbus" / "infra"
    if link.is_dir() and link.resolve() == REPO:
        return str(installed)
    root = tempfile.mkdtemp(prefix="opdbus-btrfs-")
    os.makedirs(os.path.join(root, "ansible_collections", "opdbus"))
    os.symlink(str(REPO), os.path.join(root, "ansible_collections", "opdbus", "infra"))
    return root


# The tests import the collection's Python code directly (plugin_utils, module_utils).
sys.path.insert(0, _collections_root())
_COLLECTION = importlib.import_module("ansible_collections.opdbus.infra")
if getattr(_COLLECTION, "_collection_meta", None) is None:
    _COLLECTION._collection_meta = {}
BTRFS_MAGIC = 0x9123683E
ENV_VARS = ("OPDBUS_BTRFS_MNT", "OPDBUS_BTRFS_REPLICA_MNT")


def btrfs_cli():
    for candidate in (shutil.which("btrfs"), "/usr/sbin/btrfs", "/sbin/btrfs", "/usr/bin/btrfs"):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    return None


def run_btrfs(*args, check=True):
    """Run the btrfs command line (the oracle); returns the CompletedProcess (text)."""
    return subprocess.run([btrfs_cli()] + [str(a) for a in args], check=check, capture_output=True, text=True)


@pytest.fixture(scope="session")
def btrfs_cmd():
    """run_btrfs(*args, check=True): the btrfs command line, the tests' oracle."""
    return run_btrfs


def fs_type(path):
    """The filesystem magic of path, as stat(1) prints it (independent of the module)."""
    out = subprocess.run(["stat", "-f", "-c", "%t", str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.strip(), 16)


def _from_env_file():
    lab_dir = Path(os.environ.get("OPDBUS_LAB_DIR") or REPO / ".lab")
    env_file = lab_dir / "env"
    if not env_file.is_file():
        return {}
    out = subprocess.run(["bash", "-c", 'set -a; . "$1" >/dev/null; env -0', "lab-env", str(env_file)],
                         check=True, capture_output=True).stdout.decode()
    found = {}
    for item in out.split("\0"):
        key, sep, value = item.partition("=")
        if sep and key in ENV_VARS:
            found[key] = value
    return found


def _mounts():
    env = dict((k, os.environ[k]) for k in ENV_VARS if os.environ.get(k))
    if len(env) < len(ENV_VARS):
        env = _from_env_file()
    missing = [k for k in ENV_VARS if not env.get(k)]
    if missing:
        return None, "no btrfs mounts: set %s (lab/lab.sh up and source its env)" % " and ".join(missing)
    for key in ENV_VARS:
        if not os.path.isdir(env[key]) or fs_type(env[key]) != BTRFS_MAGIC:
            return None, "%s=%s is not a mounted btrfs filesystem" % (key, env[key])
    if btrfs_cli() is None:
        return None, "the btrfs command (btrfs-progs) is needed as the tests' oracle"
    if os.geteuid() != 0:
        return None, "the btrfs tests need root (subvolume deletion, send/receive)"
    return (env["OPDBUS_BTRFS_MNT"], env["OPDBUS_BTRFS_REPLICA_MNT"]), None


def _is_subvolume_root(path):
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return os.path.isdir(path) and not os.path.islink(path) and st.st_ino == 256


def cleanup_tree(top):
    """Delete every subvolume under top (deepest first), then the directory itself."""
    if not os.path.lexists(top):
        return
    for dirpath, _dirs, _files in os.walk(top, topdown=False):
        if _is_subvolume_root(dirpath):
            run_btrfs("property", "set", "-f", "-ts", dirpath, "ro", "false", check=False)
            run_btrfs("subvolume", "delete", dirpath, check=False)
    if os.path.lexists(top) and _is_subvolume_root(top):
        run_btrfs("subvolume", "delete", top, check=False)
    shutil.rmtree(top, ignore_errors=True)


@pytest.fixture(scope="session")
def btrfs_mounts():
    mounts, why = _mounts()
    if mounts is None:
        pytest.skip(why)
    return mounts


def _fresh_dir(mount, request):
    name = "t-%s-%s" % ("".join(c if c.isalnum() else "_" for c in request.node.name)[:60], secrets.token_hex(4))
    path = os.path.join(mount, name)
    os.mkdir(path, 0o700)
    return path


@pytest.fixture
def bdir(btrfs_mounts, request):
    """A fresh plain directory on the main btrfs filesystem (subvolumes under it are deleted after)."""
    path = _fresh_dir(btrfs_mounts[0], request)
    yield path
    cleanup_tree(path)


@pytest.fixture
def replica_dir(btrfs_mounts, request):
    """A fresh plain directory on the replica btrfs filesystem."""
    path = _fresh_dir(btrfs_mounts[1], request)
    yield path
    cleanup_tree(path)


@pytest.fixture
def plain_dir(tmp_path):
    """A directory that is not on btrfs (a tmpfs at /dev/shm, or else the pytest tmp dir if that is not btrfs)."""
    for base in ("/dev/shm", str(tmp_path)):
        if os.path.isdir(base) and fs_type(base) != BTRFS_MAGIC:
            path = os.path.join(base, "opdbus-plain-%s" % secrets.token_hex(4))
            os.mkdir(path, 0o700)
            yield path
            shutil.rmtree(path, ignore_errors=True)
            return
    pytest.skip("no directory off btrfs found")
