#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: packagekit_info
short_description: Installed packages and available updates, as PackageKit sees them over D-Bus
version_added: 0.1.0
description:
  - Reads the installed packages (C(GetPackages) with the C(installed) filter, or C(Resolve) of the given names) and the
    available updates (C(GetUpdates)) from the PackageKit daemon on the system bus.
  - When PackageKit is not on the bus the module does not fail; it returns RV(available=false) and the fallback to use
    (M(ansible.builtin.package)), so that a play can choose.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.attributes.info_module
attributes:
  platform:
    support: full
    platforms: posix
requirements:
  - dbus-python (python3-dbus in the system Python is found by respawning)
options:
  name:
    description: Only these packages (names; an arch suffix C(:arch) is ignored). Default - every installed package.
    type: list
    elements: str
    default: []
  installed:
    description: Return the installed packages.
    type: bool
    default: true
  updates:
    description: Return the available updates.
    type: bool
    default: true
  bus_address:
    description:
      - The D-Bus address of the system bus PackageKit is on (C(unix:path=...)).
      - Default E(OPDBUS_DBUS_ADDRESS), else the system bus as libdbus finds it.
    type: str
  timeout:
    description: Seconds each PackageKit transaction may take.
    type: int
    default: 300
seealso:
  - module: opdbus.infra.packagekit
"""

EXAMPLES = r"""
- name: Is PackageKit there, and what is installed
  opdbus.infra.packagekit_info:
    updates: false
  register: pk

- name: Use PackageKit when it is there
  opdbus.infra.packagekit:
    name: [tree]
  when: pk.available

- name: The versions of a few packages and their updates
  opdbus.infra.packagekit_info:
    name: [openssl, bash]
"""

RETURN = r"""
available:
  description: Whether PackageKit is on the bus. When false, only RV(msg) and RV(fallback) are returned besides.
  returned: always
  type: bool
fallback:
  description: The module to use instead when PackageKit is not available.
  returned: when available is false
  type: str
  sample: ansible.builtin.package
msg:
  description: Why PackageKit is not available.
  returned: when available is false
  type: str
daemon:
  description: The daemon - C(version), C(backend), C(distro_id), C(locked).
  returned: when available
  type: dict
installed:
  description: Installed packages by name, each with C(version), C(arch) and C(id) (a list of them, C(versions), when several architectures are installed).
  returned: when available and O(installed=true)
  type: dict
  sample: {bash: {version: 5.2.15-2+b8, arch: amd64, id: "bash;5.2.15-2+b8;amd64;auto:local"}}
updates:
  description: Available updates, each with C(name), C(version) (the new one), C(arch), C(severity) and C(id).
  returned: when available and O(updates=true)
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.opdbus.infra.plugins.module_utils.packagekit import PackageKitUnavailable
from ansible_collections.opdbus.infra.plugins.module_utils.packages.common import FALLBACK, connect, run
from ansible_collections.opdbus.infra.plugins.module_utils.packages.info import gather


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", default=[]),
            installed=dict(type="bool", default=True),
            updates=dict(type="bool", default=True),
            bus_address=dict(type="str", fallback=(env_fallback, ["OPDBUS_DBUS_ADDRESS"])),
            timeout=dict(type="int", default=300),
        ),
        supports_check_mode=True,
    )
    p = module.params

    def work():
        try:
            pk = connect(module)
        except PackageKitUnavailable as exc:
            return {"available": False, "fallback": FALLBACK, "msg": str(exc)}
        with pk:
            return gather(pk, names=p["name"], installed=p["installed"], updates=p["updates"])

    result = run(module, work)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
