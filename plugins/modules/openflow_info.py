#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: openflow_info
short_description: Report the OpenFlow flows, meters and groups of an Open vSwitch bridge
version_added: 0.1.0
description:
  - Reads flows (with their counters), meters and groups from the bridge's management socket in OpenFlow
    (1.3 to 1.5), without C(ovs-ofctl). Each is returned structured and as an C(ovs-ofctl)-style line.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.attributes.INFO_MODULE
attributes:
  platform:
    support: full
    platforms: posix
options:
  bridge:
    description: The bridge. Its management socket C(<rundir>/<bridge>.mgmt) is used unless O(target) is given.
    type: str
    required: true
  rundir:
    description: Open vSwitch's run directory. Defaults to E(OVS_RUNDIR), then C(/var/run/openvswitch).
    type: path
  target:
    description: Connect here instead, as C(unix:PATH) or C(tcp:HOST:PORT).
    type: str
  cookie:
    description: Only flows with this cookie (decimal or C(0x) hex).
    type: raw
  table:
    description: Only flows of this table.
    type: int
  timeout:
    description: Seconds to wait for the switch's answers.
    type: float
    default: 30
seealso:
  - module: opdbus.infra.openflow_flow
"""

EXAMPLES = r"""
- name: Flows of the privacy chain's cookie
  opdbus.infra.openflow_info:
    bridge: ovs-br0
    cookie: 0x0d0b0001
  register: of

- name: Print them as ovs-ofctl would
  ansible.builtin.debug:
    msg: "{{ of.flows | map(attribute='line') | list }}"
"""

RETURN = r"""
openflow_version:
  description: The OpenFlow version negotiated with the bridge.
  returned: always
  type: str
  sample: OpenFlow15
flows:
  description: Flows sorted by table, then priority (highest first).
  returned: always
  type: list
  elements: dict
  contains:
    flow:
      description: The flow (C(table), C(priority), C(cookie), C(idle_timeout), C(hard_timeout), C(flags),
        C(match), C(instructions)).
      type: dict
    line:
      description: The flow as an C(ovs-ofctl)-style line.
      type: str
    packet_count:
      description: Packets matched.
      type: int
    byte_count:
      description: Bytes matched.
      type: int
    duration_sec:
      description: Seconds since the flow was added.
      type: int
meters:
  description: Meters (C(meter_id), C(flags), C(bands), C(line)).
  returned: always
  type: list
  elements: dict
groups:
  description: Groups (C(group_id), C(type), C(buckets), C(line)).
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.common import run
from ansible_collections.opdbus.infra.plugins.module_utils.openflow.reconcile import gather, parse_cookie, target_for


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bridge=dict(type="str", required=True),
            rundir=dict(type="path"),
            target=dict(type="str"),
            cookie=dict(type="raw"),
            table=dict(type="int"),
            timeout=dict(type="float", default=30.0),
        ),
        supports_check_mode=True,
    )
    params = module.params
    cookie = None if params["cookie"] is None else run(module, parse_cookie, params["cookie"])
    target = run(module, target_for, params["bridge"], params["target"], params["rundir"])
    result = run(module, gather, target, params["timeout"], cookie, params["table"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
