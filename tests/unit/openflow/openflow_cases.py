"""Shared test data: flows, meters and groups in the codec's canonical form.

FLOWS pairs each flow with the line ``ovs-ofctl -O OpenFlow13 --no-stats
--no-names dump-flows`` prints for it once Open vSwitch 3.1 has it: the
oracle the real-switch tests check against.
"""

from ansible_collections.opdbus.infra.plugins.module_utils.openflow.codec import (
    OFPP_ALL, OFPP_CONTROLLER, OFPP_FLOOD, OFPP_IN_PORT, OFPP_LOCAL, OFPP_NORMAL,
)

NAT_NONE = {"type": None, "ip_min": None, "ip_max": None, "port_min": None, "port_max": None,
            "persistent": False, "random": False, "hash": False}


def apply(*actions):
    return {"type": "apply_actions", "actions": list(actions)}


def output(port, **kw):
    return dict({"type": "output", "port": port}, **kw)


FLOWS = [
    ({"table": 0, "priority": 100, "cookie": 0x10,
      "match": {"in_port": 1, "eth_type": 0x0800, "ip_proto": 6, "tcp_dst": 80,
                "ipv4_src": {"value": "10.0.0.0", "mask": "255.255.255.0"}, "ipv4_dst": "10.1.2.3"},
      "instructions": [apply(output(2)), {"type": "goto_table", "table": 1}]},
     "cookie=0x10, priority=100,tcp,in_port=1,nw_src=10.0.0.0/24,nw_dst=10.1.2.3,tp_dst=80 "
     "actions=output:2,goto_table:1"),
    ({"table": 0, "priority": 90, "cookie": 0x11, "idle_timeout": 300, "hard_timeout": 600,
      "flags": ["check_overlap", "send_flow_rem"],
      "match": {"eth_dst": "aa:bb:cc:dd:ee:ff", "eth_src": {"value": "00:11:22:00:00:00", "mask": "ff:ff:ff:00:00:00"},
                "vlan_vid": 10, "vlan_pcp": 3},
      "instructions": [apply({"type": "pop_vlan"}, output(OFPP_CONTROLLER, max_len=128))]},
     "cookie=0x11, idle_timeout=300, hard_timeout=600, send_flow_rem check_overlap priority=90,dl_vlan=10,"
     "dl_vlan_pcp=3,dl_src=00:11:22:00:00:00/ff:ff:ff:00:00:00,dl_dst=aa:bb:cc:dd:ee:ff "
     "actions=pop_vlan,CONTROLLER:128"),
    ({"table": 0, "priority": 80, "cookie": 0x12, "match": {"vlan_vid": "untagged"},
      "instructions": [apply({"type": "push_vlan", "ethertype": 0x8100},
                             {"type": "set_field", "field": "vlan_vid", "value": 20}, output(OFPP_NORMAL))]},
     "cookie=0x12, priority=80,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4116->vlan_vid,NORMAL"),
    ({"table": 0, "priority": 70, "cookie": 0x13, "match": {"vlan_vid": "tagged"},
      "instructions": [apply(output(OFPP_FLOOD))]},
     "cookie=0x13, priority=70,vlan_tci=0x1000/0x1000 actions=FLOOD"),
    ({"table": 0, "priority": 60, "cookie": 0x14, "match": {"vlan_vid": {"value": 16, "mask": 0xff0}},
      "instructions": []},
     "cookie=0x14, priority=60,vlan_tci=0x1010/0x1ff0 actions=drop"),
    ({"table": 1, "priority": 100, "cookie": 0x20,
      "match": {"eth_type": 0x0800, "ip_dscp": 46, "ip_ecn": 1, "ip_proto": 17, "udp_src": 53},
      "instructions": [apply({"type": "dec_nw_ttl"}, {"type": "set_nw_ttl", "ttl": 9},
                             {"type": "set_field", "field": "ipv4_dst", "value": "192.168.1.1"},
                             output(OFPP_IN_PORT))]},
     "cookie=0x20, table=1, priority=100,udp,nw_tos=184,nw_ecn=1,tp_src=53 "
     "actions=dec_ttl,mod_nw_ttl:9,set_field:192.168.1.1->ip_dst,IN_PORT"),
    ({"table": 1, "priority": 99, "cookie": 0x21, "match": {"eth_type": 0x0800, "ip_proto": 132, "sctp_dst": 99},
      "instructions": [{"type": "clear_actions"}, {"type": "write_actions", "actions": [output(3)]}]},
     "cookie=0x21, table=1, priority=99,sctp,tp_dst=99 actions=clear_actions,write_actions(output:3)"),
    ({"table": 1, "priority": 98, "cookie": 0x22,
      "match": {"eth_type": 0x0800, "ip_proto": 1, "icmpv4_type": 8, "icmpv4_code": 0},
      "instructions": [{"type": "write_metadata", "metadata": 0x1234, "mask": 0xffff},
                       {"type": "goto_table", "table": 2}]},
     "cookie=0x22, table=1, priority=98,icmp,icmp_type=8,icmp_code=0 actions=write_metadata:0x1234/0xffff,"
     "goto_table:2"),
    ({"table": 1, "priority": 97, "cookie": 0x23,
      "match": {"eth_type": 0x0806, "arp_op": 1, "arp_spa": "10.0.0.1",
                "arp_tpa": {"value": "10.0.0.0", "mask": "255.0.0.0"}, "arp_sha": "00:00:00:00:00:01",
                "arp_tha": {"value": "00:00:00:00:00:00", "mask": "ff:00:00:00:00:00"}},
      "instructions": [apply(output(OFPP_ALL))]},
     "cookie=0x23, table=1, priority=97,arp,arp_spa=10.0.0.1,arp_tpa=10.0.0.0/8,arp_op=1,"
     "arp_sha=00:00:00:00:00:01,arp_tha=00:00:00:00:00:00/ff:00:00:00:00:00 actions=ALL"),
    ({"table": 1, "priority": 96, "cookie": 0x24,
      "match": {"eth_type": 0x86dd, "ipv6_src": {"value": "2001:db8::", "mask": "ffff:ffff::"},
                "ipv6_dst": "2001:db8::1", "ip_proto": 58, "icmpv6_type": 128, "icmpv6_code": 0},
      "instructions": [apply(output(OFPP_LOCAL))]},
     "cookie=0x24, table=1, priority=96,icmp6,ipv6_src=2001:db8::/32,ipv6_dst=2001:db8::1,icmp_type=128,"
     "icmp_code=0 actions=LOCAL"),
    ({"table": 2, "priority": 100, "cookie": 0x30,
      "match": {"metadata": {"value": 0x1234, "mask": 0xffff}, "tunnel_id": {"value": 0x50, "mask": 0xff},
                "reg0": 5, "reg3": {"value": 0x10, "mask": 0xf0}, "reg15": 7},
      "instructions": [apply({"type": "resubmit", "port": None, "table": 3},
                             {"type": "resubmit", "port": 5, "table": None},
                             {"type": "set_field", "field": "reg1", "value": 99})]},
     "cookie=0x30, table=2, priority=100,reg0=0x5,reg3=0x10/0xf0,reg15=0x7,tun_id=0x50/0xff,"
     "metadata=0x1234/0xffff actions=resubmit(,3),resubmit:5,set_field:0x63->reg1"),
    ({"table": 3, "priority": 100, "cookie": 0x40,
      "match": {"eth_type": 0x0800, "ct_state": {"value": 0x00, "mask": 0x20}},
      "instructions": [apply({"type": "ct", "commit": False, "zone": 7, "table": 4, "alg": None, "nat": None})]},
     "cookie=0x40, table=3, priority=100,ct_state=-trk,ip actions=ct(table=4,zone=7)"),
    ({"table": 4, "priority": 100, "cookie": 0x41,
      "match": {"eth_type": 0x0800, "ip_proto": 6, "ct_state": {"value": 0x21, "mask": 0x21}, "ct_zone": 7,
                "ct_mark": {"value": 1, "mask": 0xff}},
      "instructions": [apply({"type": "ct", "commit": True, "zone": {"field": "reg4", "ofs": 0, "nbits": 16},
                              "table": None, "alg": 21,
                              "nat": {"type": "src", "ip_min": "10.0.0.1", "ip_max": "10.0.0.9", "port_min": 1000,
                                      "port_max": 2000, "persistent": True, "random": True, "hash": False},
                              "exec": [{"type": "set_field", "field": "ct_mark", "value": 1}]},
                             {"type": "ct_clear"}, output(1))]},
     "cookie=0x41, table=4, priority=100,ct_state=+new+trk,ct_zone=7,ct_mark=0x1/0xff,tcp "
     "actions=ct(commit,zone=NXM_NX_REG4[0..15],nat(src=10.0.0.1-10.0.0.9:1000-2000,persistent,random),"
     "exec(set_field:0x1->ct_mark),alg=ftp),ct_clear,output:1"),
    ({"table": 4, "priority": 99, "cookie": 0x42,
      "match": {"eth_type": 0x0800, "ct_state": {"value": 0x22, "mask": 0x22}},
      "instructions": [apply({"type": "ct", "commit": False, "zone": 0, "table": 5, "alg": None,
                              "nat": dict(NAT_NONE)})]},
     "cookie=0x42, table=4, priority=99,ct_state=+est+trk,ip actions=ct(table=5,nat)"),
    ({"table": 4, "priority": 98, "cookie": 0x43,
      "match": {"eth_type": 0x86dd, "ct_state": {"value": 0x21, "mask": 0x21}},
      "instructions": [apply({"type": "ct", "commit": True, "zone": 1, "table": None, "alg": None,
                              "nat": dict(NAT_NONE, type="dst", ip_min="2001:db8::1", port_min=80,
                                          hash=True)})]},
     "cookie=0x43, table=4, priority=98,ct_state=+new+trk,ipv6 actions=ct(commit,zone=1,"
     "nat(dst=[2001:db8::1]:80,hash))"),
    ({"table": 5, "priority": 1, "cookie": 0x50, "flags": ["no_byte_counts", "no_packet_counts", "reset_counts"],
      "match": {}, "instructions": []},
     "cookie=0x50, table=5, reset_counts no_packet_counts no_byte_counts priority=1 actions=drop"),
    # Flows Open vSwitch reports back differently (see codec.normalize_flow).
    ({"table": 6, "priority": 10, "cookie": 0x60,
      "match": {"eth_type": 0x800, "reg1": {"value": 0, "mask": 0}, "reg2": {"value": 0xffffffff, "mask": 0xffffffff}},
      "instructions": [{"type": "goto_table", "table": 7}, apply(output(OFPP_CONTROLLER))]},
     "cookie=0x60, table=6, priority=10,ip,reg2=0xffffffff actions=CONTROLLER:65535,goto_table:7"),
    ({"table": 6, "priority": 11, "cookie": 0x61, "match": {"eth_dst": "aa:bb:cc:dd:ee:ff"},
      "instructions": [apply()]},
     "cookie=0x61, table=6, priority=11,dl_dst=aa:bb:cc:dd:ee:ff actions=drop"),
    ({"table": 6, "priority": 12, "cookie": 0x62, "match": {"eth_type": 0x86dd},
      "instructions": [{"type": "write_actions", "actions": [
          output(3), {"type": "set_field", "field": "eth_dst", "value": "00:00:00:00:00:09"}]}]},
     "cookie=0x62, table=6, priority=12,ipv6 actions=write_actions(output:3,set_field:00:00:00:00:00:09->eth_dst)"),
    ({"table": 6, "priority": 13, "cookie": 0x63, "match": {"in_port": OFPP_LOCAL, "eth_type": 0x800},
      "instructions": [apply({"type": "resubmit", "port": None, "table": None},
                             {"type": "set_field", "field": "ip_dscp", "value": 10})]},
     "cookie=0x63, table=6, priority=13,ip,in_port=LOCAL actions=resubmit(,),set_field:10->ip_dscp"),
    ({"table": 6, "priority": 14, "cookie": 0x64, "match": {"eth_type": 0x800, "ip_proto": 6},
      "instructions": [apply({"type": "set_field", "field": "tcp_dst", "value": 8080},
                             {"type": "set_field", "field": "eth_src", "value": "00:00:00:00:00:01"},
                             {"type": "set_field", "field": "metadata", "value": 5},
                             {"type": "set_field", "field": "tunnel_id", "value": 5})]},
     "cookie=0x64, table=6, priority=14,tcp actions=set_field:8080->tcp_dst,set_field:00:00:00:00:00:01->eth_src,"
     "set_field:0x5->metadata,set_field:0x5->tun_id"),
    ({"table": 6, "priority": 15, "cookie": 0x65, "match": {"ct_zone": 0, "ct_mark": 0, "ct_state": 0},
      "instructions": [{"type": "write_actions", "actions": [
          {"type": "set_field", "field": "eth_dst", "value": "00:00:00:00:00:09"}, output(3)]},
          {"type": "write_metadata", "metadata": 1, "mask": 0xffffffffffffffff}]},
     "cookie=0x65, table=6, priority=15,ct_state=0,ct_zone=0,ct_mark=0 "
     "actions=write_actions(set_field:00:00:00:00:00:09->eth_dst,output:3),write_metadata:0x1"),
    ({"table": 6, "priority": 16, "cookie": 0x66,
      "match": {"reg0": 1, "reg1": 2, "reg2": {"value": 0, "mask": 1}, "reg5": 0}, "instructions": []},
     "cookie=0x66, table=6, priority=16,reg0=0x1,reg1=0x2,reg2=0/0x1,reg5=0 actions=drop"),
    ({"table": 6, "priority": 17, "cookie": 0x67,
      "match": {"eth_type": 0x800, "ip_proto": 17, "udp_dst": {"value": 0x1000, "mask": 0xf000}},
      "instructions": [apply(output(1))]},
     "cookie=0x67, table=6, priority=17,udp,tp_dst=0x1000/0xf000 actions=output:1"),
    ({"table": 8, "priority": 7, "cookie": 0x82, "match": {"ct_state": {"value": 0x20, "mask": 0x1ff}},
      "instructions": [{"type": "write_actions", "actions": []}]},
     "cookie=0x82, table=8, priority=7,ct_state=trk actions=drop"),
]

METERS = [
    {"meter_id": 1, "flags": ["burst", "kbps", "stats"], "bands": [{"type": "drop", "rate": 1000, "burst_size": 100}]},
    {"meter_id": 2, "flags": ["pktps"], "bands": [{"type": "drop", "rate": 50, "burst_size": 0}]},
]

GROUPS = [
    {"group_id": 1, "type": "all", "buckets": [{"actions": [output(1)]}, {"actions": [output(2)]}]},
    {"group_id": 2, "type": "select", "buckets": [{"weight": 10, "actions": [output(1)]},
                                                  {"weight": 20, "actions": [output(2)]}]},
    {"group_id": 3, "type": "indirect", "buckets": [{"actions": [
        {"type": "set_field", "field": "eth_dst", "value": "00:00:00:00:00:01"}, output(1)]}]},
    {"group_id": 4, "type": "ff", "buckets": [{"watch_port": 1, "actions": [output(1)]},
                                              {"watch_group": 1, "actions": [{"type": "group", "group_id": 1}]}]},
]
