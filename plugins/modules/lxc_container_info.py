#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: lxc_container_info
short_description: Report LXC containers of liblxc or a Proxmox VE node, with state, settings and addresses
version_added: 0.1.0
description:
  - Lists the containers of a liblxc container directory or of a Proxmox VE node, each with its run state, its settings
    in the terms of M(opdbus.infra.lxc_container) and, when it runs, its addresses.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.attributes.INFO_MODULE
  - opdbus.infra.proxmox
attributes:
  platform:
    support: full
    platforms: posix
options:
  backend:
    description: Where the containers live.
    type: str
    choices: [lxc, proxmox]
    default: lxc
  names:
    description: Only these containers (names; with Proxmox VE also VMIDs as strings). Default - all.
    type: list
    elements: str
  lxcpath:
    description: The liblxc container directory. Default E(OPDBUS_LXC_PATH), else C(/var/lib/lxc).
    type: path
  timeout:
    description: Seconds to wait for each API call (Proxmox VE).
    type: int
    default: 30
requirements:
  - python3-lxc (liblxc backend; in the system Python, found by respawning)
  - proxmoxer and requests (proxmox backend)
seealso:
  - module: opdbus.infra.lxc_container
"""

EXAMPLES = r"""
- name: What runs here
  opdbus.infra.lxc_container_info:
  register: cts

- name: The privacy chain's containers on Proxmox VE
  opdbus.infra.lxc_container_info:
    backend: proxmox
    api_host: pve1.example.org
    node: pve1
    names: ["100", "101", "102"]
"""

RETURN = r"""
containers:
  description: One entry per container, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: Its name.
      type: str
    id:
      description: Its VMID (Proxmox VE), else null.
      type: int
    state:
      description: V(stopped) or V(running).
      type: str
    config:
      description: Its settings as M(opdbus.infra.lxc_container) takes them.
      type: dict
    addresses:
      description: Interface name to addresses with prefix length (empty when stopped).
      type: dict
"""

import copy

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.opdbus.infra.plugins.module_utils.lxc.base import LxcError, NotFound, ValidationError
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.factory import make_backend
from ansible_collections.opdbus.infra.plugins.module_utils.lxc.proxmox import CONNECTION_SPEC


def collect(backend, wanted):
    out = []
    for entry in backend.list():
        ident = entry["id"] if entry.get("id") is not None else entry["name"]
        if wanted and entry["name"] not in wanted and str(entry.get("id")) not in wanted:
            continue
        try:
            config = backend.read(ident)
            state = backend.state(ident)
            addresses = backend.addresses(ident) if state == "running" else {}
        except NotFound:
            continue  # removed while being listed
        out.append({
            "name": entry["name"],
            "id": entry.get("id"),
            "state": state,
            "config": dict((k, v) for k, v in config.items() if v is not None),
            "addresses": addresses,
        })
    return sorted(out, key=lambda ct: (ct["name"] or "", ct["id"] or 0))


def main():
    spec = dict(
        backend=dict(type="str", choices=["lxc", "proxmox"], default="lxc"),
        names=dict(type="list", elements="str"),
        lxcpath=dict(type="path", fallback=(env_fallback, ["OPDBUS_LXC_PATH"])),
        timeout=dict(type="int", default=30),
    )
    spec.update(copy.deepcopy(CONNECTION_SPEC))
    module = AnsibleModule(argument_spec=spec, required_if=[("backend", "proxmox", ("api_host", "node"))],
                           supports_check_mode=True)
    try:
        containers = collect(make_backend(module), set(module.params["names"] or []))
    except ValidationError as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    except LxcError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, containers=containers)


if __name__ == "__main__":
    main()
