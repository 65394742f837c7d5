# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The parts of opdbus.infra.system_state that need no lab: ports told apart, the privacy record, NUMA
drop-ins read back into numa_policy's options, the mode. (The whole document's round trip runs on the
lab: tests/integration/privacy/test_state_roundtrip.py.)"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json

from ansible_collections.opdbus.infra.plugins.module_utils import system_state as st
from ansible_collections.opdbus.infra.plugins.module_utils.placement import model


def _port(name, ptype, role=None, tag=None, ofport_request=None, ids=None, addresses=None):
    ext = dict(ids or {})
    if role:
        ext["opdbus-port"] = role
    return {"name": name, "tag": tag, "trunks": [], "vlan_mode": None, "external_ids": ext,
            "interfaces": [{"name": name, "type": ptype, "ofport_request": ofport_request, "options": {},
                            "addresses": addresses or []}]}


def test_ovs_part_tells_the_ports_apart(monkeypatch):
    bridge = {"name": "ovs-br0", "datapath_type": "netdev", "fail_mode": None, "protocols": ["OpenFlow15", "OpenFlow13"],
              "external_ids": {"opdbus-role": "host-bridge"},
              "ports": [_port("ovs-br0", "internal"),
                        _port("mgmt0", "internal", "mgmt", ofport_request=2, addresses=["192.0.2.1/24"]),
                        _port("priv_wg", "internal", "privacy", tag=4000, ofport_request=10),
                        _port("upl0", "system", "uplink", ofport_request=1),
                        _port("vx0", "vxlan", None, ids={"owner": "me"})]}
    from ansible_collections.opdbus.infra.plugins.module_utils.ovs import info
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc import rtnl
    monkeypatch.setattr(info, "gather", lambda endpoint, timeout=30.0, bridges=None, addresses=True: {"bridges": [bridge]})
    monkeypatch.setattr(rtnl, "dump_addresses", lambda: {"mgmt0": ["192.0.2.1/24"], "eth0": ["10.0.0.5/8"]})
    out = st.ovs_part("unix:/nowhere", "ovs-br0")
    assert out["ovs_network_mgmt_port"] == "mgmt0" and out["ovs_network_mgmt_addresses"] == ["192.0.2.1/24"]
    assert out["ovs_network_mgmt_ofport"] == 2
    assert out["ovs_network_uplink"] == "upl0" and out["ovs_network_uplink_ofport"] == 1
    assert out["ovs_network_privacy_ports"] == [{"name": "priv_wg", "type": "internal", "tag": 4000, "ofport_request": 10}]
    assert out["ovs_network_extra_ports"] == [{"name": "vx0", "type": "vxlan", "external_ids": {"owner": "me"}}]
    assert out["ovs_network_fail_mode"] == "standalone" and out["ovs_network_protocols"] == ["OpenFlow13", "OpenFlow15"]


def test_ovs_part_of_a_missing_bridge_is_empty(monkeypatch):
    from ansible_collections.opdbus.infra.plugins.module_utils.ovs import info
    monkeypatch.setattr(info, "gather", lambda endpoint, timeout=30.0, bridges=None, addresses=True: {"bridges": []})
    assert st.ovs_part("unix:/nowhere", "ovs-br0") == {}


def test_privacy_part_reads_the_record(tmp_path):
    assert st.privacy_part(str(tmp_path)) == {}
    (tmp_path / "config.json").write_text(json.dumps({"bridge": "ovs-br0", "vps": {"address": "203.0.113.10", "id": None}}))
    out = st.privacy_part(str(tmp_path))
    assert out == {"privacy_router_bridge": "ovs-br0", "privacy_router_vps": {"address": "203.0.113.10", "id": None}}
    assert st.mode_of(out, False) == "full" and st.mode_of({}, True) == "standalone" and st.mode_of({}, False) == "agent"
    assert st.chain_names(out) == ["ct100", "ct101", "ct102"]
    assert st.chain_names({"privacy_router_containers": {"warp": {"name": "w1"}}}) == ["ct100", "w1", "ct102"]


def test_privacy_part_refuses_a_broken_record(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    try:
        st.privacy_part(str(tmp_path))
    except ValueError as exc:
        assert "config.json is not JSON" in str(exc)
    else:
        raise AssertionError("a broken record was accepted")


def test_numa_dropins_read_back_as_numa_policy_options(tmp_path):
    settings = [("NUMAPolicy", "bind"), ("NUMAMask", "0-1"), ("CPUAffinity", "0-3 8"), ("AllowedMemoryNodes", "0")]
    (tmp_path / "db.service.d").mkdir()
    (tmp_path / "db.service.d" / "50-opdbus-numa.conf").write_text(model.render_dropin(settings))
    (tmp_path / "other.service.d").mkdir()
    (tmp_path / "other.service.d" / "10-someone-else.conf").write_text("[Service]\nCPUAffinity=1\n")
    (tmp_path / "plain.service").write_text("[Service]\nExecStart=/bin/true\n")
    out = st.numa_policies_part(str(tmp_path))
    assert out == [{"unit": "db.service", "policy": "bind", "nodes": ["0-1"], "cpus": ["0-3", "8"],
                    "allowed_memory_nodes": ["0"]}]
    assert st.numa_policies_part(str(tmp_path / "missing")) == []


def test_btrfs_caches_part_without_units_is_empty(tmp_path):
    assert st.btrfs_caches_part(str(tmp_path)) == []
    assert st.btrfs_caches_part(str(tmp_path / "missing")) == []
