# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The openflow_flow reconciler: read the table once, plan, apply in one bundle.

Ownership is by cookie: a task owns exactly the flows that carry its cookie.
It reads every flow of the bridge once, so that it can refuse a desired flow
that would replace a flow of another owner (same table, priority and match).
The plan is a list of FLOW_MODs (and GROUP_MODs) applied in ONE atomic,
ordered bundle. Meters cannot be part of a bundle in Open vSwitch; they are
sent before the bundle (new or changed ones) and after it (deleted ones),
each batch confirmed by a barrier.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow import flow as flowtext
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.connection import (
    OpenFlowConnection, mgmt_socket,
)
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowError
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import check_ifname

ALL_ONES64 = 0xffffffffffffffff
VID_PRESENT = 0x1000


# --------------------------------------------------------------------------
# The two canonical forms of vlan_vid
# --------------------------------------------------------------------------
# The text model (flow.py) keeps vlan_vid as the raw OXM value, present bit included (0x100a is VLAN 10);
# the codec as a 12-bit id with "tagged"/"untagged" (and a raw {"wire": True} form). Planning works in the
# text model's form; these two functions translate at the codec boundary.

def _vid_to_codec(value):
    if isinstance(value, dict):
        return {"value": value["value"], "mask": value.get("mask"), "wire": True}
    return {"value": value, "mask": None, "wire": True}


def _vid_from_codec(value):
    if value == "untagged":
        return 0
    if value == "tagged":
        return {"value": VID_PRESENT, "mask": VID_PRESENT}
    if isinstance(value, dict):
        if value.get("wire"):
            mask = value.get("mask")
            return value["value"] if mask in (None, 0x1fff) else {"value": value["value"], "mask": mask}
        return {"value": VID_PRESENT | value["value"], "mask": VID_PRESENT | value["mask"]}
    return VID_PRESENT | value


def _map_actions(actions, vid):
    out = []
    for action in actions:
        if action.get("type") == "set_field" and action.get("field") == "vlan_vid":
            action = dict(action, value=vid(action["value"]))
        out.append(action)
    return out


def _convert(flow, match_vid, set_vid):
    flow = dict(flow)
    if "vlan_vid" in flow.get("match", {}):
        flow["match"] = dict(flow["match"], vlan_vid=match_vid(flow["match"]["vlan_vid"]))
    flow["instructions"] = [dict(i, actions=_map_actions(i["actions"], set_vid)) if "actions" in i else i
                            for i in flow.get("instructions", [])]
    return flow


def to_codec(flow):
    return _convert(flow, _vid_to_codec, lambda v: v & 0xfff)


def from_codec(flow):
    return _convert(flow, _vid_from_codec, lambda v: VID_PRESENT | v)


def _group_to_codec(group):
    return dict(group, buckets=[dict(b, actions=_map_actions(b["actions"], lambda v: v & 0xfff))
                                for b in group["buckets"]])


def _group_from_codec(group):
    return dict(group, buckets=[dict(b, actions=_map_actions(b["actions"], lambda v: VID_PRESENT | v))
                                for b in group["buckets"]])


class FlowInputError(ValueError):
    """A desired flow, meter or group is invalid; the message names which."""


# --------------------------------------------------------------------------
# Desired state
# --------------------------------------------------------------------------

def parse_cookie(value):
    """A cookie given as an int or a decimal/0x-hex string."""
    if isinstance(value, str):
        try:
            value = int(value.strip(), 0)
        except ValueError:
            raise FlowInputError("cookie %r is not an integer (decimal or 0x hex)" % value)
    return _check_cookie(value)


def _check_cookie(cookie):
    if isinstance(cookie, bool) or not isinstance(cookie, int):
        raise FlowInputError("cookie must be an integer, got %r" % (cookie,))
    if cookie <= 0 or cookie >= ALL_ONES64:
        raise FlowInputError("cookie 0x%x is out of range: use 1 to 0x%x (0 is what flows without an owner "
                             "carry)" % (cookie & ALL_ONES64, ALL_ONES64 - 1))
    return cookie


def parse_flows(items, cookie):
    """Parse the user's flows (ovs-ofctl text or dicts) into canonical flows with the task's cookie."""
    flows = []
    seen = {}
    for index, item in enumerate(items or []):
        where = "flows[%d]" % index
        try:
            if isinstance(item, str):
                parsed = flowtext.parse_flow(item)
                given_cookie = "cookie=" in item.replace(" ", "")
            elif isinstance(item, dict):
                parsed = flowtext.flow_from_dict(item)
                given_cookie = "cookie" in item
            else:
                raise FlowInputError("%s must be a string in ovs-ofctl syntax or a dictionary, not %s"
                                     % (where, type(item).__name__))
        except ValueError as exc:  # FlowSyntaxError and codec errors are ValueErrors
            raise FlowInputError("%s: %s" % (where, exc))
        if given_cookie and parsed["cookie"] != cookie:
            raise FlowInputError("%s carries cookie 0x%x, but this task owns cookie 0x%x: leave the cookie out "
                                 "of the flow" % (where, parsed["cookie"], cookie))
        parsed["cookie"] = cookie
        normal = parsed
        try:
            codec.flow_mod(codec.OFP13_VERSION, to_codec(normal))  # encodable: every value checked before sending
        except ValueError as exc:
            raise FlowInputError("%s: %s" % (where, exc))
        key = flowtext.flow_key(normal)
        if key in seen:
            raise FlowInputError("%s and flows[%d] are the same flow (same table, priority and match)"
                                 % (where, seen[key]))
        seen[key] = index
        flows.append(normal)
    return flows


def parse_meters(items):
    meters = []
    ids = set()
    for index, item in enumerate(items or []):
        where = "meters[%d]" % index
        if not isinstance(item, dict):
            raise FlowInputError("%s must be a dictionary" % where)
        meter = {"meter_id": item.get("meter_id", item.get("id")),
                 "flags": sorted(item.get("flags") or ["pktps"]),
                 "bands": []}
        mid = meter["meter_id"]
        if isinstance(mid, bool) or not isinstance(mid, int) or not 1 <= mid <= codec.OFPM_MAX:
            raise FlowInputError("%s: meter_id must be an integer 1-%d" % (where, codec.OFPM_MAX))
        if mid in ids:
            raise FlowInputError("%s: meter %d is listed twice" % (where, mid))
        ids.add(mid)
        for flag in meter["flags"]:
            if flag not in codec.METER_FLAGS:
                raise FlowInputError("%s: unknown meter flag %r (expected %s)"
                                     % (where, flag, ", ".join(sorted(codec.METER_FLAGS))))
        if "kbps" in meter["flags"] and "pktps" in meter["flags"]:
            raise FlowInputError("%s: a meter counts either kbps or pktps" % where)
        bands = item.get("bands")
        if not bands or not isinstance(bands, list):
            raise FlowInputError("%s: a meter needs at least one band" % where)
        for bindex, band in enumerate(bands):
            bwhere = "%s.bands[%d]" % (where, bindex)
            if not isinstance(band, dict):
                raise FlowInputError("%s must be a dictionary" % bwhere)
            btype = band.get("type", "drop")
            if btype != "drop":
                raise FlowInputError("%s: band type %r is not supported (Open vSwitch's userspace datapath "
                                     "implements only drop bands)" % (bwhere, btype))
            rate = band.get("rate")
            if isinstance(rate, bool) or not isinstance(rate, int) or not 1 <= rate <= 0xffffffff:
                raise FlowInputError("%s: rate must be a positive integer" % bwhere)
            burst = band.get("burst_size", 0)
            if isinstance(burst, bool) or not isinstance(burst, int) or not 0 <= burst <= 0xffffffff:
                raise FlowInputError("%s: burst_size must be a non-negative integer" % bwhere)
            if burst and "burst" not in meter["flags"]:
                raise FlowInputError("%s: burst_size needs the meter flag burst" % bwhere)
            meter["bands"].append({"type": "drop", "rate": rate, "burst_size": burst})
        try:
            meter = codec.normalize_meter(meter)
            codec.meter_mod(codec.OFP13_VERSION, meter)
        except ValueError as exc:
            raise FlowInputError("%s: %s" % (where, exc))
        meters.append(meter)
    return meters


def parse_groups(items):
    groups = []
    ids = set()
    for index, item in enumerate(items or []):
        where = "groups[%d]" % index
        if not isinstance(item, dict):
            raise FlowInputError("%s must be a dictionary" % where)
        gid = item.get("group_id", item.get("id"))
        if isinstance(gid, bool) or not isinstance(gid, int) or not 0 <= gid <= codec.OFPG_MAX:
            raise FlowInputError("%s: group_id must be an integer 0-%d" % (where, codec.OFPG_MAX))
        if gid in ids:
            raise FlowInputError("%s: group %d is listed twice" % (where, gid))
        ids.add(gid)
        gtype = item.get("type", "all")
        if gtype not in codec.GROUP_TYPES:
            raise FlowInputError("%s: unknown group type %r (expected %s)"
                                 % (where, gtype, ", ".join(sorted(codec.GROUP_TYPES))))
        buckets = []
        for bindex, bucket in enumerate(item.get("buckets") or []):
            bwhere = "%s.buckets[%d]" % (where, bindex)
            if not isinstance(bucket, dict):
                raise FlowInputError("%s must be a dictionary" % bwhere)
            actions = bucket.get("actions", [])
            try:
                if isinstance(actions, str):
                    actions = flowtext.parse_actions(actions)
            except ValueError as exc:
                raise FlowInputError("%s: %s" % (bwhere, exc))
            buckets.append({"weight": bucket.get("weight", 1 if gtype == "select" else 0),
                            "watch_port": bucket.get("watch_port"), "watch_group": bucket.get("watch_group"),
                            "actions": actions})
        group = {"group_id": gid, "type": gtype, "buckets": buckets}
        try:
            group = _group_from_codec(codec.normalize_group(_group_to_codec(group)))
            codec.group_mod(codec.OFP13_VERSION, _group_to_codec(group))
        except ValueError as exc:
            raise FlowInputError("%s: %s" % (where, exc))
        groups.append(group)
    return groups


def normalize_desired(params):
    """Validate everything the user gave; nothing is sent before this passes."""
    cookie = _check_cookie(params["cookie"])
    state = params.get("state") or "present"
    if state == "present" and params.get("flows") is None and not params.get("exclusive") \
            and params.get("meters") is None and params.get("groups") is None:
        raise FlowInputError("nothing to do: give flows (or exclusive: true to remove every flow of the cookie), "
                             "meters or groups")
    if state == "absent" and params.get("exclusive"):
        raise FlowInputError("exclusive applies to state=present only")
    return {
        "cookie": cookie,
        "state": state,
        "exclusive": bool(params.get("exclusive")),
        "flows": parse_flows(params.get("flows"), cookie),
        "flows_given": params.get("flows") is not None,
        "meters": parse_meters(params.get("meters")),
        "groups": parse_groups(params.get("groups")),
    }


# --------------------------------------------------------------------------
# Plan
# --------------------------------------------------------------------------

class Plan(object):
    def __init__(self):
        self.meters_before = []   # METER_MODs sent before the bundle
        self.bundle = []          # GROUP_MODs and FLOW_MODs, in order
        self.meters_after = []    # METER_MODs sent after the bundle
        self.changes = []
        self.counts = {"added": 0, "modified": 0, "deleted": 0}
        self.before = []
        self.after = []

    @property
    def changed(self):
        return bool(self.changes)


def _line(flow):
    return flowtext.format_flow(flow)


def _band_text(band):
    burst = (",burst_size=%d" % band["burst_size"]) if band.get("burst_size") else ""
    return "type=%s,rate=%d%s" % (band["type"], band["rate"], burst)


def _meter_line(meter):
    bands = ",".join(_band_text(b) for b in meter["bands"])
    return "meter=%d %s bands=%s" % (meter["meter_id"], " ".join(meter["flags"]), bands)


def _group_line(group):
    parts = ["group_id=%d" % group["group_id"], "type=%s" % group["type"]]
    for bucket in group["buckets"]:
        text = "bucket="
        extra = []
        if group["type"] == "select" and bucket.get("weight", 1) != 1:  # ovs-ofctl omits the default weight
            extra.append("weight:%d" % bucket["weight"])
        if bucket.get("watch_port") is not None:
            extra.append("watch_port:%s" % codec.port_name(bucket["watch_port"]))
        if bucket.get("watch_group") is not None:
            extra.append("watch_group:%d" % bucket["watch_group"])
        extra.append("actions=%s" % flowtext.format_actions(bucket["actions"]))
        parts.append(text + ",".join(extra))
    return ",".join(parts)


def plan(desired, current_flows, current_meters, current_groups):
    """Pure: compute the plan from the desired state and what the switch holds."""
    cookie = desired["cookie"]
    p = Plan()
    owned = {}
    others = {}
    for entry in current_flows:
        flow = from_codec(codec.flow_only(entry))
        key = flowtext.flow_key(flow)
        if flow["cookie"] == cookie:
            owned[key] = flow
        else:
            others[key] = flow
    wanted = dict((flowtext.flow_key(f), f) for f in desired["flows"])

    # Ownership: never replace a flow of another cookie.
    if desired["state"] == "present":
        for key, flow in wanted.items():
            if key in others:
                raise FlowInputError("flow %s would replace a flow owned by cookie 0x%x (same table, priority and "
                                     "match); this task owns only cookie 0x%x"
                                     % (_line(flow), others[key]["cookie"], cookie))

    # Meters and groups are named by id: listed ones are managed, others left alone.
    cur_meters = dict((m["meter_id"], codec.normalize_meter(m)) for m in current_meters)
    cur_groups = dict((g["group_id"], _group_from_codec(codec.normalize_group(g))) for g in current_groups)
    group_adds, group_deletes = [], []
    for meter in desired["meters"]:
        mid = meter["meter_id"]
        if desired["state"] == "absent":
            if mid in cur_meters:
                p.meters_after.append(("delete", {"meter_id": mid, "flags": [], "bands": []}))
                p.changes.append("delete meter: %s" % _meter_line(cur_meters[mid]))
        elif mid not in cur_meters:
            p.meters_before.append(("add", meter, None))
            p.changes.append("add meter: %s" % _meter_line(meter))
        elif cur_meters[mid] != meter:
            p.meters_before.append(("modify", meter, cur_meters[mid]))
            p.changes.append("modify meter: %s -> %s" % (_meter_line(cur_meters[mid]), _meter_line(meter)))
    for group in desired["groups"]:
        gid = group["group_id"]
        if desired["state"] == "absent":
            if gid in cur_groups:
                group_deletes.append(("delete", {"group_id": gid, "type": cur_groups[gid]["type"], "buckets": []}))
                p.changes.append("delete group: %s" % _group_line(cur_groups[gid]))
        elif gid not in cur_groups:
            group_adds.append(("add", group))
            p.changes.append("add group: %s" % _group_line(group))
        elif cur_groups[gid] != group:
            group_adds.append(("modify", group))
            p.changes.append("modify group: %s -> %s" % (_group_line(cur_groups[gid]), _group_line(group)))

    flow_mods = []
    fresh = {}  # flows the run adds or replaces, by key
    if desired["state"] == "present":
        for key in sorted(wanted, key=_sort_key):
            flow = wanted[key]
            if key not in owned:
                flow_mods.append(("add", flow))
                p.changes.append("add flow: %s" % _line(flow))
                p.counts["added"] += 1
                fresh[key] = flow
            elif not _same(owned[key], flow):
                flow_mods.append(("add", flow))  # ADD over the same match replaces the flow entirely
                p.changes.append("modify flow: %s -> %s" % (_line(owned[key]), _line(flow)))
                p.counts["modified"] += 1
                fresh[key] = flow
        kept = owned
        if desired["exclusive"]:
            kept = dict((k, v) for k, v in owned.items() if k in wanted)
            for key in sorted(set(owned) - set(wanted), key=_sort_key):
                flow_mods.append(("delete_strict", owned[key]))
                p.changes.append("delete flow: %s" % _line(owned[key]))
                p.counts["deleted"] += 1
    else:
        doomed = set(k for k in wanted if k in owned) if desired["flows_given"] else set(owned)
        for key in sorted(doomed, key=_sort_key):
            flow_mods.append(("delete_strict", owned[key]))
            p.changes.append("delete flow: %s" % _line(owned[key]))
            p.counts["deleted"] += 1
        kept = dict((k, v) for k, v in owned.items() if k not in doomed)

    # Open vSwitch deletes every flow that uses a group or meter it deletes, whoever owns the flow:
    # refuse unless no flow outside this run's deletions uses it.
    remaining = list(others.values()) + list(kept.values()) + list(fresh.values())
    doomed_ids = [("group", entry[1]["group_id"]) for entry in group_deletes] + \
        [("meter", entry[1]["meter_id"]) for entry in p.meters_after]
    for kind, ident in doomed_ids:
        users = [f for f in remaining if _uses(f, kind, ident)]
        if users:
            raise FlowInputError("%s %d is used by %d flow(s) that would stay, for example %s; Open vSwitch would "
                                 "delete them with the %s, so remove them first"
                                 % (kind, ident, len(users), _line(users[0]), kind))

    # Order inside the bundle: groups the flows use first, then flows, then group deletions.
    p.bundle = [("group", c, g) for c, g in group_adds] + [("flow", c, f) for c, f in flow_mods] + \
        [("group", c, g) for c, g in group_deletes]
    # Each flow is formatted once: a flow the run leaves alone keeps its line.
    before_lines = dict((key, _line(flow)) for key, flow in owned.items())
    p.before = sorted(before_lines.values())
    p.after = sorted([before_lines[key] for key in kept if key not in fresh] +
                     [_line(flow) for flow in fresh.values()])
    return p


def _uses(flow, kind, ident):
    """Whether a flow refers to group or meter ``ident``."""
    for inst in flow.get("instructions", []):
        if kind == "meter" and inst.get("type") == "meter" and inst.get("meter_id") == ident:
            return True
        for action in inst.get("actions", []):
            if kind == "group" and action.get("type") == "group" and action.get("group_id") == ident:
                return True
            if kind == "meter" and action.get("type") == "meter" and action.get("meter_id") == ident:
                return True
    return False


def _sort_key(key):
    return repr(key)


def _same(current, desired):
    return flowtext.flow_equal(current, desired)


def _messages(version, items):
    out = []
    for kind, command, body in items:
        if kind == "group":
            out.append(codec.group_mod(version, _group_to_codec(body), command=command))
        elif command == "delete_strict":
            out.append(codec.flow_mod(version, to_codec(body), command="delete_strict", cookie_mask=ALL_ONES64))
        else:
            out.append(codec.flow_mod(version, to_codec(body), command=command))
    return out


# --------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------

def _apply(conn, the_plan):
    """Meters (not allowed in bundles) first, then the bundle; meters are put back if anything fails."""
    version = conn.version
    before = the_plan.meters_before
    if before:
        try:
            conn.send_batch([codec.meter_mod(version, m, command=c) for c, m, _old in before], context="meters")
        except OpenFlowError as exc:
            failed = set(i for i, _err in getattr(exc, "errors", []) or [])
            index = getattr(exc, "index", None)
            undo_note = _undo_meters(conn, [b for i, b in enumerate(before) if i not in failed])
            if index is not None and 0 <= index < len(before):
                command, meter = before[index][0], before[index][1]
                raise OpenFlowError("the switch rejected %s meter %s, so nothing was applied%s: %s"
                                    % (command, _meter_line(meter), undo_note, exc))
            raise OpenFlowError("%s%s" % (exc, undo_note))
    if the_plan.bundle:
        try:
            conn.bundle(_messages(version, the_plan.bundle))
        except OpenFlowError as exc:
            undo_note = _undo_meters(conn, before)
            index = getattr(exc, "index", None)
            if index is not None and 0 <= index < len(the_plan.bundle):
                kind, command, body = the_plan.bundle[index]
                what = _line(body) if kind == "flow" else _group_line(body)
                raise OpenFlowError("the switch rejected %s %s %s, so nothing was applied%s: %s"
                                    % (command, kind, what, undo_note, exc))
            raise OpenFlowError("%s%s" % (exc, undo_note))
    if the_plan.meters_after:
        conn.send_batch([codec.meter_mod(version, m, command=c) for c, m in the_plan.meters_after], context="meters")


def _undo_meters(conn, applied):
    """Put meters sent before a failure back as they were; '' or a note for the message."""
    if not applied:
        return ""
    undo = []
    for command, meter, old in reversed(applied):
        if command == "add":
            undo.append(codec.meter_mod(conn.version, {"meter_id": meter["meter_id"], "flags": [], "bands": []},
                                        command="delete"))
        else:
            undo.append(codec.meter_mod(conn.version, old, command="modify"))
    try:
        conn.send_batch(undo, context="meters undo")
    except OpenFlowError as exc:
        return " (and the meters changed before could not be put back: %s)" % exc
    return ""


def target_for(bridge, target=None, rundir=None):
    """The socket to talk to: ``target``, else the bridge's management socket."""
    check_ifname(bridge, "bridge name")
    if target:
        return target
    return mgmt_socket(bridge, rundir)


def converge(desired, target, timeout=30.0, check_mode=False):
    """Read once, plan, apply in one bundle; return the result dictionary."""
    with OpenFlowConnection(target, timeout=timeout) as conn:
        flows = conn.flow_stats()
        meters = conn.meters() if desired["meters"] else []
        groups = conn.groups() if desired["groups"] else []
        the_plan = plan(desired, flows, meters, groups)
        if not check_mode and the_plan.changed:
            _apply(conn, the_plan)
        version_name = codec.VERSION_NAMES.get(conn.version, str(conn.version))
    return {
        "changed": the_plan.changed,
        "changes": the_plan.changes,
        "counts": the_plan.counts,
        "flows": the_plan.after,
        "openflow_version": version_name,
        "before": the_plan.before,
        "after": the_plan.after,
    }


def gather(target, timeout=30.0, cookie=None, table=None):
    """Flows (structured and as lines), meters and groups of a bridge, for the info module."""
    if cookie is not None:
        _check_cookie(cookie)
    if table is not None and not 0 <= table <= codec.OFPTT_MAX:
        raise FlowInputError("table %d is out of range (0-%d)" % (table, codec.OFPTT_MAX))
    with OpenFlowConnection(target, timeout=timeout) as conn:
        entries = conn.flow_stats(table=table, cookie=cookie)
        meters = conn.meters()
        groups = conn.groups()
        version_name = codec.VERSION_NAMES.get(conn.version, str(conn.version))
    flows = []
    for entry in sorted(entries, key=lambda e: (e["table"], -e["priority"], e["cookie"])):
        flow = from_codec(codec.flow_only(entry))
        flows.append({"flow": flow, "line": _line(flow),
                      "packet_count": entry.get("packet_count"), "byte_count": entry.get("byte_count"),
                      "duration_sec": entry.get("duration_sec")})
    return {
        "openflow_version": version_name,
        "flows": flows,
        "meters": [dict(m, line=_meter_line(m)) for m in sorted(meters, key=lambda m: m["meter_id"])],
        "groups": [dict(g, line=_group_line(g)) for g in
                   sorted((_group_from_codec(g) for g in groups), key=lambda g: g["group_id"])],
    }
