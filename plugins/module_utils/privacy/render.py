# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything the privacy chain writes, as text: the hops' files, their units, the clients'
configurations and the bridge's flows. Pure functions of the configuration and the keys, so a
plan can be compared byte for byte with what is on disk, and rendered again with placeholders
instead of secrets for diffs.

``keys`` holds: ``gateway_private``, ``gateway_public``, ``warp_private``, ``warp_peer_public``,
``vps_id`` and ``clients`` = {name: {'private': str|None, 'public': str}}.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

PRIV_DIR = "/etc/opdbus/privacy"
UNIT_DIR = "/etc/systemd/system"
UNITS = {"wireguard": "opdbus-privacy-wireguard.service", "warp": "opdbus-privacy-warp.service",
         "xray": "opdbus-privacy-xray.service"}
MANAGED = "# Managed by opdbus.infra.privacy_router; changes are overwritten.\n"
SECRET = "<secret: %s>"
NFT_TABLE = "opdbus_privacy"


def redacted_keys(keys):
    """``keys`` with every secret replaced by a placeholder naming it (public keys stay)."""
    out = dict(keys)
    out["gateway_private"] = SECRET % "gateway private key"
    out["warp_private"] = SECRET % "WARP private key"
    out["vps_id"] = SECRET % "VPS id"
    out["clients"] = dict((name, dict(k, private=(SECRET % ("private key of client " + name)) if k.get("private") else None))
                          for name, k in keys["clients"].items())
    return out


def _wait_socket(ifname):
    return ("n=0\n"
            "while [ ! -S /var/run/wireguard/%(i)s.sock ]; do\n"
            "    n=$((n + 1))\n"
            "    if [ \"$n\" -gt 100 ]; then echo \"%(i)s: no control socket after 10 s\" >&2; exit 1; fi\n"
            "    sleep 0.1\n"
            "done\n") % {"i": ifname}


def _nft(body):
    # Declaring, deleting and declaring again in one `nft -f` replaces the table atomically.
    return (MANAGED + "table inet %(t)s\ndelete table inet %(t)s\ntable inet %(t)s {\n%(b)s}\n"
            % {"t": NFT_TABLE, "b": body})


def _unit(description, service, install=True):
    text = "%s[Unit]\nDescription=%s\nAfter=network.target\n\n[Service]\n%s" % (MANAGED, description, service)
    if install:
        text += "\n[Install]\nWantedBy=multi-user.target\n"
    return text


def _hop_files(hop, conf_name, conf, up, rules, unit):
    """A hop's files: (path in the container, text, mode, holds secrets)."""
    return [
        (PRIV_DIR + "/" + conf_name, conf, 0o600, True),
        (PRIV_DIR + "/hop-up.sh", up, 0o755, False),
        (PRIV_DIR + "/rules.nft", rules, 0o644, False),
        (UNIT_DIR + "/" + UNITS[hop], unit, 0o644, False),
    ]


def _wireguard_hop_files(hop, role, ifname, conf, up, rules):
    """A WireGuard hop: wireguard-go in the foreground as the unit's main process, hop-up.sh once its socket is there."""
    unit = _unit("opdbus privacy chain: %s (%s)" % (role, ifname),
                 "Type=simple\nEnvironment=LOG_LEVEL=error\nExecStart=/usr/bin/wireguard-go -f %s\n"
                 "ExecStartPost=/bin/sh %s/hop-up.sh\nRestart=on-failure\nRestartSec=2\n" % (ifname, PRIV_DIR))
    return _hop_files(hop, "%s.conf" % ifname, conf, up, rules, unit)


def wireguard_hop(cfg, keys):
    wg, hops = cfg["wireguard"], cfg["containers"]["hops"]
    ifname = wg["interface"]
    conf = "%s[Interface]\nPrivateKey = %s\nListenPort = %d\n" % (MANAGED, keys["gateway_private"], wg["listen_port"])
    for client in wg["clients"]:
        conf += "\n[Peer]\n# client %s\nPublicKey = %s\nAllowedIPs = %s/32\n" % (
            client["name"], keys["clients"][client["name"]]["public"], client["address"])
    up = ("#!/bin/sh\n" + MANAGED + "# The WireGuard gateway hop: clients' traffic from %(i)s goes to the XRay hop only.\nset -eu\n"
          + _wait_socket(ifname)
          + "wg setconf %(i)s %(d)s/%(i)s.conf\n"
            "ip address replace %(addr)s dev %(i)s\n"
            "ip link set dev %(i)s mtu %(mtu)d up\n"
            "# rules and routes first, forwarding last: no moment where a client's packet meets the main table\n"
            "nft -f %(d)s/rules.nft\n"
            "ip rule del priority 100 2>/dev/null || true\n"
            "ip rule add iif %(i)s lookup 100 priority 100\n"
            "ip route replace default via %(next)s dev eth0 table 100\n"
            "# fail-closed: with the next hop's route gone, clients' packets hit this, never the main table\n"
            "ip route replace blackhole default metric 4096 table 100\n"
            "echo 1 > /proc/sys/net/ipv4/ip_forward\n") % {
        "i": ifname, "d": PRIV_DIR, "addr": wg["address"], "mtu": wg["mtu"], "next": hops["xray"]["ip"]}
    rules = _nft("    chain forward {\n"
                 "        type filter hook forward priority 0; policy drop;\n"
                 "        tcp flags syn tcp option maxseg size set rt mtu\n"
                 "        iifname \"%(i)s\" oifname \"eth0\" ip saddr %(pool)s accept\n"
                 "        iifname \"eth0\" oifname \"%(i)s\" ct state established,related accept\n"
                 "    }\n" % {"i": ifname, "pool": wg["pool"]})
    return _wireguard_hop_files("wireguard", "WireGuard gateway", ifname, conf, up, rules)


def warp_hop(cfg, keys):
    warp, hops = cfg["warp"], cfg["containers"]["hops"]
    ifname = warp["interface"]
    conf = ("%s[Interface]\nPrivateKey = %s\n\n[Peer]\nPublicKey = %s\nEndpoint = %s:%d\nAllowedIPs = 0.0.0.0/0\n"
            % (MANAGED, keys["warp_private"], keys["warp_peer_public"], warp["endpoint_ip"], warp["endpoint_port"]))
    if warp["keepalive"]:
        conf += "PersistentKeepalive = %d\n" % warp["keepalive"]
    up = ("#!/bin/sh\n" + MANAGED + "# The WARP hop: everything it forwards leaves through %(i)s, or not at all.\nset -eu\n"
          + _wait_socket(ifname)
          + "wg setconf %(i)s %(d)s/%(i)s.conf\n"
            "ip address replace %(addr)s dev %(i)s\n"
            "ip link set dev %(i)s mtu %(mtu)d up\n"
            "# rules and routes first, forwarding last\n"
            "nft -f %(d)s/rules.nft\n"
            "ip route replace %(ep)s/32 via %(gw)s dev eth0\n"
            "ip route replace default dev %(i)s\n"
            "# fail-closed: with the tunnel gone its default route goes too, and this one is left\n"
            "ip route replace blackhole default metric 4096\n"
            "echo 1 > /proc/sys/net/ipv4/ip_forward\n") % {
        "i": ifname, "d": PRIV_DIR, "addr": warp["address"], "mtu": warp["mtu"], "ep": warp["endpoint_ip"],
        "gw": cfg["uplink_gateway"]}
    rules = _nft("    chain forward {\n"
                 "        type filter hook forward priority 0; policy drop;\n"
                 "        tcp flags syn tcp option maxseg size set rt mtu\n"
                 "        iifname \"eth0\" oifname \"%(i)s\" ip saddr %(prev)s accept\n"
                 "        iifname \"%(i)s\" oifname \"eth0\" ct state established,related accept\n"
                 "    }\n"
                 "    chain postrouting {\n"
                 "        type nat hook postrouting priority srcnat; policy accept;\n"
                 "        oifname \"%(i)s\" masquerade\n"
                 "    }\n" % {"i": ifname, "prev": hops["xray"]["ip"]})
    return _wireguard_hop_files("warp", "WARP tunnel", ifname, conf, up, rules)


def xray_config(cfg, keys):
    """One configuration both xray and v2ray (v4 JSON) accept."""
    xray, vps = cfg["xray"], cfg["vps"]
    if xray["protocol"] == "vless":
        user = {"id": keys["vps_id"], "encryption": "none"}
    else:
        user = {"id": keys["vps_id"], "alterId": 0, "security": "auto"}
    stream = {"network": xray["transport"], "security": xray["security"]}
    if xray["transport"] == "ws":
        stream["wsSettings"] = {"path": xray["ws_path"]}
    if xray["security"] == "tls":
        stream["tlsSettings"] = {"serverName": xray["server_name"], "allowInsecure": xray["allow_insecure"]}
    config = {
        "log": {"loglevel": "warning"},
        "inbounds": [{
            "tag": "clients", "listen": "0.0.0.0", "port": xray["local_port"], "protocol": "dokodemo-door",
            "settings": {"network": "tcp", "followRedirect": True},
        }],
        "outbounds": [{
            "tag": "vps", "protocol": xray["protocol"],
            "settings": {"vnext": [{"address": vps["address"], "port": vps["port"], "users": [user]}]},
            "streamSettings": stream,
        }],
    }
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def xray_hop(cfg, keys):
    xray, hops, wg = cfg["xray"], cfg["containers"]["hops"], cfg["wireguard"]
    up = ("#!/bin/sh\n" + MANAGED + "# The XRay hop: it never forwards; only its own proxy talks to the VPS, through the WARP hop.\n"
          "set -eu\n"
          "echo 0 > /proc/sys/net/ipv4/ip_forward\n"
          "ip route replace default via %(next)s dev eth0\n"
          "ip route replace %(pool)s via %(prev)s dev eth0\n"
          "nft -f %(d)s/rules.nft\n") % {"next": hops["warp"]["ip"], "prev": hops["wireguard"]["ip"], "pool": wg["pool"],
                                         "d": PRIV_DIR}
    rules = _nft("    chain prerouting {\n"
                 "        type nat hook prerouting priority dstnat; policy accept;\n"
                 "        iifname \"eth0\" ip saddr %(pool)s meta l4proto tcp redirect to :%(port)d\n"
                 "    }\n"
                 "    chain input {\n"
                 "        type filter hook input priority 0; policy drop;\n"
                 "        iif \"lo\" accept\n"
                 "        ct state established,related accept\n"
                 "        iifname \"eth0\" ip saddr %(pool)s tcp dport %(port)d accept\n"
                 "    }\n" % {"pool": wg["pool"], "port": xray["local_port"]})
    conf_path = PRIV_DIR + "/xray.json"
    unit = _unit("opdbus privacy chain: XRay client to the VPS",
                 "Type=simple\nExecStartPre=/bin/sh %(d)s/hop-up.sh\nExecStartPre=%(b)s -test -config %(c)s\n"
                 "ExecStart=%(b)s -config %(c)s\nRestart=on-failure\nRestartSec=2\n"
                 % {"d": PRIV_DIR, "b": xray["binary"], "c": conf_path})
    return _hop_files("xray", "xray.json", xray_config(cfg, keys), up, rules, unit)


HOP_FILES = {"wireguard": wireguard_hop, "warp": warp_hop, "xray": xray_hop}


def hop_files(cfg, keys):
    """{hop: [(path in the container, text, mode, secret)]}."""
    return dict((hop, func(cfg, keys)) for hop, func in HOP_FILES.items())


def client_config(cfg, keys, client):
    """A wg-quick configuration for one client (None when the client brought its own key)."""
    private = keys["clients"][client["name"]].get("private")
    if not private:
        return None
    wg = cfg["wireguard"]
    return ("# opdbus.infra privacy chain: client %s\n[Interface]\nPrivateKey = %s\nAddress = %s/32\nMTU = %d\n\n"
            "[Peer]\nPublicKey = %s\nEndpoint = %s\nAllowedIPs = 0.0.0.0/0\nPersistentKeepalive = 25\n"
            % (client["name"], private, client["address"], wg["mtu"], keys["gateway_public"], wg["public_endpoint"]))


# ------------------------------------------------------------------------------------------------
# flows
# ------------------------------------------------------------------------------------------------

def flows(cfg, uplink_ofport):
    """The bridge's flows for the chain (ovs-ofctl syntax, without cookie) and its meters.

    table 0 classifies: the clients' WireGuard to and from the gateway (stateless, by address and
    port), ARP only between neighbours (by target address), IP from the hops and the uplink through
    conntrack; anything else from a hop is dropped. table 1 (from the hops): a new connection may
    only go one way - clients' traffic gateway -> XRay, XRay's connection to the VPS -> WARP, WARP's
    tunnel to its endpoint -> uplink; established traffic follows, replies and ICMP errors go back.
    table 2 (from the uplink): replies to the WARP tunnel -> WARP, the rest -> NORMAL.
    """
    of = cfg["openflow"]
    ports = cfg["sockets"]["ofports"]
    hops = cfg["containers"]["hops"]
    w, x, a, u = ports["wireguard"], ports["xray"], ports["warp"], uplink_ofport
    zone = of["zone"]
    ttl = "mod_nw_ttl:%d," % of["ttl"] if of["normalize_ttl"] else ""
    commit = "ct(commit,zone=%d)" % zone
    meter = dict((hop, of["meter_base"] + pos) for pos, hop in enumerate(("wireguard", "xray", "warp")))
    wg = cfg["wireguard"]
    values = {"w": w, "x": x, "a": a, "u": u, "z": zone, "ttl": ttl, "commit": commit,
              "w_ip": hops["wireguard"]["ip"], "x_ip": hops["xray"]["ip"], "a_ip": hops["warp"]["ip"],
              "gw": cfg["uplink_gateway"], "lp": wg["listen_port"], "pool": wg["pool"],
              "vps": cfg["vps"]["address"], "vps_port": cfg["vps"]["port"],
              "ep": cfg["warp"]["endpoint_ip"], "ep_port": cfg["warp"]["endpoint_port"],
              "mw": meter["wireguard"], "mx": meter["xray"], "ma": meter["warp"]}
    lines = [
        # clients <-> the gateway's WireGuard port, through the uplink
        "table=0,priority=300,udp,in_port=%(u)s,nw_dst=%(w_ip)s,tp_dst=%(lp)s,actions=output:%(w)s",
        "table=0,priority=300,udp,in_port=%(w)s,nw_src=%(w_ip)s,tp_src=%(lp)s,actions=%(ttl)soutput:%(u)s",
        # ARP between neighbours only
        "table=0,priority=300,arp,in_port=%(u)s,arp_tpa=%(w_ip)s,actions=output:%(w)s",
        "table=0,priority=300,arp,in_port=%(u)s,arp_tpa=%(a_ip)s,actions=output:%(a)s",
        "table=0,priority=300,arp,in_port=%(w)s,arp_tpa=%(gw)s,actions=output:%(u)s",
        "table=0,priority=300,arp,in_port=%(w)s,arp_tpa=%(x_ip)s,actions=output:%(x)s",
        "table=0,priority=300,arp,in_port=%(x)s,arp_tpa=%(w_ip)s,actions=output:%(w)s",
        "table=0,priority=300,arp,in_port=%(x)s,arp_tpa=%(a_ip)s,actions=output:%(a)s",
        "table=0,priority=300,arp,in_port=%(a)s,arp_tpa=%(x_ip)s,actions=output:%(x)s",
        "table=0,priority=300,arp,in_port=%(a)s,arp_tpa=%(gw)s,actions=output:%(u)s",
        # IP through conntrack
        "table=0,priority=200,ip,in_port=%(w)s,actions=ct(table=1,zone=%(z)s)",
        "table=0,priority=200,ip,in_port=%(x)s,actions=ct(table=1,zone=%(z)s)",
        "table=0,priority=200,ip,in_port=%(a)s,actions=ct(table=1,zone=%(z)s)",
        "table=0,priority=200,ip,in_port=%(u)s,actions=ct(table=2,zone=%(z)s)",
        # everything else from a hop
        "table=0,priority=100,in_port=%(w)s,actions=drop",
        "table=0,priority=100,in_port=%(x)s,actions=drop",
        "table=0,priority=100,in_port=%(a)s,actions=drop",
        "table=0,priority=1,actions=NORMAL",
        "table=1,priority=300,ct_state=+inv+trk,ip,actions=drop",
        # new connections: one direction per hop, and only what that hop exists to send
        "table=1,priority=200,ct_state=+new+trk,ip,in_port=%(w)s,nw_src=%(pool)s,actions=meter:%(mw)s,%(commit)s,output:%(x)s",
        "table=1,priority=200,ct_state=+new+trk,tcp,in_port=%(x)s,nw_src=%(x_ip)s,nw_dst=%(vps)s,tp_dst=%(vps_port)s,"
        "actions=meter:%(mx)s,%(commit)s,output:%(a)s",
        "table=1,priority=200,ct_state=+new+trk,udp,in_port=%(a)s,nw_src=%(a_ip)s,nw_dst=%(ep)s,tp_dst=%(ep_port)s,"
        "actions=meter:%(ma)s,%(commit)s,%(ttl)soutput:%(u)s",
        # established, in the connection's direction
        "table=1,priority=150,ct_state=+est-rpl+trk,ip,in_port=%(w)s,actions=output:%(x)s",
        "table=1,priority=150,ct_state=+est-rpl+trk,ip,in_port=%(x)s,actions=output:%(a)s",
        "table=1,priority=150,ct_state=+est-rpl+trk,ip,in_port=%(a)s,actions=%(ttl)soutput:%(u)s",
        # replies and ICMP errors back towards the client
        "table=1,priority=150,ct_state=+est+rpl+trk,ip,in_port=%(x)s,actions=output:%(w)s",
        "table=1,priority=150,ct_state=+est+rpl+trk,ip,in_port=%(a)s,actions=output:%(x)s",
        "table=1,priority=140,ct_state=+rel+trk,icmp,in_port=%(x)s,actions=output:%(w)s",
        "table=1,priority=140,ct_state=+rel+trk,icmp,in_port=%(a)s,actions=output:%(x)s",
        "table=1,priority=0,actions=drop",
        "table=2,priority=200,ct_state=+est+rpl+trk,ip,actions=output:%(a)s",
        "table=2,priority=190,ct_state=+rel+trk,icmp,actions=output:%(a)s",
        "table=2,priority=0,actions=NORMAL",
    ]
    band = {"type": "drop", "rate": of["new_conn_rate"], "burst_size": of["new_conn_burst"]}
    meters = [{"meter_id": meter[hop], "flags": ["pktps", "burst"], "bands": [dict(band)]} for hop in ("wireguard", "xray", "warp")]
    return [line % values for line in lines], meters
