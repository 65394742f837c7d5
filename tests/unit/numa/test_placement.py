# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Strategies and validation of numa_policy (placement.model) on the recorded topologies."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import zlib

import pytest

import sysfs_tree

from ansible_collections.opdbus.infra.plugins.module_utils import numa
from ansible_collections.opdbus.infra.plugins.module_utils.placement import model


def topo(tmp_path, name):
    sysfs_tree.build(name, str(tmp_path))
    return numa.read_topology(str(tmp_path))


def params(**kw):
    base = dict(state="present", policy=None, nodes=None, strategy=None, local_cpu=None, cpus=None,
                cpus_from_nodes=False, allowed_cpus=None, allowed_memory_nodes=None)
    base.update(kw)
    return base


def test_local_node(tmp_path):
    t = topo(tmp_path, "e7_4870_4node")
    assert model.choose_node(t, "local_node", "a.service") == 0
    for cpu in (1, 5, 37):  # node 2's CPUs in the recorded numbering
        assert model.choose_node(t, "local_node", "a.service", local_cpu=cpu) == 2
    with pytest.raises(model.PlacementError, match="local_cpu 99 is not a CPU of any node"):
        model.choose_node(t, "local_node", "a.service", local_cpu=99)


def test_local_node_on_a_memoryless_node_takes_the_nearest_with_memory(tmp_path):
    t = topo(tmp_path, "memoryless_node")
    assert model.choose_node(t, "local_node", "a.service", local_cpu=9) == 0


def test_round_robin_is_the_documented_hash(tmp_path):
    t = topo(tmp_path, "cxl_2socket_2memonly")
    candidates = [0, 1]  # nodes with CPUs and memory: the CXL nodes have no CPUs
    seen = set()
    for i in range(20):
        unit = "worker-%d.service" % i
        node = model.choose_node(t, "round_robin", unit)
        assert node == candidates[zlib.crc32(unit.encode()) % 2]
        assert model.choose_node(t, "round_robin", unit) == node  # stable
        seen.add(node)
    assert seen == {0, 1}


def test_most_memory(tmp_path):
    t = topo(tmp_path, "cxl_2socket_2memonly")
    best = max(t.nodes_with_memory(), key=lambda n: t.nodes[n]["memory_free_kb"])
    assert model.choose_node(t, "most_memory", "a.service") == best
    t4 = topo(tmp_path / "e7", "e7_4870_4node")
    free = dict((n, t4.nodes[n]["memory_free_kb"]) for n in t4.node_ids)
    assert model.choose_node(t4, "most_memory", "a.service") == max(free, key=free.get)


def test_strategy_gives_a_bind_policy_and_cpus_from_nodes(tmp_path):
    t = topo(tmp_path, "e7_4870_4node")
    want = model.desired(params(strategy="local_node", local_cpu=3, cpus_from_nodes=True), t, "a.service")
    assert want.policy == "bind" and want.nodes == [3]
    assert want.settings == [("NUMAPolicy", "bind"), ("NUMAMask", "3"),
                             ("CPUAffinity", "3,7,11,15,19,23,27,31,35,39")]


def test_disabled_and_absent_remove(tmp_path):
    t = topo(tmp_path, "e7_4870_4node")
    assert model.desired(params(strategy="disabled", policy="bind"), t, "a.service").absent
    assert model.desired(params(state="absent"), t, "a.service").absent


@pytest.mark.parametrize("shape,kw,match", [
    ("e7_4870_4node", dict(policy="bind", nodes=["4"]), "NUMA node 4 does not exist on this machine"),
    ("e7_4870_4node", dict(policy="bind"), "policy bind needs nodes"),
    ("e7_4870_4node", dict(policy="interleave", nodes=[]), "policy interleave needs nodes"),
    ("e7_4870_4node", dict(policy="preferred", nodes=["0-1"]), "preferred takes exactly one node"),
    ("e7_4870_4node", dict(policy="local", nodes=["0"]), "policy local takes no nodes"),
    ("e7_4870_4node", dict(nodes=["0"]), "nodes need a policy"),
    ("e7_4870_4node", dict(policy="bind", nodes=["x"]), "nodes: 'x' is not a number"),
    ("e7_4870_4node", dict(policy="bind", nodes=["0"], strategy="round_robin"), "either nodes or strategy"),
    ("e7_4870_4node", dict(), "nothing to place"),
    ("e7_4870_4node", dict(cpus=["40"]), "CPU 40 does not exist"),
    ("e7_4870_4node_offline", dict(cpus=["36"]), "CPU 36 is offline"),
    ("e7_4870_4node_offline", dict(allowed_cpus=["0-39"]), "CPU 35 is offline"),
    ("memoryless_node", dict(policy="bind", nodes=["1"]), "NUMA node 1 has no memory"),
    ("memoryless_node", dict(allowed_memory_nodes=["1"]), "NUMA node 1 has no memory"),
    ("cxl_2socket_2memonly", dict(policy="bind", nodes=["2"], cpus_from_nodes=True), "node\\(s\\) 2 have no online CPU"),
    ("cxl_2socket_2memonly", dict(policy="bind", nodes=["0"], cpus=["0"], cpus_from_nodes=True), "either cpus or"),
])
def test_bad_requests(tmp_path, shape, kw, match):
    t = topo(tmp_path, shape)
    with pytest.raises(model.PlacementError, match=match):
        model.desired(params(**kw), t, "a.service")


def test_memory_only_node_can_be_bound(tmp_path):
    t = topo(tmp_path, "cxl_2socket_2memonly")
    want = model.desired(params(policy="interleave", nodes=["0", "2"], cpus=["0-3"]), t, "a.service")
    assert want.as_dict() == {"NUMAPolicy": "interleave", "NUMAMask": "0,2", "CPUAffinity": "0-3"}


def test_version_check():
    settings = [("NUMAPolicy", "bind"), ("NUMAMask", "0"), ("AllowedCPUs", "0")]
    model.check_version(settings, 244)
    with pytest.raises(model.PlacementError, match="AllowedCPUs= needs systemd 244 or later; the target runs systemd 243"):
        model.check_version(settings, 243)
    with pytest.raises(model.PlacementError, match="NUMAPolicy= needs systemd 243"):
        model.check_version(settings, 241)
    model.check_version([("CPUAffinity", "0")], 219)


def test_dropin_round_trip():
    settings = [("NUMAPolicy", "interleave"), ("NUMAMask", "0-1"), ("CPUAffinity", "0-3"), ("AllowedMemoryNodes", "0")]
    text = model.render_dropin(settings)
    assert text.startswith("# Managed by opdbus.infra.numa_policy")
    assert "\nNUMAMask=\nNUMAMask=0-1\n" in text
    assert model.parse_dropin(text) == dict(settings)
    assert model.render_dropin([]) is None
    assert model.parse_dropin("[Unit]\nCPUAffinity=1\n[Service]\nCPUAffinity=2\nCPUAffinity=\n") == {}


@pytest.mark.parametrize("policy,nodes,text", [
    ("bind", [0, 1], "bind:0-1"), ("interleave", [0, 2, 3], "interleave:0,2-3"), ("preferred", [1], "prefer:1"),
    ("local", [], "local"), ("default", [], "default"), (None, [], "default"),
])
def test_numa_maps_strings(policy, nodes, text):
    assert model.expected_numa_maps(policy, nodes) == text
