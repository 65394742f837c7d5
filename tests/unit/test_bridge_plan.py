"""The planner: views, change lists and OVSDB operations from synthetic snapshots."""
import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import build_operations, plan
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import ValidationError, normalize_bridge

from fakeovsdb import FakeSwitch


def desired(**kw):
    params = {"name": "br0", "state": "present"}
    params.update(kw)
    return normalize_bridge(params)


def ops_of(snap, d, link_state=None):
    p = plan(snap, d, link_state or {})
    return p, build_operations(snap, p, d)


def kinds(ops):
    return [(o["op"], o.get("table")) for o in ops]


def test_create_bridge_is_one_transaction_with_local_port():
    sw = FakeSwitch()
    d = desired(datapath_type="netdev", ports=[{"name": "p1", "type": "internal"}])
    p, ops = ops_of(sw.snapshot(), d)
    assert p.changes[0] == "create bridge br0"
    assert "add port p1 (internal)" in p.changes
    assert "add port br0 (internal)" not in p.changes  # the local port comes with the bridge
    absent = [("wait", "Port"), ("wait", "Interface")]  # no concurrent creator of the same names
    assert kinds(ops) == absent + [("insert", "Interface"), ("insert", "Port")] + absent + [
        ("insert", "Interface"), ("insert", "Port"), ("wait", "Bridge"), ("insert", "Bridge"),
        ("mutate", "Open_vSwitch"), ("mutate", "Open_vSwitch"), ("select", "Open_vSwitch")]
    assert all(o["rows"] == [] for o in ops if o["op"] == "wait")
    bridge_row = [o for o in ops if o.get("table") == "Bridge" and o["op"] == "insert"][0]["row"]
    assert bridge_row["datapath_type"] == "netdev"


def test_unchanged_bridge_plans_nothing():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1"], external_ids={"a": "1"})
    p, ops = ops_of(sw.snapshot(), desired(datapath_type="netdev", external_ids={"a": "1"},
                                           ports=[{"name": "p1"}]))
    assert p.changes == [] and ops == [] and not p.changed


def test_external_ids_merge_and_purge():
    sw = FakeSwitch()
    sw.add_bridge("br0", external_ids={"a": "1", "b": "2"})
    p = ops_of(sw.snapshot(), desired(external_ids={"c": "3"}))[0]
    assert p.after["external_ids"] == {"a": "1", "b": "2", "c": "3"}
    p, ops = ops_of(sw.snapshot(), desired(external_ids={"a": "1"}, purge_external_ids=True))
    assert p.after["external_ids"] == {"a": "1"}
    assert p.changes == ["bridge br0 external_ids: remove b"]
    assert kinds(ops)[:2] == [("wait", "Bridge"), ("update", "Bridge")]


def test_ports_exclusive_keeps_local_port():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1", "p2"])
    p, ops = ops_of(sw.snapshot(), desired(ports=[{"name": "p1"}], ports_exclusive=True))
    assert p.changes == ["remove port p2"]
    assert set(p.after["ports"]) == {"br0", "p1"}
    mutate = [o for o in ops if o["op"] == "mutate" and o["table"] == "Bridge"][0]
    assert mutate["mutations"][0][:2] == ["ports", "delete"]
    # the ports column is guarded against concurrent writers
    assert ("wait", "Bridge") in kinds(ops)


def test_unlisted_ports_kept_without_exclusive():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1", "p2"])
    p = ops_of(sw.snapshot(), desired(ports=[{"name": "p3"}]))[0]
    assert p.changes == ["add port p3 (system)"]


def test_port_fields_are_authoritative():
    sw = FakeSwitch()
    sw.add_bridge("br0")
    sw.add_port("br0", "p1", tag=10)
    p, ops = ops_of(sw.snapshot(), desired(ports=[{"name": "p1"}]))
    assert p.changes == ["port p1 tag: 10 -> unset"]
    update = [o for o in ops if o["op"] == "update"][0]
    assert update["table"] == "Port" and update["row"] == {"tag": ["set", []]}


def test_link_state_only_for_managed_keys():
    sw = FakeSwitch()
    sw.add_bridge("br0")
    sw.add_port("br0", "m0", type="internal")
    d = desired(ports=[{"name": "m0", "type": "internal", "addresses": ["10.0.0.1/24"], "up": True}])
    p, ops = ops_of(sw.snapshot(), d, {"m0": {"up": False, "addresses": ["10.0.0.9/24"]}})
    assert p.changes == ["port m0 addresses: [10.0.0.9/24] -> [10.0.0.1/24]", "port m0 up: false -> true"]
    assert ops == []  # nothing for OVSDB
    assert p.link_actions() == [("m0", ["10.0.0.1/24"], True)]
    p = ops_of(sw.snapshot(), d, {"m0": {"up": True, "addresses": ["10.0.0.1/24"]}})[0]
    assert not p.changed


def test_remove_bridge():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1"])
    p, ops = ops_of(sw.snapshot(), desired(state="absent"))
    assert p.changes == ["remove bridge br0 (and its 2 ports)"]
    assert kinds(ops) == [("mutate", "Open_vSwitch"), ("mutate", "Open_vSwitch"), ("select", "Open_vSwitch")]
    p, ops = ops_of(FakeSwitch().snapshot(), desired(state="absent"))
    assert not p.changed and ops == []


def test_controller_keeps_existing_rows():
    sw = FakeSwitch()
    br = sw.add_bridge("br0")
    sw.controllers.append({"_uuid": "00000000-0000-0000-0000-0000000000aa", "target": "tcp:127.0.0.1:6653"})
    br["controller"] = [__import__("ansible_collections.opdbus.infra.plugins.module_utils.ovsdb",
                                   fromlist=["Uuid"]).Uuid("00000000-0000-0000-0000-0000000000aa")]
    p, ops = ops_of(sw.snapshot(), desired(controller=["tcp:127.0.0.1:6653", "ptcp:6654"]))
    assert p.changes == ["bridge br0 controller: [tcp:127.0.0.1:6653] -> [ptcp:6654, tcp:127.0.0.1:6653]"]
    inserts = [o for o in ops if o["op"] == "insert"]
    assert len(inserts) == 1 and inserts[0]["row"]["target"] == "ptcp:6654"


def test_fake_bridge_create_and_members():
    sw = FakeSwitch()
    sw.add_bridge("br0")
    sw.add_port("br0", "other", tag=40)
    d = normalize_bridge({"name": "fb30", "parent": "br0", "vlan": 30, "ports": [{"name": "v30b"}],
                          "ports_exclusive": True})
    p, ops = ops_of(sw.snapshot(), d)
    assert p.changes[0] == "create fake bridge fb30 on br0 vlan 30"
    assert "add port v30b (system)" in p.changes
    fake_port = [o for o in ops if o["op"] == "insert" and o["table"] == "Port" and o["row"]["name"] == "fb30"][0]
    assert fake_port["row"]["fake_bridge"] is True and fake_port["row"]["tag"] == ["set", [30]]
    # Members of an existing fake bridge: the parent's access ports of its VLAN.
    sw.add_port("br0", "fb30", type="internal", tag=30, fake_bridge=True)
    sw.add_port("br0", "v30a", tag=30)
    p = ops_of(sw.snapshot(), d)[0]
    assert p.changes == ["remove port v30a", "add port v30b (system)", "port v30b tag: 30"]


def test_fake_bridge_over_tagged_ports_is_refused():
    sw = FakeSwitch()
    sw.add_bridge("br0")
    sw.add_port("br0", "v30a", tag=30)
    with pytest.raises(ValidationError) as err:
        plan(sw.snapshot(), normalize_bridge({"name": "fb30", "parent": "br0", "vlan": 30}), {})
    assert "already has ports (v30a)" in str(err.value)


def test_port_of_another_bridge_is_refused():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1"])
    sw.add_bridge("br1")
    with pytest.raises(ValidationError) as err:
        plan(sw.snapshot(), desired(name="br1", ports=[{"name": "p1"}]), {})
    assert "already belongs to bridge 'br0'" in str(err.value)


def test_bridge_name_taken_by_a_port():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["eth9"])
    with pytest.raises(ValidationError) as err:
        plan(sw.snapshot(), desired(name="eth9"), {})
    assert "already a port of bridge 'br0'" in str(err.value)


def test_missing_parent_of_fake_bridge():
    with pytest.raises(ValidationError) as err:
        plan(FakeSwitch().snapshot(), normalize_bridge({"name": "fb", "parent": "nope", "vlan": 3}), {})
    assert "does not exist" in str(err.value)


def test_rstp_on_a_bridge_with_stp_is_refused():
    sw = FakeSwitch()
    sw.add_bridge("br0", stp_enable=True)
    with pytest.raises(ValidationError) as err:
        plan(sw.snapshot(), desired(rstp=True), {})
    assert "set stp: false" in str(err.value)
    assert plan(sw.snapshot(), desired(rstp=True, stp=False), {}).changes == [
        "bridge br0 stp: true -> false", "bridge br0 rstp: false -> true"]


def test_parent_ports_exclude_fake_bridges_and_their_vlan():
    sw = FakeSwitch()
    sw.add_bridge("br0", ports=["p1"])
    sw.add_port("br0", "fb30", type="internal", tag=30, fake_bridge=True)
    sw.add_port("br0", "v30a", tag=30)
    p = ops_of(sw.snapshot(), desired(ports=[{"name": "p1"}], ports_exclusive=True))[0]
    assert not p.changed
    with pytest.raises(ValidationError) as err:
        plan(sw.snapshot(), desired(ports=[{"name": "v30a"}]), {})
    assert "belongs to fake bridge 'fb30'" in str(err.value)


def test_fake_bridge_external_ids_are_prefixed_on_its_port():
    sw = FakeSwitch()
    sw.add_bridge("br0")
    sw.add_port("br0", "fb30", type="internal", tag=30, fake_bridge=True,
                external_ids={"fake-bridge-a": "1", "other": "x"})
    d = normalize_bridge({"name": "fb30", "parent": "br0", "vlan": 30, "external_ids": {"b": "2"}})
    p, ops = ops_of(sw.snapshot(), d)
    assert p.before["external_ids"] == {"a": "1"}
    assert p.changes == ["bridge fb30 external_ids: add b=2"]
    update = [o for o in ops if o["op"] == "update"][0]
    assert update["row"]["external_ids"] == ["map", [["fake-bridge-a", "1"], ["fake-bridge-b", "2"], ["other", "x"]]]


def test_creation_lists_the_values_it_creates_with():
    p = ops_of(FakeSwitch().snapshot(), desired(datapath_type="netdev", ports=[{"name": "p1", "tag": 5}]))[0]
    assert p.changes == ["create bridge br0", "bridge br0 datapath_type: netdev", "add port p1 (system)",
                         "port p1 tag: 5"]
