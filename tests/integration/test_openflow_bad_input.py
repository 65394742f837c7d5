# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input to openflow_flow and openflow_info: a clear failure, no traceback, and the switch unchanged.

The inputs are aimed at a bridge that holds flows of the task's cookie and of another one, meters and
groups (made with ovs-ofctl), so that a module which sent part of a task before noticing the problem
would show up in the dumps of flows, meters and groups taken before and after.
"""

from __future__ import absolute_import, division, print_function

import pytest

from conftest import Names, db_lock, of_bridge, of_module

COOKIE = 0x0bad
OTHER = 0x0bae


class Victim(object):
    def __init__(self, switch):
        self.switch = switch
        self.bridge = switch.bridge

    def task(self, **kwargs):
        args = {"bridge": self.bridge, "cookie": COOKIE}
        args.update(kwargs)
        return args

    def flows(self, *flows, **kwargs):
        return self.task(flows=list(flows), **kwargs)


@pytest.fixture(scope="module")
def victim(lab):
    made = Names(lab)
    with db_lock(lab, exclusive=False):
        switch = of_bridge(lab, made.bridge())
        switch.ofctl("add-meter", switch.mgmt, "meter=1,pktps,burst,band=type=drop,rate=100,burst_size=10")
        switch.ofctl("add-group", switch.mgmt, "group_id=1,type=all,bucket=output:1,bucket=output:2")
        switch.add_flows([
            "cookie=%d,table=0,priority=100,in_port=1,actions=output:2" % COOKIE,
            "cookie=%d,table=1,priority=200,ip,nw_dst=10.0.0.0/8,actions=meter:1,group:1" % COOKIE,
            "cookie=%d,table=0,priority=100,in_port=2,actions=output:1" % OTHER,
            "cookie=%d,table=1,priority=5,tcp,tp_dst=80,actions=drop" % OTHER,
        ])
    yield Victim(switch)
    with db_lock(lab, exclusive=False):
        made.cleanup()


FLOW = "table=0,priority=1,in_port=3,actions=drop"
NINE_BANDS = [{"type": "drop", "rate": 10 * (i + 1)} for i in range(9)]

CASES = [
    # match fields
    ("unknown-field", lambda v: v.flows("priority=1,foo=1,actions=drop"), "unknown match field or keyword 'foo'"),
    ("unsupported-field", lambda v: v.flows("priority=1,ip,nw_ttl=5,actions=drop"), "match field nw_ttl is not supported"),
    ("tp_dst-without-tcp", lambda v: v.flows("priority=1,tp_dst=80,actions=drop"), "tp_dst needs a transport protocol"),
    ("icmp_type-without-icmp", lambda v: v.flows("priority=1,ip,icmp_type=3,actions=drop"), "needs an ICMP match"),
    ("bad-ipv4", lambda v: v.flows("priority=1,ip,nw_src=10.0.0.300,actions=drop"), "must be an IPv4 address, not '10.0.0.300'"),
    ("bad-ipv6", lambda v: v.flows("priority=1,ipv6,ipv6_src=2001:db8::g,actions=drop"), "must be an IPv6 address"),
    ("bad-mac", lambda v: v.flows("priority=1,dl_src=02:00:00:00:00,actions=drop"), "must be a MAC address"),
    ("mask-on-in_port", lambda v: v.flows("priority=1,in_port=1/1,actions=drop"), "in_port cannot be masked"),
    ("mask-on-ip_dscp", lambda v: v.flows("priority=1,ip,ip_dscp=10/3,actions=drop"), "ip_dscp cannot be masked"),
    ("dl_vlan-5000", lambda v: v.flows("priority=1,dl_vlan=5000,actions=drop"), "dl_vlan 5000 is out of range"),
    ("ct_state-flag", lambda v: v.flows("priority=1,ip,ct_state=+bogus,actions=drop"), "unknown ct_state flag 'bogus'"),
    ("ct_zone-70000", lambda v: v.flows("priority=1,ip,ct_zone=70000,actions=drop"), "ct_zone 70000 is out of range"),
    ("tun_id-65-bits", lambda v: v.flows("priority=1,tun_id=0x10000000000000000,actions=drop"), "tunnel_id 18446744073709551616 is out of range"),
    ("reg16", lambda v: v.flows("priority=1,reg16=1,actions=drop"), "unknown match field or keyword 'reg16'"),
    # table, priority, timeouts
    ("table-300", lambda v: v.flows("table=300,priority=1,actions=drop"), "table 300 is out of range"),
    ("priority-70000", lambda v: v.flows("priority=70000,actions=drop"), "priority 70000 is out of range"),
    ("idle-timeout-70000", lambda v: v.flows("priority=1,idle_timeout=70000,actions=drop"), "idle_timeout 70000 is out of range"),
    ("missing-actions", lambda v: v.flows("priority=1,in_port=3"), "missing actions"),
    # actions
    ("unknown-action", lambda v: v.flows("priority=1,actions=frobnicate"), "unknown action 'frobnicate'"),
    ("learn-unsupported", lambda v: v.flows("priority=1,actions=learn(table=1)"), "action learn is not supported"),
    ("output-port-70000", lambda v: v.flows("priority=1,actions=output:70000"), "output port 70000 is out of range"),
    ("drop-and-output", lambda v: v.flows("priority=1,actions=output:1,drop"), '"drop" must not be accompanied'),
    ("instruction-order", lambda v: v.flows("priority=1,actions=goto_table:2,output:1"), "invalid instruction ordering"),
    ("goto-table-backwards", lambda v: v.flows("table=5,priority=1,actions=goto_table:3"), "goto_table:3 must go to a later table than 5"),
    ("pop-vlan-without-vlan", lambda v: v.flows("priority=1,actions=pop_vlan"), "pop_vlan (strip_vlan) needs a VLAN tag"),
    ("three-vlan-headers", lambda v: v.flows("priority=1,actions=push_vlan:0x8100,push_vlan:0x8100,push_vlan:0x8100,output:1"),
     "at most 2 VLAN headers"),
    ("dec-ttl-without-ip", lambda v: v.flows("priority=1,actions=dec_ttl"), "dec_ttl needs an IPv4 or IPv6 match"),
    ("mod-nw-tos-ecn-bits", lambda v: v.flows("priority=1,ip,actions=mod_nw_tos:3"), "is not a valid TOS"),
    ("mod-tp-dst-without-l4", lambda v: v.flows("priority=1,ip,actions=mod_tp_dst:80"), "mod_tp_dst needs a TCP, UDP or SCTP match"),
    ("ct-mark-outside-ct", lambda v: v.flows("priority=1,ip,actions=set_field:0x5->ct_mark"), "cannot set ct_mark outside of a ct action"),
    ("masked-set-field", lambda v: v.flows("priority=1,ip,actions=ct(commit,exec(set_field:0x1/0x1->ct_mark))"),
     "a masked set_field is not supported"),
    ("meter-0", lambda v: v.flows("priority=1,actions=meter:0"), "meter 0 is out of range"),
    # conntrack
    ("two-ct-without-ip", lambda v: v.flows("priority=1,actions=ct(zone=1),ct(commit)"), "ct needs an IPv4 or IPv6 match"),
    ("nat-without-commit", lambda v: v.flows("priority=1,ip,actions=ct(zone=1,nat(src=10.0.0.1))"), 'needs "commit"'),
    ("ipv6-nat-on-ipv4", lambda v: v.flows("priority=1,tcp,actions=ct(commit,nat(src=2001:db8::1))"), "needs an IPv6 match"),
    ("ct-alg-ftp-without-tcp", lambda v: v.flows("priority=1,ip,actions=ct(commit,alg=ftp)"), "ct alg=ftp needs a TCP match"),
    ("ct-zone-70000", lambda v: v.flows("priority=1,ip,actions=ct(commit,zone=70000)"), "ct zone 70000 is out of range"),
    # the list and its items
    ("flow-is-an-int", lambda v: v.task(flows=[FLOW, 5]), "flows[1] must be a string in ovs-ofctl syntax or a dictionary, not int"),
    ("duplicate-flows", lambda v: v.flows(FLOW, FLOW.replace("drop", "output:2")), "flows[1] and flows[0] are the same flow"),
    ("dict-unknown-key", lambda v: v.flows({"priority": 1, "colour": "red", "actions": "drop"}), "unknown flow keys: colour"),
    ("dict-unknown-match", lambda v: v.flows({"priority": 1, "match": {"bogus": 1}, "actions": "drop"}), "unknown match field 'bogus'"),
    ("dict-shorthand-in-match", lambda v: v.flows({"priority": 1, "match": {"tcp": True}, "actions": "drop"}), "tcp is an ovs-ofctl shorthand"),
    ("good-flows-then-a-bad-one", lambda v: v.flows(FLOW, "priority=2,in_port=4,actions=output:1", "priority=3,ip,nw_src=1.2.3,actions=drop"),
     "flows[2]: nw_src=1.2.3"),
    # cookies
    ("cookie-0", lambda v: v.task(cookie=0, flows=[FLOW]), "cookie 0x0 is out of range"),
    ("cookie-zz", lambda v: v.task(cookie="zz", flows=[FLOW]), "cookie 'zz' is not an integer"),
    ("cookie-all-ones", lambda v: v.task(cookie="0xffffffffffffffff", flows=[FLOW]), "cookie 0xffffffffffffffff is out of range"),
    ("cookie-boolean", lambda v: v.task(cookie=True, flows=[FLOW]), "cookie must be an integer"),
    ("cookie-in-flow-differs", lambda v: v.flows("cookie=0x%x,%s" % (OTHER, FLOW)),
     "flows[0] carries cookie 0x%x, but this task owns cookie 0x%x" % (OTHER, COOKIE)),
    ("flow-of-another-cookie", lambda v: v.flows("table=0,priority=100,in_port=2,actions=drop"),
     "would replace a flow owned by cookie 0x%x" % OTHER),
    # meters
    ("meter-without-bands", lambda v: v.task(meters=[{"meter_id": 2}]), "a meter needs at least one band"),
    ("meter-band-dscp-remark", lambda v: v.task(meters=[{"meter_id": 2, "bands": [{"type": "dscp_remark", "rate": 5}]}]),
     "band type 'dscp_remark' is not supported"),
    ("meter-kbps-and-pktps", lambda v: v.task(meters=[{"meter_id": 2, "flags": ["kbps", "pktps"], "bands": [{"type": "drop", "rate": 5}]}]),
     "a meter counts either kbps or pktps"),
    ("meter-flag-unknown", lambda v: v.task(meters=[{"meter_id": 2, "flags": ["fast"], "bands": [{"type": "drop", "rate": 5}]}]),
     "unknown meter flag 'fast'"),
    ("meter-id-0", lambda v: v.task(meters=[{"meter_id": 0, "bands": [{"type": "drop", "rate": 5}]}]), "meter_id must be an integer"),
    ("meter-rate-0", lambda v: v.task(meters=[{"meter_id": 2, "bands": [{"type": "drop", "rate": 0}]}]), "rate must be a positive integer"),
    ("meter-burst-size-without-burst", lambda v: v.task(meters=[{"meter_id": 2, "bands": [{"type": "drop", "rate": 5, "burst_size": 9}]}]),
     "burst_size needs the meter flag burst"),
    ("meter-twice", lambda v: v.task(meters=[{"meter_id": 2, "bands": [{"type": "drop", "rate": 5}]}] * 2), "meter 2 is listed twice"),
    # groups
    ("group-type-bogus", lambda v: v.task(groups=[{"group_id": 2, "type": "bogus", "buckets": []}]), "unknown group type 'bogus'"),
    ("group-bucket-bad-action", lambda v: v.task(groups=[{"group_id": 2, "type": "all", "buckets": [{"actions": "frob"}]}]),
     "groups[0].buckets[0]: frob: unknown action 'frob'"),
    ("group-id-too-big", lambda v: v.task(groups=[{"group_id": 0xfffffffe, "type": "all", "buckets": []}]), "group_id must be an integer"),
    ("group-twice", lambda v: v.task(groups=[{"group_id": 2, "type": "all", "buckets": []}] * 2), "group 2 is listed twice"),
    # what only the switch knows (the bundle is discarded)
    ("switch-rejects-missing-group", lambda v: v.flows(FLOW, "table=1,priority=9,ip,actions=group:99"), "OFPBAC_BAD_OUT_GROUP"),
    ("switch-rejects-table-254", lambda v: v.flows(FLOW, "table=254,priority=9,actions=drop"), "OFPBRC_EPERM"),
    ("switch-rejects-indirect-group", lambda v: v.task(
        flows=[FLOW], groups=[{"group_id": 2, "type": "indirect", "buckets": [{"actions": "output:1"}, {"actions": "output:2"}]}]),
     "OFPGMFC_INVALID_GROUP"),
    # task options
    ("exclusive-with-absent", lambda v: v.task(state="absent", exclusive=True), "exclusive applies to state=present only"),
    ("nothing-to-do", lambda v: v.task(), "nothing to do"),
    ("state-bogus", lambda v: v.task(state="gone", flows=[FLOW]), "value of state must be one of"),
    ("unknown-option", lambda v: v.task(colour="red", flows=[FLOW]), "Unsupported parameters"),
    ("bridge-name-16-bytes", lambda v: v.task(bridge="b" * 16, flows=[FLOW]), "is 16 bytes long"),
    ("bridge-missing", lambda v: v.task(bridge=v.bridge + "x", flows=[FLOW]), "is ovs-vswitchd running and does the bridge exist?"),
    ("rundir-missing", lambda v: v.task(rundir="/nonexistent", flows=[FLOW]), "cannot connect to the OpenFlow socket unix:/nonexistent/"),
    ("timeout-0", lambda v: v.task(timeout=0, flows=[FLOW]), "timeout must be a positive number"),
    ("timeout-negative", lambda v: v.task(timeout=-3, flows=[FLOW]), "timeout must be a positive number"),
    ("target-foo-bar", lambda v: v.task(target="foo:bar", flows=[FLOW]), "unknown method 'foo'"),
    ("target-tcp-without-port", lambda v: v.task(target="tcp:127.0.0.1", flows=[FLOW]), "expected tcp:HOST:PORT"),
]

INFO_CASES = [
    ("info-cookie-zz", lambda v: {"bridge": v.bridge, "cookie": "zz"}, "cookie 'zz' is not an integer"),
    ("info-table-300", lambda v: {"bridge": v.bridge, "table": 300}, "table 300 is out of range"),
    ("info-bridge-missing", lambda v: {"bridge": v.bridge + "x"}, "is ovs-vswitchd running and does the bridge exist?"),
    ("info-target-foo-bar", lambda v: {"bridge": v.bridge, "target": "foo:bar"}, "unknown method 'foo'"),
]


def _params():
    return ([pytest.param("openflow_flow", case[1], case[2], id=case[0]) for case in CASES]
            + [pytest.param("openflow_info", case[1], case[2], id=case[0]) for case in INFO_CASES])


@pytest.mark.parametrize("module,make_args,expected", _params())
def test_bad_input_fails_clearly_and_changes_nothing(lab, victim, module, make_args, expected):
    args = make_args(victim)
    before = victim.switch.snapshot()
    assert len(before["flows"]) == 5 and len(before["meters"]) == 1 and len(before["groups"]) == 1

    run = of_module(lab, module, args).failed()  # failed, rc != 0, a message, one JSON document, no traceback
    msg = run["msg"]
    assert expected in msg, "message %r does not name the problem (%r)" % (msg, expected)
    assert "\n" not in msg.strip()
    assert "Traceback" not in run.output

    assert victim.switch.snapshot() == before, "the failed run changed the switch"
