# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenFlow 1.3 / 1.4 / 1.5 wire codec (``struct`` based, stdlib only).

It encodes what the collection sends to Open vSwitch and decodes what Open
vSwitch sends back, for wire versions 4 (OF1.3), 5 (OF1.4) and 6 (OF1.5).
It knows nothing of sockets (see ``connection.py``) nor of Ansible.

Messages
========
Every message is a plain dict with ``type``, ``version`` and ``xid``;
:func:`encode` turns one into bytes and :func:`decode` turns bytes back into
the same dict (``decode(encode(m)) == m`` for every canonical ``m``). Builders
(:func:`hello`, :func:`flow_mod`, :func:`bundle_add` ...) return bytes.

=====================  ====================================================
type                   keys besides type/version/xid
=====================  ====================================================
hello                  versions (list of wire versions, or None: no bitmap)
error                  err_type, err_code, type_name, code_name,
                       experimenter (None or the id), data (bytes)
echo_request/_reply    data (bytes)
features_request       -
features_reply         datapath_id, n_buffers, n_tables, auxiliary_id,
                       capabilities
barrier_request/_reply -
flow_mod               command, flow, cookie_mask, out_port, out_group,
                       buffer_id
group_mod              command, group
meter_mod              command, meter
multipart_request      mp_type, flags, body (a dict, see below)
multipart_reply        mp_type, flags, body (a list of entries)
bundle_control         bundle_id, ctrl, flags
bundle_add             bundle_id, flags, message (the inner message dict)
experimenter           experimenter, exp_type, data (bytes)
unknown                msg_type, body (bytes)
=====================  ====================================================

Commands are strings: flow_mod ``add``, ``modify``, ``modify_strict``,
``delete``, ``delete_strict``; group_mod and meter_mod ``add``, ``modify``,
``delete``. Multipart ``flags`` is a list (``["more"]`` or ``[]``); bundle
``ctrl`` is one of ``open_request``, ``open_reply``, ``close_request``,
``close_reply``, ``commit_request``, ``commit_reply``, ``discard_request``,
``discard_reply`` and bundle ``flags`` a sorted list among ``atomic``,
``ordered`` (and ``time`` in OF1.5). In OF1.3, bundles are the ONF extension
(experimenter 0x4F4E4600, ONFT_BUNDLE_CONTROL 2300 / ONFT_BUNDLE_ADD_MESSAGE
2301); the dict is the same, only the bytes differ.

Multipart ``mp_type`` and bodies:

==============  =================================  ==========================
mp_type         request body                       reply entries
==============  =================================  ==========================
flow            table (255 = all), out_port,       flow stats entries
                out_group, cookie, cookie_mask,
                match
meter           meter_id                           meter stats
meter_config    meter_id                           meters
group           group_id                           group stats
group_desc      group_id (OF1.5 only on the wire)  groups
==============  =================================  ==========================

(``flow`` is OFPMP_FLOW in OF1.3/1.4 and OFPMP_FLOW_DESC in OF1.5, which is
what Open vSwitch answers with instructions; ``meter_config`` is
OFPMP_METER_CONFIG, called OFPMP_METER_DESC in OF1.5.)

Flows
=====
::

    flow = {"table": int, "priority": int, "cookie": int,
            "idle_timeout": int, "hard_timeout": int,
            "flags": sorted list among send_flow_rem, check_overlap,
                     reset_counts, no_packet_counts, no_byte_counts,
            "match": {field: value} or {field: {"value": v, "mask": m}},
            "instructions": [...]}

A missing key takes its default on encode (table 0, priority 32768, the rest
0 / empty); decode always returns every key. ``importance`` (OF1.4+) is
optional: encoded when given, decoded only when not 0. A flow stats entry
is a flow plus ``duration_sec``, ``duration_nsec``, ``packet_count``,
``byte_count`` (OF1.5: those the switch reports, plus ``idle_age``); see
:data:`FLOW_KEYS` and :func:`flow_only`.

Match fields (:data:`MATCH_FIELDS`): in_port, eth_src, eth_dst, eth_type,
vlan_vid, vlan_pcp, ip_dscp, ip_ecn, ip_proto, ipv4_src, ipv4_dst, ipv6_src,
ipv6_dst, tcp_src, tcp_dst, udp_src, udp_dst, sctp_src, sctp_dst,
icmpv4_type, icmpv4_code, icmpv6_type, icmpv6_code, arp_op, arp_spa, arp_tpa,
arp_sha, arp_tha, metadata, tunnel_id, ct_state, ct_zone, ct_mark,
reg0..reg15. Values are ints (in_port too; reserved ports are the OFPP_*
ints), MACs ``"aa:bb:cc:dd:ee:ff"`` (lower case), IPv4 dotted, IPv6 as
``str(ipaddress.IPv6Address)``. A mask has the value's form (a MAC mask is a
MAC string, an IPv4 mask a dotted string) and is given only when it is not
all ones; a value must have no bit set outside its mask (Open vSwitch refuses
such a match with OFPBMC_BAD_WILDCARDS, so the encoder refuses it first).
``ip_dscp`` is the 6-bit DSCP. The match is a dict, so the order in
which the switch sends the fields does not matter; the encoder always emits
them sorted by OXM class and field number (the Nicira fields, class 0x0001,
first), which puts every prerequisite before its dependents.
Prerequisites are not added for you (``ip_proto`` needs ``eth_type``,
``tcp_dst`` needs ``ip_proto`` 6, ``vlan_pcp`` needs a VLAN, ...): the switch
rejects a match without them (OFPBMC_BAD_PREREQ).

``vlan_vid`` is the 12-bit VLAN id, with presence folded in:

* ``10``                              tagged, VLAN 10 (wire OFPVID_PRESENT|10)
* ``{"value": 16, "mask": 0xff0}``    tagged, VLAN id matching under the mask
                                      (wire 0x1010/0x1ff0)
* ``"tagged"``                        any tagged packet (wire 0x1000/0x1000)
* ``"untagged"``                      no VLAN tag (wire OFPVID_NONE, 0x0000)
* ``{"value": v, "mask": m, "wire": True}``  the raw 13-bit wire value and
                                      mask (``mask`` may be None), for what
                                      the forms above cannot express; decode
                                      produces it only for such bytes.

``ct_state`` is an int bit mask (:data:`CT_STATE_BITS`: new=0x01, est=0x02,
rel=0x04, rpl=0x08, inv=0x10, trk=0x20, snat=0x40, dnat=0x80), usually with a
mask: ``{"value": 0x22, "mask": 0x23}`` is ``+trk+est-new``.

Fields this codec has no name for decode to ``"oxm:0xCCCC:F"`` (or
``"oxm:0xffff:0xEEEEEEEE:F"`` for experimenter OXMs) with the raw value as a
``"0x..."`` hex string of the field's width (and mask); they encode back
unchanged. Two encodings Open vSwitch uses in replies are folded into the
names above: OF1.5 replies carry registers as 64-bit OXM_OF_PKT_REG<N>
(xreg N = reg 2N << 32 | reg 2N+1), decoded back to the 32-bit reg pairs that
are matched; and a packet_type of Ethernet (OXM_OF_PACKET_TYPE 0), which OVS
adds to a match that has no field implying Ethernet, is dropped.

Instructions
============
``{"type": "apply_actions", "actions": [...]}``,
``{"type": "write_actions", "actions": [...]}``, ``{"type": "clear_actions"}``,
``{"type": "goto_table", "table": n}``, ``{"type": "meter", "meter_id": n}``,
``{"type": "write_metadata", "metadata": v, "mask": m}`` (the mask is always
present in decoded form; all ones when absent on encode). In OF1.5, where
OFPIT_METER is gone, a meter instruction is encoded as an OFPAT_METER action
at the front of apply_actions, and a leading OFPAT_METER action is decoded
back into a meter instruction. No instructions, or an empty action list,
means drop. Unknown instructions decode to ``{"type": "raw", "hex": ...}``.

Actions
=======
* ``{"type": "output", "port": int, "max_len": int}`` (``max_len`` only for
  port CONTROLLER, default 0xffff = OFPCML_NO_BUFFER); reserved ports are the
  OFPP_* ints (:data:`PORT_NAMES`, :func:`port_number`, :func:`port_name`).
* ``{"type": "group", "group_id": n}``
* ``{"type": "set_field", "field": name, "value": v}`` (any match field;
  vlan_vid takes the VLAN id and sets OFPVID_PRESENT on the wire; a
  ``{"value", "mask"}`` value is OF1.5's masked set-field)
* ``{"type": "push_vlan", "ethertype": 0x8100}``, ``{"type": "pop_vlan"}``
* ``{"type": "dec_nw_ttl"}``, ``{"type": "set_nw_ttl", "ttl": n}``
* ``{"type": "meter", "meter_id": n}`` (OF1.5 OFPAT_METER not at the front)
* ``{"type": "resubmit", "port": int or None, "table": int or None}``:
  always sent as NXAST_RESUBMIT_TABLE (table 255 for None), as ovs-ofctl
  does; NXAST_RESUBMIT decodes to the same dict. Port None means IN_PORT
  (OFPP_IN_PORT is accepted on encode and decodes to None).
* ``{"type": "ct", "commit": bool, "zone": int or {"field": name, "ofs": o,
  "nbits": 16}, "table": int or None, "alg": int or None,
  "nat": None or {"type": "src"|"dst"|None, "ip_min": str|None,
  "ip_max": str|None, "port_min": int|None, "port_max": int|None,
  "persistent": bool, "random": bool, "hash": bool}}``
  (NXAST_CT with a nested NXAST_NAT). Two optional keys, present only when
  set: ``"force": True`` (NX_CT_F_FORCE) and ``"exec": [actions]`` (the other
  nested actions, e.g. set_field ct_mark). A NAT outside a ct decodes to
  ``{"type": "nat", "nat": {...}}``.
* ``{"type": "ct_clear"}``
* anything else decodes to ``{"type": "raw", "hex": ...}`` (the whole action)
  and encodes back unchanged.

Meters and groups
=================
::

    meter = {"meter_id": int,
             "flags": sorted list among kbps, pktps, burst, stats,
             "bands": [{"type": "drop", "rate": r, "burst_size": b},
                       {"type": "dscp_remark", "rate": r, "burst_size": b,
                        "prec_level": p},
                       {"type": "experimenter", "rate": r, "burst_size": b,
                        "experimenter": id}]}
    group = {"group_id": int, "type": "all" | "select" | "indirect" | "ff",
             "buckets": [{"weight": int, "watch_port": int or None,
                          "watch_group": int or None, "actions": [...]}]}

``watch_port``/``watch_group`` None is OFPP_ANY/OFPG_ANY (no liveness
watch). A missing bucket weight is 1 in a select group and 0 otherwise (also
what an OF1.5 bucket without a weight property means). Stats entries:
``{"meter_id", "flow_count", "packet_in_count", "byte_in_count",
"duration_sec", "duration_nsec", "band_stats": [{"packet_count",
"byte_count"}]}`` and ``{"group_id", "ref_count", "packet_count",
"byte_count", "duration_sec", "duration_nsec", "bucket_stats":
[{"packet_count", "byte_count"}]}``.

What the switch reports back
============================
Open vSwitch stores flows, meters and groups in its own normal form; the
desired state passed through :func:`normalize_flow`, :func:`normalize_meter`
and :func:`normalize_group` compares equal to what a flow stats / meter
config / group desc reply decodes to (see :func:`normalize_flow` for the
rules).

Errors
======
An OFPT_ERROR decodes with the names of its type and code (:func:`error_names`):
the OF1.3-1.5 tables, and the Nicira (0x00002320) and ONF (0x4F4E4600)
experimenter errors Open vSwitch sends (e.g. ONF 2313 OFPBFC_MSG_FAILED for
an OF1.3 bundle). Bad input to an encoder and malformed bytes raise
:class:`OpenFlowCodecError`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import binascii
import ipaddress
import struct

from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowCodecError

# --------------------------------------------------------------------------
# Versions, message types, reserved numbers
# --------------------------------------------------------------------------

OFP13_VERSION = 4
OFP14_VERSION = 5
OFP15_VERSION = 6
VERSIONS = (OFP13_VERSION, OFP14_VERSION, OFP15_VERSION)
VERSION_NAMES = {1: "OpenFlow10", 2: "OpenFlow11", 3: "OpenFlow12", 4: "OpenFlow13",
                 5: "OpenFlow14", 6: "OpenFlow15", 7: "OpenFlow16"}

OFP_HEADER = struct.Struct("!BBHI")
OFP_HEADER_LEN = 8
OFP_MAX_LEN = 0xffff

OFPT_HELLO = 0
OFPT_ERROR = 1
OFPT_ECHO_REQUEST = 2
OFPT_ECHO_REPLY = 3
OFPT_EXPERIMENTER = 4
OFPT_FEATURES_REQUEST = 5
OFPT_FEATURES_REPLY = 6
OFPT_PACKET_IN = 10
OFPT_FLOW_REMOVED = 11
OFPT_PORT_STATUS = 12
OFPT_FLOW_MOD = 14
OFPT_GROUP_MOD = 15
OFPT_MULTIPART_REQUEST = 18
OFPT_MULTIPART_REPLY = 19
OFPT_BARRIER_REQUEST = 20
OFPT_BARRIER_REPLY = 21
OFPT_METER_MOD = 29
OFPT_ROLE_STATUS = 30
OFPT_TABLE_STATUS = 31
OFPT_REQUESTFORWARD = 32
OFPT_BUNDLE_CONTROL = 33
OFPT_BUNDLE_ADD_MESSAGE = 34

MSG_TYPE_NAMES = {
    0: "HELLO", 1: "ERROR", 2: "ECHO_REQUEST", 3: "ECHO_REPLY", 4: "EXPERIMENTER",
    5: "FEATURES_REQUEST", 6: "FEATURES_REPLY", 7: "GET_CONFIG_REQUEST", 8: "GET_CONFIG_REPLY",
    9: "SET_CONFIG", 10: "PACKET_IN", 11: "FLOW_REMOVED", 12: "PORT_STATUS", 13: "PACKET_OUT",
    14: "FLOW_MOD", 15: "GROUP_MOD", 16: "PORT_MOD", 17: "TABLE_MOD", 18: "MULTIPART_REQUEST",
    19: "MULTIPART_REPLY", 20: "BARRIER_REQUEST", 21: "BARRIER_REPLY", 22: "QUEUE_GET_CONFIG_REQUEST",
    23: "QUEUE_GET_CONFIG_REPLY", 24: "ROLE_REQUEST", 25: "ROLE_REPLY", 26: "GET_ASYNC_REQUEST",
    27: "GET_ASYNC_REPLY", 28: "SET_ASYNC", 29: "METER_MOD", 30: "ROLE_STATUS", 31: "TABLE_STATUS",
    32: "REQUESTFORWARD", 33: "BUNDLE_CONTROL", 34: "BUNDLE_ADD_MESSAGE", 35: "CONTROLLER_STATUS",
}

# Ports (32-bit, OF1.1+).
OFPP_MAX = 0xffffff00
OFPP_UNSET = 0xfffffff7   # Open vSwitch's internal "no port"
OFPP_IN_PORT = 0xfffffff8
OFPP_TABLE = 0xfffffff9
OFPP_NORMAL = 0xfffffffa
OFPP_FLOOD = 0xfffffffb
OFPP_ALL = 0xfffffffc
OFPP_CONTROLLER = 0xfffffffd
OFPP_LOCAL = 0xfffffffe
OFPP_ANY = 0xffffffff

PORT_NAMES = {
    "in_port": OFPP_IN_PORT, "table": OFPP_TABLE, "normal": OFPP_NORMAL, "flood": OFPP_FLOOD,
    "all": OFPP_ALL, "controller": OFPP_CONTROLLER, "local": OFPP_LOCAL, "any": OFPP_ANY,
}
PORT_NUMBERS = dict((v, k) for k, v in PORT_NAMES.items())

OFPCML_MAX = 0xffe5
OFPCML_NO_BUFFER = 0xffff
OFP_NO_BUFFER = 0xffffffff
OFP_DEFAULT_PRIORITY = 0x8000

OFPTT_MAX = 0xfe
OFPTT_ALL = 0xff

OFPG_MAX = 0xffffff00
OFPG_ALL = 0xfffffffc
OFPG_ANY = 0xffffffff

OFPM_MAX = 0xffff0000
OFPM_SLOWPATH = 0xfffffffd
OFPM_CONTROLLER = 0xfffffffe
OFPM_ALL = 0xffffffff

OFPG15_BUCKET_ALL = 0xffffffff

NX_VENDOR_ID = 0x00002320
ONF_VENDOR_ID = 0x4f4e4600
ONFT_BUNDLE_CONTROL = 2300
ONFT_BUNDLE_ADD_MESSAGE = 2301

OFPHET_VERSIONBITMAP = 1

# Flow mod commands and flags.
FLOW_MOD_COMMANDS = {"add": 0, "modify": 1, "modify_strict": 2, "delete": 3, "delete_strict": 4}
FLOW_MOD_FLAGS = {"send_flow_rem": 1 << 0, "check_overlap": 1 << 1, "reset_counts": 1 << 2,
                  "no_packet_counts": 1 << 3, "no_byte_counts": 1 << 4}
GROUP_MOD_COMMANDS = {"add": 0, "modify": 1, "delete": 2}
GROUP_TYPES = {"all": 0, "select": 1, "indirect": 2, "ff": 3}
METER_MOD_COMMANDS = {"add": 0, "modify": 1, "delete": 2}
METER_FLAGS = {"kbps": 1 << 0, "pktps": 1 << 1, "burst": 1 << 2, "stats": 1 << 3}
METER_BAND_TYPES = {"drop": 1, "dscp_remark": 2, "experimenter": 0xffff}
MULTIPART_FLAGS = {"more": 1}
MULTIPART_TYPES = {"flow": 1, "group": 6, "group_desc": 7, "meter": 9, "meter_config": 10}
BUNDLE_CTRL_TYPES = {"open_request": 0, "open_reply": 1, "close_request": 2, "close_reply": 3,
                     "commit_request": 4, "commit_reply": 5, "discard_request": 6, "discard_reply": 7}
BUNDLE_FLAGS = {"atomic": 1 << 0, "ordered": 1 << 1, "time": 1 << 2}

CT_STATE_BITS = {"new": 0x01, "est": 0x02, "rel": 0x04, "rpl": 0x08,
                 "inv": 0x10, "trk": 0x20, "snat": 0x40, "dnat": 0x80}

# Instructions.
OFPIT_GOTO_TABLE = 1
OFPIT_WRITE_METADATA = 2
OFPIT_WRITE_ACTIONS = 3
OFPIT_APPLY_ACTIONS = 4
OFPIT_CLEAR_ACTIONS = 5
OFPIT_METER = 6

# Actions.
OFPAT_OUTPUT = 0
OFPAT_PUSH_VLAN = 17
OFPAT_POP_VLAN = 18
OFPAT_GROUP = 22
OFPAT_SET_NW_TTL = 23
OFPAT_DEC_NW_TTL = 24
OFPAT_SET_FIELD = 25
OFPAT_METER = 29            # OF1.5
OFPAT_EXPERIMENTER = 0xffff

NXAST_RESUBMIT = 1
NXAST_RESUBMIT_TABLE = 14
NXAST_CT = 35
NXAST_NAT = 36
NXAST_CT_CLEAR = 43

NX_CT_F_COMMIT = 1 << 0
NX_CT_F_FORCE = 1 << 1
NX_CT_RECIRC_NONE = 0xff

NX_NAT_F_SRC = 1 << 0
NX_NAT_F_DST = 1 << 1
NX_NAT_F_PERSISTENT = 1 << 2
NX_NAT_F_PROTO_HASH = 1 << 3
NX_NAT_F_PROTO_RANDOM = 1 << 4
NX_NAT_RANGE_IPV4_MIN = 1 << 0
NX_NAT_RANGE_IPV4_MAX = 1 << 1
NX_NAT_RANGE_IPV6_MIN = 1 << 2
NX_NAT_RANGE_IPV6_MAX = 1 << 3
NX_NAT_RANGE_PROTO_MIN = 1 << 4
NX_NAT_RANGE_PROTO_MAX = 1 << 5

OFPVID_PRESENT = 0x1000
OFPVID_NONE = 0x0000

FLOW_KEYS = ("table", "priority", "cookie", "idle_timeout", "hard_timeout", "flags", "match",
             "instructions")
FLOW_STATS_KEYS = ("duration_sec", "duration_nsec", "packet_count", "byte_count", "idle_age")


# --------------------------------------------------------------------------
# Error names
# --------------------------------------------------------------------------

def _codes(prefix, names):
    return dict((i, prefix + "_" + n) for i, n in enumerate(names) if n)


# type -> (name, {code: name}); the union of OF1.3, OF1.4 and OF1.5 (codes
# only ever got added, except TABLE_FEATURES_FAILED 2-4 which OF1.4 moved to
# BAD_PROPERTY: their OF1.3 names are kept).
ERROR_TYPES = {
    0: ("OFPET_HELLO_FAILED", _codes("OFPHFC", ["INCOMPATIBLE", "EPERM"])),
    1: ("OFPET_BAD_REQUEST", _codes("OFPBRC", [
        "BAD_VERSION", "BAD_TYPE", "BAD_MULTIPART", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "EPERM",
        "BAD_LEN", "BUFFER_EMPTY", "BUFFER_UNKNOWN", "BAD_TABLE_ID", "IS_SLAVE", "BAD_PORT",
        "BAD_PACKET", "MULTIPART_BUFFER_OVERFLOW", "MULTIPART_REQUEST_TIMEOUT",
        "MULTIPART_REPLY_TIMEOUT", "MULTIPART_BAD_SCHED", "PIPELINE_FIELDS_ONLY", "UNKNOWN"])),
    2: ("OFPET_BAD_ACTION", _codes("OFPBAC", [
        "BAD_TYPE", "BAD_LEN", "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_OUT_PORT", "BAD_ARGUMENT",
        "EPERM", "TOO_MANY", "BAD_QUEUE", "BAD_OUT_GROUP", "MATCH_INCONSISTENT",
        "UNSUPPORTED_ORDER", "BAD_TAG", "BAD_SET_TYPE", "BAD_SET_LEN", "BAD_SET_ARGUMENT",
        "BAD_SET_MASK", "BAD_METER"])),
    3: ("OFPET_BAD_INSTRUCTION", _codes("OFPBIC", [
        "UNKNOWN_INST", "UNSUP_INST", "BAD_TABLE_ID", "UNSUP_METADATA", "UNSUP_METADATA_MASK",
        "BAD_EXPERIMENTER", "BAD_EXP_TYPE", "BAD_LEN", "EPERM", "DUP_INST"])),
    4: ("OFPET_BAD_MATCH", _codes("OFPBMC", [
        "BAD_TYPE", "BAD_LEN", "BAD_TAG", "BAD_DL_ADDR_MASK", "BAD_NW_ADDR_MASK", "BAD_WILDCARDS",
        "BAD_FIELD", "BAD_VALUE", "BAD_MASK", "BAD_PREREQ", "DUP_FIELD", "EPERM"])),
    5: ("OFPET_FLOW_MOD_FAILED", _codes("OFPFMFC", [
        "UNKNOWN", "TABLE_FULL", "BAD_TABLE_ID", "OVERLAP", "EPERM", "BAD_TIMEOUT", "BAD_COMMAND",
        "BAD_FLAGS", "CANT_SYNC", "BAD_PRIORITY", "IS_SYNC"])),
    6: ("OFPET_GROUP_MOD_FAILED", _codes("OFPGMFC", [
        "GROUP_EXISTS", "INVALID_GROUP", "WEIGHT_UNSUPPORTED", "OUT_OF_GROUPS", "OUT_OF_BUCKETS",
        "CHAINING_UNSUPPORTED", "WATCH_UNSUPPORTED", "LOOP", "UNKNOWN_GROUP", "CHAINED_GROUP",
        "BAD_TYPE", "BAD_COMMAND", "BAD_BUCKET", "BAD_WATCH", "EPERM", "UNKNOWN_BUCKET",
        "BUCKET_EXISTS"])),
    7: ("OFPET_PORT_MOD_FAILED", _codes("OFPPMFC", [
        "BAD_PORT", "BAD_HW_ADDR", "BAD_CONFIG", "BAD_ADVERTISE", "EPERM"])),
    8: ("OFPET_TABLE_MOD_FAILED", _codes("OFPTMFC", ["BAD_TABLE", "BAD_CONFIG", "EPERM"])),
    9: ("OFPET_QUEUE_OP_FAILED", _codes("OFPQOFC", ["BAD_PORT", "BAD_QUEUE", "EPERM"])),
    10: ("OFPET_SWITCH_CONFIG_FAILED", _codes("OFPSCFC", ["BAD_FLAGS", "BAD_LEN", "EPERM"])),
    11: ("OFPET_ROLE_REQUEST_FAILED", _codes("OFPRRFC", [
        "STALE", "UNSUP", "BAD_ROLE", "ID_UNSUP", "ID_IN_USE"])),
    12: ("OFPET_METER_MOD_FAILED", _codes("OFPMMFC", [
        "UNKNOWN", "METER_EXISTS", "INVALID_METER", "UNKNOWN_METER", "BAD_COMMAND", "BAD_FLAGS",
        "BAD_RATE", "BAD_BURST", "BAD_BAND", "BAD_BAND_VALUE", "OUT_OF_METERS", "OUT_OF_BANDS"])),
    13: ("OFPET_TABLE_FEATURES_FAILED", _codes("OFPTFFC", [
        "BAD_TABLE", "BAD_METADATA", "BAD_TYPE", "BAD_LEN", "BAD_ARGUMENT", "EPERM", "BAD_CAP",
        "BAD_MAX_ENT", "BAD_FEATURES", "BAD_COMMAND", "TOO_MANY"])),
    14: ("OFPET_BAD_PROPERTY", _codes("OFPBPC", [
        "BAD_TYPE", "BAD_LEN", "BAD_VALUE", "TOO_MANY", "DUP_TYPE", "BAD_EXPERIMENTER",
        "BAD_EXP_TYPE", "BAD_EXP_VALUE", "EPERM"])),
    15: ("OFPET_ASYNC_CONFIG_FAILED", _codes("OFPACFC", ["INVALID", "UNSUPPORTED", "EPERM"])),
    16: ("OFPET_FLOW_MONITOR_FAILED", _codes("OFPMOFC", [
        "UNKNOWN", "MONITOR_EXISTS", "INVALID_MONITOR", "UNKNOWN_MONITOR", "BAD_COMMAND",
        "BAD_FLAGS", "BAD_TABLE_ID", "BAD_OUT"])),
    17: ("OFPET_BUNDLE_FAILED", _codes("OFPBFC", [
        "UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE",
        "BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY",
        "MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS", "SCHED_NOT_SUPPORTED", "SCHED_FUTURE",
        "SCHED_PAST"])),
}
OFPET_EXPERIMENTER = 0xffff

# Experimenter errors Open vSwitch sends in OF1.2+ (Nicira) and OF1.3 (ONF).
NX_ERRORS = {
    2: "NXBRC_NXM_INVALID", 3: "NXBRC_NXM_BAD_TYPE", 4: "NXBRC_MUST_BE_ZERO", 5: "NXBRC_BAD_REASON",
    6: "OFPMOFC_MONITOR_EXISTS", 7: "OFPMOFC_BAD_FLAGS", 8: "OFPMOFC_UNKNOWN_MONITOR",
    9: "NXBRC_FM_BAD_EVENT", 10: "NXBRC_UNENCODABLE_ERROR", 11: "NXBAC_MUST_BE_ZERO",
    12: "NXFMFC_HARDWARE", 13: "NXFMFC_BAD_TABLE_ID", 15: "NXBAC_BAD_CONJUNCTION",
    16: "NXTTMFC_BAD_COMMAND", 17: "NXTTMFC_BAD_OPT_LEN", 18: "NXTTMFC_BAD_FIELD_IDX",
    19: "NXTTMFC_TABLE_FULL", 20: "NXTTMFC_ALREADY_MAPPED", 21: "NXTTMFC_DUP_ENTRY",
    22: "OFPBFC_BAD_VERSION", 23: "NXQOFC_QUEUE_ERROR", 25: "OFPBPC_BAD_TYPE", 26: "OFPBPC_BAD_LEN",
    27: "OFPBPC_BAD_VALUE", 28: "OFPBPC_TOO_MANY", 29: "OFPBPC_DUP_TYPE",
    30: "OFPBPC_BAD_EXPERIMENTER", 31: "OFPBPC_BAD_EXP_TYPE", 32: "OFPBPC_BAD_EXP_VALUE",
    33: "OFPBPC_EPERM", 34: "NXR_NOT_SUPPORTED", 35: "NXR_STALE", 36: "NXST_NOT_CONFIGURED",
    37: "NXFMFC_INVALID_TLV_FIELD", 38: "NXTTMFC_INVALID_TLV_DEL", 39: "NXBAC_BAD_HEADER_TYPE",
    40: "NXBAC_UNKNOWN_ED_PROP", 41: "NXBAC_BAD_ED_PROP", 42: "NXBAC_CT_DATAPATH_SUPPORT",
    43: "NXBMC_CT_DATAPATH_SUPPORT", 44: "NXTFFC_DUP_TABLE",
}
ONF_ERRORS = dict((2300 + i, "OFPBFC_" + n) for i, n in enumerate([
    "UNKNOWN", "EPERM", "BAD_ID", "BUNDLE_EXIST", "BUNDLE_CLOSED", "OUT_OF_BUNDLES", "BAD_TYPE",
    "BAD_FLAGS", "MSG_BAD_LEN", "MSG_BAD_XID", "MSG_UNSUP", "MSG_CONFLICT", "MSG_TOO_MANY",
    "MSG_FAILED", "TIMEOUT", "BUNDLE_IN_PROGRESS"]))
ONF_ERRORS.update({
    2360: "OFPFMFC_BAD_PRIORITY", 2370: "OFPACFC_INVALID", 2371: "OFPACFC_UNSUPPORTED",
    2372: "OFPACFC_EPERM", 2600: "OFPBIC_DUP_INST", 2640: "OFPBRC_MULTIPART_REQUEST_TIMEOUT",
    2641: "OFPBRC_MULTIPART_REPLY_TIMEOUT", 4250: "OFPBAC_BAD_SET_MASK",
    4443: "OFPBPC_TOO_MANY", 4444: "OFPBPC_DUP_TYPE", 4445: "OFPBPC_BAD_EXPERIMENTER",
    4446: "OFPBPC_BAD_EXP_TYPE", 4447: "OFPBPC_BAD_EXP_VALUE", 4448: "OFPBPC_EPERM",
})
EXPERIMENTER_ERRORS = {NX_VENDOR_ID: ("NX", NX_ERRORS), ONF_VENDOR_ID: ("ONF", ONF_ERRORS)}


def error_names(err_type, err_code, experimenter=None):
    """Return (type_name, code_name) for an OFPT_ERROR's type and code.

    For an experimenter error (type 0xffff) ``err_code`` is the experimenter's
    code and ``experimenter`` its id. Unknown numbers get a descriptive name
    rather than an exception.
    """
    if err_type == OFPET_EXPERIMENTER:
        vendor = EXPERIMENTER_ERRORS.get(experimenter)
        if vendor is None:
            return "OFPET_EXPERIMENTER", "EXPERIMENTER_0x%08x_%d" % (experimenter or 0, err_code)
        return "OFPET_EXPERIMENTER", vendor[1].get(err_code, "%s_ERROR_%d" % (vendor[0], err_code))
    entry = ERROR_TYPES.get(err_type)
    if entry is None:
        return "OFPET_UNKNOWN_%d" % err_type, "CODE_%d" % err_code
    name, codes = entry
    return name, codes.get(err_code, "%s_CODE_%d" % (name[6:], err_code))


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

def _pad8(n):
    return (8 - n % 8) % 8


def _hex(data):
    return binascii.hexlify(data).decode("ascii")


def _unhex(text, what):
    try:
        return binascii.unhexlify(text.replace(" ", ""))
    except (TypeError, ValueError, binascii.Error, AttributeError):
        raise OpenFlowCodecError("%s: %r is not a hex string" % (what, text))


def _unpack(fmt, data, offset, what):
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(data):
        raise OpenFlowCodecError("truncated %s: need %d bytes at offset %d, have %d"
                                 % (what, size, offset, len(data)))
    return struct.unpack_from(fmt, data, offset)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_int(value, bits, what):
    if not _is_int(value):
        raise OpenFlowCodecError("%s must be an integer, not %r" % (what, value))
    if not 0 <= value < (1 << bits):
        raise OpenFlowCodecError("%s %d is out of range (0..%d)" % (what, value, (1 << bits) - 1))
    return value


def _flags_to_int(flags, table, what):
    if flags is None:
        return 0
    if isinstance(flags, str):
        flags = [flags]
    value = 0
    for flag in flags:
        if flag not in table:
            raise OpenFlowCodecError("unknown %s flag %r; expected one of %s"
                                     % (what, flag, ", ".join(sorted(table))))
        value |= table[flag]
    return value


def _int_to_flags(value, table):
    return sorted(name for name, bit in table.items() if value & bit)


def _lookup(table, value, what):
    if value not in table:
        raise OpenFlowCodecError("unknown %s %r; expected one of %s"
                                 % (what, value, ", ".join(sorted(table))))
    return table[value]


def _reverse(table, number, what):
    for name, num in table.items():
        if num == number:
            return name
    raise OpenFlowCodecError("unknown %s %d" % (what, number))


def port_number(port):
    """An OpenFlow 1.1+ port number from an int or a reserved port's name."""
    if isinstance(port, str):
        name = port.lower()
        if name.startswith("ofpp_"):
            name = name[5:]
        if name in PORT_NAMES:
            return PORT_NAMES[name]
        try:
            return _check_int(int(name, 0), 32, "port")
        except ValueError:
            raise OpenFlowCodecError("unknown port %r; expected a number or one of %s"
                                     % (port, ", ".join(sorted(PORT_NAMES))))
    return _check_int(port, 32, "port")


def port_name(port):
    """The name of a reserved port (``"controller"``), else the number as a string."""
    return PORT_NUMBERS.get(port, str(port))


def _port16(port, what):
    """An OF1.1+ port as the 16-bit port of Nicira extension actions."""
    port = port_number(port)
    if port < 0xff00:
        return port
    if port >= 0xffffff00:
        return port - 0xffff0000
    raise OpenFlowCodecError("%s %d cannot be expressed as a 16-bit port" % (what, port))


def _port32(port16):
    return port16 + 0xffff0000 if port16 >= 0xff00 else port16


# --------------------------------------------------------------------------
# OXM fields
# --------------------------------------------------------------------------

OFPXMC_NXM_1 = 0x0001
OFPXMC_OPENFLOW_BASIC = 0x8000
OFPXMC_PACKET_REGS = 0x8001
OFPXMC_EXPERIMENTER = 0xffff


class _Field:
    __slots__ = ("name", "oxm_class", "field", "size", "kind", "maskable")

    def __init__(self, name, oxm_class, field, size, kind, maskable):
        self.name = name
        self.oxm_class = oxm_class
        self.field = field
        self.size = size
        self.kind = kind
        self.maskable = maskable


def _basic(name, field, size, kind="int", maskable=False):
    return _Field(name, OFPXMC_OPENFLOW_BASIC, field, size, kind, maskable)


# Every named field (the encoder sorts them by class, then field number).
_FIELD_LIST = [
    _basic("in_port", 0, 4),
    _basic("metadata", 2, 8, maskable=True),
    _basic("eth_dst", 3, 6, "mac", True),
    _basic("eth_src", 4, 6, "mac", True),
    _basic("eth_type", 5, 2),
    _basic("vlan_vid", 6, 2, "vlan", True),
    _basic("vlan_pcp", 7, 1),
    _basic("ip_dscp", 8, 1),
    _basic("ip_ecn", 9, 1),
    _basic("ip_proto", 10, 1),
    _basic("ipv4_src", 11, 4, "ipv4", True),
    _basic("ipv4_dst", 12, 4, "ipv4", True),
    _basic("tcp_src", 13, 2, maskable=True),
    _basic("tcp_dst", 14, 2, maskable=True),
    _basic("udp_src", 15, 2, maskable=True),
    _basic("udp_dst", 16, 2, maskable=True),
    _basic("sctp_src", 17, 2, maskable=True),
    _basic("sctp_dst", 18, 2, maskable=True),
    _basic("icmpv4_type", 19, 1),
    _basic("icmpv4_code", 20, 1),
    _basic("arp_op", 21, 2),
    _basic("arp_spa", 22, 4, "ipv4", True),
    _basic("arp_tpa", 23, 4, "ipv4", True),
    _basic("arp_sha", 24, 6, "mac", True),
    _basic("arp_tha", 25, 6, "mac", True),
    _basic("ipv6_src", 26, 16, "ipv6", True),
    _basic("ipv6_dst", 27, 16, "ipv6", True),
    _basic("icmpv6_type", 29, 1),
    _basic("icmpv6_code", 30, 1),
    _basic("tunnel_id", 38, 8, maskable=True),
]
_FIELD_LIST += [_Field("reg%d" % i, OFPXMC_NXM_1, i, 4, "int", True) for i in range(16)]
_FIELD_LIST += [
    _Field("ct_state", OFPXMC_NXM_1, 105, 4, "int", True),
    _Field("ct_zone", OFPXMC_NXM_1, 106, 2, "int", False),
    _Field("ct_mark", OFPXMC_NXM_1, 107, 4, "int", True),
]
FIELDS = dict((f.name, f) for f in _FIELD_LIST)
MATCH_FIELDS = tuple(f.name for f in _FIELD_LIST)
_FIELDS_BY_HEADER = dict(((f.oxm_class, f.field), f) for f in _FIELD_LIST)

# Value ranges narrower than the field's width.
_FIELD_BITS = {"vlan_pcp": 3, "ip_dscp": 6, "ip_ecn": 2}

OXM_PACKET_TYPE = (OFPXMC_OPENFLOW_BASIC, 44)


def _oxm_header(oxm_class, field, hasmask, length):
    return (oxm_class << 16) | (field << 9) | ((1 if hasmask else 0) << 8) | length


def nxm_header(name):
    """The 32-bit unmasked NXM/OXM header of a field (as NXAST_CT's zone_src uses it)."""
    f = _field(name)
    return _oxm_header(f.oxm_class, f.field, False, f.size)


def _field(name):
    f = FIELDS.get(name)
    if f is None:
        raise OpenFlowCodecError("unknown match field %r; known fields: %s"
                                 % (name, ", ".join(MATCH_FIELDS)))
    return f


def _encode_mac(value, what):
    if not isinstance(value, str):
        raise OpenFlowCodecError("%s must be a MAC address string, not %r" % (what, value))
    parts = value.split(":")
    try:
        if len(parts) != 6 or not all(1 <= len(p) <= 2 for p in parts):
            raise ValueError
        return bytes(bytearray(int(p, 16) for p in parts))
    except ValueError:
        raise OpenFlowCodecError("%s %r is not a MAC address (aa:bb:cc:dd:ee:ff)" % (what, value))


def _decode_mac(data):
    return ":".join("%02x" % b for b in bytearray(data))


def _encode_ip(value, version, what):
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    try:
        if not isinstance(value, str):
            raise ValueError
        return cls(value).packed
    except ValueError:
        raise OpenFlowCodecError("%s %r is not an IPv%d address" % (what, value, version))


def _encode_scalar(f, value, what):
    """Encode one value (not vlan) of field f to f.size bytes."""
    if f.kind == "mac":
        return _encode_mac(value, what)
    if f.kind == "ipv4":
        return _encode_ip(value, 4, what)
    if f.kind == "ipv6":
        return _encode_ip(value, 6, what)
    bits = _FIELD_BITS.get(f.name, f.size * 8)
    value = _check_int(value, bits, what)
    return value.to_bytes(f.size, "big")


def _decode_scalar(f, data):
    if f.kind == "mac":
        return _decode_mac(data)
    if f.kind == "ipv4":
        return str(ipaddress.IPv4Address(bytes(data)))
    if f.kind == "ipv6":
        return str(ipaddress.IPv6Address(bytes(data)))
    return int.from_bytes(data, "big")


def _all_ones(data):
    return all(b == 0xff for b in bytearray(data))


def _vlan_wire(value, what):
    """(value, mask or None) on the wire for a canonical vlan_vid."""
    if value == "untagged":
        return OFPVID_NONE, None
    if value == "tagged":
        return OFPVID_PRESENT, OFPVID_PRESENT
    if isinstance(value, dict):
        if value.get("wire"):
            mask = value.get("mask")
            return (_check_int(value.get("value"), 13, what),
                    None if mask is None else _check_int(mask, 13, what + " mask"))
        vid = _check_int(value.get("value"), 12, what)
        mask = _check_int(value.get("mask", 0xfff), 12, what + " mask")
        if mask == 0xfff:
            return OFPVID_PRESENT | vid, None
        return OFPVID_PRESENT | vid, OFPVID_PRESENT | mask
    return OFPVID_PRESENT | _check_int(value, 12, what), None


def _vlan_canonical(value, mask):
    if mask is None or mask == 0x1fff:
        if value == OFPVID_NONE:
            return "untagged"
        if value & OFPVID_PRESENT:
            return value & 0xfff
    elif mask & OFPVID_PRESENT:
        if not value & OFPVID_PRESENT and not value & mask & 0xfff:
            return "untagged"
        if value & OFPVID_PRESENT:
            if mask == OFPVID_PRESENT:
                return "tagged"
            if mask & 0xfff == 0xfff:
                return value & 0xfff
            return {"value": value & 0xfff, "mask": mask & 0xfff}
    return {"value": value, "mask": mask, "wire": True}


def _encode_oxm(name, value):
    """One OXM TLV (header, value, mask) for a canonical match entry."""
    what = "match field %s" % name
    if name.startswith("oxm:"):
        return _encode_raw_oxm(name, value)
    f = _field(name)
    if f.kind == "vlan":
        wire, mask = _vlan_wire(value, what)
        vbytes = wire.to_bytes(2, "big")
        mbytes = None if mask is None else mask.to_bytes(2, "big")
    else:
        if isinstance(value, dict):
            if "value" not in value:
                raise OpenFlowCodecError("%s: a masked value needs 'value' and 'mask'" % what)
            vbytes = _encode_scalar(f, value["value"], what)
            mbytes = _encode_scalar(f, value.get("mask"), what + " mask")
            if _all_ones(mbytes):
                mbytes = None
        else:
            vbytes = _encode_scalar(f, value, what)
            mbytes = None
        if mbytes is not None and not f.maskable:
            raise OpenFlowCodecError("%s cannot be masked" % what)
    if mbytes is not None and any(v & ~m & 0xff for v, m in zip(bytearray(vbytes), bytearray(mbytes))):
        raise OpenFlowCodecError("%s: the value %r has bits set outside the mask (switches refuse that "
                                 "with OFPBMC_BAD_WILDCARDS); clear them" % (what, value))
    length = len(vbytes) * (2 if mbytes is not None else 1)
    out = struct.pack("!I", _oxm_header(f.oxm_class, f.field, mbytes is not None, length)) + vbytes
    if mbytes is not None:
        out += mbytes
    return out


def _parse_raw_key(name):
    parts = name.split(":")
    try:
        oxm_class = int(parts[1], 16)
        if oxm_class == OFPXMC_EXPERIMENTER and len(parts) == 4:
            return oxm_class, int(parts[2], 16), int(parts[3])
        if len(parts) == 3:
            return oxm_class, None, int(parts[2])
    except (ValueError, IndexError):
        pass
    raise OpenFlowCodecError("bad raw OXM field name %r (expected oxm:0xCLASS:FIELD)" % name)


def _encode_raw_oxm(name, value):
    oxm_class, experimenter, field = _parse_raw_key(name)
    if isinstance(value, dict):
        vbytes = _unhex(_strip0x(value.get("value")), name)
        mbytes = _unhex(_strip0x(value.get("mask")), name + " mask")
    else:
        vbytes, mbytes = _unhex(_strip0x(value), name), None
    body = vbytes + (mbytes or b"")
    prefix = b""
    if experimenter is not None:
        prefix = struct.pack("!I", experimenter)
    return struct.pack("!I", _oxm_header(oxm_class, field, mbytes is not None,
                                         len(body) + len(prefix))) + prefix + body


def _strip0x(text):
    if isinstance(text, str) and text[:2].lower() == "0x":
        return text[2:]
    return text


def encode_oxm_fields(match):
    """The OXM TLVs of a canonical match dict, in OXM field order (no header/padding)."""
    if match is None:
        return b""
    if not isinstance(match, dict):
        raise OpenFlowCodecError("a match must be a dict of field: value, not %r" % (match,))
    names = sorted(match, key=_field_sort_key)
    return b"".join(_encode_oxm(n, match[n]) for n in names)


def _field_sort_key(name):
    """(class, field): OXM header order, which puts every prerequisite first.

    Fields without a name here (another controller's, kept raw) go after every named one: their
    prerequisites (eth_type, ip_proto ...) are named fields and must come first.
    """
    f = FIELDS.get(name)
    if f is not None:
        return (0, f.oxm_class, 0, f.field)
    if isinstance(name, str) and name.startswith("oxm:"):
        oxm_class, experimenter, field = _parse_raw_key(name)
        return (1, oxm_class, experimenter or 0, field)
    return (2, 0, 0, 0)


def encode_match(match):
    """An ofp_match (OFPMT_OXM) with its padding."""
    fields = encode_oxm_fields(match)
    length = 4 + len(fields)
    return struct.pack("!HH", 1, length) + fields + b"\0" * _pad8(length)


def _decode_oxm_tlvs(data, what):
    """Yield (oxm_class, experimenter, field, hasmask, value_bytes, mask_bytes)."""
    pos = 0
    while pos < len(data):
        (header,) = _unpack("!I", data, pos, what)
        oxm_class, field = header >> 16, (header >> 9) & 0x7f
        hasmask, length = (header >> 8) & 1, header & 0xff
        body = data[pos + 4:pos + 4 + length]
        if len(body) != length:
            raise OpenFlowCodecError("truncated OXM field 0x%04x:%d in %s" % (oxm_class, field, what))
        pos += 4 + length
        experimenter = None
        if oxm_class == OFPXMC_EXPERIMENTER:
            if length < 4:
                raise OpenFlowCodecError("experimenter OXM too short in %s" % what)
            (experimenter,) = struct.unpack_from("!I", body, 0)
            body = body[4:]
        if hasmask:
            if len(body) % 2:
                raise OpenFlowCodecError("masked OXM field 0x%04x:%d has an odd length in %s"
                                         % (oxm_class, field, what))
            half = len(body) // 2
            yield oxm_class, experimenter, field, True, body[:half], body[half:]
        else:
            yield oxm_class, experimenter, field, False, body, None


def _raw_key(oxm_class, experimenter, field):
    if experimenter is not None:
        return "oxm:0x%04x:0x%08x:%d" % (oxm_class, experimenter, field)
    return "oxm:0x%04x:%d" % (oxm_class, field)


def _canonical_value(f, vbytes, mbytes):
    if f.kind == "vlan":
        value = int.from_bytes(vbytes, "big")
        mask = None if mbytes is None else int.from_bytes(mbytes, "big")
        return _vlan_canonical(value, mask)
    value = _decode_scalar(f, vbytes)
    if mbytes is None or _all_ones(mbytes):
        return value
    return {"value": value, "mask": _decode_scalar(f, mbytes)}


def decode_oxm_fields(data, what="match"):
    """A canonical match dict from OXM TLVs (no header/padding)."""
    match = {}
    for oxm_class, experimenter, field, hasmask, vbytes, mbytes in _decode_oxm_tlvs(data, what):
        f = _FIELDS_BY_HEADER.get((oxm_class, field)) if experimenter is None else None
        if f is not None and len(vbytes) == f.size:
            match[f.name] = _canonical_value(f, vbytes, mbytes)
            continue
        if oxm_class == OFPXMC_PACKET_REGS and len(vbytes) == 8 and field < 8:
            # OF1.5 xreg N = reg 2N (high half) : reg 2N+1 (low half).
            for half, reg in ((0, 2 * field), (4, 2 * field + 1)):
                value = int.from_bytes(vbytes[half:half + 4], "big")
                mask = 0xffffffff if mbytes is None else int.from_bytes(mbytes[half:half + 4], "big")
                if mask == 0xffffffff:
                    match["reg%d" % reg] = value
                elif mask:
                    match["reg%d" % reg] = {"value": value, "mask": mask}
            continue
        if (oxm_class, field) == OXM_PACKET_TYPE and experimenter is None and mbytes is None \
                and vbytes == b"\0\0\0\0":
            continue   # packet_type=Ethernet: what every OpenFlow 1.3 match means anyway
        key = _raw_key(oxm_class, experimenter, field)
        if mbytes is None:
            match[key] = "0x" + _hex(vbytes)
        else:
            match[key] = {"value": "0x" + _hex(vbytes), "mask": "0x" + _hex(mbytes)}
    return match


def decode_match(data, offset=0, what="match"):
    """Decode an ofp_match at offset; return (match dict, offset after its padding)."""
    mtype, length = _unpack("!HH", data, offset, what)
    if mtype != 1:
        raise OpenFlowCodecError("%s has type %d; only OFPMT_OXM (1) is supported" % (what, mtype))
    if length < 4 or offset + length > len(data):
        raise OpenFlowCodecError("%s has a bad length %d" % (what, length))
    match = decode_oxm_fields(data[offset + 4:offset + length], what)
    return match, offset + length + _pad8(length)


# --------------------------------------------------------------------------
# Actions
# --------------------------------------------------------------------------

def _action(atype, body):
    """An action with 4-byte type/len header, padded to 8."""
    length = 4 + len(body)
    pad = _pad8(length)
    return struct.pack("!HH", atype, length + pad) + body + b"\0" * pad


def _nx_action(subtype, body):
    """A Nicira extension action (vendor 0x2320), padded to 8."""
    length = 10 + len(body)
    pad = _pad8(length)
    return struct.pack("!HHIH", OFPAT_EXPERIMENTER, length + pad, NX_VENDOR_ID, subtype) + body \
        + b"\0" * pad


def _set_field_oxm(name, value):
    what = "set_field %s" % name
    if name.startswith("oxm:"):
        return _encode_raw_oxm(name, value)
    f = _field(name)
    if f.kind == "vlan":
        if isinstance(value, dict) and value.get("wire"):
            wire = _check_int(value.get("value"), 13, what)
        else:
            wire = OFPVID_PRESENT | _check_int(value, 12, what)
        return struct.pack("!IH", _oxm_header(f.oxm_class, f.field, False, 2), wire)
    return _encode_oxm(name, value)


def encode_action(action, version):
    """Bytes of one canonical action."""
    if not isinstance(action, dict) or "type" not in action:
        raise OpenFlowCodecError("an action must be a dict with a 'type', not %r" % (action,))
    atype = action["type"]
    if atype == "output":
        port = port_number(action.get("port"))
        default = OFPCML_NO_BUFFER if port == OFPP_CONTROLLER else 0
        max_len = _check_int(action.get("max_len", default), 16, "output max_len")
        return _action(OFPAT_OUTPUT, struct.pack("!IH6x", port, max_len))
    if atype == "group":
        return _action(OFPAT_GROUP, struct.pack("!I", _check_int(action.get("group_id"), 32, "group_id")))
    if atype == "set_field":
        oxm = _set_field_oxm(action.get("field"), action.get("value"))
        return _action(OFPAT_SET_FIELD, oxm)
    if atype == "push_vlan":
        return _action(OFPAT_PUSH_VLAN, struct.pack("!H2x", _check_int(action.get("ethertype", 0x8100),
                                                                       16, "push_vlan ethertype")))
    if atype == "pop_vlan":
        return _action(OFPAT_POP_VLAN, b"\0" * 4)
    if atype == "dec_nw_ttl":
        return _action(OFPAT_DEC_NW_TTL, b"\0" * 4)
    if atype == "set_nw_ttl":
        return _action(OFPAT_SET_NW_TTL, struct.pack("!B3x", _check_int(action.get("ttl"), 8, "ttl")))
    if atype == "meter":
        if version < OFP15_VERSION:
            raise OpenFlowCodecError("the meter action exists only in OpenFlow 1.5; use a meter "
                                     "instruction")
        return _action(OFPAT_METER, struct.pack("!I", _check_int(action.get("meter_id"), 32, "meter_id")))
    if atype == "resubmit":
        port = action.get("port")
        port16 = _port16(OFPP_IN_PORT if port is None else port, "resubmit port")
        table = action.get("table")
        table = 0xff if table is None else _check_int(table, 8, "resubmit table")
        return _nx_action(NXAST_RESUBMIT_TABLE, struct.pack("!HB3x", port16, table))
    if atype == "ct":
        return _encode_ct(action, version)
    if atype == "nat":
        return _encode_nat(action.get("nat", action))
    if atype == "ct_clear":
        return _nx_action(NXAST_CT_CLEAR, b"\0" * 6)
    if atype == "raw":
        data = _unhex(action.get("hex", ""), "raw action")
        if len(data) < 8 or len(data) % 8:
            raise OpenFlowCodecError("raw action must be a whole number of 8-byte units")
        return data
    raise OpenFlowCodecError("unknown action type %r" % (atype,))


def encode_actions(actions, version):
    if actions is None:
        return b""
    if not isinstance(actions, (list, tuple)):
        raise OpenFlowCodecError("actions must be a list, not %r" % (actions,))
    return b"".join(encode_action(a, version) for a in actions)


def _encode_ct(action, version):
    flags = 0
    if action.get("commit"):
        flags |= NX_CT_F_COMMIT
    if action.get("force"):
        flags |= NX_CT_F_FORCE
    zone = action.get("zone", 0)
    if zone is None:
        zone = 0
    if isinstance(zone, dict):
        zone_src = nxm_header(zone.get("field"))
        ofs = _check_int(zone.get("ofs", 0), 10, "ct zone ofs")
        nbits = zone.get("nbits", 16)
        if not _is_int(nbits) or not 1 <= nbits <= 64:
            raise OpenFlowCodecError("ct zone nbits %r is out of range (1..64)" % (nbits,))
        zone_value = (ofs << 6) | (nbits - 1)
    else:
        zone_src, zone_value = 0, _check_int(zone, 16, "ct zone")
    table = action.get("table")
    table = NX_CT_RECIRC_NONE if table is None else _check_int(table, 8, "ct table")
    alg = action.get("alg")
    alg = 0 if alg is None else _check_int(alg, 16, "ct alg")
    nested = b""
    if action.get("nat") is not None:
        nested += _encode_nat(action["nat"])
    nested += encode_actions(action.get("exec") or [], version)
    body = struct.pack("!HIHB3xH", flags, zone_src, zone_value, table, alg) + nested
    return struct.pack("!HHIH", OFPAT_EXPERIMENTER, 10 + len(body), NX_VENDOR_ID, NXAST_CT) + body


def _encode_nat(nat):
    if not isinstance(nat, dict):
        raise OpenFlowCodecError("ct nat must be a dict, not %r" % (nat,))
    flags = 0
    ntype = nat.get("type")
    if ntype == "src":
        flags |= NX_NAT_F_SRC
    elif ntype == "dst":
        flags |= NX_NAT_F_DST
    elif ntype is not None:
        raise OpenFlowCodecError("nat type must be 'src', 'dst' or None, not %r" % (ntype,))
    for key, bit in (("persistent", NX_NAT_F_PERSISTENT), ("hash", NX_NAT_F_PROTO_HASH),
                     ("random", NX_NAT_F_PROTO_RANDOM)):
        if nat.get(key):
            flags |= bit
    present = 0
    ranges = b""
    ip_min, ip_max = nat.get("ip_min"), nat.get("ip_max")
    if ip_max is not None and ip_min is None:
        raise OpenFlowCodecError("nat ip_max needs ip_min")
    if ip_min is not None:
        v6 = isinstance(ip_min, str) and ":" in ip_min
        ranges += _encode_ip(ip_min, 6 if v6 else 4, "nat ip_min")
        present |= NX_NAT_RANGE_IPV6_MIN if v6 else NX_NAT_RANGE_IPV4_MIN
        if ip_max is not None:
            ranges += _encode_ip(ip_max, 6 if v6 else 4, "nat ip_max")
            present |= NX_NAT_RANGE_IPV6_MAX if v6 else NX_NAT_RANGE_IPV4_MAX
    port_min, port_max = nat.get("port_min"), nat.get("port_max")
    if port_min is not None:
        ranges += struct.pack("!H", _check_int(port_min, 16, "nat port_min"))
        present |= NX_NAT_RANGE_PROTO_MIN
    if port_max is not None:
        ranges += struct.pack("!H", _check_int(port_max, 16, "nat port_max"))
        present |= NX_NAT_RANGE_PROTO_MAX
    return _nx_action(NXAST_NAT, struct.pack("!2xHH", flags, present) + ranges)


def decode_actions(data, version, what="actions"):
    """A list of canonical actions from a packed action list."""
    actions = []
    pos = 0
    while pos < len(data):
        atype, length = _unpack("!HH", data, pos, what)
        if length < 8 or length % 8 or pos + length > len(data):
            raise OpenFlowCodecError("action of type %d at offset %d in %s has a bad length %d"
                                     % (atype, pos, what, length))
        actions.append(_decode_action(data[pos:pos + length], version, what))
        pos += length
    return actions


def _raw_action(data):
    return {"type": "raw", "hex": _hex(data)}


def _decode_action(data, version, what):
    atype, length = struct.unpack_from("!HH", data, 0)
    if atype == OFPAT_OUTPUT and length == 16:
        port, max_len = struct.unpack_from("!IH", data, 4)
        action = {"type": "output", "port": port}
        if port == OFPP_CONTROLLER:
            action["max_len"] = max_len
        return action
    if atype == OFPAT_GROUP and length == 8:
        return {"type": "group", "group_id": struct.unpack_from("!I", data, 4)[0]}
    if atype == OFPAT_PUSH_VLAN and length == 8:
        return {"type": "push_vlan", "ethertype": struct.unpack_from("!H", data, 4)[0]}
    if atype == OFPAT_POP_VLAN and length == 8:
        return {"type": "pop_vlan"}
    if atype == OFPAT_DEC_NW_TTL and length == 8:
        return {"type": "dec_nw_ttl"}
    if atype == OFPAT_SET_NW_TTL and length == 8:
        return {"type": "set_nw_ttl", "ttl": data[4]}
    if atype == OFPAT_METER and version >= OFP15_VERSION and length == 8:
        return {"type": "meter", "meter_id": struct.unpack_from("!I", data, 4)[0]}
    if atype == OFPAT_SET_FIELD:
        return _decode_set_field(data, what)
    if atype == OFPAT_EXPERIMENTER and length >= 16:
        vendor, subtype = struct.unpack_from("!IH", data, 4)
        if vendor == NX_VENDOR_ID:
            return _decode_nx_action(subtype, data, version, what)
    return _raw_action(data)


def _decode_set_field(data, what):
    (header,) = _unpack("!I", data, 4, what)
    tlv_len = 4 + (header & 0xff)
    if 4 + tlv_len > len(data):
        raise OpenFlowCodecError("truncated set_field in %s" % what)
    match = list(_decode_oxm_tlvs(data[4:4 + tlv_len], what))
    oxm_class, experimenter, field, hasmask, vbytes, mbytes = match[0]
    f = _FIELDS_BY_HEADER.get((oxm_class, field)) if experimenter is None else None
    if f is None or len(vbytes) != f.size:
        value = "0x" + _hex(vbytes)
        if mbytes is not None:
            value = {"value": value, "mask": "0x" + _hex(mbytes)}
        return {"type": "set_field", "field": _raw_key(oxm_class, experimenter, field), "value": value}
    if f.kind == "vlan" and mbytes is None:
        wire = int.from_bytes(vbytes, "big")
        value = wire & 0xfff if wire & OFPVID_PRESENT else {"value": wire, "mask": None, "wire": True}
        return {"type": "set_field", "field": f.name, "value": value}
    return {"type": "set_field", "field": f.name, "value": _canonical_value(f, vbytes, mbytes)}


def _decode_nx_action(subtype, data, version, what):
    if subtype == NXAST_RESUBMIT and len(data) == 16:
        (port16,) = struct.unpack_from("!H", data, 10)
        port = _port32(port16)
        return {"type": "resubmit", "port": None if port == OFPP_IN_PORT else port, "table": None}
    if subtype == NXAST_RESUBMIT_TABLE and len(data) == 16:
        port16, table = struct.unpack_from("!HB", data, 10)
        port = _port32(port16)
        return {"type": "resubmit", "port": None if port == OFPP_IN_PORT else port,
                "table": None if table == 0xff else table}
    if subtype == NXAST_CT and len(data) >= 24:
        return _decode_ct(data, version, what)
    if subtype == NXAST_NAT and len(data) >= 16:
        nat = _decode_nat(data, what)
        if nat is not None:
            return {"type": "nat", "nat": nat}
    if subtype == NXAST_CT_CLEAR and len(data) == 16:
        return {"type": "ct_clear"}
    return _raw_action(data)


def _decode_ct(data, version, what):
    flags, zone_src, zone_value, table, alg = struct.unpack_from("!HIHB3xH", data, 10)
    if zone_src:
        f = None
        for candidate in _FIELD_LIST:
            if _oxm_header(candidate.oxm_class, candidate.field, False, candidate.size) == zone_src:
                f = candidate
                break
        field = f.name if f else _raw_key(zone_src >> 16, None, (zone_src >> 9) & 0x7f)
        zone = {"field": field, "ofs": zone_value >> 6, "nbits": (zone_value & 0x3f) + 1}
    else:
        zone = zone_value
    action = {"type": "ct", "commit": bool(flags & NX_CT_F_COMMIT), "zone": zone,
              "table": None if table == NX_CT_RECIRC_NONE else table, "alg": alg or None, "nat": None}
    if flags & NX_CT_F_FORCE:
        action["force"] = True
    extra = flags & ~(NX_CT_F_COMMIT | NX_CT_F_FORCE)
    if extra:
        return _raw_action(data)
    nested = decode_actions(data[24:], version, what + " (ct)")
    rest = []
    for a in nested:
        if a["type"] == "nat" and action["nat"] is None:
            action["nat"] = a["nat"]
        else:
            rest.append(a)
    if rest:
        action["exec"] = rest
    return action


def _decode_nat(data, what):
    """The canonical nat dict, or None for flags or ranges this codec cannot express."""
    flags, present = struct.unpack_from("!HH", data, 12)
    if flags & ~0x1f or present & ~0x3f or (present & 0x3 and present & 0xc):
        return None
    pos = 16
    nat = {"type": "src" if flags & NX_NAT_F_SRC else "dst" if flags & NX_NAT_F_DST else None,
           "ip_min": None, "ip_max": None, "port_min": None, "port_max": None,
           "persistent": bool(flags & NX_NAT_F_PERSISTENT), "random": bool(flags & NX_NAT_F_PROTO_RANDOM),
           "hash": bool(flags & NX_NAT_F_PROTO_HASH)}
    for bit, key, size in ((NX_NAT_RANGE_IPV4_MIN, "ip_min", 4), (NX_NAT_RANGE_IPV4_MAX, "ip_max", 4),
                           (NX_NAT_RANGE_IPV6_MIN, "ip_min", 16), (NX_NAT_RANGE_IPV6_MAX, "ip_max", 16),
                           (NX_NAT_RANGE_PROTO_MIN, "port_min", 2), (NX_NAT_RANGE_PROTO_MAX, "port_max", 2)):
        if not present & bit:
            continue
        chunk = data[pos:pos + size]
        if len(chunk) != size:
            raise OpenFlowCodecError("truncated nat range in %s" % what)
        pos += size
        if size == 4:
            nat[key] = str(ipaddress.IPv4Address(bytes(chunk)))
        elif size == 16:
            nat[key] = str(ipaddress.IPv6Address(bytes(chunk)))
        else:
            nat[key] = struct.unpack("!H", chunk)[0]
    return nat


# --------------------------------------------------------------------------
# Instructions
# --------------------------------------------------------------------------

def encode_instructions(instructions, version):
    """Bytes of a canonical instruction list for the given wire version."""
    if instructions is None:
        return b""
    if not isinstance(instructions, (list, tuple)):
        raise OpenFlowCodecError("instructions must be a list, not %r" % (instructions,))
    instructions = list(instructions)
    if version >= OFP15_VERSION:
        instructions = _meter_to_action(instructions)
    out = b""
    for inst in instructions:
        if not isinstance(inst, dict) or "type" not in inst:
            raise OpenFlowCodecError("an instruction must be a dict with a 'type', not %r" % (inst,))
        itype = inst["type"]
        if itype in ("apply_actions", "write_actions"):
            acts = encode_actions(inst.get("actions"), version)
            code = OFPIT_APPLY_ACTIONS if itype == "apply_actions" else OFPIT_WRITE_ACTIONS
            out += struct.pack("!HH4x", code, 8 + len(acts)) + acts
        elif itype == "clear_actions":
            out += struct.pack("!HH4x", OFPIT_CLEAR_ACTIONS, 8)
        elif itype == "goto_table":
            out += struct.pack("!HHB3x", OFPIT_GOTO_TABLE, 8, _check_int(inst.get("table"), 8, "goto_table"))
        elif itype == "meter":
            out += struct.pack("!HHI", OFPIT_METER, 8, _check_int(inst.get("meter_id"), 32, "meter_id"))
        elif itype == "write_metadata":
            metadata = _check_int(inst.get("metadata"), 64, "write_metadata")
            mask = _check_int(inst.get("mask", (1 << 64) - 1), 64, "write_metadata mask")
            out += struct.pack("!HH4xQQ", OFPIT_WRITE_METADATA, 24, metadata, mask)
        elif itype == "raw":
            data = _unhex(inst.get("hex", ""), "raw instruction")
            if len(data) < 8 or len(data) % 8:
                raise OpenFlowCodecError("raw instruction must be a whole number of 8-byte units")
            out += data
        else:
            raise OpenFlowCodecError("unknown instruction type %r" % (itype,))
    return out


def _meter_to_action(instructions):
    """OF1.5: meter instructions become OFPAT_METER actions leading apply_actions."""
    meters = [i for i in instructions if isinstance(i, dict) and i.get("type") == "meter"]
    if not meters:
        return instructions
    meter_actions = [{"type": "meter", "meter_id": m.get("meter_id")} for m in meters]
    result = []
    merged = False
    for inst in instructions:
        if inst in meters:
            continue
        if inst.get("type") == "apply_actions" and not merged:
            inst = {"type": "apply_actions", "actions": meter_actions + list(inst.get("actions") or [])}
            merged = True
        result.append(inst)
    if not merged:
        result.insert(0, {"type": "apply_actions", "actions": meter_actions})
    return result


def decode_instructions(data, version, what="instructions"):
    instructions = []
    pos = 0
    while pos < len(data):
        itype, length = _unpack("!HH", data, pos, what)
        if length < 8 or length % 8 or pos + length > len(data):
            raise OpenFlowCodecError("instruction of type %d at offset %d in %s has a bad length %d"
                                     % (itype, pos, what, length))
        body = data[pos:pos + length]
        pos += length
        if itype in (OFPIT_APPLY_ACTIONS, OFPIT_WRITE_ACTIONS):
            name = "apply_actions" if itype == OFPIT_APPLY_ACTIONS else "write_actions"
            actions = decode_actions(body[8:], version, "%s %s" % (what, name))
            if itype == OFPIT_APPLY_ACTIONS and version >= OFP15_VERSION:
                while actions and actions[0]["type"] == "meter":
                    instructions.append({"type": "meter", "meter_id": actions.pop(0)["meter_id"]})
                if not actions and instructions and instructions[-1]["type"] == "meter":
                    continue
            instructions.append({"type": name, "actions": actions})
        elif itype == OFPIT_CLEAR_ACTIONS and length == 8:
            instructions.append({"type": "clear_actions"})
        elif itype == OFPIT_GOTO_TABLE and length == 8:
            instructions.append({"type": "goto_table", "table": body[4]})
        elif itype == OFPIT_METER and length == 8:
            instructions.append({"type": "meter", "meter_id": struct.unpack_from("!I", body, 4)[0]})
        elif itype == OFPIT_WRITE_METADATA and length == 24:
            metadata, mask = struct.unpack_from("!QQ", body, 8)
            instructions.append({"type": "write_metadata", "metadata": metadata, "mask": mask})
        else:
            instructions.append({"type": "raw", "hex": _hex(body)})
    return instructions


# --------------------------------------------------------------------------
# Flows
# --------------------------------------------------------------------------

def _flow_common(flow):
    if not isinstance(flow, dict):
        raise OpenFlowCodecError("a flow must be a dict, not %r" % (flow,))
    unknown = set(flow) - set(FLOW_KEYS) - set(FLOW_STATS_KEYS) - set(["importance"])
    if unknown:
        raise OpenFlowCodecError("unknown flow keys: %s" % ", ".join(sorted(unknown)))
    return {
        "table": _check_int(flow.get("table", 0), 8, "table"),
        "priority": _check_int(flow.get("priority", OFP_DEFAULT_PRIORITY), 16, "priority"),
        "cookie": _check_int(flow.get("cookie", 0), 64, "cookie"),
        "idle_timeout": _check_int(flow.get("idle_timeout", 0), 16, "idle_timeout"),
        "hard_timeout": _check_int(flow.get("hard_timeout", 0), 16, "hard_timeout"),
        "flags": _flags_to_int(flow.get("flags"), FLOW_MOD_FLAGS, "flow"),
        "importance": _check_int(flow.get("importance", 0), 16, "importance"),
    }


def _flow_dict(table, priority, cookie, idle, hard, flags, importance, match, instructions):
    flow = {"table": table, "priority": priority, "cookie": cookie, "idle_timeout": idle,
            "hard_timeout": hard, "flags": _int_to_flags(flags, FLOW_MOD_FLAGS), "match": match,
            "instructions": instructions}
    if importance:
        flow["importance"] = importance
    return flow


def flow_only(entry):
    """The flow keys of a flow stats entry (drops the counters)."""
    out = dict((k, entry[k]) for k in FLOW_KEYS if k in entry)
    if entry.get("importance"):
        out["importance"] = entry["importance"]
    return out


def _encode_flow_mod_body(msg, version):
    flow = msg.get("flow") or {}
    c = _flow_common(flow)
    command = _lookup(FLOW_MOD_COMMANDS, msg.get("command", "add"), "flow_mod command")
    if version < OFP14_VERSION and c["importance"]:
        raise OpenFlowCodecError("importance needs OpenFlow 1.4 or later")
    body = struct.pack(
        "!QQBBHHHIIIHH",
        c["cookie"], _check_int(msg.get("cookie_mask", 0), 64, "cookie_mask"), c["table"], command,
        c["idle_timeout"], c["hard_timeout"], c["priority"],
        _check_int(msg.get("buffer_id", OFP_NO_BUFFER), 32, "buffer_id"),
        port_number(msg.get("out_port", OFPP_ANY)),
        _check_int(msg.get("out_group", OFPG_ANY), 32, "out_group"), c["flags"], c["importance"])
    return body + encode_match(flow.get("match")) + encode_instructions(flow.get("instructions"), version)


def _decode_flow_mod_body(data, version):
    (cookie, cookie_mask, table, command, idle, hard, priority, buffer_id, out_port, out_group,
     flags, importance) = _unpack("!QQBBHHHIIIHH", data, 8, "flow_mod")
    match, pos = decode_match(data, 48, "flow_mod match")
    instructions = decode_instructions(data[pos:], version, "flow_mod instructions")
    flow = _flow_dict(table, priority, cookie, idle, hard, flags, importance if version >= OFP14_VERSION else 0,
                      match, instructions)
    return {"command": _reverse(FLOW_MOD_COMMANDS, command, "flow_mod command"), "flow": flow,
            "cookie_mask": cookie_mask, "out_port": out_port, "out_group": out_group,
            "buffer_id": buffer_id}


# OF1.3/1.4 ofp_flow_stats: 48 bytes before the match.
_FLOW_STATS13 = struct.Struct("!HBxIIHHHHH2xQQQ")
# OF1.5 ofp_flow_desc: 24 bytes before the match.
_FLOW_DESC15 = struct.Struct("!H2xBxHHHHHQ")

OXS_CLASS = 0x8002
OXS_DURATION = 0
OXS_IDLE_TIME = 1
OXS_FLOW_COUNT = 3
OXS_PACKET_COUNT = 4
OXS_BYTE_COUNT = 5


def _encode_flow_stats_entry(entry, version):
    c = _flow_common(entry)
    match = encode_match(entry.get("match"))
    insts = encode_instructions(entry.get("instructions"), version)
    if version >= OFP15_VERSION:
        stats = b""
        if "duration_sec" in entry:
            stats += _oxs(OXS_DURATION, (entry["duration_sec"] << 32) | entry.get("duration_nsec", 0))
        if "idle_age" in entry:
            stats += _oxs(OXS_IDLE_TIME, entry["idle_age"] << 32)
        if "packet_count" in entry:
            stats += _oxs(OXS_PACKET_COUNT, entry["packet_count"])
        if "byte_count" in entry:
            stats += _oxs(OXS_BYTE_COUNT, entry["byte_count"])
        stats = struct.pack("!HH", 0, 4 + len(stats)) + stats
        stats += b"\0" * _pad8(len(stats))
        length = _FLOW_DESC15.size + len(match) + len(stats) + len(insts)
        head = _FLOW_DESC15.pack(length, c["table"], c["priority"], c["idle_timeout"], c["hard_timeout"],
                                 c["flags"], c["importance"], c["cookie"])
        return head + match + stats + insts
    length = _FLOW_STATS13.size + len(match) + len(insts)
    head = _FLOW_STATS13.pack(length, c["table"], entry.get("duration_sec", 0), entry.get("duration_nsec", 0),
                              c["priority"], c["idle_timeout"], c["hard_timeout"], c["flags"],
                              c["importance"] if version >= OFP14_VERSION else 0, c["cookie"],
                              entry.get("packet_count", 0), entry.get("byte_count", 0))
    return head + match + insts


def _oxs(field, value):
    return struct.pack("!IQ", (OXS_CLASS << 16) | (field << 9) | 8, value)


def _decode_flow_stats_entries(data, version):
    entries = []
    pos = 0
    while pos < len(data):
        (length,) = _unpack("!H", data, pos, "flow stats")
        if length < 8 or pos + length > len(data):
            raise OpenFlowCodecError("flow stats entry at offset %d has a bad length %d" % (pos, length))
        chunk = data[pos:pos + length]
        pos += length
        if version >= OFP15_VERSION:
            (_length, table, priority, idle, hard, flags, importance, cookie) = _unpack(
                _FLOW_DESC15.format, chunk, 0, "flow desc")
            match, off = decode_match(chunk, _FLOW_DESC15.size, "flow desc match")
            stats_len = _unpack("!HH", chunk, off, "flow desc stats")[1]
            stats = _decode_oxs(chunk[off + 4:off + stats_len])
            off += stats_len + _pad8(stats_len)
            entry = _flow_dict(table, priority, cookie, idle, hard, flags, importance, match,
                               decode_instructions(chunk[off:], version, "flow desc instructions"))
            entry.update(stats)
        else:
            (_length, table, dsec, dnsec, priority, idle, hard, flags, importance, cookie, packets,
             nbytes) = _unpack(_FLOW_STATS13.format, chunk, 0, "flow stats")
            match, off = decode_match(chunk, _FLOW_STATS13.size, "flow stats match")
            entry = _flow_dict(table, priority, cookie, idle, hard, flags,
                               importance if version >= OFP14_VERSION else 0, match,
                               decode_instructions(chunk[off:], version, "flow stats instructions"))
            entry.update({"duration_sec": dsec, "duration_nsec": dnsec, "packet_count": packets,
                          "byte_count": nbytes})
        entries.append(entry)
    return entries


def _decode_oxs(data):
    stats = {}
    pos = 0
    while pos + 4 <= len(data):
        (header,) = struct.unpack_from("!I", data, pos)
        oxs_class, field, length = header >> 16, (header >> 9) & 0x7f, header & 0xff
        value = data[pos + 4:pos + 4 + length]
        pos += 4 + length
        if oxs_class != OXS_CLASS:
            continue
        number = int.from_bytes(value, "big")
        if field == OXS_DURATION and length == 8:
            stats["duration_sec"], stats["duration_nsec"] = number >> 32, number & 0xffffffff
        elif field == OXS_IDLE_TIME and length == 8:
            stats["idle_age"] = number >> 32
        elif field == OXS_PACKET_COUNT and length == 8:
            stats["packet_count"] = number
        elif field == OXS_BYTE_COUNT and length == 8:
            stats["byte_count"] = number
    return stats


# --------------------------------------------------------------------------
# What Open vSwitch reports back
# --------------------------------------------------------------------------

# The order in which Open vSwitch keeps (and reports) a flow's instructions.
OVS_INSTRUCTION_ORDER = ("meter", "apply_actions", "clear_actions", "write_actions", "write_metadata",
                         "goto_table")
CT_STATE_SUPPORTED = 0xff


def normalize_flow(flow):
    """The flow as Open vSwitch (3.1) reports it in a flow stats reply.

    A desired flow passed through this compares equal to :func:`flow_only` of
    what the switch returns. Open vSwitch:

    * reports every key (defaults filled in, as :func:`decode` does);
    * drops match fields whose mask is all zeros (they match anything);
    * keeps only the 8 defined ct_state bits in the mask, so an exact
      ``ct_state`` comes back as ``{"value": v, "mask": 0xff}``;
    * drops apply_actions / write_actions instructions with no actions;
    * keeps instructions in the order meter, apply_actions, clear_actions,
      write_actions, write_metadata, goto_table, whatever order they came in.

    It does not clear value bits outside a mask: it refuses such a match (the
    encoder already does). Counters of a stats entry are dropped.
    """
    canonical = decode(flow_mod(OFP15_VERSION, flow_only(flow)))["flow"]
    match = {}
    for name, value in canonical["match"].items():
        if isinstance(value, dict) and "mask" in value and not value.get("wire"):
            mask = value["mask"]
            if mask in (0, "0.0.0.0", "00:00:00:00:00:00", "::"):
                if name != "vlan_vid":
                    continue
        if name == "ct_state":
            if isinstance(value, dict):
                value = {"value": value["value"] & CT_STATE_SUPPORTED, "mask": value["mask"] & CT_STATE_SUPPORTED}
            else:
                value = {"value": value & CT_STATE_SUPPORTED, "mask": CT_STATE_SUPPORTED}
            if not value["mask"]:
                continue
        match[name] = value
    instructions = [i for i in canonical["instructions"]
                    if not (i["type"] in ("apply_actions", "write_actions") and not i.get("actions"))]
    order = dict((name, n) for n, name in enumerate(OVS_INSTRUCTION_ORDER))
    instructions.sort(key=lambda i: order.get(i["type"], len(order)))
    canonical["match"] = match
    canonical["instructions"] = instructions
    return canonical


def normalize_meter(meter):
    """The meter as Open vSwitch's userspace (netdev) datapath reports it:
    a band's burst_size of 0 becomes its rate; defaults are filled in."""
    canonical = decode(meter_mod(OFP13_VERSION, meter))["meter"]
    for band in canonical["bands"]:
        if not band["burst_size"]:
            band["burst_size"] = band["rate"]
    return canonical


def normalize_group(group):
    """The group with every default filled in, as the switch reports it."""
    return decode(group_mod(OFP13_VERSION, group))["group"]


# --------------------------------------------------------------------------
# Meters
# --------------------------------------------------------------------------

def _meter_common(meter):
    if not isinstance(meter, dict):
        raise OpenFlowCodecError("a meter must be a dict, not %r" % (meter,))
    return (_check_int(meter.get("meter_id"), 32, "meter_id"),
            _flags_to_int(meter.get("flags"), METER_FLAGS, "meter"))


def _encode_bands(bands):
    out = b""
    for band in bands or []:
        if not isinstance(band, dict):
            raise OpenFlowCodecError("a meter band must be a dict, not %r" % (band,))
        btype = _lookup(METER_BAND_TYPES, band.get("type"), "meter band type")
        rate = _check_int(band.get("rate"), 32, "meter band rate")
        burst = _check_int(band.get("burst_size", 0), 32, "meter band burst_size")
        if btype == 2:
            tail = struct.pack("!B3x", _check_int(band.get("prec_level", 0), 8, "prec_level"))
        elif btype == 0xffff:
            tail = struct.pack("!I", _check_int(band.get("experimenter"), 32, "band experimenter"))
        else:
            tail = b"\0" * 4
        out += struct.pack("!HHII", btype, 16, rate, burst) + tail
    return out


def _decode_bands(data, what):
    bands = []
    pos = 0
    while pos < len(data):
        btype, length, rate, burst = _unpack("!HHII", data, pos, what)
        if length < 16 or pos + length > len(data):
            raise OpenFlowCodecError("meter band at offset %d in %s has a bad length %d" % (pos, what, length))
        band = {"type": _reverse(METER_BAND_TYPES, btype, "meter band type") if btype in (1, 2, 0xffff)
                else "type_%d" % btype, "rate": rate, "burst_size": burst}
        if btype == 2:
            band["prec_level"] = data[pos + 12]
        elif btype == 0xffff:
            band["experimenter"] = struct.unpack_from("!I", data, pos + 12)[0]
        bands.append(band)
        pos += length
    return bands


def _meter_dict(meter_id, flags, bands):
    return {"meter_id": meter_id, "flags": _int_to_flags(flags, METER_FLAGS), "bands": bands}


def _encode_meter_config_entry(meter):
    meter_id, flags = _meter_common(meter)
    bands = _encode_bands(meter.get("bands"))
    return struct.pack("!HHI", 8 + len(bands), flags, meter_id) + bands


def _decode_meter_configs(data):
    meters = []
    pos = 0
    while pos < len(data):
        length, flags, meter_id = _unpack("!HHI", data, pos, "meter config")
        if length < 8 or pos + length > len(data):
            raise OpenFlowCodecError("meter config at offset %d has a bad length %d" % (pos, length))
        meters.append(_meter_dict(meter_id, flags, _decode_bands(data[pos + 8:pos + length], "meter config")))
        pos += length
    return meters


_METER_STATS = struct.Struct("!IH6xIQQII")


def _encode_meter_stats_entry(entry):
    bands = b"".join(struct.pack("!QQ", b.get("packet_count", 0), b.get("byte_count", 0))
                     for b in entry.get("band_stats", []))
    return _METER_STATS.pack(entry["meter_id"], _METER_STATS.size + len(bands), entry.get("flow_count", 0),
                             entry.get("packet_in_count", 0), entry.get("byte_in_count", 0),
                             entry.get("duration_sec", 0), entry.get("duration_nsec", 0)) + bands


def _decode_meter_stats(data):
    entries = []
    pos = 0
    while pos < len(data):
        meter_id, length, flows, packets, nbytes, dsec, dnsec = _unpack(_METER_STATS.format, data, pos,
                                                                        "meter stats")
        if length < _METER_STATS.size or pos + length > len(data):
            raise OpenFlowCodecError("meter stats at offset %d has a bad length %d" % (pos, length))
        bands = []
        for off in range(pos + _METER_STATS.size, pos + length - 15, 16):
            p, b = struct.unpack_from("!QQ", data, off)
            bands.append({"packet_count": p, "byte_count": b})
        entries.append({"meter_id": meter_id, "flow_count": flows, "packet_in_count": packets,
                        "byte_in_count": nbytes, "duration_sec": dsec, "duration_nsec": dnsec,
                        "band_stats": bands})
        pos += length
    return entries


# --------------------------------------------------------------------------
# Groups
# --------------------------------------------------------------------------

OFPGBPT15_WEIGHT = 0
OFPGBPT15_WATCH_PORT = 1
OFPGBPT15_WATCH_GROUP = 2


def _group_common(group):
    if not isinstance(group, dict):
        raise OpenFlowCodecError("a group must be a dict, not %r" % (group,))
    gtype = group.get("type", "all")
    return (_check_int(group.get("group_id"), 32, "group_id"), gtype,
            _lookup(GROUP_TYPES, gtype, "group type"))


def _bucket_fields(bucket, gtype):
    if not isinstance(bucket, dict):
        raise OpenFlowCodecError("a group bucket must be a dict, not %r" % (bucket,))
    weight = bucket.get("weight")
    if weight is None:
        weight = 1 if gtype == "select" else 0
    watch_port = bucket.get("watch_port")
    watch_group = bucket.get("watch_group")
    return (_check_int(weight, 16, "bucket weight"),
            OFPP_ANY if watch_port is None else port_number(watch_port),
            OFPG_ANY if watch_group is None else _check_int(watch_group, 32, "bucket watch_group"))


def _bucket_dict(weight, watch_port, watch_group, actions):
    return {"weight": weight, "watch_port": None if watch_port == OFPP_ANY else watch_port,
            "watch_group": None if watch_group == OFPG_ANY else watch_group, "actions": actions}


def _encode_buckets(group, gtype, version):
    out = b""
    for index, bucket in enumerate(group.get("buckets") or []):
        weight, watch_port, watch_group = _bucket_fields(bucket, gtype)
        actions = encode_actions(bucket.get("actions"), version)
        if version >= OFP15_VERSION:
            props = b""
            if gtype == "select" or weight:
                props += struct.pack("!HHH2x", OFPGBPT15_WEIGHT, 8, weight)
            if watch_port != OFPP_ANY:
                props += struct.pack("!HHI", OFPGBPT15_WATCH_PORT, 8, watch_port)
            if watch_group != OFPG_ANY:
                props += struct.pack("!HHI", OFPGBPT15_WATCH_GROUP, 8, watch_group)
            out += struct.pack("!HHI", 8 + len(actions) + len(props), len(actions), index) + actions + props
        else:
            out += struct.pack("!HHII4x", 16 + len(actions), weight, watch_port, watch_group) + actions
    return out


def _decode_buckets(data, gtype, version, what):
    buckets = []
    pos = 0
    while pos < len(data):
        if version >= OFP15_VERSION:
            length, actions_len, _bucket_id = _unpack("!HHI", data, pos, what)
            if length < 8 or pos + length > len(data) or actions_len > length - 8:
                raise OpenFlowCodecError("group bucket at offset %d in %s has a bad length" % (pos, what))
            actions = decode_actions(data[pos + 8:pos + 8 + actions_len], version, what)
            weight = 1 if gtype == "select" else 0
            watch_port, watch_group = OFPP_ANY, OFPG_ANY
            ppos, end = pos + 8 + actions_len, pos + length
            while ppos + 4 <= end:
                ptype, plen = struct.unpack_from("!HH", data, ppos)
                if plen < 4:
                    raise OpenFlowCodecError("bad bucket property length in %s" % what)
                if ptype == OFPGBPT15_WEIGHT and plen >= 6:
                    (weight,) = struct.unpack_from("!H", data, ppos + 4)
                elif ptype == OFPGBPT15_WATCH_PORT and plen >= 8:
                    (watch_port,) = struct.unpack_from("!I", data, ppos + 4)
                elif ptype == OFPGBPT15_WATCH_GROUP and plen >= 8:
                    (watch_group,) = struct.unpack_from("!I", data, ppos + 4)
                ppos += plen + _pad8(plen)
        else:
            length, weight, watch_port, watch_group = _unpack("!HHII", data, pos, what)
            if length < 16 or pos + length > len(data):
                raise OpenFlowCodecError("group bucket at offset %d in %s has a bad length" % (pos, what))
            actions = decode_actions(data[pos + 16:pos + length], version, what)
        buckets.append(_bucket_dict(weight, watch_port, watch_group, actions))
        pos += length
    return buckets


def _group_type_name(number):
    for name, num in GROUP_TYPES.items():
        if num == number:
            return name
    return "type_%d" % number


def _encode_group_mod_body(msg, version):
    group = msg.get("group") or {}
    group_id, gtype, gnum = _group_common(group)
    command = _lookup(GROUP_MOD_COMMANDS, msg.get("command", "add"), "group_mod command")
    buckets = _encode_buckets(group, gtype, version)
    if version >= OFP15_VERSION:
        return struct.pack("!HBxIH2xI", command, gnum, group_id, len(buckets), OFPG15_BUCKET_ALL) + buckets
    return struct.pack("!HBxI", command, gnum, group_id) + buckets


def _decode_group_mod_body(data, version):
    if version >= OFP15_VERSION:
        command, gnum, group_id, blen, _cmd_bucket = _unpack("!HBxIH2xI", data, 8, "group_mod")
        buckets_data = data[24:24 + blen]
    else:
        command, gnum, group_id = _unpack("!HBxI", data, 8, "group_mod")
        buckets_data = data[16:]
    gtype = _group_type_name(gnum)
    group = {"group_id": group_id, "type": gtype,
             "buckets": _decode_buckets(buckets_data, gtype, version, "group_mod buckets")}
    return {"command": _reverse(GROUP_MOD_COMMANDS, command, "group_mod command"), "group": group}


def _encode_group_desc_entry(group, version):
    group_id, gtype, gnum = _group_common(group)
    buckets = _encode_buckets(group, gtype, version)
    if version >= OFP15_VERSION:
        return struct.pack("!HBxIH6x", 16 + len(buckets), gnum, group_id, len(buckets)) + buckets
    return struct.pack("!HBxI", 8 + len(buckets), gnum, group_id) + buckets


def _decode_group_descs(data, version):
    groups = []
    pos = 0
    while pos < len(data):
        if version >= OFP15_VERSION:
            length, gnum, group_id, blen = _unpack("!HBxIH6x", data, pos, "group desc")
            start, end = pos + 16, pos + 16 + blen
        else:
            length, gnum, group_id = _unpack("!HBxI", data, pos, "group desc")
            start, end = pos + 8, pos + length
        if length < 8 or pos + length > len(data) or end > pos + length:
            raise OpenFlowCodecError("group desc at offset %d has a bad length %d" % (pos, length))
        gtype = _group_type_name(gnum)
        groups.append({"group_id": group_id, "type": gtype,
                       "buckets": _decode_buckets(data[start:end], gtype, version, "group desc buckets")})
        pos += length
    return groups


_GROUP_STATS = struct.Struct("!H2xII4xQQII")


def _encode_group_stats_entry(entry):
    buckets = b"".join(struct.pack("!QQ", b.get("packet_count", 0), b.get("byte_count", 0))
                       for b in entry.get("bucket_stats", []))
    return _GROUP_STATS.pack(_GROUP_STATS.size + len(buckets), entry["group_id"], entry.get("ref_count", 0),
                             entry.get("packet_count", 0), entry.get("byte_count", 0),
                             entry.get("duration_sec", 0), entry.get("duration_nsec", 0)) + buckets


def _decode_group_stats(data):
    entries = []
    pos = 0
    while pos < len(data):
        length, group_id, refs, packets, nbytes, dsec, dnsec = _unpack(_GROUP_STATS.format, data, pos,
                                                                       "group stats")
        if length < _GROUP_STATS.size or pos + length > len(data):
            raise OpenFlowCodecError("group stats at offset %d has a bad length %d" % (pos, length))
        buckets = []
        for off in range(pos + _GROUP_STATS.size, pos + length - 15, 16):
            p, b = struct.unpack_from("!QQ", data, off)
            buckets.append({"packet_count": p, "byte_count": b})
        entries.append({"group_id": group_id, "ref_count": refs, "packet_count": packets,
                        "byte_count": nbytes, "duration_sec": dsec, "duration_nsec": dnsec,
                        "bucket_stats": buckets})
        pos += length
    return entries


# --------------------------------------------------------------------------
# Multipart
# --------------------------------------------------------------------------

def _mp_type_number(msg):
    mp_type = msg.get("mp_type")
    if _is_int(mp_type):
        return mp_type
    return _lookup(MULTIPART_TYPES, mp_type, "multipart type")


def _mp_type_name(number):
    for name, num in MULTIPART_TYPES.items():
        if num == number:
            return name
    return number


def _encode_mp_request_body(mp_type, body, version):
    body = body or {}
    if mp_type == "flow":
        table = body.get("table")
        table = OFPTT_ALL if table is None else _check_int(table, 8, "table")
        return struct.pack("!B3xII4xQQ", table, port_number(body.get("out_port", OFPP_ANY)),
                           _check_int(body.get("out_group", OFPG_ANY), 32, "out_group"),
                           _check_int(body.get("cookie", 0), 64, "cookie"),
                           _check_int(body.get("cookie_mask", 0), 64, "cookie_mask")) \
            + encode_match(body.get("match"))
    if mp_type in ("meter", "meter_config"):
        return struct.pack("!I4x", _check_int(body.get("meter_id", OFPM_ALL), 32, "meter_id"))
    if mp_type == "group":
        return struct.pack("!I4x", _check_int(body.get("group_id", OFPG_ALL), 32, "group_id"))
    if mp_type == "group_desc":
        if version >= OFP15_VERSION:
            return struct.pack("!I4x", _check_int(body.get("group_id", OFPG_ALL), 32, "group_id"))
        if body.get("group_id", OFPG_ALL) != OFPG_ALL:
            raise OpenFlowCodecError("a group_desc request for one group needs OpenFlow 1.5")
        return b""
    return _unhex(body.get("hex", ""), "multipart request body")


def _decode_mp_request_body(mp_type, data, version):
    if mp_type == "flow":
        table, out_port, out_group, cookie, cookie_mask = _unpack("!B3xII4xQQ", data, 0, "flow stats request")
        match = decode_match(data, 32, "flow stats request match")[0]
        return {"table": table, "out_port": out_port, "out_group": out_group, "cookie": cookie,
                "cookie_mask": cookie_mask, "match": match}
    if mp_type in ("meter", "meter_config"):
        return {"meter_id": _unpack("!I", data, 0, "meter request")[0]}
    if mp_type == "group":
        return {"group_id": _unpack("!I", data, 0, "group request")[0]}
    if mp_type == "group_desc":
        if version >= OFP15_VERSION:
            return {"group_id": _unpack("!I", data, 0, "group desc request")[0]}
        return {"group_id": OFPG_ALL}
    return {"hex": _hex(data)}


def _encode_mp_reply_body(mp_type, body, version):
    if mp_type == "flow":
        return b"".join(_encode_flow_stats_entry(e, version) for e in body or [])
    if mp_type == "meter_config":
        return b"".join(_encode_meter_config_entry(e) for e in body or [])
    if mp_type == "meter":
        return b"".join(_encode_meter_stats_entry(e) for e in body or [])
    if mp_type == "group_desc":
        return b"".join(_encode_group_desc_entry(e, version) for e in body or [])
    if mp_type == "group":
        return b"".join(_encode_group_stats_entry(e) for e in body or [])
    return _unhex((body or {}).get("hex", ""), "multipart reply body")


def _decode_mp_reply_body(mp_type, data, version):
    if mp_type == "flow":
        return _decode_flow_stats_entries(data, version)
    if mp_type == "meter_config":
        return _decode_meter_configs(data)
    if mp_type == "meter":
        return _decode_meter_stats(data)
    if mp_type == "group_desc":
        return _decode_group_descs(data, version)
    if mp_type == "group":
        return _decode_group_stats(data)
    return {"hex": _hex(data)}


# --------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------

def _header(version, msg_type, length, xid):
    if length > OFP_MAX_LEN:
        raise OpenFlowCodecError("message of %d bytes exceeds the OpenFlow limit of 65535" % length)
    return OFP_HEADER.pack(version, msg_type, length, xid)


def _message(version, msg_type, xid, body=b""):
    return _header(version, msg_type, OFP_HEADER_LEN + len(body), xid) + body


def _check_version(version):
    if version not in VERSIONS:
        raise OpenFlowCodecError("unsupported OpenFlow wire version %r; this codec speaks %s"
                                 % (version, ", ".join("%d (%s)" % (v, VERSION_NAMES[v]) for v in VERSIONS)))
    return version


def parse_header(data):
    """(version, type, length, xid) of a message's first 8 bytes."""
    return _unpack("!BBHI", data, 0, "OpenFlow header")


def encode(msg):
    """Bytes of a canonical message dict (see the module docstring)."""
    if not isinstance(msg, dict) or "type" not in msg:
        raise OpenFlowCodecError("a message must be a dict with a 'type', not %r" % (msg,))
    mtype = msg["type"]
    xid = _check_int(msg.get("xid", 0), 32, "xid")
    if mtype == "hello":
        versions = msg.get("versions")
        version = _check_int(msg.get("version", max(versions) if versions else OFP15_VERSION), 8, "version")
        body = b""
        if versions is not None:
            bitmap = 0
            for v in versions:
                bitmap |= 1 << _check_int(v, 5, "hello version")
            body = struct.pack("!HHI", OFPHET_VERSIONBITMAP, 8, bitmap)
        return _message(version, OFPT_HELLO, xid, body)
    version = _check_int(msg.get("version", OFP13_VERSION), 8, "version")
    if mtype == "error":
        data = msg.get("data", b"")
        if msg.get("err_type") == OFPET_EXPERIMENTER or msg.get("experimenter") is not None:
            body = struct.pack("!HHI", OFPET_EXPERIMENTER, _check_int(msg.get("err_code"), 16, "err_code"),
                               _check_int(msg.get("experimenter"), 32, "experimenter"))
        else:
            body = struct.pack("!HH", _check_int(msg.get("err_type"), 16, "err_type"),
                               _check_int(msg.get("err_code"), 16, "err_code"))
        return _message(version, OFPT_ERROR, xid, body + bytes(data))
    if mtype in ("echo_request", "echo_reply"):
        code = OFPT_ECHO_REQUEST if mtype == "echo_request" else OFPT_ECHO_REPLY
        return _message(version, code, xid, bytes(msg.get("data", b"")))
    simple = {"features_request": OFPT_FEATURES_REQUEST, "barrier_request": OFPT_BARRIER_REQUEST,
              "barrier_reply": OFPT_BARRIER_REPLY}
    if mtype in simple:
        return _message(version, simple[mtype], xid)
    if mtype == "features_reply":
        body = struct.pack("!QIBB2xII", _check_int(msg.get("datapath_id", 0), 64, "datapath_id"),
                           msg.get("n_buffers", 0), msg.get("n_tables", 0), msg.get("auxiliary_id", 0),
                           msg.get("capabilities", 0), 0)
        return _message(version, OFPT_FEATURES_REPLY, xid, body)
    if mtype == "unknown":
        return _message(version, _check_int(msg.get("msg_type"), 8, "msg_type"), xid, bytes(msg.get("body", b"")))
    if mtype == "experimenter":
        body = struct.pack("!II", _check_int(msg.get("experimenter"), 32, "experimenter"),
                           _check_int(msg.get("exp_type"), 32, "exp_type")) + bytes(msg.get("data", b""))
        return _message(version, OFPT_EXPERIMENTER, xid, body)
    _check_version(version)
    if mtype == "flow_mod":
        return _message(version, OFPT_FLOW_MOD, xid, _encode_flow_mod_body(msg, version))
    if mtype == "group_mod":
        return _message(version, OFPT_GROUP_MOD, xid, _encode_group_mod_body(msg, version))
    if mtype == "meter_mod":
        meter = msg.get("meter") or {}
        meter_id, flags = _meter_common(meter)
        command = _lookup(METER_MOD_COMMANDS, msg.get("command", "add"), "meter_mod command")
        body = struct.pack("!HHI", command, flags, meter_id) + _encode_bands(meter.get("bands"))
        return _message(version, OFPT_METER_MOD, xid, body)
    if mtype in ("multipart_request", "multipart_reply"):
        number = _mp_type_number(msg)
        name = _mp_type_name(number)
        flags = _flags_to_int(msg.get("flags"), MULTIPART_FLAGS, "multipart")
        if mtype == "multipart_request":
            body = _encode_mp_request_body(name, msg.get("body"), version)
            code = OFPT_MULTIPART_REQUEST
        else:
            body = _encode_mp_reply_body(name, msg.get("body"), version)
            code = OFPT_MULTIPART_REPLY
        return _message(version, code, xid, struct.pack("!HH4x", number, flags) + body)
    if mtype == "bundle_control":
        bundle_id = _check_int(msg.get("bundle_id"), 32, "bundle_id")
        ctrl = _lookup(BUNDLE_CTRL_TYPES, msg.get("ctrl"), "bundle control type")
        flags = _flags_to_int(msg.get("flags"), BUNDLE_FLAGS, "bundle")
        body = struct.pack("!IHH", bundle_id, ctrl, flags)
        if version == OFP13_VERSION:
            return _message(version, OFPT_EXPERIMENTER, xid,
                            struct.pack("!II", ONF_VENDOR_ID, ONFT_BUNDLE_CONTROL) + body)
        return _message(version, OFPT_BUNDLE_CONTROL, xid, body)
    if mtype == "bundle_add":
        bundle_id = _check_int(msg.get("bundle_id"), 32, "bundle_id")
        flags = _flags_to_int(msg.get("flags"), BUNDLE_FLAGS, "bundle")
        inner = msg.get("message")
        if isinstance(inner, dict):
            inner = encode(dict(inner, version=inner.get("version", version)))
        if not isinstance(inner, (bytes, bytearray)) or len(inner) < OFP_HEADER_LEN:
            raise OpenFlowCodecError("bundle_add needs the inner message as a dict or bytes")
        body = struct.pack("!IHH", bundle_id, 0, flags) + bytes(inner)
        if version == OFP13_VERSION:
            return _message(version, OFPT_EXPERIMENTER, xid,
                            struct.pack("!II", ONF_VENDOR_ID, ONFT_BUNDLE_ADD_MESSAGE) + body)
        return _message(version, OFPT_BUNDLE_ADD_MESSAGE, xid, body)
    raise OpenFlowCodecError("unknown message type %r" % (mtype,))


def decode(data):
    """The canonical dict of one whole message (bytes of exactly its length)."""
    data = bytes(data)
    version, code, length, xid = parse_header(data)
    if length != len(data):
        raise OpenFlowCodecError("message length field says %d bytes, got %d" % (length, len(data)))
    msg = {"version": version, "xid": xid}
    body = data[OFP_HEADER_LEN:]
    if code == OFPT_HELLO:
        msg["type"] = "hello"
        msg["versions"] = _decode_hello_versions(body)
        return msg
    if code == OFPT_ERROR:
        err_type, err_code = _unpack("!HH", body, 0, "error")
        experimenter = None
        rest = body[4:]
        if err_type == OFPET_EXPERIMENTER:
            (experimenter,) = _unpack("!I", body, 4, "experimenter error")
            rest = body[8:]
        type_name, code_name = error_names(err_type, err_code, experimenter)
        msg.update({"type": "error", "err_type": err_type, "err_code": err_code, "type_name": type_name,
                    "code_name": code_name, "experimenter": experimenter, "data": rest})
        return msg
    if code in (OFPT_ECHO_REQUEST, OFPT_ECHO_REPLY):
        msg["type"] = "echo_request" if code == OFPT_ECHO_REQUEST else "echo_reply"
        msg["data"] = body
        return msg
    simple = {OFPT_FEATURES_REQUEST: "features_request", OFPT_BARRIER_REQUEST: "barrier_request",
              OFPT_BARRIER_REPLY: "barrier_reply"}
    if code in simple:
        msg["type"] = simple[code]
        return msg
    if code == OFPT_FEATURES_REPLY:
        dpid, n_buffers, n_tables, aux, caps = _unpack("!QIBB2xII", body, 0, "features reply")[:5]
        msg.update({"type": "features_reply", "datapath_id": dpid, "n_buffers": n_buffers,
                    "n_tables": n_tables, "auxiliary_id": aux, "capabilities": caps})
        return msg
    if code == OFPT_EXPERIMENTER:
        experimenter, exp_type = _unpack("!II", body, 0, "experimenter message")
        if experimenter == ONF_VENDOR_ID and exp_type in (ONFT_BUNDLE_CONTROL, ONFT_BUNDLE_ADD_MESSAGE):
            return _decode_bundle(msg, exp_type == ONFT_BUNDLE_ADD_MESSAGE, body[8:])
        msg.update({"type": "experimenter", "experimenter": experimenter, "exp_type": exp_type,
                    "data": body[8:]})
        return msg
    if version in VERSIONS:
        if code == OFPT_FLOW_MOD:
            msg["type"] = "flow_mod"
            msg.update(_decode_flow_mod_body(data, version))
            return msg
        if code == OFPT_GROUP_MOD:
            msg["type"] = "group_mod"
            msg.update(_decode_group_mod_body(data, version))
            return msg
        if code == OFPT_METER_MOD:
            command, flags, meter_id = _unpack("!HHI", body, 0, "meter_mod")
            msg.update({"type": "meter_mod", "command": _reverse(METER_MOD_COMMANDS, command, "meter_mod command"),
                        "meter": _meter_dict(meter_id, flags, _decode_bands(body[8:], "meter_mod"))})
            return msg
        if code in (OFPT_MULTIPART_REQUEST, OFPT_MULTIPART_REPLY):
            number, flags = _unpack("!HH", body, 0, "multipart")
            name = _mp_type_name(number)
            payload = body[8:]
            if code == OFPT_MULTIPART_REQUEST:
                msg["type"] = "multipart_request"
                parsed = _decode_mp_request_body(name, payload, version)
            else:
                msg["type"] = "multipart_reply"
                parsed = _decode_mp_reply_body(name, payload, version)
            msg.update({"mp_type": name, "flags": _int_to_flags(flags, MULTIPART_FLAGS), "body": parsed})
            return msg
        if code in (OFPT_BUNDLE_CONTROL, OFPT_BUNDLE_ADD_MESSAGE) and version >= OFP14_VERSION:
            return _decode_bundle(msg, code == OFPT_BUNDLE_ADD_MESSAGE, body)
    msg.update({"type": "unknown", "msg_type": code, "body": body})
    return msg


def _decode_hello_versions(body):
    pos = 0
    while pos + 4 <= len(body):
        etype, elen = struct.unpack_from("!HH", body, pos)
        if elen < 4:
            break
        if etype == OFPHET_VERSIONBITMAP:
            versions = []
            for i, off in enumerate(range(pos + 4, min(pos + elen, len(body)) - 3, 4)):
                (bitmap,) = struct.unpack_from("!I", body, off)
                versions += [32 * i + b for b in range(32) if bitmap & (1 << b)]
            return versions
        pos += elen + _pad8(elen)
    return None


def _decode_bundle(msg, is_add, body):
    if is_add:
        bundle_id, flags = _unpack("!I2xH", body, 0, "bundle add")
        inner = body[8:]
        inner_len = parse_header(inner)[2]
        if inner_len < OFP_HEADER_LEN or inner_len > len(inner):
            raise OpenFlowCodecError("bundle add: the inner message has a bad length %d" % inner_len)
        msg.update({"type": "bundle_add", "bundle_id": bundle_id,
                    "flags": _int_to_flags(flags, BUNDLE_FLAGS), "message": decode(inner[:inner_len])})
        return msg
    bundle_id, ctrl, flags = _unpack("!IHH", body, 0, "bundle control")
    msg.update({"type": "bundle_control", "bundle_id": bundle_id,
                "ctrl": _reverse(BUNDLE_CTRL_TYPES, ctrl, "bundle control type"),
                "flags": _int_to_flags(flags, BUNDLE_FLAGS)})
    return msg


# --------------------------------------------------------------------------
# Builders (bytes)
# --------------------------------------------------------------------------

def hello(versions=VERSIONS, xid=0, version=None):
    """OFPT_HELLO offering ``versions`` in a version bitmap element."""
    versions = sorted(versions)
    return encode({"type": "hello", "version": version or versions[-1], "xid": xid, "versions": versions})


def echo_request(version, xid=0, data=b""):
    return encode({"type": "echo_request", "version": version, "xid": xid, "data": data})


def echo_reply(version, xid=0, data=b""):
    return encode({"type": "echo_reply", "version": version, "xid": xid, "data": data})


def barrier_request(version, xid=0):
    return encode({"type": "barrier_request", "version": version, "xid": xid})


def features_request(version, xid=0):
    return encode({"type": "features_request", "version": version, "xid": xid})


def error(version, err_type, err_code, xid=0, data=b"", experimenter=None):
    return encode({"type": "error", "version": version, "xid": xid, "err_type": err_type,
                   "err_code": err_code, "experimenter": experimenter, "data": data})


def flow_mod(version, flow, command="add", xid=0, cookie_mask=0, out_port=OFPP_ANY, out_group=OFPG_ANY,
             buffer_id=OFP_NO_BUFFER):
    """OFPT_FLOW_MOD for a canonical flow. For deletes, ``flow`` may hold only
    table (OFPTT_ALL allowed), cookie, match and, for delete_strict, priority."""
    return encode({"type": "flow_mod", "version": version, "xid": xid, "command": command, "flow": flow,
                   "cookie_mask": cookie_mask, "out_port": out_port, "out_group": out_group,
                   "buffer_id": buffer_id})


def group_mod(version, group, command="add", xid=0):
    return encode({"type": "group_mod", "version": version, "xid": xid, "command": command, "group": group})


def meter_mod(version, meter, command="add", xid=0):
    return encode({"type": "meter_mod", "version": version, "xid": xid, "command": command, "meter": meter})


def flow_stats_request(version, table=None, out_port=OFPP_ANY, out_group=OFPG_ANY, cookie=0, cookie_mask=0,
                       match=None, xid=0):
    return encode({"type": "multipart_request", "version": version, "xid": xid, "mp_type": "flow",
                   "flags": [], "body": {"table": OFPTT_ALL if table is None else table, "out_port": out_port,
                                         "out_group": out_group, "cookie": cookie,
                                         "cookie_mask": cookie_mask, "match": match or {}}})


def meter_config_request(version, meter_id=OFPM_ALL, xid=0):
    return encode({"type": "multipart_request", "version": version, "xid": xid, "mp_type": "meter_config",
                   "flags": [], "body": {"meter_id": meter_id}})


def meter_stats_request(version, meter_id=OFPM_ALL, xid=0):
    return encode({"type": "multipart_request", "version": version, "xid": xid, "mp_type": "meter",
                   "flags": [], "body": {"meter_id": meter_id}})


def group_desc_request(version, group_id=OFPG_ALL, xid=0):
    return encode({"type": "multipart_request", "version": version, "xid": xid, "mp_type": "group_desc",
                   "flags": [], "body": {"group_id": group_id}})


def group_stats_request(version, group_id=OFPG_ALL, xid=0):
    return encode({"type": "multipart_request", "version": version, "xid": xid, "mp_type": "group",
                   "flags": [], "body": {"group_id": group_id}})


def bundle_control(version, bundle_id, ctrl, flags=("atomic", "ordered"), xid=0):
    """OFPT_BUNDLE_CONTROL (OF1.4+) or the ONF extension (OF1.3)."""
    return encode({"type": "bundle_control", "version": version, "xid": xid, "bundle_id": bundle_id,
                   "ctrl": ctrl, "flags": list(flags)})


def bundle_add(version, bundle_id, message, flags=("atomic", "ordered"), xid=0):
    """OFPT_BUNDLE_ADD_MESSAGE (OF1.4+) or the ONF extension (OF1.3); ``message``
    is the inner message as bytes or a dict."""
    return encode({"type": "bundle_add", "version": version, "xid": xid, "bundle_id": bundle_id,
                   "flags": list(flags), "message": message})


def with_xid(data, xid):
    """The same message bytes with another xid."""
    return bytes(data[:4]) + struct.pack("!I", xid) + bytes(data[8:])
