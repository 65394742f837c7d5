# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Flows the module's model does not carry (Nicira actions, match fields it does not know), written by
another controller with ovs-ofctl.

openflow_flow must leave them alone when they carry another cookie; openflow_info, which reports what
the switch holds, and openflow_flow on its own cookie, must cope with them.
"""

from __future__ import absolute_import, division, print_function

import pytest

from conftest import of_bridge, of_module

COOKIE = 0x0f0e
OTHER = 0x0f0f

FOREIGN = [
    # (id, the flow in table 3 at priority 7 (no cookie), a flow of the task with the same table and priority
    # and the same match but for the field the model does not know, or None)
    ("action-note", "ip,actions=note:01.02.03.04.05.06", None),
    ("action-learn", "tcp,actions=learn(table=10,NXM_OF_VLAN_TCI[0..11],output:NXM_OF_IN_PORT[])", None),
    ("action-set-queue", "ip,actions=set_queue:1,output:1", None),
    ("action-load", "ip,actions=load:0x5->NXM_NX_REG0[0..3]", None),
    ("action-move", "ip,actions=move:NXM_OF_IP_SRC[]->NXM_NX_REG1[]", None),
    ("action-ct-exec-masked-mark", "ip,actions=ct(commit,exec(set_field:0x1/0x1->ct_mark))", None),
    ("match-nw-ttl", "ip,nw_ttl=5,actions=drop", "table=3,priority=7,ip,actions=output:3"),
    ("match-tcp-flags", "tcp,tcp_flags=+syn,actions=drop", "table=3,priority=7,tcp,actions=output:3"),
    ("match-ct-label", "ip,ct_label=0x1,actions=drop", "table=3,priority=7,ip,actions=output:3"),
]


def _params():
    return [pytest.param(case[1], case[2], id=case[0]) for case in FOREIGN]


def flow_task(lab, args, **kwargs):
    return of_module(lab, "openflow_flow", args, **kwargs)


@pytest.mark.parametrize("foreign,twin", _params())
def test_flows_of_another_controller_are_left_alone(lab, names, foreign, twin):
    sw = of_bridge(lab, names.bridge())
    sw.add_flows(["cookie=%d,table=3,priority=7,%s" % (OTHER, foreign)])
    theirs = sw.flows(OTHER)
    assert len(theirs) == 1
    mine = ["table=3,priority=8,ip,actions=output:2", "table=4,priority=7,ip,actions=output:2"] + ([twin] if twin else [])

    run = flow_task(lab, {"bridge": sw.bridge, "cookie": COOKIE, "flows": mine}).ok()
    assert run["counts"]["added"] == len(mine)
    assert sorted(run["flows"]) == sw.flows(COOKIE)
    assert flow_task(lab, {"bridge": sw.bridge, "cookie": COOKIE, "flows": mine}).ok()["changed"] is False
    for args in ({"flows": mine[:1], "exclusive": True}, {"state": "absent"}):
        args.update({"bridge": sw.bridge, "cookie": COOKIE})
        flow_task(lab, args).ok()
        assert sw.flows(OTHER) == theirs
    assert sw.flows(COOKIE) == []


@pytest.mark.parametrize("foreign,twin", _params())
def test_info_reports_flows_of_another_controller(lab, names, foreign, twin):
    sw = of_bridge(lab, names.bridge())
    sw.add_flows(["cookie=%d,table=3,priority=7,%s" % (OTHER, foreign)])
    info = of_module(lab, "openflow_info", {"bridge": sw.bridge}).ok()
    # Reported, never a failure: what the model has no syntax for is shown raw, the rest as ovs-ofctl prints it.
    (line,) = [f["line"] for f in info["flows"] if f["flow"]["cookie"] == OTHER]
    (oracle,) = sw.flows(OTHER)
    head = "cookie=0x%x, table=3, priority=7" % OTHER
    assert line.startswith(head) and oracle.startswith(head), (line, oracle)
    # A masked load is shown as the equivalent masked set_field (OVS accepts both spellings, prints load).
    equivalent_load = "load:" in oracle and "set_field:0x" in line and "/0x" in line
    assert ("raw" in line) or ("oxm:0x" in line) or line == oracle or equivalent_load, (line, oracle)


@pytest.mark.parametrize("foreign,twin", _params())
def test_flows_of_the_cookie_the_model_does_not_carry_can_be_removed(lab, names, foreign, twin):
    sw = of_bridge(lab, names.bridge())
    sw.add_flows(["cookie=%d,table=3,priority=7,%s" % (COOKIE, foreign)])
    run = flow_task(lab, {"bridge": sw.bridge, "cookie": COOKIE, "flows": ["table=4,priority=7,ip,actions=output:2"]}).ok()
    assert len(run["flows"]) == len(sw.flows(COOKIE)) == 2
    assert "cookie=0x%x, table=4, priority=7,ip actions=output:2" % COOKIE in run["flows"]
    gone = flow_task(lab, {"bridge": sw.bridge, "cookie": COOKIE, "state": "absent"}).ok()
    assert gone["counts"]["deleted"] == 2
    assert sw.flows(COOKIE) == []
