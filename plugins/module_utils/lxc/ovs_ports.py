# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers' ports on Open vSwitch, through OVSDB (the ovs_bridge reconciler), never ovs-vsctl.

Two kinds of container NICs end on an OVS bridge:

``socket``
    an OVS *internal* port (a tap device on the userspace datapath) created on the
    bridge before the container starts; liblxc moves it into the container
    (``lxc.net.N.type = phys``) and back to the host when the container stops.
``veth``
    the host side of a veth pair that liblxc creates when the container starts;
    it is added to the bridge as a ``system`` port once it exists.

``plan(endpoint, wanted)`` reads the switch once and returns the ports to add;
``apply`` adds them in one transaction per bridge (ports not listed are left
alone: ``ports_exclusive: false``). A bridge that does not exist, a port that
is on another bridge, or a port of another type is an error, never "fixed":
those belong to ``opdbus.infra.ovs_bridge``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot, converge
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import normalize_bridge
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient


def wanted_ports(spec, running):
    """[(bridge, port, ovs type)] the spec's NICs need now: socket ports always, veth host sides when running."""
    out = []
    for nic in spec.get("network") or []:
        if not nic.get("bridge"):
            continue
        if nic["type"] == "socket":
            out.append((nic["bridge"], nic["port"], "internal"))
        elif running and nic.get("port"):
            out.append((nic["bridge"], nic["port"], "system"))
    return out


def plan(endpoint, wanted, timeout=30.0):
    """The (bridge, port, type) entries of ``wanted`` that are not on the switch yet."""
    if not wanted:
        return []
    with OvsdbClient(endpoint, timeout=timeout) as client:
        snap = Snapshot.read(client)
    missing = []
    for bridge, port, ptype in wanted:
        if bridge not in snap.bridges:
            raise LxcError("OVS bridge %s does not exist (OVSDB %s); create it first, e.g. with opdbus.infra.ovs_bridge"
                           % (bridge, endpoint))
        row = snap.ports_by_name.get(port)
        if row is None:
            missing.append((bridge, port, ptype))
            continue
        on = [name for name in snap.bridges if row in snap.bridge_ports(name)]
        if bridge not in on:
            raise LxcError("port %s is on bridge %s, not %s; remove it there first" % (port, ", ".join(on) or "no bridge", bridge))
        iface = snap.port_iface(row)
        have = (iface or {}).get("type") or "system"
        if have != ptype:
            raise LxcError("port %s on bridge %s is of type %s, not %s; it is not this container's %s port"
                           % (port, bridge, have, ptype, "socket" if ptype == "internal" else "veth"))
    return missing


def apply(endpoint, missing, timeout=30.0):
    """Add the ``missing`` ports, one OVSDB transaction per bridge."""
    by_bridge = {}
    for bridge, port, ptype in missing:
        by_bridge.setdefault(bridge, []).append({"name": port, "type": ptype})
    for bridge, ports in sorted(by_bridge.items()):
        desired = normalize_bridge({"name": bridge, "state": "present", "ports": ports, "ports_exclusive": False})
        converge(desired, endpoint, timeout=timeout)


def describe(missing):
    return ["add %s port %s to OVS bridge %s" % ("socket" if ptype == "internal" else "veth", port, bridge)
            for bridge, port, ptype in missing]
