# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbus_introspect and dbus_call against systemd (PID 1 of the numa suite's container) on the container's bus.

The modules run inside the container through the opdbus.infra.lxc connection. Oracles: ``busctl``
inside the container (systemd's own D-Bus tool: its introspection of the Manager object and the
Version property), and ``systemctl show`` for a property read through dbus_call.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

MANAGER = "/org/freedesktop/systemd1"
MANAGER_IFACE = "org.freedesktop.systemd1.Manager"


@pytest.fixture
def bus_up(numa_ct):
    """The container's system bus running for the test, and put back as it was afterwards (the numa suite
    starts with it stopped)."""
    was = numa_ct.sh("systemctl is-active dbus.service", check=False).stdout.strip()
    numa_ct.sh("systemctl start dbus.socket dbus.service")
    assert numa_ct.out("systemctl is-active dbus.service") == "active"
    yield
    if was != "active":
        numa_ct.sh("systemctl stop dbus.socket dbus.service")


@pytest.mark.usefixtures("bus_up")
def test_introspect_systemd_manager_matches_busctl(numa_ct):
    task = {"name": "introspect systemd", "opdbus.infra.dbus_introspect": {
        "service": "org.freedesktop.systemd1", "path": MANAGER, "max_depth": 0}}
    rc, results, out = numa_ct.playbook([task])
    assert rc == 0, out
    service = results[0]["services"]["org.freedesktop.systemd1"]
    manager = service["objects"][MANAGER]["interfaces"][MANAGER_IFACE]

    # busctl's view of the same interface: every method, property and signal, with signatures
    lines = numa_ct.out("busctl introspect --no-pager --no-legend org.freedesktop.systemd1 %s %s"
                        % (MANAGER, MANAGER_IFACE)).splitlines()
    members = {}
    for line in lines:
        words = line.split()
        if len(words) >= 3 and words[0].startswith("."):
            members[words[0][1:]] = (words[1], words[2])
    methods = {n for n, (kind, sig) in members.items() if kind == "method"}
    properties = {n: sig for n, (kind, sig) in members.items() if kind == "property"}
    signals = {n for n, (kind, sig) in members.items() if kind == "signal"}
    assert len(methods) > 50 and len(properties) > 50
    assert set(manager["methods"]) == methods
    assert set(manager["signals"]) == signals
    assert {n: p["signature"] for n, p in manager["properties"].items()} == properties
    # in-signatures as busctl gives them ("-" for none)
    for name in ("StartUnit", "SetUnitProperties", "GetUnit"):
        ours = "".join(arg["signature"] for arg in manager["methods"][name]["in"]) or "-"
        assert ours == members[name][1], name
    # schemas: SetUnitProperties' a(sv) is an array of 2-item arrays
    props_arg = manager["methods"]["SetUnitProperties"]["in"][2]
    assert props_arg["signature"] == "a(sv)" and props_arg["schema"]["type"] == "array"
    assert props_arg["schema"]["items"]["prefixItems"][0] == {"type": "string"}


@pytest.mark.usefixtures("bus_up")
def test_dbus_call_reads_systemd_properties(numa_ct):
    tasks = [
        {"name": "version", "opdbus.infra.dbus_call": {
            "service": "org.freedesktop.systemd1", "path": MANAGER, "interface": MANAGER_IFACE, "property": "Version"}},
        {"name": "unit path", "opdbus.infra.dbus_call": {
            "service": "org.freedesktop.systemd1", "path": MANAGER, "interface": MANAGER_IFACE, "method": "GetUnit",
            "args": ["dbus.service"], "read_only": True}},
    ]
    rc, results, out = numa_ct.playbook(tasks, check=True)
    assert rc == 0, out
    version, unit = results
    assert version["changed"] is False
    assert version["value"] == numa_ct.out("busctl get-property org.freedesktop.systemd1 %s %s Version"
                                           % (MANAGER, MANAGER_IFACE)).split(" ", 1)[1].strip('"')
    assert unit["changed"] is False and unit["reply"] == [numa_ct.out("busctl call org.freedesktop.systemd1 %s %s GetUnit s "
                                                                      "dbus.service" % (MANAGER, MANAGER_IFACE)).split(" ", 1)[1].strip('"')]
