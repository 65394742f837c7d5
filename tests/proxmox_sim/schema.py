# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Parameter verification as the PVE API server does it, driven by the PVE apidoc schema.

The checks and their messages follow PVE::JSONSchema: the schema's own keys (type, enum, minimum, maximum,
minLength, maxLength, pattern, optional, requires, additionalProperties) are applied generically, property
strings (a ``format`` that is itself a schema, such as ``net[n]`` or ``rootfs``) are parsed and checked key by key,
and only the named formats (``pve-node``, ``mac-addr``, ...) the apidoc merely names are implemented here.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import re

SCHEMA_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "pve-api-9.1.3-lxc.json")

# How many of each indexed property PVE defines (the apidoc folds net0..net31 into ``net[n]`` and does not say).
# pve-container: MAX_LXC_NETWORKS = 32, MAX_MOUNT_POINTS = 256 (the resize ``disk`` enum lists mp0..mp255),
# MAX_UNUSED_DISKS = MAX_MOUNT_POINTS, MAX_DEVICES = 256.
INDEXED = {"net": 32, "mp": 256, "unused": 256, "dev": 256}

NOT_DEFINED = "property is not defined in schema and the schema does not allow additional properties"
MISSING = "property is missing and it is not optional"

_INDEXED_NAME = re.compile(r"\A([a-z][a-z_]*?)(0|[1-9][0-9]*)\Z")
_INTEGER = re.compile(r"\A[+-]?\d+\Z")
_NUMBER = re.compile(r"\A[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?\Z")
_TRUE = ("1", "on", "yes", "true")
_FALSE = ("0", "off", "no", "false")


class FormatError(Exception):
    """A value does not satisfy a named format or a property string schema (the text PVE dies with)."""


def perl_regex(pattern):
    """Compile an apidoc pattern the way PVE applies it: ``m/^(?:pattern)$/``; ``(?^:`` is Perl for ``(?:``."""
    return re.compile(r"\A(?:%s)\Z" % pattern.replace("(?^:", "(?:"))


def split_list(value):
    """PVE::Tools::split_list."""
    return [item for item in re.split(r"[\s,;\0]+", value) if item]


def parse_boolean(value):
    """PVE::JSONSchema::parse_boolean: 1/on/yes/true and 0/off/no/false, or None."""
    low = str(value).lower()
    if low in _TRUE:
        return 1
    if low in _FALSE:
        return 0
    return None


def _regex_format(regex, message, flags=0):
    compiled = re.compile(regex, flags)

    def check(value):
        if not compiled.match(value):
            raise FormatError(message % {"value": value})

    return check


def _ip_format(version):
    def check(value):
        try:
            ipaddress.ip_address(value)
            ok = ipaddress.ip_address(value).version == version
        except ValueError:
            ok = False
        if not ok:
            raise FormatError("value does not look like a valid IPv%d address" % version)

    return check


def _ip_config(version, keywords):
    def check(value):
        if value in keywords:
            return
        try:
            ok = "/" in value and ipaddress.ip_interface(value).version == version
        except ValueError:
            ok = False
        if not ok:
            raise FormatError("value does not look like a valid ipv%d network configuration" % version)

    return check


def _mac(value):
    if not re.match(r"\A[a-f0-9][02468ace](?::[a-f0-9]{2}){5}\Z", value, re.I):
        raise FormatError("value does not look like a valid unicast MAC address")


def _mp_string(value):
    if re.search(r"/\.\.?/", value) or re.search(r"/\.\.?\Z", value) or value.startswith("../"):
        raise FormatError("%s contains illegal character sequences" % value)


def _dev_string(value):
    if not value.startswith("/dev/"):
        raise FormatError("%s is not a valid device path" % value)
    _mp_string(value)


def _ip_with_ll_iface(value):
    address, iface = (value.split("%", 1) + [None])[:2]
    try:
        ipaddress.ip_address(address)
    except ValueError:
        raise FormatError("value does not look like a valid IP address")
    if iface is not None and not re.match(r"\A[\w.-]+\Z", iface):
        raise FormatError("value does not look like a valid IP address")


_STARTUP = re.compile(r"\A(?:(?:order=\d+|up=\d+|down=\d+|\d+)(?:,|\Z))+\Z")
_DNS_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?"

# Named formats of the served schema the apidoc does not describe (PVE registers them with register_format).
FORMATS = {
    "pve-node": _regex_format(r"\A[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\Z", "value does not look like a valid node name"),
    "pve-vmid": _regex_format(r"\A[1-9][0-9]*\Z", "value does not look like a valid VM ID"),
    "pve-configid": _regex_format(r"\A[a-z][a-z0-9_-]+\Z", "invalid configuration ID '%(value)s'", re.I),
    "pve-storage-id": _regex_format(r"\A[a-z][a-z0-9\-_.]*[a-z0-9]\Z", "storage ID '%(value)s' contains illegal characters", re.I),
    "pve-volume-id": _regex_format(r"\A[a-z][a-z0-9\-_.]*[a-z0-9]:.+\Z", "unable to parse volume ID '%(value)s'", re.I),
    "pve-poolid": _regex_format(r"\A[A-Za-z0-9_\-]+\Z", "invalid pool ID '%(value)s'"),
    "pve-tag": _regex_format(r"\A[a-z0-9_][a-z0-9_\-+.]*\Z", "invalid characters in tag '%(value)s'", re.I),
    "pve-ct-timezone": _regex_format(r"\A[A-Za-z0-9_/+\-]+\Z", "invalid time zone '%(value)s'"),
    "pve-storage-content": _regex_format(r"\A(?:images|rootdir|vztmpl|iso|backup|snippets|import|none)\Z", "invalid content type '%(value)s'"),
    "pve-startup-order": _regex_format(_STARTUP.pattern, "value does not look like a valid startup order"),
    "disk-size": _regex_format(r"\A\d+(?:\.\d+)?[KMGT]?\Z", "unable to parse size '%(value)s'"),
    "dns-name": _regex_format(r"\A(?:%s\.)*%s\Z" % (_DNS_LABEL, _DNS_LABEL), "value does not look like a valid DNS name"),
    "ipv4": _ip_format(4),
    "ipv6": _ip_format(6),
    "mac-addr": _mac,
    "pve-ipv4-config": _ip_config(4, ("dhcp", "manual")),
    "pve-ipv6-config": _ip_config(6, ("auto", "dhcp", "manual")),
    "pve-lxc-mp-string": _mp_string,
    "pve-lxc-dev-string": _dev_string,
    "lxc-ip-with-ll-iface": _ip_with_ll_iface,
}

# Named formats in the served schema that are accepted unchecked (not used by the LXC paths the backend calls).
UNCHECKED_FORMATS = ("pve-realm", "pve-priv-list", "pve-task-status-type-list")


def check_named_format(name, value):
    """PVE::JSONSchema::check_format for a format given by name; ``-list`` / ``-alist`` check each element."""
    if name in FORMATS:
        FORMATS[name](value)
        return
    match = re.match(r"\A(.*)-a?list\Z", name)
    if match and match.group(1) in FORMATS:
        for item in split_list(value):
            FORMATS[match.group(1)](item)
        return
    if name not in UNCHECKED_FORMATS:
        raise FormatError("unable to find format '%s'" % name)


def lookup(properties, name):
    """The schema of parameter ``name``: a plain property, or an indexed one (``net3`` -> ``net[n]``) in range."""
    if name in properties and not name.endswith("[n]"):
        return properties[name]
    match = _INDEXED_NAME.match(name)
    if match:
        base, index = match.group(1), int(match.group(2))
        if base + "[n]" in properties and index < INDEXED.get(base, 0):
            return properties[base + "[n]"]
    return None


def parse_property_string(fmt, value, path):
    """PVE::JSONSchema::parse_property_string: returns the typed dict, raises FormatError as PVE words it."""
    raw = {}
    default_key = None
    for part in value.split(","):
        if not part.strip():
            continue
        match = re.match(r"\A([^=]+)=(.+)\Z", part, re.S)
        if match:
            key, val = match.group(1), match.group(2)
            if key in raw:
                raise FormatError("duplicate key in comma-separated list property: %s" % key)
            if fmt.get(key, {}).get("type") == "boolean":
                parsed = parse_boolean(val)
                val = val if parsed is None else str(parsed)
            raw[key] = val
        elif "=" not in part:
            if default_key:
                raise FormatError("duplicate key in comma-separated list property: %s" % default_key)
            default_key = next((key for key in sorted(fmt) if fmt[key].get("default_key")), None)
            if default_key is None:
                raise FormatError("value without key, but schema does not define a default key")
            if default_key in raw:
                raise FormatError("duplicate key in comma-separated list property: %s" % default_key)
            raw[default_key] = part
        else:
            raise FormatError("missing key in comma-separated list property")
    errors = {}
    typed = check_object(fmt, raw, errors, prefix=path + ".", additional=False)
    if errors:
        raise FormatError("format error\n" + "".join("%s: %s\n" % (key, errors[key]) for key in sorted(errors)))
    return typed


def print_property_string(fmt, data):
    """PVE::JSONSchema::print_property_string: the default key's bare value, then required keys, then optional ones."""
    default_key = next((key for key in sorted(fmt) if fmt[key].get("default_key")), None)
    parts = []
    if default_key is not None and default_key in data:
        parts.append(_text(data[default_key]))
    required = sorted(key for key in data if key != default_key and not fmt.get(key, {}).get("optional"))
    optional = sorted(key for key in data if key != default_key and fmt.get(key, {}).get("optional"))
    for key in required + optional:
        parts.append("%s=%s" % (key, _text(data[key])))
    return ",".join(parts)


def _text(value):
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _number(value):
    number = float(value)
    return int(number) if number.is_integer() and "." not in str(value) and "e" not in str(value).lower() else number


def check_value(schema, value, path, errors):
    """PVE::JSONSchema::check_prop for one value (a string as sent in a form or query): returns the typed value."""
    kind = schema.get("type", "string")
    text = _text(value)
    if kind == "integer":
        if not _INTEGER.match(text):
            errors[path] = "type check ('integer') failed - got '%s'" % text
            return None
        typed = int(text)
    elif kind == "number":
        if not _NUMBER.match(text):
            errors[path] = "type check ('number') failed - got '%s'" % text
            return None
        typed = _number(text)
    elif kind == "boolean":
        if text not in ("0", "1"):
            errors[path] = "type check ('boolean') failed - got '%s'" % text
            return None
        typed = int(text)
    else:
        typed = text
    if "enum" in schema and text not in [str(item) for item in schema["enum"]]:
        errors[path] = "value '%s' does not have a value in the enumeration '%s'" % (text, ", ".join(str(i) for i in schema["enum"]))
        return None
    if kind in ("integer", "number"):
        if "minimum" in schema and typed < float(schema["minimum"]):
            errors[path] = "value must have a minimum value of %s" % schema["minimum"]
            return None
        if "maximum" in schema and typed > float(schema["maximum"]):
            errors[path] = "value must have a maximum value of %s" % schema["maximum"]
            return None
    if kind == "string":
        if "minLength" in schema and len(text) < int(schema["minLength"]):
            errors[path] = "value must be at least %s characters long" % schema["minLength"]
            return None
        if "maxLength" in schema and len(text) > int(schema["maxLength"]):
            errors[path] = "value may only be %s characters long" % schema["maxLength"]
            return None
        if "pattern" in schema and not perl_regex(schema["pattern"]).match(text):
            errors[path] = "value does not match the regex pattern"
            return None
    fmt = schema.get("format")
    if fmt is not None:
        try:
            if isinstance(fmt, dict):
                return parse_property_string(fmt, text, path)
            check_named_format(fmt, text)
        except FormatError as exc:
            errors[path] = "invalid format - %s" % exc
            return None
    return typed


def check_object(properties, values, errors, prefix="", additional=False):
    """PVE::JSONSchema::check_object: unknown, missing and ``requires`` properties, then each value."""
    typed = {}
    for name in sorted(values):
        schema = lookup(properties, name)
        if schema is None:
            if not additional:
                errors[prefix + name] = NOT_DEFINED
            continue
        result = check_value(schema, values[name], prefix + name, errors)
        if result is not None:
            typed[name] = result
        requires = schema.get("requires")
        if requires and requires not in values:
            errors[prefix + requires] = "missing property - '%s' requires this property" % name
    for name, schema in properties.items():
        if not name.endswith("[n]") and not schema.get("optional") and name not in values:
            errors[prefix + name] = MISSING
    return typed


class ApiSchema:
    """The served subset of the PVE API schema: route matching and per-method parameter verification."""

    def __init__(self, path=SCHEMA_PATH):
        with open(path) as handle:
            self.paths = json.load(handle)
        self._routes = []
        for template in sorted(self.paths, key=lambda item: (-item.count("/"), item)):
            regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
            self._routes.append((re.compile(r"\A%s\Z" % regex), template))

    def match(self, path):
        """(template, path parameters) for a path below /api2/json, or (None, None)."""
        for regex, template in self._routes:
            match = regex.match(path)
            if match:
                return template, match.groupdict()
        return None, None

    def method(self, template, method):
        """The apidoc entry of a method on a path template, or None."""
        return self.paths.get(template, {}).get(method)

    def verify(self, template, method, params):
        """Check all parameters (path ones included); returns (typed parameters, errors by parameter)."""
        entry = self.method(template, method)
        definition = entry.get("parameters", {})
        errors = {}
        typed = check_object(definition.get("properties", {}), params, errors, additional=bool(definition.get("additionalProperties", 1)))
        return typed, errors

    def properties(self, template, method):
        """The parameter properties of a method."""
        return self.method(template, method).get("parameters", {}).get("properties", {})
