# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ovs_bridge reconciler: read current, plan, apply in one OVSDB transaction.

The plan is computed from two *views* of what the module owns (the bridge and
its ports as plain dictionaries): ``before`` read from the switch and ``after``
derived from it and the desired state. The list of changes, the diff and the
OVSDB operations are all derived from the same pair of views, so check mode
reports exactly what a real run does.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.opdbus.infra.plugins.module_utils.netlink import Netlink
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import (
    NamedUuid, OvsdbClient, OvsdbConflict, OvsdbError, Uuid, as_list, as_optional, decode_row, op_insert,
    op_mutate, op_select, op_update, op_wait, where_uuid,
)
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import ValidationError

BRIDGE_COLUMNS = ["_uuid", "name", "ports", "datapath_type", "fail_mode", "protocols", "stp_enable",
                  "rstp_enable", "controller", "other_config", "external_ids"]
PORT_COLUMNS = ["_uuid", "name", "interfaces", "tag", "trunks", "vlan_mode", "external_ids", "fake_bridge"]
IFACE_COLUMNS = ["_uuid", "name", "type", "options", "ofport", "ofport_request", "external_ids",
                 "link_state", "admin_state", "mac_in_use", "error"]
CONTROLLER_COLUMNS = ["_uuid", "target"]


class Snapshot(object):
    """The switch as read in one transaction."""

    def __init__(self, results):
        ovs_rows, bridges, ports, ifaces, controllers = [[decode_row(r) for r in res["rows"]] for res in results]
        self.ovs = ovs_rows[0] if ovs_rows else None
        self.bridges = dict((b["name"], b) for b in bridges)
        self.ports = dict((p["_uuid"], p) for p in ports)
        self.ports_by_name = dict((p["name"], p) for p in ports)
        self.ifaces = dict((i["_uuid"], i) for i in ifaces)
        self.ifaces_by_name = dict((i["name"], i) for i in ifaces)
        self.controllers = dict((c["_uuid"], c) for c in controllers)
        self.port_owner = {}
        for bridge in bridges:
            for puuid in as_list(bridge["ports"]):
                self.port_owner[puuid] = bridge["name"]

    @staticmethod
    def operations():
        return [
            op_select("Open_vSwitch", ["_uuid", "bridges", "next_cfg", "cur_cfg"]),
            op_select("Bridge", BRIDGE_COLUMNS),
            op_select("Port", PORT_COLUMNS),
            op_select("Interface", IFACE_COLUMNS),
            op_select("Controller", CONTROLLER_COLUMNS),
        ]

    @classmethod
    def read(cls, client):
        return cls(client.transact(cls.operations()))

    def bridge_ports(self, bridge_name):
        bridge = self.bridges.get(bridge_name)
        if bridge is None:
            return []
        return [self.ports[u] for u in as_list(bridge["ports"]) if u in self.ports]

    def port_iface(self, port):
        """The single interface of a port (bonds are not managed by this module)."""
        ifaces = [self.ifaces[u] for u in as_list(port["interfaces"]) if u in self.ifaces]
        return ifaces[0] if ifaces else None

    def fake_bridge(self, parent, name):
        for port in self.bridge_ports(parent):
            if port["name"] == name and port.get("fake_bridge") is True:
                return port
        return None

    def fake_vlans(self, parent):
        """{vlan: fake bridge name} of the fake bridges on a parent."""
        return dict((as_optional(p.get("tag")), p["name"]) for p in self.bridge_ports(parent)
                    if p.get("fake_bridge") is True)

    def own_ports(self, bridge_name):
        """The ports of a real bridge as ovs-vsctl counts them: not its fake bridges, nor their VLANs' ports."""
        vlans = self.fake_vlans(bridge_name)
        return [p for p in self.bridge_ports(bridge_name)
                if not p.get("fake_bridge") and as_optional(p.get("tag")) not in vlans]


# --------------------------------------------------------------------------
# Views
# --------------------------------------------------------------------------

def _dp(value):
    return value or "system"


FAKE_PREFIX = "fake-bridge-"


def fake_external_ids(port_ids):
    """A fake bridge's external ids live on its port with a fake-bridge- prefix (as ovs-vsctl keeps them)."""
    return dict((k[len(FAKE_PREFIX):], v) for k, v in (port_ids or {}).items() if k.startswith(FAKE_PREFIX))


def fake_port_external_ids(port_ids, bridge_ids):
    """The fake bridge port's external_ids: its own keys kept, the bridge's prefixed."""
    out = dict((k, v) for k, v in (port_ids or {}).items() if not k.startswith(FAKE_PREFIX))
    out.update((FAKE_PREFIX + k, v) for k, v in bridge_ids.items())
    return out


def port_view(port, iface):
    itype = (iface or {}).get("type") or "system"
    return {
        "type": itype,
        "options": dict((iface or {}).get("options") or {}),
        "tag": as_optional(port.get("tag")),
        "trunks": sorted(as_list(port.get("trunks") or [])),
        "vlan_mode": as_optional(port.get("vlan_mode")),
        "ofport_request": as_optional((iface or {}).get("ofport_request")),
        "external_ids": dict(port.get("external_ids") or {}),
        "interface_external_ids": dict((iface or {}).get("external_ids") or {}),
    }


def current_view(snap, desired):
    """The module-owned view of the bridge as it is now, or None if absent."""
    name, parent = desired["name"], desired["parent"]
    if parent is not None:
        fake = snap.fake_bridge(parent, name)
        if fake is None:
            return None
        vlan = as_optional(fake.get("tag"))
        members = [p for p in snap.bridge_ports(parent)
                   if as_optional(p.get("tag")) == vlan and not p.get("fake_bridge")]
        view = {"name": name, "parent": parent, "vlan": vlan,
                "external_ids": fake_external_ids(fake.get("external_ids"))}
    else:
        bridge = snap.bridges.get(name)
        if bridge is None:
            return None
        members = snap.own_ports(name)
        view = {
            "name": name,
            "datapath_type": _dp(bridge["datapath_type"]),
            "fail_mode": as_optional(bridge["fail_mode"]),
            "protocols": sorted(as_list(bridge["protocols"])),
            "stp": bool(bridge["stp_enable"]),
            "rstp": bool(bridge["rstp_enable"]),
            "controller": sorted(snap.controllers[u]["target"] for u in as_list(bridge["controller"])
                                 if u in snap.controllers),
            "other_config": dict(bridge["other_config"] or {}),
            "external_ids": dict(bridge["external_ids"] or {}),
        }
    view["ports"] = dict((p["name"], port_view(p, snap.port_iface(p))) for p in members)
    return view


def _merge(current, wanted, purge):
    if purge:
        return dict(wanted)
    merged = dict(current)
    merged.update(wanted)
    return merged


def fresh_view(name, parent=None, vlan=None):
    """What a bridge (or fake bridge) that does not exist yet starts from, before its ports."""
    if parent is not None:
        return {"name": name, "parent": parent, "vlan": vlan, "external_ids": {}, "ports": {}}
    return {"name": name, "datapath_type": "system", "fail_mode": None, "protocols": [], "stp": False,
            "rstp": False, "controller": [], "other_config": {}, "external_ids": {}, "ports": {}}


def desired_view(before, desired):
    """The view after the run: ``before`` with the desired state applied."""
    if desired["state"] == "absent":
        return None
    name = desired["name"]
    if before is None:
        base = fresh_view(name, desired["parent"], desired["vlan"])
        if desired["parent"] is None:
            base["ports"] = {name: port_view({}, {"type": "internal"})}  # a new bridge always gets its local port
    else:
        base = copy.deepcopy(before)
    after = base
    if desired["parent"] is None:
        for key in ("datapath_type", "fail_mode", "protocols", "stp", "rstp", "controller"):
            if desired[key] is not None:
                after[key] = desired[key]
        after["datapath_type"] = _dp(after["datapath_type"])
        after["other_config"] = _merge(after["other_config"], desired["other_config"],
                                       desired["purge_other_config"])
    after["external_ids"] = _merge(after["external_ids"], desired["external_ids"], desired["purge_external_ids"])

    if desired["ports"] is not None:
        ports = {}
        listed = set(p["name"] for p in desired["ports"])
        for pname, pview in after["ports"].items():
            if pname in listed:
                continue
            if desired["ports_exclusive"] and pname != name:
                continue
            ports[pname] = pview
        for spec in desired["ports"]:
            cur = after["ports"].get(spec["name"])
            ports[spec["name"]] = _port_after(cur, spec)
        after["ports"] = ports
    return after


def _port_after(cur, spec):
    cur = cur or port_view({}, {})
    view = {
        "type": spec["type"],
        "options": dict(spec["options"]),
        "tag": spec["tag"],
        "trunks": list(spec["trunks"]),
        "vlan_mode": spec["vlan_mode"],
        "ofport_request": spec["ofport_request"],
        "external_ids": _merge(cur["external_ids"], spec["external_ids"], spec["purge_external_ids"]),
        "interface_external_ids": _merge(cur["interface_external_ids"], spec["interface_external_ids"],
                                         spec["purge_external_ids"]),
    }
    if spec["addresses"] is not None:
        view["addresses"] = list(spec["addresses"])
    if spec["up"] is not None:
        view["up"] = spec["up"]
    return view


def add_link_state(view, link_state, keys_by_port):
    """Add the current netlink state of managed ports to a view (in place)."""
    if view is None:
        return
    for pname, keys in keys_by_port.items():
        pview = view["ports"].get(pname)
        if pview is None:
            continue
        state = link_state.get(pname)
        if "addresses" in keys:
            pview["addresses"] = list(state["addresses"]) if state else []
        if "up" in keys:
            pview["up"] = bool(state["up"]) if state else False


# --------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------

class Plan(object):
    def __init__(self, before, after):
        self.before = before
        self.after = after
        self.changes = describe(before, after)
        self.ovsdb_changed = _ovsdb_part(before) != _ovsdb_part(after)

    @property
    def changed(self):
        return bool(self.changes)

    def link_actions(self):
        """[(port, addresses or None, up or None)] to converge through netlink."""
        actions = []
        if self.after is None:
            return actions
        before_ports = (self.before or {}).get("ports", {})
        for pname in sorted(self.after["ports"]):
            pview = self.after["ports"][pname]
            old = before_ports.get(pname, {})
            addresses = pview.get("addresses")
            up = pview.get("up")
            want_addr = addresses if addresses is not None and addresses != old.get("addresses") else None
            want_up = up if up is not None and up != old.get("up") else None
            if want_addr is not None or want_up is not None:
                actions.append((pname, want_addr, want_up))
        return actions


LINK_KEYS = ("addresses", "up")


def _ovsdb_part(view):
    if view is None:
        return None
    out = dict(view)
    out["ports"] = dict((n, dict((k, v) for k, v in p.items() if k not in LINK_KEYS))
                        for n, p in view["ports"].items())
    return out


def _fmt(value):
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join("%s=%s" % (k, value[k]) for k in sorted(value)) + "}"
    return str(value)


def _describe_fields(prefix, old, new, keys, created=False):
    """Lines for the fields that differ; for something created, just the values it is created with."""
    out = []
    for key in keys:
        ov, nv = old.get(key), new.get(key)
        if key in ("addresses", "up") and key not in new:
            continue
        if ov != nv:
            if isinstance(ov, dict) or isinstance(nv, dict):
                ov, nv = ov or {}, nv or {}
                for k in sorted(set(ov) | set(nv)):
                    if k not in nv:
                        out.append("%s %s: remove %s" % (prefix, key, k))
                    elif k not in ov:
                        out.append("%s %s: add %s=%s" % (prefix, key, k, nv[k]))
                    elif ov[k] != nv[k]:
                        out.append("%s %s: %s: %s -> %s" % (prefix, key, k, ov[k], nv[k]))
            elif created:
                out.append("%s %s: %s" % (prefix, key, _fmt(nv)))
            else:
                out.append("%s %s: %s -> %s" % (prefix, key, _fmt(ov), _fmt(nv)))
    return out


PORT_KEYS = ("type", "options", "tag", "trunks", "vlan_mode", "ofport_request", "external_ids",
             "interface_external_ids", "addresses", "up")
BRIDGE_KEYS = ("datapath_type", "fail_mode", "protocols", "stp", "rstp", "controller", "other_config",
               "external_ids")


def describe(before, after):
    """Human-readable list of changes, in the order they are applied."""
    if before is None and after is None:
        return []
    if after is None:
        return ["remove bridge %s (and its %d ports)" % (before["name"], len(before["ports"]))]
    out = []
    name = after["name"]
    if before is None:
        if "parent" in after:
            out.append("create fake bridge %s on %s vlan %d" % (name, after["parent"], after["vlan"]))
        else:
            out.append("create bridge %s" % name)
        old = fresh_view(name, after.get("parent"), after.get("vlan"))
    else:
        old = before
    out += _describe_fields("bridge %s" % name, old, after,
                            [k for k in BRIDGE_KEYS if k in after], created=before is None)
    for pname in sorted(set(old["ports"]) - set(after["ports"])):
        out.append("remove port %s" % pname)
    for pname in sorted(after["ports"]):
        new = after["ports"][pname]
        if pname not in old["ports"]:
            if not (before is None and pname == name):
                out.append("add port %s (%s)" % (pname, new["type"]))
            fresh = port_view({}, {"type": new["type"]})
            fresh["addresses"], fresh["up"] = [], False
            out += _describe_fields("port %s" % pname, fresh, new, [k for k in PORT_KEYS if k != "type"],
                                    created=True)
        else:
            out += _describe_fields("port %s" % pname, old["ports"][pname], new, PORT_KEYS)
    return out


def check_conflicts(snap, desired):
    """State-dependent validation: runs after the read, before any write."""
    name, parent = desired["name"], desired["parent"]
    home = parent if parent is not None else name
    if parent is not None:
        if desired["state"] != "absent" and parent not in snap.bridges:
            raise ValidationError("parent bridge %r of fake bridge %r does not exist" % (parent, name))
        if name in snap.bridges:
            raise ValidationError("%r is a real bridge, not a fake bridge of %r" % (name, parent))
        fake = snap.fake_bridge(parent, name) if parent in snap.bridges else None
        if fake is not None and as_optional(fake.get("tag")) != desired["vlan"]:
            raise ValidationError("fake bridge %r exists on %r with vlan %s; changing a fake bridge's vlan means "
                                  "removing it first" % (name, parent, as_optional(fake.get("tag"))))
        other = snap.ports_by_name.get(name)
        if fake is None and other is not None:
            raise ValidationError("%r is already a port of bridge %r" % (name, snap.port_owner.get(other["_uuid"])))
        if fake is None and desired["state"] != "absent":
            # OVS would make existing access ports of the VLAN members of the new fake bridge.
            tagged = sorted(p["name"] for p in snap.bridge_ports(parent)
                            if as_optional(p.get("tag")) == desired["vlan"] and not p.get("fake_bridge"))
            if tagged:
                raise ValidationError("vlan %d of %r already has ports (%s) but no fake bridge; remove or retag "
                                      "them before creating fake bridge %r"
                                      % (desired["vlan"], parent, ", ".join(tagged), name))
    else:
        existing = snap.ports_by_name.get(name)
        if existing is not None and existing.get("fake_bridge") and name not in snap.bridges:
            raise ValidationError("%r is a fake bridge of %r: give parent and vlan to manage it"
                                  % (name, snap.port_owner.get(existing["_uuid"])))
        if name not in snap.bridges and existing is not None:
            raise ValidationError("%r is already a port of bridge %r" % (name, snap.port_owner.get(existing["_uuid"])))
    for spec in desired["ports"] or []:
        port = snap.ports_by_name.get(spec["name"])
        if port is not None:
            owner = snap.port_owner.get(port["_uuid"])
            if owner is not None and owner != home:
                raise ValidationError("port %r already belongs to bridge %r; remove it there first"
                                      % (spec["name"], owner))
            if port.get("fake_bridge"):
                raise ValidationError("port %r is a fake bridge, not a port" % spec["name"])
            fake_of = snap.fake_vlans(home).get(as_optional(port.get("tag"))) if parent is None else None
            if fake_of is not None and owner == home:
                raise ValidationError("port %r belongs to fake bridge %r (vlan %s) of %r; manage it there"
                                      % (spec["name"], fake_of, as_optional(port.get("tag")), home))
            if parent is not None and as_optional(port.get("tag")) != desired["vlan"]:
                raise ValidationError("port %r is a port of %r outside vlan %d; it is not a port of fake bridge %r"
                                      % (spec["name"], parent, desired["vlan"], name))
        elif spec["name"] in snap.bridges and spec["name"] != home:
            raise ValidationError("port %r is the name of another bridge" % spec["name"])


# --------------------------------------------------------------------------
# OVSDB operations
# --------------------------------------------------------------------------

def _port_rows(pview, name):
    iface = {
        "name": name,
        "type": "" if pview["type"] == "system" else pview["type"],
        "options": pview["options"],
        "external_ids": pview["interface_external_ids"],
        "ofport_request": [] if pview["ofport_request"] is None else [pview["ofport_request"]],
    }
    port = {
        "name": name,
        "tag": [] if pview["tag"] is None else [pview["tag"]],
        "trunks": pview["trunks"],
        "vlan_mode": [] if pview["vlan_mode"] is None else [pview["vlan_mode"]],
        "external_ids": pview["external_ids"],
    }
    return port, iface


def _optional(value):
    return [] if value is None else [value]


def build_operations(snap, plan, desired):
    """OVSDB operations turning ``plan.before`` into ``plan.after`` (empty when nothing changes)."""
    if not plan.ovsdb_changed:
        return []
    ops = []
    before, after = _ovsdb_part(plan.before), _ovsdb_part(plan.after)
    name, parent = desired["name"], desired["parent"]
    ovs_uuid = snap.ovs["_uuid"]

    if parent is not None:
        return _fake_operations(snap, before, after, desired)

    if after is None:
        bridge = snap.bridges[name]
        ops.append(op_mutate("Open_vSwitch", [where_uuid(ovs_uuid)], [["bridges", "delete", [Uuid(bridge["_uuid"])]]]))
        return _bump(ops, ovs_uuid)

    if before is None:
        port_refs = []
        for pname in sorted(after["ports"]):
            ops += _insert_port(pname, after["ports"][pname])
            port_refs.append(NamedUuid(_row_name("port", pname)))
        controller_refs = []
        for i, target in enumerate(after["controller"]):
            ops.append(op_insert("Controller", {"target": target}, "ctl%d" % i))
            controller_refs.append(NamedUuid("ctl%d" % i))
        row = {
            "name": name,
            "ports": port_refs,
            "datapath_type": after["datapath_type"],
            "fail_mode": _optional(after["fail_mode"]),
            "protocols": after["protocols"],
            "stp_enable": after["stp"],
            "rstp_enable": after["rstp"],
            "controller": controller_refs,
            "other_config": after["other_config"],
            "external_ids": after["external_ids"],
        }
        ops.append(_absent("Bridge", name))
        ops.append(op_insert("Bridge", row, "bridge"))
        ops.append(op_mutate("Open_vSwitch", [where_uuid(ovs_uuid)], [["bridges", "insert", [NamedUuid("bridge")]]]))
        return _bump(ops, ovs_uuid)

    bridge = snap.bridges[name]
    buuid = bridge["_uuid"]
    # Bridge columns
    update, expect = {}, {}
    simple = {"fail_mode": ("fail_mode", _optional), "protocols": ("protocols", list),
              "stp": ("stp_enable", bool), "rstp": ("rstp_enable", bool),
              "other_config": ("other_config", dict), "external_ids": ("external_ids", dict)}
    for key, (column, conv) in simple.items():
        if before[key] != after[key]:
            update[column] = conv(after[key])
            expect[column] = bridge[column]
    if before["datapath_type"] != after["datapath_type"]:
        update["datapath_type"] = after["datapath_type"]
        expect["datapath_type"] = bridge["datapath_type"]
    if before["controller"] != after["controller"]:
        keep = dict((snap.controllers[u]["target"], Uuid(u)) for u in as_list(bridge["controller"])
                    if u in snap.controllers)
        refs = []
        for i, target in enumerate(after["controller"]):
            if target in keep:
                refs.append(keep[target])
            else:
                ops.append(op_insert("Controller", {"target": target}, "ctl%d" % i))
                refs.append(NamedUuid("ctl%d" % i))
        update["controller"] = refs
        expect["controller"] = bridge["controller"]
    if update:
        ops.append(op_wait("Bridge", [where_uuid(buuid)], sorted(expect), [expect]))
        ops.append(op_update("Bridge", buuid, update))

    # Ports
    removed = sorted(set(before["ports"]) - set(after["ports"]))
    added = sorted(set(after["ports"]) - set(before["ports"]))
    if removed or added:
        ops.append(op_wait("Bridge", [where_uuid(buuid)], ["ports"],
                           [{"ports": [Uuid(u) for u in as_list(bridge["ports"])]}]))
    for pname in added:
        ops += _insert_port(pname, after["ports"][pname])
    mutations = []
    if removed:
        mutations.append(["ports", "delete", [Uuid(snap.ports_by_name[p]["_uuid"]) for p in removed]])
    if added:
        mutations.append(["ports", "insert", [NamedUuid(_row_name("port", p)) for p in added]])
    if mutations:
        ops.append(op_mutate("Bridge", [where_uuid(buuid)], mutations))
    for pname in sorted(set(before["ports"]) & set(after["ports"])):
        if before["ports"][pname] != after["ports"][pname]:
            ops += _update_port(snap, pname, before["ports"][pname], after["ports"][pname])
    return _bump(ops, ovs_uuid)


def _row_name(kind, name):
    # uuid-names must be identifiers: [_a-zA-Z][_a-zA-Z0-9]*
    return "%s_%s" % (kind, "".join(c if c.isalnum() else "_%02x" % ord(c) for c in name))


def _absent(table, name):
    """Abort unless no row of the table has this name (another client may be creating it right now)."""
    return op_wait(table, [["name", "==", name]], ["name"], [])


def _insert_port(pname, pview, extra_port=None):
    port, iface = _port_rows(pview, pname)
    iname, pn = _row_name("iface", pname), _row_name("port", pname)
    port["interfaces"] = [NamedUuid(iname)]
    if extra_port:
        port.update(extra_port)
    return [_absent("Port", pname), _absent("Interface", pname),
            op_insert("Interface", iface, iname), op_insert("Port", port, pn)]


def _update_port(snap, pname, old, new):
    ops = []
    port = snap.ports_by_name[pname]
    iface = snap.port_iface(port)
    new_port, new_iface = _port_rows(new, pname)
    old_port, old_iface = _port_rows(old, pname)
    pchg = dict((k, v) for k, v in new_port.items() if v != old_port[k])
    ichg = dict((k, v) for k, v in new_iface.items() if v != old_iface[k])
    # The waits expect the rows exactly as read, so a concurrent writer aborts the transaction.
    if pchg:
        ops.append(op_wait("Port", [where_uuid(port["_uuid"])], sorted(pchg),
                           [dict((k, port[k]) for k in pchg)]))
        ops.append(op_update("Port", port["_uuid"], pchg))
    if ichg and iface is not None:
        ops.append(op_wait("Interface", [where_uuid(iface["_uuid"])], sorted(ichg),
                           [dict((k, iface[k]) for k in ichg)]))
        ops.append(op_update("Interface", iface["_uuid"], ichg))
    return ops


def _fake_operations(snap, before, after, desired):
    ops = []
    parent = snap.bridges[desired["parent"]]
    puuid = parent["_uuid"]
    name = desired["name"]
    ovs_uuid = snap.ovs["_uuid"]
    ops.append(op_wait("Bridge", [where_uuid(puuid)], ["ports"],
                       [{"ports": [Uuid(u) for u in as_list(parent["ports"])]}]))
    if after is None:
        doomed = [Uuid(snap.ports_by_name[name]["_uuid"])] + \
            [Uuid(snap.ports_by_name[p]["_uuid"]) for p in sorted(before["ports"])]
        ops.append(op_mutate("Bridge", [where_uuid(puuid)], [["ports", "delete", doomed]]))
        return _bump(ops, ovs_uuid)
    old_ports = before["ports"] if before else {}
    added = sorted(set(after["ports"]) - set(old_ports))
    removed = sorted(set(old_ports) - set(after["ports"]))
    inserts = []
    if before is None:
        fake_view = port_view({}, {"type": "internal"})
        fake_view["tag"] = desired["vlan"]
        fake_view["external_ids"] = fake_port_external_ids({}, after["external_ids"])
        ops += _insert_port(name, fake_view, {"fake_bridge": True})
        inserts.append(NamedUuid(_row_name("port", name)))
    elif before["external_ids"] != after["external_ids"]:
        fake = snap.ports_by_name[name]
        ops.append(op_wait("Port", [where_uuid(fake["_uuid"])], ["external_ids"],
                           [{"external_ids": fake["external_ids"]}]))
        ops.append(op_update("Port", fake["_uuid"],
                             {"external_ids": fake_port_external_ids(fake["external_ids"], after["external_ids"])}))
    for pname in added:
        ops += _insert_port(pname, after["ports"][pname])
        inserts.append(NamedUuid(_row_name("port", pname)))
    mutations = []
    if removed:
        mutations.append(["ports", "delete", [Uuid(snap.ports_by_name[p]["_uuid"]) for p in removed]])
    if inserts:
        mutations.append(["ports", "insert", inserts])
    if mutations:
        ops.append(op_mutate("Bridge", [where_uuid(puuid)], mutations))
    for pname in sorted(set(old_ports) & set(after["ports"])):
        if old_ports[pname] != after["ports"][pname]:
            ops += _update_port(snap, pname, old_ports[pname], after["ports"][pname])
    return _bump(ops, ovs_uuid)


def _bump(ops, ovs_uuid):
    """Ask ovs-vswitchd to reconfigure and learn which cfg to wait for."""
    ops.append(op_mutate("Open_vSwitch", [where_uuid(ovs_uuid)], [["next_cfg", "+=", 1]]))
    ops.append(op_select("Open_vSwitch", ["next_cfg"], [where_uuid(ovs_uuid)]))
    return ops


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

def managed_link_keys(desired):
    keys = {}
    for spec in desired["ports"] or []:
        ks = [k for k in LINK_KEYS if spec[k] is not None]
        if ks:
            keys[spec["name"]] = ks
    return keys


def plan(snap, desired, link_state):
    """Return a Plan for the desired bridge against a snapshot (pure)."""
    check_conflicts(snap, desired)
    before = current_view(snap, desired)
    keys = managed_link_keys(desired)
    add_link_state(before, link_state, keys)
    after = desired_view(before, desired)
    if after is not None and after.get("stp") and after.get("rstp"):
        raise ValidationError("stp and rstp are exclusive, and bridge %r would have both enabled: set %s: false"
                              % (desired["name"], "stp" if desired["rstp"] else "rstp"))
    return Plan(before, after)


def port_report(snap, bridge_view):
    """{port: {uuid, ofport, ...}} for the ports of a view, from a (fresh) snapshot."""
    out = {}
    if bridge_view is None:
        return out
    for pname in sorted(bridge_view["ports"]):
        port = snap.ports_by_name.get(pname)
        iface = snap.port_iface(port) if port else None
        ofport = as_optional(iface.get("ofport")) if iface else None
        out[pname] = {
            "uuid": port["_uuid"] if port else None,
            "ofport": ofport if ofport not in (None, -1) else None,
            "error": as_optional(iface.get("error")) if iface else None,
        }
    return out


def read_link_state(desired):
    keys = managed_link_keys(desired)
    if not keys:
        return {}
    with Netlink() as netlink:
        return netlink.state(keys)


def converge(desired, endpoint, timeout=30.0, check_mode=False, attempts=3):
    """Make the switch match ``desired``; return the result dictionary.

    One read, one write transaction (retried from a fresh read when another
    client changed what was read), then a wait until ovs-vswitchd applied it,
    then the netlink part (addresses, link state) on the devices OVS created.
    """
    with OvsdbClient(endpoint, timeout=timeout) as client:
        for attempt in range(attempts):
            snap = Snapshot.read(client)
            if snap.ovs is None:
                raise OvsdbError("the OVSDB at %s has no Open_vSwitch row; the database was never initialised"
                                 % endpoint)
            the_plan = plan(snap, desired, read_link_state(desired))
            if check_mode:
                break
            ops = build_operations(snap, the_plan, desired)
            if not ops:
                break
            try:
                results = client.transact(ops)
            except OvsdbConflict:
                if attempt + 1 == attempts:
                    raise
                continue
            client.wait_cur_cfg(results[-1]["rows"][0]["next_cfg"], timeout)
            snap = Snapshot.read(client)
            break
        if not check_mode:
            actions = the_plan.link_actions()
            if actions:
                with Netlink() as netlink:
                    for name, addresses, up in actions:
                        netlink.converge(name, addresses, up, timeout)

    # After a real run the snapshot is the fresh one; in check mode it is the current state.
    if desired["parent"] is not None:
        row = snap.ports_by_name.get(desired["name"])
    else:
        row = snap.bridges.get(desired["name"])
    view = the_plan.after if the_plan.after is not None else None
    return {
        "changed": the_plan.changed,
        "changes": the_plan.changes,
        "bridge": {"name": desired["name"], "uuid": row["_uuid"] if row else None},
        "ports": port_report(snap, view),
        "before": the_plan.before,
        "after": the_plan.after,
    }
