# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""numa_info and numa_policy run as processes (as Ansible runs them) on this host and on recorded trees.

This host runs no systemd: numa_policy's validation must fail on its own, before systemd is asked,
and an unreachable systemd must give a clean message.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import sysfs_tree

MODULES = "ansible_collections.opdbus.infra.plugins.modules.%s"


def run_module(name, args, tmp_path, env=None):
    path = tmp_path / ("%s-args.json" % name)
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    environ = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    environ.update(env or {})
    proc = subprocess.run([sys.executable, "-m", MODULES % name, str(path)], capture_output=True, text=True,
                          env=environ, timeout=120, check=False)
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_numa_info_on_a_recorded_tree(tmp_path):
    shape = sysfs_tree.build("e7_4870_4node_offline", str(tmp_path / "sys"))
    res = run_module("numa_info", {"sysfs_root": str(tmp_path / "sys")}, tmp_path)
    assert res["changed"] is False and res["ansible_facts"]["opdbus_numa"] == res["topology"]
    assert res["topology"]["node_ids"] == sorted(int(n) for n in shape["nodes"])
    assert res["topology"]["offline_cpus"] == sysfs_tree.numbers(shape["cpus_offline"])


def test_numa_info_without_numa(tmp_path):
    res = run_module("numa_info", {"sysfs_root": str(tmp_path)}, tmp_path)
    assert res["failed"] is True and "no NUMA information" in res["msg"]


def test_numa_policy_refuses_a_node_this_host_does_not_have(tmp_path):
    with open("/sys/devices/system/node/online") as fh:
        online = fh.read().strip()
    missing = sysfs_tree.numbers(online.replace(",", " ").replace("-", " "))[-1] + 1
    res = run_module("numa_policy", {"unit": "app", "policy": "bind", "nodes": [str(missing)]}, tmp_path)
    assert res["failed"] is True
    assert res["msg"] == "invalid input: nodes: NUMA node %d does not exist on this machine (nodes: %s)" % (missing, online)


def test_numa_policy_on_a_recorded_tree_without_systemd(tmp_path):
    sysfs_tree.build("memoryless_node", str(tmp_path / "sys"))
    res = run_module("numa_policy", {"unit": "app", "policy": "bind", "nodes": ["1"], "sysfs_root": str(tmp_path / "sys")},
                     tmp_path)
    assert res["msg"] == "invalid input: nodes: NUMA node 1 has no memory (nodes with memory: 0)"
    res = run_module("numa_policy", {"unit": "app", "policy": "bind", "nodes": ["0"], "sysfs_root": str(tmp_path / "sys"),
                                     "bus": "private"}, tmp_path)
    if not os.path.exists("/run/systemd/private"):
        assert res["failed"] is True and res["msg"].startswith("cannot reach systemd:"), res
        assert "/run/systemd/private" in res["msg"]
