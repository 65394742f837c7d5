#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: numa_info
short_description: Report the NUMA topology of a Linux host from sysfs, as facts
version_added: 0.1.0
description:
  - Reads C(/sys/devices/system/node) and C(/sys/devices/system/cpu) - the nodes, their online and offline CPUs,
    memory (total and free), distances, huge pages per size - and returns them, also as the fact C(opdbus_numa).
  - Nodes without CPUs (memory-only nodes such as CXL or persistent memory used as RAM) and nodes without memory
    are reported as such (C(has_cpu), C(has_memory)).
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.attributes.INFO_MODULE
attributes:
  platform:
    support: full
    platforms: linux
options:
  sysfs_root:
    description:
      - Where sysfs is mounted. Another directory with the same layout (a recorded tree) can be read instead,
        which is how multi-node topologies are tested.
    type: path
    default: /sys
notes:
  - A kernel built without NUMA support has no C(/sys/devices/system/node); the module then fails.
seealso:
  - module: opdbus.infra.numa_policy
"""

EXAMPLES = r"""
- name: NUMA topology
  opdbus.infra.numa_info:

- name: Show the nodes that have memory
  ansible.builtin.debug:
    msg: "{{ opdbus_numa.nodes_with_memory }}"
"""

RETURN = r"""
topology:
  description: The topology (also set as the fact C(opdbus_numa)).
  returned: success
  type: dict
  contains:
    node_count:
      description: Number of online nodes.
      type: int
    node_ids:
      description: Online node ids.
      type: list
      elements: int
    nodes:
      description: One entry per online node, by id.
      type: list
      elements: dict
      contains:
        id:
          description: The node id.
          type: int
        cpus:
          description: Its online CPUs.
          type: list
          elements: int
        cpulist:
          description: Its online CPUs in the kernel's list format (C(0-3,8)).
          type: str
        offline_cpus:
          description: Its CPUs that are offline.
          type: list
          elements: int
        has_cpu:
          description: Whether the kernel lists the node in C(has_cpu).
          type: bool
        has_memory:
          description: Whether the kernel lists the node in C(has_memory).
          type: bool
        has_normal_memory:
          description: Whether the kernel lists the node in C(has_normal_memory).
          type: bool
        memory_total_kb:
          description: C(MemTotal) of the node, KiB.
          type: int
        memory_free_kb:
          description: C(MemFree) of the node, KiB.
          type: int
        distances:
          description: Node id (as a string) to distance (10 = local).
          type: dict
        hugepages:
          description: Page size (such as C(2048kB)) to C(total), C(free) and C(surplus) huge pages on the node.
          type: dict
    nodes_with_cpus:
      description: Nodes with at least one online CPU.
      type: list
      elements: int
    nodes_with_memory:
      description: Nodes with memory.
      type: list
      elements: int
    cpu_nodes:
      description: Online CPU (as a string) to its node.
      type: dict
    online_cpus:
      description: Online CPUs.
      type: list
      elements: int
    offline_cpus:
      description: Offline CPUs.
      type: list
      elements: int
    possible_cpus:
      description: Possible CPUs.
      type: list
      elements: int
  sample:
    node_count: 1
    node_ids: [0]
    nodes_with_cpus: [0]
    nodes_with_memory: [0]
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.numa import NumaError, read_topology


def main():
    module = AnsibleModule(argument_spec=dict(sysfs_root=dict(type="path", default="/sys")), supports_check_mode=True)
    try:
        topology = read_topology(module.params["sysfs_root"]).as_dict()
    except NumaError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, topology=topology, ansible_facts={"opdbus_numa": topology})


if __name__ == "__main__":
    main()
