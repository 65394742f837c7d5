# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""numa.read_topology on recorded sysfs trees of multi-node machines (see README.md), compared with
the numactl form of the same data."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

import sysfs_tree

from ansible_collections.opdbus.infra.plugins.module_utils import numa


@pytest.fixture(params=sysfs_tree.SHAPES)
def recorded(request, tmp_path):
    shape = sysfs_tree.build(request.param, str(tmp_path))
    return request.param, shape, numa.read_topology(str(tmp_path))


def test_every_shape_parses_like_numactl_printed_it(recorded):
    name, shape, topo = recorded
    offline = set(sysfs_tree.numbers(shape["cpus_offline"])) if shape["cpus_offline"] else set()
    assert topo.node_ids == sorted(int(n) for n in shape["nodes"]), name
    for node, info in shape["nodes"].items():
        node = int(node)
        cpus = sysfs_tree.numbers(info["cpus"]) if info["cpus"] else []
        got = topo.nodes[node]
        assert got["cpus"] == sorted(c for c in cpus if c not in offline)
        assert got["offline_cpus"] == sorted(c for c in cpus if c in offline)
        assert got["memory_total_kb"] == info["size_mb"] * 1024
        assert got["memory_free_kb"] == info["free_mb"] * 1024
        assert [got["distances"][other] for other in topo.node_ids] == info["distances"]
        assert got["has_memory"] is (info["size_mb"] > 0)
        assert got["has_cpu"] is bool([c for c in cpus if c not in offline])
        assert got["has_normal_memory"] is info["normal_memory"]
        assert got["distances"][node] == 10
    assert topo.offline_cpus == sorted(offline)
    assert set(topo.online_cpus) | set(topo.offline_cpus) == set(sysfs_tree.numbers(shape["cpus_possible"]))


def test_facts_are_plain_json_data(recorded):
    import json
    name, shape, topo = recorded
    facts = json.loads(json.dumps(topo.as_dict()))
    assert facts["node_count"] == len(shape["nodes"])
    for entry in facts["nodes"]:
        assert entry["cpulist"] == sysfs_tree.kernel_list(entry["cpus"])
        for cpu in entry["cpus"]:
            assert facts["cpu_nodes"][str(cpu)] == entry["id"]
    assert sorted(facts["nodes_with_memory"]) == sorted(int(n) for n, i in shape["nodes"].items() if i["size_mb"]), name


def test_cxl_memory_only_nodes(tmp_path):
    sysfs_tree.build("cxl_2socket_2memonly", str(tmp_path))
    topo = numa.read_topology(str(tmp_path))
    assert topo.nodes_with_cpus() == [0, 1]
    assert topo.nodes_with_memory() == [0, 1, 2, 3]
    assert topo.nodes[2]["cpus"] == [] and topo.nodes[2]["has_cpu"] is False
    # CXL node 2 hangs off socket 0 (distance 14), node 3 off socket 1
    assert topo.nearest_with_memory(2) == 2
    assert topo.nodes[0]["hugepages"] == {"2048kB": {"total": 512, "free": 500, "surplus": 0},
                                          "1048576kB": {"total": 2, "free": 2, "surplus": 0}}
    assert topo.node_of_cpu(104) == 0 and topo.node_of_cpu(156) == 1


def test_offline_cpus_keep_their_node(tmp_path):
    sysfs_tree.build("e7_4870_4node_offline", str(tmp_path))
    topo = numa.read_topology(str(tmp_path))
    # 35 is on node 3, 36 on node 0, 37 on node 2, 38 on node 1, 39 on node 3 (round-robin numbering)
    assert topo.offline_cpus == [35, 36, 37, 38, 39]
    assert topo.node_of_cpu(36) == 0 and 36 not in topo.nodes[0]["cpus"]
    assert topo.nodes[3]["offline_cpus"] == [35, 39]
    with open(os.path.join(str(tmp_path), "devices/system/node/node3/cpulist")) as fh:
        assert fh.read().strip() == "3,7,11,15,19,23,27,31"


def test_memoryless_node(tmp_path):
    sysfs_tree.build("memoryless_node", str(tmp_path))
    topo = numa.read_topology(str(tmp_path))
    assert topo.nodes[1]["has_memory"] is False and topo.nodes[1]["cpus"] == list(range(8, 16))
    assert topo.nearest_with_memory(1) == 0


def test_this_machine():
    topo = numa.read_topology("/sys")
    with open("/sys/devices/system/cpu/online") as fh:
        assert topo.online_cpus == numa.parse_list(fh.read())
    assert 0 in topo.nodes


def test_no_numa_in_sysfs(tmp_path):
    (tmp_path / "devices" / "system" / "cpu").mkdir(parents=True)
    with pytest.raises(numa.NumaUnavailable, match="no NUMA information"):
        numa.read_topology(str(tmp_path))


@pytest.mark.parametrize("text,nums", [
    ("", []), ("0", [0]), ("0-3", [0, 1, 2, 3]), ("0-1,4,6-7", [0, 1, 4, 6, 7]), (" 2 ,0 ", [0, 2]),
    (["0-1", "3"], [0, 1, 3]), ([5, 1], [1, 5]), (3, [3]),
])
def test_parse_and_format_lists(text, nums):
    assert numa.parse_list(text) == nums
    assert numa.parse_list(numa.format_list(nums)) == nums
    assert numa.format_list(nums) == sysfs_tree.kernel_list(nums)


@pytest.mark.parametrize("bad", ["a", "3-1", "1-", "-1", "0x1", "1..3"])
def test_bad_lists(bad):
    with pytest.raises(numa.NumaInputError):
        numa.parse_list(bad)


def test_proc_read_back(tmp_path):
    pid = tmp_path / "42"
    pid.mkdir()
    (pid / "status").write_text("Name:\tsleep\nCpus_allowed:\t3\nCpus_allowed_list:\t0-1\nMems_allowed_list:\t0\n")
    (pid / "numa_maps").write_text("55d0 bind:0 file=/usr/bin/sleep mapped=2 N0=2\n"
                                   "55d1 bind:0 anon=1 dirty=1 N0=1\n7ffd default stack anon=3 N0=3\n")
    assert numa.read_status(42, str(tmp_path)) == {"cpus_allowed_list": "0-1", "mems_allowed_list": "0"}
    assert numa.read_numa_policy(42, str(tmp_path)) == ("bind:0", {"bind:0": 2, "default": 1})
    assert numa.read_status(43, str(tmp_path)) is None
    assert numa.read_numa_policy(43, str(tmp_path)) == (None, {})


def test_cpuset_on_unified(tmp_path):
    assert numa.cpuset_on_unified(str(tmp_path)) is False
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    assert numa.cpuset_on_unified(str(tmp_path)) is False
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    assert numa.cpuset_on_unified(str(tmp_path)) is True
