# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Disaster recovery round trip of opdbus.infra.system_state on the lab.

On the converged lab (the privacy chain of privacy_lab) plus a further flow cookie and a further
container: export (playbooks/export_state.yml), wipe everything the collection manages (the chain,
the extra container, the bridge, the chain's key directory), run ``site.yml -e @state.json``, export
again: the two documents are equal, and the client fetches through the rebuilt chain again.
Oracles besides the equality: ovs-vsctl (the bridge is gone after the wipe), lxc-ls, curl.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import shutil

from privacy_support import REPO


def extras(plab):
    """A further flow cookie, a further (busybox) container and a btrfs cache with a snapshot timer."""
    return dict(EXTRAS, opdbus_btrfs_caches=[{
        "filesystem": plab.env["OPDBUS_BTRFS_MNT"], "path": "rt-cache", "compression": "zstd", "compression_level": 3,
        "snapshot_schedule": "*-*-* 03:15:00", "retention": {"hourly": 6, "daily": 3, "weekly": 2, "quarterly": 1},
        "units_dir": units_dir(plab)}])


def units_dir(plab):
    return str(plab.key_dir.parent / "units-roundtrip")


EXTRAS = {
    "opdbus_flows": [{"bridge": "ovs-br0", "cookie": "0xd0b0f00",
                      "flows": ["table=0,priority=500,udp,in_port=2,tp_dst=9,actions=drop"]}],
    "opdbus_containers": [{"name": "opdbus-rt-bb", "template": "busybox", "state": "stopped", "memory_mb": 64}],
}


def _export(plab, dest):
    proc = plab.playbook("-e", json.dumps({"state_dest": str(dest), "opdbus_btrfs_units_dir": units_dir(plab)}),
                         playbook=REPO / "playbooks" / "export_state.yml")
    assert proc.returncode == 0, proc.stdout[-4000:]
    return json.loads(dest.read_text())


def _remove(plab, work, chain):
    """Remove the test's further flow cookie, container and cache; with ``chain`` also the chain and the bridge."""
    tasks = [
        "    - name: The further flows\n      opdbus.infra.openflow_flow:\n        bridge: ovs-br0\n        cookie: '0xd0b0f00'\n"
        "        flows: []\n        exclusive: true\n        rundir: %s\n" % plab.env["OVS_RUNDIR"],
        "    - name: The further container\n      opdbus.infra.lxc_container:\n        name: opdbus-rt-bb\n        state: absent\n",
        "    - name: The cache\n      opdbus.infra.btrfs_cache:\n        filesystem: %s\n        path: rt-cache\n"
        "        state: absent\n        units_dir: %s\n" % (plab.env["OPDBUS_BTRFS_MNT"], units_dir(plab)),
    ]
    if chain:
        tasks.insert(0, "    - name: The chain\n      ansible.builtin.include_role:\n        name: opdbus.infra.privacy_router\n"
                        "      vars:\n        privacy_router_state: absent\n        privacy_router_discover: false\n")
        tasks.append("    - name: The bridge\n      opdbus.infra.ovs_bridge:\n        name: ovs-br0\n        state: absent\n"
                     "        ovsdb: \"{{ opdbus_ovsdb }}\"\n")
    book = work / ("wipe.yml" if chain else "tidy.yml")
    book.write_text("- name: Remove what the collection manages\n  hosts: opdbus_full\n  gather_facts: false\n  tasks:\n"
                    + "".join(tasks))
    proc = plab.playbook(playbook=book)
    assert proc.returncode == 0, proc.stdout[-4000:]
    if chain:
        shutil.rmtree(str(plab.key_dir))


def test_export_wipe_converge_export_is_equal(privacy_lab, tmp_path):
    os.makedirs(units_dir(privacy_lab), exist_ok=True)
    extras_file = tmp_path / "extras.json"
    extras_file.write_text(json.dumps(extras(privacy_lab)))
    converge = privacy_lab.playbook("-e", "@%s" % extras_file)
    assert converge.returncode == 0, converge.stdout[-4000:]
    first = _export(privacy_lab, tmp_path / "state.json")
    # what the document holds: the lab's whole topology, in site.yml's variables
    assert first["opdbus_mode"] == "full"
    assert first["ovs_network_uplink"] == privacy_lab.uplink_if and first["ovs_network_mgmt_port"] == "mgmt0"
    assert sorted(p["name"] for p in first["ovs_network_privacy_ports"]) == ["priv_warp", "priv_wg", "priv_xray"]
    assert [(f["bridge"], int(f["cookie"], 16), len(f["flows"])) for f in first["opdbus_flows"]] == [("ovs-br0", 0xd0b0f00, 1)]
    assert "tp_dst=9" in first["opdbus_flows"][0]["flows"][0] and first["opdbus_flows"][0]["flows"][0].endswith("actions=drop")
    # every container of the lab's lxcpath besides the chain's (other suites' session containers included)
    assert "opdbus-rt-bb" in [c["name"] for c in first["opdbus_containers"]]
    assert not set(c["name"] for c in first["opdbus_containers"]) & {"ct100", "ct101", "ct102"}
    cache = first["opdbus_btrfs_caches"]
    assert len(cache) == 1 and cache[0]["path"] == "rt-cache" and cache[0]["compression_level"] == 3, cache
    assert cache[0]["snapshot_schedule"] == "*-*-* 03:15:00" and cache[0]["retention"]["hourly"] == 6
    assert first["privacy_router_vps"]["id"] is None and first["privacy_router_vps"]["id_file"]
    assert set(first["opdbus_packages"]) == {"openvswitch-switch", "iproute2", "btrfs-progs"}
    text = (tmp_path / "state.json").read_text()
    for secret in privacy_lab.secrets():
        assert secret not in text
    assert (tmp_path / "state.json").stat().st_mode & 0o777 == 0o600

    _remove(privacy_lab, tmp_path, chain=True)
    gone = privacy_lab.sh(["ovs-vsctl", "--db=%s" % privacy_lab.env["OPDBUS_OVSDB"], "br-exists", "ovs-br0"], check=False)
    assert gone.returncode == 2, "the bridge survived the wipe"
    listed = privacy_lab.sh(["lxc-ls", "-P", privacy_lab.lxcpath]).stdout.split()
    assert not set(listed) & {"ct100", "ct101", "ct102", "opdbus-rt-bb"}, listed
    assert not os.path.exists(os.path.join(privacy_lab.env["OPDBUS_BTRFS_MNT"], "rt-cache"))

    again = privacy_lab.playbook("-e", "@%s" % (tmp_path / "state.json"))
    assert again.returncode == 0, again.stdout[-6000:]
    second = _export(privacy_lab, tmp_path / "state2.json")
    assert second == first
    assert privacy_lab.wait_flowing() == "source=%s" % privacy_lab.vps
    # the test's own leftovers (the chain itself stays for the suite's teardown)
    _remove(privacy_lab, tmp_path, chain=False)
