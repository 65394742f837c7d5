#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lxc_container
short_description: LXC containers through liblxc or Proxmox VE, with their NICs on Open vSwitch
version_added: 0.1.0
description:
  - Creates, configures, starts, stops and destroys an LXC container, locally through liblxc (the C(python3-lxc)
    binding; the module respawns into the system Python when its interpreter lacks it) or on a Proxmox VE node
    through its API (proxmoxer).
  - Only the settings given are managed; each is compared with the container's current value and only what differs is
    written (one config write on Proxmox VE, with the configuration digest read just before).
  - A NIC of O(network[].type=socket) is an Open vSwitch internal port on O(network[].bridge), created through OVSDB
    and moved into the container (liblxc backend); a O(network[].type=veth) NIC's host side is added to the OVS bridge
    through OVSDB once the container runs (liblxc), or attached by Proxmox VE itself.
  - Settings a running container only takes on its next start (hostname, features, network, mounts, root size) are
    written and reported with RV(restart_required); the container is restarted only with O(restart_on_change=true).
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.proxmox
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    support: full
    platforms: posix
requirements:
  - python3-lxc (liblxc backend; in the system Python, found by respawning)
  - proxmoxer and requests (proxmox backend)
options:
  name:
    description:
      - The container's name. With the C(lxc) backend its identity; with C(proxmox) its host name unless O(hostname) is
        given, and how an existing container is found when O(id) is not given.
    type: str
  id:
    description: The Proxmox VE VMID (100 to 999999999). Without it a new container gets the cluster's next free id.
    type: int
  backend:
    description: Where the container lives.
    type: str
    choices: [lxc, proxmox]
    default: lxc
  state:
    description:
      - V(present) creates (stopped) or updates the container and leaves it running or not as it is.
      - V(started) and V(stopped) also start or stop it; V(restarted) always restarts it (creating it first if needed).
      - V(absent) stops (forcibly after O(timeout)) and destroys it with its root filesystem.
    type: str
    choices: [present, started, stopped, restarted, absent]
    default: started
  template:
    description:
      - What a new container is made from. liblxc - V(busybox), V(debian) (bookworm, through debootstrap, cached) or
        V(clone:NAME) to clone container NAME (a btrfs snapshot when the container path is on btrfs). Proxmox VE - an
        OS template volume such as C(local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst).
      - Needed only to create; ignored for an existing container.
    type: str
  hostname:
    description: The host name inside the container.
    type: str
  cores:
    description: CPU cores the container may use (a CPU bandwidth limit of this many CPUs on liblxc).
    type: int
  memory_mb:
    description: Memory limit in MiB.
    type: int
  swap_mb:
    description: Swap limit in MiB.
    type: int
  rootfs_gb:
    description:
      - Size of the root filesystem in GiB. Enforced on Proxmox VE (grown with a resize; shrinking is refused);
        recorded but not enforced on a liblxc directory root.
    type: int
  onboot:
    description: Start the container when the host boots.
    type: bool
  unprivileged:
    description: Run the container unprivileged (user namespace). Chosen at creation only.
    type: bool
  features:
    description: Container features; the whole set is managed (features not listed are off).
    type: dict
    suboptions:
      nesting:
        description: Allow nested containers and systemd's sandboxing inside.
        type: bool
        default: false
      tun:
        description: Give the container C(/dev/net/tun) (WireGuard in user space, VPN clients).
        type: bool
        default: false
      keyctl:
        description: Allow the keyctl system call (Proxmox VE feature).
        type: bool
        default: false
      fuse:
        description: Allow FUSE mounts.
        type: bool
        default: false
  network:
    description: The container's NICs, in order (eth0, eth1, ...). The whole list is managed.
    type: list
    elements: dict
    suboptions:
      name:
        description: The interface name inside the container. Default C(eth<index>).
        type: str
      type:
        description:
          - V(veth) - a veth pair whose host side joins O(network[].bridge).
          - V(socket) - an OVS internal port named O(network[].port) on O(network[].bridge), moved into the container
            (liblxc only; the privacy sockets of the op-dbus design, e.g. C(priv_wg)).
        type: str
        choices: [veth, socket]
        default: veth
      bridge:
        description: The bridge (an Open vSwitch bridge with the liblxc backend; any bridge Proxmox VE knows with C(proxmox)).
        type: str
      address:
        description: The address with its prefix length (C(10.100.0.2/24)), V(dhcp) or V(manual).
        type: str
      gateway:
        description: The default gateway, in the subnet of O(network[].address).
        type: str
      hwaddr:
        description: The MAC address. Default - chosen by the backend and then kept.
        type: str
      port:
        description:
          - The host-side name. For V(socket) the OVS internal port (required); for V(veth) the host end of the pair
            (liblxc; default derived from the container name).
        type: str
  mounts:
    description: Bind mounts (liblxc) or mount points (Proxmox VE). The whole list is managed.
    type: list
    elements: dict
    suboptions:
      source:
        description: Host path (or a Proxmox VE volume).
        type: str
        required: true
      target:
        description: Absolute path inside the container.
        type: str
        required: true
      readonly:
        description: Mount read-only.
        type: bool
        default: false
  restart_on_change:
    description: Restart a running container when a change needs it. Otherwise the change waits for the next start.
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each operation (creation, start, clean shutdown, Proxmox VE tasks).
    type: int
    default: 120
  lxcpath:
    description: The liblxc container directory. Default E(OPDBUS_LXC_PATH), else C(/var/lib/lxc).
    type: path
  ovsdb:
    description:
      - The OVSDB endpoint for the containers' OVS ports (liblxc backend), as C(unix:PATH) or C(tcp:IP:PORT).
      - Default E(OPDBUS_OVSDB), else the system socket C(unix:/run/openvswitch/db.sock).
    type: str
  storage:
    description: The Proxmox VE storage of a new container's root filesystem.
    type: str
    default: local-lvm
notes:
  - On the lab's userspace (netdev) Open vSwitch, socket ports are tap devices; they work moved into a container.
  - Tested for real with liblxc (busybox and Debian bookworm containers with systemd as PID 1, on the lab's OVS) and
    against a Proxmox VE API simulator that checks every request against the PVE 9.1.3 API schema; not against a
    real Proxmox VE node.
seealso:
  - module: opdbus.infra.ovs_bridge
"""

EXAMPLES = r"""
- name: The WireGuard gateway of the privacy chain on its socket port
  opdbus.infra.lxc_container:
    name: ct100
    template: debian
    hostname: wg-gateway
    cores: 1
    memory_mb: 512
    features: {nesting: true, tun: true}
    network:
      - {type: socket, bridge: ovs-br0, port: priv_wg, address: 10.100.0.2/24, gateway: 10.100.0.1}
    state: started

- name: A container on Proxmox VE, found by its VMID
  opdbus.infra.lxc_container:
    backend: proxmox
    api_host: pve1.example.org
    node: pve1
    api_token_id: ansible@pve!infra
    api_token_secret: "{{ vault_pve_token }}"
    id: 101
    name: warp
    template: local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst
    cores: 2
    memory_mb: 1024
    rootfs_gb: 8
    network:
      - {bridge: vmbr0, address: 10.100.1.2/24, gateway: 10.100.1.1}

- name: More memory now, a new hostname at the next restart
  opdbus.infra.lxc_container:
    name: ct100
    memory_mb: 1024
    hostname: wg-gw
    state: present
"""

RETURN = r"""
container:
  description: The container after the run (in check mode, what it would be).
  returned: always
  type: dict
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its VMID (Proxmox VE), else null.
      type: int
    state:
      description: V(absent), V(stopped) or V(running).
      type: str
    config:
      description: Its settings in this module's terms (null when absent).
      type: dict
changes:
  description: What was (or in check mode would be) done, one line each.
  returned: always
  type: list
  elements: str
  sample: ["create from debian", "add socket port priv_wg to OVS bridge ovs-br0", "start"]
restart_required:
  description: Changes were written that the running container only takes on its next start.
  returned: always
  type: bool
"""

import copy

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError, ValidationError
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.factory import make_backend
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.proxmox import CONNECTION_SPEC
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.reconcile import Run, desired_spec, public
from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import OvsdbError


def argument_spec():
    spec = dict(
        name=dict(type="str"),
        id=dict(type="int"),
        backend=dict(type="str", choices=["lxc", "proxmox"], default="lxc"),
        state=dict(type="str", choices=["present", "started", "stopped", "restarted", "absent"], default="started"),
        template=dict(type="str"),
        hostname=dict(type="str"),
        cores=dict(type="int"),
        memory_mb=dict(type="int"),
        swap_mb=dict(type="int"),
        rootfs_gb=dict(type="int"),
        onboot=dict(type="bool"),
        unprivileged=dict(type="bool"),
        features=dict(type="dict", options=dict(
            nesting=dict(type="bool", default=False),
            tun=dict(type="bool", default=False),
            keyctl=dict(type="bool", default=False),
            fuse=dict(type="bool", default=False),
        )),
        network=dict(type="list", elements="dict", options=dict(
            name=dict(type="str"),
            type=dict(type="str", choices=["veth", "socket"], default="veth"),
            bridge=dict(type="str"),
            address=dict(type="str"),
            gateway=dict(type="str"),
            hwaddr=dict(type="str"),
            port=dict(type="str"),
        )),
        mounts=dict(type="list", elements="dict", options=dict(
            source=dict(type="str", required=True),
            target=dict(type="str", required=True),
            readonly=dict(type="bool", default=False),
        )),
        restart_on_change=dict(type="bool", default=False),
        timeout=dict(type="int", default=120),
        lxcpath=dict(type="path", fallback=(env_fallback, ["OPDBUS_LXC_PATH"])),
        ovsdb=dict(type="str", fallback=(env_fallback, ["OPDBUS_OVSDB"])),
        storage=dict(type="str", default="local-lvm"),
    )
    spec.update(copy.deepcopy(CONNECTION_SPEC))
    return spec


def main():
    module = AnsibleModule(
        argument_spec=argument_spec(),
        required_one_of=[("name", "id")],
        required_if=[("backend", "proxmox", ("api_host", "node"))],
        supports_check_mode=True,
    )
    try:
        spec = desired_spec(module.params)
        if module.params["backend"] == "lxc":
            if not spec["name"]:
                raise ValidationError("the lxc backend identifies containers by name: give name")
            if spec["id"] is not None:
                raise ValidationError("id is a Proxmox VE VMID; the lxc backend has none")
        if module.params["timeout"] < 1:
            raise ValidationError("timeout must be at least 1 second")
        backend = make_backend(module)
        run = Run(module, backend, spec)
        ident, before, before_state, after, after_state = run.execute()
    except ValidationError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    except (LxcError, OvsdbError) as exc:
        module.fail_json(msg=str(exc))
    if after_state == "absent":
        after = None
    container = {
        "name": spec["name"] or (after or before or {}).get("name"),
        "id": ident if module.params["backend"] == "proxmox" else None,
        "state": after_state,
        "config": public(after),
    }
    result = {
        "changed": bool(run.changes),
        "changes": run.changes,
        "restart_required": run.restart_required,
        "container": container,
    }
    if module._diff:
        result["diff"] = {
            "before": dict(public(before) or {}, state=before_state),
            "after": dict(public(after) or {}, state=after_state),
            "before_header": "container %s" % container["name"],
            "after_header": "container %s" % container["name"],
        }
    module.exit_json(**result)


if __name__ == "__main__":
    main()
