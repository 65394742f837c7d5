#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: openflow_flow
short_description: Declarative OpenFlow flows, meters and groups, applied atomically in one bundle
version_added: 0.1.0
description:
  - Manages the OpenFlow flows of an Open vSwitch bridge by speaking OpenFlow (1.3, 1.4 or 1.5, the highest the
    bridge allows) to the bridge's own management socket. No C(ovs-ofctl) is run.
  - B(Ownership) is by cookie. A task owns the flows that carry its O(cookie) and never touches any other flow.
    A desired flow that would replace a flow of another cookie (same table, priority and match) is refused.
  - The module reads the flow table once, computes the plan, and applies every flow and group change in B(one)
    atomic, ordered OpenFlow bundle. Either all of it is applied or none of it. When the switch rejects one message,
    the bundle is discarded, the table is left as it was, and the error names the flow and the switch's error.
  - Every flow is parsed and encoded before anything is sent, so an invalid flow anywhere in the list fails the
    task with the switch untouched.
  - Meters cannot be part of a bundle in Open vSwitch. New and changed meters are sent (and confirmed) before
    the bundle, deleted ones after it.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  bridge:
    description:
      - The bridge. Its management socket C(<rundir>/<bridge>.mgmt) is used unless O(target) is given.
    type: str
    required: true
  rundir:
    description:
      - Open vSwitch's run directory, where C(<bridge>.mgmt) lives. Defaults to E(OVS_RUNDIR), then
        C(/var/run/openvswitch).
    type: path
  target:
    description:
      - Connect here instead of the bridge's management socket, as C(unix:PATH) or C(tcp:HOST:PORT)
        (a bridge with a C(ptcp:) controller).
    type: str
  cookie:
    description:
      - The cookie this task owns (1 to 2^64-2, decimal or C(0x) hex). Every flow of the task gets it.
      - A flow in O(flows) may repeat it, but not carry another one.
    type: raw
    required: true
  flows:
    description:
      - Flows in C(ovs-ofctl) syntax, for example C(table=0,priority=100,tcp,tp_dst=443,actions=output:2).
        Alternatively, a dictionary with C(table), C(priority), C(idle_timeout), C(hard_timeout), C(flags),
        C(match) (field names as in C(ovs-ofctl) or OXM) and C(actions) (C(ovs-ofctl) action syntax).
      - Flows compare equal after normalisation, the way the switch stores them. A flow read back from the
        switch equals the one asked for.
    type: list
    elements: raw
  state:
    description:
      - V(present) adds or replaces the listed flows (and meters and groups).
      - V(absent) deletes the listed flows, meters and groups. With O(flows) omitted, it deletes every flow of
        the cookie.
    type: str
    choices: [present, absent]
    default: present
  exclusive:
    description:
      - With V(true), the flows of the cookie become exactly the listed ones; other flows of the cookie are deleted.
    type: bool
    default: false
  meters:
    description:
      - Meters to manage, each with C(meter_id), C(flags) (V(pktps) or V(kbps), optionally V(burst) and V(stats);
        default V(pktps)) and C(bands) (a list of C(type=drop) bands with C(rate) and optional C(burst_size)).
        Meters not listed are left alone.
    type: list
    elements: dict
  groups:
    description:
      - Groups to manage, each with C(group_id), C(type) (V(all), V(select), V(indirect), V(ff)) and C(buckets)
        (each with C(actions) in C(ovs-ofctl) syntax, and C(weight), C(watch_port), C(watch_group)).
        Groups not listed are left alone.
    type: list
    elements: dict
  timeout:
    description: Seconds to wait for the switch's answers.
    type: float
    default: 30
notes:
  - A flow's counters restart when the module replaces it (a changed flow is re-added with its new instructions).
seealso:
  - module: opdbus.infra.openflow_info
  - module: opdbus.infra.ovs_bridge
"""

EXAMPLES = r"""
- name: Security level 1 on the privacy sockets of ovs-br0
  opdbus.infra.openflow_flow:
    bridge: ovs-br0
    cookie: 0x0d0b0001
    exclusive: true
    meters:
      - meter_id: 1
        flags: [pktps, burst]
        bands: [{type: drop, rate: 200, burst_size: 50}]
    flows:
      - table=0,priority=300,ct_state=-trk,ip,actions=ct(table=1,zone=1)
      - table=1,priority=300,ct_state=+trk+inv,ip,actions=drop
      - table=1,priority=200,ct_state=+trk+new,ip,in_port=2,actions=meter:1,ct(commit,zone=1),output:3
      - table=1,priority=100,ct_state=+trk+est,ip,actions=NORMAL

- name: A flow as a dictionary
  opdbus.infra.openflow_flow:
    bridge: ovs-br0
    cookie: 42
    flows:
      - table: 0
        priority: 100
        match: {in_port: 1, eth_type: 0x0800, ipv4_dst: 10.0.0.0/8}
        actions: output:2

- name: Remove every flow of the cookie
  opdbus.infra.openflow_flow:
    bridge: ovs-br0
    cookie: 42
    state: absent
"""

RETURN = r"""
changes:
  description: What the run changed (in check mode, what it would change), as C(ovs-ofctl)-style lines.
  returned: always
  type: list
  elements: str
  sample: ["add flow: cookie=0x2a, table=0, priority=100,ip,in_port=1,nw_dst=10.0.0.0/8 actions=output:2"]
counts:
  description: How many flows were added, modified and deleted.
  returned: always
  type: dict
  sample: {added: 1, modified: 0, deleted: 0}
flows:
  description: The flows of the cookie after the run, as C(ovs-ofctl)-style lines.
  returned: always
  type: list
  elements: str
openflow_version:
  description: The OpenFlow version negotiated with the bridge.
  returned: always
  type: str
  sample: OpenFlow15
diff:
  description: The flows of the cookie before and after, one C(ovs-ofctl)-style line each, with diff mode.
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.common import run
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.reconcile import (
    converge, normalize_desired, parse_cookie, target_for,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bridge=dict(type="str", required=True),
            rundir=dict(type="path"),
            target=dict(type="str"),
            cookie=dict(type="raw", required=True),
            flows=dict(type="list", elements="raw"),
            state=dict(type="str", choices=["present", "absent"], default="present"),
            exclusive=dict(type="bool", default=False),
            meters=dict(type="list", elements="dict"),
            groups=dict(type="list", elements="dict"),
            timeout=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    params = dict(module.params)
    params["cookie"] = run(module, parse_cookie, params["cookie"])
    desired = run(module, normalize_desired, params)
    target = run(module, target_for, params["bridge"], params["target"], params["rundir"])
    result = run(module, converge, desired, target, params["timeout"], module.check_mode)
    before, after = result.pop("before"), result.pop("after")
    if module._diff:
        result["diff"] = {"before": "\n".join(before) + ("\n" if before else ""),
                          "after": "\n".join(after) + ("\n" if after else ""),
                          "before_header": "%s cookie 0x%x" % (params["bridge"], desired["cookie"]),
                          "after_header": "%s cookie 0x%x" % (params["bridge"], desired["cookie"])}
    module.exit_json(**result)


if __name__ == "__main__":
    main()
