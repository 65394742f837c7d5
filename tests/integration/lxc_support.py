# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the liblxc backend tests: real containers in the lab's lxcpath (``OPDBUS_LXC_PATH``).

The lxcpath comes from ``OPDBUS_LXC_PATH`` (source the lab's env) or else from the lab's env file;
without it the tests are skipped. They need root and python3-lxc.

python3-lxc is a package of the system Python (/usr/bin/python3). The project venv is built on
that same interpreter (3.11), so its C extension loads here: /usr/lib/python3/dist-packages is put
on sys.path only while ``lxc`` (and ``_lxc``) are imported, then taken off again, so nothing else
of the system's site-packages leaks into the tests. The imported module is handed to the backend
(``LiblxcBackend(path, lxc_module=lxc)``), exactly what the module gets from ``import_lxc``.

Oracles independent of the backend: the container's config file, ``/proc/<pid>/comm`` and
``/proc/<pid>/cgroup``, the cgroup files under /sys/fs/cgroup, ``btrfs subvolume show``, and
``lxc-attach`` for commands inside a container.

These tests do not use the ``lab`` fixture of the parent conftest (OVS is not needed here). The
fixtures are imported by tests/integration/conftest.py (see btrfs_support.py for why).
Containers are named ``opdbus-t-<hex>``; every test removes what it created.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from btrfs_support import REPO  # importing it also makes the collection importable


SYSTEM_SITE = "/usr/lib/python3/dist-packages"
PREFIX = "opdbus-t-"
DEBIAN_BASE = "opdbus-t-debian-base"


def import_system_lxc():
    """The system Python's lxc binding, with its dist-packages on sys.path only for this import.

    The directory of this suite is also called ``lxc`` (and tests/integration is on sys.path), so
    the system directory goes first while importing and a wrong ``lxc`` is dropped from sys.modules.
    """
    found = sys.modules.get("lxc")
    if found is not None and hasattr(found, "Container"):
        return found
    sys.modules.pop("lxc", None)
    sys.path.insert(0, SYSTEM_SITE)
    try:
        module = importlib.import_module("lxc")
    except ImportError:
        return None
    finally:
        sys.path.remove(SYSTEM_SITE)
    return module if hasattr(module, "Container") else None


def _lxc_path():
    path = os.environ.get("OPDBUS_LXC_PATH")
    if not path:
        env_file = Path(os.environ.get("OPDBUS_LAB_DIR") or REPO / ".lab") / "env"
        if env_file.is_file():
            out = subprocess.run(["bash", "-c", '. "$1" >/dev/null; printf %s "$OPDBUS_LXC_PATH"', "lab-env", str(env_file)],
                                 check=False, capture_output=True, text=True).stdout
            path = out.strip()
    return path


@pytest.fixture(scope="session")
def lxc_module():
    if os.geteuid() != 0:
        pytest.skip("the lxc tests need root")
    module = import_system_lxc()
    if module is None:
        pytest.skip("python3-lxc is not installed")
    return module


@pytest.fixture(scope="session")
def lxcpath():
    path = _lxc_path()
    if not path or not os.path.isdir(path):
        pytest.skip("no lab lxcpath: lab/lab.sh up and source its env (OPDBUS_LXC_PATH)")
    return path


@pytest.fixture(scope="session")
def lxc_backend(lxc_module, lxcpath):
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import LiblxcBackend  # pylint: disable=import-outside-toplevel
    return LiblxcBackend(lxcpath, lxc_module=lxc_module)


def lxc_tool(lxcpath, tool, *args, check=False):
    return subprocess.run([tool, "-P", lxcpath] + [str(a) for a in args], check=check, capture_output=True, text=True)


def force_remove(lxcpath, name):
    """Remove a test container with liblxc's tools (not the backend)."""
    if os.path.isdir(os.path.join(lxcpath, name)):
        lxc_tool(lxcpath, "lxc-stop", "-n", name, "-k")
        lxc_tool(lxcpath, "lxc-destroy", "-n", name)


class Names:
    """Unique container names for one test; all of them are removed afterwards."""

    def __init__(self, lxcpath):
        self.lxcpath = lxcpath
        self.made = []

    def new(self, tag="c"):
        name = "%s%s-%s" % (PREFIX, tag, secrets.token_hex(3))
        self.made.append(name)
        return name

    def cleanup(self):
        for name in reversed(self.made):
            force_remove(self.lxcpath, name)


@pytest.fixture
def ct_names(lxcpath):
    made = Names(lxcpath)
    yield made
    made.cleanup()


@pytest.fixture(scope="session")
def debian_base(lxc_backend, lxcpath):
    """A Debian bookworm container (systemd), created once per session; prints the creation time."""
    force_remove(lxcpath, DEBIAN_BASE)
    started = time.monotonic()
    lxc_backend.create({"name": DEBIAN_BASE, "template": "debian", "network": []}, timeout=1200)
    seconds = time.monotonic() - started
    cached = os.path.isdir("/var/cache/lxc/debian")
    print("\ndebian bookworm creation: %.1fs (debootstrap cache %s)" % (seconds, "present" if cached else "absent"))
    yield {"name": DEBIAN_BASE, "seconds": seconds}
    force_remove(lxcpath, DEBIAN_BASE)
