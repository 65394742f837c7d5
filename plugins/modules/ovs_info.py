#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ovs_info
short_description: Report Open vSwitch bridges, ports and interfaces over OVSDB
version_added: 0.1.0
description:
  - Reads bridges, their ports and interfaces from C(ovsdb-server) in one OVSDB transaction (RFC 7047),
    without C(ovs-vsctl).
  - For every interface it reports type, OpenFlow port number, link and admin state, options, external ids,
    and (through rtnetlink) the device's addresses and whether it is up.
author:
  - opdbus.infra maintainers (@opdbus)
requirements:
  - pyroute2 (only with O(addresses=true))
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.attributes.INFO_MODULE
  - opdbus.infra.ovsdb
attributes:
  platform:
    support: full
    platforms: posix
options:
  bridges:
    description: Report only these bridges. All bridges when omitted.
    type: list
    elements: str
  addresses:
    description: Read each interface's addresses and link state through rtnetlink.
    type: bool
    default: true
seealso:
  - module: opdbus.infra.ovs_bridge
"""

EXAMPLES = r"""
- name: Everything on the switch
  opdbus.infra.ovs_info:
  register: ovs

- name: The OpenFlow port number of the privacy socket priv_wg
  ansible.builtin.debug:
    msg: >-
      {{ (ovs.bridges | selectattr('name', 'eq', 'ovs-br0') | first).ports
         | selectattr('name', 'eq', 'priv_wg') | map(attribute='interfaces') | first | map(attribute='ofport') | first }}

- name: One bridge, without netlink
  opdbus.infra.ovs_info:
    bridges: [ovs-br0]
    addresses: false
"""

RETURN = r"""
bridges:
  description: The bridges, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name: {description: "Bridge name.", type: str}
    uuid: {description: "OVSDB row uuid.", type: str}
    datapath_type: {description: "V(system) or V(netdev).", type: str}
    fail_mode: {description: "V(standalone), V(secure) or V(null).", type: str}
    protocols: {description: "OpenFlow versions.", type: list, elements: str}
    stp: {description: "STP enabled.", type: bool}
    rstp: {description: "RSTP enabled.", type: bool}
    controller: {description: "Controller targets.", type: list, elements: str}
    other_config: {description: "The bridge's other_config.", type: dict}
    external_ids: {description: "The bridge's external_ids.", type: dict}
    ports:
      description: Ports, sorted by name, each with C(name), C(uuid), C(tag), C(trunks), C(vlan_mode),
        C(fake_bridge), C(external_ids) and C(interfaces) (C(name), C(uuid), C(type), C(ofport), C(ofport_request),
        C(link_state), C(admin_state), C(mac_in_use), C(error), C(options), C(external_ids), and with
        O(addresses=true) C(addresses) and C(up)).
      type: list
      elements: dict
  sample:
    - name: ovs-br0
      datapath_type: netdev
      ports:
        - name: mgmt0
          tag: null
          interfaces:
            - {name: mgmt0, type: internal, ofport: 1, link_state: up, addresses: [10.10.0.1/24], up: true}
missing:
  description: Requested bridges that do not exist.
  returned: always
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.common import OVSDB_ARGSPEC, ovsdb_endpoint, run
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.info import gather


def main():
    spec = dict(
        bridges=dict(type="list", elements="str"),
        addresses=dict(type="bool", default=True),
    )
    spec.update(OVSDB_ARGSPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    result = run(module, gather, ovsdb_endpoint(module), module.params["timeout"], module.params["bridges"],
                 module.params["addresses"])
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
