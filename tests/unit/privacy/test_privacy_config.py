# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""privacy config: normalize() of the smoke configuration and every refusal, never echoing a secret."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import wireguard
from ansible_collections.opdbus.infra.plugins.module_utils.privacy import config

VPS_ID = "6f1c2a1e-7f0e-4a51-9a37-2f9d8d1f0b11"
# A valid private key for warp.private_key, present in every configuration below.
WARP_PRIVATE = wireguard.hex_to_b64("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
CLIENT_PUBLIC = wireguard.hex_to_b64("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
BAD_KEY = base64.b64encode(b"31 bytes of a secret, not 32!!!").decode("ascii")
BAD_ID = "secret-but-not-a-uuid-3f1c2a1e"
DELETE = object()
# Every message starts with the option (or group of options) it is about.
OPTION_ROOTS = ("bridge", "uplink_gateway", "key_dir", "socket_networking", "openflow", "netmaker", "containers", "wireguard",
                "warp", "xray", "vps", "the client pool")


def _set(params, path, value):
    node = params
    for key in path[:-1]:
        node = node.setdefault(key, {})
    if value is DELETE:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value


def _with(smoke, *changes):
    smoke["warp"]["private_key"] = WARP_PRIVATE
    for path, value in changes:
        _set(smoke, path, value)
    return smoke


def _refused(params, *fragments):
    with pytest.raises(config.ConfigError) as err:
        config.normalize(params)
    message = str(err.value)
    assert message.startswith(OPTION_ROOTS), message
    for fragment in fragments:
        assert fragment in message, message
    for secret in (VPS_ID, WARP_PRIVATE, BAD_KEY, BAD_ID, BAD_KEY.rstrip("=")):
        assert secret not in message, message
    return message


def test_smoke_config(smoke):
    cfg = config.normalize(smoke)
    assert cfg["state"] == "present"
    assert cfg["bridge"] == "ovs-br0"
    assert cfg["uplink_gateway"] == "192.0.2.254"
    assert cfg["key_dir"] == "/etc/opdbus/privacy"
    assert cfg["sockets"] == {"ports": {"wireguard": "priv_wg", "warp": "priv_warp", "xray": "priv_xray"},
                              "ofports": {"wireguard": 10, "warp": 11, "xray": 12},
                              "uplink_port": "upl0", "vlan": 4000}
    assert cfg["openflow"] == {"security_level": 2, "normalize_ttl": True, "ttl": 64, "cookie": 0x0D0B0008, "zone": 8,
                               "new_conn_rate": 200, "new_conn_burst": 50, "meter_base": 8}
    assert cfg["netmaker"] == {"enabled": False, "port": "nm0", "ofport": 13}
    hops = cfg["containers"]["hops"]
    assert cfg["containers"]["backend"] == "lxc"
    assert {hop: (h["name"], h["id"], h["ip"], h["address"]) for hop, h in hops.items()} == {
        "wireguard": ("ct100", 100, "192.0.2.10", "192.0.2.10/24"),
        "warp": ("ct101", 101, "192.0.2.11", "192.0.2.11/24"),
        "xray": ("ct102", 102, "192.0.2.12", "192.0.2.12/24"),
    }
    assert cfg["wireguard"] == {
        "listen_port": 51820, "address": "10.200.0.1/24", "gateway_ip": "10.200.0.1", "pool": "10.200.0.0/24",
        "mtu": 1380, "interface": "wg0", "public_endpoint": "192.0.2.10:51820",
        "clients": [{"name": "laptop", "address": "10.200.0.2", "public_key": None}],
    }
    assert cfg["warp"] == {
        "endpoint_ip": "198.51.100.2", "endpoint_port": 2408, "public_key": smoke["warp"]["public_key"],
        "public_key_file": None, "private_key": None, "private_key_file": None, "address": "172.16.0.2/32",
        "mtu": 1280, "keepalive": 25, "interface": "wgwarp",
    }
    assert cfg["xray"] == {"protocol": "vless", "transport": "tcp", "security": "none", "ws_path": "/", "server_name": None,
                           "allow_insecure": False, "local_port": 12345, "binary": "/usr/bin/v2ray"}
    assert cfg["vps"] == {"address": "203.0.113.10", "port": 443, "id": VPS_ID, "id_file": None}


def test_level_1_does_not_normalize_ttl(smoke):
    smoke["openflow"]["security_level"] = 1
    assert config.normalize(smoke)["openflow"]["normalize_ttl"] is False
    del smoke["openflow"]
    assert config.normalize(smoke)["openflow"]["security_level"] == 1


def test_full_options(smoke):
    params = _with(smoke,
                   (("wireguard", "public_endpoint"), "198.51.100.50:443"),
                   (("wireguard", "address"), "10.9.0.1/30"),
                   (("wireguard", "clients"), [{"name": "phone.1", "address": "10.9.0.2", "public_key": " %s\n" % CLIENT_PUBLIC}]),
                   (("xray", "protocol"), "vmess"), (("xray", "transport"), "ws"), (("xray", "security"), "tls"),
                   (("xray", "server_name"), "exit.example.org"), (("xray", "ws_path"), "/a/b_c-d.e~"),
                   (("vps", "id"), "  %s  " % VPS_ID.upper()),
                   (("openflow", "cookie"), "0x10"),
                   (("netmaker", "enabled"), True), (("netmaker", "ofport"), 20),
                   (("key_dir",), "/srv/keys/"))
    cfg = config.normalize(params)
    assert cfg["wireguard"]["public_endpoint"] == "198.51.100.50:443"
    assert cfg["wireguard"]["pool"] == "10.9.0.0/30"
    assert cfg["wireguard"]["clients"] == [{"name": "phone.1", "address": "10.9.0.2", "public_key": CLIENT_PUBLIC}]
    assert cfg["warp"]["private_key"] == WARP_PRIVATE
    assert cfg["xray"]["server_name"] == "exit.example.org" and cfg["xray"]["ws_path"] == "/a/b_c-d.e~"
    assert cfg["vps"]["id"] == VPS_ID
    assert cfg["openflow"]["cookie"] == 16
    assert cfg["netmaker"]["enabled"] is True
    assert cfg["key_dir"] == "/srv/keys"


def test_secret_files(smoke):
    params = _with(smoke, (("warp", "public_key"), None), (("warp", "public_key_file"), "/etc/warp.pub"),
                   (("warp", "private_key"), None), (("warp", "private_key_file"), "/etc/warp.key"),
                   (("vps", "id"), DELETE), (("vps", "id_file"), "/etc/vps.id"))
    cfg = config.normalize(params)
    assert (cfg["warp"]["public_key"], cfg["warp"]["public_key_file"]) == (None, "/etc/warp.pub")
    assert (cfg["warp"]["private_key"], cfg["warp"]["private_key_file"]) == (None, "/etc/warp.key")
    assert (cfg["vps"]["id"], cfg["vps"]["id_file"]) == (None, "/etc/vps.id")


def test_state_absent_needs_less(smoke):
    params = {"state": "absent", "bridge": smoke["bridge"], "uplink_gateway": smoke["uplink_gateway"],
              "socket_networking": smoke["socket_networking"], "containers": smoke["containers"]}
    cfg = config.normalize(params)
    assert cfg["state"] == "absent"
    assert sorted(cfg) == ["bridge", "containers", "key_dir", "netmaker", "openflow", "sockets", "state", "uplink_gateway"]
    # the same without warp/vps is refused for present
    params["state"] = "present"
    _refused(params, "warp.endpoint")


def test_security_level_3_refused_with_reasons(smoke):
    smoke["openflow"]["security_level"] = 3
    message = _refused(smoke, "openflow.security_level 3")
    for word in ("padding", "timing", "morphing", "cannot be done by Open vSwitch"):
        assert word in message
    for reason in config.REFUSED_OBFUSCATION.values():
        assert reason in message


@pytest.mark.parametrize("key", ["padding", "timing", "morphing"])
def test_obfuscation_refused_with_reason(smoke, key):
    smoke["openflow"][key] = True
    message = _refused(smoke, "openflow.%s" % key, "cannot be done by Open vSwitch")
    assert config.REFUSED_OBFUSCATION[key] in message
    smoke["openflow"][key] = False
    config.normalize(smoke)


ERRORS = [
    # top level
    ([(("bridge",), DELETE)], ["bridge"]),
    ([(("bridge",), "a-bridge-name-far-too-long")], ["bridge"]),
    ([(("bridge",), "br 0")], ["bridge"]),
    ([(("uplink_gateway",), "gateway")], ["uplink_gateway"]),
    ([(("uplink_gateway",), DELETE)], ["uplink_gateway"]),
    ([(("key_dir",), "relative/keys")], ["key_dir"]),
    # socket_networking
    ([(("socket_networking", "uplink_port"), DELETE)], ["socket_networking.uplink_port"]),
    ([(("socket_networking", "uplink_port"), "bad/name")], ["socket_networking.uplink_port"]),
    ([(("socket_networking", "xray_port"), "priv_wg")], ["socket_networking", "three different ports"]),
    ([(("socket_networking", "warp_port"), "x" * 16)], ["socket_networking.warp_port"]),
    ([(("socket_networking", "ofports"), {"xray": 10})], ["socket_networking.ofports", "three different OpenFlow"]),
    ([(("socket_networking", "ofports"), {"warp": 0})], ["socket_networking.ofports.warp"]),
    ([(("socket_networking", "ofports"), {"wireguard": 65280})], ["socket_networking.ofports.wireguard"]),
    ([(("socket_networking", "ofports"), {"xray": "twelve"})], ["socket_networking.ofports.xray"]),
    ([(("socket_networking", "vlan"), 4095)], ["socket_networking.vlan"]),
    ([(("socket_networking", "vlan"), 0)], ["socket_networking.vlan"]),
    # openflow
    ([(("openflow", "security_level"), 0)], ["openflow.security_level"]),
    ([(("openflow", "security_level"), 4)], ["openflow.security_level"]),
    ([(("openflow", "security_level"), "high")], ["openflow.security_level"]),
    ([(("openflow", "cookie"), "zz")], ["openflow.cookie"]),
    ([(("openflow", "cookie"), 0)], ["openflow.cookie"]),
    ([(("openflow", "cookie"), (1 << 64) - 1)], ["openflow.cookie"]),
    ([(("openflow", "cookie"), -5)], ["openflow.cookie"]),
    ([(("openflow", "ttl"), 0)], ["openflow.ttl"]),
    ([(("openflow", "ttl"), 256)], ["openflow.ttl"]),
    ([(("openflow", "zone"), 65536)], ["openflow.zone"]),
    ([(("openflow", "new_conn_rate"), 0)], ["openflow.new_conn_rate"]),
    ([(("openflow", "new_conn_burst"), -1)], ["openflow.new_conn_burst"]),
    ([(("openflow", "meter_base"), 0)], ["openflow.meter_base"]),
    # netmaker
    ([(("netmaker", "port"), "bad port")], ["netmaker.port"]),
    ([(("netmaker", "ofport"), 0)], ["netmaker.ofport"]),
    ([(("netmaker", "enabled"), True), (("netmaker", "ofport"), 11)], ["netmaker.ofport 11", "hop's OpenFlow port"]),
    # containers
    ([(("containers", "backend"), "proxmox")], ["containers.backend"]),
    ([(("containers", "wireguard", "name"), "bad name")], ["containers.wireguard.name"]),
    ([(("containers", "wireguard", "name"), 100)], ["containers.wireguard.name"]),
    ([(("containers", "xray", "name"), "ct100")], ["containers.xray.name", "another hop"]),
    ([(("containers", "warp", "address"), DELETE)], ["containers.warp.address is required"]),
    ([(("containers", "warp", "address"), "192.0.2.11")], ["containers.warp.address", "prefix"]),
    ([(("containers", "warp", "address"), "192.0.2.300/24")], ["containers.warp.address"]),
    ([(("containers", "xray", "address"), "10.1.1.1/24")], ["containers.xray.address", "uplink_gateway"]),
    ([(("containers", "xray", "address"), "192.0.2.10/24")], ["containers", "differ"]),
    ([(("containers", "warp", "address"), "192.0.2.254/24")], ["containers", "uplink_gateway"]),
    ([(("containers", "wireguard", "id"), 99)], ["containers.wireguard.id"]),
    ([(("containers", "warp", "cores"), 0)], ["containers.warp.cores"]),
    ([(("containers", "xray", "memory_mb"), 32)], ["containers.xray.memory_mb"]),
    ([(("containers",), DELETE)], ["containers.wireguard.address is required"]),
    # wireguard
    ([(("wireguard", "address"), "10.200.0.1/31")], ["wireguard.address", "no room"]),
    ([(("wireguard", "address"), "10.200.0.1/32")], ["wireguard.address", "no room"]),
    ([(("wireguard", "address"), "10.200.0.1")], ["wireguard.address", "prefix"]),
    ([(("wireguard", "address"), "fd00::1/64")], ["wireguard.address"]),
    ([(("wireguard", "listen_port"), 0)], ["wireguard.listen_port"]),
    ([(("wireguard", "listen_port"), 65536)], ["wireguard.listen_port"]),
    ([(("wireguard", "listen_port"), "wg")], ["wireguard.listen_port"]),
    ([(("wireguard", "mtu"), 1500)], ["wireguard.mtu"]),
    ([(("wireguard", "mtu"), 1279)], ["wireguard.mtu"]),
    ([(("wireguard", "interface"), "wg/0")], ["wireguard.interface"]),
    ([(("wireguard", "public_endpoint"), "198.51.100.50")], ["wireguard.public_endpoint"]),
    ([(("wireguard", "public_endpoint"), "vpn.example.org:51820")], ["wireguard.public_endpoint (address)"]),
    ([(("wireguard", "public_endpoint"), "198.51.100.50:0")], ["wireguard.public_endpoint (port)"]),
    ([(("wireguard", "public_endpoint"), ":51820")], ["wireguard.public_endpoint"]),
    ([(("wireguard", "clients"), ["laptop"])], ["wireguard.clients[0]"]),
    ([(("wireguard", "clients"), [{"address": "10.200.0.2"}])], ["wireguard.clients[0].name"]),
    ([(("wireguard", "clients"), [{"name": "../etc", "address": "10.200.0.2"}])], ["wireguard.clients[0].name"]),
    ([(("wireguard", "clients"), [{"name": "a" * 64, "address": "10.200.0.2"}])], ["wireguard.clients[0].name"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.200.0.2"}, {"name": "laptop", "address": "10.200.0.3"}])],
     ["wireguard.clients[1].name laptop", "used twice"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.201.0.2"}])],
     ["wireguard.clients[0].address 10.201.0.2", "not a host address of the pool 10.200.0.0/24"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.200.0.0"}])], ["wireguard.clients[0].address", "pool"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.200.0.255"}])], ["wireguard.clients[0].address", "pool"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.200.0.1"}])], ["wireguard.clients[0].address", "already taken"]),
    ([(("wireguard", "clients"), [{"name": "a", "address": "10.200.0.2"}, {"name": "b", "address": "10.200.0.2"}])],
     ["wireguard.clients[1].address", "already taken"]),
    ([(("wireguard", "clients"), [{"name": "laptop"}])], ["wireguard.clients[0].address"]),
    ([(("wireguard", "clients"), [{"name": "laptop", "address": "10.200.0.2", "public_key": BAD_KEY}])],
     ["wireguard.clients[0].public_key"]),
    # warp
    ([(("warp", "endpoint"), DELETE)], ["warp.endpoint is required"]),
    ([(("warp", "endpoint"), "198.51.100.2")], ["warp.endpoint"]),
    ([(("warp", "endpoint"), "engage.cloudflareclient.com:2408")], ["warp.endpoint (address)"]),
    ([(("warp", "endpoint"), "198.51.100.2:99999")], ["warp.endpoint (port)"]),
    ([(("warp", "public_key"), DELETE)], ["warp", "public_key"]),
    ([(("warp", "public_key"), BAD_KEY)], ["warp.public_key"]),
    ([(("warp", "public_key_file"), "/etc/warp.pub")], ["warp", "not both"]),
    ([(("warp", "public_key"), DELETE), (("warp", "public_key_file"), "warp.pub")], ["warp.public_key_file", "absolute"]),
    ([(("warp", "private_key"), BAD_KEY)], ["warp.private_key", "31 bytes"]),
    ([(("warp", "private_key"), "!!" + WARP_PRIVATE[2:])], ["warp.private_key", "not base64"]),
    ([(("warp", "private_key_file"), "/etc/warp.key")], ["warp", "private_key_file", "not both"]),
    ([(("warp", "private_key"), DELETE), (("warp", "private_key_file"), "keys/warp")], ["warp.private_key_file"]),
    ([(("warp", "address"), "172.16.0.2")], ["warp.address"]),
    ([(("warp", "mtu"), 9000)], ["warp.mtu"]),
    ([(("warp", "keepalive"), -1)], ["warp.keepalive"]),
    ([(("warp", "interface"), "")], ["warp.interface"]),
    # xray
    ([(("xray", "protocol"), "trojan")], ["xray.protocol"]),
    ([(("xray", "transport"), "grpc")], ["xray.transport"]),
    ([(("xray", "security"), "reality")], ["xray.security"]),
    ([(("xray", "ws_path"), "ray")], ["xray.ws_path"]),
    ([(("xray", "ws_path"), "/a b")], ["xray.ws_path"]),
    ([(("xray", "server_name"), "not a name!")], ["xray.server_name"]),
    ([(("xray", "server_name"), "-bad.example")], ["xray.server_name"]),
    ([(("xray", "security"), "tls")], ["xray.security=tls", "server_name"]),
    ([(("xray", "binary"), "v2ray")], ["xray.binary"]),
    ([(("xray", "local_port"), 0)], ["xray.local_port"]),
    # vps
    ([(("vps", "address"), DELETE)], ["vps.address is required"]),
    ([(("vps", "address"), "vps.example.org")], ["vps.address"]),
    ([(("vps", "id"), DELETE)], ["vps", "id_file"]),
    ([(("vps", "id"), BAD_ID)], ["vps.id", "not a UUID"]),
    ([(("vps", "id_file"), "/etc/vps.id")], ["vps", "not both"]),
    ([(("vps", "id"), DELETE), (("vps", "id_file"), "vps.id")], ["vps.id_file", "absolute"]),
    ([(("vps", "port"), 0)], ["vps.port"]),
    ([(("vps", "port"), "https")], ["vps.port"]),
    # the networks
    ([(("wireguard", "address"), "192.0.2.1/24"), (("wireguard", "clients"), [])], ["the client pool (192.0.2.0/24)", "must not overlap"]),
    ([(("wireguard", "address"), "172.16.0.1/12"), (("wireguard", "clients"), [])], ["the client pool (172.16.0.0/12)", "must not overlap"]),
    ([(("warp", "address"), "10.200.0.99/32")], ["the client pool", "must not overlap"]),
    ([(("warp", "address"), "192.0.2.50/32")], ["the client pool", "must not overlap"]),
    ([(("warp", "address"), "10.0.0.2/8")], ["the client pool", "must not overlap"]),
    ([(("vps", "address"), "192.0.2.100")], ["vps.address 192.0.2.100", "chain's own networks"]),
    ([(("vps", "address"), "10.200.0.100")], ["vps.address", "chain's own networks"]),
    ([(("warp", "endpoint"), "192.0.2.100:2408")], ["warp.endpoint 192.0.2.100", "chain's own networks"]),
    ([(("warp", "endpoint"), "10.200.0.100:2408")], ["warp.endpoint", "chain's own networks"]),
]


@pytest.mark.parametrize("changes, fragments", ERRORS, ids=["%d-%s" % (pos, ".".join(changes[0][0])) for pos, (changes, fragments) in
                                                            enumerate(ERRORS)])
def test_refused(smoke, changes, fragments):
    _refused(_with(smoke, *changes), *fragments)


@pytest.mark.parametrize("path, value", [
    (("vps", "id"), BAD_ID),
    (("vps", "id"), VPS_ID + "0"),
    (("vps", "id"), VPS_ID[:-1]),
    (("warp", "private_key"), BAD_KEY),
    (("warp", "private_key"), WARP_PRIVATE + "AAAA"),
    (("warp", "private_key"), WARP_PRIVATE[:-2]),
    (("warp", "private_key"), WARP_PRIVATE.replace("+", "-").replace("/", "_") + "\u00e9"),
])
def test_bad_secret_never_in_message(smoke, path, value):
    params = _with(smoke, (path, value))
    with pytest.raises(config.ConfigError) as err:
        config.normalize(params)
    message = str(err.value)
    assert ".".join(path) in message
    assert value not in message and value.strip("=") not in message
    assert VPS_ID not in message and WARP_PRIVATE not in message


def test_valid_secrets_never_in_later_messages(smoke):
    """An error found after the secrets were read (the networks) still holds none of them."""
    params = _with(smoke, (("vps", "address"), "192.0.2.100"))
    message = _refused(params, "vps.address")
    assert VPS_ID not in message and WARP_PRIVATE not in message


def test_wireguard_slash_30_leaves_one_client(smoke):
    smoke["wireguard"] = {"address": "10.9.0.1/30", "clients": [{"name": "only", "address": "10.9.0.2"}]}
    assert config.normalize(smoke)["wireguard"]["clients"][0]["address"] == "10.9.0.2"
    smoke["wireguard"]["clients"].append({"name": "two", "address": "10.9.0.3"})
    _refused(smoke, "wireguard.clients[1].address", "pool")


def test_no_clients(smoke):
    del smoke["wireguard"]
    cfg = config.normalize(smoke)
    assert cfg["wireguard"]["clients"] == [] and cfg["wireguard"]["address"] == "10.200.0.1/24"
