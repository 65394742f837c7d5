# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""privacy render: the hops' files, the clients' configurations and the flows for the smoke configuration.

Independent oracles where the host has them: ``nft -c`` (in a fresh network namespace), ``sh -n`` and
``v2ray -test``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil
import subprocess

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import reconcile
from ansible_collections.opdbus.infra.plugins.module_utils.privacy import config, render

UPLINK = 1
PRIV = "/etc/opdbus/privacy"
UNITS = "/etc/systemd/system"
EXPECTED_FILES = {
    "wireguard": [(PRIV + "/wg0.conf", 0o600, True), (PRIV + "/hop-up.sh", 0o755, False), (PRIV + "/rules.nft", 0o644, False),
                  (UNITS + "/opdbus-privacy-wireguard.service", 0o644, False)],
    "warp": [(PRIV + "/wgwarp.conf", 0o600, True), (PRIV + "/hop-up.sh", 0o755, False), (PRIV + "/rules.nft", 0o644, False),
             (UNITS + "/opdbus-privacy-warp.service", 0o644, False)],
    "xray": [(PRIV + "/xray.json", 0o600, True), (PRIV + "/hop-up.sh", 0o755, False), (PRIV + "/rules.nft", 0o644, False),
             (UNITS + "/opdbus-privacy-xray.service", 0o644, False)],
}
XRAY_VARIANTS = {
    "vless-tcp": {"protocol": "vless", "transport": "tcp"},
    "vless-ws-tls": {"protocol": "vless", "transport": "ws", "security": "tls", "server_name": "exit.example.org",
                     "ws_path": "/ray"},
    "vmess-ws": {"protocol": "vmess", "transport": "ws", "ws_path": "/vm"},
}


def _secrets(keys):
    values = [keys["gateway_private"], keys["warp_private"], keys["vps_id"]]
    values += [k["private"] for k in keys["clients"].values() if k.get("private")]
    return values


def _cfg(smoke, level=None, xray=None):
    if level is not None:
        smoke["openflow"]["security_level"] = level
    if xray is not None:
        smoke["xray"] = dict(xray)
    return config.normalize(smoke)


def _file(files, hop, path):
    return dict((entry[0], entry[1]) for entry in files[hop])[path]


# ------------------------------------------------------------------------------------------------
# files
# ------------------------------------------------------------------------------------------------

def test_hop_files_paths_and_modes(smoke, keys):
    files = render.hop_files(_cfg(smoke), keys)
    assert sorted(files) == ["warp", "wireguard", "xray"]
    for hop, expected in EXPECTED_FILES.items():
        assert [(path, mode, secret) for path, text, mode, secret in files[hop]] == expected
        for path, text, mode, secret in files[hop]:
            assert text.endswith("\n")
            if not path.endswith(".json"):
                assert render.MANAGED in text
            if secret:
                assert mode == 0o600


def test_secrets_only_in_secret_files(smoke, keys):
    """A file not flagged secret (and not 0600) holds no secret value."""
    files = render.hop_files(_cfg(smoke), keys)
    for hop in files:
        for path, text, mode, secret in files[hop]:
            holds = [s for s in _secrets(keys) if s in text]
            if holds:
                assert secret and mode == 0o600, (hop, path)


def test_wireguard_conf(smoke, keys):
    conf = _file(render.hop_files(_cfg(smoke), keys), "wireguard", PRIV + "/wg0.conf")
    lines = conf.splitlines()
    assert "PrivateKey = %s" % keys["gateway_private"] in lines
    assert "ListenPort = 51820" in lines
    assert "PublicKey = %s" % keys["clients"]["laptop"]["public"] in lines
    assert "AllowedIPs = 10.200.0.2/32" in lines
    assert lines.count("[Interface]") == 1 and lines.count("[Peer]") == 1
    # wg setconf takes no wg-quick keys
    for word in ("Address", "MTU", "DNS", "PostUp", "Table"):
        assert not any(line.startswith(word + " ") for line in lines)


def test_warp_conf(smoke, keys):
    conf = _file(render.hop_files(_cfg(smoke), keys), "warp", PRIV + "/wgwarp.conf")
    lines = conf.splitlines()
    assert "PrivateKey = %s" % keys["warp_private"] in lines
    assert "PublicKey = %s" % keys["warp_peer_public"] in lines
    assert "Endpoint = 198.51.100.2:2408" in lines
    assert "AllowedIPs = 0.0.0.0/0" in lines
    assert "PersistentKeepalive = 25" in lines
    smoke["warp"]["keepalive"] = 0
    conf = _file(render.hop_files(config.normalize(smoke), keys), "warp", PRIV + "/wgwarp.conf")
    assert "PersistentKeepalive" not in conf


def test_hop_up_scripts_content(smoke, keys):
    files = render.hop_files(_cfg(smoke), keys)
    wg_up = _file(files, "wireguard", PRIV + "/hop-up.sh")
    assert "wg setconf wg0 %s/wg0.conf" % PRIV in wg_up
    assert "ip route replace default via 192.0.2.12 dev eth0 table 100" in wg_up
    assert "ip address replace 10.200.0.1/24 dev wg0" in wg_up
    assert "blackhole" in wg_up
    warp_up = _file(files, "warp", PRIV + "/hop-up.sh")
    assert "ip route replace 198.51.100.2/32 via 192.0.2.254 dev eth0" in warp_up
    assert "ip route replace default dev wgwarp" in warp_up
    assert "blackhole" in warp_up
    xray_up = _file(files, "xray", PRIV + "/hop-up.sh")
    assert "echo 0 > /proc/sys/net/ipv4/ip_forward" in xray_up
    assert "ip route replace default via 192.0.2.11 dev eth0" in xray_up
    assert "ip route replace 10.200.0.0/24 via 192.0.2.10 dev eth0" in xray_up
    for hop in files:
        up = _file(files, hop, PRIV + "/hop-up.sh")
        assert up.startswith("#!/bin/sh\n") and "set -eu" in up and "nft -f %s/rules.nft" % PRIV in up


def test_units(smoke, keys):
    files = render.hop_files(_cfg(smoke), keys)
    for hop, name in render.UNITS.items():
        unit = _file(files, hop, UNITS + "/" + name)
        assert "[Unit]" in unit and "[Service]" in unit and "WantedBy=multi-user.target" in unit
    assert "ExecStart=/usr/bin/wireguard-go -f wg0" in _file(files, "wireguard", UNITS + "/" + render.UNITS["wireguard"])
    assert "ExecStart=/usr/bin/wireguard-go -f wgwarp" in _file(files, "warp", UNITS + "/" + render.UNITS["warp"])
    xray_unit = _file(files, "xray", UNITS + "/" + render.UNITS["xray"])
    assert "ExecStartPre=/usr/bin/v2ray -test -config %s/xray.json" % PRIV in xray_unit
    assert "ExecStart=/usr/bin/v2ray -config %s/xray.json" % PRIV in xray_unit


def test_rules_content(smoke, keys):
    files = render.hop_files(_cfg(smoke), keys)
    wg_rules = _file(files, "wireguard", PRIV + "/rules.nft")
    assert 'iifname "wg0" oifname "eth0" ip saddr 10.200.0.0/24 accept' in wg_rules
    assert "policy drop" in wg_rules
    warp_rules = _file(files, "warp", PRIV + "/rules.nft")
    assert 'iifname "eth0" oifname "wgwarp" ip saddr 192.0.2.12 accept' in warp_rules
    assert 'oifname "wgwarp" masquerade' in warp_rules
    xray_rules = _file(files, "xray", PRIV + "/rules.nft")
    assert "redirect to :12345" in xray_rules and "tcp dport 12345 accept" in xray_rules
    for hop in files:
        rules = _file(files, hop, PRIV + "/rules.nft")
        assert rules.startswith(render.MANAGED + "table inet opdbus_privacy\ndelete table inet opdbus_privacy\n")


# ------------------------------------------------------------------------------------------------
# redaction
# ------------------------------------------------------------------------------------------------

def test_redacted_keys(keys):
    before = json.dumps(keys, sort_keys=True)
    red = render.redacted_keys(keys)
    assert json.dumps(keys, sort_keys=True) == before  # the real keys are untouched
    assert red["gateway_public"] == keys["gateway_public"] and red["warp_peer_public"] == keys["warp_peer_public"]
    assert red["clients"]["laptop"]["public"] == keys["clients"]["laptop"]["public"]
    text = json.dumps(red)
    for secret in _secrets(keys):
        assert secret not in text
    assert red["vps_id"] == "<secret: VPS id>"
    assert red["clients"]["laptop"]["private"] == "<secret: private key of client laptop>"


def test_redacted_keys_client_without_private(keys):
    keys["clients"]["phone"] = {"private": None, "public": keys["gateway_public"]}
    assert render.redacted_keys(keys)["clients"]["phone"] == {"private": None, "public": keys["gateway_public"]}


@pytest.mark.parametrize("variant", sorted(XRAY_VARIANTS))
def test_redacted_rendering_holds_no_secret(smoke, keys, variant):
    cfg = _cfg(smoke, xray=XRAY_VARIANTS[variant])
    red = render.redacted_keys(keys)
    files = render.hop_files(cfg, red)
    real = render.hop_files(cfg, keys)
    for hop in files:
        for (path, text, mode, secret), (rpath, rtext, rmode, rsecret) in zip(files[hop], real[hop]):
            assert (path, mode, secret) == (rpath, rmode, rsecret)
            for value in _secrets(keys):
                assert value not in text, (hop, path)
            if secret:
                assert "<secret: " in text and text != rtext
            else:
                assert text == rtext
    client = render.client_config(cfg, red, cfg["wireguard"]["clients"][0])
    for value in _secrets(keys):
        assert value not in client
    assert "PrivateKey = <secret: private key of client laptop>" in client
    assert "PublicKey = %s" % keys["gateway_public"] in client


# ------------------------------------------------------------------------------------------------
# clients
# ------------------------------------------------------------------------------------------------

def test_client_config(smoke, keys):
    cfg = _cfg(smoke)
    text = render.client_config(cfg, keys, cfg["wireguard"]["clients"][0])
    lines = text.splitlines()
    for line in ("[Interface]", "PrivateKey = %s" % keys["clients"]["laptop"]["private"], "Address = 10.200.0.2/32",
                 "MTU = 1380", "[Peer]", "PublicKey = %s" % keys["gateway_public"], "Endpoint = 192.0.2.10:51820",
                 "AllowedIPs = 0.0.0.0/0", "PersistentKeepalive = 25"):
        assert line in lines
    assert keys["gateway_private"] not in text


def test_client_config_with_own_key(smoke, keys):
    cfg = _cfg(smoke)
    keys["clients"]["laptop"]["private"] = None
    assert render.client_config(cfg, keys, cfg["wireguard"]["clients"][0]) is None
    assert render.client_config(cfg, render.redacted_keys(keys), cfg["wireguard"]["clients"][0]) is None


# ------------------------------------------------------------------------------------------------
# xray
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", sorted(XRAY_VARIANTS))
def test_xray_config_structure(smoke, keys, variant):
    cfg = _cfg(smoke, xray=XRAY_VARIANTS[variant])
    text = render.xray_config(cfg, keys)
    assert _file(render.hop_files(cfg, keys), "xray", PRIV + "/xray.json") == text
    doc = json.loads(text)
    inbound, = doc["inbounds"]
    assert inbound["protocol"] == "dokodemo-door" and inbound["port"] == 12345
    assert inbound["settings"] == {"network": "tcp", "followRedirect": True}
    outbound, = doc["outbounds"]
    assert outbound["protocol"] == cfg["xray"]["protocol"]
    server, = outbound["settings"]["vnext"]
    assert (server["address"], server["port"]) == ("203.0.113.10", 443)
    user, = server["users"]
    assert user["id"] == keys["vps_id"]
    if cfg["xray"]["protocol"] == "vless":
        assert user["encryption"] == "none"
        assert "alterId" not in user
    else:
        assert user["alterId"] == 0
        assert "encryption" not in user
    stream = outbound["streamSettings"]
    assert stream["network"] == cfg["xray"]["transport"] and stream["security"] == cfg["xray"]["security"]
    if cfg["xray"]["transport"] == "ws":
        assert stream["wsSettings"] == {"path": cfg["xray"]["ws_path"]}
    else:
        assert "wsSettings" not in stream
    if cfg["xray"]["security"] == "tls":
        assert stream["tlsSettings"] == {"serverName": "exit.example.org", "allowInsecure": False}
    else:
        assert "tlsSettings" not in stream


@pytest.mark.parametrize("variant", sorted(XRAY_VARIANTS))
def test_xray_config_v2ray_accepts(smoke, keys, variant, tmp_path):
    binary = shutil.which("v2ray")
    if binary is None:
        pytest.skip("v2ray is not installed")
    path = tmp_path / "xray.json"
    path.write_text(render.xray_config(_cfg(smoke, xray=XRAY_VARIANTS[variant]), keys))
    proc = subprocess.run([binary, "-test", "-config", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    assert "Configuration OK" in proc.stdout


# ------------------------------------------------------------------------------------------------
# oracles: nft and sh
# ------------------------------------------------------------------------------------------------

def _nft_or_skip():
    if os.geteuid() != 0:
        pytest.skip("nft -c needs root (a network namespace and netlink)")
    nft, unshare = shutil.which("nft"), shutil.which("unshare")
    if nft is None or unshare is None:
        pytest.skip("nft or unshare is not installed")
    probe = subprocess.run([unshare, "-n", "true"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30, check=False)
    if probe.returncode != 0:
        pytest.skip("cannot make a network namespace here")
    return nft, unshare


@pytest.mark.parametrize("hop", ["wireguard", "warp", "xray"])
def test_rules_nft_check(smoke, keys, hop, tmp_path):
    nft, unshare = _nft_or_skip()
    path = tmp_path / "rules.nft"
    path.write_text(_file(render.hop_files(_cfg(smoke), keys), hop, PRIV + "/rules.nft"))
    proc = subprocess.run([unshare, "-n", nft, "-c", "-f", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout


@pytest.mark.parametrize("hop", ["wireguard", "warp", "xray"])
def test_rules_nft_loads_twice(smoke, keys, hop, tmp_path):
    """Loaded for real (in a throwaway namespace) twice in a row: the declare/delete/declare replaces the table."""
    nft, unshare = _nft_or_skip()
    path = tmp_path / "rules.nft"
    path.write_text(_file(render.hop_files(_cfg(smoke), keys), hop, PRIV + "/rules.nft"))
    script = "ip link add eth0 type dummy 2>/dev/null; %(n)s -f %(p)s && %(n)s -f %(p)s && %(n)s list ruleset" % {
        "n": nft, "p": str(path)}
    proc = subprocess.run([unshare, "-n", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          timeout=60, universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout
    assert proc.stdout.count("table inet opdbus_privacy") == 1, proc.stdout


@pytest.mark.parametrize("hop", ["wireguard", "warp", "xray"])
def test_hop_up_sh_syntax(smoke, keys, hop, tmp_path):
    shell = shutil.which("sh")
    if shell is None:
        pytest.skip("no sh")
    path = tmp_path / "hop-up.sh"
    path.write_text(_file(render.hop_files(_cfg(smoke), keys), hop, PRIV + "/hop-up.sh"))
    proc = subprocess.run([shell, "-n", str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30,
                          universal_newlines=True, check=False)
    assert proc.returncode == 0, proc.stdout


# ------------------------------------------------------------------------------------------------
# flows
# ------------------------------------------------------------------------------------------------

def _parsed(cfg):
    """The flows' lines and what the OpenFlow module's own parser makes of them (with the meters)."""
    lines, meters = render.flows(cfg, UPLINK)
    desired = reconcile.normalize_desired({"cookie": cfg["openflow"]["cookie"], "flows": lines, "meters": meters,
                                           "exclusive": True})
    return lines, desired


def _actions(flow):
    out = []
    for instruction in flow["instructions"]:
        out.extend(instruction.get("actions", []))
    return out


def _meter_ids(flow):
    return [i["meter_id"] for i in flow["instructions"] if i["type"] == "meter"]


@pytest.mark.parametrize("level", [1, 2])
def test_flows_parse(smoke, level):
    cfg = _cfg(smoke, level=level)
    lines, desired = _parsed(cfg)
    assert len(desired["flows"]) == len(lines) == 33
    assert all("cookie" not in line for line in lines)
    assert all(flow["cookie"] == cfg["openflow"]["cookie"] for flow in desired["flows"])
    assert desired["exclusive"] is True
    assert [m["meter_id"] for m in desired["meters"]] == [8, 9, 10]
    for meter in desired["meters"]:
        assert meter["bands"] == [{"type": "drop", "rate": 200, "burst_size": 50}]
        assert sorted(meter["flags"]) == ["burst", "pktps"]
    used = set()
    for flow in desired["flows"]:
        used.update(_meter_ids(flow))
    assert used == {8, 9, 10}
    # every table ends in a catch-all
    for table in (0, 1, 2):
        assert any(f["table"] == table and not f["match"] for f in desired["flows"])


def test_flows_follow_options(smoke):
    smoke["openflow"].update({"zone": 77, "ttl": 128, "meter_base": 100, "new_conn_rate": 5, "new_conn_burst": 0})
    smoke["socket_networking"]["ofports"] = {"wireguard": 20, "xray": 21, "warp": 22}
    cfg = config.normalize(smoke)
    desired = _parsed(cfg)[1]
    assert [m["meter_id"] for m in desired["meters"]] == [100, 101, 102]
    assert all(a["zone"] == 77 for f in desired["flows"] for a in _actions(f) if a["type"] == "ct")
    assert all(a["ttl"] == 128 for f in desired["flows"] for a in _actions(f) if a["type"] == "set_nw_ttl")
    ports = set(f["match"]["in_port"] for f in desired["flows"] if "in_port" in f["match"])
    assert ports == {UPLINK, 20, 21, 22}


def _outputs_to(flow, port):
    return any(a["type"] == "output" and a["port"] == port for a in _actions(flow))


def test_level_2_normalises_ttl_on_every_ip_output_to_the_uplink(smoke):
    desired = _parsed(_cfg(smoke, level=2))[1]
    to_uplink = [f for f in desired["flows"] if _outputs_to(f, UPLINK)]
    ip_to_uplink = [f for f in to_uplink if f["match"].get("eth_type") == 0x0800]
    assert len(ip_to_uplink) == 3
    for flow in ip_to_uplink:
        kinds = [a["type"] for a in _actions(flow)]
        assert "set_nw_ttl" in kinds
        assert kinds.index("set_nw_ttl") < kinds.index("output")
        assert [a["ttl"] for a in _actions(flow) if a["type"] == "set_nw_ttl"] == [64]
    # ARP has no TTL
    for flow in to_uplink:
        if flow["match"].get("eth_type") == 0x0806:
            assert "set_nw_ttl" not in [a["type"] for a in _actions(flow)]
    # only towards the uplink
    for flow in desired["flows"]:
        if "set_nw_ttl" in [a["type"] for a in _actions(flow)]:
            assert _outputs_to(flow, UPLINK)


def test_level_1_has_no_ttl_rewrite(smoke):
    lines, desired = _parsed(_cfg(smoke, level=1))
    assert not any("mod_nw_ttl" in line for line in lines)
    assert not any(a["type"] == "set_nw_ttl" for f in desired["flows"] for a in _actions(f))


def test_new_connections_restricted_per_hop(smoke):
    cfg = _cfg(smoke)
    desired = _parsed(cfg)[1]
    w, x, a = 10, 12, 11
    new = [f for f in desired["flows"] if f["table"] == 1 and (f["match"].get("ct_state", {}).get("value", 0) & 0x21) == 0x21]
    by_port = dict((f["match"]["in_port"], f) for f in new)
    assert sorted(by_port) == [w, a, x] and len(new) == 3
    # the gateway: only the clients' pool, only to XRay, metered
    gw = by_port[w]
    assert gw["match"]["ipv4_src"] == {"value": "10.200.0.0", "mask": "255.255.255.0"}
    assert _outputs_to(gw, x) and not _outputs_to(gw, UPLINK) and _meter_ids(gw) == [8]
    # XRay: only TCP from itself to the VPS's address and port, only to WARP
    xr = by_port[x]["match"]
    assert (xr["ip_proto"], xr["ipv4_src"], xr["ipv4_dst"], xr["tcp_dst"]) == (6, "192.0.2.12", "203.0.113.10", 443)
    assert _outputs_to(by_port[x], a) and not _outputs_to(by_port[x], UPLINK) and _meter_ids(by_port[x]) == [9]
    # WARP: only UDP from itself to the endpoint's address and port, only to the uplink
    wa = by_port[a]["match"]
    assert (wa["ip_proto"], wa["ipv4_src"], wa["ipv4_dst"], wa["udp_dst"]) == (17, "192.0.2.11", "198.51.100.2", 2408)
    assert _outputs_to(by_port[a], UPLINK) and _meter_ids(by_port[a]) == [10]
    for flow in new:
        assert any(act["type"] == "ct" and act["commit"] for act in _actions(flow))


def test_hops_cannot_start_anything_else(smoke):
    """In table 1, every other flow a hop's packet can hit needs an established or related connection, or drops."""
    cfg = _cfg(smoke)
    desired = _parsed(cfg)[1]
    est, rel, trk = 0x02, 0x04, 0x20
    for flow in desired["flows"]:
        if flow["table"] != 1 or flow["priority"] == 200:
            continue
        acts = _actions(flow)
        if not [act for act in acts if act["type"] == "output"]:
            continue  # drop
        state = flow["match"]["ct_state"]
        assert state["value"] & trk and state["value"] & (est | rel), flow
    # only the WARP hop ever reaches the uplink through table 1
    for flow in desired["flows"]:
        if flow["table"] == 1 and _outputs_to(flow, UPLINK):
            assert flow["match"]["in_port"] == 11
    # table 0: from a hop, IP goes through conntrack, the rest is dropped (but ARP to neighbours and the WireGuard port)
    for port in (10, 11, 12):
        mine = [f for f in desired["flows"] if f["table"] == 0 and f["match"].get("in_port") == port]
        catch = [f for f in mine if f["priority"] == 100]
        assert len(catch) == 1 and not _actions(catch[0])
        for flow in mine:
            if flow["priority"] == 300 and flow["match"].get("eth_type") == 0x0800:
                assert port == 10 and flow["match"]["ip_proto"] == 17 and flow["match"]["udp_src"] == 51820
