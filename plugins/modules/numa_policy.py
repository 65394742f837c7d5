#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: numa_policy
short_description: Place a systemd service on NUMA nodes and CPUs (memory policy, CPU affinity, cpuset)
version_added: 0.1.0
description:
  - Manages one drop-in file of a systemd service, C(/etc/systemd/system/<unit>.d/<dropin>.conf), with
    C(NUMAPolicy=), C(NUMAMask=), C(CPUAffinity=), C(AllowedCPUs=) and C(AllowedMemoryNodes=); the whole file is
    owned by the module. systemd is then reloaded over D-Bus (C(Reload)).
  - C(AllowedCPUs=) and C(AllowedMemoryNodes=) are cgroup settings; when the service runs they are also set live with
    C(SetUnitProperties) (runtime), so the running service gets them without a restart.
  - C(NUMAPolicy=), C(NUMAMask=) and C(CPUAffinity=) are read by systemd when it starts the service's processes
    (systemd refuses to change them at runtime on a unit that is not transient); they take effect at the next start.
    With O(restart=true) the module restarts the service (C(RestartUnit), waiting for the job to finish) when its main
    process does not run with them yet, read back from C(/proc/<MainPID>/numa_maps) and C(/proc/<MainPID>/status).
  - Node and CPU ids are checked against the target's topology (sysfs) and the settings against its systemd version
    before anything is changed.
  - Talks to systemd over the system bus when a bus daemon runs, else over systemd's private socket
    C(/run/systemd/private) (as C(systemctl) does); no command is run.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The drop-in file's text before and after.
  platform:
    support: full
    platforms: linux
options:
  unit:
    description: The service (C(.service) is added to a name without a unit type).
    type: str
    required: true
  state:
    description: V(present) writes the drop-in; V(absent) removes it (and resets the live cgroup settings).
    type: str
    choices: [present, absent]
    default: present
  policy:
    description:
      - The memory policy (C(NUMAPolicy=), systemd 243 or later).
      - V(bind) and V(interleave) need O(nodes) or O(strategy); V(preferred) takes exactly one node;
        V(default) and V(local) take none.
      - Default with O(strategy) - V(bind); otherwise no memory policy is set.
    type: str
    choices: [default, preferred, bind, interleave, local]
  nodes:
    description:
      - The policy's nodes (C(NUMAMask=)), as numbers or ranges (V(0), V(0-1)). They must be online and have memory.
    type: list
    elements: str
  strategy:
    description:
      - Let the module choose the node instead of giving O(nodes).
      - V(local_node) - the node of O(local_cpu), or node 0 without it; a node without memory is replaced by the
        nearest node (by distance) with memory.
      - V(round_robin) - among the nodes with CPUs and memory (sorted by id), the one at index
        crc32(unit name) modulo their count - stable for a unit, spread across units.
      - V(most_memory) - the node with the most free memory (C(MemFree)) at the time of the run.
      - V(disabled) - no placement; the drop-in is removed as with O(state=absent).
    type: str
    choices: [local_node, round_robin, most_memory, disabled]
  local_cpu:
    description: The CPU whose node O(strategy=local_node) chooses.
    type: int
  cpus:
    description: C(CPUAffinity=) - the CPUs the service's processes may run on (numbers or ranges, online CPUs).
    type: list
    elements: str
  cpus_from_nodes:
    description: Set C(CPUAffinity=) to the online CPUs of the policy's nodes (not with O(cpus)).
    type: bool
    default: false
  allowed_cpus:
    description:
      - C(AllowedCPUs=) (cgroup cpuset, systemd 244 or later). Enforced only on a unified (cgroup v2) hierarchy
        with the cpuset controller; on cgroup v1 or hybrid systemd records it without effect (the module warns).
    type: list
    elements: str
  allowed_memory_nodes:
    description: C(AllowedMemoryNodes=) (cgroup cpuset, systemd 244 or later); same limits as O(allowed_cpus).
    type: list
    elements: str
  restart:
    description: Restart the service when it runs and its main process does not have the wanted exec settings yet.
    type: bool
    default: false
  dropin:
    description: The drop-in's file name without C(.conf).
    type: str
    default: 50-opdbus-numa
  bus:
    description:
      - How to reach systemd. V(auto) - the system bus if a bus daemon answers, else the private socket.
    type: str
    choices: [auto, system, private]
    default: auto
  sysfs_root:
    description: Where to read the topology used for validation and strategies (a recorded tree in tests).
    type: path
    default: /sys
  timeout:
    description: Seconds to wait for each D-Bus call and for the restart job.
    type: float
    default: 90
requirements:
  - dbus-python (C(python3-dbus); the module respawns under C(/usr/bin/python3) when only that one has it)
  - systemd 243 or later for C(NUMAPolicy=), 244 for C(AllowedCPUs=)
seealso:
  - module: opdbus.infra.numa_info
"""

EXAMPLES = r"""
- name: Bind the database's memory to node 1 and run it on node 1's CPUs, restarting it if needed
  opdbus.infra.numa_policy:
    unit: postgresql@15-main
    policy: bind
    nodes: [1]
    cpus_from_nodes: true
    restart: true

- name: Spread services over the nodes (the same node for a unit on every run)
  opdbus.infra.numa_policy:
    unit: "{{ item }}"
    strategy: round_robin
    policy: preferred
  loop: [worker-a, worker-b, worker-c]

- name: Limit a running service's cgroup to CPUs 0-3 now (cgroup v2 only)
  opdbus.infra.numa_policy:
    unit: batch.service
    allowed_cpus: ["0-3"]

- name: No placement any more
  opdbus.infra.numa_policy:
    unit: batch.service
    state: absent
"""

RETURN = r"""
changes:
  description: What was done (or would be in check mode), in order - C(write)/C(remove) the drop-in, C(reload),
    C(live) (properties set at runtime), C(restart).
  returned: always
  type: list
  elements: dict
unit:
  description: The full unit name.
  returned: always
  type: str
dropin_path:
  description: The drop-in file.
  returned: always
  type: str
settings:
  description: The settings of the drop-in (empty when absent).
  returned: always
  type: dict
  sample: {NUMAPolicy: bind, NUMAMask: "0", CPUAffinity: "0-1"}
policy:
  description: The memory policy, or null.
  returned: always
  type: str
nodes:
  description: The policy's nodes (given or chosen by the strategy).
  returned: always
  type: list
  elements: int
cpus:
  description: The CPUs of CPUAffinity, or null.
  returned: always
  type: list
  elements: int
strategy:
  description: The strategy used, or null.
  returned: always
  type: str
systemd_version:
  description: systemd's Version property.
  returned: always
  type: str
bus:
  description: How systemd was reached - V(system) or V(private).
  returned: always
  type: str
active:
  description: Whether the service was active.
  returned: always
  type: bool
cpuset_enforced:
  description: Whether AllowedCPUs/AllowedMemoryNodes can take effect on this target (cpuset on cgroup v2).
  returned: always
  type: bool
restarted:
  description: Whether the service was restarted.
  returned: always
  type: bool
pending_restart:
  description: The service runs without the wanted exec settings (NUMAPolicy, NUMAMask, CPUAffinity); a restart would apply them.
  returned: always
  type: bool
effective:
  description: What the service's main process runs with (null when the service does not run).
  returned: always
  type: dict
  contains:
    main_pid:
      description: The MainPID.
      type: int
    cpus_allowed_list:
      description: C(Cpus_allowed_list) of C(/proc/<pid>/status).
      type: str
    mems_allowed_list:
      description: C(Mems_allowed_list) of C(/proc/<pid>/status).
      type: str
    numa_policy:
      description: The memory policy of most of its mappings in C(/proc/<pid>/numa_maps) (C(bind:0), C(interleave:0-1), C(prefer:1), C(local), C(default)).
      type: str
    numa_policies:
      description: Every policy seen in numa_maps with its number of mappings.
      type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusError, import_dbus
from ansible_collections.opdbus.infra.plugins.module_utils.numa import NumaError, read_topology
from ansible_collections.opdbus.infra.plugins.module_utils.placement.reconcile import NumaPolicyReconciler
from ansible_collections.opdbus.infra.plugins.module_utils.systemd import SystemdError, connect


def run(module):
    """The module's work; the typed errors are mapped to fail_json by main()."""
    reconciler = NumaPolicyReconciler(None, read_topology(module.params["sysfs_root"]), timeout=module.params["timeout"])
    prepared = reconciler.prepare(module.params)  # bad nodes, CPUs, policies fail here, before systemd is asked
    reconciler.systemd = connect(module.params["bus"], timeout=module.params["timeout"])
    try:
        return reconciler.run(module.params, check_mode=module.check_mode, prepared=prepared)
    finally:
        reconciler.systemd.close()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unit=dict(type="str", required=True),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            policy=dict(type="str", choices=["default", "preferred", "bind", "interleave", "local"]),
            nodes=dict(type="list", elements="str"),
            strategy=dict(type="str", choices=["local_node", "round_robin", "most_memory", "disabled"]),
            local_cpu=dict(type="int"),
            cpus=dict(type="list", elements="str"),
            cpus_from_nodes=dict(type="bool", default=False),
            allowed_cpus=dict(type="list", elements="str"),
            allowed_memory_nodes=dict(type="list", elements="str"),
            restart=dict(type="bool", default=False),
            dropin=dict(type="str", default="50-opdbus-numa"),
            bus=dict(type="str", choices=["auto", "system", "private"], default="auto"),
            sysfs_root=dict(type="path", default="/sys"),
            timeout=dict(type="float", default=90.0),
        ),
        mutually_exclusive=[("nodes", "strategy"), ("cpus", "cpus_from_nodes")],
        supports_check_mode=True,
    )
    import_dbus(module)  # respawns under the system Python when only it has dbus-python
    try:
        result = run(module)
    except ValueError as exc:  # PlacementError, unit names, number lists
        module.fail_json(msg="invalid input: %s" % exc)
    except (NumaError, SystemdError, DBusError) as exc:
        module.fail_json(msg=str(exc))
    warnings = result.pop("warnings", [])
    for warning in warnings:
        module.warn(warning)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
