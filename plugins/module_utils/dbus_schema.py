# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""D-Bus type signatures: a parser, their JSON Schema, and JSON-ish values converted both ways.

:func:`parse` turns a signature (``"a{sv}(iu)"``) into a list of :class:`DBusType` trees, one per
complete type, and rejects what the D-Bus specification rejects, with a message that says where
and why (incomplete types, a dict key that is not a basic type, ``{...}`` outside an array,
empty structs, nesting deeper than 32 arrays, 32 structs or 32 dict entries, more than 255 bytes).

:func:`schema` gives the JSON Schema (draft 2020-12) of the JSON form of a value of that type:
the form :func:`to_json` produces from a reply and :func:`to_dbus` accepts (see docs/dbus.md).

:func:`to_dbus` checks a JSON-ish value (what a playbook gives: str, int, float, bool, list,
dict) against a type and builds dbus-python's typed value; it raises :class:`ConversionError`
naming the argument (``args[1]['key'][0]``) before anything is sent. dbus-python is passed in
(``dbus_module``), so this file imports neither dbus nor Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import re

MAX_SIGNATURE_LENGTH = 255
MAX_DEPTH = 32  # per kind of container: arrays, structs, dict entries (as libdbus counts)

# code: (name, minimum, maximum) for the integer types.
INTEGERS = {
    "y": ("byte", 0, 2 ** 8 - 1),
    "n": ("int16", -2 ** 15, 2 ** 15 - 1),
    "q": ("uint16", 0, 2 ** 16 - 1),
    "i": ("int32", -2 ** 31, 2 ** 31 - 1),
    "u": ("uint32", 0, 2 ** 32 - 1),
    "x": ("int64", -2 ** 63, 2 ** 63 - 1),
    "t": ("uint64", 0, 2 ** 64 - 1),
    "h": ("unix_fd", 0, 2 ** 32 - 1),
}
NAMES = dict((code, spec[0]) for code, spec in INTEGERS.items())
NAMES.update({"b": "boolean", "d": "double", "s": "string", "o": "object_path", "g": "signature",
              "v": "variant", "a": "array", "(": "struct", "{": "dict_entry"})
BASIC = frozenset("ybnqiuxtdhsog")
SINGLE = frozenset("ybnqiuxtdhsogbv")

OBJECT_PATH_PATTERN = r"^/$|^(/[A-Za-z0-9_]+)+$"
SIGNATURE_PATTERN = r"^[ybnqiuxtdhsogva(){}]*$"
_OBJECT_PATH_RE = re.compile(OBJECT_PATH_PATTERN)
_SIGNED_KEY = r"^-?[0-9]+$"
_UNSIGNED_KEY = r"^[0-9]+$"
_DOUBLE_KEY = r"^-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?$"
_INT_TEXT = re.compile(r"^\s*[-+]?[0-9]+\s*$")


class SignatureError(ValueError):
    """A signature that the D-Bus specification does not allow."""


class ConversionError(ValueError):
    """A value that does not fit the type it is for; ``where`` names it (``args[0]['k']``)."""

    def __init__(self, where, msg):
        super(ConversionError, self).__init__("%s: %s" % (where, msg))
        self.where = where


class DBusType:
    """One complete type: ``code`` is its first character; ``children`` the element (``a``),
    the fields (``(``) or key and value (``{``)."""

    __slots__ = ("code", "children")

    def __init__(self, code, children=()):
        self.code = code
        self.children = tuple(children)

    @property
    def signature(self):
        if self.code == "a":
            return "a" + self.children[0].signature
        if self.code == "(":
            return "(%s)" % "".join(c.signature for c in self.children)
        if self.code == "{":
            return "{%s}" % "".join(c.signature for c in self.children)
        return self.code

    @property
    def name(self):
        if self.code == "a" and self.children[0].code == "{":
            return "dict"
        return NAMES[self.code]

    def __eq__(self, other):
        return isinstance(other, DBusType) and other.signature == self.signature

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(self.signature)

    def __repr__(self):
        return "DBusType(%r)" % self.signature


def parse(signature):
    """The complete types of ``signature`` (a str), in order; :class:`SignatureError` if invalid."""
    if not isinstance(signature, str):
        raise SignatureError("a signature is a string, not %s" % type(signature).__name__)
    if len(signature.encode("utf-8")) > MAX_SIGNATURE_LENGTH:
        raise SignatureError("signature %r is longer than %d bytes" % (_short(signature), MAX_SIGNATURE_LENGTH))
    parser = _Parser(signature)
    types = []
    while parser.pos < len(signature):
        types.append(parser.complete(0, 0, 0))
    return types


def parse_single(signature):
    """Exactly one complete type (a property's type, a variant's)."""
    types = parse(signature)
    if len(types) != 1:
        raise SignatureError("signature %r holds %d complete types, expected exactly one" % (signature, len(types)))
    return types[0]


def is_valid(signature):
    try:
        parse(signature)
    except SignatureError:
        return False
    return True


def _short(text, limit=40):
    return text if len(text) <= limit else text[:limit] + "..."


class _Parser:
    def __init__(self, text):
        self.text = text
        self.pos = 0

    def fail(self, msg, pos=None):
        pos = self.pos if pos is None else pos
        raise SignatureError("invalid signature %r at position %d: %s" % (_short(self.text), pos, msg))

    def complete(self, arrays, structs, entries):
        if self.pos >= len(self.text):
            self.fail("a complete type is missing at the end")
        start = self.pos
        code = self.text[self.pos]
        self.pos += 1
        if code in SINGLE:
            return DBusType(code)
        if code == "a":
            if arrays + 1 > MAX_DEPTH:
                self.fail("more than %d nested arrays" % MAX_DEPTH, start)
            if self.pos >= len(self.text):
                self.fail("'a' (array) needs an element type after it", start)
            if self.text[self.pos] == "{":
                return DBusType("a", [self.dict_entry(arrays + 1, structs, entries)])
            return DBusType("a", [self.complete(arrays + 1, structs, entries)])
        if code == "(":
            if structs + 1 > MAX_DEPTH:
                self.fail("more than %d nested structs" % MAX_DEPTH, start)
            fields = []
            while True:
                if self.pos >= len(self.text):
                    self.fail("struct opened at position %d is not closed" % start)
                if self.text[self.pos] == ")":
                    self.pos += 1
                    break
                fields.append(self.complete(arrays, structs + 1, entries))
            if not fields:
                self.fail("a struct needs at least one field", start)
            return DBusType("(", fields)
        if code == ")":
            self.fail("')' without a matching '('", start)
        if code == "{":
            self.fail("a dict entry '{...}' is allowed only as the element of an array ('a{...}')", start)
        if code == "}":
            self.fail("'}' without a matching '{'", start)
        if code in "rem*?@&^":
            self.fail("%r is reserved and not allowed in a signature" % code, start)
        self.fail("%r is not a D-Bus type code" % code, start)

    def dict_entry(self, arrays, structs, entries):
        start = self.pos
        self.pos += 1  # the "{"
        if entries + 1 > MAX_DEPTH:
            self.fail("more than %d nested dict entries" % MAX_DEPTH, start)
        if self.pos >= len(self.text):
            self.fail("dict entry opened at position %d is not closed" % start)
        key_at = self.pos
        if self.text[key_at] == "}":
            self.fail("a dict entry needs a key and a value type", key_at)
        key = self.complete(arrays, structs, entries + 1)
        if key.code not in BASIC:
            self.fail("a dict key must be a basic type (one of %s), not %r" % (
                "".join(sorted(BASIC)), key.signature), key_at)
        if self.pos >= len(self.text):
            self.fail("dict entry opened at position %d is not closed" % start)
        if self.text[self.pos] == "}":
            self.fail("a dict entry needs a value type after its key")
        value = self.complete(arrays, structs, entries + 1)
        if self.pos >= len(self.text):
            self.fail("dict entry opened at position %d is not closed" % start)
        if self.text[self.pos] != "}":
            self.fail("a dict entry holds exactly two types (key and value); %r follows the value" % self.text[self.pos])
        self.pos += 1
        return DBusType("{", [key, value])


def _as_type(value):
    return value if isinstance(value, DBusType) else parse_single(value)


# ---------------------------------------------------------------------------------------------
# JSON Schema
# ---------------------------------------------------------------------------------------------

def schema(dbus_type):
    """The JSON Schema (draft 2020-12) of the JSON form of one complete type (a DBusType or str)."""
    t = _as_type(dbus_type)
    code = t.code
    if code in INTEGERS:
        name, low, high = INTEGERS[code]
        out = {"type": "integer", "minimum": low, "maximum": high}
        if code == "h":
            out["description"] = "index of a Unix file descriptor passed with the message"
        return out
    if code == "d":
        return {"type": "number"}
    if code == "b":
        return {"type": "boolean"}
    if code == "s":
        return {"type": "string"}
    if code == "o":
        return {"type": "string", "pattern": OBJECT_PATH_PATTERN}
    if code == "g":
        return {"type": "string", "pattern": SIGNATURE_PATTERN, "maxLength": MAX_SIGNATURE_LENGTH}
    if code == "v":
        return {}
    if code == "(":
        return {"type": "array", "prefixItems": [schema(c) for c in t.children], "items": False,
                "minItems": len(t.children), "maxItems": len(t.children)}
    elem = t.children[0]
    if elem.code == "{":
        key, value = elem.children
        return {"type": "object", "propertyNames": _key_schema(key), "additionalProperties": schema(value)}
    return {"type": "array", "items": schema(elem)}


def _key_schema(key):
    """Object keys are strings in JSON: how a dict key of each basic type is written."""
    if key.code in INTEGERS:
        return {"pattern": _SIGNED_KEY if INTEGERS[key.code][1] < 0 else _UNSIGNED_KEY}
    if key.code == "b":
        return {"enum": ["true", "false"]}
    if key.code == "d":
        return {"pattern": _DOUBLE_KEY}
    return schema(key)


def describe(dbus_type):
    """A short human name: ``uint32 (u)``, ``array of string (as)``, ``dict string -> variant (a{sv})``."""
    t = _as_type(dbus_type)
    return "%s (%s)" % (_describe(t), t.signature)


def _describe(t):
    if t.code == "a":
        elem = t.children[0]
        if elem.code == "{":
            return "dict %s -> %s" % (_describe(elem.children[0]), _describe(elem.children[1]))
        return "array of %s" % _describe(elem)
    if t.code == "(":
        return "struct of %d" % len(t.children)
    return NAMES[t.code]


# ---------------------------------------------------------------------------------------------
# JSON-ish values -> dbus-python typed values
# ---------------------------------------------------------------------------------------------

def _kind(value):
    if value is None:
        return "null"
    return {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", tuple: "list",
            dict: "dict", bytes: "bytes"}.get(type(value), type(value).__name__)


def _plain(value):
    """Ansible may hand over str/dict/list subclasses (tagged values): take the plain type."""
    for base in (bool, int, float, str, bytes, dict, list, tuple):
        if isinstance(value, base):
            return base
    return type(value)


def to_dbus(dbus_type, value, dbus_module, where="value"):
    """``value`` as dbus-python's typed value for ``dbus_type``; :class:`ConversionError` if it does not fit."""
    return _Converter(dbus_module).convert(_as_type(dbus_type), value, where)


def convert_args(signature, values, dbus_module, where="args"):
    """A list of values for the complete types of ``signature``: count and each value checked."""
    types = parse(signature) if not isinstance(signature, list) else signature
    values = list(values or [])
    if len(values) != len(types):
        raise ConversionError(where, "%d argument%s given, the signature %r takes %d" % (
            len(values), "" if len(values) == 1 else "s", "".join(t.signature for t in types), len(types)))
    conv = _Converter(dbus_module)
    return [conv.convert(t, v, "%s[%d]" % (where, i)) for i, (t, v) in enumerate(zip(types, values))]


class _Converter:
    def __init__(self, dbus_module):
        self.dbus = dbus_module

    def convert(self, t, value, where):
        code = t.code
        if code in INTEGERS:
            return self.integer(t, value, where)
        if code == "d":
            if _plain(value) in (int, float):
                return self.dbus.Double(value)
            if _plain(value) is str:
                try:
                    return self.dbus.Double(float(value))
                except ValueError:
                    pass
            raise ConversionError(where, "expected a number for %s, got %s %r" % (describe(t), _kind(value), value))
        if code == "b":
            if _plain(value) is bool:
                return self.dbus.Boolean(value)
            if _plain(value) is str and value.strip().lower() in ("true", "false"):
                return self.dbus.Boolean(value.strip().lower() == "true")
            raise ConversionError(where, "expected true or false for %s, got %s %r" % (describe(t), _kind(value), value))
        if code in "sog":
            return self.text(t, value, where)
        if code == "v":
            return self.variant(value, where)
        if code == "(":
            if _plain(value) not in (list, tuple):
                raise ConversionError(where, "expected a list of %d for %s, got %s" % (
                    len(t.children), describe(t), _kind(value)))
            if len(value) != len(t.children):
                raise ConversionError(where, "expected %d fields for %s, got %d" % (
                    len(t.children), describe(t), len(value)))
            fields = [self.convert(c, v, "%s[%d]" % (where, i)) for i, (c, v) in enumerate(zip(t.children, value))]
            return self.dbus.Struct(fields, signature="".join(c.signature for c in t.children))
        elem = t.children[0]
        if elem.code == "{":
            return self.mapping(t, value, where)
        if elem.code == "y":
            return self.byte_array(t, value, where)
        if _plain(value) not in (list, tuple):
            raise ConversionError(where, "expected a list for %s, got %s" % (describe(t), _kind(value)))
        items = [self.convert(elem, v, "%s[%d]" % (where, i)) for i, v in enumerate(value)]
        return self.dbus.Array(items, signature=elem.signature)

    def integer(self, t, value, where):
        name, low, high = INTEGERS[t.code]
        if t.code == "h":
            raise ConversionError(where, "file descriptors (h) cannot be passed from a playbook")
        number = None
        if _plain(value) is int:
            number = int(value)
        elif _plain(value) is str and _INT_TEXT.match(value):
            number = int(value)
        if number is None:
            raise ConversionError(where, "expected an integer for %s, got %s %r" % (describe(t), _kind(value), value))
        if not low <= number <= high:
            raise ConversionError(where, "%d is out of range for %s: %d..%d" % (number, describe(t), low, high))
        cls = {"y": "Byte", "n": "Int16", "q": "UInt16", "i": "Int32", "u": "UInt32", "x": "Int64", "t": "UInt64"}[t.code]
        return getattr(self.dbus, cls)(number)

    def text(self, t, value, where):
        if _plain(value) is not str:
            raise ConversionError(where, "expected a string for %s, got %s %r" % (describe(t), _kind(value), value))
        value = str(value)
        if "\x00" in value:
            raise ConversionError(where, "a D-Bus string cannot contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeError:
            raise ConversionError(where, "not valid UTF-8 text")
        if t.code == "o":
            if not _OBJECT_PATH_RE.match(value):
                raise ConversionError(where, "%r is not an object path (/ or /segment/... of [A-Za-z0-9_])" % value)
            return self.dbus.ObjectPath(value)
        if t.code == "g":
            try:
                parse(value)
            except SignatureError as exc:
                raise ConversionError(where, str(exc))
            return self.dbus.Signature(value)
        return self.dbus.String(value)

    def byte_array(self, t, value, where):
        if _plain(value) is str:
            try:
                data = base64.b64decode(value.encode("ascii"), validate=True)
            except (binascii.Error, ValueError, UnicodeError):
                raise ConversionError(where, "a string for %s must be base64; give a list of integers for raw bytes" % describe(t))
            return self.dbus.ByteArray(data)
        if _plain(value) is bytes:
            return self.dbus.ByteArray(bytes(value))
        if _plain(value) not in (list, tuple):
            raise ConversionError(where, "expected a list of integers 0..255 or a base64 string for %s, got %s" % (
                describe(t), _kind(value)))
        byte = DBusType("y")
        data = bytearray(int(self.integer(byte, v, "%s[%d]" % (where, i))) for i, v in enumerate(value))
        return self.dbus.ByteArray(bytes(data))

    def mapping(self, t, value, where):
        key_t, value_t = t.children[0].children
        if _plain(value) is not dict:
            raise ConversionError(where, "expected a dict for %s, got %s" % (describe(t), _kind(value)))
        out = {}
        for key, item in value.items():
            here = "%s[%r]" % (where, key)
            if key_t.code == "b" and _plain(key) is str:
                key = {"true": True, "false": False}.get(key.strip().lower(), key)
            elif key_t.code == "d" and _plain(key) is str:
                try:
                    key = float(key)
                except ValueError:
                    pass
            typed_key = self.convert(key_t, key, here + " (key)")
            if typed_key in out:
                raise ConversionError(here, "the key is given twice (as %r)" % (to_json(typed_key),))
            out[typed_key] = self.convert(value_t, item, here)
        return self.dbus.Dictionary(out, signature=key_t.signature + value_t.signature)

    def variant(self, value, where):
        """Explicit ``{"signature": "u", "value": 3}``, else a type inferred from the Python type."""
        if _plain(value) is dict and set(value) == {"signature", "value"} and _plain(value["signature"]) is str:
            try:
                inner = parse_single(value["signature"])
            except SignatureError as exc:
                raise ConversionError(where + "['signature']", str(exc))
            if inner.code == "v":
                raise ConversionError(where, "a variant holding a variant cannot be sent; give the inner type")
            return self.convert(inner, value["value"], where + "['value']")
        # dbus-python marshals a variant with the type of the typed value inside it.
        return self.convert(infer(value, where), value, where)


def infer(value, where="value"):
    """The D-Bus type a plain value gets inside a variant when no signature is given.

    bool -> b; int -> i when it fits int32, else x, else t; float -> d; str -> s;
    dict (string keys) -> a{sv}; list of only bools/ints/floats/strings -> ab/ai (ax)/ad/as;
    any other list (mixed, nested, empty) -> av.
    """
    kind = _plain(value)
    if kind is bool:
        return DBusType("b")
    if kind is int:
        for code in "ixt":
            if INTEGERS[code][1] <= value <= INTEGERS[code][2]:
                return DBusType(code)
        raise ConversionError(where, "%d does not fit any D-Bus integer type" % value)
    if kind is float:
        return DBusType("d")
    if kind is str:
        return DBusType("s")
    if kind is dict:
        for key in value:
            if _plain(key) is not str:
                raise ConversionError(where, "a dict in a variant becomes a{sv} and needs string keys, got %s %r; "
                                      "give {signature: ..., value: ...} for other key types" % (_kind(key), key))
        return parse_single("a{sv}")
    if kind in (list, tuple):
        kinds = set(_plain(v) for v in value)
        if len(kinds) == 1:
            only = kinds.pop()
            if only in (bool, float, str):
                return DBusType("a", [infer(value[0], where)])
            if only is int:
                widest = max((infer(v, where) for v in value), key=lambda t: "ixt".index(t.code))
                return DBusType("a", [widest])
        return parse_single("av")
    raise ConversionError(where, "cannot send %s %r in a variant; give {signature: ..., value: ...}" % (_kind(value), value))


# ---------------------------------------------------------------------------------------------
# replies -> JSON
# ---------------------------------------------------------------------------------------------

def to_json(value):
    """dbus-python's (or plain) values as JSON-compatible data: the form :func:`schema` describes.

    Byte arrays become lists of integers, dict keys become strings (integers in decimal,
    booleans ``true``/``false``), structs lists; a received file descriptor is closed and
    reported as null.
    """
    type_name = type(value).__name__
    if type_name == "Boolean" or isinstance(value, bool):
        return bool(value)
    if type_name == "UnixFd":
        try:
            import os  # pylint: disable=import-outside-toplevel
            os.close(value.take())
        except Exception:  # pylint: disable=broad-except
            pass
        return None
    if type_name == "ByteArray" or isinstance(value, (bytes, bytearray)):
        return list(bytearray(value))
    if isinstance(value, dict):
        return dict((_key_json(k), to_json(v)) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _key_json(key):
    if type(key).__name__ == "Boolean" or isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return str(int(key))
    if isinstance(key, float):
        return repr(float(key))
    return str(key)
