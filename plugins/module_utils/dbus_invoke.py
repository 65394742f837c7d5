# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What dbus_introspect and dbus_call share (which bus, the one place where errors become
``fail_json``), and the reconciler of dbus_call: a method call or a property read or write,
its arguments checked against the introspected signature before anything is sent.

No Ansible import: ``module`` is only used through ``params``, ``check_mode`` and ``fail_json``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import (
    Bus, DBusError, DBusUnavailable, DBusUnknownMember, import_dbus)
from ansible_collections.opdbus.infra.plugins.module_utils.dbus_introspect import (
    PROPERTIES, IntrospectionError, find_member, introspect)
from ansible_collections.opdbus.infra.plugins.module_utils.dbus_schema import (
    ConversionError, SignatureError, convert_args, parse, parse_single, to_dbus, to_json)

DEFAULT_SYSTEM_SOCKET = "unix:path=/run/dbus/system_bus_socket"

BUS_ARGSPEC = dict(
    bus=dict(type="str", choices=["system", "session"], default="system"),
    bus_address=dict(type="str"),
    timeout=dict(type="float", default=30.0),
)


def resolve_address(bus, address=None, environ=None):
    """The address to connect to: ``address`` when given, else the environment's for that bus.

    system: E(OPDBUS_DBUS_ADDRESS) (the collection's, as the packagekit modules use it), else
    E(DBUS_SYSTEM_BUS_ADDRESS), else the standard socket. session: E(DBUS_SESSION_BUS_ADDRESS).
    """
    environ = os.environ if environ is None else environ
    if address:
        return address
    if bus == "session":
        found = environ.get("DBUS_SESSION_BUS_ADDRESS")
        if not found:
            raise DBusUnavailable("no session bus: DBUS_SESSION_BUS_ADDRESS is not set in the module's environment "
                                  "and bus_address is not given")
        return found
    return environ.get("OPDBUS_DBUS_ADDRESS") or environ.get("DBUS_SYSTEM_BUS_ADDRESS") or DEFAULT_SYSTEM_SOCKET


def connect(module):
    """A transport :class:`Bus` for the module's ``bus``/``bus_address``/``timeout``; dbus-python is
    imported first (respawning under the system Python when it is only there)."""
    dbus_module = import_dbus(module)
    p = module.params
    address = resolve_address(p["bus"], p.get("bus_address"))
    return Bus(address, timeout=p["timeout"], dbus_module=dbus_module)


def run(module, func, *args, **kwargs):
    """Call ``func``; the typed errors become one clean failure each (the D-Bus error name kept)."""
    try:
        return func(*args, **kwargs)
    except (ConversionError, SignatureError) as exc:
        module.fail_json(msg="invalid input: %s" % exc)
    except DBusError as exc:
        module.fail_json(msg=str(exc), dbus_error=exc.name)


class CallSpec:
    """What the user asked dbus_call for (validated by :meth:`check` before the bus is touched)."""

    def __init__(self, service, path, interface, method=None, prop=None, args=None, value=None,
                 set_value=False, signature=None, read_only=False):
        self.service = service
        self.path = path
        self.interface = interface
        self.method = method
        self.prop = prop
        self.args = list(args or [])
        self.value = value
        self.set_value = set_value
        self.signature = signature
        self.read_only = read_only

    @property
    def action(self):
        if self.method:
            return "call"
        return "set" if self.set_value else "get"

    def check(self):
        if bool(self.method) == bool(self.prop):
            raise ConversionError("method/property", "give exactly one of method and property")
        if self.args and not self.method:
            raise ConversionError("args", "args are for a method call; a property takes value")
        if self.signature is not None:
            if self.method:
                parse(self.signature)
            else:
                parse_single(self.signature)


def _member(bus, spec):
    """The introspected method or property, or None when ``signature`` overrides introspection."""
    if spec.signature is not None:
        return None
    try:
        data = introspect(bus, spec.service, spec.path, with_schema=False)
    except DBusUnknownMember as exc:
        raise IntrospectionError("%s cannot be introspected at %s (%s); give signature to call it without "
                                 "introspection" % (spec.service, spec.path, exc), name=exc.name)
    return find_member(data, spec.service, spec.path, spec.interface,
                       "method" if spec.method else "property", spec.method or spec.prop)


def _reply_list(reply):
    """dbus-python's reply: None (no value), a plain tuple (several) or one value."""
    if reply is None:
        return []
    if type(reply) is tuple:  # pylint: disable=unidiomatic-typecheck
        return list(reply)
    return [reply]


def execute(bus, spec, dbus_module, check_mode=False):
    """Plan and apply one dbus_call request; returns the module's result (without ``msg``)."""
    spec.check()
    member = _member(bus, spec)
    if spec.method:
        return _call(bus, spec, member, dbus_module, check_mode)
    return _property(bus, spec, member, dbus_module, check_mode)


def _call(bus, spec, member, dbus_module, check_mode):
    signature = spec.signature if member is None else "".join(a["signature"] for a in member["in"])
    typed = convert_args(signature, spec.args, dbus_module)
    result = {"action": "call", "signature": signature, "changed": not spec.read_only}
    if check_mode and not spec.read_only:
        result["skipped_call"] = True
        result["msg"] = ("check mode: %s.%s was not called (not marked read_only; it may change something)"
                         % (spec.interface, spec.method))
        return result
    reply = bus.call(spec.service, spec.path, spec.interface, spec.method, *typed, signature=signature, raw=True)
    result["reply"] = [to_json(v) for v in _reply_list(reply)]
    if member is not None:
        result["out_signature"] = "".join(a["signature"] for a in member["out"])
    return result


def _property(bus, spec, member, dbus_module, check_mode):
    signature = spec.signature if member is None else member["signature"]
    access = "readwrite" if member is None else member["access"]
    where = "property %s.%s at %s of %s" % (spec.interface, spec.prop, spec.path, spec.service)
    result = {"action": spec.action, "signature": signature, "access": access}
    if spec.action == "get":
        if access == "write":
            raise DBusError("%s is write-only: it cannot be read" % where)
        result["changed"] = False
        result["value"] = to_json(bus.call(spec.service, spec.path, PROPERTIES, "Get", spec.interface, spec.prop,
                                           signature="ss", raw=True))
        return result
    if access == "read":
        raise DBusError("%s is read-only (access=read): it cannot be set" % where)
    typed = to_dbus(signature, spec.value, dbus_module, where="value")
    wanted = to_json(typed)
    before = None
    if access != "write":
        before = to_json(bus.call(spec.service, spec.path, PROPERTIES, "Get", spec.interface, spec.prop,
                                  signature="ss", raw=True))
        if before == wanted:
            result.update(changed=False, value=before)
            return result
    result.update(changed=True, value=wanted, diff={"before": {spec.prop: before}, "after": {spec.prop: wanted}})
    if check_mode:
        return result
    bus.call(spec.service, spec.path, PROPERTIES, "Set", spec.interface, spec.prop, typed, signature="ssv")
    if access != "write":
        result["value"] = to_json(bus.call(spec.service, spec.path, PROPERTIES, "Get", spec.interface, spec.prop,
                                           signature="ss", raw=True))
    return result
