# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only report of bridges, ports and interfaces (one OVSDB round trip)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.netlink import Netlink
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import Snapshot, port_view
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import check_ifname
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbClient, as_list, as_optional


def _iface_report(iface):
    ofport = as_optional(iface.get("ofport"))
    return {
        "name": iface["name"],
        "uuid": iface["_uuid"],
        "type": iface.get("type") or "system",
        "ofport": ofport if ofport not in (None, -1) else None,
        "ofport_request": as_optional(iface.get("ofport_request")),
        "link_state": as_optional(iface.get("link_state")),
        "admin_state": as_optional(iface.get("admin_state")),
        "mac_in_use": as_optional(iface.get("mac_in_use")),
        "error": as_optional(iface.get("error")),
        "options": dict(iface.get("options") or {}),
        "external_ids": dict(iface.get("external_ids") or {}),
    }


def gather(endpoint, timeout=30.0, bridges=None, addresses=True):
    """Return {"bridges": [...]} for all bridges or the named ones."""
    for name in bridges or []:
        check_ifname(name, "bridge name")
    with OvsdbClient(endpoint, timeout=timeout) as client:
        snap = Snapshot.read(client)
    names = sorted(snap.bridges) if not bridges else [b for b in bridges if b in snap.bridges]
    out = []
    for name in names:
        row = snap.bridges[name]
        ports = []
        for port in sorted(snap.bridge_ports(name), key=lambda p: p["name"]):
            view = port_view(port, snap.port_iface(port))
            ports.append({
                "name": port["name"],
                "uuid": port["_uuid"],
                "tag": view["tag"],
                "trunks": view["trunks"],
                "vlan_mode": view["vlan_mode"],
                "fake_bridge": bool(port.get("fake_bridge")),
                "external_ids": view["external_ids"],
                "interfaces": [_iface_report(snap.ifaces[u]) for u in as_list(port["interfaces"])
                               if u in snap.ifaces],
            })
        out.append({
            "name": name,
            "uuid": row["_uuid"],
            "datapath_type": row["datapath_type"] or "system",
            "fail_mode": as_optional(row["fail_mode"]),
            "protocols": sorted(as_list(row["protocols"])),
            "stp": bool(row["stp_enable"]),
            "rstp": bool(row["rstp_enable"]),
            "controller": sorted(snap.controllers[u]["target"] for u in as_list(row["controller"])
                                 if u in snap.controllers),
            "other_config": dict(row["other_config"] or {}),
            "external_ids": dict(row["external_ids"] or {}),
            "ports": ports,
        })
    if addresses:
        names = [i["name"] for b in out for p in b["ports"] for i in p["interfaces"]]
        with Netlink() as netlink:
            state = netlink.state(names)
        for bridge in out:
            for port in bridge["ports"]:
                for iface in port["interfaces"]:
                    link = state.get(iface["name"])
                    iface["addresses"] = link["addresses"] if link else []
                    iface["up"] = link["up"] if link else None
    return {"bridges": out, "missing": sorted(set(bridges or []) - set(names))}
