# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""openflow_flow through Ansible: one task with a few hundred different flows, read back by ovs-ofctl.

The flows are written the way people write them (shorthands, aliases, masks in both forms, values that
the switch normalises); the module must print each one exactly as `ovs-ofctl -O OpenFlow13 dump-flows
--no-stats` prints it once the switch holds it, must find nothing to do the second time, and
openflow_info must return the same lines.
"""

from __future__ import absolute_import, division, print_function

from conftest import OfSwitch, of_bridge, of_module

COOKIE = 0x0f10
OTHER_COOKIE = 0x0f11

METERS = [
    {"meter_id": 1, "flags": ["pktps", "burst"], "bands": [{"type": "drop", "rate": 200, "burst_size": 50}]},
    {"meter_id": 2, "flags": ["kbps"], "bands": [{"type": "drop", "rate": 1000}]},
]
GROUPS = [
    {"group_id": 1, "type": "all", "buckets": [{"actions": "output:1"}, {"actions": "mod_dl_dst:02:00:00:00:00:09,output:2"}]},
    {"group_id": 2, "type": "select", "buckets": [{"actions": "output:3", "weight": 10}, {"actions": "output:4", "weight": 20}]},
]


def many_flows():
    """Different flows (no two share table, priority and match) over the whole model."""
    f = []
    # in_port, reserved ports, outputs
    outs = ["output:2", "NORMAL", "IN_PORT", "LOCAL", "CONTROLLER", "controller:128", "drop", "output:3,output:4",
            "FLOOD", "ALL", "output:in_port", "local", "controller(max_len=100)", "TABLE"]
    for i, act in enumerate(outs):
        f.append("table=0,priority=%d,in_port=%d,actions=%s" % (1000 + i, i + 1, act))
    f.append("table=0,priority=999,in_port=LOCAL,actions=output:1")
    f.append("in_port=20,actions=output:1")  # default table and priority
    f.append("table=0,priority=0,in_port=21,actions=drop")
    f.append("table=0,priority=65535,in_port=22,actions=drop")
    # Ethernet
    for i in range(8):
        f.append("table=1,priority=%d,dl_src=02:00:00:00:01:%02X,actions=mod_dl_dst:02:00:00:00:02:%02x,output:1" % (900 + i, i, i))
    for i in range(6):
        f.append("table=1,priority=800,dl_dst=02:00:00:00:%02x:00/ff:ff:ff:ff:ff:00,actions=set_field:02:aa:00:00:00:%02x->eth_src,output:2"
                 % (i, i))
    f.append("table=1,priority=799,dl_dst=01:00:00:00:00:00/01:00:00:00:00:00,actions=drop")
    f.append("table=1,priority=798,dl_type=0x88cc,actions=CONTROLLER")
    f.append("table=1,priority=797,dl_type=0x8809,actions=drop")
    f.append("table=1,priority=796,dl_type=0x0800,dl_dst=ff:ff:ff:ff:ff:ff,actions=drop")
    f.append("table=1,priority=795,dl_src=02:00:00:00:00:00/ff:ff:ff:ff:ff:ff,actions=drop")
    # VLANs: dl_vlan, dl_vlan_pcp and the vlan_tci forms
    for vid in (10, 20, 30, 4094):
        f.append("table=2,priority=700,dl_vlan=%d,actions=strip_vlan,output:1" % vid)
    for i in (11, 21):
        f.append("table=2,priority=701,vlan_tci=0x1000/0x1000,dl_src=02:00:00:00:00:%02x,actions=pop_vlan,NORMAL" % i)
    f.append("table=2,priority=702,vlan_tci=0,actions=push_vlan:0x8100,set_field:4196->vlan_vid,output:2")
    f.append("table=2,priority=703,vlan_tci=0x0000/0x1fff,in_port=2,actions=mod_vlan_vid:100,output:3")
    f.append("table=2,priority=704,dl_vlan=5,dl_vlan_pcp=3,actions=mod_vlan_pcp:5,output:2")
    f.append("table=2,priority=705,vlan_tci=0x1010/0x1ff0,actions=output:4")
    f.append("table=2,priority=706,vlan_tci=0x100b/0x1fff,actions=set_vlan_vid:12,output:4")
    f.append("table=2,priority=707,dl_vlan=0xffff,in_port=3,actions=push_vlan:0x88a8,set_field:4097->vlan_vid,output:2")
    f.append("table=2,priority=708,dl_vlan_pcp=7,actions=output:2")
    f.append("table=2,priority=709,dl_vlan=0,actions=output:2")
    # IPv4
    for i in range(20):
        f.append("table=3,priority=%d,ip,nw_src=10.%d.0.0/16,actions=dec_ttl,output:%d" % (600 + i, i, i % 4 + 1))
    for i in range(10):
        f.append("table=3,priority=580,ip,nw_dst=192.168.%d.0/255.255.255.0,actions=mod_nw_ttl:%d,NORMAL" % (i, 10 + i))
    for i in range(6):
        f.append("table=3,priority=570,ip,nw_src=172.16.%d.1,nw_dst=172.17.0.0/16,actions=mod_nw_src:10.9.9.%d,mod_nw_dst:10.8.8.%d,output:1"
                 % (i, i, i))
    f.append("table=3,priority=560,ip,nw_tos=16,actions=mod_nw_tos:32,output:1")
    f.append("table=3,priority=559,ip,ip_dscp=10,actions=mod_nw_ecn:1,output:1")
    f.append("table=3,priority=558,ip,nw_proto=47,actions=drop")
    f.append("table=3,priority=557,ip,nw_src=10.255.0.0/255.255.0.255,actions=drop")
    f.append("table=3,priority=556,ip,nw_dst=10.1.2.3/16,actions=drop")  # the switch keeps 10.1.0.0/16
    f.append("table=3,priority=555,ip,nw_ecn=1,actions=set_field:10.0.0.1->ip_dst,output:2")
    f.append("table=3,priority=554,ip,nw_proto=6,actions=set_field:63->ip_dscp,output:2")
    # TCP, UDP, SCTP
    for port in (22, 80, 443, 8080, 3306, 5432):
        f.append("table=4,priority=500,tcp,tp_dst=%d,actions=output:2" % port)
        f.append("table=4,priority=500,udp,tp_dst=%d,actions=output:3" % port)
        f.append("table=4,priority=500,sctp,tp_dst=%d,actions=output:4" % port)
    for i in range(6):
        f.append("table=4,priority=490,tcp,nw_src=10.0.%d.0/24,tp_src=1024/0xfc00,actions=mod_tp_dst:%d,output:1" % (i, 8000 + i))
    for i in range(4):
        f.append("table=4,priority=480,udp,tp_src=%d,tp_dst=0x1000/0xf000,actions=mod_tp_src:%d,output:1" % (5000 + i, 6000 + i))
    f.append("table=4,priority=470,sctp,tp_src=2905,actions=mod_tp_dst:2906,output:1")
    f.append("table=4,priority=469,tcp6,ipv6_dst=2001:db8::/32,tp_dst=443,actions=output:2")
    f.append("table=4,priority=468,udp6,tp_src=546,tp_dst=547,actions=CONTROLLER")
    f.append("table=4,priority=467,sctp6,tp_dst=9,actions=drop")
    f.append("table=4,priority=466,tcp,tp_dst=0x50,actions=set_field:8080->tp_dst,output:2")
    f.append("table=4,priority=465,sctp,tp_src=0x100/0xff00,actions=output:1")
    f.append("table=4,priority=464,udp6,actions=mod_tp_dst:53,output:2")
    # ICMP and ICMPv6
    for icmp_type, code in ((0, 0), (3, 1), (3, 3), (8, 0), (11, 0), (5, 1)):
        f.append("table=5,priority=450,icmp,icmp_type=%d,icmp_code=%d,actions=output:1" % (icmp_type, code))
    for icmp_type in (128, 129, 133, 134, 135, 136):
        f.append("table=5,priority=440,icmp6,icmp_type=%d,actions=output:2" % icmp_type)
    f.append("table=5,priority=439,icmp6,icmpv6_type=1,icmpv6_code=4,actions=drop")
    f.append("table=5,priority=438,icmp,actions=set_field:3->icmp_type,output:2")
    f.append("table=5,priority=437,ipv6,nw_proto=58,actions=set_field:3->icmpv6_code,output:2")
    # IPv6
    for i in range(8):
        f.append("table=6,priority=%d,ipv6,ipv6_src=2001:db8:%x::/48,actions=dec_ttl,output:1" % (400 + i, i))
    f.append("table=6,priority=390,ipv6,ipv6_dst=fe80::1,actions=LOCAL")
    f.append("table=6,priority=389,ipv6,ipv6_src=2001:db8::/ffff:ffff::,actions=drop")
    f.append("table=6,priority=388,ipv6,ipv6_dst=::1,actions=drop")
    f.append("table=6,priority=387,ipv6,ipv6_src=2001:0db8:0000:0000::0001,actions=set_field:2001:db8::5->ipv6_dst,output:2")
    f.append("table=6,priority=386,ip6,ipv6_dst=2001:db8:1::/ffff:ffff:ffff:ff00::,actions=mod_nw_ttl:3,dec_ttl,output:2")
    # ARP and RARP
    for i in range(6):
        f.append("table=7,priority=350,arp,arp_tpa=10.78.%d.0/24,arp_op=1,actions=NORMAL" % i)
    for i in range(4):
        f.append("table=7,priority=340,arp,arp_spa=10.79.0.%d,arp_sha=02:00:00:00:03:%02x,actions=output:1" % (i, i))
    f.append("table=7,priority=330,arp,arp_op=2,arp_tha=02:00:00:00:04:00/ff:ff:ff:ff:ff:00,actions=output:2")
    f.append("table=7,priority=329,arp,nw_src=10.80.0.1,nw_dst=10.80.0.2,nw_proto=1,actions=output:3")
    f.append("table=7,priority=328,rarp,actions=drop")
    f.append("table=7,priority=327,arp,arp_op=1,actions=set_field:2->arp_op,set_field:10.0.0.1->arp_tpa,"
             "set_field:02:00:00:00:00:01->arp_sha,IN_PORT")
    # conntrack
    f.append("table=8,priority=300,ct_state=-trk,ip,actions=ct(table=9,zone=5)")
    f.append("table=8,priority=300,ct_state=-trk,ipv6,actions=ct(table=9,zone=6)")
    f.append("table=8,priority=299,ip,actions=ct(table=9,zone=NXM_NX_REG1[0..15])")
    f.append("table=9,priority=300,ct_state=+trk+new,ip,actions=ct(commit,zone=5),output:2")
    f.append("table=9,priority=300,ct_state=+trk+est,ip,actions=output:2")
    f.append("table=9,priority=300,ct_state=+trk+inv,ip,actions=drop")
    f.append("table=9,priority=300,ct_state=+trk+rel-inv,ip,actions=output:2")
    f.append("table=9,priority=301,ct_state=+trk+new,tcp,tp_dst=80,actions=ct(commit,zone=5,nat(dst=10.0.0.10:8080)),output:2")
    f.append("table=9,priority=302,ct_state=+trk+new,tcp,tp_dst=81,actions=ct(commit,zone=5,nat(src=192.0.2.1-192.0.2.10:1000-2000)),output:2")
    f.append("table=9,priority=303,ct_state=+trk+new,udp,actions=ct(commit,zone=5,nat(src=192.0.2.1)),output:2")
    f.append("table=9,priority=304,ct_state=+trk+est,tcp,actions=ct(zone=5,nat),output:2")
    f.append("table=9,priority=305,ct_state=+trk+new,ipv6,actions=ct(commit,zone=6),output:2")
    f.append("table=9,priority=306,ct_state=+trk+new,icmp,actions=ct(commit,zone=5,exec(set_field:0x1->ct_mark)),output:2")
    f.append("table=9,priority=307,ct_state=+trk,ct_zone=5,ct_mark=0x1/0xff,ip,actions=output:3")
    f.append("table=9,priority=308,ct_state=+trk,ct_zone=7,ct_mark=0x2,ip,actions=ct_clear,output:3")
    f.append("table=9,priority=309,ct_state=+trk+new,tcp,tp_dst=21,actions=ct(commit,zone=5,alg=ftp),output:2")
    f.append("table=9,priority=310,ct_state=+trk+new,udp,tp_dst=69,actions=ct(commit,zone=5,alg=tftp),output:2")
    f.append("table=9,priority=311,ct_state=+trk+snat,ip,actions=output:1")
    f.append("table=9,priority=312,ct_state=+trk+dnat-snat,ip,actions=output:1")
    f.append("table=9,priority=313,ct_state=+trk+rpl,ip,actions=output:1")
    f.append("table=9,priority=314,ip,actions=ct(commit,zone=NXM_NX_REG0[0..15]),output:1")
    f.append("table=9,priority=315,ip,reg3=7,actions=ct(commit,force,zone=9),output:1")
    f.append("table=9,priority=316,ct_state=0x22,ip,actions=output:1")
    f.append("table=9,priority=317,ct_state=+trk-new-est,ip,actions=output:1")
    f.append("table=9,priority=318,ipv6,actions=ct(commit,nat(src=[2001:db8::1]-[2001:db8::2]:80)),output:2")
    f.append("table=9,priority=319,ip,actions=ct(commit,zone=5,nat(src=10.0.0.1,random,persistent)),output:2")
    f.append("table=9,priority=320,ip,actions=ct(commit,exec(nat(src=10.0.0.1),set_field:0x1->ct_mark)),output:2")
    f.append("table=9,priority=321,ip,actions=ct(commit,table=10,zone=1,exec(set_field:0x2->ct_mark))")
    f.append("table=9,priority=322,ct_zone=0,ct_mark=0/0xffffffff,ip,actions=output:1")
    # metadata, registers, tunnel ids
    for i in range(8):
        f.append("table=10,priority=%d,metadata=0x%x/0xff,actions=output:%d" % (250 + i, i, i % 4 + 1))
    for reg in range(16):
        f.append("table=10,priority=240,reg%d=0x%x/0xff,actions=resubmit(,11)" % (reg, reg + 1))
    for i in range(6):
        f.append("table=10,priority=230,tun_id=0x%x,actions=set_tunnel:0x%x,output:1" % (100 + i, 200 + i))
    f.append("table=10,priority=229,tun_id=0x10/0xf0,actions=output:2")
    f.append("table=10,priority=228,metadata=0x123456789abcdef0,actions=drop")
    f.append("table=10,priority=227,reg0=0x5,reg1=0x10/0xf0,actions=resubmit:3")
    f.append("table=10,priority=226,reg4=1,actions=resubmit(2,12)")
    f.append("table=10,priority=225,reg15=0xffffffff,actions=set_field:5->reg0,set_field:0x100->tun_id,output:2")
    f.append("table=10,priority=224,metadata=0xffffffffffffffff/0xffffffff00000000,actions=set_field:0x1->metadata,output:2")
    f.append("table=10,priority=223,in_port=1,actions=resubmit(,11),resubmit(,12)")
    # instructions
    for i in range(6):
        f.append("table=11,priority=%d,in_port=%d,actions=write_metadata:0x%x/0xff,goto_table:%d" % (200 + i, i + 1, i, 12 + i))
    f.append("table=11,priority=190,ip,actions=write_actions(output:1),goto_table:20")
    f.append("table=11,priority=189,ipv6,actions=clear_actions,goto_table:20")
    f.append("table=11,priority=188,arp,actions=output:1,write_actions(set_field:02:00:00:00:00:99->eth_dst,output:2)")
    f.append("table=11,priority=187,tcp,actions=meter:1,output:2")
    f.append("table=11,priority=186,udp,actions=meter:2,goto_table:30")
    f.append("table=11,priority=185,icmp,actions=meter:1,write_metadata:0x10,goto_table:40")
    f.append("table=11,priority=184,sctp,actions=group:1")
    f.append("table=11,priority=183,dl_type=0x88b5,actions=group:2,output:1")
    f.append("table=11,priority=182,dl_type=0x88b6,actions=write_actions(group:1)")
    f.append("table=11,priority=181,dl_type=0x88b7,actions=clear_actions,write_actions(output:3),write_metadata:0x1/0x1,goto_table:50")
    f.append("table=11,priority=180,ip,nw_proto=17,actions=meter:2,dec_ttl,clear_actions,write_actions(dec_ttl,output:1),"
             "write_metadata:0x1/0x1,goto_table:60")
    # flags and timeouts
    f.append("table=12,priority=10,idle_timeout=300,hard_timeout=600,in_port=1,actions=output:2")
    f.append("table=12,priority=10,send_flow_rem,in_port=2,actions=output:2")
    f.append("table=12,priority=10,check_overlap,in_port=3,actions=output:2")
    f.append("table=12,priority=10,reset_counts,in_port=4,actions=output:2")
    f.append("table=12,priority=10,no_packet_counts,no_byte_counts,in_port=5,actions=output:2")
    # a chain over many tables
    for table in range(20, 60):
        f.append("table=%d,priority=%d,actions=resubmit(,%d)" % (table, table, table + 1))
    # dictionaries
    f.append({"table": 13, "priority": 100, "match": {"in_port": 1, "eth_type": 2048, "ipv4_dst": "10.0.0.0/8"}, "actions": "output:2"})
    f.append({"table": 13, "priority": 100, "match": {"in_port": 2, "eth_type": "0x0800", "ipv4_src": "10.0.0.0/255.0.0.0"},
              "actions": "output:2"})
    f.append({"table": 13, "priority": 101, "match": {"eth_type": 2048, "ip_proto": 6, "tcp_dst": 80}, "actions": ["output:2", "NORMAL"]})
    f.append({"table": 13, "priority": 102, "match": {"dl_vlan": 10}, "actions": "strip_vlan,output:2"})
    f.append({"table": 13, "priority": 103, "idle_timeout": 3000, "flags": ["send_flow_rem"], "match": {}, "actions": "drop"})
    return f


def test_hundreds_of_flows_round_trip_through_ansible(lab, names):
    br = names.bridge()
    switch = of_bridge(lab, br, fail_mode="secure")
    flows = many_flows()
    assert len(flows) >= 200
    assert len(set(repr(f) for f in flows)) == len(flows)
    # A flow of another owner that the task must leave alone.
    switch.add_flows(["cookie=%d,table=99,priority=5,in_port=9,actions=output:1" % OTHER_COOKIE])
    others_before = switch.flows(OTHER_COOKIE)

    args = {"bridge": br, "rundir": str(lab.rundir), "cookie": "0x%x" % COOKIE, "flows": flows,
            "meters": METERS, "groups": GROUPS}
    run = lab.playbook([
        {"name": "apply", "opdbus.infra.openflow_flow": args},
        {"name": "again", "opdbus.infra.openflow_flow": args},
        {"name": "read", "opdbus.infra.openflow_info": {"bridge": br, "rundir": str(lab.rundir), "cookie": COOKIE}},
        {"name": "read all", "opdbus.infra.openflow_info": {"bridge": br, "rundir": str(lab.rundir)}},
    ])
    assert "Traceback" not in run.output, run.output
    assert run.rc == 0, run.output
    applied, again, info, info_all = (run.result(n) for n in ("apply", "again", "read", "read all"))

    oracle = switch.flows(COOKIE)
    assert len(oracle) == len(flows), "the switch holds %d flows of the cookie, the task gave %d" % (len(oracle), len(flows))
    assert applied["changed"] is True
    assert applied["counts"] == {"added": len(flows), "modified": 0, "deleted": 0}
    assert len(applied["changes"]) == len(flows) + len(METERS) + len(GROUPS)
    assert applied["openflow_version"] == "OpenFlow15"
    module_only = sorted(set(applied["flows"]) - set(oracle))
    oracle_only = sorted(set(oracle) - set(applied["flows"]))
    assert not module_only and not oracle_only, "module printed:\n  %s\novs-ofctl printed:\n  %s" % (
        "\n  ".join(module_only), "\n  ".join(oracle_only))
    assert sorted(applied["flows"]) == oracle

    assert again["changed"] is False, again["changes"]
    assert again["changes"] == []
    assert again["counts"] == {"added": 0, "modified": 0, "deleted": 0}
    assert sorted(again["flows"]) == oracle

    assert info["changed"] is False
    assert sorted(f["line"] for f in info["flows"]) == oracle
    assert all(f["flow"]["cookie"] == COOKIE for f in info["flows"])
    everything = switch.flows()
    assert sorted(f["line"] for f in info_all["flows"]) == everything
    assert switch.flows(OTHER_COOKIE) == others_before

    # Meters and groups, as ovs-ofctl reads them.
    meters = switch.meters()
    assert sorted(meters) == [1, 2]
    assert meters[1] == {"flags": ["burst", "pktps"], "bands": [{"type": "drop", "rate": 200, "burst_size": 50}]}
    assert meters[2]["flags"] == ["kbps"] and [(b["type"], b["rate"]) for b in meters[2]["bands"]] == [("drop", 1000)]
    for meter in info["meters"]:
        seen = meters[meter["meter_id"]]
        assert sorted(meter["flags"]) == seen["flags"]
        assert [(b["type"], b["rate"]) for b in meter["bands"]] == [(b["type"], b["rate"]) for b in seen["bands"]]
    assert [g["line"] for g in info["groups"]] == [
        "group_id=1,type=all,bucket=actions=output:1,bucket=actions=set_field:02:00:00:00:00:09->eth_dst,output:2",
        "group_id=2,type=select,bucket=weight:10,actions=output:3,bucket=weight:20,actions=output:4"]
    assert [g["line"] for g in info["groups"]] == switch.groups()


def test_info_on_a_bridge_without_flows_of_the_cookie(lab, names):
    br = names.bridge()
    switch = of_bridge(lab, br, protocols="OpenFlow13")
    switch.add_flows(["cookie=0x5,table=3,priority=7,ip,actions=drop"])
    run = lab.playbook([{"name": "read", "opdbus.infra.openflow_info": {"bridge": br, "rundir": str(lab.rundir), "cookie": 6}},
                        {"name": "table", "opdbus.infra.openflow_info": {"bridge": br, "rundir": str(lab.rundir), "table": 3}}])
    assert run.rc == 0, run.output
    assert run.result("read")["flows"] == []
    assert run.result("read")["openflow_version"] == "OpenFlow13"
    assert [f["line"] for f in run.result("table")["flows"]] == switch.flows(5) == ["cookie=0x5, table=3, priority=7,ip actions=drop"]
    assert OfSwitch(lab, br).flows() == sorted(["cookie=0x5, table=3, priority=7,ip actions=drop", "priority=0 actions=NORMAL"])


def test_target_and_rundir_from_the_environment(lab, names):
    br = names.bridge()
    switch = of_bridge(lab, br)
    flows = ["table=0,priority=10,in_port=1,actions=output:2"]
    by_target = of_module(lab, "openflow_flow", {"bridge": br, "cookie": COOKIE, "flows": flows, "target": "unix:%s" % switch.mgmt}).ok()
    assert by_target["changed"] is True and switch.flows(COOKIE) == sorted(by_target["flows"])
    by_path = of_module(lab, "openflow_flow", {"bridge": br, "cookie": COOKIE, "flows": flows, "target": switch.mgmt}).ok()
    assert by_path["changed"] is False
    from_env = of_module(lab, "openflow_info", {"bridge": br, "cookie": COOKIE, "rundir": None}, env={"OVS_RUNDIR": str(lab.rundir)}).ok()
    assert [f["line"] for f in from_env["flows"]] == switch.flows(COOKIE)
    elsewhere = of_module(lab, "openflow_info", {"bridge": br, "rundir": None}, env={"OVS_RUNDIR": "/nonexistent"}).failed()
    assert "unix:/nonexistent/%s.mgmt" % br in elsewhere["msg"]


def test_info_group_lines_are_what_ovs_ofctl_prints(lab, names):
    br = names.bridge()
    switch = of_bridge(lab, br)
    switch.ofctl("add-group", switch.mgmt, "group_id=5,type=select,bucket=output:1,bucket=weight:7,output:2")
    info = of_module(lab, "openflow_info", {"bridge": br}).ok()
    assert [g["line"] for g in info["groups"]] == switch.groups() == [
        "group_id=5,type=select,bucket=actions=output:1,bucket=weight:7,actions=output:2"]
