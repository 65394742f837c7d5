#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dbus_introspect
short_description: Describe D-Bus services - objects, interfaces, methods, properties, signals, with JSON Schema
version_added: 0.1.0
description:
  - Lists the names on a D-Bus bus that match a glob and walks each one's object tree with
    C(org.freedesktop.DBus.Introspectable.Introspect), following the child nodes from O(path) down to O(max_depth)
    levels and at most O(max_objects) objects per service.
  - Returns every object's interfaces with their methods (in and out arguments), properties (type and access) and
    signals. Each argument's D-Bus signature is also given as a JSON Schema (draft 2020-12) of the JSON form
    M(opdbus.infra.dbus_call) accepts and returns; see docs/dbus.md for the table.
  - Introspecting an activatable name that is not running (O(activatable=true)) makes the bus start that service.
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.dbus
  - opdbus.infra.attributes.INFO_MODULE
attributes:
  platform:
    support: full
    platforms: posix
options:
  service:
    description:
      - The bus names to describe, a shell-style glob matched case-sensitively against the whole name
        (C(org.freedesktop.*), C(org.freedesktop.UPower)).
      - Unique names (C(:1.42)) match only a pattern that starts with C(:).
      - A name without glob characters that is not on the bus (nor activatable when O(activatable=true)) is an error;
        a glob that matches nothing returns no services.
    type: str
    required: true
  activatable:
    description:
      - Also describe names the bus can start on demand (C(ListActivatableNames)) that are not running.
      - Introspecting such a name starts its service.
    type: bool
    default: false
  path:
    description: The object path the walk starts at.
    type: str
    default: /
  max_depth:
    description: How many levels of child nodes below O(path) to follow (0 - only O(path)).
    type: int
    default: 16
  max_objects:
    description: At most this many objects are introspected per service; RV(services.truncated) tells when a limit was hit.
    type: int
    default: 1000
  standard_interfaces:
    description:
      - Include C(org.freedesktop.DBus.Introspectable), C(org.freedesktop.DBus.Properties) and C(org.freedesktop.DBus.Peer),
        which nearly every object has.
    type: bool
    default: false
  schema:
    description: Give each argument's and property's JSON Schema.
    type: bool
    default: true
  timeout:
    description: Seconds to wait for each D-Bus call.
    type: float
    default: 30.0
requirements:
  - dbus-python (python3-dbus in the system Python is found by respawning)
seealso:
  - module: opdbus.infra.dbus_call
"""

EXAMPLES = r"""
- name: What UPower offers on the system bus
  opdbus.infra.dbus_introspect:
    service: org.freedesktop.UPower
  register: upower

- name: The methods of its main interface
  ansible.builtin.debug:
    msg: "{{ upower.services['org.freedesktop.UPower'].objects['/org/freedesktop/UPower'].interfaces['org.freedesktop.UPower'].methods.keys() }}"

- name: Every freedesktop service of the session bus, without the schemas, one level deep
  opdbus.infra.dbus_introspect:
    bus: session
    service: "org.freedesktop.*"
    max_depth: 1
    schema: false
"""

RETURN = r"""
services:
  description: One entry per bus name that matched, keyed by name.
  returned: always
  type: dict
  contains:
    running:
      description: Whether the name had an owner when listed (false - it was only activatable and was started by the walk).
      type: bool
    activatable:
      description: Whether the bus can start the name on demand.
      type: bool
    objects:
      description:
        - Object path to C({interfaces - {name - {methods, properties, signals, annotations}}}).
        - A method is C({in - [args], out - [args], annotations}); an arg C({name, signature, schema}).
        - A property is C({signature, access, schema, annotations}), access V(read), V(write) or V(readwrite).
        - A signal is C({args - [args], annotations}).
      type: dict
    truncated:
      description: Whether O(max_depth) or O(max_objects) stopped the walk before the whole tree was seen.
      type: bool
    errors:
      description:
        - Objects that could not be introspected, C({path, msg}) each.
        - With a glob, a service that cannot be introspected at O(path) at all is reported here instead of failing the task.
      type: list
      elements: dict
  sample:
    org.opdbus.Test:
      running: true
      activatable: false
      truncated: false
      errors: []
      objects:
        /org/opdbus/Test:
          interfaces:
            org.opdbus.Test:
              annotations: {}
              methods:
                Add:
                  annotations: {}
                  in:
                    - {name: a, signature: i, schema: {type: integer, minimum: -2147483648, maximum: 2147483647}}
                    - {name: b, signature: i, schema: {type: integer, minimum: -2147483648, maximum: 2147483647}}
                  out:
                    - {name: arg2, signature: i, schema: {type: integer, minimum: -2147483648, maximum: 2147483647}}
              properties: {}
              signals: {}
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusError, DBusUnavailable
from ansible_collections.opdbus.infra.plugins.module_utils.dbus_introspect import is_glob, list_names, walk
from ansible_collections.opdbus.infra.plugins.module_utils.dbus_invoke import BUS_ARGSPEC, connect, run


def describe(module):
    p = module.params
    if p["max_depth"] < 0 or p["max_objects"] < 1:
        module.fail_json(msg="invalid input: max_depth must be >= 0 and max_objects >= 1")
    with connect(module) as bus:
        names = list_names(bus, p["service"], activatable=p["activatable"])
        if not names and not is_glob(p["service"]):
            raise DBusUnavailable("%s is not on the bus%s" % (
                p["service"], "" if p["activatable"] else " (activatable names are included only with activatable=true)"))
        services = {}
        for name, state in names.items():
            try:
                objects, truncated, errors = walk(bus, name, root=p["path"], max_depth=p["max_depth"],
                                                  max_objects=p["max_objects"], with_schema=p["schema"],
                                                  standard=p["standard_interfaces"])
            except DBusError as exc:
                if not is_glob(p["service"]):
                    raise
                # One service of many that cannot be introspected (gone, denied) does not fail the rest.
                objects, truncated, errors = {}, False, [{"path": p["path"], "msg": str(exc)}]
            services[name] = dict(state, objects=objects, truncated=truncated, errors=errors)
        return services


def main():
    spec = dict(
        service=dict(type="str", required=True),
        activatable=dict(type="bool", default=False),
        path=dict(type="str", default="/"),
        max_depth=dict(type="int", default=16),
        max_objects=dict(type="int", default=1000),
        standard_interfaces=dict(type="bool", default=False),
        schema=dict(type="bool", default=True),
    )
    spec.update(BUS_ARGSPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    services = run(module, describe, module)
    module.exit_json(changed=False, services=services)


if __name__ == "__main__":
    main()
