# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""D-Bus introspection: names on a bus, the object tree of a service, its interfaces.

:func:`parse_xml` reads one ``org.freedesktop.DBus.Introspectable.Introspect`` reply (the
introspection XML) into plain data, with every argument's JSON Schema (:mod:`dbus_schema`).
:func:`walk` follows the child ``<node>`` elements breadth first from a path, within a depth
and an object limit. :func:`list_names` matches bus names with a glob. Nothing here knows
Ansible; errors are the transport's typed ones, plus :class:`IntrospectionError`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import fnmatch
from xml.etree import ElementTree

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import DBusError, DBusUnknownMember
from ansible_collections.opdbus.infra.plugins.module_utils.dbus_schema import SignatureError, parse_single, schema

INTROSPECTABLE = "org.freedesktop.DBus.Introspectable"
PROPERTIES = "org.freedesktop.DBus.Properties"
STANDARD_INTERFACES = frozenset((INTROSPECTABLE, PROPERTIES, "org.freedesktop.DBus.Peer"))
BUS_NAME = "org.freedesktop.DBus"
BUS_PATH = "/org/freedesktop/DBus"
GLOB_CHARS = frozenset("*?[")


class IntrospectionError(DBusError):
    """Introspection data that cannot be read, or a member that is not in it."""


def is_glob(pattern):
    return any(c in GLOB_CHARS for c in pattern)


def list_names(bus, pattern, activatable=False):
    """Bus names matching the glob ``pattern``: ``{name: {"running": bool, "activatable": bool}}``.

    Unique names (``:1.42``) match only a pattern that starts with ``:``. Activatable names that
    are not running are included only with ``activatable=True``.
    """
    running = set(bus.call(BUS_NAME, BUS_PATH, BUS_NAME, "ListNames"))
    can_start = set(bus.call(BUS_NAME, BUS_PATH, BUS_NAME, "ListActivatableNames"))
    names = running | can_start if activatable else running
    out = {}
    for name in sorted(names):
        if name.startswith(":") and not pattern.startswith(":"):
            continue
        if fnmatch.fnmatchcase(name, pattern):
            out[name] = {"running": name in running, "activatable": name in can_start}
    return out


def _annotations(element):
    return dict((a.get("name"), a.get("value")) for a in element.findall("annotation") if a.get("name"))


def _arg(element, index, with_schema, default_direction):
    signature = element.get("type") or ""
    out = {"name": element.get("name") or "arg%d" % index, "signature": signature}
    direction = element.get("direction") or default_direction
    try:
        dbus_type = parse_single(signature)
    except SignatureError as exc:
        out["error"] = str(exc)
        return direction, out
    if with_schema:
        out["schema"] = schema(dbus_type)
    return direction, out


def parse_xml(xml_text, with_schema=True):
    """One Introspect reply as ``{"interfaces": {...}, "children": [relative names]}``.

    Each interface: ``{"methods": {name: {"in": [args], "out": [args], "annotations": {}}},
    "properties": {name: {"signature", "access", "schema"}}, "signals": {name: {"args": [...]}},
    "annotations": {}}``; each arg ``{"name", "signature", "schema"}`` (``error`` instead of
    ``schema`` when the service declares a signature that is not valid).
    """
    try:
        root = ElementTree.fromstring(xml_text.encode("utf-8") if isinstance(xml_text, str) else xml_text)
    except ElementTree.ParseError as exc:
        raise IntrospectionError("introspection data is not valid XML: %s" % exc)
    if root.tag != "node":
        raise IntrospectionError("introspection data starts with <%s>, expected <node>" % root.tag)
    interfaces = {}
    for iface in root.findall("interface"):
        methods, properties, signals = {}, {}, {}
        for method in iface.findall("method"):
            entry = {"in": [], "out": [], "annotations": _annotations(method)}
            for index, arg in enumerate(method.findall("arg")):
                direction, data = _arg(arg, index, with_schema, "in")
                entry["out" if direction == "out" else "in"].append(data)
            methods[method.get("name")] = entry
        for prop in iface.findall("property"):
            direction, data = _arg(prop, 0, with_schema, "")
            data.pop("name")
            data["access"] = prop.get("access") or "read"
            data["annotations"] = _annotations(prop)
            properties[prop.get("name")] = data
        for signal in iface.findall("signal"):
            args = [_arg(arg, index, with_schema, "out")[1] for index, arg in enumerate(signal.findall("arg"))]
            signals[signal.get("name")] = {"args": args, "annotations": _annotations(signal)}
        interfaces[iface.get("name")] = {"methods": methods, "properties": properties, "signals": signals,
                                         "annotations": _annotations(iface)}
    children = [n.get("name") for n in root.findall("node") if n.get("name")]
    return {"interfaces": interfaces, "children": children}


def introspect(bus, service, path, with_schema=True):
    xml_text = bus.call(service, path, INTROSPECTABLE, "Introspect")
    return parse_xml(xml_text, with_schema)


def child_path(path, name):
    if name.startswith("/"):  # absolute child names are allowed by old services
        return name
    return ("" if path == "/" else path) + "/" + name


def walk(bus, service, root="/", max_depth=16, max_objects=1000, with_schema=True, standard=True):
    """The objects of ``service`` under ``root``: ``(objects, truncated, errors)``.

    ``objects`` maps each path to its interfaces (paths with no interface of their own are
    only passed through). ``truncated`` tells whether a limit stopped the walk. ``errors``
    lists the objects that could not be introspected (path and message) below the root; a
    failure at the root itself is raised.
    """
    objects = {}
    errors = []
    truncated = False
    queue = collections.deque([(root, 0)])
    seen = set()
    visited = 0
    while queue:
        path, depth = queue.popleft()
        if path in seen:
            continue
        seen.add(path)
        if visited >= max_objects:
            truncated = True
            break
        visited += 1
        try:
            data = introspect(bus, service, path, with_schema)
        except (DBusError, IntrospectionError) as exc:
            if path == root:
                raise
            errors.append({"path": path, "msg": str(exc)})
            continue
        interfaces = data["interfaces"]
        if not standard:
            interfaces = dict((k, v) for k, v in interfaces.items() if k not in STANDARD_INTERFACES)
        if interfaces or path == root:
            objects[path] = {"interfaces": interfaces}
        for name in data["children"]:
            if depth + 1 > max_depth:
                truncated = True
                break
            queue.append((child_path(path, name), depth + 1))
    return objects, truncated, errors


def find_member(data, service, path, interface, kind, name):
    """The method or property ``name`` of ``interface`` in one :func:`parse_xml` result.

    Raises :class:`DBusUnknownMember` naming what the object does offer.
    """
    where = "%s at %s of %s" % (interface, path, service)
    interfaces = data["interfaces"]
    if interface not in interfaces:
        raise DBusUnknownMember("no interface %s at %s of %s (it has: %s)" % (
            interface, path, service, ", ".join(sorted(interfaces)) or "no interfaces"),
            name="org.freedesktop.DBus.Error.UnknownInterface")
    members = interfaces[interface]["methods" if kind == "method" else "properties"]
    if name not in members:
        raise DBusUnknownMember("no %s %s on %s (%ss: %s)" % (
            kind, name, where, kind, ", ".join(sorted(members)) or "none"),
            name="org.freedesktop.DBus.Error.Unknown%s" % ("Method" if kind == "method" else "Property"))
    return members[name]
