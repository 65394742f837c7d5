#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: packagekit
short_description: Packages through PackageKit over D-Bus, with a check mode that runs the transaction simulated
version_added: 0.1.0
description:
  - Installs, removes and upgrades packages through the PackageKit daemon (C(org.freedesktop.PackageKit) on the system
    D-Bus), with no package manager command line in between.
  - All packages of a task go into one PackageKit transaction (C(InstallPackages) or C(RemovePackages)), after one
    C(Resolve) of every name.
  - Check mode runs that same transaction with PackageKit's C(SIMULATE) flag, so RV(packages) and the diff list exactly
    what the real run would install, update or remove, dependencies included. Check mode never refreshes the cache; it
    reports in RV(cache_updated) that it would.
  - When PackageKit is not on the bus the module fails with a message that says so and names the fallback,
    M(ansible.builtin.package) (the role C(opdbus.infra.packages) switches to it by itself).
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
requirements:
  - dbus-python (python3-dbus in the system Python is found by respawning)
  - a running PackageKit daemon and polkitd on the system bus
options:
  name:
    description:
      - Packages, each C(name), C(name=version), C(name:arch) or C(name:arch=version).
      - Two different versions of one package in one task are refused (a conflicting request).
      - Without it (and O(update_cache=true)) only the cache is refreshed.
    type: list
    elements: str
    aliases: [pkg]
  state:
    description:
      - V(present) installs what is missing (at the given version if one is given).
      - V(latest) also upgrades installed packages to the version the package sources offer (apt's candidate).
      - V(absent) removes them, and the packages that depend on them.
    type: str
    choices: [present, absent, latest]
    default: present
  update_cache:
    description: Refresh the package lists (C(RefreshCache)) before anything else.
    type: bool
    default: false
  cache_valid_time:
    description:
      - With O(update_cache=true), refresh only when PackageKit last refreshed more than this many seconds ago
        (C(GetTimeSinceAction)). V(0) refreshes always.
    type: int
    default: 0
  allow_untrusted:
    description:
      - Install packages that apt cannot authenticate (unsigned repositories). Without it the transaction carries
        PackageKit's C(ONLY_TRUSTED) flag and such packages are refused.
    type: bool
    default: false
  autoremove:
    description: With O(state=absent), also remove the dependencies that were installed automatically and are no longer needed.
    type: bool
    default: false
  bus_address:
    description:
      - The D-Bus address of the system bus PackageKit is on (C(unix:path=...)).
      - Default E(OPDBUS_DBUS_ADDRESS), else the system bus as libdbus finds it (E(DBUS_SYSTEM_BUS_ADDRESS), else
        C(/run/dbus/system_bus_socket)).
    type: str
  timeout:
    description: Seconds a transaction (a download and install included) may take.
    type: int
    default: 600
  lock_timeout:
    description:
      - Seconds to keep retrying while another process holds the package database lock (PackageKit's
        C(cannot-get-lock)). V(0) fails at the first refusal.
    type: int
    default: 60
notes:
  - The module never runs apt, dpkg or pkcon; everything goes through PackageKit's D-Bus API.
  - Root is authorized by polkit. Other users are refused by polkit unless a rule grants them the
    C(org.freedesktop.packagekit.*) actions; check mode (a simulated transaction) works for them.
  - V(latest) means the candidate version of the package sources, as C(apt-get install) would pick it.
seealso:
  - module: opdbus.infra.packagekit_info
  - module: ansible.builtin.package
  - module: ansible.builtin.apt
"""

EXAMPLES = r"""
- name: Tools, at the versions the sources offer, after a cache refresh of at most an hour ago
  opdbus.infra.packagekit:
    name: [tree, hello, fortune-mod]
    update_cache: true
    cache_valid_time: 3600

- name: A pinned version
  opdbus.infra.packagekit:
    name: [wireguard-tools=1.0.20210914-1+b1]

- name: Always the newest
  opdbus.infra.packagekit:
    name: [openvswitch-switch]
    state: latest

- name: Gone, with what only they needed
  opdbus.infra.packagekit:
    name: [fortune-mod]
    state: absent
    autoremove: true

- name: What would change (a simulated PackageKit transaction)
  opdbus.infra.packagekit:
    name: [cowsay]
  check_mode: true
  diff: true
  register: plan
"""

RETURN = r"""
packages:
  description: Every package the transaction changed (in check mode, would change), dependencies included.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The package name.
      type: str
    version:
      description: The version installed (or removed).
      type: str
    arch:
      description: Its architecture.
      type: str
    action:
      description: V(install), V(update), V(remove), V(downgrade), V(reinstall) or V(obsolete).
      type: str
    previous_version:
      description: The version installed before (null for a new install); not returned for a removal.
      type: str
    id:
      description: The PackageKit package id (C(name;version;arch;data)).
      type: str
  sample:
    - {name: fortune-mod, version: "1:1.99.1-7.3", arch: amd64, action: install, previous_version: null,
       id: "fortune-mod;1:1.99.1-7.3;amd64;+manual:debian-oldstable-main"}
installed:
  description: C(name=version) of the packages newly installed.
  returned: always
  type: list
  elements: str
updated:
  description: C(name=version) (the new version) of the packages upgraded or downgraded.
  returned: always
  type: list
  elements: str
removed:
  description: C(name=version) of the packages removed.
  returned: always
  type: list
  elements: str
cache_updated:
  description: Whether the package lists were refreshed (in check mode, would be).
  returned: always
  type: bool
cache_age:
  description: Seconds since PackageKit last refreshed the lists, before this run (null if never or not asked).
  returned: always
  type: int
restart_required:
  description: Whether PackageKit asked for a restart after the transaction (C(RequireRestart)).
  returned: always
  type: bool
restart:
  description: The most severe restart asked for (V(application), V(session), V(system), ...), or null.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule, env_fallback

from ansible_collections.opdbus.infra.plugins.module_utils.packages.common import connect, run
from ansible_collections.opdbus.infra.plugins.module_utils.packages.reconcile import Packages


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="list", elements="str", aliases=["pkg"]),
            state=dict(type="str", choices=["present", "absent", "latest"], default="present"),
            update_cache=dict(type="bool", default=False),
            cache_valid_time=dict(type="int", default=0),
            allow_untrusted=dict(type="bool", default=False),
            autoremove=dict(type="bool", default=False),
            bus_address=dict(type="str", fallback=(env_fallback, ["OPDBUS_DBUS_ADDRESS"])),
            timeout=dict(type="int", default=600),
            lock_timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if not p["name"] and not p["update_cache"]:
        module.fail_json(msg="invalid input: name (the packages) is required unless update_cache=true")
    if p["cache_valid_time"] < 0 or p["timeout"] <= 0 or p["lock_timeout"] < 0:
        module.fail_json(msg="invalid input: cache_valid_time and lock_timeout must be >= 0, timeout > 0")

    def work():
        with connect(module) as pk:
            packages = Packages(pk, check_mode=module.check_mode, timeout=p["timeout"], lock_timeout=p["lock_timeout"])
            return packages.run(p["name"], state=p["state"], update_cache=p["update_cache"],
                                cache_valid_time=p["cache_valid_time"], allow_untrusted=p["allow_untrusted"],
                                autoremove=p["autoremove"])

    result = run(module, work)
    diff = result.pop("diff")
    if module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
