# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""NUMA topology from sysfs (the transport of the numa modules), and the /proc read-back.

What is read (Linux ``Documentation/ABI/stable/sysfs-devices-node`` and
``Documentation/ABI/testing/sysfs-devices-system-cpu``), all under an injectable ``sysfs_root``
(``/sys`` on a real machine, a recorded tree in tests):

* ``devices/system/node/{possible,online,has_cpu,has_memory,has_normal_memory}``: node lists;
* ``devices/system/node/nodeN/cpulist``: the node's CPUs; the ``cpuM`` links of the node directory
  are read as well, because a CPU that is offline may have left ``cpulist`` (x86 removes it from
  the node's mask when it goes offline) while its link stays;
* ``devices/system/node/nodeN/meminfo`` (``Node N MemTotal: ... kB`` lines), ``distance`` (one row
  of the SLIT), ``hugepages/hugepages-<size>kB/{nr,free,surplus}_hugepages``;
* ``devices/system/cpu/{possible,present,online,offline}``.

A kernel built without NUMA has no ``devices/system/node``: :class:`NumaUnavailable`.

``/proc/<pid>/status`` (``Cpus_allowed_list``, ``Mems_allowed_list``) and ``/proc/<pid>/numa_maps``
(one memory policy per mapping: ``default``, ``local``, ``prefer:N``, ``bind:LIST``,
``interleave:LIST``, as the kernel's ``mpol_to_str`` prints them) give what a process really got.

Nothing here knows Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re


class NumaError(Exception):
    """A NUMA topology or placement problem, with a message for the user."""


class NumaUnavailable(NumaError):
    """No NUMA information at that sysfs root (no sysfs, or a kernel without CONFIG_NUMA)."""


class NumaInputError(NumaError, ValueError):
    """A CPU or node list that cannot be parsed."""


_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")


def parse_list(text):
    """The kernel's list format (``0-3,8,10-11``; empty = none) as a sorted list of ints.

    Also takes an iterable of ints or such strings (option values).
    """
    if text is None:
        return []
    if isinstance(text, int) and not isinstance(text, bool):
        items = [str(text)]
    elif isinstance(text, (list, tuple, set, frozenset)):
        items = []
        for item in text:
            items.extend(str(item).split(","))
    else:
        items = str(text).strip().split(",")
    out = set()
    for item in items:
        if not item.strip():
            continue
        match = _RANGE.match(item)
        if not match:
            raise NumaInputError("%r is not a number or a range such as 0-3" % item.strip())
        low = int(match.group(1))
        high = int(match.group(2)) if match.group(2) is not None else low
        if high < low:
            raise NumaInputError("range %s has its end before its start" % item.strip())
        out.update(range(low, high + 1))
    return sorted(out)


def format_list(numbers):
    """Sorted ints as the kernel prints a list (``%*pbl``): ``0-3,8``; ``""`` for none."""
    numbers = sorted(set(numbers))
    runs = []
    for n in numbers:
        if runs and n == runs[-1][1] + 1:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return ",".join(str(low) if low == high else "%d-%d" % (low, high) for low, high in runs)


def _read(path, default=None):
    try:
        with open(path, "r") as fh:
            return fh.read()
    except (IOError, OSError):
        return default


def _read_int(path, default=None):
    text = _read(path)
    if text is None:
        return default
    try:
        return int(text.strip())
    except ValueError:
        return default


def parse_meminfo(text):
    """A node's meminfo (``Node 0 MemTotal:  65707956 kB``) as {field: value in kB or count}."""
    out = {}
    for line in (text or "").splitlines():
        words = line.split()
        # "Node", "0", "MemTotal:", "123", "kB"  (the HugePages_* lines have no unit)
        if len(words) >= 4 and words[0] == "Node" and words[2].endswith(":"):
            try:
                out[words[2][:-1]] = int(words[3])
            except ValueError:
                continue
    return out


class Topology:
    """The NUMA topology of one machine, read once from sysfs.

    ``nodes``: {node id: dict} with ``cpus`` (online CPUs), ``offline_cpus``, ``memory_total_kb``,
    ``memory_free_kb``, ``has_cpu``, ``has_memory``, ``distances`` ({other node: distance}) and
    ``hugepages`` ({"2048kB": {"total", "free", "surplus"}}).
    """

    def __init__(self, nodes, online_cpus, offline_cpus, possible_cpus, sysfs_root):
        self.nodes = nodes
        self.online_cpus = online_cpus
        self.offline_cpus = offline_cpus
        self.possible_cpus = possible_cpus
        self.sysfs_root = sysfs_root

    @property
    def node_ids(self):
        return sorted(self.nodes)

    def nodes_with_memory(self):
        return [n for n in self.node_ids if self.nodes[n]["has_memory"]]

    def nodes_with_cpus(self):
        return [n for n in self.node_ids if self.nodes[n]["cpus"]]

    def node_of_cpu(self, cpu):
        for node in self.node_ids:
            info = self.nodes[node]
            if cpu in info["cpus"] or cpu in info["offline_cpus"]:
                return node
        return None

    def cpus_of(self, nodes):
        out = set()
        for node in nodes:
            out.update(self.nodes[node]["cpus"])
        return sorted(out)

    def nearest_with_memory(self, node):
        """``node`` if it has memory, else the node with memory at the smallest distance (lowest id on ties)."""
        if self.nodes[node]["has_memory"]:
            return node
        candidates = self.nodes_with_memory()
        if not candidates:
            return None
        distances = self.nodes[node]["distances"]
        return min(candidates, key=lambda other: (distances.get(other, 255), other))

    def as_dict(self):
        """Plain data for facts (JSON: node ids as strings in maps, lists as kernel list strings too)."""
        nodes = []
        for node in self.node_ids:
            info = self.nodes[node]
            nodes.append({
                "id": node,
                "cpus": info["cpus"],
                "cpulist": format_list(info["cpus"]),
                "offline_cpus": info["offline_cpus"],
                "has_cpu": info["has_cpu"],
                "has_memory": info["has_memory"],
                "has_normal_memory": info["has_normal_memory"],
                "memory_total_kb": info["memory_total_kb"],
                "memory_free_kb": info["memory_free_kb"],
                "distances": dict((str(k), v) for k, v in sorted(info["distances"].items())),
                "hugepages": info["hugepages"],
            })
        return {
            "node_count": len(self.nodes),
            "node_ids": self.node_ids,
            "nodes": nodes,
            "nodes_with_cpus": self.nodes_with_cpus(),
            "nodes_with_memory": self.nodes_with_memory(),
            "cpu_nodes": dict((str(cpu), node) for node in self.node_ids for cpu in self.nodes[node]["cpus"]),
            "online_cpus": self.online_cpus,
            "offline_cpus": self.offline_cpus,
            "possible_cpus": self.possible_cpus,
        }


def _node_cpu_links(node_dir):
    cpus = set()
    try:
        names = os.listdir(node_dir)
    except OSError:
        return cpus
    for name in names:
        if name.startswith("cpu") and name[3:].isdigit():
            cpus.add(int(name[3:]))
    return cpus


def _hugepages(node_dir):
    out = {}
    base = os.path.join(node_dir, "hugepages")
    try:
        names = sorted(os.listdir(base))
    except OSError:
        return out
    for name in names:
        if not name.startswith("hugepages-"):
            continue
        size = name[len("hugepages-"):]
        entry = {}
        for key, fname in (("total", "nr_hugepages"), ("free", "free_hugepages"), ("surplus", "surplus_hugepages")):
            entry[key] = _read_int(os.path.join(base, name, fname), 0)
        out[size] = entry
    return out


def read_topology(sysfs_root="/sys"):
    """The :class:`Topology` under ``sysfs_root``."""
    node_base = os.path.join(sysfs_root, "devices", "system", "node")
    cpu_base = os.path.join(sysfs_root, "devices", "system", "cpu")
    if not os.path.isdir(node_base):
        raise NumaUnavailable("no NUMA information at %s (no sysfs there, or a kernel built without NUMA)" % node_base)
    try:
        possible_cpus = parse_list(_read(os.path.join(cpu_base, "possible"), ""))
        present_text = _read(os.path.join(cpu_base, "present"))
        online_text = _read(os.path.join(cpu_base, "online"))
        online_nodes_text = _read(os.path.join(node_base, "online"))
        has_cpu = set(parse_list(_read(os.path.join(node_base, "has_cpu"), "")))
        has_memory = set(parse_list(_read(os.path.join(node_base, "has_memory"), "")))
        has_normal = set(parse_list(_read(os.path.join(node_base, "has_normal_memory"), "")))
    except NumaInputError as exc:
        raise NumaError("unreadable NUMA lists under %s: %s" % (sysfs_root, exc))
    present = set(parse_list(present_text)) if present_text is not None else set(possible_cpus)
    online = set(parse_list(online_text)) if online_text is not None else present
    dir_nodes = set()
    for name in os.listdir(node_base):
        if name.startswith("node") and name[4:].isdigit():
            dir_nodes.add(int(name[4:]))
    has_cpu_file = os.path.exists(os.path.join(node_base, "has_cpu"))
    has_memory_file = os.path.exists(os.path.join(node_base, "has_memory"))
    node_ids = set(parse_list(online_nodes_text)) if online_nodes_text is not None else dir_nodes
    node_ids &= dir_nodes
    nodes = {}
    for node in sorted(node_ids):
        node_dir = os.path.join(node_base, "node%d" % node)
        try:
            listed = set(parse_list(_read(os.path.join(node_dir, "cpulist"), "")))
        except NumaInputError as exc:
            raise NumaError("unreadable %s/cpulist: %s" % (node_dir, exc))
        cpus = listed | _node_cpu_links(node_dir)
        meminfo = parse_meminfo(_read(os.path.join(node_dir, "meminfo"), ""))
        distances = {}
        row = (_read(os.path.join(node_dir, "distance"), "") or "").split()
        # The row is ordered like the online nodes (the kernel prints node_distance for each online node).
        for other, value in zip(sorted(node_ids), row):
            try:
                distances[other] = int(value)
            except ValueError:
                continue
        total = meminfo.get("MemTotal", 0)
        nodes[node] = {
            "cpus": sorted(cpus & online),
            "offline_cpus": sorted(cpus - online),
            "has_cpu": node in has_cpu if has_cpu_file else bool(cpus & online),
            "has_memory": node in has_memory if has_memory_file else total > 0,
            "has_normal_memory": node in has_normal,
            "memory_total_kb": total,
            "memory_free_kb": meminfo.get("MemFree", 0),
            "distances": distances,
            "hugepages": _hugepages(node_dir),
        }
    if not nodes:
        raise NumaUnavailable("no online NUMA node under %s" % node_base)
    known = set()
    for info in nodes.values():
        known.update(info["cpus"])
        known.update(info["offline_cpus"])
    return Topology(nodes, sorted(online), sorted((set(possible_cpus) | present | known) - online),
                    sorted(set(possible_cpus) | present | known), sysfs_root)


# ------------------------------------------------------------------------------------------------
# /proc read-back
# ------------------------------------------------------------------------------------------------

def read_status(pid, proc_root="/proc"):
    """``Cpus_allowed_list`` and ``Mems_allowed_list`` of a process (None when it is gone)."""
    text = _read(os.path.join(proc_root, str(pid), "status"))
    if text is None:
        return None
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key in ("Cpus_allowed_list", "Mems_allowed_list"):
            out[key] = value.strip()
    return {
        "cpus_allowed_list": out.get("Cpus_allowed_list"),
        "mems_allowed_list": out.get("Mems_allowed_list"),
    }


def numa_maps_policies(text):
    """{policy string: number of mappings} of a ``numa_maps`` text."""
    counts = {}
    for line in (text or "").splitlines():
        words = line.split()
        if len(words) >= 2:
            counts[words[1]] = counts.get(words[1], 0) + 1
    return counts


def read_numa_policy(pid, proc_root="/proc"):
    """(the policy of most mappings, {policy: count}) from ``/proc/<pid>/numa_maps``; (None, {}) if unreadable."""
    counts = numa_maps_policies(_read(os.path.join(proc_root, str(pid), "numa_maps")))
    if not counts:
        return None, {}
    dominant = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
    return dominant, counts


def cpuset_on_unified(cgroup_root="/sys/fs/cgroup"):
    """Whether the cpuset controller is available on a cgroup v2 (unified) hierarchy at ``cgroup_root``.

    systemd drives AllowedCPUs=/AllowedMemoryNodes= only there: on a v1 or hybrid hierarchy they are
    accepted and recorded but not enforced.
    """
    # On a hybrid hierarchy /sys/fs/cgroup/unified is v2 too, but systemd attaches no controller there.
    text = _read(os.path.join(cgroup_root, "cgroup.controllers"))
    return text is not None and "cpuset" in text.split()
