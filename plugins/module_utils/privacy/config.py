# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The privacy chain's configuration (the op-dbus design's PrivacyRouterConfig), validated.

``normalize(params)`` checks everything before anything is touched and returns one plain dict the
planner works from. Errors are :class:`ConfigError` with the option's path in the message; secret
values are never part of a message.

The chain on the wire (see docs/privacy_router.md): client -(WireGuard)-> CT100 gateway -> CT102
XRay client -> CT101 WARP tunnel -> uplink. XRay carries the clients' connections to the VPS, the
exit; the WARP tunnel carries XRay's connection to the VPS, so the uplink only ever sees WireGuard
to the WARP endpoint, and the VPS sees WARP's address.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re
import uuid

from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import ValidationError as OvsValidationError
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import check_ifname
from ansible_collections.opdbus.infra.plugins.module_utils.wireguard import check_key

HOPS = ("wireguard", "warp", "xray")
# The order packets take from the client to the uplink.
WIRE_ORDER = ("wireguard", "xray", "warp")
PROTOCOLS = ("vless", "vmess")
TRANSPORTS = ("tcp", "ws")
SECURITY = ("none", "tls")
# What the op-dbus design lists under obfuscation that Open vSwitch cannot do, and why.
REFUSED_OBFUSCATION = {
    "padding": "packet padding changes payload length; OpenFlow has no action that grows a packet's payload",
    "timing": "timing obfuscation delays or jitters packets; Open vSwitch forwards at once and has no delay action "
              "(meters only drop or remark)",
    "morphing": "traffic morphing reshapes packet sizes and rates to mimic other traffic; that needs a proxy that "
                "rewrites streams, not a switch",
}
DEFAULT_CONTAINERS = {
    "wireguard": {"name": "ct100", "id": 100, "hostname": "wg-gateway"},
    "warp": {"name": "ct101", "id": 101, "hostname": "warp-tunnel"},
    "xray": {"name": "ct102", "id": 102, "hostname": "xray-client"},
}
DEFAULT_PORTS = {"wireguard": "priv_wg", "warp": "priv_warp", "xray": "priv_xray"}
DEFAULT_OFPORTS = {"wireguard": 10, "warp": 11, "xray": 12}
PACKAGES = {
    "wireguard": ["wireguard-go", "wireguard-tools", "iproute2", "nftables"],
    "warp": ["wireguard-go", "wireguard-tools", "iproute2", "nftables"],
    "xray": ["v2ray", "iproute2", "nftables"],
}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_WS_PATH = re.compile(r"^/[A-Za-z0-9._~/-]{0,127}$")
_SERVER_NAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")


class ConfigError(ValueError):
    pass


def _get(params, key, default=None):
    value = (params or {}).get(key)
    return default if value is None else value


def _port(value, where):
    try:
        port = int(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be a port number (1-65535), got %r" % (where, value))
    if not 1 <= port <= 65535:
        raise ConfigError("%s must be 1-65535, got %d" % (where, port))
    return port


def _iface(value, where):
    try:
        return check_ifname(value, where)
    except OvsValidationError as exc:
        raise ConfigError(str(exc))


def _interface(value, where):
    """An address with prefix (10.0.0.1/24) -> ipaddress.IPv4Interface."""
    try:
        iface = ipaddress.IPv4Interface(str(value))
    except ValueError:
        raise ConfigError("%s must be an IPv4 address with its prefix length (e.g. 10.200.0.1/24), got %r" % (where, value))
    if "/" not in str(value):
        raise ConfigError("%s needs a prefix length (e.g. %s/24)" % (where, value))
    return iface


def _address(value, where):
    try:
        return ipaddress.IPv4Address(str(value))
    except ValueError:
        raise ConfigError("%s must be an IPv4 address, got %r" % (where, value))


def _endpoint(value, where):
    """HOST:PORT with an IPv4 host -> (address, port)."""
    text = str(value or "")
    host, sep, port = text.rpartition(":")
    if not sep or not host:
        raise ConfigError("%s must be IPv4:PORT (e.g. 198.51.100.2:2408), got %r" % (where, value))
    return str(_address(host, where + " (address)")), _port(port, where + " (port)")


def _int(value, where, low, high):
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ConfigError("%s must be an integer, got %r" % (where, value))
    if not low <= number <= high:
        raise ConfigError("%s must be %d-%d, got %d" % (where, low, high, number))
    return number


def _secret(params, key, file_key, where, check):
    """(value, file) of a secret given inline or as a file; exactly one or none."""
    value, path = _get(params, key), _get(params, file_key)
    if value is not None and path is not None:
        raise ConfigError("%s: give %s or %s, not both" % (where, key, file_key))
    if value is not None:
        try:
            value = check(value)
        except ValueError as exc:
            raise ConfigError("%s.%s: %s" % (where, key, exc))
    if path is not None and not str(path).startswith("/"):
        raise ConfigError("%s.%s must be an absolute path, got %r" % (where, file_key, path))
    return value, path


def check_uuid(text):
    try:
        return str(uuid.UUID(str(text).strip()))
    except ValueError:
        raise ValueError("is not a UUID (VLESS and VMess ids are UUIDs)")


def _wireguard(params):
    where = "wireguard"
    address = _interface(_get(params, "address", "10.200.0.1/24"), where + ".address")
    pool = address.network
    if pool.prefixlen > 30:
        raise ConfigError("%s.address %s leaves no room for clients (prefix /%d); use /30 or shorter"
                          % (where, address, pool.prefixlen))
    out = {
        "listen_port": _port(_get(params, "listen_port", 51820), where + ".listen_port"),
        "address": str(address),
        "gateway_ip": str(address.ip),
        "pool": str(pool),
        "mtu": _int(_get(params, "mtu", 1380), where + ".mtu", 1280, 1420),
        "interface": _iface(_get(params, "interface", "wg0"), where + ".interface"),
        "public_endpoint": None,
        "clients": [],
    }
    if _get(params, "public_endpoint") is not None:
        host, port = _endpoint(params["public_endpoint"], where + ".public_endpoint")
        out["public_endpoint"] = "%s:%d" % (host, port)
    seen_names, seen_ips = set(), {str(address.ip)}
    for pos, client in enumerate(_get(params, "clients", [])):
        cwhere = "%s.clients[%d]" % (where, pos)
        if not isinstance(client, dict):
            raise ConfigError("%s must be a dict with name and address" % cwhere)
        name = client.get("name")
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError("%s.name must be 1-63 of A-Z a-z 0-9 _ . - (it names the client's config file), got %r"
                              % (cwhere, name))
        if name in seen_names:
            raise ConfigError("%s.name %s is used twice" % (cwhere, name))
        seen_names.add(name)
        ip = _address(client.get("address"), cwhere + ".address")
        if ip not in pool or ip in (pool.network_address, pool.broadcast_address):
            raise ConfigError("%s.address %s is not a host address of the pool %s" % (cwhere, ip, pool))
        if str(ip) in seen_ips:
            raise ConfigError("%s.address %s is already taken (by the gateway or another client)" % (cwhere, ip))
        seen_ips.add(str(ip))
        public = client.get("public_key")
        if public is not None:
            try:
                public = check_key(public, "%s.public_key" % cwhere)
            except ValueError as exc:
                raise ConfigError(str(exc))
        out["clients"].append({"name": name, "address": str(ip), "public_key": public})
    return out


def _warp(params):
    where = "warp"
    if not _get(params, "endpoint"):
        raise ConfigError("warp.endpoint is required: the WARP endpoint's IPv4:PORT (e.g. 162.159.192.1:2408)")
    host, port = _endpoint(params["endpoint"], where + ".endpoint")
    public, public_file = _secret(params, "public_key", "public_key_file", where,
                                  lambda v: check_key(v, "the endpoint's public key"))
    if public is None and public_file is None:
        raise ConfigError("warp: give public_key or public_key_file (the WARP endpoint's public key)")
    private, private_file = _secret(params, "private_key", "private_key_file", where,
                                    lambda v: check_key(v, "the private key"))
    address = _interface(_get(params, "address", "172.16.0.2/32"), where + ".address")
    return {
        "endpoint_ip": host,
        "endpoint_port": port,
        "public_key": public,
        "public_key_file": public_file,
        "private_key": private,
        "private_key_file": private_file,
        "address": str(address),
        "mtu": _int(_get(params, "mtu", 1280), where + ".mtu", 1280, 1420),
        "keepalive": _int(_get(params, "keepalive", 25), where + ".keepalive", 0, 3600),
        "interface": _iface(_get(params, "interface", "wgwarp"), where + ".interface"),
    }


def _xray(params):
    where = "xray"
    protocol = _get(params, "protocol", "vless")
    if protocol not in PROTOCOLS:
        raise ConfigError("xray.protocol must be one of %s, got %r" % (", ".join(PROTOCOLS), protocol))
    transport = _get(params, "transport", "tcp")
    if transport not in TRANSPORTS:
        raise ConfigError("xray.transport must be one of %s, got %r" % (", ".join(TRANSPORTS), transport))
    security = _get(params, "security", "none")
    if security not in SECURITY:
        raise ConfigError("xray.security must be one of %s, got %r" % (", ".join(SECURITY), security))
    ws_path = _get(params, "ws_path", "/")
    if not _WS_PATH.match(str(ws_path)):
        raise ConfigError("xray.ws_path must start with / and hold only A-Z a-z 0-9 . _ ~ / -, got %r" % (ws_path,))
    server_name = _get(params, "server_name")
    if server_name is not None and not _SERVER_NAME.match(str(server_name)):
        raise ConfigError("xray.server_name %r is not a DNS name" % (server_name,))
    if security == "tls" and server_name is None:
        raise ConfigError("xray.security=tls needs server_name (the name on the VPS's certificate)")
    binary = _get(params, "binary", "/usr/bin/v2ray")
    if not str(binary).startswith("/"):
        raise ConfigError("xray.binary must be an absolute path inside the container, got %r" % (binary,))
    return {
        "protocol": protocol,
        "transport": transport,
        "security": security,
        "ws_path": ws_path,
        "server_name": server_name,
        "allow_insecure": bool(_get(params, "allow_insecure", False)),
        "local_port": _port(_get(params, "local_port", 12345), where + ".local_port"),
        "binary": binary,
    }


def _vps(params):
    where = "vps"
    if not _get(params, "address"):
        raise ConfigError("vps.address is required: the VPS's IPv4 address (the exit)")
    ident, ident_file = _secret(params, "id", "id_file", where, check_uuid)
    if ident is None and ident_file is None:
        raise ConfigError("vps: give id or id_file (the VLESS/VMess client id, a UUID)")
    return {
        "address": str(_address(params["address"], where + ".address")),
        "port": _port(_get(params, "port", 443), where + ".port"),
        "id": ident,
        "id_file": ident_file,
    }


def _sockets(params):
    where = "socket_networking"
    ports = {}
    ofports = {}
    for hop in HOPS:
        ports[hop] = _iface(_get(params, hop + "_port", DEFAULT_PORTS[hop]), "%s.%s_port" % (where, hop))
        ofports[hop] = _int(_get(_get(params, "ofports", {}), hop, DEFAULT_OFPORTS[hop]),
                            "%s.ofports.%s" % (where, hop), 1, 65279)
    if len(set(ports.values())) != len(ports):
        raise ConfigError("%s: the three hops need three different ports, got %s" % (where, ", ".join(ports.values())))
    if len(set(ofports.values())) != len(ofports):
        raise ConfigError("%s.ofports: the three hops need three different OpenFlow port numbers" % where)
    if not _get(params, "uplink_port"):
        raise ConfigError("%s.uplink_port is required: the bridge port towards the internet (the NIC)" % where)
    return {
        "ports": ports,
        "ofports": ofports,
        "uplink_port": _iface(params["uplink_port"], where + ".uplink_port"),
        "vlan": _int(_get(params, "vlan", 4000), where + ".vlan", 1, 4094),
    }


def _openflow(params):
    where = "openflow"
    level = _int(_get(params, "security_level", 1), where + ".security_level", 1, 3)
    if level == 3:
        raise ConfigError("openflow.security_level 3 (the op-dbus design's advanced obfuscation: %s) cannot be done by "
                          "Open vSwitch: %s. Use 1 (the chain's security flows) or 2 (plus TTL normalisation)."
                          % (", ".join(sorted(REFUSED_OBFUSCATION)), "; ".join(REFUSED_OBFUSCATION[k] for k in sorted(REFUSED_OBFUSCATION))))
    for key in sorted(REFUSED_OBFUSCATION):
        if _get(params, key, False):
            raise ConfigError("openflow.%s cannot be done by Open vSwitch: %s" % (key, REFUSED_OBFUSCATION[key]))
    cookie = _get(params, "cookie", 0x0D0B0008)
    try:
        cookie = int(str(cookie), 0) if not isinstance(cookie, int) else cookie
    except ValueError:
        raise ConfigError("openflow.cookie must be an integer (e.g. 0x0d0b0008), got %r" % (cookie,))
    if not 0 < cookie < (1 << 64) - 1:
        raise ConfigError("openflow.cookie must be 1 to 2^64-2")
    return {
        "security_level": level,
        "normalize_ttl": level >= 2,
        "ttl": _int(_get(params, "ttl", 64), where + ".ttl", 1, 255),
        "cookie": cookie,
        "zone": _int(_get(params, "zone", 8), where + ".zone", 0, 65535),
        "new_conn_rate": _int(_get(params, "new_conn_rate", 200), where + ".new_conn_rate", 1, 1000000),
        "new_conn_burst": _int(_get(params, "new_conn_burst", 50), where + ".new_conn_burst", 0, 1000000),
        "meter_base": _int(_get(params, "meter_base", 8), where + ".meter_base", 1, 65000),
    }


def _netmaker(params):
    enabled = bool(_get(params, "enabled", False))
    return {
        "enabled": enabled,
        "port": _iface(_get(params, "port", "nm0"), "netmaker.port"),
        "ofport": _int(_get(params, "ofport", 13), "netmaker.ofport", 1, 65279),
    }


def _containers(params, uplink_gateway):
    where = "containers"
    backend = _get(params, "backend", "lxc")
    if backend != "lxc":
        raise ConfigError("containers.backend %r: the privacy router drives local liblxc containers only (it writes the "
                          "services' files into their root filesystems and speaks to their systemd); on Proxmox VE see "
                          "docs/privacy_router.md" % (backend,))
    out = {"backend": backend, "template": _get(params, "template", "debian"),
           "lxcpath": _get(params, "lxcpath"), "hops": {}}
    seen = set()
    for hop in HOPS:
        given = _get(params, hop, {})
        hwhere = "%s.%s" % (where, hop)
        name = _get(given, "name", DEFAULT_CONTAINERS[hop]["name"])
        if not isinstance(name, str) or not _NAME.match(name):
            raise ConfigError("%s.name %r: 1-63 of A-Z a-z 0-9 _ . -" % (hwhere, name))
        if name in seen:
            raise ConfigError("%s.name %s is used by another hop" % (hwhere, name))
        seen.add(name)
        if not _get(given, "address"):
            raise ConfigError("%s.address is required: the hop's address with prefix on the uplink's network "
                              "(e.g. 192.0.2.10/24)" % hwhere)
        address = _interface(given["address"], hwhere + ".address")
        if address.network.prefixlen < 31 and address.ip in (address.network.network_address, address.network.broadcast_address):
            raise ConfigError("%s.address %s is its network's own or broadcast address, not a host's" % (hwhere, address))
        if uplink_gateway not in address.network:
            raise ConfigError("%s.address %s is not in the network of uplink_gateway %s" % (hwhere, address, uplink_gateway))
        out["hops"][hop] = {
            "name": name,
            "id": _int(_get(given, "id", DEFAULT_CONTAINERS[hop]["id"]), hwhere + ".id", 100, 999999999),
            "hostname": _get(given, "hostname", DEFAULT_CONTAINERS[hop]["hostname"]),
            "address": str(address),
            "ip": str(address.ip),
            "cores": _int(_get(given, "cores", 1), hwhere + ".cores", 1, 8192),
            "memory_mb": _int(_get(given, "memory_mb", 256), hwhere + ".memory_mb", 64, 1 << 20),
        }
    ips = [h["ip"] for h in out["hops"].values()]
    if len(set(ips)) != len(ips) or str(uplink_gateway) in ips:
        raise ConfigError("containers: the hops' addresses must differ from each other and from uplink_gateway")
    return out


def normalize(params):
    """The whole configuration, validated; ConfigError on the first problem."""
    state = params.get("state") or "present"
    bridge = _iface(params.get("bridge"), "bridge")
    gateway = _address(params.get("uplink_gateway"), "uplink_gateway")
    key_dir = params.get("key_dir") or "/etc/opdbus/privacy"
    if not str(key_dir).startswith("/"):
        raise ConfigError("key_dir must be an absolute path, got %r" % (key_dir,))
    cfg = {
        "state": state,
        "bridge": bridge,
        "uplink_gateway": str(gateway),
        "key_dir": str(key_dir).rstrip("/") or "/",
        "sockets": _sockets(params.get("socket_networking")),
        "openflow": _openflow(params.get("openflow")),
        "netmaker": _netmaker(params.get("netmaker")),
        "containers": _containers(params.get("containers"), gateway),
    }
    if state == "absent":
        return cfg
    cfg["wireguard"] = _wireguard(params.get("wireguard"))
    cfg["warp"] = _warp(params.get("warp"))
    cfg["xray"] = _xray(params.get("xray"))
    cfg["vps"] = _vps(params.get("vps"))
    hops = cfg["containers"]["hops"]
    if cfg["wireguard"]["public_endpoint"] is None:
        cfg["wireguard"]["public_endpoint"] = "%s:%d" % (hops["wireguard"]["ip"], cfg["wireguard"]["listen_port"])
    chain_net = ipaddress.IPv4Interface(hops["wireguard"]["address"]).network
    pool = ipaddress.IPv4Network(cfg["wireguard"]["pool"])
    warp_net = ipaddress.IPv4Interface(cfg["warp"]["address"]).network
    if pool.overlaps(chain_net) or pool.overlaps(warp_net) or warp_net.overlaps(chain_net):
        raise ConfigError("the client pool (%s), the WARP address (%s) and the hops' network (%s) must not overlap"
                          % (pool, warp_net, chain_net))
    for name, addr in (("vps.address", cfg["vps"]["address"]), ("warp.endpoint", cfg["warp"]["endpoint_ip"])):
        if ipaddress.IPv4Address(addr) in chain_net or ipaddress.IPv4Address(addr) in pool:
            raise ConfigError("%s %s is inside the chain's own networks; it must be reached through the uplink" % (name, addr))
    if cfg["netmaker"]["enabled"] and cfg["netmaker"]["ofport"] in cfg["sockets"]["ofports"].values():
        raise ConfigError("netmaker.ofport %d is already a hop's OpenFlow port" % cfg["netmaker"]["ofport"])
    return cfg
