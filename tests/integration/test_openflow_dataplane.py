# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Packets go where openflow_flow's flows say, and nowhere else.

A netdev bridge in fail mode secure (no flows, no forwarding) with three internal ports pinned to
OpenFlow ports 1, 2 and 3, each moved into a network namespace of its own (A, B, C). ping is the oracle.
"""

from __future__ import absolute_import, division, print_function

import pytest

from conftest import of_bridge, of_module

HOSTS = ("A", "B", "C")
NS = {"A": "opdbus-ofA", "B": "opdbus-ofB", "C": "opdbus-ofC"}
ADDR = {"A": "10.78.0.1", "B": "10.78.0.2", "C": "10.78.0.3"}
OFPORT = {"A": 1, "B": 2, "C": 3}
COOKIE = 0x0da7a


def ping(lab, src, dst, count=1, wait=1):
    """True if `src` gets at least one answer from `dst`."""
    res = lab.sh(["ip", "netns", "exec", NS[src], "ping", "-n", "-q", "-c", str(count), "-i", "0.2", "-W", str(wait), ADDR[dst]],
                 check=False, timeout=60)
    return res.returncode == 0


def reaches(lab, src, dst):
    """ping after forgetting what ARP learnt or gave up on: an unanswered ARP from an earlier (refused) ping
    must not make a ping now wait for the kernel's next retry."""
    for host in (src, dst):
        lab.sh(["ip", "-n", NS[host], "neigh", "flush", "all"], check=False)
    return ping(lab, src, dst, count=3, wait=2)


def between(a, b):
    """ARP and IPv4 between two hosts, both ways, by output actions."""
    flows = []
    for src, dst in ((a, b), (b, a)):
        flows.append("table=0,priority=100,in_port=%d,arp,arp_tpa=%s,actions=output:%d" % (OFPORT[src], ADDR[dst], OFPORT[dst]))
        flows.append("table=0,priority=100,in_port=%d,ip,nw_dst=%s,actions=output:%d" % (OFPORT[src], ADDR[dst], OFPORT[dst]))
    return flows


@pytest.fixture
def hosts(lab, names):
    br = names.bridge()
    ports = dict((h, names.port()) for h in HOSTS)
    switch = of_bridge(lab, br, fail_mode="secure", ports=[(ports[h], OFPORT[h]) for h in HOSTS])
    try:
        for h in HOSTS:
            lab.add_netns(NS[h])
            lab.sh(["ip", "link", "set", ports[h], "netns", NS[h]], ns=True)
            lab.sh(["ip", "-n", NS[h], "addr", "add", ADDR[h] + "/24", "dev", ports[h]])
            lab.sh(["ip", "-n", NS[h], "link", "set", ports[h], "up"])
        assert switch.flows() == [], "a bridge in fail mode secure starts without flows"
        yield switch
    finally:
        # The bridge first: ovs-vswitchd removes its taps wherever they are; then the namespaces.
        lab.vsctl("--if-exists", "del-br", br, check=False)
        for h in HOSTS:
            lab.del_netns(NS[h])


def apply(lab, switch, flows):
    run = of_module(lab, "openflow_flow", {"bridge": switch.bridge, "cookie": COOKIE, "flows": flows, "exclusive": True}).ok()
    assert sorted(run["flows"]) == switch.flows(COOKIE) == switch.flows()
    return run


def test_packets_follow_the_flows_and_an_exclusive_replace(lab, hosts):
    assert not ping(lab, "A", "B"), "the bridge forwards without flows"

    first = apply(lab, hosts, between("A", "B"))
    assert first["counts"] == {"added": 4, "modified": 0, "deleted": 0}
    assert reaches(lab, "A", "B"), "A cannot reach B with flows that allow it"
    assert reaches(lab, "B", "A")
    assert not ping(lab, "A", "C"), "A reaches C without a flow for it"
    assert not ping(lab, "C", "B")

    second = apply(lab, hosts, between("A", "C"))
    assert second["counts"] == {"added": 4, "modified": 0, "deleted": 4}
    assert reaches(lab, "A", "C"), "A cannot reach C after the replace"
    assert reaches(lab, "C", "A")
    assert not ping(lab, "A", "B"), "A still reaches B after the replace"
    assert not ping(lab, "B", "C")

    gone = of_module(lab, "openflow_flow", {"bridge": hosts.bridge, "cookie": COOKIE, "state": "absent"}).ok()
    assert gone["counts"]["deleted"] == 4 and hosts.flows() == []
    assert not ping(lab, "A", "C"), "A reaches C after the flows were removed"


CONNTRACK = [
    "table=0,priority=100,in_port=1,arp,actions=output:2",
    "table=0,priority=100,in_port=2,arp,actions=output:1",
    "table=0,priority=90,ip,ct_state=-trk,actions=ct(table=1,zone=7)",
    "table=1,priority=100,in_port=1,ip,ct_state=+trk+new,actions=ct(commit,zone=7),output:2",
    "table=1,priority=100,in_port=1,ip,ct_state=+trk+est,actions=output:2",
    "table=1,priority=100,in_port=2,ip,ct_state=+trk+est,actions=output:1",
]


def test_conntrack_lets_replies_back_but_no_new_connections_from_b(lab, hosts):
    run = apply(lab, hosts, CONNTRACK)
    assert run["counts"]["added"] == len(CONNTRACK)

    assert not ping(lab, "B", "A"), "B opened a connection to A"
    assert reaches(lab, "A", "B"), "A's connection to B (and its replies) did not pass"
    assert not ping(lab, "B", "A"), "B opened a connection to A after A talked to B"
    assert not ping(lab, "A", "C")

    # The path from B works: it was the conntrack policy that stopped B.
    allow_b = "table=1,priority=100,in_port=2,ip,ct_state=+trk+new,actions=ct(commit,zone=7),output:1"
    apply(lab, hosts, CONNTRACK + [allow_b])
    assert reaches(lab, "B", "A"), "B cannot reach A even with a flow that allows it"
