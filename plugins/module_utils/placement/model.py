# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a service's NUMA placement should be: strategies that choose nodes, validation against the
topology and the systemd version, and the drop-in that carries it.

Strategies (used when ``strategy`` is given instead of ``nodes``; each chooses one node):

* ``local_node``: the node of ``local_cpu`` when given, else node 0 (the lowest-numbered online node
  if there is no node 0). A node without memory (memory-less node) is replaced by the node with
  memory at the smallest distance from it (lowest id on ties) - what the kernel itself does for
  local allocations on such a node.
* ``round_robin``: the nodes that have both CPUs and memory, sorted by id; the service gets the one at
  index ``crc32(unit name) mod count``. Deterministic (the same unit gets the same node on every run
  and every host with the same topology) and spreads different services over the nodes.
* ``most_memory``: the node with memory that has the most ``MemFree`` in its ``nodeN/meminfo`` at the
  time of the run (lowest id on ties). Not sticky: it may choose another node on a later run when
  free memory has moved; pin ``nodes`` explicitly for a stable result.
* ``disabled``: no placement: the drop-in is removed (same as ``state: absent``).

Nothing here knows Ansible or D-Bus.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import zlib

from ansible_collections.opdbus.infra.plugins.module_utils.numa import NumaInputError, format_list, parse_list

POLICIES = ("default", "preferred", "bind", "interleave", "local")
STRATEGIES = ("local_node", "round_robin", "most_memory", "disabled")
# systemd's MPOL_* numbers for the NUMAPolicy property (linux/mempolicy.h).
MPOL = {"default": 0, "preferred": 1, "bind": 2, "interleave": 3, "local": 4}
MPOL_NAMES = dict((v, k) for k, v in MPOL.items())

# Setting -> (kind, first systemd version that knows it). exec: read when the service's processes
# start (settable at runtime only on transient units); cgroup: applied to the running unit's cgroup.
SETTINGS = (
    ("NUMAPolicy", "exec", 243),
    ("NUMAMask", "exec", 243),
    ("CPUAffinity", "exec", 0),
    ("AllowedCPUs", "cgroup", 244),
    ("AllowedMemoryNodes", "cgroup", 244),
)
SETTING_NAMES = tuple(name for name, _kind, _version in SETTINGS)
EXEC_SETTINGS = tuple(name for name, kind, _version in SETTINGS if kind == "exec")
CGROUP_SETTINGS = tuple(name for name, kind, _version in SETTINGS if kind == "cgroup")
MIN_VERSION = dict((name, version) for name, _kind, version in SETTINGS)
# Settings whose assignments accumulate in systemd: the drop-in resets them first (an empty assignment).
RESET_FIRST = ("NUMAMask", "CPUAffinity", "AllowedCPUs", "AllowedMemoryNodes")

HEADER = "# Managed by opdbus.infra.numa_policy: changes made here are overwritten.\n"


class PlacementError(ValueError):
    """The requested placement is invalid for this machine or this systemd."""


def _numbers(value, what):
    try:
        return parse_list(value)
    except NumaInputError as exc:
        raise PlacementError("%s: %s" % (what, exc))


def choose_node(topology, strategy, unit, local_cpu=None):
    """The node a strategy gives ``unit`` (see the module docstring for the rules)."""
    if strategy == "local_node":
        if local_cpu is not None:
            node = topology.node_of_cpu(local_cpu)
            if node is None:
                raise PlacementError("local_cpu %d is not a CPU of any node (online CPUs: %s)" % (
                    local_cpu, format_list(topology.online_cpus)))
        else:
            node = 0 if 0 in topology.nodes else topology.node_ids[0]
        chosen = topology.nearest_with_memory(node)
        if chosen is None:
            raise PlacementError("no node has memory")
        return chosen
    if strategy == "round_robin":
        candidates = [n for n in topology.nodes_with_cpus() if topology.nodes[n]["has_memory"]]
        if not candidates:
            raise PlacementError("round_robin needs a node with both CPUs and memory; there is none")
        return candidates[zlib.crc32(unit.encode("utf-8")) % len(candidates)]
    if strategy == "most_memory":
        candidates = topology.nodes_with_memory()
        if not candidates:
            raise PlacementError("no node has memory")
        return min(candidates, key=lambda n: (-topology.nodes[n]["memory_free_kb"], n))
    raise PlacementError("unknown strategy %r (one of %s)" % (strategy, ", ".join(STRATEGIES)))


class Desired:
    """The outcome of :func:`desired`: ``settings`` [(name, value)] in drop-in order (empty: remove
    the drop-in), the memory policy, the nodes it uses and the CPUs of CPUAffinity."""

    def __init__(self, settings, policy=None, nodes=None, cpus=None, strategy=None, allowed_cpus=None):
        self.settings = settings
        self.policy = policy
        self.nodes = nodes or []
        self.cpus = cpus
        self.strategy = strategy
        self.allowed_cpus = allowed_cpus

    @property
    def absent(self):
        return not self.settings

    def as_dict(self):
        return dict(self.settings)


def _check_cpus(topology, cpus, what):
    for cpu in cpus:
        if cpu in topology.offline_cpus:
            raise PlacementError("%s: CPU %d is offline" % (what, cpu))
        if cpu not in topology.online_cpus:
            raise PlacementError("%s: CPU %d does not exist on this machine (online CPUs: %s)" % (
                what, cpu, format_list(topology.online_cpus)))


def _check_nodes(topology, nodes, what, need_memory):
    for node in nodes:
        if node not in topology.nodes:
            raise PlacementError("%s: NUMA node %d does not exist on this machine (nodes: %s)" % (
                what, node, format_list(topology.node_ids)))
        if need_memory and not topology.nodes[node]["has_memory"]:
            raise PlacementError("%s: NUMA node %d has no memory (nodes with memory: %s)" % (
                what, node, format_list(topology.nodes_with_memory())))


def desired(params, topology, unit):
    """Validate the request against ``topology`` and return its :class:`Desired`.

    ``params``: state, policy, nodes, strategy, local_cpu, cpus, cpus_from_nodes, allowed_cpus,
    allowed_memory_nodes (as the module's options).
    """
    strategy = params.get("strategy")
    if params.get("state", "present") == "absent" or strategy == "disabled":
        return Desired([], strategy=strategy)
    policy = params.get("policy")
    if strategy and not policy:
        policy = "bind"
    nodes = _numbers(params.get("nodes"), "nodes")
    if params.get("nodes") is not None and strategy:
        raise PlacementError("give either nodes or strategy, not both")
    if params.get("local_cpu") is not None and strategy != "local_node":
        raise PlacementError("local_cpu is used only by strategy local_node")
    if policy in ("default", "local"):
        if nodes or strategy:
            raise PlacementError("policy %s takes no nodes (and no strategy)" % policy)
    elif policy in ("bind", "interleave", "preferred"):
        if strategy:
            nodes = [choose_node(topology, strategy, unit, params.get("local_cpu"))]
        if not nodes:
            raise PlacementError("policy %s needs nodes (its NUMAMask): give nodes or a strategy" % policy)
        if policy == "preferred" and len(nodes) != 1:
            raise PlacementError("policy preferred takes exactly one node, not %s" % format_list(nodes))
        _check_nodes(topology, nodes, "nodes", need_memory=True)
    elif policy is not None:
        raise PlacementError("unknown policy %r (one of %s)" % (policy, ", ".join(POLICIES)))
    elif nodes:
        raise PlacementError("nodes need a policy (bind, interleave or preferred)")

    cpus = None
    if params.get("cpus") is not None and params.get("cpus_from_nodes"):
        raise PlacementError("give either cpus or cpus_from_nodes, not both")
    if params.get("cpus") is not None:
        cpus = _numbers(params["cpus"], "cpus")
        if not cpus:
            raise PlacementError("cpus is empty")
        _check_cpus(topology, cpus, "cpus")
    elif params.get("cpus_from_nodes"):
        if not nodes:
            raise PlacementError("cpus_from_nodes needs the nodes of a bind, interleave or preferred policy")
        cpus = topology.cpus_of(nodes)
        if not cpus:
            raise PlacementError("cpus_from_nodes: node(s) %s have no online CPU" % format_list(nodes))

    allowed_cpus = None
    if params.get("allowed_cpus") is not None:
        allowed_cpus = _numbers(params["allowed_cpus"], "allowed_cpus")
        if not allowed_cpus:
            raise PlacementError("allowed_cpus is empty")
        _check_cpus(topology, allowed_cpus, "allowed_cpus")
    allowed_mems = None
    if params.get("allowed_memory_nodes") is not None:
        allowed_mems = _numbers(params["allowed_memory_nodes"], "allowed_memory_nodes")
        if not allowed_mems:
            raise PlacementError("allowed_memory_nodes is empty")
        _check_nodes(topology, allowed_mems, "allowed_memory_nodes", need_memory=True)

    settings = []
    if policy is not None:
        settings.append(("NUMAPolicy", policy))
        if nodes:
            settings.append(("NUMAMask", format_list(nodes)))
    if cpus is not None:
        settings.append(("CPUAffinity", format_list(cpus)))
    if allowed_cpus is not None:
        settings.append(("AllowedCPUs", format_list(allowed_cpus)))
    if allowed_mems is not None:
        settings.append(("AllowedMemoryNodes", format_list(allowed_mems)))
    if not settings:
        raise PlacementError("nothing to place: give policy, cpus, cpus_from_nodes, allowed_cpus or allowed_memory_nodes"
                             " (or state absent)")
    return Desired(settings, policy=policy, nodes=nodes, cpus=cpus, strategy=strategy, allowed_cpus=allowed_cpus)


def check_version(settings, version):
    """Fail when systemd ``version`` (major number) predates a setting of ``settings``."""
    for name, _value in settings:
        if version < MIN_VERSION[name]:
            raise PlacementError("%s= needs systemd %d or later; the target runs systemd %d" % (
                name, MIN_VERSION[name], version))


def render_dropin(settings):
    """The drop-in file's text for ``settings`` (None when there is nothing to write)."""
    if not settings:
        return None
    lines = [HEADER, "[Service]\n"]
    for name, value in settings:
        if name in RESET_FIRST:
            lines.append("%s=\n" % name)
        lines.append("%s=%s\n" % (name, value))
    return "".join(lines)


def parse_dropin(text):
    """The settings of ours that a drop-in's text assigns, {name: value} (the last assignment wins)."""
    out = {}
    section = None
    for raw in (text or "").splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, sep, value = line.partition("=")
        if sep and section == "Service" and key.strip() in SETTING_NAMES:
            value = value.strip()
            if value:
                out[key.strip()] = value
            else:
                out.pop(key.strip(), None)
    return out


def expected_numa_maps(policy, nodes):
    """How ``/proc/<pid>/numa_maps`` prints the memory policy of a process started with it."""
    if policy in (None, "default"):
        return "default"
    if policy == "local":
        return "local"
    if policy == "preferred":
        return "prefer:%s" % format_list(nodes)
    return "%s:%s" % (policy, format_list(nodes))
