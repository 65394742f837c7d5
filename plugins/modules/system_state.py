#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: system_state
short_description: Everything this collection manages on a host, as the variables playbooks/site.yml takes
version_added: 0.2.0
description:
  - Reads back, from the system itself, what the collection manages - the host bridge and its ports (OVSDB, addresses
    through rtnetlink), the flows of every other cookie (OpenFlow), the liblxc containers besides the privacy chain's,
    the managed packages dpkg has installed, the btrfs caches that have a snapshot timer, the NUMA placement drop-ins,
    and the privacy chain's options (the record opdbus.infra.privacy_router keeps in its key directory, secrets left
    out) - as one document whose keys are exactly the variables C(playbooks/site.yml) takes (the op-dbus design's
    C(state.json)).
  - "Disaster recovery: export from a converged host (C(playbooks/export_state.yml)), then on a wiped one
    C(ansible-playbook playbooks/site.yml -e @state.json); exporting again gives the same document."
  - Secrets are never part of the document. Keys the chain was given inline are left out (give them through files
    to recover them); keys the chain made itself are in its key directory, which a backup must hold.
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
    description: The host bridge (role ovs_network's C(ovs_network_bridge)).
    type: str
    default: ovs-br0
  packages:
    description: The packages the inventory manages (C(opdbus_packages)); those installed are exported.
    type: list
    elements: str
    default: []
  privacy_key_dir:
    description: The privacy chain's key directory (C(privacy_router_key_dir)).
    type: path
    default: /etc/opdbus/privacy
  lxcpath:
    description: The liblxc container directory. Default E(OPDBUS_LXC_PATH), else C(/var/lib/lxc).
    type: path
  ovsdb:
    description: The OVSDB endpoint. Default E(OPDBUS_OVSDB), else C(unix:/run/openvswitch/db.sock).
    type: str
  rundir:
    description: Where Open vSwitch keeps C(<bridge>.mgmt). Default E(OVS_RUNDIR), else the system's run directory.
    type: path
  btrfs_units_dir:
    description: Where opdbus.infra.btrfs_cache writes its snapshot units (its O(opdbus.infra.btrfs_cache#module:units_dir)).
    type: path
    default: /etc/systemd/system
  numa_dropin_dir:
    description: Where opdbus.infra.numa_policy writes its drop-ins (C(<unit>.d/50-opdbus-numa.conf)).
    type: path
    default: /etc/systemd/system
  dest:
    description: Also write the document to this file (0600), as JSON; the task reports a change when the file changes.
    type: path
notes:
  - Tested by the round trip on the lab (export, wipe the lab, site.yml with the document, export again, equal).
  - A btrfs cache without a snapshot timer is not found (its units are what names it).
  - NUMA policies are read from the drop-ins on the host's files (no systemd needed to export); converging them again
    needs systemd on the host (the lab host has none, so the lab's round trip carries none; the parsing is tested on
    recorded drop-ins).
seealso:
  - module: opdbus.infra.privacy_router
  - module: opdbus.infra.ovs_info
"""

EXAMPLES = r"""
- name: Export the state for disaster recovery
  opdbus.infra.system_state:
    packages: "{{ opdbus_packages }}"
    dest: /var/backups/opdbus/state.json
  register: exported

- name: Converge a rebuilt host from it
  ansible.builtin.debug:
    msg: ansible-playbook playbooks/site.yml -e @/var/backups/opdbus/state.json
"""

RETURN = r"""
state:
  description: The document - site.yml's variables.
  returned: always
  type: dict
  sample: {"opdbus_mode": "full", "opdbus_packages": ["iproute2"], "ovs_network_bridge": "ovs-br0", "opdbus_flows": [],
           "opdbus_containers": [], "privacy_router_vps": {"address": "203.0.113.10", "id": null, "id_file": "/etc/opdbus/vps.uuid"}}
"""

import json
import os

from ansible.module_utils.basic import AnsibleModule, env_fallback


def main():
    module = AnsibleModule(
        argument_spec=dict(
            bridge=dict(type="str", default="ovs-br0"),
            packages=dict(type="list", elements="str", default=[]),
            privacy_key_dir=dict(type="path", default="/etc/opdbus/privacy"),
            lxcpath=dict(type="path", fallback=(env_fallback, ["OPDBUS_LXC_PATH"])),
            ovsdb=dict(type="str", fallback=(env_fallback, ["OPDBUS_OVSDB"])),
            rundir=dict(type="path", fallback=(env_fallback, ["OVS_RUNDIR"])),
            btrfs_units_dir=dict(type="path", default="/etc/systemd/system"),
            numa_dropin_dir=dict(type="path", default="/etc/systemd/system"),
            dest=dict(type="path"),
        ),
        supports_check_mode=True,
    )
    params = module.params
    from ansible_collections.opdbus.infra.plugins.module_utils.ovs.model import ValidationError, check_ifname
    try:
        check_ifname(params["bridge"], "bridge")
    except ValidationError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import LiblxcBackend, import_lxc
    lxc_module = import_lxc(module)
    from ansible_collections.opdbus.infra.plugins.module_utils import system_state as st
    from ansible_collections.opdbus.infra.plugins.module_utils.ovsdb import DEFAULT_ENDPOINT, OvsdbError
    from ansible_collections.opdbus.infra.plugins.module_utils.openflow.errors import OpenFlowError
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError
    from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import BtrfsError
    endpoint = params["ovsdb"] or DEFAULT_ENDPOINT
    try:
        state = {}
        privacy = st.privacy_part(params["privacy_key_dir"])
        ovs = st.ovs_part(endpoint, params["bridge"])
        state.update(ovs)
        state.update(privacy)
        state["opdbus_flows"], cookies = st.flows_part(params["bridge"], rundir=params["rundir"]) if ovs else ([], set())
        state["opdbus_mode"] = st.mode_of(privacy, st.PRIVACY_FLOWS_COOKIE in cookies)
        lxcpath = params["lxcpath"] or "/var/lib/lxc"
        if os.path.isdir(lxcpath):
            backend = LiblxcBackend(lxcpath, lxc_module=lxc_module)
            state["opdbus_containers"] = st.containers_part(backend, skip=st.chain_names(privacy))
        else:
            state["opdbus_containers"] = []
        state["opdbus_packages"] = st.packages_part(params["packages"])
        state["opdbus_btrfs_caches"] = st.btrfs_caches_part(params["btrfs_units_dir"])
        state["opdbus_numa_policies"] = st.numa_policies_part(params["numa_dropin_dir"])
    except (OvsdbError, OpenFlowError, LxcError, BtrfsError, ValueError, OSError) as exc:
        module.fail_json(msg="%s: %s" % (type(exc).__name__, exc))
    changed = False
    if params["dest"]:
        text = json.dumps(state, indent=2, sort_keys=True) + "\n"
        try:
            with open(params["dest"]) as handle:
                changed = handle.read() != text
        except (IOError, OSError):
            changed = True
        if changed and not module.check_mode:
            from ansible_collections.opdbus.infra.plugins.module_utils.privacy import files
            parent = os.path.dirname(os.path.abspath(params["dest"]))
            if not os.path.isdir(parent):
                os.makedirs(parent, 0o700)
            files.write("/", os.path.abspath(params["dest"]), text.encode("utf-8"), 0o600)
    module.exit_json(changed=changed, state=state)


if __name__ == "__main__":
    main()
