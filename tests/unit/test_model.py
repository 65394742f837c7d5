import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import (
    ValidationError, normalize_bridge, normalize_port,
)


def bridge(**kw):
    params = {"name": "br0", "state": "present"}
    params.update(kw)
    return normalize_bridge(params)


def port(**kw):
    spec = {"name": "p0", "type": "system"}
    spec.update(kw)
    return normalize_port(spec, "br0")


def test_minimal_bridge_defaults():
    d = bridge()
    assert d["ports"] is None and d["parent"] is None and d["datapath_type"] is None
    assert d["external_ids"] == {} and not d["purge_external_ids"]


def test_map_values_become_strings():
    d = bridge(external_ids={"n": 1, "flag": True, "s": "x"})
    assert d["external_ids"] == {"n": "1", "flag": "true", "s": "x"}


def test_trunks_sorted_deduplicated():
    assert port(trunks=[30, 10, 30])["trunks"] == [10, 30]


def test_addresses_canonical_and_sorted():
    p = port(type="internal", addresses=["2001:DB8::1/64", "10.0.0.1/24"])
    assert p["addresses"] == ["10.0.0.1/24", "2001:db8::1/64"]


def test_patch_puts_peer_in_options():
    assert port(type="patch", peer="other")["options"] == {"peer": "other"}


def test_tunnel_options():
    p = port(type="vxlan", remote_ip="192.0.2.1", key="0042", options={"dst_port": 4790})
    assert p["options"] == {"remote_ip": "192.0.2.1", "key": "42", "dst_port": "4790"}


def test_fake_bridge_ports_get_its_vlan():
    d = normalize_bridge({"name": "fb", "parent": "br0", "vlan": 30, "ports": [{"name": "p1", "type": "system"}]})
    assert d["ports"][0]["tag"] == 30


@pytest.mark.parametrize("kw,fragment", [
    ({"name": "a" * 16}, "at most 15 bytes"),
    ({"name": "bad/name"}, "not allowed"),
    ({"name": ""}, "non-empty"),
    ({"parent": "br1"}, "both 'parent' and 'vlan'"),
    ({"parent": "br1", "vlan": 5000}, "out of range"),
    ({"parent": "br1", "vlan": 5, "fail_mode": "secure"}, "apply only to real bridges"),
    ({"parent": "br0", "vlan": 5}, "its own parent"),
    ({"stp": True, "rstp": True}, "exclusive"),
    ({"controller": ["http://x"]}, "controller target"),
    ({"protocols": ["OpenFlow99"]}, "unknown OpenFlow protocol"),
    ({"state": "absent", "ports": [{"name": "p"}]}, "state=absent"),
    ({"external_ids": {"k": [1]}}, "must be a string"),
    ({"ports": [{"name": "p1"}, {"name": "p1"}]}, "listed twice"),
    ({"ports": [{"name": "br0", "type": "system"}]}, "always of type internal"),
])
def test_bad_bridge(kw, fragment):
    with pytest.raises(ValidationError) as err:
        bridge(**kw)
    assert fragment in str(err.value)


@pytest.mark.parametrize("kw,fragment", [
    ({"type": "bond"}, "unknown type"),
    ({"type": "patch"}, "needs 'peer'"),
    ({"type": "patch", "peer": "p0"}, "its own peer"),
    ({"peer": "x"}, "applies only to type patch"),
    ({"type": "gre"}, "needs 'remote_ip'"),
    ({"type": "gre", "remote_ip": "nope"}, "not an IP address"),
    ({"type": "vxlan", "remote_ip": "192.0.2.1", "key": "16777216"}, "key"),
    ({"remote_ip": "192.0.2.1"}, "only to tunnel types"),
    ({"key": "5"}, "only to tunnel types"),
    ({"tag": 4096}, "out of range"),
    ({"tag": -1}, "out of range"),
    ({"trunks": [1, 5000]}, "out of range"),
    ({"vlan_mode": "access", "trunks": [10]}, "no trunks"),
    ({"vlan_mode": "native-untagged"}, "needs 'tag'"),
    ({"vlan_mode": "trunk", "tag": 3}, "no effect"),
    ({"ofport_request": 0}, "out of range"),
    ({"ofport_request": 70000}, "out of range"),
    ({"type": "internal", "addresses": ["10.0.0.300/24"]}, "not a valid CIDR"),
    ({"type": "internal", "addresses": ["10.0.0.3"]}, "no prefix length"),
    ({"type": "internal", "addresses": ["224.0.0.1/4"]}, "cannot be assigned"),
    ({"type": "internal", "addresses": ["10.0.0.1/24", "10.0.0.1/24"]}, "twice"),
    ({"addresses": ["10.0.0.1/24"]}, "only to internal ports"),
    ({"up": True, "type": "patch", "peer": "x"}, "only to internal ports"),
])
def test_bad_port(kw, fragment):
    with pytest.raises(ValidationError) as err:
        port(**kw)
    assert fragment in str(err.value)


def test_ipv6_link_local_is_refused_ipv4_link_local_is_managed():
    with pytest.raises(ValidationError) as err:
        port(type="internal", addresses=["fe80::1/64"])
    assert "link-local" in str(err.value)
    assert port(type="internal", addresses=["169.254.7.7/16"])["addresses"] == ["169.254.7.7/16"]
