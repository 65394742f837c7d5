# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expand a recorded topology (data/*.json, see README.md) into a sysfs-shaped directory.

Written on purpose without the collection's code: the kernel list format is produced here by its
own small routine.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data")
SHAPES = sorted(f[:-5] for f in os.listdir(DATA) if f.endswith(".json"))


def load(name):
    with open(os.path.join(DATA, name + ".json")) as fh:
        return json.load(fh)


def numbers(text):
    """numactl's space-separated numbers (or the data's "a-b" for cpus_possible)."""
    text = text.strip()
    if "-" in text and " " not in text:
        low, high = text.split("-")
        return list(range(int(low), int(high) + 1))
    return [int(word) for word in text.split()]


def kernel_list(nums):
    nums = sorted(nums)
    out = []
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else "%d-%d" % (nums[i], nums[j]))
        i = j + 1
    return ",".join(out)


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text + "\n")


def build(name, root):
    """Write the tree of shape ``name`` under ``root`` (a sysfs root); returns the shape's data."""
    shape = load(name)
    node_base = os.path.join(root, "devices", "system", "node")
    cpu_base = os.path.join(root, "devices", "system", "cpu")
    possible = numbers(shape["cpus_possible"])
    offline = set(numbers(shape["cpus_offline"])) if shape["cpus_offline"] else set()
    online = [c for c in possible if c not in offline]
    nodes = sorted(int(n) for n in shape["nodes"])
    for cpu in possible:
        _write(os.path.join(cpu_base, "cpu%d" % cpu, "online"), "0" if cpu in offline else "1")
    _write(os.path.join(cpu_base, "possible"), kernel_list(possible))
    _write(os.path.join(cpu_base, "present"), kernel_list(possible))
    _write(os.path.join(cpu_base, "online"), kernel_list(online))
    _write(os.path.join(cpu_base, "offline"), kernel_list(offline))
    has_cpu, has_memory, has_normal = [], [], []
    for node in nodes:
        info = shape["nodes"][str(node)]
        cpus = numbers(info["cpus"]) if info["cpus"] else []
        node_dir = os.path.join(node_base, "node%d" % node)
        listed = [c for c in cpus if c not in offline]
        _write(os.path.join(node_dir, "cpulist"), kernel_list(listed))
        for cpu in cpus:
            os.symlink(os.path.join("..", "..", "cpu", "cpu%d" % cpu), os.path.join(node_dir, "cpu%d" % cpu))
        total_kb, free_kb = info["size_mb"] * 1024, info["free_mb"] * 1024
        _write(os.path.join(node_dir, "meminfo"), "\n".join([
            "Node %d MemTotal:       %8d kB" % (node, total_kb),
            "Node %d MemFree:        %8d kB" % (node, free_kb),
            "Node %d MemUsed:        %8d kB" % (node, total_kb - free_kb),
            "Node %d HugePages_Total:     0" % node,
        ]))
        _write(os.path.join(node_dir, "distance"), " ".join(str(d) for d in info["distances"]))
        for size, (total, free, surplus) in (info.get("hugepages") or {"2048kB": [0, 0, 0]}).items():
            hp = os.path.join(node_dir, "hugepages", "hugepages-" + size)
            _write(os.path.join(hp, "nr_hugepages"), str(total))
            _write(os.path.join(hp, "free_hugepages"), str(free))
            _write(os.path.join(hp, "surplus_hugepages"), str(surplus))
        if listed:
            has_cpu.append(node)
        if info["size_mb"]:
            has_memory.append(node)
        if info["normal_memory"]:
            has_normal.append(node)
    for fname, value in (("possible", nodes), ("online", nodes), ("has_cpu", has_cpu), ("has_memory", has_memory),
                         ("has_normal_memory", has_normal)):
        _write(os.path.join(node_base, fname), kernel_list(value))
    return shape
