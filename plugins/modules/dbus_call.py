#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: dbus_call
short_description: Call a D-Bus method, or read or set a D-Bus property, with arguments typed by introspection
version_added: 0.1.0
description:
  - Calls O(method) of O(interface) on the object O(path) of O(service), or reads O(property), or sets it to O(value).
  - The object is introspected first. The method's input arguments (or the property's type) give the D-Bus signature
    that O(args) (or O(value)) are converted with. Every value is checked before anything is sent - the number of
    arguments, each value's type and each integer's range for its width - and a mismatch fails the task naming the
    argument (C(args[1]['key'])). O(signature) replaces introspection for objects that do not implement it.
  - "Conversion: integers (y n q i u x t) from integers or decimal strings, range-checked; C(d) from numbers;
    C(b) from booleans (or the strings true/false); C(s), C(o) (object path, checked) and C(g) (signature, checked) from
    strings; C(ay) from a list of integers 0..255 or a base64 string; arrays from lists; dicts C(a{kv}) from
    dicts (integer keys may be given as decimal strings); structs from lists of exactly their length; file
    descriptors C(h) cannot be passed."
  - "Variants C(v): a dict with exactly the keys C(signature) and C(value) is sent as a variant of that type
    (C({signature: u, value: 3})); any other value gets a type from its own: boolean C(b), integer C(i) (C(x), C(t)
    when it does not fit), float C(d), string C(s), dict C(a{sv}), a list of only strings/booleans/floats/integers
    C(as)/C(ab)/C(ad)/C(ai) (C(ax) when needed), any other list C(av)."
  - The reply is returned as JSON (RV(reply)) - the form docs/dbus.md describes, the one M(opdbus.infra.dbus_introspect)
    gives the JSON Schema of.
  - "Check mode: property reads, and methods marked O(read_only=true), run; any other method call is not made and
    reports C(changed=true) (whether it would change something cannot be known). A property set reads the current value
    first and sets it only when it differs (C(changed=false) otherwise); in check mode it only reports."
author:
  - opdbus.infra maintainers (@opdbus)
extends_documentation_fragment:
  - opdbus.infra.attributes
  - opdbus.infra.dbus
attributes:
  check_mode:
    support: full
  diff_mode:
    support: partial
    details: Property sets report the value before and after; method calls have no diff.
  platform:
    support: full
    platforms: posix
options:
  service:
    description: The bus name of the service (C(org.freedesktop.UPower)); an activatable service is started by the call.
    type: str
    required: true
  path:
    description: The object path (C(/org/freedesktop/UPower)).
    type: str
    required: true
  interface:
    description: The interface of the method or property.
    type: str
    required: true
  method:
    description: The method to call. Exactly one of O(method) and O(property).
    type: str
  args:
    description: The method's input arguments, in order, converted by its signature (see above).
    type: list
    elements: raw
    default: []
  property:
    description: The property to read, or to set when O(value) is given.
    type: str
  value:
    description: The value to set O(property) to, converted by the property's type.
    type: raw
  signature:
    description:
      - The D-Bus signature of the method's input arguments (or the property's single type), instead of introspecting
        the object. Needed for objects without C(org.freedesktop.DBus.Introspectable).
    type: str
  read_only:
    description:
      - The method changes nothing (a query). It then runs in check mode too and reports C(changed=false).
      - Without it a method call always reports C(changed=true).
    type: bool
    default: false
  timeout:
    description: Seconds to wait for each D-Bus call.
    type: float
    default: 30.0
requirements:
  - dbus-python (python3-dbus in the system Python is found by respawning)
seealso:
  - module: opdbus.infra.dbus_introspect
"""

EXAMPLES = r"""
- name: Ask logind for the sessions (a query - runs in check mode too)
  opdbus.infra.dbus_call:
    service: org.freedesktop.login1
    path: /org/freedesktop/login1
    interface: org.freedesktop.login1.Manager
    method: ListSessions
    read_only: true
  register: sessions

- name: Set the timezone (s and b arguments, converted by the introspected signature)
  opdbus.infra.dbus_call:
    service: org.freedesktop.timedate1
    path: /org/freedesktop/timedate1
    interface: org.freedesktop.timedate1
    method: SetTimezone
    args: ["Europe/Berlin", false]

- name: Read a property
  opdbus.infra.dbus_call:
    service: org.freedesktop.UPower
    path: /org/freedesktop/UPower
    interface: org.freedesktop.UPower
    property: DaemonVersion
  register: version

- name: Set a property only when it differs (idempotent; diff before/after)
  opdbus.infra.dbus_call:
    service: org.freedesktop.NetworkManager
    path: /org/freedesktop/NetworkManager
    interface: org.freedesktop.NetworkManager
    property: WirelessEnabled
    value: false

- name: A variant with an explicit type inside an a{sv} argument
  opdbus.infra.dbus_call:
    bus: session
    service: org.example.Service
    path: /org/example/Object
    interface: org.example.Iface
    method: Configure
    args:
      - {timeout: {signature: u, value: 30}, name: "web"}
"""

RETURN = r"""
action:
  description: V(call), V(get) or V(set).
  returned: always
  type: str
signature:
  description: The signature the arguments (or the value) were converted with.
  returned: always
  type: str
out_signature:
  description: The method's output signature (when introspected).
  returned: when a method was called with introspection
  type: str
reply:
  description: The method's return values as JSON, always a list (empty when it returns nothing).
  returned: when a method was called
  type: list
  elements: raw
  sample: [42]
value:
  description: The property's value (after a set, read back; in check mode the value it would get).
  returned: for property reads and sets
  type: raw
access:
  description: The property's access, V(read), V(write) or V(readwrite) (V(readwrite) when not introspected).
  returned: for property reads and sets
  type: str
skipped_call:
  description: True when check mode kept a method call from being made.
  returned: when check mode skipped a method call
  type: bool
dbus_error:
  description: The D-Bus error name of a failure, when there is one.
  returned: on failure
  type: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.opdbus.infra.plugins.module_utils.dbus_invoke import BUS_ARGSPEC, CallSpec, connect, execute, run


def work(module):
    p = module.params
    spec = CallSpec(p["service"], p["path"], p["interface"], method=p["method"], prop=p["property"], args=p["args"],
                    value=p["value"], set_value=p["value"] is not None, signature=p["signature"],
                    read_only=p["read_only"])
    spec.check()  # before connecting: exactly one of method and property, no args for a property
    with connect(module) as bus:
        return execute(bus, spec, bus.dbus, check_mode=module.check_mode)


def main():
    spec = dict(
        service=dict(type="str", required=True),
        path=dict(type="str", required=True),
        interface=dict(type="str", required=True),
        method=dict(type="str"),
        args=dict(type="list", elements="raw", default=[]),
        property=dict(type="str"),
        value=dict(type="raw"),
        signature=dict(type="str"),
        read_only=dict(type="bool", default=False),
    )
    spec.update(BUS_ARGSPEC)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True,
                           mutually_exclusive=[("method", "property"), ("method", "value")],
                           required_one_of=[("method", "property")])
    result = run(module, work, module)
    diff = result.pop("diff", None)
    if diff is not None and module._diff:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
