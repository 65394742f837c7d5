# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container spec both backends speak: validation, normalisation, comparison."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import (
    SPEC_KEYS, ValidationError, needs_restart, normalise_spec, spec_changes,
)

GOOD = {
    "name": "ct100", "id": 100, "hostname": "wg-gateway.lab", "template": "debian", "cores": 2, "memory_mb": 512,
    "swap_mb": 0, "rootfs_gb": 4, "onboot": True, "unprivileged": False,
    "features": {"nesting": True, "tun": True},
    "network": [{"type": "socket", "bridge": "ovs-br0", "port": "priv_wg", "address": "10.100.0.2/24", "gateway": "10.100.0.1"},
                {"bridge": "ovs-br0", "address": "dhcp", "hwaddr": "BC-24-11-00-00-01"}],
    "mounts": [{"source": "/srv/data", "target": "/data/", "readonly": True}],
}


def test_normalise_fills_defaults_and_canonical_forms():
    spec = normalise_spec(GOOD)
    assert tuple(spec) == SPEC_KEYS
    assert spec["features"] == {"nesting": True, "tun": True, "keyctl": False, "fuse": False}
    assert [nic["name"] for nic in spec["network"]] == ["eth0", "eth1"]
    assert spec["network"][1]["type"] == "veth" and spec["network"][1]["hwaddr"] == "bc:24:11:00:00:01"
    assert spec["network"][0]["address"] == "10.100.0.2/24" and spec["mounts"][0]["target"] == "/data"
    assert normalise_spec({"name": "a"})["cores"] is None
    assert normalise_spec(spec) == spec


BAD = [
    ("not a dict", "must be a dict"),
    ({"colour": "red"}, "unknown settings colour"),
    ({"name": "-bad"}, "name '-bad'"),
    ({"name": "x" * 64}, "name 'xxx"),
    ({"name": "has space"}, "name 'has space'"),
    ({"id": 99}, "id must be between 100 and 999999999"),
    ({"id": 1000000000}, "id must be between"),
    ({"id": "100"}, "id must be an integer"),
    ({"id": True}, "id must be an integer"),
    ({"hostname": "under_score"}, "not a valid host name"),
    ({"hostname": "-lead"}, "not a valid host name"),
    ({"cores": 0}, "cores must be between 1 and 8192"),
    ({"cores": 1.5}, "cores must be an integer"),
    ({"memory_mb": 8}, "memory_mb must be at least 16"),
    ({"swap_mb": -1}, "swap_mb must be at least 0"),
    ({"rootfs_gb": 0}, "rootfs_gb must be at least 1"),
    ({"onboot": "yes"}, "onboot must be true or false"),
    ({"unprivileged": 1}, "unprivileged must be true or false"),
    ({"features": ["nesting"]}, "features must be a dict"),
    ({"features": {"docker": True}}, "unknown features docker"),
    ({"features": {"tun": "on"}}, "features.tun must be true or false"),
    ({"network": {"eth0": {}}}, "network must be a list"),
    ({"network": ["eth0"]}, "network[0] must be a dict"),
    ({"network": [{"mtu": 1500}]}, "network[0]: unknown keys mtu"),
    ({"network": [{"type": "macvlan"}]}, "network[0].type must be one of veth, socket"),
    ({"network": [{"type": "socket"}]}, "a socket interface needs the OVS bridge"),
    ({"network": [{"name": "averyveryverylongname"}]}, "is not an interface name"),
    ({"network": [{"bridge": "br 0"}]}, "network[0].bridge 'br 0'"),
    ({"network": [{"address": "10.0.0.300/24"}]}, "not an address with a prefix"),
    ({"network": [{"address": "10.0.0.3"}]}, "needs a prefix length"),
    ({"network": [{"address": "dhcp", "gateway": "10.0.0.1"}]}, "gateway needs a static address"),
    ({"network": [{"address": "10.0.0.3/24", "gateway": "10.0.1.1"}]}, "gateway 10.0.1.1 is not in 10.0.0.0/24"),
    ({"network": [{"address": "10.0.0.3/24", "gateway": "router"}]}, "gateway 'router' is not an IP address"),
    ({"network": [{"hwaddr": "zz:00:00:00:00:00"}]}, "is not a MAC address"),
    ({"network": [{"hwaddr": "01:00:5e:00:00:01"}]}, "is a multicast address"),
    ({"network": [{"name": "eth0"}, {"name": "eth0"}]}, "interface names must be unique"),
    ({"mounts": {"a": "b"}}, "mounts must be a list"),
    ({"mounts": [{"source": "/a"}]}, "mounts[0] needs source and target"),
    ({"mounts": [{"source": "/a", "target": "rel"}]}, "must be an absolute path"),
    ({"mounts": [{"source": "/a", "target": "/x/../etc"}]}, "without '..'"),
    ({"mounts": [{"source": "/a", "target": "/"}]}, "must be an absolute path below /"),
    ({"mounts": [{"source": "/a", "target": "/b", "ro": True}]}, "mounts[0]: unknown keys ro"),
]


@pytest.mark.parametrize("spec, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_refused_with_a_clear_message(spec, message):
    with pytest.raises(ValidationError) as info:
        normalise_spec(spec)
    assert message in str(info.value)


def test_at_least_thirty_distinct_bad_inputs():
    assert len(BAD) >= 30 and len({m for s, m in BAD}) >= 30


def test_changes_only_managed_keys_and_ignores_backend_chosen_mac():
    desired = normalise_spec({"name": "ct", "cores": 2, "network": [{"bridge": "ovs-br0", "address": "dhcp"}]})
    current = normalise_spec({"name": "ct", "cores": 2, "memory_mb": 1024, "hostname": "ct",
                              "network": [{"bridge": "ovs-br0", "address": "dhcp", "hwaddr": "bc:24:11:aa:bb:cc"}]})
    assert spec_changes(current, desired) == {}
    desired["cores"] = 4
    desired["hostname"] = "other"
    changes = spec_changes(current, desired)
    assert sorted(changes) == ["cores", "hostname"] and changes["cores"] == (2, 4)
    assert needs_restart(changes) == ["hostname"]
    pinned = normalise_spec({"network": [{"bridge": "ovs-br0", "address": "dhcp", "hwaddr": "bc:24:11:00:00:01"}]})
    assert sorted(spec_changes(current, pinned)) == ["network"]


def test_backend_chosen_port_is_not_a_change_unless_asked_for():
    current = normalise_spec({"network": [{"bridge": "ovs-br0", "address": "dhcp", "port": "veth100i0"}]})
    assert spec_changes(current, normalise_spec({"network": [{"bridge": "ovs-br0", "address": "dhcp"}]})) == {}
    assert sorted(spec_changes(current, normalise_spec({"network": [{"bridge": "ovs-br0", "address": "dhcp", "port": "ct100p0"}]}))) == [
        "network"]
