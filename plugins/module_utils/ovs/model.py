# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Validation and normalisation of a desired OVS bridge (pure, no I/O).

Everything the user can get wrong without looking at the switch is checked
here, before the first byte goes to OVSDB.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re


class ValidationError(ValueError):
    """The desired state is invalid; the message says what and where."""


IFNAMSIZ = 16  # includes the trailing NUL: names are at most 15 bytes
_IFNAME_RE = re.compile(r"^[A-Za-z0-9_.\-]+$")

PORT_TYPES = ("internal", "system", "patch", "tap", "vxlan", "geneve", "gre")
TUNNEL_TYPES = ("vxlan", "geneve", "gre")
VLAN_MODES = ("trunk", "access", "native-tagged", "native-untagged", "dot1q-tunnel")
PROTOCOLS = ("OpenFlow10", "OpenFlow11", "OpenFlow12", "OpenFlow13", "OpenFlow14", "OpenFlow15")
FAIL_MODES = ("standalone", "secure")
_CONTROLLER_RE = re.compile(
    r"^(?:(?:tcp|ssl):(?:\[[0-9A-Fa-f:.]+\]|[0-9.]+|[A-Za-z0-9.\-]+)(?::\d{1,5})?"
    r"|(?:ptcp|pssl):(?:\d{1,5})?(?::(?:\[[0-9A-Fa-f:.]+\]|[0-9.]+))?"
    r"|(?:unix|punix):/\S+)$")
MAX_OFPORT = 65279


def check_ifname(name, what):
    if not isinstance(name, str) or not name:
        raise ValidationError("%s must be a non-empty string" % what)
    if len(name.encode("utf-8")) >= IFNAMSIZ:
        raise ValidationError("%s %r is %d bytes long; Linux interface names are at most %d bytes"
                              % (what, name, len(name.encode("utf-8")), IFNAMSIZ - 1))
    if name in (".", "..") or not _IFNAME_RE.match(name):
        raise ValidationError("%s %r has characters not allowed in an interface name "
                              "(use letters, digits, '_', '-' and '.')" % (what, name))
    return name


def _vlan(value, what):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("%s must be an integer, got %r" % (what, value))
    if not 0 <= value <= 4095:
        raise ValidationError("%s %d is out of range (0-4095)" % (what, value))
    return value


def string_map(value, what):
    """Normalise a dict of scalars to str -> str as OVSDB maps need."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationError("%s must be a dictionary" % what)
    out = {}
    for key, val in value.items():
        if not isinstance(key, str) or not key:
            raise ValidationError("%s: keys must be non-empty strings, got %r" % (what, key))
        if isinstance(val, bool):
            val = "true" if val else "false"
        elif isinstance(val, (int, float)):
            val = str(val)
        elif not isinstance(val, str):
            raise ValidationError("%s: value of %r must be a string, number or boolean, not %s"
                                  % (what, key, type(val).__name__))
        out[key] = val
    return out


def normalize_cidr(value, what):
    if not isinstance(value, str):
        raise ValidationError("%s: %r is not an address in CIDR notation" % (what, value))
    if "/" not in value:
        raise ValidationError("%s: %r has no prefix length (write it as ADDRESS/PREFIX, e.g. 10.0.0.1/24)"
                              % (what, value))
    try:
        iface = ipaddress.ip_interface(value.strip())
    except ValueError as exc:
        raise ValidationError("%s: %r is not a valid CIDR address: %s" % (what, value, exc))
    if iface.ip.is_multicast or iface.ip.is_unspecified:
        raise ValidationError("%s: %r cannot be assigned to an interface" % (what, value))
    if iface.ip.version == 6 and iface.ip.is_link_local:
        raise ValidationError("%s: %r is an IPv6 link-local address; the kernel manages those itself"
                              % (what, value))
    return iface.with_prefixlen


def normalize_port(spec, bridge, fake_vlan=None):
    """Return a normalised copy of one port entry, or raise ValidationError."""
    if not isinstance(spec, dict):
        raise ValidationError("each entry of ports must be a dictionary, got %r" % (spec,))
    name = check_ifname(spec.get("name"), "port name")
    where = "port %r" % name
    ptype = spec.get("type") or "system"
    if ptype not in PORT_TYPES:
        raise ValidationError("%s: unknown type %r (expected one of %s)" % (where, ptype, ", ".join(PORT_TYPES)))
    if name == bridge and ptype != "internal":
        raise ValidationError("%s: the bridge's own local port is always of type internal" % where)

    options = string_map(spec.get("options"), "%s: options" % where)
    peer, remote_ip, key = spec.get("peer"), spec.get("remote_ip"), spec.get("key")
    if ptype == "patch":
        if not peer:
            raise ValidationError("%s: a patch port needs 'peer' (the name of the patch port on the other bridge)"
                                  % where)
        check_ifname(peer, "%s: peer" % where)
        if peer == name:
            raise ValidationError("%s: a patch port cannot be its own peer" % where)
        options["peer"] = peer
    elif peer is not None:
        raise ValidationError("%s: 'peer' applies only to type patch, not %s" % (where, ptype))
    if ptype in TUNNEL_TYPES:
        if not remote_ip:
            raise ValidationError("%s: a %s tunnel needs 'remote_ip'" % (where, ptype))
        if remote_ip != "flow":
            try:
                remote_ip = str(ipaddress.ip_address(remote_ip))
            except ValueError:
                raise ValidationError("%s: remote_ip %r is not an IP address (or 'flow')" % (where, remote_ip))
        options["remote_ip"] = remote_ip
        if key is not None:
            key = str(key)
            if key != "flow":
                limit = (1 << 24) - 1 if ptype in ("vxlan", "geneve") else (1 << 32) - 1
                if not key.isdigit() or int(key) > limit:
                    raise ValidationError("%s: key %r must be 'flow' or an integer 0-%d for %s"
                                          % (where, key, limit, ptype))
                key = str(int(key))
            options["key"] = key
    else:
        if remote_ip is not None:
            raise ValidationError("%s: 'remote_ip' applies only to tunnel types (%s), not %s"
                                  % (where, ", ".join(TUNNEL_TYPES), ptype))
        if key is not None:
            raise ValidationError("%s: 'key' applies only to tunnel types (%s), not %s"
                                  % (where, ", ".join(TUNNEL_TYPES), ptype))

    tag = spec.get("tag")
    trunks = spec.get("trunks")
    vlan_mode = spec.get("vlan_mode")
    if tag is not None:
        _vlan(tag, "%s: tag" % where)
    if trunks is not None:
        if not isinstance(trunks, list):
            raise ValidationError("%s: trunks must be a list of VLAN ids" % where)
        trunks = sorted(set(_vlan(t, "%s: trunk VLAN" % where) for t in trunks))
    else:
        trunks = []
    if vlan_mode is not None and vlan_mode not in VLAN_MODES:
        raise ValidationError("%s: unknown vlan_mode %r (expected one of %s)"
                              % (where, vlan_mode, ", ".join(VLAN_MODES)))
    if vlan_mode == "access" and trunks:
        raise ValidationError("%s: an access port carries no trunks" % where)
    if vlan_mode in ("native-tagged", "native-untagged", "dot1q-tunnel") and tag is None:
        raise ValidationError("%s: vlan_mode %s needs 'tag' (the native or outer VLAN)" % (where, vlan_mode))
    if vlan_mode == "trunk" and tag is not None:
        raise ValidationError("%s: 'tag' has no effect with vlan_mode trunk; use native-tagged or "
                              "native-untagged for a native VLAN" % where)
    if fake_vlan is not None:
        if tag is not None and tag != fake_vlan:
            raise ValidationError("%s: ports of a fake bridge carry its VLAN %d, not tag %d"
                                  % (where, fake_vlan, tag))
        if trunks or vlan_mode is not None:
            raise ValidationError("%s: ports of a fake bridge take neither trunks nor vlan_mode" % where)
        tag = fake_vlan

    ofport_request = spec.get("ofport_request")
    if ofport_request is not None:
        if isinstance(ofport_request, bool) or not isinstance(ofport_request, int) \
                or not 1 <= ofport_request <= MAX_OFPORT:
            raise ValidationError("%s: ofport_request %r is out of range (1-%d)" % (where, ofport_request, MAX_OFPORT))

    addresses = spec.get("addresses")
    up = spec.get("up")
    if addresses is not None or up is not None:
        if ptype != "internal":
            raise ValidationError("%s: addresses and up apply only to internal ports (the device OVS creates), "
                                  "not %s" % (where, ptype))
    if addresses is not None:
        if not isinstance(addresses, list):
            raise ValidationError("%s: addresses must be a list of CIDRs" % where)
        norm = [normalize_cidr(a, "%s: address" % where) for a in addresses]
        if len(set(norm)) != len(norm):
            raise ValidationError("%s: addresses lists the same address twice" % where)
        addresses = sorted(norm)

    return {
        "name": name,
        "type": ptype,
        "options": options,
        "tag": tag,
        "trunks": trunks,
        "vlan_mode": vlan_mode,
        "ofport_request": ofport_request,
        "external_ids": string_map(spec.get("external_ids"), "%s: external_ids" % where),
        "interface_external_ids": string_map(spec.get("interface_external_ids"),
                                             "%s: interface_external_ids" % where),
        "purge_external_ids": bool(spec.get("purge_external_ids")),
        "addresses": addresses,
        "up": up,
    }


BRIDGE_ONLY = ("datapath_type", "fail_mode", "protocols", "stp", "rstp", "controller", "other_config")


def normalize_bridge(params):
    """Validate module parameters and return the normalised desired bridge."""
    name = check_ifname(params.get("name"), "bridge name")
    state = params.get("state") or "present"
    parent, vlan = params.get("parent"), params.get("vlan")
    if (parent is None) != (vlan is None):
        raise ValidationError("a fake bridge needs both 'parent' and 'vlan'")
    if parent is not None:
        check_ifname(parent, "parent bridge name")
        if parent == name:
            raise ValidationError("a fake bridge cannot be its own parent")
        _vlan(vlan, "fake bridge vlan")
        if vlan == 0:
            raise ValidationError("fake bridge vlan must be 1-4095")
        given = [k for k in BRIDGE_ONLY if params.get(k) not in (None, {}, [])]
        if given:
            raise ValidationError("a fake bridge takes its datapath from its parent; these options apply only to "
                                  "real bridges: %s" % ", ".join(given))

    protocols = params.get("protocols")
    if protocols is not None:
        bad = [p for p in protocols if p not in PROTOCOLS]
        if bad:
            raise ValidationError("unknown OpenFlow protocol(s) %s (expected some of %s)"
                                  % (", ".join(map(repr, bad)), ", ".join(PROTOCOLS)))
        protocols = sorted(set(protocols))
    fail_mode = params.get("fail_mode")
    if fail_mode is not None and fail_mode not in FAIL_MODES:
        raise ValidationError("unknown fail_mode %r (expected standalone or secure)" % fail_mode)
    if params.get("stp") and params.get("rstp"):
        raise ValidationError("stp and rstp are exclusive: enable one of them")
    controller = params.get("controller")
    if controller is not None:
        for target in controller:
            if not isinstance(target, str) or not _CONTROLLER_RE.match(target):
                raise ValidationError("controller target %r is not of the form tcp:IP[:PORT], ssl:IP[:PORT], "
                                      "ptcp:[PORT][:IP], pssl:[PORT][:IP], unix:PATH or punix:PATH" % (target,))
        controller = sorted(set(controller))
    datapath_type = params.get("datapath_type")
    if datapath_type is not None and datapath_type not in ("system", "netdev", ""):
        raise ValidationError("unknown datapath_type %r (expected system or netdev)" % datapath_type)

    ports = params.get("ports")
    if state == "absent":
        if ports:
            raise ValidationError("ports cannot be given with state=absent: removing a bridge removes its ports")
    elif ports is not None:
        if not isinstance(ports, list):
            raise ValidationError("ports must be a list")
        ports = [normalize_port(p, name, vlan) for p in ports]
        seen = set()
        for port in ports:
            if port["name"] in seen:
                raise ValidationError("port %r is listed twice" % port["name"])
            seen.add(port["name"])
        if parent is not None and name in seen:
            raise ValidationError("port %r: a fake bridge's own port is managed with the bridge, do not list it"
                                  % name)
        if parent is not None and parent in seen:
            raise ValidationError("port %r: the parent bridge's local port cannot be a port of the fake bridge"
                                  % parent)
    return {
        "name": name,
        "state": state,
        "parent": parent,
        "vlan": vlan,
        "datapath_type": datapath_type,
        "fail_mode": fail_mode,
        "protocols": protocols,
        "stp": params.get("stp"),
        "rstp": params.get("rstp"),
        "controller": controller,
        "other_config": string_map(params.get("other_config"), "other_config"),
        "purge_other_config": bool(params.get("purge_other_config")),
        "external_ids": string_map(params.get("external_ids"), "external_ids"),
        "purge_external_ids": bool(params.get("purge_external_ids")),
        "ports": ports,
        "ports_exclusive": bool(params.get("ports_exclusive")),
    }
