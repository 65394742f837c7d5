#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: ovs_bridge
short_description: Manage an Open vSwitch bridge and its ports over OVSDB
version_added: 0.1.0
description:
  - Creates, changes and removes an Open vSwitch bridge and its ports by speaking the OVSDB management
    protocol (RFC 7047) to C(ovsdb-server) directly. No C(ovs-vsctl) is run.
  - The whole bridge, ports included, is read in one round trip and changed in B(one) OVSDB transaction, so a
    task is applied entirely or not at all. The transaction carries C(wait) operations for every row it
    changes; if another client changed them since they were read, the task reads again and replans.
  - After the transaction the module waits until C(ovs-vswitchd) has applied it (C(cur_cfg) reaches the new
    C(next_cfg)), then reports each port's OpenFlow port number.
  - Addresses and link state of internal ports are set through rtnetlink (pyroute2) on the device OVS creates.
  - Fields of a listed port are authoritative (an omitted O(ports[].tag) means no tag); maps such as
    O(external_ids) are merged unless purged. Ports that are not listed are left alone unless
    O(ports_exclusive=true).
author:
  - opdbus.infra maintainers (@opdbus)
requirements:
  - pyroute2 (only when O(ports[].addresses) or O(ports[].up) is used)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.ovsdb
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
options:
  name:
    description:
      - Name of the bridge (at most 15 bytes of letters, digits, C(_), C(-) and C(.)).
    type: str
    required: true
    aliases: [bridge]
  state:
    description:
      - V(present) creates or updates the bridge, V(absent) removes it with all its ports.
    type: str
    choices: [present, absent]
    default: present
  parent:
    description:
      - Makes O(name) a fake bridge (a VLAN of this parent bridge), as C(ovs-vsctl add-br NAME PARENT VLAN) does.
      - Requires O(vlan). A fake bridge takes no datapath, protocol, STP or controller options.
    type: str
  vlan:
    description:
      - The VLAN (1-4095) of a fake bridge. Its ports are access ports of this VLAN on the parent.
    type: int
  datapath_type:
    description:
      - V(system) uses the kernel datapath, V(netdev) the userspace datapath.
      - Not changed when omitted; a new bridge gets V(system).
    type: str
    choices: [system, netdev]
  fail_mode:
    description:
      - What the bridge does without a controller. V(standalone) acts as a learning switch, V(secure) forwards
        only by its flows. Not changed when omitted.
    type: str
    choices: [standalone, secure]
  protocols:
    description:
      - OpenFlow versions the bridge speaks (this also limits its management socket). Not changed when omitted.
    type: list
    elements: str
    choices: [OpenFlow10, OpenFlow11, OpenFlow12, OpenFlow13, OpenFlow14, OpenFlow15]
  stp:
    description: Enable the Spanning Tree Protocol (exclusive with O(rstp)). Not changed when omitted.
    type: bool
  rstp:
    description: Enable the Rapid Spanning Tree Protocol. Not changed when omitted.
    type: bool
  controller:
    description:
      - OpenFlow controller targets (C(tcp:IP[:PORT]), C(ssl:IP[:PORT]), C(ptcp:[PORT][:IP]), C(unix:PATH),
        C(punix:PATH)). The list is exact; V([]) removes all controllers. Not changed when omitted.
    type: list
    elements: str
  other_config:
    description: Keys of the bridge's C(other_config) to set (for example C(stp-priority), C(hwaddr)).
    type: dict
  purge_other_config:
    description: Remove C(other_config) keys not given in O(other_config).
    type: bool
    default: false
  external_ids:
    description: Keys of the bridge's C(external_ids) to set (of a fake bridge, of its port).
    type: dict
  purge_external_ids:
    description: Remove C(external_ids) keys of the bridge not given in O(external_ids).
    type: bool
    default: false
  ports:
    description:
      - Ports of the bridge. Omitted means the ports are not managed.
      - The bridge's own local port (named like the bridge) may be listed to give it addresses.
    type: list
    elements: dict
    suboptions:
      name:
        description: Port and interface name (at most 15 bytes).
        type: str
        required: true
      type:
        description:
          - V(system) attaches an existing network device, V(internal) makes OVS create one (a tap device on the
            V(netdev) datapath), V(patch) links two bridges, V(tap) opens a tap device, V(vxlan), V(geneve) and
            V(gre) are tunnels.
        type: str
        choices: [internal, system, patch, tap, vxlan, geneve, gre]
        default: system
      peer:
        description: The patch port on the other bridge (type V(patch) only).
        type: str
      remote_ip:
        description: Tunnel remote address, or V(flow) to set it per flow (tunnel types only).
        type: str
      key:
        description: Tunnel key (VNI), or V(flow) to set it per flow (tunnel types only).
        type: str
      options:
        description: Further interface C(options) (for example C(dst_port), C(csum)). The options are exact.
        type: dict
      tag:
        description: Access VLAN (0-4095); the native VLAN with O(ports[].vlan_mode=native-tagged) or V(native-untagged).
        type: int
      trunks:
        description: VLANs a trunk port carries. Empty or omitted means all VLANs.
        type: list
        elements: int
      vlan_mode:
        description: How the port treats VLANs.
        type: str
        choices: [trunk, access, native-tagged, native-untagged, dot1q-tunnel]
      ofport_request:
        description: OpenFlow port number to ask for (1-65279).
        type: int
      external_ids:
        description: Keys of the port's C(external_ids) to set.
        type: dict
      interface_external_ids:
        description: Keys of the interface's C(external_ids) to set (for example C(iface-id) for OVN).
        type: dict
      purge_external_ids:
        description: Remove C(external_ids) keys of the port and its interface that are not given.
        type: bool
        default: false
      addresses:
        description:
          - Exact list of IPv4/IPv6 addresses in CIDR notation for an internal port's device, set through netlink.
            IPv6 link-local addresses are never touched. Omitted means the addresses are not managed.
        type: list
        elements: str
      up:
        description: Bring the internal port's device up (V(true)) or down. Omitted means not managed.
        type: bool
  ports_exclusive:
    description:
      - Remove ports of the bridge that are not listed in O(ports). The bridge's local port is never removed.
    type: bool
    default: false
notes:
  - Interface and bridge names, VLAN ranges, CIDRs, tunnel parameters and conflicts with ports of other
    bridges are checked before anything is sent to OVSDB.
  - The port naming of the op-dbus design is a convention, not a rule of this module (see the examples).
seealso:
  - module: opdbus.infra.ovs_info
  - name: RFC 7047, the Open vSwitch Database Management Protocol
    description: The protocol this module speaks.
    link: https://www.rfc-editor.org/rfc/rfc7047
"""

EXAMPLES = r"""
- name: The op-dbus bridge with a management port and the privacy sockets
  opdbus.infra.ovs_bridge:
    name: ovs-br0
    datapath_type: netdev
    fail_mode: standalone
    protocols: [OpenFlow13, OpenFlow14]
    external_ids:
      opdbus-role: main
    ports:
      - name: mgmt0
        type: internal
        addresses: [10.10.0.1/24]
        up: true
      - name: priv_wg         # privacy sockets: priv_<hop>
        type: internal
      - name: priv_warp
        type: internal
      - name: priv_xray
        type: internal
      - name: internal_100    # socket port of container 100: internal_<container id>
        type: internal
        interface_external_ids:
          container: "100"
      - name: eth1            # the uplink
        type: system

- name: Set the OVSDB endpoint once for every OVS module of a play
  module_defaults:
    group/opdbus.infra.ovs:
      ovsdb: unix:/run/openvswitch/db.sock
  block:
    - name: Exactly these ports, nothing else
      opdbus.infra.ovs_bridge:
        name: br-lab
        ports_exclusive: true
        ports:
          - name: sock_web       # container port: sock_<name>
            type: internal
            tag: 20
          - name: trunk0
            trunks: [20, 30]
            vlan_mode: trunk

- name: Two bridges joined by a patch pair, and a VXLAN tunnel
  opdbus.infra.ovs_bridge:
    name: br-ex
    ports:
      - name: patch-ex-int
        type: patch
        peer: patch-int-ex
      - name: vx0
        type: vxlan
        remote_ip: 192.0.2.10
        key: "5001"

- name: A fake bridge (VLAN 30 of ovs-br0)
  opdbus.infra.ovs_bridge:
    name: br-v30
    parent: ovs-br0
    vlan: 30

- name: Drop an external id and everything not listed
  opdbus.infra.ovs_bridge:
    name: ovs-br0
    external_ids:
      opdbus-role: main
    purge_external_ids: true

- name: Remove a bridge and all its ports
  opdbus.infra.ovs_bridge:
    name: br-old
    state: absent
"""

RETURN = r"""
bridge:
  description: The bridge (for a fake bridge, its port on the parent). In check mode the current uuid.
  returned: always
  type: dict
  contains:
    name:
      description: Bridge name.
      type: str
      sample: ovs-br0
    uuid:
      description: Row uuid of the bridge in OVSDB, V(null) when it does not exist.
      type: str
      sample: 6b5f8d1e-4c1a-4d0e-9f0a-2f1d3c4b5a69
ports:
  description:
    - The bridge's ports after the run (in check mode, as predicted), each with its OVSDB uuid and OpenFlow port
      number (V(null) for a port that does not exist yet or could not be opened).
  returned: always
  type: dict
  sample:
    mgmt0: {uuid: 0d6f7a3c-1111-4d6e-8a8c-5b0c6f1d2e3f, ofport: 1, error: null}
changes:
  description: What the run changed (in check mode, what it would change), in order. Empty when nothing changes.
  returned: always
  type: list
  elements: str
  sample: ["create bridge ovs-br0", "add port mgmt0 (internal)", "port mgmt0 addresses: [] -> [10.10.0.1/24]"]
diff:
  description: Before and after of the bridge and its ports, with diff mode.
  returned: when diff mode is on
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.common import OVSDB_ARGSPEC, ovsdb_endpoint, run
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.bridge import converge
from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import FAIL_MODES, PORT_TYPES, PROTOCOLS, VLAN_MODES, normalize_bridge

PORT_SPEC = dict(
    name=dict(type="str", required=True),
    type=dict(type="str", choices=list(PORT_TYPES), default="system"),
    peer=dict(type="str"),
    remote_ip=dict(type="str"),
    key=dict(type="str", no_log=False),
    options=dict(type="dict"),
    tag=dict(type="int"),
    trunks=dict(type="list", elements="int"),
    vlan_mode=dict(type="str", choices=list(VLAN_MODES)),
    ofport_request=dict(type="int"),
    external_ids=dict(type="dict"),
    interface_external_ids=dict(type="dict"),
    purge_external_ids=dict(type="bool", default=False),
    addresses=dict(type="list", elements="str"),
    up=dict(type="bool"),
)


def argument_spec():
    spec = dict(
        name=dict(type="str", required=True, aliases=["bridge"]),
        state=dict(type="str", choices=["present", "absent"], default="present"),
        parent=dict(type="str"),
        vlan=dict(type="int"),
        datapath_type=dict(type="str", choices=["system", "netdev"]),
        fail_mode=dict(type="str", choices=list(FAIL_MODES)),
        protocols=dict(type="list", elements="str", choices=list(PROTOCOLS)),
        stp=dict(type="bool"),
        rstp=dict(type="bool"),
        controller=dict(type="list", elements="str"),
        other_config=dict(type="dict"),
        purge_other_config=dict(type="bool", default=False),
        external_ids=dict(type="dict"),
        purge_external_ids=dict(type="bool", default=False),
        ports=dict(type="list", elements="dict", options=PORT_SPEC),
        ports_exclusive=dict(type="bool", default=False),
    )
    spec.update(OVSDB_ARGSPEC)
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_together=[("parent", "vlan")],
        supports_check_mode=True,
    )
    desired = run(module, normalize_bridge, module.params)
    result = run(module, converge, desired, ovsdb_endpoint(module), module.params["timeout"], module.check_mode)
    before, after = result.pop("before"), result.pop("after")
    if module._diff:
        result["diff"] = {"before": before or {}, "after": after or {},
                          "before_header": "bridge %s" % desired["name"],
                          "after_header": "bridge %s" % desired["name"]}
    for pname, port in sorted(result["ports"].items()):
        if port.get("error"):
            module.warn("port %s: ovs-vswitchd reports: %s" % (pname, port["error"]))
        elif not module.check_mode and port.get("uuid") and port.get("ofport") is None:
            module.warn("port %s has no OpenFlow port number: ovs-vswitchd could not open it (or the bridge's "
                        "datapath); see its log" % pname)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
