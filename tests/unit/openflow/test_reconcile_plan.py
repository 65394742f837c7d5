"""The openflow_flow planner (pure): ownership, exclusive, absent, and the lines it reports."""
import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.openflow import codec
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.reconcile import (
    FlowInputError, from_codec, normalize_desired, plan, to_codec,
)

COOKIE = 0x10


def desired(flows=None, **kw):
    params = {"cookie": COOKIE, "state": "present", "exclusive": False, "flows": flows, "meters": None,
              "groups": None}
    params.update(kw)
    return normalize_desired(params)


def on_switch(texts, cookie=COOKIE):
    """Flow stats entries as the codec decodes them from the switch."""
    stats = {"duration_sec": 1, "duration_nsec": 0, "packet_count": 0, "byte_count": 0}
    return [dict(to_codec(dict(flow, cookie=cookie)), **stats) for flow in desired(texts)["flows"]]


def test_present_adds_only_what_is_missing_and_keeps_unlisted():
    current = on_switch(["priority=10,in_port=1,actions=output:2", "priority=11,in_port=3,actions=drop"])
    p = plan(desired(["priority=10,in_port=1,actions=output:2", "priority=12,arp,actions=NORMAL"]), current, [], [])
    assert p.counts == {"added": 1, "modified": 0, "deleted": 0}
    assert [c.split(":")[0] for c in p.changes] == ["add flow"]
    assert len(p.after) == 3 and len(p.before) == 2


def test_exclusive_deletes_the_rest_of_the_cookie_only():
    current = on_switch(["priority=10,in_port=1,actions=output:2"]) + \
        on_switch(["priority=20,in_port=9,actions=drop"], cookie=0x99)
    p = plan(desired(["priority=12,arp,actions=NORMAL"], exclusive=True), current, [], [])
    assert p.counts == {"added": 1, "modified": 0, "deleted": 1}
    deletes = [b for b in p.bundle if b[1] == "delete_strict"]
    assert len(deletes) == 1 and deletes[0][2]["priority"] == 10
    assert all("cookie=0x99" not in line for line in p.before + p.after)


def test_changed_actions_are_a_modify_and_unchanged_is_nothing():
    current = on_switch(["priority=10,in_port=1,actions=output:2"])
    p = plan(desired(["priority=10,in_port=1,actions=output:3"]), current, [], [])
    assert p.counts["modified"] == 1 and p.after == ["cookie=0x10, priority=10,in_port=1 actions=output:3"]
    assert not plan(desired(["priority=10,in_port=1,actions=output:2"]), current, [], []).changed


def test_absent_without_flows_deletes_every_flow_of_the_cookie():
    current = on_switch(["priority=10,in_port=1,actions=output:2", "priority=11,in_port=3,actions=drop"])
    p = plan(desired(None, state="absent"), current, [], [])
    assert p.counts["deleted"] == 2 and p.after == []


def test_another_cookies_flow_is_never_replaced():
    current = on_switch(["priority=10,in_port=1,actions=output:2"], cookie=0x99)
    with pytest.raises(FlowInputError) as err:
        plan(desired(["priority=10,in_port=1,actions=drop"]), current, [], [])
    assert "owned by cookie 0x99" in str(err.value)


@pytest.mark.parametrize("text,wire", [
    ("priority=10,dl_vlan=10,actions=drop", {"value": 0x100a, "mask": None, "wire": True}),
    ("priority=10,vlan_tci=0,actions=drop", {"value": 0, "mask": None, "wire": True}),
])
def test_vlan_forms_translate_both_ways(text, wire):
    flow = desired([text])["flows"][0]
    assert to_codec(flow)["match"]["vlan_vid"] == wire
    decoded = codec.decode(codec.flow_mod(codec.OFP13_VERSION, to_codec(flow)))["flow"]
    assert from_codec(decoded)["match"] == flow["match"]


@pytest.mark.parametrize("params,fragment", [
    ({"cookie": 0}, "out of range"),
    ({"cookie": 0xffffffffffffffff}, "out of range"),
    ({"flows": None}, "nothing to do"),
    ({"flows": ["priority=1,actions=drop"], "state": "absent", "exclusive": True}, "exclusive applies"),
    ({"flows": ["priority=1,actions=drop", "priority=1,actions=NORMAL"]}, "are the same flow"),
    ({"flows": ["cookie=0x5,priority=1,actions=drop"]}, "carries cookie 0x5"),
    ({"flows": [42]}, "must be a string"),
])
def test_bad_desired_state(params, fragment):
    base = {"cookie": COOKIE, "state": "present", "exclusive": False, "flows": None, "meters": None, "groups": None}
    base.update(params)
    with pytest.raises(FlowInputError) as err:
        normalize_desired(base)
    assert fragment in str(err.value)
