# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The OpenFlow flow model: ovs-ofctl text and structured dicts in, one canonical form out.

Users write a flow either in ``ovs-ofctl`` syntax::

    table=0,priority=100,cookie=0x10,in_port=1,tcp,nw_dst=10.0.0.0/8,tp_dst=443,
    actions=ct(commit,zone=5,table=10,nat(src=192.0.2.1-192.0.2.10:1000-2000)),output:2

or as a dict (:func:`flow_from_dict`). Both become the same canonical dict, the
form the wire codec (``codec.py``) encodes and decodes; :func:`format_flow`
prints a canonical flow exactly as ``ovs-ofctl -O OpenFlow13 dump-flows
--no-stats`` (Open vSwitch 3.1) prints that flow once the switch has it, and
:func:`flow_key` / :func:`flow_equal` compare flows as the switch does. This
module knows nothing of Ansible nor of sockets and never runs ``ovs-ofctl``.

Canonical choices (the wire codec must agree with these)
========================================================

``vlan_vid`` is the raw 13-bit OXM_OF_VLAN_VID value, OFPVID_PRESENT (0x1000)
included, exactly what travels on the wire and what ovs-ofctl's own
``vlan_vid=`` field means:

* ``0x100a`` (4106): tagged, VLAN 10 (ovs-ofctl ``dl_vlan=10``);
* ``0``: no VLAN tag (``dl_vlan=0xffff``, ``vlan_tci=0``);
* ``{"value": 0x1000, "mask": 0x1000}``: any tagged packet;
* ``{"value": 0x1010, "mask": 0x1ff0}``: tagged, VLAN id 16..31.

A value whose VLAN id bits are set while OFPVID_PRESENT is matched as absent
can never match and is refused. ``set_field`` on ``vlan_vid`` carries the raw
value too (``set_field:4106->vlan_vid``, as Open vSwitch prints it); it must
have OFPVID_PRESENT set, as the switch demands. ``vlan_pcp`` needs a tagged
``vlan_vid``; when a match gives ``vlan_pcp`` (``dl_vlan_pcp``) and no
``vlan_vid``, ``{"value": 0x1000, "mask": 0x1000}`` is added, as Open vSwitch
does.

``ct_state`` is always ``{"value": v, "mask": m}`` restricted to the eight
defined bits (new=0x01, est=0x02, rel=0x04, rpl=0x08, inv=0x10, trk=0x20,
snat=0x40, dnat=0x80): ``+trk+est-rel`` is ``{"value": 0x22, "mask": 0x26}``
and an exact ``ct_state=0x22`` is ``{"value": 0x22, "mask": 0xff}``, which is
what the switch reports.

Drop: a flow without instructions, ``"instructions": []`` (``actions=drop``).
An empty ``apply_actions`` or ``write_actions`` instruction is dropped, as the
switch drops it.

Ports are OpenFlow 1.1+ 32-bit ints; reserved ports are IN_PORT=0xfffffff8,
TABLE=0xfffffff9, NORMAL=0xfffffffa, FLOOD=0xfffffffb, ALL=0xfffffffc,
CONTROLLER=0xfffffffd, LOCAL=0xfffffffe, ANY=0xffffffff (:data:`PORTS`).
Physical ports are 0..0xfeff (Open vSwitch's range).

An output to CONTROLLER always carries ``max_len`` (default 65535 =
OFPCML_NO_BUFFER, what ``controller`` means in ovs-ofctl and what the switch
reports); other outputs never do.

Meters are always the ``meter`` instruction, never an action. Instructions
are kept in the order the switch keeps them: meter, apply_actions,
clear_actions, write_actions, write_metadata, goto_table. ``write_metadata``
always has ``mask`` (all ones when not given).

Masked match values are ``{"value": v, "mask": m}`` with ``v`` already ANDed
with ``m``; a mask of all ones becomes a plain value and a mask of all zeros
drops the field (it matches anything), as the switch does. Values: ints for
numeric fields and ports, MACs lower case ``"aa:bb:cc:dd:ee:ff"``, IPv4
dotted, IPv6 as ``str(ipaddress.IPv6Address)``; a mask has its value's form.

``ct`` actions: ``{"type": "ct", "commit": bool, "zone": int or {"field":
name, "ofs": o, "nbits": 16}, "table": int or None, "alg": int (21 ftp, 69
tftp) or None, "nat": None or {...}}`` plus ``"force": True`` and ``"exec":
[set_field ct_mark actions]`` only when set. ``nat`` applies at commit wherever
it is written among ct's nested actions: ovs-ofctl prints ``ct(commit,
exec(set_field:0x1->ct_mark,nat(src=...)))`` for a nat written after exec, and
that reads back as the same ct (this module prints nat first, as the codec
sends it). In ``nat``, ``ip_max`` equal to ``ip_min`` and ``port_max`` equal
to ``port_min`` are ``None`` (the switch reports a one-address range that way).

Open vSwitch normalisations this module mirrors
===============================================

* shorthands: ``ip``/``ipv4``/``ip4``, ``ipv6``/``ip6``, ``arp``, ``rarp``,
  ``tcp``, ``udp``, ``sctp``, ``icmp``, ``tcp6``, ``udp6``, ``sctp6``,
  ``icmp6``, ``mpls``, ``mplsm`` expand to ``eth_type`` (+ ``ip_proto``) and
  are collapsed again when printing;
* ``nw_src``/``nw_dst``/``nw_proto`` are ``arp_spa``/``arp_tpa``/``arp_op``
  in an ARP (or RARP) match; ``tp_src``/``tp_dst`` become ``tcp_``/``udp_``/
  ``sctp_`` by ``ip_proto``; ``icmp_type``/``icmp_code`` become ``icmpv4_``
  or ``icmpv6_`` by ``eth_type``; ``nw_tos`` is ``ip_dscp << 2``;
* ``dl_vlan``, ``dl_vlan_pcp`` and ``vlan_tci`` fold into ``vlan_vid`` and
  ``vlan_pcp`` as the switch stores them; printing rebuilds ``dl_vlan=``,
  ``dl_vlan_pcp=`` or ``vlan_tci=`` as ovs-ofctl chooses;
* ``mod_dl_src``, ``mod_nw_dst``, ``mod_tp_src``, ``mod_nw_tos``,
  ``mod_nw_ecn``, ``set_tunnel``, ``set_vlan_vid``, ``set_vlan_pcp`` are
  ``set_field`` on the wire; ``mod_vlan_vid``/``mod_vlan_pcp`` push an
  802.1Q tag first when the packet has none at that point; ``strip_vlan`` is
  ``pop_vlan``; ``controller`` is an output to CONTROLLER;
* action/match consistency is checked as ``ofpacts_check`` does: set_field
  prerequisites, IP for ``dec_ttl``/``mod_nw_ttl``/``ct``, a VLAN tag for
  ``pop_vlan``, at most two VLAN headers, the ct ``alg`` protocol, NAT
  address family, ``goto_table`` forward only.

Not supported (refused with a message saying so): other match fields
(``nw_ttl``, ``tcp_flags``, ``ip_frag``, ``ipv6_label``, ``nd_*``, ``mpls_*``,
``tun_src`` and the other tunnel fields, ``pkt_mark``, ``ct_label``,
``ct_nw_*``, ``xreg``/``xxreg``, ``packet_type``...), ``importance``, and
actions outside the model (``learn``, ``note``, ``load``, ``move``,
``enqueue``, ``set_queue``, ``multipath``, ``bundle``, ``clone``, ``sample``,
``push_mpls``, ``output`` to a field or with ``max_len``, ``controller``
options other than ``max_len``, masked ``set_field``, ``dec_ttl(ids)``,
``resubmit(...,ct)``, ``ct(exec(...))`` other than set_field to ct_mark...).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.codec import OFPP_ANY, OFPP_CONTROLLER, OFPP_IN_PORT


class FlowSyntaxError(ValueError):
    """A flow the model refuses: bad syntax, value, prerequisite or feature.

    ``token`` is the offending piece of input (a ``key=value`` of the text, or
    a dict path), ``flow`` the whole flow (or action list) as the user gave it.
    """

    def __init__(self, message, token=None, flow=None, what="flow"):
        self.message = message
        self.token = token
        self.flow = flow
        text = message
        if token:
            text = "%s: %s" % (token, message)
        if flow is not None:
            text += " (in %s %s)" % (what, flow)
        super(FlowSyntaxError, self).__init__(text)


def _error(message, token=None):
    return FlowSyntaxError(message, token)


# --------------------------------------------------------------------------
# Constants
# --------------------------------------------------------------------------

OFPP_MAX = 0xff00          # first port number Open vSwitch does not use for ports
# The reserved ports are the codec's (OFPP_IN_PORT ... OFPP_ANY), named as ovs-ofctl prints them.
PORTS = dict((name.upper(), number) for name, number in codec.PORT_NAMES.items())
PORT_NAMES = dict((v, k) for k, v in PORTS.items())
_PORT_ALIASES = {"NONE": OFPP_ANY}
OFPCML_NO_BUFFER = 0xffff

DEFAULT_PRIORITY = 0x8000
MAX_TABLE = 254
OFPG_MAX = 0xffffff00
OFPM_MAX = 0xffff0000

# In the order ovs-ofctl prints them.
FLOW_FLAGS = ("send_flow_rem", "check_overlap", "reset_counts", "no_packet_counts", "no_byte_counts")

# Bit order is print order.
CT_STATE_BITS = (("new", 0x01), ("est", 0x02), ("rel", 0x04), ("rpl", 0x08),
                 ("inv", 0x10), ("trk", 0x20), ("snat", 0x40), ("dnat", 0x80))
CT_STATE_MASK = 0xff
CT_ALGS = {"ftp": 21, "tftp": 69}

INSTRUCTION_ORDER = ("meter", "apply_actions", "clear_actions", "write_actions", "write_metadata", "goto_table")
_INSTRUCTION_RANK = dict((name, n) for n, name in enumerate(INSTRUCTION_ORDER))

ETH_IP = 0x0800
ETH_ARP = 0x0806
ETH_RARP = 0x8035
ETH_IPV6 = 0x86dd
ETH_MPLS = 0x8847
ETH_MPLSM = 0x8848
ETH_VLAN_TYPES = (0x8100, 0x88a8)
IPPROTO = {"icmp": 1, "tcp": 6, "udp": 17, "sctp": 132, "icmp6": 58}

# ovs-ofctl shorthand -> (eth_type, ip_proto or None)
SHORTHANDS = {
    "ip": (ETH_IP, None), "ipv4": (ETH_IP, None), "ip4": (ETH_IP, None),
    "icmp": (ETH_IP, 1), "tcp": (ETH_IP, 6), "udp": (ETH_IP, 17), "sctp": (ETH_IP, 132),
    "ipv6": (ETH_IPV6, None), "ip6": (ETH_IPV6, None),
    "icmp6": (ETH_IPV6, 58), "tcp6": (ETH_IPV6, 6), "udp6": (ETH_IPV6, 17), "sctp6": (ETH_IPV6, 132),
    "arp": (ETH_ARP, None), "rarp": (ETH_RARP, None), "mpls": (ETH_MPLS, None), "mplsm": (ETH_MPLSM, None),
}
_ETH_SHORTHAND = {ETH_ARP: "arp", ETH_RARP: "rarp", ETH_MPLS: "mpls", ETH_MPLSM: "mplsm"}
_IP_SHORTHAND = {(ETH_IP, 1): "icmp", (ETH_IP, 6): "tcp", (ETH_IP, 17): "udp", (ETH_IP, 132): "sctp",
                 (ETH_IPV6, 58): "icmp6", (ETH_IPV6, 6): "tcp6", (ETH_IPV6, 17): "udp6", (ETH_IPV6, 132): "sctp6"}


class _Field:
    __slots__ = ("name", "kind", "bits", "maskable", "prereq", "writable", "ovs_name", "hex")

    def __init__(self, name, kind, bits, maskable=False, prereq=None, writable=True, ovs_name=None, hexa=False):
        self.name = name
        self.kind = kind            # int, port, mac, ipv4, ipv6, vlan, ct_state
        self.bits = bits
        self.maskable = maskable
        self.prereq = prereq        # key of _PREREQS
        self.writable = writable
        self.ovs_name = ovs_name or name   # the name ovs-ofctl prints in set_field
        self.hex = hexa             # ovs-ofctl prints the value in hex


_FIELD_LIST = [
    _Field("in_port", "port", 32),
    _Field("metadata", "int", 64, True, hexa=True),
    _Field("tunnel_id", "int", 64, True, ovs_name="tun_id", hexa=True),
    _Field("ct_state", "ct_state", 32, True, writable=False),
    _Field("ct_zone", "int", 16, writable=False),
    _Field("ct_mark", "int", 32, True, hexa=True),
    _Field("eth_src", "mac", 48, True),
    _Field("eth_dst", "mac", 48, True),
    _Field("eth_type", "int", 16, writable=False),
    _Field("vlan_vid", "vlan", 13, True),
    _Field("vlan_pcp", "int", 3, prereq="vlan"),
    _Field("ip_dscp", "int", 6, prereq="ip"),
    _Field("ip_ecn", "int", 2, prereq="ip", ovs_name="nw_ecn"),
    _Field("ip_proto", "int", 8, prereq="ip", writable=False),
    _Field("ipv4_src", "ipv4", 32, True, "ipv4", ovs_name="ip_src"),
    _Field("ipv4_dst", "ipv4", 32, True, "ipv4", ovs_name="ip_dst"),
    _Field("ipv6_src", "ipv6", 128, True, "ipv6"),
    _Field("ipv6_dst", "ipv6", 128, True, "ipv6"),
    _Field("tcp_src", "int", 16, True, "tcp"),
    _Field("tcp_dst", "int", 16, True, "tcp"),
    _Field("udp_src", "int", 16, True, "udp"),
    _Field("udp_dst", "int", 16, True, "udp"),
    _Field("sctp_src", "int", 16, True, "sctp"),
    _Field("sctp_dst", "int", 16, True, "sctp"),
    _Field("icmpv4_type", "int", 8, prereq="icmpv4", ovs_name="icmp_type"),
    _Field("icmpv4_code", "int", 8, prereq="icmpv4", ovs_name="icmp_code"),
    _Field("icmpv6_type", "int", 8, prereq="icmpv6"),
    _Field("icmpv6_code", "int", 8, prereq="icmpv6"),
    # OpenFlow's arp_op is 16 bits wide; Open vSwitch keeps 8 of them.
    _Field("arp_op", "int", 8, prereq="arp"),
    _Field("arp_spa", "ipv4", 32, True, "arp"),
    _Field("arp_tpa", "ipv4", 32, True, "arp"),
    _Field("arp_sha", "mac", 48, True, "arp"),
    _Field("arp_tha", "mac", 48, True, "arp"),
]
_FIELD_LIST += [_Field("reg%d" % i, "int", 32, True, hexa=True) for i in range(16)]
FIELDS = dict((f.name, f) for f in _FIELD_LIST)
MATCH_FIELDS = tuple(f.name for f in _FIELD_LIST)

# What each prerequisite needs, in words, for error messages.
_PREREQ_TEXT = {
    "ip": "an IPv4 or IPv6 match (eth_type 0x0800 or 0x86dd: add ip or ipv6)",
    "ipv4": "an IPv4 match (eth_type 0x0800: add ip)",
    "ipv6": "an IPv6 match (eth_type 0x86dd: add ipv6)",
    "tcp": "a TCP match (ip_proto 6: add tcp or tcp6)",
    "udp": "a UDP match (ip_proto 17: add udp or udp6)",
    "sctp": "an SCTP match (ip_proto 132: add sctp or sctp6)",
    "icmpv4": "an ICMP match (eth_type 0x0800, ip_proto 1: add icmp)",
    "icmpv6": "an ICMPv6 match (eth_type 0x86dd, ip_proto 58: add icmp6)",
    "arp": "an ARP match (eth_type 0x0806 or 0x8035: add arp)",
    "vlan": "a VLAN tag (match one, e.g. dl_vlan=10, or push_vlan first)",
}

# ovs-ofctl (and OXM) names of fields a ct zone can be loaded from.
_SUBFIELD_NAMES = {"metadata": "OXM_OF_METADATA", "tunnel_id": "NXM_NX_TUN_ID",
                   "ct_mark": "NXM_NX_CT_MARK", "ct_zone": "NXM_NX_CT_ZONE"}
_SUBFIELD_NAMES.update(("reg%d" % i, "NXM_NX_REG%d" % i) for i in range(16))
_SUBFIELD_BY_NAME = dict((v, k) for k, v in _SUBFIELD_NAMES.items())
_SUBFIELD_BY_NAME.update((k, k) for k in _SUBFIELD_NAMES)
_SUBFIELD_BY_NAME.update({"tun_id": "tunnel_id", "OXM_OF_TUNNEL_ID": "tunnel_id"})

# Names ovs-ofctl accepts in set_field, with the canonical field they mean.
_SET_FIELD_NAMES = dict((f.name, f.name) for f in _FIELD_LIST)
_SET_FIELD_NAMES.update(dict((f.ovs_name, f.name) for f in _FIELD_LIST))
_SET_FIELD_NAMES.update({"dl_src": "eth_src", "dl_dst": "eth_dst", "dl_type": "eth_type", "nw_src": "ipv4_src",
                         "nw_dst": "ipv4_dst", "nw_proto": "ip_proto", "tp_src": "tcp_src", "tp_dst": "tcp_dst"})

# Match names of Open vSwitch this model does not carry.
_UNSUPPORTED_FIELDS = set("""
    nw_ttl ip_frag nw_frag tcp_flags ipv6_label nd_target nd_sll nd_tll nd_reserved nd_options_type
    mpls_label mpls_tc mpls_bos mpls_ttl mpls_lse1 mpls_lse2 tun_src tun_dst tun_ipv6_src tun_ipv6_dst
    tun_flags tun_ttl tun_tos tun_gbp_id tun_gbp_flags tun_erspan_idx tun_erspan_ver tun_erspan_dir
    tun_erspan_hwid tun_gtpu_flags tun_gtpu_msgtype pkt_mark skb_priority actset_output ct_label
    ct_nw_proto ct_nw_src ct_nw_dst ct_ipv6_src ct_ipv6_dst ct_tp_src ct_tp_dst dp_hash recirc_id
    conj_id packet_type in_port_oxm eth nsh_flags nsh_ttl nsh_mdtype nsh_np nsh_spi nsh_si nsp nsi
    dl_vlan1 dl_vlan_pcp1 vlan_tci1 out_port out_group
""".split())
_UNSUPPORTED_FIELD_PREFIXES = ("xreg", "xxreg", "tun_metadata", "nsh_c")

# Actions of Open vSwitch this model does not carry.
_UNSUPPORTED_ACTIONS = set("""
    learn note load move push mpls push_mpls pop_mpls set_mpls_label set_mpls_tc set_mpls_ttl dec_mpls_ttl
    enqueue set_queue pop_queue multipath bundle bundle_load exit fin_timeout sample clone conjunction
    encap decap check_pkt_larger dec_nsh_ttl delete_field debug_recirc debug_slow unroll_xlate pop
    push_pbb pop_pbb set_eth_src set_eth_dst output_reg output_trunc set_l4_src_port set_l4_dst_port
    strip_pbb set_ip_dscp set_ip_ecn set_ip_ttl
""".split())

_HEX_RE = re.compile(r"^0[xX][0-9a-fA-F]+$")
_DEC_RE = re.compile(r"^[0-9]+$")
_MAC_RE = re.compile(r"^[0-9a-fA-F]{1,2}(:[0-9a-fA-F]{1,2}){5}$")


# --------------------------------------------------------------------------
# Scalars
# --------------------------------------------------------------------------

def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _int(value, bits, what, token=None, minimum=0, maximum=None):
    """An int from an int or a decimal / 0x-hex string, checked against a range."""
    if maximum is None:
        maximum = (1 << bits) - 1
    if _is_int(value):
        number = value
    elif isinstance(value, str):
        text = value.strip()
        if _HEX_RE.match(text):
            number = int(text, 16)
        elif _DEC_RE.match(text):
            if len(text) > 1 and text[0] == "0":
                raise _error("%s %r is ambiguous: ovs-ofctl reads most numbers with a leading 0 as octal; "
                             "write it in decimal without the 0, or in hex with 0x" % (what, text), token)
            number = int(text)
        else:
            raise _error("%s must be a number (decimal, or hex with 0x), not %r" % (what, value), token)
    else:
        raise _error("%s must be a number, not %r" % (what, value), token)
    if not minimum <= number <= maximum:
        raise _error("%s %s is out of range (%d..%d)" % (what, number, minimum, maximum), token)
    return number


def _hex(number):
    """Hex as ovs-ofctl prints it (C's %#x: 0 is "0")."""
    return "0x%x" % number if number else "0"


def _parse_mac(text, what, token):
    if not isinstance(text, str) or not _MAC_RE.match(text.strip()):
        raise _error("%s must be a MAC address like aa:bb:cc:dd:ee:ff, not %r" % (what, text), token)
    return ":".join("%02x" % int(p, 16) for p in text.strip().split(":"))


def _mac_int(mac):
    return int(mac.replace(":", ""), 16)


def _mac_str(number):
    raw = "%012x" % number
    return ":".join(raw[i:i + 2] for i in range(0, 12, 2))


def _parse_ip(text, version, what, token):
    try:
        if _is_int(text):
            addr = ipaddress.IPv4Address(text) if version == 4 else ipaddress.IPv6Address(text)
        elif isinstance(text, str):
            addr = ipaddress.IPv4Address(text.strip()) if version == 4 else ipaddress.IPv6Address(text.strip())
        else:
            raise ValueError()
    except ValueError:
        raise _error("%s must be an IPv%d address, not %r" % (what, version, text), token)
    return int(addr)


def _ip_str(number, version):
    return str(ipaddress.IPv4Address(number) if version == 4 else ipaddress.IPv6Address(number))


def _prefix_mask(length, bits):
    return ((1 << bits) - 1) ^ ((1 << (bits - length)) - 1)


def _prefix_len(mask, bits):
    """The prefix length of a CIDR mask, or None."""
    inverted = ((1 << bits) - 1) ^ mask
    if inverted & (inverted + 1):
        return None
    return bits - inverted.bit_length()


def _inet6_ntop(number):
    """An IPv6 address as glibc's inet_ntop (what ovs-ofctl prints) writes it."""
    words = [(number >> (112 - 16 * i)) & 0xffff for i in range(8)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, word in enumerate(words + [1]):
        if word == 0 and i < 8:
            if cur_base == -1:
                cur_base, cur_len = i, 1
            else:
                cur_len += 1
        elif cur_base != -1:
            if best_base == -1 or cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if best_len < 2:
        best_base = -1
    out = ""
    for i in range(8):
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                out += ":"
            continue
        if i:
            out += ":"
        if i == 6 and best_base == 0 and (best_len == 6 or (best_len == 5 and words[5] == 0xffff)):
            out += str(ipaddress.IPv4Address(number & 0xffffffff))
            break
        out += "%x" % words[i]
    if best_base != -1 and best_base + best_len == 8:
        out += ":"
    return out


def _parse_port(value, what, token):
    """A 32-bit OpenFlow port from an int, a number or a reserved port name."""
    if isinstance(value, str):
        text = value.strip()
        upper = text.upper()
        if upper in PORTS or upper in _PORT_ALIASES:
            port = PORTS.get(upper, _PORT_ALIASES.get(upper))
        elif _DEC_RE.match(text) or _HEX_RE.match(text):
            port = _int(text, 32, what, token)
        else:
            raise _error("%s must be a port number or one of %s, not %r"
                         % (what, ", ".join(sorted(PORTS)), value), token)
    elif _is_int(value):
        port = value
    else:
        raise _error("%s must be a port number or name, not %r" % (what, value), token)
    if 0xfff8 <= port <= 0xffff:
        # OpenFlow 1.0 numbers of the reserved ports, as ovs-ofctl accepts them.
        port += 0xffff0000
    if not (0 <= port < OFPP_MAX or port in PORT_NAMES):
        raise _error("%s %s is out of range: ports are 0..%d (0x%x) or a reserved port (%s)"
                     % (what, value, OFPP_MAX - 1, OFPP_MAX - 1, ", ".join(sorted(PORTS))), token)
    return port


def _format_port(port):
    return PORT_NAMES.get(port, "%d" % port)


def _table(value, what, token):
    return _int(value, 8, what, token, maximum=MAX_TABLE)


# --------------------------------------------------------------------------
# The ovs-ofctl tokenizer (ofputil_parse_key_value)
# --------------------------------------------------------------------------

_SEPARATORS = ", \t\r\n"


def _scan_value(text, pos, delimiters):
    """Index of the first delimiter at paren depth 0 from ``pos`` (or len)."""
    n = len(text)
    while pos < n and text[pos] not in delimiters:
        if text[pos] == "(":
            level = 0
            while True:
                if pos >= n:
                    return n
                if text[pos] == "(":
                    level += 1
                elif text[pos] == ")":
                    level -= 1
                pos += 1
                if level <= 0:
                    break
        else:
            pos += 1
    return pos


def _key_values(text):
    """[(key, value, delimiter, token)] as ovs-ofctl splits a flow or action list."""
    out = []
    pos = 0
    n = len(text)
    while True:
        while pos < n and text[pos] in _SEPARATORS:
            pos += 1
        if pos >= n:
            return out
        start = pos
        while pos < n and text[pos] not in ":=(" + _SEPARATORS:
            pos += 1
        key = text[start:pos]
        delim = text[pos] if pos < n else ""
        if delim and delim not in ":=(":
            out.append((key, "", "", key))
            pos += 1
            continue
        if not delim:
            out.append((key, "", "", key))
            continue
        pos += 1
        if delim == "(":
            end = _scan_value(text, pos, ")")
            if end >= n:
                raise _error("unbalanced parentheses", text[start:])
            if text[end + 1:end + 3] == "->":
                end = _scan_value(text, end, _SEPARATORS)
                value = text[pos:end]
                token = text[start:end]
                pos = end + 1
            else:
                value = text[pos:end]
                token = text[start:end + 1]
                pos = end + 1
        else:
            end = _scan_value(text, pos, _SEPARATORS)
            value = text[pos:end]
            token = text[start:end]
            pos = end + 1
        if not key:
            raise _error("missing name before %r (write key=value, without spaces around %r)" % (delim, delim), token)
        out.append((key, value, delim, token))


def _split_actions(text):
    """(match part, actions part or None), as ofp_extract_actions does."""
    idx = text.find("action")
    if idx < 0:
        return text, None
    eq = text.find("=", idx)
    if eq < 0:
        return text[:idx], None
    return text[:idx], text[eq + 1:]


# --------------------------------------------------------------------------
# Match values
# --------------------------------------------------------------------------

def _split_mask(value):
    if isinstance(value, str) and "/" in value:
        val, mask = value.split("/", 1)
        return val.strip(), mask.strip()
    return value, None


def _field_value(field, value, token, mask=None, allow_mask=True):
    """(value, mask or None) of a canonical field, as ints, from user input.

    ``value`` may carry ``/mask`` when it is a string. ct_state masks are
    restricted to the defined bits. Returns ints (MACs and addresses too).
    """
    what = field.name
    if isinstance(value, dict):
        if set(value) - {"value", "mask"} or "value" not in value:
            raise _error("a masked value is {value: ..., mask: ...}, not %r" % (value,), token)
        mask = value.get("mask")
        value = value["value"]
    elif mask is None:
        value, mask = _split_mask(value)
    if mask is not None and not (field.maskable and allow_mask):
        raise _error("%s cannot be masked" % what, token)
    if field.kind == "ct_state":
        return _ct_state_value(value, mask, token)
    if field.kind == "port":
        return _parse_port(value, what, token), None
    if field.kind == "mac":
        v = _mac_int(_parse_mac(value, what, token))
        m = None if mask is None else _mac_int(_parse_mac(mask, what + " mask", token))
        return v, m
    if field.kind in ("ipv4", "ipv6"):
        version = 4 if field.kind == "ipv4" else 6
        v = _parse_ip(value, version, what, token)
        m = None
        if mask is not None:
            if _is_int(mask) or (isinstance(mask, str) and _DEC_RE.match(mask.strip())):
                length = _int(mask, 8, what + " prefix length", token, maximum=field.bits)
                m = _prefix_mask(length, field.bits)
            else:
                m = _parse_ip(mask, version, what + " mask", token)
        return v, m
    # int and vlan
    v = _int(value, field.bits, what, token)
    m = None if mask is None else _int(mask, field.bits, what + " mask", token)
    return v, m


def _ct_state_value(value, mask, token):
    """(value, mask) of ct_state from ``+trk-new``, ``est|trk``, ``0x22/0x23``, ints."""
    names = dict(CT_STATE_BITS)
    if mask is not None:
        v = _int(value, 32, "ct_state", token)
        m = _int(mask, 32, "ct_state mask", token)
    elif _is_int(value):
        v, m = value, CT_STATE_MASK
    elif isinstance(value, str) and value.strip()[:1] in ("+", "-"):
        v = m = 0
        for sign, name in re.findall(r"([+-])([^+-]*)", value.strip()):
            if name not in names:
                raise _error("unknown ct_state flag %r (known: %s)" % (name, ", ".join(n for n, b in CT_STATE_BITS)),
                             token)
            if m & names[name]:
                raise _error("ct_state flag %r given twice" % name, token)
            m |= names[name]
            if sign == "+":
                v |= names[name]
    elif isinstance(value, str):
        v = 0
        for part in value.strip().split("|"):
            if part in names:
                v |= names[part]
            else:
                v |= _int(part, 32, "ct_state", token)
        m = CT_STATE_MASK
    else:
        raise _error("ct_state must be flags like +trk+est-new or a number, not %r" % (value,), token)
    if (v | m) & ~CT_STATE_MASK & 0xffffffff:
        raise _error("ct_state has undefined bits (defined: 0x%02x)" % CT_STATE_MASK, token)
    return v, m


def _canonical_value(field, value):
    """An int of a field as its canonical (user visible) value."""
    if field.kind == "mac":
        return _mac_str(value)
    if field.kind == "ipv4":
        return _ip_str(value, 4)
    if field.kind == "ipv6":
        return _ip_str(value, 6)
    return value


def _raw_value(field, value):
    """The int of a canonical value (inverse of :func:`_canonical_value`)."""
    if field.kind == "mac":
        return _mac_int(value)
    if field.kind == "ipv4":
        return int(ipaddress.IPv4Address(value))
    if field.kind == "ipv6":
        return int(ipaddress.IPv6Address(value))
    return value


def _canonical_entry(field, value, mask):
    """The canonical match entry, or None when the mask is all zeros."""
    full = (1 << field.bits) - 1
    if field.kind == "ct_state":
        mask = CT_STATE_MASK if mask is None else mask & CT_STATE_MASK
        value &= mask
        if not mask:
            return None
        return {"value": value, "mask": mask}
    if mask is None or mask == full:
        return _canonical_value(field, value)
    if mask == 0:
        return None
    return {"value": _canonical_value(field, value & mask), "mask": _canonical_value(field, mask)}


def _entry_ints(field, entry):
    """(value, mask) ints of a canonical match entry (mask all ones when exact)."""
    full = (1 << field.bits) - 1
    if isinstance(entry, dict):
        return _raw_value(field, entry["value"]), _raw_value(field, entry["mask"])
    return _raw_value(field, entry), full


# --------------------------------------------------------------------------
# Match: from user entries to the canonical dict
# --------------------------------------------------------------------------

class _Entry:
    __slots__ = ("name", "value", "token", "implied")

    def __init__(self, name, value, token, implied=False):
        self.name = name
        self.value = value
        self.token = token
        self.implied = implied


_DIRECT_ALIASES = {"dl_src": "eth_src", "dl_dst": "eth_dst", "dl_type": "eth_type", "tun_id": "tunnel_id",
                   "nw_ecn": "ip_ecn", "dl_vlan_pcp": "vlan_pcp", "icmp6_type": "icmpv6_type",
                   "icmp6_code": "icmpv6_code"}
_CONTEXT_ALIASES = ("nw_src", "nw_dst", "ip_src", "ip_dst", "nw_proto", "tp_src", "tp_dst", "icmp_type", "icmp_code")
_SPECIAL = ("nw_tos", "dl_vlan", "vlan_tci")
MATCH_ALIASES = tuple(sorted(set(_DIRECT_ALIASES) | set(_CONTEXT_ALIASES) | set(_SPECIAL)))


def _is_match_name(name):
    return name in FIELDS or name in _DIRECT_ALIASES or name in _CONTEXT_ALIASES or name in _SPECIAL


def _unsupported_field(name):
    return name in _UNSUPPORTED_FIELDS or name.startswith(_UNSUPPORTED_FIELD_PREFIXES)


def _build_match(entries):
    """The canonical match of a list of :class:`_Entry` (names as written)."""
    # 1. eth_type first: the other aliases depend on it.
    eth_type = _settle(entries, ("eth_type", "dl_type"), FIELDS["eth_type"])
    # 2. nw_proto is arp_op in ARP, ip_proto elsewhere.
    is_arp = eth_type in (ETH_ARP, ETH_RARP)
    proto_names = ("ip_proto",) if is_arp else ("ip_proto", "nw_proto")
    ip_proto = _settle(entries, proto_names, FIELDS["ip_proto"])

    values = {}     # canonical name -> (value, mask, entry)
    for e in entries:
        for name, value, mask in _resolve(e, eth_type, ip_proto):
            old = values.get(name)
            if old is None:
                values[name] = (value, mask, e)
                continue
            if not (old[2].implied or e.implied):
                raise _error("%s is given twice (also as %s)" % (name, old[2].token), e.token)
            if (old[0], old[1]) != (value, mask):
                raise _error("conflicts with %s" % old[2].token, e.token)
            if old[2].implied:
                values[name] = (value, mask, e)

    # vlan_pcp needs a tagged vlan_vid; Open vSwitch adds "any tagged" for it.
    if "vlan_pcp" in values:
        if "vlan_vid" not in values:
            values["vlan_vid"] = (0x1000, 0x1000, _Entry("vlan_vid", None, values["vlan_pcp"][2].token, True))
        else:
            v, m, e = values["vlan_vid"]
            m = 0x1fff if m is None else m
            if not (v & m & 0x1000 and m & 0x1000):
                raise _error("vlan_pcp needs a tagged vlan_vid (OFPVID_PRESENT 0x1000 set), but %s is not"
                             % e.token, values["vlan_pcp"][2].token)

    match = {}
    for name, (value, mask, e) in values.items():
        field = FIELDS[name]
        if field.kind == "vlan":
            m = 0x1fff if mask is None else mask
            if m & 0x1000 and not value & 0x1000 and value & m & 0xfff:
                raise _error("vlan_vid 0x%04x matches a VLAN id without a VLAN tag and can never match: "
                             "write dl_vlan=%d (vlan_vid=0x%04x) for tagged VLAN %d"
                             % (value & m, value & m & 0xfff, 0x1000 | (value & m & 0xfff), value & m & 0xfff),
                             e.token)
        entry = _canonical_entry(field, value, mask)
        if entry is not None:
            match[name] = entry

    # Prerequisites, as the switch checks them (it refuses OFPBMC_BAD_PREREQ).
    for name in list(match):
        field = FIELDS[name]
        if field.prereq and not _prereq_ok(field.prereq, match):
            raise _error("%s needs %s" % (name, _PREREQ_TEXT[field.prereq]), values[name][2].token)
    return match


def _settle(entries, names, field):
    """The single value given to one of ``names`` (conflicts refused), or None."""
    found = None
    for e in entries:
        if e.name in names:
            value, mask = _field_value(field, e.value, e.token)
            if found is not None:
                if not (found[1].implied or e.implied):
                    raise _error("%s is given twice (also as %s)" % (field.name, found[1].token), e.token)
                if found[0] != value:
                    raise _error("conflicts with %s" % found[1].token, e.token)
                continue
            found = (value, e)
    return None if found is None else found[0]


def _resolve(e, eth_type, ip_proto):
    """[(canonical name, value int, mask int or None)] for one entry."""
    name = e.name
    is_arp = eth_type in (ETH_ARP, ETH_RARP)
    if name in _DIRECT_ALIASES:
        name = _DIRECT_ALIASES[name]
    if name in ("nw_src", "ip_src", "nw_dst", "ip_dst"):
        side = name.split("_")[1]
        if is_arp:
            name = "arp_spa" if side == "src" else "arp_tpa"
        elif eth_type == ETH_IP:
            name = "ipv4_" + side
        else:
            raise _error("%s needs an IPv4 or ARP match (add ip or arp)" % e.name, e.token)
    elif name == "nw_proto":
        name = "arp_op" if is_arp else "ip_proto"
    elif name in ("tp_src", "tp_dst"):
        proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(ip_proto) if eth_type in (ETH_IP, ETH_IPV6) else None
        if proto is None:
            if ip_proto in (1, 58) and eth_type in (ETH_IP, ETH_IPV6):
                raise _error("%s is for TCP, UDP and SCTP; use icmp_type/icmp_code for ICMP" % e.name, e.token)
            raise _error("%s needs a transport protocol: add tcp, udp or sctp (tcp6, udp6, sctp6 for IPv6)"
                         % e.name, e.token)
        name = "%s_%s" % (proto, name.split("_")[1])
    elif name in ("icmp_type", "icmp_code"):
        if eth_type == ETH_IP:
            name = "icmpv4_" + name.split("_")[1]
        elif eth_type == ETH_IPV6:
            name = "icmpv6_" + name.split("_")[1]
        else:
            raise _error("%s needs an ICMP match (add icmp or icmp6)" % e.name, e.token)
    elif name == "nw_tos":
        tos = _int(e.value, 8, "nw_tos", e.token)
        if tos & 3:
            raise _error("nw_tos %d has ECN bits set: nw_tos is the DSCP shifted left by 2 (a multiple of 4); "
                         "use nw_ecn for the ECN bits" % tos, e.token)
        return [("ip_dscp", tos >> 2, None)]
    elif name == "dl_vlan":
        vid = _int(e.value, 16, "dl_vlan", e.token)
        if vid == 0xffff:
            return [("vlan_vid", 0, None)]
        if vid > 0xfff:
            raise _error("dl_vlan %d is out of range (0..4095, or 0xffff for no VLAN tag)" % vid, e.token)
        return [("vlan_vid", 0x1000 | vid, None)]
    elif name == "vlan_tci":
        return _vlan_tci(e)
    if name not in FIELDS:
        raise _error("unknown match field %r" % e.name, e.token)
    value, mask = _field_value(FIELDS[name], e.value, e.token)
    return [(name, value, mask)]


def _vlan_tci(e):
    """vlan_tci=T[/M] as vlan_vid and vlan_pcp, for the forms OpenFlow 1.3 can carry."""
    value, mask = _split_mask(e.value) if not isinstance(e.value, dict) else (e.value["value"], e.value.get("mask"))
    tci = _int(value, 16, "vlan_tci", e.token)
    m = 0xffff if mask is None else _int(mask, 16, "vlan_tci mask", e.token)
    tci &= m
    pcp_mask = m >> 13
    if pcp_mask not in (0, 7):
        raise _error("vlan_tci mask 0x%04x masks part of the PCP bits, which OpenFlow 1.3 cannot match" % m, e.token)
    out = []
    vid_mask = m & 0x1fff
    if pcp_mask:
        if not vid_mask & 0x1000:
            raise _error("vlan_tci matches PCP bits without the CFI bit (0x1000); OpenFlow 1.3 matches a PCP only on "
                         "tagged packets: include 0x1000 in value and mask", e.token)
        if not tci & 0x1000:
            if tci >> 13:
                raise _error("vlan_tci 0x%04x matches a PCP on an untagged packet and can never match" % tci, e.token)
            # untagged: the PCP bits of an untagged packet are 0
            return [("vlan_vid", tci & vid_mask, vid_mask)]
    if vid_mask:
        out.append(("vlan_vid", tci & vid_mask, vid_mask))
    if pcp_mask:
        out.append(("vlan_pcp", tci >> 13, None))
    if not out:
        return [("vlan_vid", 0, 0)]
    return out


def _prereq_ok(prereq, match):
    eth_type = match.get("eth_type")
    ip_proto = match.get("ip_proto")
    return _prereq_state_ok(prereq, eth_type, ip_proto, _vlan_tagged(match))


def _prereq_state_ok(prereq, eth_type, ip_proto, vlan):
    is_ip = eth_type in (ETH_IP, ETH_IPV6)
    if prereq == "ip":
        return is_ip
    if prereq == "ipv4":
        return eth_type == ETH_IP
    if prereq == "ipv6":
        return eth_type == ETH_IPV6
    if prereq in ("tcp", "udp", "sctp"):
        return is_ip and ip_proto == IPPROTO[prereq]
    if prereq == "icmpv4":
        return eth_type == ETH_IP and ip_proto == 1
    if prereq == "icmpv6":
        return eth_type == ETH_IPV6 and ip_proto == 58
    if prereq == "arp":
        return eth_type in (ETH_ARP, ETH_RARP)
    if prereq == "vlan":
        return bool(vlan)
    return True


def _vlan_tagged(match):
    entry = match.get("vlan_vid")
    if entry is None:
        return False
    if isinstance(entry, dict):
        return bool(entry["value"] & 0x1000 and entry["mask"] & 0x1000)
    return bool(entry & 0x1000)


def _match_from_text(text):
    """(match entries, header dict) of the match part of an ovs-ofctl flow."""
    entries = []
    header = {"flags": set()}
    for key, value, delim, token in _key_values(text):
        if key in SHORTHANDS:
            if delim:
                raise _error("%s is a protocol shorthand and takes no value" % key, token)
            eth_type, proto = SHORTHANDS[key]
            entries.append(_Entry("eth_type", eth_type, token, True))
            if proto is not None:
                entries.append(_Entry("ip_proto", proto, token, True))
        elif key in FLOW_FLAGS:
            if delim:
                raise _error("%s is a flag and takes no value" % key, token)
            header["flags"].add(key)
        elif key in ("table", "priority", "cookie", "idle_timeout", "hard_timeout"):
            if not value:
                raise _error("%s needs a value" % key, token)
            if key in header:
                raise _error("%s is given twice" % key, token)
            if key == "cookie" and "/" in value:
                raise _error("a cookie mask is for matching flows, not for a flow's cookie", token)
            header[key] = (value, token)
        elif key in ("duration", "n_packets", "n_bytes", "idle_age", "hard_age"):
            continue    # statistics in dump-flows output, ignored as ovs-ofctl ignores them
        elif key == "importance":
            raise _error("importance (OpenFlow 1.4+) is not supported by this flow model", token)
        elif key in ("no_readonly_table", "allow_hidden_fields"):
            continue
        elif _is_match_name(key):
            if not value:
                raise _error("match field %s needs a value" % key, token)
            entries.append(_Entry(key, value, token))
        elif _unsupported_field(key) or "[" in key:
            raise _error("match field %s is not supported by this flow model" % key, token)
        else:
            raise _error("unknown match field or keyword %r" % key, token)
    return entries, header


# --------------------------------------------------------------------------
# Actions and instructions from ovs-ofctl text
# --------------------------------------------------------------------------

def _subfield(text, token):
    """{"field", "ofs", "nbits"} of ``NXM_NX_REG0[0..15]`` / ``reg0[0..15]`` / ``NXM_NX_CT_ZONE[]``."""
    m = re.match(r"^([A-Za-z0-9_]+)\[(?:(\d+)(?:\.\.(\d+))?)?\]$", text.strip())
    if not m or m.group(1) not in _SUBFIELD_BY_NAME:
        raise _error("ct zone must be a number (0..65535) or a 16-bit field slice like NXM_NX_REG0[0..15] "
                     "(fields: %s), not %r" % (", ".join(sorted(_SUBFIELD_NAMES)), text), token)
    name = _SUBFIELD_BY_NAME[m.group(1)]
    width = FIELDS[name].bits
    if m.group(2) is None:
        ofs, nbits = 0, width
    else:
        ofs = int(m.group(2))
        end = int(m.group(3)) if m.group(3) is not None else ofs
        nbits = end - ofs + 1
        if end < ofs or end >= width:
            raise _error("bad bit range of %s (%d bits)" % (m.group(1), width), token)
    return _check_zone({"field": name, "ofs": ofs, "nbits": nbits}, token)


def _check_zone(zone, token):
    if _is_int(zone) or isinstance(zone, str):
        if isinstance(zone, str) and "[" in zone:
            return _subfield(zone, token)
        return _int(zone, 16, "ct zone", token)
    if not isinstance(zone, dict) or set(zone) - {"field", "ofs", "nbits"} or "field" not in zone:
        raise _error("ct zone must be a number or {field, ofs, nbits}, not %r" % (zone,), token)
    name = _SUBFIELD_BY_NAME.get(zone["field"])
    if name is None:
        raise _error("ct zone field must be one of %s, not %r" % (", ".join(sorted(_SUBFIELD_NAMES)), zone["field"]),
                     token)
    ofs = _int(zone.get("ofs", 0), 8, "ct zone ofs", token)
    nbits = _int(zone.get("nbits", 16), 8, "ct zone nbits", token)
    if nbits != 16:
        raise _error("ct zone is 16 bits wide: a field slice must have 16 bits, not %d" % nbits, token)
    if ofs + nbits > FIELDS[name].bits:
        raise _error("ct zone slice %d..%d is outside %s (%d bits)" % (ofs, ofs + nbits - 1, name, FIELDS[name].bits),
                     token)
    return {"field": name, "ofs": ofs, "nbits": nbits}


_NAT_V4 = r"(\d+\.\d+\.\d+\.\d+)"
_NAT_V6 = r"(\[[0-9a-fA-F:.]+\]|[0-9a-fA-F:.]*:[0-9a-fA-F:.]*)"


def _nat_from_text(value, token):
    nat = {"type": None, "ip_min": None, "ip_max": None, "port_min": None, "port_max": None,
           "persistent": False, "random": False, "hash": False}
    for key, val, delim, tok in _key_values(value):
        if key in ("src", "dst"):
            if nat["type"] is not None:
                raise _error('nat takes only one of "src" or "dst"', token)
            nat["type"] = key
            if val:
                _nat_range(val, nat, tok)
        elif key in ("persistent", "random", "hash"):
            nat[key] = True
        else:
            raise _error("unknown nat argument %r" % key, tok)
    return _check_nat(nat, token)


def _nat_range(text, nat, token):
    m = re.match(r"^%s(?:-%s)?(?::(\d+)(?:-(\d+))?)?$" % (_NAT_V4, _NAT_V4), text)
    if m:
        nat["ip_min"], nat["ip_max"] = m.group(1), m.group(2)
        ports = (m.group(3), m.group(4))
    else:
        m = re.match(r"^%s(?:-%s)?(?::(\d+)(?:-(\d+))?)?$" % (_NAT_V6, _NAT_V6), text)
        if not m:
            raise _error("invalid nat range %r: write ADDR[-ADDR][:PORT[-PORT]] (IPv6 in [brackets] with ports)"
                         % text, token)
        lo, hi = m.group(1), m.group(2)
        ports = (m.group(3), m.group(4))
        if ports[0] is not None and not lo.startswith("["):
            raise _error("an IPv6 nat range with ports needs the addresses in [brackets]", token)
        nat["ip_min"] = lo.strip("[]")
        nat["ip_max"] = hi.strip("[]") if hi else None
        for addr in (nat["ip_min"], nat["ip_max"]):
            try:
                if addr is not None:
                    ipaddress.IPv6Address(addr)
            except ValueError:
                raise _error("invalid nat range %r: %r is neither an IPv4 nor an IPv6 address" % (text, addr), token)
    nat["port_min"] = ports[0]
    nat["port_max"] = ports[1]


def _check_nat(nat, token):
    """The canonical nat dict, checked."""
    if nat is None:
        return None
    if not isinstance(nat, dict):
        raise _error("nat must be a dict, not %r" % (nat,), token)
    unknown = set(nat) - {"type", "ip_min", "ip_max", "port_min", "port_max", "persistent", "random", "hash"}
    if unknown:
        raise _error("unknown nat keys: %s" % ", ".join(sorted(unknown)), token)
    out = {"type": nat.get("type"), "ip_min": None, "ip_max": None, "port_min": None, "port_max": None,
           "persistent": bool(nat.get("persistent")), "random": bool(nat.get("random")), "hash": bool(nat.get("hash"))}
    if out["type"] not in ("src", "dst", None):
        raise _error('nat type must be "src", "dst" or None, not %r' % (out["type"],), token)
    ip_min, ip_max = nat.get("ip_min"), nat.get("ip_max")
    port_min, port_max = nat.get("port_min"), nat.get("port_max")
    if out["type"] is None:
        if out["persistent"] or out["random"] or out["hash"]:
            raise _error('nat flags (persistent, random, hash) need "src" or "dst"', token)
        if ip_min is not None or port_min is not None:
            raise _error('a nat range needs "src" or "dst"', token)
    if out["random"] and out["hash"]:
        raise _error('nat takes "hash" or "random", not both', token)
    if ip_min is None and (ip_max is not None or port_min is not None or port_max is not None):
        raise _error("a nat range starts with an address", token)
    if ip_min is not None:
        try:
            lo = ipaddress.ip_address(ip_min.strip() if isinstance(ip_min, str) else ip_min)
            hi = ipaddress.ip_address(ip_max.strip() if isinstance(ip_max, str) else ip_max) if ip_max is not None else lo
        except ValueError:
            raise _error("nat range %r-%r is not made of IP addresses" % (ip_min, ip_max), token)
        if lo.version != hi.version:
            raise _error("nat range mixes IPv4 and IPv6", token)
        if int(lo) == 0:
            raise _error("nat address %s is the unspecified address, which the switch ignores" % lo, token)
        if int(hi) < int(lo):
            raise _error("nat range %s-%s ends before it starts" % (lo, hi), token)
        out["ip_min"] = str(lo)
        out["ip_max"] = None if hi == lo else str(hi)
    if port_min is not None:
        lo = _int(port_min, 16, "nat port", token, minimum=1)
        hi = lo if port_max is None else _int(port_max, 16, "nat port", token, minimum=1)
        if hi < lo:
            raise _error("nat port range %d-%d ends before it starts" % (lo, hi), token)
        out["port_min"] = lo
        out["port_max"] = None if hi == lo else hi
    elif port_max is not None:
        raise _error("nat port_max needs port_min", token)
    return out


def _ct_from_text(value, token):
    ct = {"type": "ct", "commit": False, "zone": 0, "table": None, "alg": None, "nat": None}
    for key, val, delim, tok in _key_values(value):
        if key == "commit":
            ct["commit"] = True
        elif key == "force":
            ct["force"] = True
        elif key == "table":
            ct["table"] = _table(val, "ct table", tok)
        elif key == "zone":
            if "[" in val:
                ct["zone"] = _subfield(val, tok)
            else:
                ct["zone"] = _int(val, 16, "ct zone", tok)
        elif key == "alg":
            if val not in CT_ALGS:
                raise _error("ct alg must be ftp or tftp, not %r" % val, tok)
            ct["alg"] = CT_ALGS[val]
        elif key == "nat":
            if ct["nat"] is not None:
                raise _error("ct takes one nat", tok)
            ct["nat"] = _nat_from_text(val, tok)
        elif key == "exec":
            # ovs-ofctl keeps ct's nested actions in the written order and prints a nat that
            # is not first inside exec(...): the nat applies at commit either way.
            ct["exec"] = []
            for item in _items_from_text(val, "ct"):
                if item["type"] == "nat":
                    if ct["nat"] is not None:
                        raise _error("ct takes one nat", item["_token"])
                    ct["nat"] = item["nat"]
                else:
                    ct["exec"].append(item)
        else:
            raise _error("unknown ct argument %r" % key, tok)
    return _check_ct(ct, token)


def _check_ct(ct, token):
    allowed = {"type", "commit", "zone", "table", "alg", "nat", "force", "exec"}
    unknown = set(ct) - allowed
    if unknown:
        raise _error("unknown ct keys: %s" % ", ".join(sorted(unknown)), token)
    out = {"type": "ct", "commit": bool(ct.get("commit")), "zone": _check_zone(ct.get("zone", 0) or 0, token),
           "table": None, "alg": None, "nat": _check_nat(ct.get("nat"), token)}
    if ct.get("table") is not None:
        out["table"] = _table(ct["table"], "ct table", token)
    alg = ct.get("alg")
    if alg is not None:
        if isinstance(alg, str) and alg in CT_ALGS:
            alg = CT_ALGS[alg]
        if alg not in CT_ALGS.values():
            raise _error("ct alg must be ftp (21) or tftp (69), not %r" % (alg,), token)
        out["alg"] = alg
    if ct.get("force"):
        if not out["commit"]:
            raise _error('ct "force" needs "commit"', token)
        out["force"] = True
    nat = out["nat"]
    if not out["commit"] and nat and (nat["type"] or nat["persistent"] or nat["random"] or nat["hash"]):
        # The switch refuses anything but a bare nat inside an uncommitted ct (OFPBAC_BAD_ARGUMENT).
        raise _error('ct with nat(%s...) needs "commit" (without commit, only a bare "nat" is allowed)'
                     % (nat["type"] or ""), token)
    exec_actions = ct.get("exec") or []
    if exec_actions:
        if not isinstance(exec_actions, list):
            raise _error("ct exec must be a list of actions", token)
        clean = []
        for action in exec_actions:
            if isinstance(action, str):
                found = _items_from_text(action, "ct")
            else:
                found = [action]
            for item in found:
                if not (isinstance(item, dict) and item.get("type") == "set_field"
                        and _SET_FIELD_NAMES.get(item.get("field")) == "ct_mark"):
                    raise _error("only set_field to ct_mark is supported inside ct exec, not %r"
                                 % (item.get("_token") or item,), token)
                item = dict((k, v) for k, v in item.items() if k != "_token")
                clean.append(_action_from_dict(item, "ct", token))
        if not out["commit"]:
            raise _error('ct exec(...) needs "commit"', token)
        out["exec"] = clean
    return out


def _set_field_from_text(value, token):
    if "->" not in value:
        raise _error("set_field is written set_field:VALUE->FIELD", token)
    val, _sep, name = value.partition("->")
    name = name.strip()
    if name == "nw_tos":
        raise _error("set_field to nw_tos is an NXM action outside this model: use mod_nw_tos:TOS or "
                     "set_field:DSCP->ip_dscp", token)
    if name not in _SET_FIELD_NAMES:
        if _unsupported_field(name) or name == "ct_label":
            raise _error("set_field to %s is not supported by this flow model" % name, token)
        raise _error("unknown set_field field %r" % name, token)
    if "/" in val:
        raise _error("a masked set_field is not supported by this flow model (the switch sends it back as a "
                     "Nicira reg_load)", token)
    return _set_field(_SET_FIELD_NAMES[name], val.strip(), token)


def _set_field(name, value, token):
    field = FIELDS[name]
    if not field.writable:
        raise _error("%s is read-only: set_field cannot write it" % name, token)
    v, m = _field_value(field, value, token, allow_mask=False)
    if name == "vlan_vid" and not v & 0x1000:
        raise _error("set_field vlan_vid needs OFPVID_PRESENT (0x1000) in the value, as the switch demands: "
                     "VLAN %d is %d (0x%04x), or use mod_vlan_vid:%d" % (v, v | 0x1000, v | 0x1000, v), token)
    return {"type": "set_field", "field": name, "value": _canonical_value(field, v)}


def _simple(value, delim, key, token):
    if delim or value:
        raise _error("%s takes no argument" % key, token)


def _items_from_text(text, context):
    """Actions and instructions, in the order written, of an ovs-ofctl action list.

    ``context`` is "top" (the actions= of a flow), "write_actions" or "ct"
    (inside ct(exec(...))).
    """
    items = []
    drop = False
    for key, value, delim, token in _key_values(text):
        k = key.lower()
        if k == "drop":
            drop = True
            continue
        item = _item_from_text(k, value, delim, token, context)
        if item["type"] in _INSTRUCTION_RANK and context != "top":
            raise _error("%s is not allowed inside %s" % (item["type"], context), token)
        item["_token"] = token
        items.append(item)
    if drop and items:
        raise _error('"drop" must not be accompanied by any other action or instruction', text.strip())
    return items


def _item_from_text(k, value, delim, token, context):
    if k == "output":
        if not value:
            raise _error("output needs a port", token)
        if "[" in value:
            raise _error("output to a field is not supported by this flow model", token)
        if "max_len" in value:
            raise _error("output with max_len (a Nicira truncate) is not supported; use controller(max_len=N) "
                         "for packets sent to the controller", token)
        return _output(_parse_port(value, "output port", token))
    if k == "controller":
        max_len = OFPCML_NO_BUFFER
        if value and _DEC_RE.match(value):
            max_len = _int(value, 16, "controller max_len", token)
        elif value:
            for key, val, delim2, tok in _key_values(value):
                if key == "max_len":
                    max_len = _int(val, 16, "controller max_len", tok)
                elif key == "reason" and val == "action":
                    continue
                else:
                    raise _error("controller option %r is not supported by this flow model (only max_len)" % key, tok)
        return {"type": "output", "port": OFPP_CONTROLLER, "max_len": max_len}
    if k == "group":
        return {"type": "group", "group_id": _int(value, 32, "group", token, maximum=OFPG_MAX)}
    if k == "set_field":
        return _set_field_from_text(value, token)
    if k in ("mod_dl_src", "mod_dl_dst"):
        return _set_field("eth_" + k[-3:], value, token)
    if k in ("mod_nw_src", "mod_nw_dst"):
        return _set_field("ipv4_" + k[-3:], value, token)
    if k == "mod_nw_tos":
        tos = _int(value, 8, "mod_nw_tos", token)
        if tos & 3:
            raise _error("mod_nw_tos %d is not a valid TOS: the two low (ECN) bits must be 0" % tos, token)
        return {"type": "set_field", "field": "ip_dscp", "value": tos >> 2}
    if k == "mod_nw_ecn":
        return {"type": "set_field", "field": "ip_ecn", "value": _int(value, 2, "mod_nw_ecn", token)}
    if k in ("mod_tp_src", "mod_tp_dst"):
        return {"type": "set_field", "field": None, "value": _int(value, 16, k, token), "_l4": k[-3:]}
    if k in ("mod_vlan_vid", "set_vlan_vid"):
        vid = _int(value, 12, k, token)
        action = {"type": "set_field", "field": "vlan_vid", "value": 0x1000 | vid}
        if k == "mod_vlan_vid":
            action["_push"] = True
        return action
    if k in ("mod_vlan_pcp", "set_vlan_pcp"):
        action = {"type": "set_field", "field": "vlan_pcp", "value": _int(value, 3, k, token)}
        if k == "mod_vlan_pcp":
            action["_push"] = True
        return action
    if k in ("set_tunnel", "set_tunnel64"):
        return {"type": "set_field", "field": "tunnel_id", "value": _int(value, 64, k, token)}
    if k == "push_vlan":
        return _push_vlan(value, token)
    if k in ("strip_vlan", "pop_vlan"):
        _simple(value, delim, k, token)
        return {"type": "pop_vlan"}
    if k == "dec_ttl":
        if value:
            raise _error("dec_ttl with controller ids is not supported by this flow model", token)
        return {"type": "dec_nw_ttl"}
    if k in ("mod_nw_ttl", "set_nw_ttl"):
        return {"type": "set_nw_ttl", "ttl": _int(value, 8, k, token)}
    if k == "resubmit":
        return _resubmit_from_text(value, delim, token)
    if k == "ct":
        return _ct_from_text(value, token)
    if k == "ct_clear":
        _simple(value, delim, k, token)
        return {"type": "ct_clear"}
    if k == "nat":
        if context != "ct":
            raise _error('nat is only allowed inside a "ct" action', token)
        return {"type": "nat", "nat": _nat_from_text(value, token)}
    if k == "meter":
        return {"type": "meter", "meter_id": _int(value, 32, "meter", token, minimum=1, maximum=OFPM_MAX)}
    if k == "goto_table":
        return {"type": "goto_table", "table": _table(value, "goto_table", token)}
    if k == "write_metadata":
        val, mask = _split_mask(value)
        return {"type": "write_metadata", "metadata": _int(val, 64, "write_metadata", token),
                "mask": (1 << 64) - 1 if mask is None else _int(mask, 64, "write_metadata mask", token)}
    if k == "clear_actions":
        _simple(value, delim, k, token)
        return {"type": "clear_actions"}
    if k == "write_actions":
        if delim != "(":
            raise _error("write_actions is written write_actions(ACTIONS)", token)
        return {"type": "write_actions", "actions": _items_from_text(value, "write_actions")}
    if k == "apply_actions":
        raise _error("apply_actions is the default instruction: list the actions directly", token)
    if k in _UNSUPPORTED_ACTIONS:
        raise _error("action %s is not supported by this flow model" % k, token)
    if not delim:
        try:
            return _output(_parse_port(k, "output port", token))
        except FlowSyntaxError:
            pass
    raise _error("unknown action %r" % k, token)


def _output(port):
    if port == OFPP_CONTROLLER:
        return {"type": "output", "port": port, "max_len": OFPCML_NO_BUFFER}
    return {"type": "output", "port": port}


def _push_vlan(value, token):
    ethertype = _int(value, 16, "push_vlan ethertype", token)
    if ethertype not in ETH_VLAN_TYPES:
        raise _error("push_vlan ethertype must be 0x8100 or 0x88a8, not 0x%04x" % ethertype, token)
    return {"type": "push_vlan", "ethertype": ethertype}


def _resubmit_from_text(value, delim, token):
    if delim == "(":
        parts = value.split(",")
        if len(parts) > 3:
            raise _error("resubmit takes (port,table)", token)
        if len(parts) == 3 and parts[2].strip():
            raise _error("resubmit(...,ct) is not supported by this flow model", token)
        port_text = parts[0].strip()
        table_text = parts[1].strip() if len(parts) > 1 else ""
    else:
        port_text, table_text = value.strip(), ""
    port = _parse_port(port_text, "resubmit port", token) if port_text else None
    table = _table(table_text, "resubmit table", token) if table_text else None
    return _check_resubmit(port, table, token)


def _check_resubmit(port, table, token):
    if port == OFPP_IN_PORT:
        port = None
    if port is None and table is None:
        raise _error("resubmit needs a port or a table", token)
    return {"type": "resubmit", "port": port, "table": table}


def _assemble(items, token):
    """Canonical instructions of a top-level item list, in OVS's order rules."""
    rank_apply = _INSTRUCTION_RANK["apply_actions"]
    last = None
    meter = None
    apply_actions = []
    others = {}
    for item in items:
        kind = item["type"] if item["type"] in _INSTRUCTION_RANK else "apply_actions"
        rank = _INSTRUCTION_RANK[kind]
        if last is not None:
            bad = rank < last if last == rank_apply else rank <= last
            if bad:
                where = item.get("_token", token)
                if rank == last:
                    raise _error("duplicate %s instruction not allowed" % kind, where)
                raise _error("invalid instruction ordering: %s must appear before %s"
                             % (kind, INSTRUCTION_ORDER[last]), where)
        last = rank
        if kind == "meter":
            meter = {"type": "meter", "meter_id": item["meter_id"]}
        elif kind == "apply_actions":
            apply_actions.append(item)
        else:
            others[kind] = item
    out = []
    if meter:
        out.append(meter)
    if apply_actions:
        out.append({"type": "apply_actions", "actions": apply_actions})
    for kind in INSTRUCTION_ORDER[2:]:
        if kind in others:
            inst = dict((k, v) for k, v in others[kind].items() if k != "_token")
            if kind == "write_actions" and not inst["actions"]:
                continue
            out.append(inst)
    return out


# --------------------------------------------------------------------------
# Actions and instructions from dicts
# --------------------------------------------------------------------------

_ACTION_KEYS = {
    "output": ({"port"}, {"max_len"}),
    "group": ({"group_id"}, set()),
    "set_field": ({"field", "value"}, set()),
    "push_vlan": (set(), {"ethertype"}),
    "pop_vlan": (set(), set()),
    "dec_nw_ttl": (set(), set()),
    "set_nw_ttl": ({"ttl"}, set()),
    "resubmit": (set(), {"port", "table"}),
    "ct": (set(), {"commit", "zone", "table", "alg", "nat", "force", "exec"}),
    "ct_clear": (set(), set()),
}
_INSTRUCTION_KEYS = {
    "meter": ({"meter_id"}, set()),
    "apply_actions": ({"actions"}, set()),
    "write_actions": ({"actions"}, set()),
    "clear_actions": (set(), set()),
    "goto_table": ({"table"}, set()),
    "write_metadata": ({"metadata"}, {"mask"}),
}


def _check_keys(d, spec, what, token):
    required, optional = spec
    missing = required - set(d)
    if missing:
        raise _error("%s needs %s" % (what, ", ".join(sorted(missing))), token)
    unknown = set(d) - required - optional - {"type"}
    if unknown:
        raise _error("%s does not take %s" % (what, ", ".join(sorted(unknown))), token)


def _action_from_dict(action, context, token):
    """A canonical action (or, in the "top" context, instruction) from a dict."""
    if not isinstance(action, dict) or not isinstance(action.get("type"), str):
        raise _error("an action is a dict with a type, or an ovs-ofctl action string, not %r" % (action,), token)
    atype = action["type"]
    what = "action %s" % atype
    tok = "%s %s" % (token, atype) if token else atype
    if atype in _INSTRUCTION_KEYS and context == "top":
        return _instruction_from_dict(action, token)
    if atype not in _ACTION_KEYS:
        if atype in _INSTRUCTION_KEYS:
            raise _error("%s is an instruction, not allowed inside %s" % (atype, context), tok)
        raise _error("unknown action type %r (known: %s)" % (atype, ", ".join(sorted(_ACTION_KEYS))), tok)
    _check_keys(action, _ACTION_KEYS[atype], what, tok)
    if atype == "output":
        port = _parse_port(action["port"], "output port", tok)
        out = {"type": "output", "port": port}
        if port == OFPP_CONTROLLER:
            out["max_len"] = _int(action.get("max_len", OFPCML_NO_BUFFER), 16, "output max_len", tok)
        elif action.get("max_len") is not None:
            raise _error("max_len applies only to output to CONTROLLER", tok)
        return out
    if atype == "group":
        return {"type": "group", "group_id": _int(action["group_id"], 32, "group_id", tok, maximum=OFPG_MAX)}
    if atype == "set_field":
        name = action["field"]
        if name not in _SET_FIELD_NAMES:
            raise _error("unknown set_field field %r" % (name,), tok)
        name = _SET_FIELD_NAMES[name]
        if name == "ct_mark" and context != "ct":
            raise _error("cannot set ct_mark outside of a ct action (use ct(commit,exec(set_field:V->ct_mark)))", tok)
        return _set_field(name, action["value"], tok)
    if atype == "push_vlan":
        return _push_vlan(action.get("ethertype", 0x8100), tok)
    if atype in ("pop_vlan", "dec_nw_ttl", "ct_clear"):
        return {"type": atype}
    if atype == "set_nw_ttl":
        return {"type": "set_nw_ttl", "ttl": _int(action["ttl"], 8, "ttl", tok)}
    if atype == "resubmit":
        port = action.get("port")
        port = None if port is None else _parse_port(port, "resubmit port", tok)
        table = action.get("table")
        table = None if table is None else _table(table, "resubmit table", tok)
        return _check_resubmit(port, table, tok)
    # ct
    return _check_ct(action, tok)


def _actions_list(actions, context, token):
    """Actions (or, in the "top" context, instructions too) of an ovs-ofctl string or a list.

    A list holds canonical dicts and/or ovs-ofctl action strings (one or more
    actions each).
    """
    if isinstance(actions, str):
        return _items_from_text(actions, context)
    if not isinstance(actions, list):
        raise _error("actions must be an ovs-ofctl action string or a list, not %r" % (actions,), token)
    out = []
    for n, action in enumerate(actions):
        where = "%s[%d]" % (token, n)
        if isinstance(action, str):
            found = _items_from_text(action, context)
        else:
            found = [_action_from_dict(action, context, where)]
        for item in found:
            item["_token"] = where
        out.extend(found)
    return out


def _instruction_from_dict(inst, token):
    if not isinstance(inst, dict) or inst.get("type") not in _INSTRUCTION_KEYS:
        raise _error("an instruction is a dict with a type among %s, not %r"
                     % (", ".join(INSTRUCTION_ORDER), inst), token)
    itype = inst["type"]
    tok = "%s %s" % (token, itype) if token else itype
    _check_keys(inst, _INSTRUCTION_KEYS[itype], "instruction %s" % itype, tok)
    if itype == "meter":
        return {"type": "meter", "meter_id": _int(inst["meter_id"], 32, "meter_id", tok, minimum=1, maximum=OFPM_MAX)}
    if itype in ("apply_actions", "write_actions"):
        context = "apply_actions" if itype == "apply_actions" else "write_actions"
        return {"type": itype, "actions": _actions_list(inst["actions"], context, tok)}
    if itype == "clear_actions":
        return {"type": "clear_actions"}
    if itype == "goto_table":
        return {"type": "goto_table", "table": _table(inst["table"], "goto_table", tok)}
    mask = inst.get("mask")
    return {"type": "write_metadata", "metadata": _int(inst["metadata"], 64, "write_metadata", tok),
            "mask": (1 << 64) - 1 if mask is None else _int(mask, 64, "write_metadata mask", tok)}


def _instructions_from_list(instructions, token):
    if not isinstance(instructions, list):
        raise _error("instructions must be a list, not %r" % (instructions,), token)
    seen = {}
    for n, inst in enumerate(instructions):
        clean = _instruction_from_dict(inst, "%s[%d]" % (token, n))
        if clean["type"] in seen:
            raise _error("duplicate %s instruction" % clean["type"], "%s[%d]" % (token, n))
        seen[clean["type"]] = clean
    out = []
    for kind in INSTRUCTION_ORDER:
        inst = seen.get(kind)
        if inst is None:
            continue
        if kind in ("apply_actions", "write_actions") and not inst["actions"]:
            continue
        out.append(inst)
    return out


# --------------------------------------------------------------------------
# Actions against the match (ofpacts_check)
# --------------------------------------------------------------------------

class _State:
    """What the actions so far know of the packet: the match, then push/pop_vlan.

    ``known`` is False for an action list without a match (a group bucket):
    Open vSwitch checks nothing there that depends on the packet.
    """
    __slots__ = ("eth_type", "ip_proto", "vlans", "ct_inv", "known")

    def __init__(self, match, known=True):
        self.eth_type = match.get("eth_type")
        self.ip_proto = match.get("ip_proto")
        self.vlans = 1 if _vlan_tagged(match) else 0
        ct = match.get("ct_state")
        self.ct_inv = bool(ct and ct["value"] & 0x10)
        self.known = known

    def copy(self):
        other = _State({}, self.known)
        other.eth_type, other.ip_proto, other.vlans, other.ct_inv = self.eth_type, self.ip_proto, self.vlans, self.ct_inv
        return other

    def is_ip(self):
        return self.eth_type in (ETH_IP, ETH_IPV6)


def _check_actions(actions, state, strict):
    """The actions made final (private markers resolved) and checked in sequence.

    ``strict`` is False inside write_actions, where (as in Open vSwitch) only
    the checks the switch treats as hard errors apply.
    """
    out = []
    for action in actions:
        token = action.get("_token")
        action = dict((k, v) for k, v in action.items() if k != "_token")
        atype = action["type"]
        if atype == "output":
            if action["port"] == OFPP_ANY:
                raise _error("cannot output to ANY", token)
        elif atype == "set_field":
            if action.get("_l4"):
                proto = {6: "tcp", 17: "udp", 132: "sctp"}.get(state.ip_proto) if state.is_ip() else None
                if proto is None:
                    raise _error("mod_tp_%s needs a TCP, UDP or SCTP match (add tcp, udp or sctp); without one, "
                                 "write set_field:PORT->tcp_%s (or udp_, sctp_)" % ((action["_l4"],) * 2), token)
                action = {"type": "set_field", "field": "%s_%s" % (proto, action["_l4"]), "value": action["value"]}
            elif action.pop("_push", False):
                if not state.vlans:
                    out.append({"type": "push_vlan", "ethertype": 0x8100})
                    state.vlans = 1
            field = FIELDS[action["field"]]
            if field.name == "ct_mark":
                raise _error("cannot set ct_mark outside of a ct action (use ct(commit,exec(set_field:V->ct_mark)))",
                             token)
            if state.known and field.prereq and not _prereq_state_ok(field.prereq, state.eth_type, state.ip_proto,
                                                                     state.vlans):
                raise _error("set_field %s needs %s" % (field.name, _PREREQ_TEXT[field.prereq]), token)
            if state.known and field.name == "vlan_vid" and not state.vlans:
                raise _error("set_field vlan_vid needs %s" % _PREREQ_TEXT["vlan"], token)
        elif atype == "push_vlan":
            if state.known and state.vlans >= 2:
                raise _error("push_vlan: a packet has at most 2 VLAN headers", token)
            state.vlans += 1
        elif atype == "pop_vlan":
            if strict and state.known and not state.vlans:
                raise _error("pop_vlan (strip_vlan) needs %s" % _PREREQ_TEXT["vlan"], token)
            state.vlans = max(state.vlans - 1, 0)
        elif atype in ("dec_nw_ttl", "set_nw_ttl"):
            if strict and state.known and not state.is_ip():
                raise _error("%s needs %s" % ({"dec_nw_ttl": "dec_ttl"}.get(atype, "mod_nw_ttl"), _PREREQ_TEXT["ip"]),
                             token)
        elif atype == "ct" and state.known:
            _check_ct_state(action, state, token)
        out.append(action)
    return out


def _check_ct_state(action, state, token):
    if not state.is_ip():
        raise _error("ct needs %s" % _PREREQ_TEXT["ip"], token)
    if action["commit"] and state.ct_inv:
        raise _error("ct(commit) cannot commit a connection the match says is invalid (ct_state +inv)", token)
    if action["alg"] == 21 and state.ip_proto != 6:
        raise _error("ct alg=ftp needs %s" % _PREREQ_TEXT["tcp"], token)
    if action["alg"] == 69 and state.ip_proto != 17:
        raise _error("ct alg=tftp needs %s" % _PREREQ_TEXT["udp"], token)
    nat = action["nat"]
    if nat and nat["ip_min"] is not None:
        version = ipaddress.ip_address(nat["ip_min"]).version
        if (version == 4) != (state.eth_type == ETH_IP):
            raise _error("ct nat with IPv%d addresses needs %s"
                         % (version, _PREREQ_TEXT["ipv4" if version == 4 else "ipv6"]), token)


def _finish(flow, token):
    """Check the instructions of a flow against its match and table; final form."""
    state = _State(flow["match"])
    out = []
    for inst in flow["instructions"]:
        inst = dict(inst)
        if inst["type"] == "apply_actions":
            inst["actions"] = _check_actions(inst["actions"], state, True)
            if not inst["actions"]:
                continue
        elif inst["type"] == "write_actions":
            inst["actions"] = _check_actions(inst["actions"], state.copy(), False)
            if not inst["actions"]:
                continue
        elif inst["type"] == "goto_table":
            if inst["table"] <= flow["table"]:
                raise _error("goto_table:%d must go to a later table than %d" % (inst["table"], flow["table"]), token)
        out.append(inst)
    flow["instructions"] = out
    return flow


# --------------------------------------------------------------------------
# Entry points
# --------------------------------------------------------------------------

def _header(flow, header):
    if "table" in header:
        flow["table"] = _table(header["table"][0], "table", header["table"][1])
    if "priority" in header:
        flow["priority"] = _int(header["priority"][0], 16, "priority", header["priority"][1])
    if "cookie" in header:
        flow["cookie"] = _int(header["cookie"][0], 64, "cookie", header["cookie"][1])
    for key in ("idle_timeout", "hard_timeout"):
        if key in header:
            flow[key] = _int(header[key][0], 16, key, header[key][1])


def _new_flow(default_table, default_priority):
    return {"table": _table(default_table, "default_table", None),
            "priority": _int(default_priority, 16, "default_priority", None),
            "cookie": 0, "idle_timeout": 0, "hard_timeout": 0, "flags": [], "match": {}, "instructions": []}


def parse_flow(text, default_table=0, default_priority=DEFAULT_PRIORITY):
    """The canonical flow of an ovs-ofctl flow (``add-flow`` syntax, or a ``dump-flows`` line).

    Raises :class:`FlowSyntaxError` naming the offending token and the flow.
    """
    if not isinstance(text, str):
        raise FlowSyntaxError("a flow must be a string, not %r" % (text,))
    try:
        flow = _new_flow(default_table, default_priority)
        match_text, actions_text = _split_actions(text)
        if actions_text is None:
            raise _error("missing actions: a flow ends with actions=... (actions=drop to drop)")
        entries, header = _match_from_text(match_text)
        _header(flow, header)
        flow["flags"] = sorted(header["flags"])
        flow["match"] = _build_match(entries)
        flow["instructions"] = _assemble(_items_from_text(actions_text, "top"), "actions=" + actions_text.strip())
        return _finish(flow, "actions=" + actions_text.strip())
    except FlowSyntaxError as exc:
        raise FlowSyntaxError(exc.message, exc.token, repr(text))


_DICT_KEYS = ("table", "priority", "cookie", "idle_timeout", "hard_timeout", "flags", "match", "actions", "instructions")


def flow_from_dict(data, default_table=0, default_priority=DEFAULT_PRIORITY):
    """The canonical flow of the structured syntax.

    Keys: ``table``, ``priority``, ``cookie``, ``idle_timeout``,
    ``hard_timeout``, ``flags`` (list of flag names), ``match`` (a dict with
    canonical field names or their ovs-ofctl aliases, values as ints or
    strings -- CIDR, ``value/mask``, port names, ct_state flags -- or
    ``{"value": v, "mask": m}``; or an ovs-ofctl match string), and either
    ``actions`` (an ovs-ofctl action string, or a list of canonical action
    dicts and/or ovs-ofctl action strings, instructions such as goto_table
    allowed as in ovs-ofctl) or ``instructions`` (canonical). Numbers may be
    ints or decimal/0x strings.
    """
    try:
        if not isinstance(data, dict):
            raise _error("a flow must be a dict, not %r" % (data,))
        unknown = set(data) - set(_DICT_KEYS)
        if unknown:
            raise _error("unknown flow keys: %s (known: %s)" % (", ".join(sorted(map(str, unknown))),
                                                                ", ".join(_DICT_KEYS)))
        flow = _new_flow(default_table, default_priority)
        for key, bits in (("priority", 16), ("cookie", 64), ("idle_timeout", 16), ("hard_timeout", 16)):
            if data.get(key) is not None:
                flow[key] = _int(data[key], bits, key, key)
        if data.get("table") is not None:
            flow["table"] = _table(data["table"], "table", "table")
        flow["flags"] = _flags(data.get("flags"))
        flow["match"] = _match_from_dict(data.get("match"))
        if "actions" in data and "instructions" in data:
            raise _error("give actions or instructions, not both")
        if data.get("instructions") is not None:
            flow["instructions"] = _instructions_from_list(data["instructions"], "instructions")
        elif "actions" in data and data["actions"] is not None:
            flow["instructions"] = _assemble(_actions_list(data["actions"], "top", "actions"), "actions")
        else:
            raise _error("a flow needs actions or instructions (actions: drop for a flow that drops)")
        return _finish(flow, "actions")
    except FlowSyntaxError as exc:
        raise FlowSyntaxError(exc.message, exc.token, _short(data))


def _short(data):
    text = repr(data)
    return text if len(text) <= 300 else text[:297] + "..."


def _flags(flags):
    if flags is None:
        return []
    if isinstance(flags, str):
        flags = [f for f in re.split(r"[,\s]+", flags) if f]
    if not isinstance(flags, (list, tuple, set)):
        raise _error("flags must be a list, not %r" % (flags,), "flags")
    for flag in flags:
        if flag not in FLOW_FLAGS:
            raise _error("unknown flow flag %r (known: %s)" % (flag, ", ".join(FLOW_FLAGS)), "flags")
    return sorted(set(flags))


def _match_from_dict(match):
    if match is None:
        return {}
    if isinstance(match, str):
        entries, header = _match_from_text(match)
        extra = [k for k in header if k != "flags"] + sorted(header["flags"])
        if extra:
            raise _error("%s belongs in the flow, not in its match" % extra[0], "match")
        return _build_match(entries)
    if not isinstance(match, dict):
        raise _error("match must be a dict or an ovs-ofctl match string, not %r" % (match,), "match")
    entries = []
    for name, value in match.items():
        token = "match.%s=%s" % (name, value)
        if not isinstance(name, str):
            raise _error("match field names are strings", token)
        if name in SHORTHANDS:
            raise _error("%s is an ovs-ofctl shorthand: in a dict write eth_type (and ip_proto)" % name, token)
        if not _is_match_name(name):
            if _unsupported_field(name):
                raise _error("match field %s is not supported by this flow model" % name, token)
            raise _error("unknown match field %r" % name, token)
        if value is None:
            raise _error("match field %s needs a value" % name, token)
        if name == "vlan_vid" and value in ("tagged", "untagged"):
            value = {"value": 0x1000, "mask": 0x1000} if value == "tagged" else 0
        entries.append(_Entry(name, value, token))
    return _build_match(entries)


def parse_actions(text, match=None):
    """The canonical actions of an ovs-ofctl action list without instructions (a group bucket's, say).

    With a canonical ``match``, the actions are checked against it as a flow's
    apply-actions are; without one, as Open vSwitch does for group buckets,
    nothing that depends on the packet is checked. ``drop`` or an empty text
    is ``[]``.
    """
    if not isinstance(text, str):
        raise FlowSyntaxError("actions must be a string, not %r" % (text,))
    try:
        items = _items_from_text(text, "an action list")
        state = _State(match) if match is not None else _State({}, known=False)
        return _check_actions(items, state, True)
    except FlowSyntaxError as exc:
        raise FlowSyntaxError(exc.message, exc.token, repr(text), what="actions")


def canonical_flow(flow):
    """The canonical form of a flow given as an ovs-ofctl string or a dict (either syntax)."""
    if isinstance(flow, str):
        return parse_flow(flow)
    return flow_from_dict(flow)


# --------------------------------------------------------------------------
# Formatting (ovs-ofctl dump-flows --no-stats)
# --------------------------------------------------------------------------

def _fmt_ipv4(value, mask):
    out = _ip_str(value, 4)
    if mask != 0xffffffff:
        length = _prefix_len(mask, 32)
        out += "/%d" % length if length is not None else "/" + _ip_str(mask, 4)
    return out


def _fmt_ipv6(value, mask):
    full = (1 << 128) - 1
    out = _inet6_ntop(value)
    if mask != full:
        length = _prefix_len(mask, 128)
        out += "/%d" % length if length is not None else "/" + _inet6_ntop(mask)
    return out


def _fmt_mac(value, mask):
    out = _mac_str(value)
    if mask != (1 << 48) - 1:
        out += "/" + _mac_str(mask)
    return out


def _fmt_hex_masked(value, mask, bits):
    out = _hex(value)
    if mask != (1 << bits) - 1:
        out += "/" + _hex(mask)
    return out


def _fmt_be16_masked(value, mask):
    if mask == 0xffff:
        return "%d" % value
    return "0x%x/0x%x" % (value, mask)


def _format_match(match, priority):
    """The match as ovs-ofctl's match_format prints it (with priority=)."""
    def get(name):
        if name not in match:
            return None
        return _entry_ints(FIELDS[name], match[name])

    parts = []
    if priority != DEFAULT_PRIORITY:
        parts.append("priority=%d" % priority)
    ct_state = match.get("ct_state")
    if ct_state is not None:
        value, mask = (ct_state["value"], ct_state["mask"]) if isinstance(ct_state, dict) else (ct_state, 0xff)
        mask &= CT_STATE_MASK
        if mask == CT_STATE_MASK:
            names = [n for n, bit in CT_STATE_BITS if value & bit]
            parts.append("ct_state=" + ("|".join(names) if names else "0"))
        elif mask:
            parts.append("ct_state=" + "".join(("+" if value & bit else "-") + n
                                               for n, bit in CT_STATE_BITS if mask & bit))
    if "ct_zone" in match:
        parts.append("ct_zone=%d" % match["ct_zone"])
    if "ct_mark" in match:
        parts.append("ct_mark=" + _fmt_hex_masked(*get("ct_mark"), bits=32))
    eth_type = match.get("eth_type")
    ip_proto = match.get("ip_proto")
    skip_type = skip_proto = False
    if eth_type is not None:
        skip_type = True
        if eth_type in (ETH_IP, ETH_IPV6):
            name = _IP_SHORTHAND.get((eth_type, ip_proto))
            if name is not None:
                skip_proto = True
            else:
                name = "ip" if eth_type == ETH_IP else "ipv6"
            parts.append(name)
        elif eth_type in _ETH_SHORTHAND:
            parts.append(_ETH_SHORTHAND[eth_type])
        else:
            skip_type = False
    for i in range(16):
        if "reg%d" % i in match:
            parts.append("reg%d=" % i + _fmt_hex_masked(*get("reg%d" % i), bits=32))
    if "tunnel_id" in match:
        parts.append("tun_id=" + _fmt_hex_masked(*get("tunnel_id"), bits=64))
    if "metadata" in match:
        parts.append("metadata=" + _fmt_hex_masked(*get("metadata"), bits=64))
    if "in_port" in match:
        parts.append("in_port=" + _format_port(match["in_port"]))
    vlan = _format_vlan(match)
    if vlan:
        parts.append(vlan)
    if "eth_src" in match:
        parts.append("dl_src=" + _fmt_mac(*get("eth_src")))
    if "eth_dst" in match:
        parts.append("dl_dst=" + _fmt_mac(*get("eth_dst")))
    if not skip_type and eth_type is not None:
        parts.append("dl_type=0x%04x" % eth_type)
    is_arp = eth_type in (ETH_ARP, ETH_RARP)
    if eth_type == ETH_IPV6:
        for name in ("ipv6_src", "ipv6_dst"):
            if name in match:
                parts.append("%s=%s" % (name, _fmt_ipv6(*get(name))))
    elif is_arp:
        for name in ("arp_spa", "arp_tpa"):
            if name in match:
                parts.append("%s=%s" % (name, _fmt_ipv4(*get(name))))
    else:
        for name, label in (("ipv4_src", "nw_src"), ("ipv4_dst", "nw_dst")):
            if name in match:
                parts.append("%s=%s" % (label, _fmt_ipv4(*get(name))))
    if is_arp and "arp_op" in match:
        parts.append("arp_op=%d" % match["arp_op"])
    elif not skip_proto and ip_proto is not None:
        parts.append("nw_proto=%d" % ip_proto)
    if is_arp:
        for name in ("arp_sha", "arp_tha"):
            if name in match:
                parts.append("%s=%s" % (name, _fmt_mac(*get(name))))
    if "ip_dscp" in match:
        parts.append("nw_tos=%d" % (match["ip_dscp"] << 2))
    if "ip_ecn" in match:
        parts.append("nw_ecn=%d" % match["ip_ecn"])
    if eth_type == ETH_IP and ip_proto == 1:
        l4 = (("icmpv4_type", "icmp_type"), ("icmpv4_code", "icmp_code"))
    elif eth_type == ETH_IPV6 and ip_proto == 58:
        l4 = (("icmpv6_type", "icmp_type"), ("icmpv6_code", "icmp_code"))
    else:
        l4 = tuple(("%s_%s" % (p, side), "tp_" + side) for side in ("src", "dst") for p in ("tcp", "udp", "sctp"))
    for name, label in l4:
        if name in match:
            value, mask = get(name)
            full = (1 << FIELDS[name].bits) - 1
            parts.append("%s=%s" % (label, _fmt_be16_masked(value, 0xffff if mask == full else mask)))
    # Fields this model has no name for (set by another controller) are shown as the codec decoded them.
    for name in sorted(n for n in match if n not in FIELDS):
        entry = match[name]
        parts.append("%s=%s" % (name, "%s/%s" % (entry["value"], entry["mask"]) if isinstance(entry, dict)
                                else entry))
    return ",".join(parts)


def _format_vlan(match):
    """dl_vlan= / dl_vlan_pcp= / vlan_tci= as ovs-ofctl prints the stored TCI."""
    tci = mask = 0
    if "vlan_vid" in match:
        value, vmask = _entry_ints(FIELDS["vlan_vid"], match["vlan_vid"])
        tci, mask = value & vmask, vmask
    if "vlan_pcp" in match:
        tci |= 0x1000 | (match["vlan_pcp"] << 13)
        mask |= 0x1000 | 0xe000
    if not mask:
        return None
    vid_mask, pcp_mask, cfi = mask & 0x0fff, mask & 0xe000, mask & 0x1000
    if (cfi and tci & 0x1000 and vid_mask in (0, 0x0fff) and pcp_mask in (0, 0xe000)
            and (vid_mask or pcp_mask)):
        out = []
        if vid_mask:
            out.append("dl_vlan=%d" % (tci & 0x0fff))
        if pcp_mask:
            out.append("dl_vlan_pcp=%d" % (tci >> 13))
        return ",".join(out)
    if mask == 0xffff:
        return "vlan_tci=0x%04x" % tci
    return "vlan_tci=0x%04x/0x%04x" % (tci, mask)


def _format_set_field_value(field, value):
    if isinstance(value, dict):  # a masked load (NXAST_REG_LOAD) written by another controller
        return "%s/%s" % (_format_set_field_value(field, value["value"]), _format_set_field_value(field, value["mask"]))
    if field.kind == "port":
        return _format_port(value)
    if field.kind == "mac":
        return _parse_mac(value, field.name, None)
    if field.kind == "ipv4":
        return _ip_str(_raw_value(field, value), 4)
    if field.kind == "ipv6":
        return _inet6_ntop(_raw_value(field, value))
    if field.hex:
        return _hex(value)
    return "%d" % value


def _format_zone(zone):
    if isinstance(zone, dict):
        name = zone["field"]
        ofs, nbits = zone["ofs"], zone["nbits"]
        if ofs == 0 and nbits == FIELDS[name].bits:
            bits = "[]"
        elif nbits == 1:
            bits = "[%d]" % ofs
        else:
            bits = "[%d..%d]" % (ofs, ofs + nbits - 1)
        return "zone=%s%s" % (_SUBFIELD_NAMES[name], bits)
    return "zone=%d" % zone if zone else None


def _format_nat(nat):
    if not nat["type"]:
        return "nat"
    out = "nat(" + nat["type"]
    if nat["ip_min"] is not None:
        lo = ipaddress.ip_address(nat["ip_min"])
        hi = ipaddress.ip_address(nat["ip_max"]) if nat.get("ip_max") else None
        if lo.version == 4:
            out += "=%s" % lo
            if hi is not None and hi != lo:
                out += "-%s" % hi
        else:
            bracket = nat.get("port_min") is not None
            wrap = (lambda a: "[%s]" % a) if bracket else (lambda a: a)
            out += "=" + wrap(_inet6_ntop(int(lo)))
            if hi is not None and hi != lo:
                out += "-" + wrap(_inet6_ntop(int(hi)))
        if nat.get("port_min"):
            out += ":%d" % nat["port_min"]
            if nat.get("port_max") and nat["port_max"] != nat["port_min"]:
                out += "-%d" % nat["port_max"]
        for flag in ("persistent", "hash", "random"):
            if nat.get(flag):
                out += "," + flag
    return out + ")"


def _format_action(action):
    atype = action["type"]
    if atype == "output":
        port = action["port"]
        if port == OFPP_CONTROLLER:
            return "CONTROLLER:%d" % action.get("max_len", OFPCML_NO_BUFFER)
        if port in PORT_NAMES:
            return PORT_NAMES[port]
        return "output:%d" % port
    if atype == "group":
        return "group:%d" % action["group_id"]
    if atype == "set_field":
        field = FIELDS[action["field"]]
        return "set_field:%s->%s" % (_format_set_field_value(field, action["value"]), field.ovs_name)
    if atype == "push_vlan":
        return "push_vlan:0x%x" % action.get("ethertype", 0x8100)
    if atype == "pop_vlan":
        return "pop_vlan"
    if atype == "dec_nw_ttl":
        return "dec_ttl"
    if atype == "set_nw_ttl":
        return "mod_nw_ttl:%d" % action["ttl"]
    if atype == "resubmit":
        port, table = action.get("port"), action.get("table")
        if port == OFPP_IN_PORT:
            port = None
        if port is not None and table is None:
            return "resubmit:" + _format_port(port)
        return "resubmit(%s,%s)" % ("" if port is None else _format_port(port), "" if table is None else table)
    if atype == "ct":
        args = []
        if action.get("commit"):
            args.append("commit")
        if action.get("force"):
            args.append("force")
        if action.get("table") is not None:
            args.append("table=%d" % action["table"])
        zone = _format_zone(action.get("zone") or 0)
        if zone:
            args.append(zone)
        if action.get("nat"):
            args.append(_format_nat(action["nat"]))
        if action.get("exec"):
            args.append("exec(%s)" % ",".join(_format_action(a) for a in action["exec"]))
        alg = action.get("alg")
        if alg:
            args.append("alg=%s" % {21: "ftp", 69: "tftp"}.get(alg, alg))
        return "ct(%s)" % ",".join(args)
    if atype == "ct_clear":
        return "ct_clear"
    if atype == "meter":
        return "meter:%d" % action["meter_id"]
    if atype == "raw":  # an action this model does not carry (another controller's), shown as its bytes
        return "raw(0x%s)" % action["hex"]
    raise ValueError("cannot format action %r" % (action,))


def _format_instructions(instructions):
    parts = []
    for inst in sorted(instructions, key=lambda i: _INSTRUCTION_RANK.get(i["type"], len(_INSTRUCTION_RANK))):
        itype = inst["type"]
        if itype == "meter":
            parts.append("meter:%d" % inst["meter_id"])
        elif itype == "apply_actions":
            parts.extend(_format_action(a) for a in inst["actions"])
        elif itype == "clear_actions":
            parts.append("clear_actions")
        elif itype == "write_actions":
            if inst["actions"]:
                parts.append("write_actions(%s)" % ",".join(_format_action(a) for a in inst["actions"]))
        elif itype == "write_metadata":
            mask = inst.get("mask")
            text = "write_metadata:" + _hex(inst["metadata"])
            if mask is not None and mask != (1 << 64) - 1:
                text += "/" + _hex(mask)
            parts.append(text)
        elif itype == "goto_table":
            parts.append("goto_table:%d" % inst["table"])
        elif itype == "raw":
            parts.append("raw_instruction(0x%s)" % inst["hex"])
        else:
            raise ValueError("cannot format instruction %r" % (inst,))
    return ",".join(parts) if parts else "drop"


def format_flow(flow):
    """A canonical flow as ``ovs-ofctl -O OpenFlow13 dump-flows --no-stats`` prints it (Open vSwitch 3.1)."""
    out = ""
    if flow.get("cookie"):
        out += "cookie=0x%x, " % flow["cookie"]
    if flow.get("table"):
        out += "table=%d, " % flow["table"]
    if flow.get("idle_timeout"):
        out += "idle_timeout=%d, " % flow["idle_timeout"]
    if flow.get("hard_timeout"):
        out += "hard_timeout=%d, " % flow["hard_timeout"]
    flags = set(flow.get("flags") or ())
    for flag in FLOW_FLAGS:
        if flag in flags:
            out += flag + " "
    priority = flow.get("priority", DEFAULT_PRIORITY)
    match = _format_match(flow.get("match") or {}, DEFAULT_PRIORITY if priority is None else priority)
    if match:
        out += match + " "
    return out + "actions=" + _format_instructions(flow.get("instructions") or [])


def format_match(match, priority=DEFAULT_PRIORITY):
    """A canonical match (and priority) in ovs-ofctl syntax, as dump-flows prints it."""
    return _format_match(match or {}, priority)


def format_actions(actions):
    """Canonical instructions, or a plain list of actions (a group bucket's), in ovs-ofctl
    ``actions=`` syntax (``drop`` for none)."""
    actions = actions or []
    if all(a.get("type") in _INSTRUCTION_RANK for a in actions):
        return _format_instructions(actions)
    return ",".join(_format_action(a) for a in actions)


# --------------------------------------------------------------------------
# Identity and equality
# --------------------------------------------------------------------------

def _freeze(value):
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def flow_key(flow):
    """The OpenFlow identity of a canonical flow: ``(table, priority, match)``, hashable.

    Two flows with the same key are the same flow to the switch (an add of one
    replaces the other; a strict modify or delete names it). The match part is
    a tuple of ``(field, value)`` sorted by field name, a masked value frozen
    as ``(("mask", m), ("value", v))``.
    """
    priority = flow.get("priority", DEFAULT_PRIORITY)
    return (flow.get("table", 0) or 0, DEFAULT_PRIORITY if priority is None else priority,
            _freeze(flow.get("match") or {}))


def _instructions_key(instructions):
    cleaned = [i for i in instructions or []
               if not (i.get("type") in ("apply_actions", "write_actions") and not i.get("actions"))]
    cleaned.sort(key=lambda i: _INSTRUCTION_RANK.get(i.get("type"), len(_INSTRUCTION_RANK)))
    return _freeze(cleaned)


def flow_equal(a, b):
    """True when two canonical flows are the same flow with the same cookie, timeouts, flags and instructions."""
    if flow_key(a) != flow_key(b):
        return False
    for key in ("cookie", "idle_timeout", "hard_timeout"):
        if (a.get(key) or 0) != (b.get(key) or 0):
            return False
    if sorted(a.get("flags") or []) != sorted(b.get("flags") or []):
        return False
    return _instructions_key(a.get("instructions")) == _instructions_key(b.get("instructions"))
