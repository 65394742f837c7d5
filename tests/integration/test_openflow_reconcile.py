# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""openflow_flow's reconciler on the real ovs-vswitchd: exclusive, absent, ownership by cookie, atomicity,
check and diff mode, meters and groups, OpenFlow versions.

Flows of other owners are added with ovs-ofctl, the way another controller would, and ovs-ofctl is the
oracle of every flow, meter and group on the switch.
"""

from __future__ import absolute_import, division, print_function

import re

import pytest

from conftest import OfSwitch, of_bridge, of_module

COOKIE = 0x0c01
OTHER = 0x0c02
HINT = "is ovs-vswitchd running and does the bridge exist?"

# ovs-ofctl line -> (table, priority, match): what makes two flows the same flow.
_NOT_KEY = re.compile(r"(cookie=0x[0-9a-f]+|idle_timeout=\d+|hard_timeout=\d+), ")


def oracle_key(line):
    return _NOT_KEY.sub("", line).split(" actions=")[0]


def oracle_counts(before, after):
    """added/modified/deleted between two ovs-ofctl dumps of one cookie."""
    old = dict((oracle_key(line), line) for line in before)
    new = dict((oracle_key(line), line) for line in after)
    return {"added": len(set(new) - set(old)), "deleted": len(set(old) - set(new)),
            "modified": len([k for k in set(old) & set(new) if old[k] != new[k]])}


def flow_task(lab, args, **kwargs):
    return of_module(lab, "openflow_flow", args, **kwargs)


def cookie_line(cookie, table, rest):
    """A flow as ovs-ofctl prints it: 'cookie=0x.., table=N, priority=..'."""
    return "cookie=0x%x, %s%s" % (cookie, "table=%d, " % table if table else "", rest)


OTHERS = [  # another owner's flows, in the tables the tasks below use
    "cookie=%d,table=0,priority=50,in_port=7,actions=output:1" % OTHER,
    "cookie=%d,table=1,priority=100,ip,nw_dst=10.9.0.0/16,actions=drop" % OTHER,
    "cookie=%d,table=2,priority=10,arp,actions=NORMAL" % OTHER,
]


@pytest.fixture
def switch(lab, names):
    """A bridge with the flows of another owner (cookie OTHER) and the default NORMAL flow (cookie 0)."""
    sw = of_bridge(lab, names.bridge())
    sw.add_flows(OTHERS)
    return sw


def base(sw, **kwargs):
    args = {"bridge": sw.bridge, "cookie": COOKIE}
    args.update(kwargs)
    return args


# ------------------------------------------------------------------------------------------------
# exclusive, absent, ownership
# ------------------------------------------------------------------------------------------------

KEEP = ["table=0,priority=100,in_port=%d,actions=output:%d" % (i, i + 1) for i in range(1, 6)]
MODIFY_OLD = ["table=1,priority=200,ip,nw_src=10.%d.0.0/16,actions=output:1" % i for i in range(4)]
MODIFY_NEW = ["table=1,priority=200,ip,nw_src=10.%d.0.0/16,actions=dec_ttl,output:2" % i for i in range(4)]
GONE = ["table=2,priority=300,tcp,tp_dst=%d,actions=drop" % p for p in (22, 23, 25)]
NEW = ["table=3,priority=400,udp,tp_dst=%d,actions=CONTROLLER" % p for p in (53, 67, 68, 123, 161, 514)]


def test_exclusive_makes_the_cookie_exactly_the_list(lab, switch):
    first = flow_task(lab, base(switch, flows=KEEP + MODIFY_OLD + GONE)).ok()
    assert first["counts"] == {"added": 12, "modified": 0, "deleted": 0}
    before = switch.flows(COOKIE)
    assert len(before) == 12 and sorted(first["flows"]) == before
    others = switch.flows(OTHER)

    run = flow_task(lab, base(switch, flows=KEEP + MODIFY_NEW + NEW, exclusive=True)).ok()
    after = switch.flows(COOKIE)
    assert run["changed"] is True
    assert run["counts"] == {"added": 6, "modified": 4, "deleted": 3}
    assert run["counts"] == oracle_counts(before, after)
    assert sorted(run["flows"]) == after
    assert len(after) == len(KEEP + MODIFY_NEW + NEW)
    assert cookie_line(COOKIE, 1, "priority=200,ip,nw_src=10.3.0.0/16 actions=dec_ttl,output:2") in after
    assert not any("tp_dst=22" in line for line in after)
    kinds = [c.split(":", 1)[0] for c in run["changes"]]
    assert (kinds.count("add flow"), kinds.count("modify flow"), kinds.count("delete flow")) == (6, 4, 3)
    assert switch.flows(OTHER) == others

    again = flow_task(lab, base(switch, flows=KEEP + MODIFY_NEW + NEW, exclusive=True)).ok()
    assert again["changed"] is False and again["changes"] == []
    assert switch.flows(COOKIE) == after

    # exclusive with an empty list: every flow of the cookie goes, nothing else does.
    empty = flow_task(lab, base(switch, flows=[], exclusive=True)).ok()
    assert empty["counts"] == {"added": 0, "modified": 0, "deleted": len(after)}
    assert switch.flows(COOKIE) == [] and empty["flows"] == []
    assert switch.flows(OTHER) == others
    assert "priority=0 actions=NORMAL" in switch.flows()


def test_state_absent_with_and_without_flows(lab, switch):
    flow_task(lab, base(switch, flows=KEEP + GONE)).ok()
    others = switch.flows(OTHER)

    # Listed flows go (matched by table, priority and match; actions do not matter); a listed flow that
    # is not there is no change.
    listed = [GONE[0], GONE[1].replace("actions=drop", "actions=output:9"), NEW[0]]
    run = flow_task(lab, base(switch, state="absent", flows=listed)).ok()
    assert run["counts"] == {"added": 0, "modified": 0, "deleted": 2}
    assert switch.flows(COOKIE) == sorted(run["flows"])
    assert len(switch.flows(COOKIE)) == len(KEEP) + 1
    assert not any("tp_dst=22 " in line or "tp_dst=23 " in line for line in switch.flows(COOKIE))
    assert flow_task(lab, base(switch, state="absent", flows=listed)).ok()["changed"] is False

    # A flow of another owner listed with state=absent stays.
    their = flow_task(lab, base(switch, state="absent", flows=["table=1,priority=100,ip,nw_dst=10.9.0.0/16,actions=drop"])).ok()
    assert their["changed"] is False
    assert switch.flows(OTHER) == others

    # Without flows: every flow of the cookie.
    count = len(switch.flows(COOKIE))
    run = flow_task(lab, base(switch, state="absent")).ok()
    assert run["counts"] == {"added": 0, "modified": 0, "deleted": count}
    assert switch.flows(COOKIE) == [] and run["flows"] == []
    assert switch.flows(OTHER) == others
    again = flow_task(lab, base(switch, state="absent")).ok()
    assert again["changed"] is False and again["counts"]["deleted"] == 0


def test_flows_of_other_cookies_are_never_touched(lab, switch):
    everything = switch.flows()
    theirs = [line for line in everything if not line.startswith("cookie=0x%x," % COOKIE)]
    flow_task(lab, base(switch, flows=KEEP)).ok()
    for args in (base(switch, flows=[], exclusive=True), base(switch, flows=NEW, exclusive=True),
                 base(switch, state="absent"), base(switch, exclusive=True)):
        flow_task(lab, args).ok()
        now = switch.flows()
        assert [line for line in now if not line.startswith("cookie=0x%x," % COOKIE)] == theirs, args
    assert switch.flows(COOKIE) == []
    assert len(theirs) == len(OTHERS) + 1  # and the bridge's own NORMAL flow (cookie 0)


@pytest.mark.parametrize("exclusive", [False, True])
def test_a_flow_with_the_key_of_another_cookies_flow_is_refused(lab, switch, exclusive):
    flow_task(lab, base(switch, flows=KEEP)).ok()
    before = switch.snapshot()
    clash = "table=1,priority=100,ip,nw_dst=10.9.0.0/16,actions=output:3"  # OTHER's flow, other actions
    run = flow_task(lab, base(switch, flows=NEW + [clash], exclusive=exclusive)).failed()
    msg = run["msg"]
    assert "would replace a flow owned by cookie 0x%x" % OTHER in msg, msg
    assert "table=1, priority=100,ip,nw_dst=10.9.0.0/16 actions=output:3" in msg, msg
    assert "this task owns only cookie 0x%x" % COOKIE in msg, msg
    assert switch.snapshot() == before


# ------------------------------------------------------------------------------------------------
# atomicity: what the switch refuses
# ------------------------------------------------------------------------------------------------

GOOD = ["table=5,priority=%d,ip,nw_dst=10.77.%d.0/24,actions=output:%d" % (100 + i, i, i % 3 + 1) for i in range(30)]

REJECTED = [
    # (id, the bad flow (or None), extra groups, what the message must say)
    ("output-to-a-missing-group", "table=6,priority=9,ip,actions=group:99", None,
     ["table=6, priority=9,ip actions=group:99", "OFPET_BAD_ACTION/OFPBAC_BAD_OUT_GROUP"]),
    ("missing-meter", "table=6,priority=9,tcp,actions=meter:99,output:1", None,
     ["table=6, priority=9,tcp actions=meter:99,output:1", "OFPET_METER_MOD_FAILED/OFPMMFC_INVALID_METER"]),
    ("hidden-table-254", "table=254,priority=9,in_port=1,actions=output:2", None,
     ["table=254, priority=9,in_port=1 actions=output:2", "OFPET_BAD_REQUEST/OFPBRC_EPERM"]),
    ("indirect-group-with-two-buckets", None,
     [{"group_id": 7, "type": "indirect", "buckets": [{"actions": "output:1"}, {"actions": "output:2"}]}],
     ["group_id=7,type=indirect", "OFPET_GROUP_MOD_FAILED/OFPGMFC_INVALID_GROUP"]),
    ("fast-failover-bucket-without-watch", None,
     [{"group_id": 7, "type": "ff", "buckets": [{"actions": "output:1"}]}],
     ["group_id=7,type=ff", "OFPET_GROUP_MOD_FAILED"]),
]


@pytest.mark.parametrize("bad,groups,expected", [pytest.param(*case[1:], id=case[0]) for case in REJECTED])
@pytest.mark.parametrize("protocols", ["OpenFlow13", "OpenFlow13,OpenFlow14,OpenFlow15"], ids=["of13-onf-bundle", "of15"])
def test_a_list_the_switch_rejects_changes_nothing(lab, names, protocols, bad, groups, expected):
    sw = of_bridge(lab, names.bridge(), protocols=protocols)
    sw.add_flows(OTHERS)
    first = flow_task(lab, base(sw, flows=KEEP + MODIFY_OLD + GONE,
                                groups=[{"group_id": 1, "type": "all", "buckets": [{"actions": "output:1"}]}])).ok()
    assert first["counts"]["added"] == 12
    before = sw.snapshot()

    # Everything else in the task is a change the switch accepts: adds, modifications, deletions and a
    # group modification, before and after the bad message in the bundle.
    flows = KEEP + MODIFY_NEW + GOOD[:20] + ([bad] if bad else []) + GOOD[20:]
    task_groups = [{"group_id": 1, "type": "all", "buckets": [{"actions": "output:2"}]}] + (groups or [])
    run = flow_task(lab, base(sw, flows=flows, groups=task_groups, exclusive=True)).failed()
    msg = run["msg"]
    assert "so nothing was applied" in msg, msg
    for text in expected:
        assert text in msg, "%r is not in %r" % (text, msg)
    assert "\n" not in msg
    # The bundle: 1 group modification, 30 adds, 4 modifications, 3 deletions and the bad message; the
    # switch refused one with accepted messages before and after it.
    index = int(re.search(r"rejected message (\d+) ", msg).group(1))
    assert 0 < index < 38, msg
    assert sw.snapshot() == before, "the rejected task changed the switch"

    # Without the bad part, the same task goes through.
    good = [f for f in flows if f != bad]
    done = flow_task(lab, base(sw, flows=good, groups=task_groups[:1], exclusive=True)).ok()
    assert done["counts"] == {"added": len(GOOD), "modified": len(MODIFY_NEW), "deleted": len(GONE)}
    assert sorted(done["flows"]) == sw.flows(COOKIE)
    assert sw.groups() == ["group_id=1,type=all,bucket=actions=output:2"]


# ------------------------------------------------------------------------------------------------
# check mode and diff mode
# ------------------------------------------------------------------------------------------------

METER_1 = {"meter_id": 1, "flags": ["pktps", "burst"], "bands": [{"type": "drop", "rate": 100, "burst_size": 10}]}
METER_1B = {"meter_id": 1, "flags": ["kbps"], "bands": [{"type": "drop", "rate": 5000}]}
METER_2 = {"meter_id": 2, "bands": [{"type": "drop", "rate": 7}]}
GROUP_1 = {"group_id": 1, "type": "all", "buckets": [{"actions": "output:1"}, {"actions": "output:2"}]}
GROUP_1B = {"group_id": 1, "type": "select", "buckets": [{"actions": "output:3", "weight": 3}]}
GROUP_2 = {"group_id": 2, "type": "indirect", "buckets": [{"actions": "mod_vlan_vid:9,output:4"}]}

CHECK_CASES = [
    ("present-exclusive", dict(flows=KEEP + MODIFY_NEW + NEW + ["table=4,priority=5,ip,actions=meter:2,group:2"], exclusive=True,
                               meters=[METER_1B, METER_2], groups=[GROUP_1B, GROUP_2])),
    ("present-merge", dict(flows=MODIFY_NEW + NEW, meters=[METER_1], groups=[GROUP_1])),
    ("absent-listed", dict(state="absent", flows=GONE + NEW, meters=[METER_1], groups=[GROUP_1])),
    ("absent-all", dict(state="absent")),
]


@pytest.mark.parametrize("task", [pytest.param(case[1], id=case[0]) for case in CHECK_CASES])
def test_check_mode_changes_nothing_and_predicts_the_run(lab, switch, task):
    flow_task(lab, base(switch, flows=KEEP + MODIFY_OLD + GONE, meters=[METER_1], groups=[GROUP_1])).ok()
    before = switch.snapshot()
    mine_before = switch.flows(COOKIE)

    predicted = flow_task(lab, base(switch, **task), check=True, diff=True).ok()
    assert switch.snapshot() == before, "check mode changed the switch"

    real = flow_task(lab, base(switch, **task), diff=True).ok()
    mine_after = switch.flows(COOKIE)
    for key in ("changed", "changes", "counts", "flows", "diff"):
        assert predicted[key] == real[key], "%s: check mode said %r, the run did %r" % (key, predicted[key], real[key])
    assert real["counts"] == oracle_counts(mine_before, mine_after)
    assert sorted(real["flows"]) == mine_after
    assert real["changed"] is (switch.snapshot() != before)
    assert real["changes"], "every task here changes something"


def diff_text(lines):
    return "".join(line + "\n" for line in lines)


def test_diff_mode_shows_the_cookies_flows_before_and_after(lab, switch):
    flow_task(lab, base(switch, flows=KEEP + MODIFY_OLD)).ok()
    before = switch.flows(COOKIE)
    run = flow_task(lab, base(switch, flows=KEEP + MODIFY_NEW + NEW, exclusive=True), diff=True).ok()
    after = switch.flows(COOKIE)
    assert run["diff"]["before"] == diff_text(before)
    assert run["diff"]["after"] == diff_text(after)
    assert run["diff"]["before_header"] == run["diff"]["after_header"] == "%s cookie 0x%x" % (switch.bridge, COOKIE)
    assert OfSwitch(lab, switch.bridge).flows(OTHER) == sorted(_line_of(f) for f in OTHERS)

    again = flow_task(lab, base(switch, flows=KEEP + MODIFY_NEW + NEW, exclusive=True), diff=True).ok()
    assert again["diff"]["before"] == again["diff"]["after"] == diff_text(after)

    gone = flow_task(lab, base(switch, state="absent"), diff=True).ok()
    assert gone["diff"]["before"] == diff_text(after) and gone["diff"]["after"] == ""

    # Without diff mode there is no diff.
    assert "diff" not in flow_task(lab, base(switch, flows=KEEP)).ok().result


def _line_of(ofctl_flow):
    """The few OTHERS flows as ovs-ofctl prints them back."""
    printed = {
        OTHERS[0]: cookie_line(OTHER, 0, "priority=50,in_port=7 actions=output:1"),
        OTHERS[1]: cookie_line(OTHER, 1, "priority=100,ip,nw_dst=10.9.0.0/16 actions=drop"),
        OTHERS[2]: cookie_line(OTHER, 2, "priority=10,arp actions=NORMAL"),
    }
    return printed[ofctl_flow]


# ------------------------------------------------------------------------------------------------
# meters and groups
# ------------------------------------------------------------------------------------------------

def test_meters_and_groups_added_changed_removed(lab, switch):
    # Meters and groups of someone else: never listed, never touched.
    switch.ofctl("add-meter", switch.mgmt, "meter=9,pktps,band=type=drop,rate=5")
    switch.ofctl("add-group", switch.mgmt, "group_id=9,type=all,bucket=output:1")

    run = flow_task(lab, base(switch, meters=[METER_1, METER_2], groups=[GROUP_1, GROUP_2],
                              flows=["table=4,priority=5,ip,actions=meter:1,group:1"])).ok()
    assert run["changed"] is True
    assert sorted(c.split(":", 1)[0] for c in run["changes"]) == ["add flow", "add group", "add group", "add meter", "add meter"]
    meters = switch.meters()
    assert sorted(meters) == [1, 2, 9]
    assert meters[1] == {"flags": ["burst", "pktps"], "bands": [{"type": "drop", "rate": 100, "burst_size": 10}]}
    assert meters[2]["flags"] == ["pktps"] and [b["rate"] for b in meters[2]["bands"]] == [7]
    assert switch.groups() == ["group_id=1,type=all,bucket=actions=output:1,bucket=actions=output:2",
                               "group_id=2,type=indirect,bucket=actions=push_vlan:0x8100,set_field:4105->vlan_vid,output:4",
                               "group_id=9,type=all,bucket=actions=output:1"]
    assert flow_task(lab, base(switch, meters=[METER_1, METER_2], groups=[GROUP_1, GROUP_2])).ok()["changed"] is False

    changed = flow_task(lab, base(switch, meters=[METER_1B], groups=[GROUP_1B])).ok()
    assert sorted(c.split(":", 1)[0] for c in changed["changes"]) == ["modify group", "modify meter"]
    meters = switch.meters()
    assert meters[1]["flags"] == ["kbps"] and [b["rate"] for b in meters[1]["bands"]] == [5000]
    assert sorted(meters) == [1, 2, 9]
    assert switch.groups()[0] == "group_id=1,type=select,bucket=weight:3,actions=output:3"
    # The flow that uses them is still there.
    assert switch.flows(COOKIE) == [cookie_line(COOKIE, 4, "priority=5,ip actions=meter:1,group:1")]
    assert flow_task(lab, base(switch, meters=[METER_1B], groups=[GROUP_1B])).ok()["changed"] is False

    # Removal: the flow that uses them first, in the same task.
    gone = flow_task(lab, base(switch, state="absent", meters=[METER_1B, METER_2], groups=[GROUP_1B, GROUP_2])).ok()
    assert sorted(c.split(":", 1)[0] for c in gone["changes"]) == [
        "delete flow", "delete group", "delete group", "delete meter", "delete meter"]
    assert sorted(switch.meters()) == [9]
    assert switch.groups() == ["group_id=9,type=all,bucket=actions=output:1"]
    assert switch.flows(COOKIE) == []
    again = flow_task(lab, base(switch, state="absent", meters=[METER_1B, METER_2], groups=[GROUP_1B, GROUP_2])).ok()
    assert again["changed"] is False


# ------------------------------------------------------------------------------------------------
# OpenFlow versions and connection errors
# ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["OpenFlow13", "OpenFlow14"])
def test_a_bridge_limited_to_one_openflow_version(lab, names, protocol):
    sw = of_bridge(lab, names.bridge(), protocols=protocol)
    flows = KEEP + ["table=4,priority=5,ip,actions=meter:1,group:1,ct(commit,zone=3,nat(src=192.0.2.1)),goto_table:7"]
    args = base(sw, flows=flows, meters=[METER_1], groups=[GROUP_1])
    run = flow_task(lab, args).ok()
    assert run["openflow_version"] == protocol
    assert sorted(run["flows"]) == sw.flows(COOKIE)
    assert len(sw.flows(COOKIE)) == len(flows)
    assert sorted(sw.meters()) == [1] and len(sw.groups()) == 1
    assert flow_task(lab, args).ok()["changed"] is False
    info = of_module(lab, "openflow_info", {"bridge": sw.bridge, "cookie": COOKIE}).ok()
    assert info["openflow_version"] == protocol
    assert sorted(f["line"] for f in info["flows"]) == sw.flows(COOKIE)

    # The bundle is atomic on this version too.
    before = sw.snapshot()
    flow_task(lab, base(sw, flows=NEW + ["table=6,priority=9,ip,actions=group:99"], exclusive=True)).failed()
    assert sw.snapshot() == before


def test_a_bridge_without_openflow_13_to_15_is_refused_clearly(lab, names):
    sw = of_bridge(lab, names.bridge(), protocols="OpenFlow10")  # ovs-ofctl reads only its flows then
    before = sw.flows()
    run = flow_task(lab, base(sw, flows=KEEP)).failed()
    assert "no common OpenFlow version" in run["msg"] and "OpenFlow10" in run["msg"], run["msg"]
    assert "protocols" in run["msg"]
    assert sw.flows() == before == ["priority=0 actions=NORMAL"]


@pytest.mark.parametrize("module", ["openflow_flow", "openflow_info"])
def test_a_bridge_that_does_not_exist(lab, names, module):
    missing = names.bridge()  # never created
    args = {"bridge": missing, "cookie": COOKIE}
    if module == "openflow_flow":
        args["flows"] = KEEP
    run = of_module(lab, module, args).failed()
    msg = run["msg"]
    assert msg.startswith("cannot connect"), msg
    assert "%s.mgmt" % missing in msg and HINT in msg, msg


# ------------------------------------------------------------------------------------------------
# What the switch does to meters outside the bundle, and to flows when a group or meter goes
# ------------------------------------------------------------------------------------------------

def test_a_rejected_bundle_leaves_the_meters_as_they_were(lab, switch):
    flow_task(lab, base(switch, meters=[METER_1])).ok()
    before = switch.snapshot()
    run = flow_task(lab, base(switch, meters=[METER_1B, METER_2], flows=["table=6,priority=9,ip,actions=group:99"])).failed()
    assert "OFPBAC_BAD_OUT_GROUP" in run["msg"]
    assert switch.snapshot() == before, "meters after the failed task: %s" % switch.meters()


def test_a_meter_the_switch_rejects_leaves_the_other_meters_alone(lab, switch):
    nine_bands = {"meter_id": 8, "bands": [{"type": "drop", "rate": 10 * (i + 1)} for i in range(9)]}  # max_bands is 8
    before = switch.snapshot()
    run = flow_task(lab, base(switch, meters=[METER_2, nine_bands])).failed()
    assert "OFPMMFC_OUT_OF_BANDS" in run["msg"]
    assert switch.snapshot() == before, "meters after the failed task: %s" % switch.meters()


def test_a_meter_the_switch_rejects_is_named(lab, switch):
    nine_bands = {"meter_id": 8, "bands": [{"type": "drop", "rate": 10 * (i + 1)} for i in range(9)]}
    run = flow_task(lab, base(switch, meters=[METER_2, nine_bands])).failed()
    assert "OFPET_METER_MOD_FAILED/OFPMMFC_OUT_OF_BANDS" in run["msg"]
    assert "meter=8" in run["msg"] or "meters[1]" in run["msg"], run["msg"]


@pytest.mark.parametrize("what", ["group", "meter"])
def test_removing_a_group_or_meter_keeps_the_flows_of_other_cookies(lab, switch, what):
    flow_task(lab, base(switch, meters=[METER_1], groups=[GROUP_1],
                        flows=["table=4,priority=5,ip,actions=%s" % ("group:1" if what == "group" else "meter:1,output:2")])).ok()
    use = "group:1" if what == "group" else "meter:1,output:3"
    switch.add_flows(["cookie=%d,table=4,priority=6,tcp,actions=%s" % (OTHER, use)])
    theirs = switch.flows(OTHER)
    assert len(theirs) == len(OTHERS) + 1
    args = base(switch, state="absent", flows=[])
    args["groups" if what == "group" else "meters"] = [GROUP_1 if what == "group" else METER_1]
    run = flow_task(lab, args)
    assert switch.flows(OTHER) == theirs, "flows of cookie 0x%x were deleted" % OTHER
    if not run.get("failed"):
        assert sorted(run["flows"]) == switch.flows(COOKIE), "the module reports flows the switch no longer has"
