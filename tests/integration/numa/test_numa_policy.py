# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""numa_info and numa_policy inside a Debian bookworm container with systemd as PID 1 (systemd 252),
run by ansible-playbook through the opdbus.infra.lxc connection (fixture numa_ct, numa_support.py).

Oracles: systemctl show, cat /proc/<MainPID>/{status,numa_maps}, cat /sys/... inside the container,
and the drop-in files as the host sees them in the container's rootfs. The host has one NUMA node
(node 0); multi-node topologies reach the module through sysfs_root (recorded trees, check mode).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import secrets
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "unit", "numa"))
import sysfs_tree  # noqa: E402  pylint: disable=wrong-import-position

DROPIN = "50-opdbus-numa.conf"


def policy_task(args, name="numa_policy", **extra):
    task = {"name": name, "opdbus.infra.numa_policy": args}
    task.update(extra)
    return task


@pytest.fixture
def service(numa_ct):
    unit = "opdbus-numa-%s.service" % secrets.token_hex(3)
    numa_ct.make_service(unit)
    yield unit
    numa_ct.remove_service(unit)


def dropin_text(ct, unit):
    path = ct.rootfs / "etc" / "systemd" / "system" / (unit + ".d") / DROPIN
    return path.read_text() if path.exists() else None


def dominant(counts):
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]


def test_numa_info_is_what_sysfs_says(numa_ct):
    rc, results, out = numa_ct.playbook([{"name": "info", "opdbus.infra.numa_info": {}}])
    assert rc == 0, out
    facts = results[0]["ansible_facts"]["opdbus_numa"]
    assert facts == results[0]["topology"]
    nodes = sorted(int(n[4:]) for n in numa_ct.out("ls /sys/devices/system/node").split() if n[4:].isdigit())
    assert facts["node_ids"] == nodes
    for entry in facts["nodes"]:
        assert entry["cpulist"] == numa_ct.out("cat /sys/devices/system/node/node%d/cpulist" % entry["id"])
        total = [line.split()[3] for line in numa_ct.out("cat /sys/devices/system/node/node%d/meminfo" % entry["id"]).splitlines()
                 if line.split()[2] == "MemTotal:"][0]
        assert entry["memory_total_kb"] == int(total)
    online = []
    for part in numa_ct.out("cat /sys/devices/system/cpu/online").split(","):
        low, _sep, high = part.partition("-")
        online.extend(range(int(low), int(high or low) + 1))
    assert facts["online_cpus"] == online


def test_numa_info_on_a_recorded_tree(numa_ct):
    root = "/root/shape-cxl"
    shape = sysfs_tree.build("cxl_2socket_2memonly", str(numa_ct.rootfs) + root)
    rc, results, out = numa_ct.playbook([{"name": "info", "opdbus.infra.numa_info": {"sysfs_root": root}}])
    assert rc == 0, out
    topo = results[0]["topology"]
    assert topo["node_ids"] == [0, 1, 2, 3]
    assert topo["nodes_with_cpus"] == [0, 1]
    assert [n["memory_total_kb"] for n in topo["nodes"]] == [shape["nodes"][str(i)]["size_mb"] * 1024 for i in range(4)]


def test_bind_over_the_private_socket_check_apply_idempotent(numa_ct, service):
    assert numa_ct.sh("systemctl is-active dbus.service", check=False).stdout.strip() != "active"
    pid_before, status_before, maps_before = numa_ct.proc_status(service)
    args = {"unit": service, "policy": "bind", "nodes": ["0"], "cpus": ["1"], "restart": True}

    rc, results, out = numa_ct.playbook([policy_task(args)], check=True, diff=True)
    assert rc == 0, out
    check = results[0]
    assert check["changed"] is True and check["bus"] == "private"
    assert [c["action"] for c in check["changes"]] == ["write", "reload", "restart"]
    assert dropin_text(numa_ct, service) is None
    assert numa_ct.prop(service, "NUMAPolicy") == "n/a"
    assert numa_ct.proc_status(service)[0] == pid_before

    rc, results, out = numa_ct.playbook([policy_task(args), policy_task(args, "again")], diff=True)
    assert rc == 0, out
    real, again = results
    assert real["changes"] == check["changes"] and real["diff"] == check["diff"]
    assert dropin_text(numa_ct, service) == real["diff"]["after"]
    assert numa_ct.prop(service, "NUMAPolicy") == "bind"
    assert numa_ct.prop(service, "NUMAMask") == "0"
    assert numa_ct.prop(service, "CPUAffinity") == "1"
    pid, status, maps = numa_ct.proc_status(service)
    assert pid != pid_before and real["restarted"] is True
    assert status["Cpus_allowed_list"] == "1"
    assert dominant(maps) == "bind:0" and dominant(maps_before) == "default"
    # numa_policies counts mappings, which the dynamic loader may still be adding while the module reads
    effective = dict(real["effective"])
    assert set(effective.pop("numa_policies")) == set(maps)
    assert effective == {"main_pid": pid, "cpus_allowed_list": status["Cpus_allowed_list"],
                         "mems_allowed_list": status["Mems_allowed_list"], "numa_policy": "bind:0"}
    assert real["pending_restart"] is False
    assert again["changed"] is False and again["changes"] == [] and again["restarted"] is False
    assert numa_ct.proc_status(service)[0] == pid


def test_interleave_on_the_system_bus_pending_then_restart(numa_ct, service):
    numa_ct.sh("systemctl start dbus.service")
    try:
        pid_before = numa_ct.proc_status(service)[0]
        args = {"unit": service, "policy": "interleave", "nodes": ["0"], "cpus_from_nodes": True}
        rc, results, out = numa_ct.playbook([policy_task(args)])
        assert rc == 0, out
        res = results[0]
        assert res["bus"] == "system" and res["changed"] is True
        assert [c["action"] for c in res["changes"]] == ["write", "reload"]
        assert res["pending_restart"] is True and res["restarted"] is False
        pid, status, maps = numa_ct.proc_status(service)
        assert pid == pid_before and dominant(maps) == "default"
        assert numa_ct.prop(service, "NUMAPolicy") == "interleave"  # systemd has the setting, the process not yet
        cpus_node0 = numa_ct.out("cat /sys/devices/system/node/node0/cpulist")
        assert res["settings"]["CPUAffinity"] == cpus_node0

        rc, results, out = numa_ct.playbook([policy_task(dict(args, restart=True)), policy_task(dict(args, restart=True), "again")])
        assert rc == 0, out
        restart, again = results
        assert [c["action"] for c in restart["changes"]] == ["restart"]
        pid, status, maps = numa_ct.proc_status(service)
        assert pid != pid_before and dominant(maps) == "interleave:0"
        assert status["Cpus_allowed_list"] == cpus_node0
        assert restart["effective"]["numa_policy"] == "interleave:0" and restart["pending_restart"] is False
        assert again["changed"] is False
    finally:
        numa_ct.sh("systemctl stop dbus.socket dbus.service")


@pytest.mark.parametrize("policy,args,expected", [
    ("preferred", {"strategy": "most_memory"}, "prefer:0"),
    ("local", {}, "local"),
])
def test_other_policies_read_back(numa_ct, service, policy, args, expected):
    rc, results, out = numa_ct.playbook([policy_task(dict(args, unit=service, policy=policy, restart=True))])
    assert rc == 0, out
    assert dominant(numa_ct.proc_status(service)[2]) == expected == results[0]["effective"]["numa_policy"]


def test_allowed_cpus_set_live_without_restart(numa_ct, service):
    pid_before, status_before, _maps = numa_ct.proc_status(service)
    args = {"unit": service, "allowed_cpus": ["0"], "allowed_memory_nodes": ["0"]}
    rc, results, out = numa_ct.playbook([policy_task(args), policy_task(args, "again")])
    assert rc == 0, out
    res, again = results
    assert [c["action"] for c in res["changes"]] == ["write", "reload", "live"]
    assert again["changed"] is False
    assert numa_ct.prop(service, "AllowedCPUs") == "0"
    assert numa_ct.prop(service, "AllowedMemoryNodes") == "0"
    runtime = numa_ct.out("cat /run/systemd/system.control/%s.d/50-AllowedCPUs.conf" % service)
    assert "AllowedCPUs=0" in runtime.splitlines()
    pid, status, _maps = numa_ct.proc_status(service)
    assert pid == pid_before and res["restarted"] is False
    enforced = "cpuset" in numa_ct.sh("cat /sys/fs/cgroup/cgroup.controllers", check=False).stdout.split()
    assert res["cpuset_enforced"] is enforced
    if enforced:
        assert status["Cpus_allowed_list"] == "0"
    else:
        # cgroup v1/hybrid: systemd records AllowedCPUs= but has no cpuset to write it to.
        assert status["Cpus_allowed_list"] == status_before["Cpus_allowed_list"]
        # the callback displays warnings (stderr) and takes them out of the result
        assert "are recorded but not enforced on this target" in " ".join(out.split()), out


def test_absent_removes_the_dropin_and_the_runtime_values(numa_ct, service):
    args = {"unit": service, "policy": "bind", "nodes": ["0"], "allowed_cpus": ["1"]}
    rc, results, out = numa_ct.playbook([policy_task(args),
                                         policy_task({"unit": service, "strategy": "disabled"}, "disabled"),
                                         policy_task({"unit": service, "state": "absent"}, "absent again")])
    assert rc == 0, out
    present, disabled, again = results
    assert present["changed"] is True
    assert [c["action"] for c in disabled["changes"]] == ["remove", "reload", "live"]
    assert dropin_text(numa_ct, service) is None
    assert numa_ct.prop(service, "NUMAPolicy") == "n/a"
    assert numa_ct.prop(service, "AllowedCPUs") == ""
    assert again["changed"] is False


def test_strategies_on_a_recorded_four_node_tree_in_check_mode(numa_ct, service):
    root = "/root/shape-e7"
    shape = sysfs_tree.build("e7_4870_4node", str(numa_ct.rootfs) + root)
    free = dict((int(n), info["free_mb"]) for n, info in shape["nodes"].items())
    richest = max(free, key=free.get)
    rc, results, out = numa_ct.playbook([
        policy_task({"unit": service, "strategy": "most_memory", "sysfs_root": root}, "most"),
        policy_task({"unit": service, "strategy": "local_node", "local_cpu": 5, "cpus_from_nodes": True,
                     "sysfs_root": root}, "local"),
    ], check=True)
    assert rc == 0, out
    most, local = results
    assert most["settings"] == {"NUMAPolicy": "bind", "NUMAMask": str(richest)}
    node_of_5 = [int(n) for n, info in shape["nodes"].items() if 5 in sysfs_tree.numbers(info["cpus"])][0]
    assert local["nodes"] == [node_of_5]
    assert local["settings"]["CPUAffinity"] == sysfs_tree.kernel_list(sysfs_tree.numbers(shape["nodes"][str(node_of_5)]["cpus"]))
    assert dropin_text(numa_ct, service) is None


def test_bad_inputs_fail_before_touching_anything(numa_ct, service):
    nodes_here = numa_ct.out("cat /sys/devices/system/node/online")
    cases = [
        ({"unit": service, "policy": "bind", "nodes": ["1"]}, "NUMA node 1 does not exist on this machine (nodes: %s)" % nodes_here),
        ({"unit": service, "policy": "bind"}, "policy bind needs nodes"),
        ({"unit": service, "policy": "interleave", "nodes": []}, "policy interleave needs nodes"),
        ({"unit": "opdbus-no-such-unit", "policy": "local"}, "unit opdbus-no-such-unit.service does not exist"),
        ({"unit": service, "cpus": ["4096"]}, "CPU 4096 does not exist on this machine"),
        ({"unit": service, "policy": "local", "nodes": ["0"]}, "policy local takes no nodes"),
    ]
    tasks = [policy_task(args, "bad %d" % i, ignore_errors=True) for i, (args, _msg) in enumerate(cases)]
    pid_before = numa_ct.proc_status(service)[0]
    rc, results, out = numa_ct.playbook(tasks)
    for (args, msg), res in zip(cases, results):
        assert res.get("failed") is True, res
        assert msg in res["msg"], (msg, res["msg"])
    assert len(results) == len(cases)
    assert dropin_text(numa_ct, service) is None
    assert numa_ct.prop(service, "NUMAPolicy") == "n/a"
    assert numa_ct.proc_status(service)[0] == pid_before
