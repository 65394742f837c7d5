# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The signature parser, the JSON Schema of each type and the value conversion (no bus needed).

The parser is checked against libdbus itself (dbus-python's ``dbus.Signature`` validates with
``dbus_signature_validate``) on every signature of up to 4 type characters, and on the limits.
Schemas are checked with jsonschema against the JSON form of values converted both ways.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import itertools

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import dbus_schema as S

dbus = pytest.importorskip("dbus")
jsonschema = pytest.importorskip("jsonschema")

ALPHABET = "ybnqiuxtdhsogva(){}"


def libdbus_accepts(signature):
    try:
        dbus.Signature(signature)
    except (ValueError, TypeError):
        return False
    return True


def validator(signature):
    return jsonschema.Draft202012Validator(S.schema(signature))


# ------------------------------------------------------------------------------------------ parser

def test_parser_agrees_with_libdbus_on_every_short_signature():
    checked = 0
    disagree = []
    for length in range(1, 5):
        for chars in itertools.product(ALPHABET, repeat=length):
            text = "".join(chars)
            checked += 1
            if libdbus_accepts(text) != S.is_valid(text):
                disagree.append(text)
    assert checked == sum(len(ALPHABET) ** n for n in range(1, 5))
    assert disagree == []


@pytest.mark.parametrize("code", list("ybnqiuxtdhsogv"))
def test_each_single_type_code(code):
    (t,) = S.parse(code)
    assert t.code == code and t.children == () and t.signature == code


def test_the_empty_signature_has_no_types():
    assert S.parse("") == []


def test_complete_types_are_split_and_rebuilt():
    types = S.parse("a{sv}(ia(sb))aayv")
    assert [t.signature for t in types] == ["a{sv}", "(ia(sb))", "aay", "v"]
    dict_t = types[0]
    assert dict_t.code == "a" and dict_t.children[0].code == "{"
    assert [c.signature for c in dict_t.children[0].children] == ["s", "v"]
    struct = types[1]
    assert [c.signature for c in struct.children] == ["i", "a(sb)"]
    assert struct.children[1].children[0].children[1].code == "b"
    assert types[2].children[0].children[0].code == "y"


@pytest.mark.parametrize("signature, words", [
    ("a", "needs an element type"),
    ("aa", "needs an element type"),
    ("(", "not closed"),
    ("(i", "not closed"),
    (")", "without a matching '('"),
    ("()", "at least one field"),
    ("a{vs}", "dict key must be a basic type"),
    ("a{(i)s}", "dict key must be a basic type"),
    ("a{ass}", "dict key must be a basic type"),
    ("{ss}", "only as the element of an array"),
    ("(s{ss})", "only as the element of an array"),
    ("a{s}", "needs a value type"),
    ("a{}", "needs a key and a value"),
    ("a{sss}", "exactly two types"),
    ("a{ss", "not closed"),
    ("}", "without a matching '{'"),
    ("m", "reserved"),
    ("r", "reserved"),
    ("e", "reserved"),
    ("z", "not a D-Bus type code"),
    ("s ", "not a D-Bus type code"),
])
def test_bad_signatures_are_refused_with_a_reason(signature, words):
    assert not libdbus_accepts(signature)  # the reference agrees that it is wrong
    with pytest.raises(S.SignatureError) as info:
        S.parse(signature)
    assert words in str(info.value) and repr(signature) in str(info.value)


@pytest.mark.parametrize("make, kind", [
    (lambda n: "a" * n + "y", "arrays"),
    (lambda n: "(" * n + "y" + ")" * n, "structs"),
    (lambda n: "a(" * n + "y" + ")" * n, "arrays"),
    (lambda n: "(a" * n + "y" + ")" * n, "structs"),
])
def test_nesting_limits_are_32_per_container_kind(make, kind):
    for depth, ok in ((S.MAX_DEPTH, True), (S.MAX_DEPTH + 1, False), (S.MAX_DEPTH + 2, False)):
        text = make(depth)
        assert libdbus_accepts(text) == ok, text
        assert S.is_valid(text) == ok, text
        if not ok:
            with pytest.raises(S.SignatureError, match="more than 32 nested"):
                S.parse(text)


def test_32_arrays_of_32_structs_is_the_deepest():
    text = "a" * 32 + "(" * 32 + "y" + ")" * 32
    assert libdbus_accepts(text) and S.is_valid(text)
    assert not S.is_valid("a" + text) and not libdbus_accepts("a" + text)
    assert not S.is_valid("a" * 32 + "(" * 33 + "y" + ")" * 33)


def test_length_limit_is_255_bytes():
    assert S.is_valid("y" * 255) and libdbus_accepts("y" * 255)
    with pytest.raises(S.SignatureError, match="longer than 255"):
        S.parse("y" * 256)
    assert not libdbus_accepts("y" * 256)


def test_parse_single_wants_exactly_one_type():
    assert S.parse_single("a{sv}").signature == "a{sv}"
    for text in ("", "ss"):
        with pytest.raises(S.SignatureError, match="expected exactly one"):
            S.parse_single(text)
    with pytest.raises(S.SignatureError, match="is a string"):
        S.parse(42)


# ------------------------------------------------------------------------------------------ schema

@pytest.mark.parametrize("code", list("ynqiuxth"))
def test_integer_schemas_carry_the_width(code):
    name, low, high = S.INTEGERS[code]
    out = S.schema(code)
    assert out["type"] == "integer" and out["minimum"] == low and out["maximum"] == high
    v = validator(code)
    assert v.is_valid(low) and v.is_valid(high)
    assert not v.is_valid(low - 1) and not v.is_valid(high + 1) and not v.is_valid("1")
    # the converter draws the same line
    if code != "h":
        assert int(S.to_dbus(code, high, dbus)) == high
        with pytest.raises(S.ConversionError, match="out of range"):
            S.to_dbus(code, high + 1, dbus)


def test_scalar_schemas():
    assert S.schema("d") == {"type": "number"}
    assert S.schema("b") == {"type": "boolean"}
    assert S.schema("s") == {"type": "string"}
    assert S.schema("v") == {}
    o, g = validator("o"), validator("g")
    for good in ("/", "/org", "/org/freedesktop/DBus", "/a_1/B2"):
        assert o.is_valid(good)
    for bad in ("", "org", "/org/", "//", "/a-b", "/a.b"):
        assert not o.is_valid(bad)
    assert g.is_valid("a{sv}") and not g.is_valid("a{sv}z") and not g.is_valid("y" * 256)


def test_container_schemas():
    assert S.schema("as") == {"type": "array", "items": {"type": "string"}}
    assert S.schema("a{sv}") == {"type": "object", "propertyNames": {"type": "string"}, "additionalProperties": {}}
    struct = S.schema("(sib)")
    assert struct["prefixItems"] == [S.schema("s"), S.schema("i"), S.schema("b")]
    assert struct["minItems"] == struct["maxItems"] == 3 and struct["items"] is False
    v = validator("(sib)")
    assert v.is_valid(["a", 1, True]) and not v.is_valid(["a", 1]) and not v.is_valid(["a", 1, True, 2])
    assert not v.is_valid(["a", "1", True])
    nested = validator("aa{sa(ib)}")
    assert nested.is_valid([{"k": [[1, True]]}, {}]) and not nested.is_valid([{"k": [[1, 1]]}])


@pytest.mark.parametrize("signature, good_keys, bad_keys", [
    ("a{is}", ["0", "-5", "2147483647"], ["x", "1.5", ""]),
    ("a{us}", ["0", "42"], ["-1", "x"]),
    ("a{bs}", ["true", "false"], ["True", "1"]),
    ("a{ds}", ["1.5", "-2", "1e3", ".5"], ["x", "1.2.3"]),
    ("a{os}", ["/a/b"], ["a/b"]),
])
def test_dict_keys_are_strings_with_a_pattern_per_key_type(signature, good_keys, bad_keys):
    v = validator(signature)
    for key in good_keys:
        assert v.is_valid({key: "x"}), key
    for key in bad_keys:
        assert not v.is_valid({key: "x"}), key


def test_describe():
    assert S.describe("u") == "uint32 (u)"
    assert S.describe("a{sv}") == "dict string -> variant (a{sv})"
    assert S.describe("aas") == "array of array of string (aas)"


# ------------------------------------------------------------------------------------------ conversion

ROUND_TRIP = [
    ("y", 255), ("n", -32768), ("q", 65535), ("i", -7), ("u", 4294967295), ("x", -2 ** 63), ("t", 2 ** 64 - 1),
    ("d", 1.5), ("b", True), ("b", False), ("s", "héllo"), ("o", "/org/x"), ("g", "a{sv}"),
    ("as", ["a", "b"]), ("ay", [0, 1, 255]), ("aay", [[1], []]), ("a{sv}", {"a": 1, "b": "x", "c": [1, 2]}),
    ("a{is}", {"1": "one", "-2": "minus two"}), ("a{ub}", {"7": True}), ("a{bs}", {"true": "y"}),
    ("(ia(sb))", [1, [["x", True], ["y", False]]]), ("a{ia{sas}}", {"3": {"k": ["v"]}}),
    ("av", [1, "two", [3.5]]), ("v", {"nested": {"deeper": [True]}}),
]


@pytest.mark.parametrize("signature, value", ROUND_TRIP)
def test_converted_values_come_back_as_the_same_json_and_fit_the_schema(signature, value):
    typed = S.to_dbus(signature, value, dbus)
    back = S.to_json(typed)
    assert back == value
    assert validator(signature).is_valid(back)
    # what the converter builds is what libdbus marshals for that signature
    message = dbus.lowlevel.MethodCallMessage("org.x", "/", "org.x", "M")
    message.append(typed, signature=signature)
    assert message.get_signature() == signature
    assert S.to_json(message.get_args_list()[0]) == value


def test_types_come_out_as_dbus_python_types():
    assert type(S.to_dbus("u", 3, dbus)).__name__ == "UInt32"
    assert type(S.to_dbus("o", "/a", dbus)).__name__ == "ObjectPath"
    assert type(S.to_dbus("ay", [1], dbus)).__name__ == "ByteArray"
    assert S.to_dbus("a{sv}", {}, dbus).signature == "sv"
    assert type(S.to_dbus("(is)", [1, "a"], dbus)).__name__ == "Struct"


def test_lenient_inputs():
    assert S.to_dbus("u", "42", dbus) == 42  # a templated number arrives as text
    assert S.to_dbus("b", "False", dbus) is not None and not S.to_dbus("b", "False", dbus)
    assert S.to_dbus("d", 3, dbus) == 3.0 and S.to_dbus("d", "2.5", dbus) == 2.5
    assert bytes(S.to_dbus("ay", "AAH/", dbus)) == b"\x00\x01\xff"  # base64
    assert S.to_json(S.to_dbus("a{is}", {5: "int key"}, dbus)) == {"5": "int key"}


@pytest.mark.parametrize("signature, value, words", [
    ("u", -1, "out of range for uint32 (u): 0..4294967295"),
    ("y", 256, "out of range for byte (y)"),
    ("i", True, "expected an integer"),
    ("i", 1.5, "expected an integer"),
    ("i", "x", "expected an integer"),
    ("s", 5, "expected a string"),
    ("s", "a\x00b", "NUL"),
    ("o", "not/a/path", "not an object path"),
    ("g", "a{vs}", "dict key must be a basic type"),
    ("b", "maybe", "expected true or false"),
    ("d", "x", "expected a number"),
    ("as", "abc", "expected a list"),
    ("ay", "not base64!", "must be base64"),
    ("ay", [1, 300], "value[1]: 300 is out of range"),
    ("a{sv}", ["a"], "expected a dict"),
    ("a{is}", {"x": "a"}, "value['x'] (key): expected an integer"),
    ("a{is}", {"1": "a", 1: "b"}, "given twice"),
    ("(is)", [1], "expected 2 fields"),
    ("(is)", {"a": 1}, "expected a list of 2"),
    ("h", 3, "file descriptors"),
    ("v", None, "cannot send null"),
    ("v", {"signature": "a{vs}", "value": {}}, "value['signature']"),
    ("v", {"signature": "u", "value": -3}, "value['value']: -3 is out of range"),
    ("v", {1: "x"}, "needs string keys"),
    ("v", 2 ** 64, "does not fit any D-Bus integer type"),
])
def test_conversion_errors_name_the_value(signature, value, words):
    with pytest.raises(S.ConversionError) as info:
        S.to_dbus(signature, value, dbus)
    assert words in str(info.value)


def test_convert_args_checks_the_count_and_names_the_argument():
    typed = S.convert_args("su", ["a", 1], dbus)
    assert [type(v) for v in typed] == [dbus.String, dbus.UInt32]
    with pytest.raises(S.ConversionError, match=r"1 argument given, the signature 'su' takes 2"):
        S.convert_args("su", ["a"], dbus)
    with pytest.raises(S.ConversionError, match=r"args\[1\]: -1 is out of range"):
        S.convert_args("su", ["a", -1], dbus)
    with pytest.raises(S.ConversionError, match=r"args\[0\]\['k'\]\[1\]: expected an integer"):
        S.convert_args("a{sai}", [{"k": [1, "x"]}], dbus)


@pytest.mark.parametrize("value, signature", [
    (True, "b"), (1, "i"), (2 ** 31, "x"), (2 ** 63, "t"), (1.5, "d"), ("s", "s"), ({"a": 1}, "a{sv}"),
    (["a", "b"], "as"), ([1, 2 ** 40], "ax"), ([1, 2], "ai"), ([True], "ab"), ([0.5], "ad"),
    ([1, "a"], "av"), ([], "av"), ([[1]], "av"),
])
def test_variant_inference(value, signature):
    assert S.infer(value).signature == signature
    typed = S.to_dbus("v", value, dbus)
    message = dbus.lowlevel.MethodCallMessage("org.x", "/", "org.x", "M")
    message.append(typed, signature="v")
    (received,) = message.get_args_list()
    assert S.to_json(received) == value


def test_explicit_variant_type():
    typed = S.to_dbus("v", {"signature": "q", "value": 7}, dbus)
    assert type(typed).__name__ == "UInt16"
    # a plain a{sv} with those two keys is sent as a dict when wrapped explicitly
    wrapped = S.to_dbus("v", {"signature": "a{sv}", "value": {"signature": "s", "value": 1}}, dbus)
    assert S.to_json(wrapped) == {"signature": "s", "value": 1}


def test_to_json_of_replies():
    assert S.to_json(dbus.Boolean(True)) is True
    assert S.to_json(dbus.ByteArray(b"\x01\x02")) == [1, 2]
    assert S.to_json(dbus.Dictionary({dbus.Int32(-1): dbus.Boolean(False)}, signature="ib")) == {"-1": False}
    assert S.to_json(dbus.Dictionary({dbus.Boolean(True): dbus.Double(0.5)}, signature="bd")) == {"true": 0.5}
    assert S.to_json(dbus.Struct((dbus.String("a"), dbus.UInt64(2 ** 64 - 1)))) == ["a", 2 ** 64 - 1]
