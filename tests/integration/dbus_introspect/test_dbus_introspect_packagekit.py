# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbus_introspect and dbus_call against the lab's real PackageKit on the lab's system bus.

The bus address comes from ``OPDBUS_DBUS_ADDRESS``/``DBUS_SYSTEM_BUS_ADDRESS`` (``make
test-integration`` sources the lab's env) or else from the lab's env file; without PackageKit on
that bus the tests are skipped with the reason. Only reads: nothing is installed or changed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import tempfile

import pytest

from btrfs_support import REPO  # importing it also makes the collection importable

SERVICE = "org.freedesktop.PackageKit"
PATH = "/org/freedesktop/PackageKit"
IFACE = "org.freedesktop.PackageKit"

dbus = pytest.importorskip("dbus")
jsonschema = pytest.importorskip("jsonschema")


def lab_bus_address():
    for var in ("OPDBUS_DBUS_ADDRESS", "DBUS_SYSTEM_BUS_ADDRESS"):
        if os.environ.get(var):
            return os.environ[var]
    env_file = os.path.join(os.environ.get("OPDBUS_LAB_DIR") or os.path.join(str(REPO), ".lab"), "env")
    if os.path.isfile(env_file):
        out = subprocess.run(["bash", "-c", '. "$1" >/dev/null; printf %s "$OPDBUS_DBUS_ADDRESS"', "lab-env", env_file],
                             check=False, capture_output=True, text=True).stdout
        return out.strip() or None
    return None


@pytest.fixture(scope="module")
def address():
    from ansible_collections.opdbus.infra.plugins.module_utils import dbus as transport  # pylint: disable=import-outside-toplevel
    found = lab_bus_address()
    if not found:
        pytest.skip("no lab bus address (OPDBUS_DBUS_ADDRESS / DBUS_SYSTEM_BUS_ADDRESS / .lab/env): run lab/lab.sh up")
    try:
        with transport.Bus(found, timeout=10) as bus:
            if not bus.name_has_owner(SERVICE):
                pytest.skip("PackageKit is not running on the lab bus %s (lab/lab.sh up starts it)" % found)
    except transport.DBusError as exc:
        pytest.skip("the lab bus %s is not up: %s" % (found, exc))
    return found


def run_module(module, params):
    with tempfile.TemporaryDirectory(prefix="opdbus-dbus-") as workdir:
        path = os.path.join(workdir, "args.json")
        with open(path, "w", encoding="utf-8") as handle:
            json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
        proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.modules." + module, path],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr)) from None


def test_introspect_packagekit(address):
    from ansible_collections.opdbus.infra.plugins.module_utils import dbus as transport  # pylint: disable=import-outside-toplevel
    from ansible_collections.opdbus.infra.plugins.module_utils.dbus_schema import to_json  # pylint: disable=import-outside-toplevel
    result = run_module("dbus_introspect", {"bus_address": address, "service": SERVICE, "path": PATH, "max_depth": 0})
    assert not result.get("failed"), result
    iface = result["services"][SERVICE]["objects"][PATH]["interfaces"][IFACE]
    create = iface["methods"]["CreateTransaction"]
    assert create["in"] == [] and [a["signature"] for a in create["out"]] == ["o"]
    assert create["out"][0]["schema"]["pattern"]
    assert iface["properties"]["VersionMajor"]["access"] == "read"
    assert "TransactionListChanged" in iface["signals"]
    # PackageKit's real property values fit the schemas introspection gave
    with transport.Bus(address, timeout=10) as bus:
        values = bus.call(SERVICE, PATH, "org.freedesktop.DBus.Properties", "GetAll", IFACE, signature="s", raw=True)
    assert set(values) == set(iface["properties"])
    for name, desc in iface["properties"].items():
        jsonschema.validate(to_json(values[name]), desc["schema"])
    version = run_module("dbus_call", {"bus_address": address, "service": SERVICE, "path": PATH, "interface": IFACE,
                                       "property": "VersionMajor"})
    assert version["changed"] is False and version["value"] == int(values["VersionMajor"])
    refused = run_module("dbus_call", {"bus_address": address, "service": SERVICE, "path": PATH, "interface": IFACE,
                                       "property": "VersionMajor", "value": 99})
    assert refused["failed"] and "read-only" in refused["msg"]
