# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbus_call against real services on a real (private) dbus-daemon: the echo service (every
type, properties with each access, a method with a side effect) and python-dbusmock templates."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from private_bus import dbus_daemon

from ansible_collections.opdbus.infra.plugins.module_utils import dbus as transport
from ansible_collections.opdbus.infra.plugins.module_utils import dbus_invoke

dbus = pytest.importorskip("dbus")
if not os.access(dbus_daemon(), os.X_OK):
    pytest.skip("dbus-daemon is not installed", allow_module_level=True)

from dbus_modules_support import ECHO, Services, dbusmock_available, run_module, run_playbook, saved  # noqa: E402

TYPED = "org.opdbus.Typed"
TYPED_PATH = "/org/opdbus/Test/typed"
MOCKS = ("timedated", "networkmanager") if dbusmock_available() else ()


@pytest.fixture(scope="module")
def services():
    running = Services(MOCKS).start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def bus(services):
    with transport.Bus(services.bus.address, timeout=10) as conn:
        yield conn


def call(services, check=False, diff=False, **params):
    params.setdefault("bus_address", services.bus.address)
    params.setdefault("service", ECHO)
    params.setdefault("path", TYPED_PATH)
    params.setdefault("interface", TYPED)
    return run_module("dbus_call", params, check=check, diff=diff)


def prop(bus, name):
    return bus.get_property(ECHO, TYPED_PATH, TYPED, name)


# ------------------------------------------------------------------------------------------ methods

def test_every_basic_type_round_trips(services):
    args = [255, -32768, 65535, -2147483648, 4294967295, -2 ** 63, 2 ** 64 - 1, 0.25, True, "héllo", "/a/b", "a{sv}"]
    result = call(services, method="Basic", args=args, read_only=True)
    assert result["changed"] is False and result["reply"] == args, result
    assert result["signature"] == "ynqiuxtdbsog" == result["out_signature"]


def test_containers_round_trip(services):
    args = [{"n": 1, "s": "x", "l": ["a"], "typed": {"signature": "t", "value": 5}},
            [[1, "one"], [2, "two"]],
            {"7": {"k": ["v", "w"]}},
            [0, 1, 255],
            {"deep": [1, 2]},
            [1, "two", True],
            [3, [["a", True]]],
            {"4294967295": False}]
    result = call(services, method="Containers", args=args, read_only=True)
    expected = list(args)
    expected[0] = dict(args[0], typed=5)  # the explicit variant comes back as its value
    assert result["reply"] == expected, result


def test_bytes_from_base64(services):
    result = call(services, method="Containers", read_only=True,
                  args=[{}, [], {}, "AAH/", 1, [], [0, []], {}])
    assert result["reply"][3] == [0, 1, 255]


@pytest.mark.parametrize("value, signature", [
    (7, "i"), (2 ** 40, "x"), (True, "b"), ("s", "s"), (1.5, "d"), ({"a": 1}, "a{sv}"), (["a"], "as"), ([1, "a"], "av"),
    ({"signature": "q", "value": 7}, "q"), ({"signature": "a{is}", "value": {"1": "x"}}, "a{is}"),
])
def test_variant_types_as_the_service_receives_them(services, value, signature):
    assert call(services, method="VariantType", args=[value], read_only=True)["reply"] == [signature]


@pytest.mark.parametrize("args, words", [
    ([], "0 arguments given, the signature 'ynqiuxtdbsog' takes 12"),
    ([256, 0, 0, 0, 0, 0, 0, 0, True, "", "/", ""], "args[0]: 256 is out of range for byte (y): 0..255"),
    ([0, 0, 0, 0, -1, 0, 0, 0, True, "", "/", ""], "args[4]: -1 is out of range for uint32 (u)"),
    ([0, 0, 0, 0, 0, 0, 0, 0, "yes?", "", "/", ""], "args[8]: expected true or false"),
    ([0, 0, 0, 0, 0, 0, 0, 0, True, 5, "/", ""], "args[9]: expected a string"),
    ([0, 0, 0, 0, 0, 0, 0, 0, True, "", "x/y", ""], "args[10]: 'x/y' is not an object path"),
    ([0, 0, 0, 0, 0, 0, 0, 0, True, "", "/", "a{"], "args[11]: invalid signature"),
])
def test_validation_fails_before_the_call(services, bus, args, words):
    before = prop(bus, "Bumps")
    result = call(services, method="Basic", args=args, read_only=True)
    assert result["failed"] and words in result["msg"] and result["msg"].startswith("invalid input"), result
    assert prop(bus, "Bumps") == before


def test_check_mode_skips_a_method_call_unless_read_only(services, bus):
    before = prop(bus, "Bumps")
    skipped = call(services, check=True, method="Bump")
    assert skipped["changed"] is True and skipped["skipped_call"] is True and "reply" not in skipped
    assert prop(bus, "Bumps") == before  # not called
    # arguments are still validated in check mode
    invalid = call(services, check=True, method="Basic", args=[1])
    assert invalid["failed"] and "1 argument given" in invalid["msg"]
    ran = call(services, check=True, method="Bump", read_only=True)  # a lie, but the user's: it runs
    assert ran["changed"] is False and ran["reply"] == [before + 1]
    real = call(services, method="Bump")
    assert real["changed"] is True and real["reply"] == [before + 2] and prop(bus, "Bumps") == before + 2
    assert call(services, method="Nothing")["reply"] == []


def test_file_descriptors(services):
    # a received descriptor is closed and reported as null; one cannot be sent from a playbook
    got = call(services, method="Descriptor", read_only=True)
    assert got["reply"] == [None, "devnull"] and got["out_signature"] == "hs", got
    refused = call(services, method="Descriptor", signature="h", args=[0])
    assert refused["failed"] and "args[0]: file descriptors (h) cannot be passed" in refused["msg"]


def test_unknown_service_interface_method(services):
    nobody = call(services, service="org.opdbus.Nobody", method="X")
    assert nobody["failed"] and "org.opdbus.Nobody is not on the bus" in nobody["msg"]
    no_iface = call(services, interface="org.opdbus.Nope", method="X")
    assert no_iface["failed"] and "no interface org.opdbus.Nope at %s of %s" % (TYPED_PATH, ECHO) in no_iface["msg"]
    assert "org.opdbus.Typed" in no_iface["msg"] and no_iface["dbus_error"] == "org.freedesktop.DBus.Error.UnknownInterface"
    no_method = call(services, method="Nope")
    assert no_method["failed"] and "no method Nope on org.opdbus.Typed" in no_method["msg"]
    assert "Basic" in no_method["msg"]
    no_object = call(services, path="/org/opdbus/Nowhere", method="Basic")
    assert no_object["failed"] and "no interface org.opdbus.Typed at /org/opdbus/Nowhere" in no_object["msg"]
    both = call(services, method="Basic", property="Level")
    assert both["failed"] and "mutually exclusive" in both["msg"]
    args_for_prop = call(services, property="Level", args=[1])
    assert args_for_prop["failed"] and "args are for a method call" in args_for_prop["msg"]


def test_signature_instead_of_introspection(services):
    result = call(services, path="/org/opdbus/Test", interface="org.opdbus.Test", method="Add", args=[40, "2"],
                  signature="ii")
    assert result["reply"] == [42] and "out_signature" not in result
    bad = call(services, path="/org/opdbus/Test", interface="org.opdbus.Test", method="Add", args=[1, 2], signature="a")
    assert bad["failed"] and "invalid input" in bad["msg"] and "'a'" in bad["msg"]
    # the service's own refusal comes back with its D-Bus error
    failing = call(services, path="/org/opdbus/Test", interface="org.opdbus.Test", method="Fail", signature="")
    assert failing["failed"] and failing["dbus_error"] == "org.opdbus.Test.Error.Broken" and "it broke on purpose" in failing["msg"]
    denied = call(services, path="/org/opdbus/Test", interface="org.opdbus.Test", method="Forbidden", signature="")
    assert denied["failed"] and "access denied" in denied["msg"]


# ------------------------------------------------------------------------------------------ properties

def test_property_get(services):
    assert call(services, property="Serial")["value"] == "SN-1"
    got = call(services, check=True, property="Limits")
    assert got["changed"] is False and got["action"] == "get" and len(got["value"]) == 2
    wo = call(services, property="Secret")
    assert wo["failed"] and "write-only" in wo["msg"]


def test_property_set_is_idempotent_with_diff_and_check_mode(services, bus):
    sets = prop(bus, "Sets")
    current = prop(bus, "Level")
    new = current + 10
    predicted = call(services, check=True, diff=True, property="Level", value=new)
    assert predicted["changed"] is True and predicted["diff"] == {"before": {"Level": current}, "after": {"Level": new}}
    assert prop(bus, "Level") == current and prop(bus, "Sets") == sets  # check mode wrote nothing
    done = call(services, diff=True, property="Level", value=str(new))
    assert done["changed"] is True and done["value"] == new and prop(bus, "Level") == new
    assert prop(bus, "Sets") == sets + 1
    again = call(services, diff=True, property="Level", value=new)
    assert again["changed"] is False and "diff" not in again and prop(bus, "Sets") == sets + 1
    # the service checks the variant's type: it received a uint32, as the introspected type says
    struct = call(services, property="Limits", value=[3, 4])
    assert struct["changed"] is True and prop(bus, "Limits") == [3, 4]
    tags = {"owner": "ops", "weight": {"signature": "y", "value": 9}}
    assert call(services, property="Tags", value=tags)["value"] == {"owner": "ops", "weight": 9}
    assert call(services, property="Tags", value={"owner": "ops", "weight": {"signature": "y", "value": 9}})["changed"] is False


def test_property_set_refusals(services, bus):
    ro = call(services, property="Serial", value="x")
    assert ro["failed"] and "read-only" in ro["msg"]
    out_of_range = call(services, property="Level", value=-1)
    assert out_of_range["failed"] and "value: -1 is out of range for uint32 (u)" in out_of_range["msg"]
    wrong = call(services, property="Limits", value=[1])
    assert wrong["failed"] and "expected 2 fields" in wrong["msg"]
    write_only = call(services, property="Secret", value="hunter2")  # cannot be compared: always set
    assert write_only["changed"] is True and write_only["value"] == "hunter2"


# ------------------------------------------------------------------------------------------ dbusmock

def test_dbusmock_timedated_method_and_properties(services, bus):
    if "timedated" not in MOCKS:
        pytest.skip("python-dbusmock is not installed (requirements-test.txt)")
    base = dict(service="org.freedesktop.timedate1", path="/org/freedesktop/timedate1", interface="org.freedesktop.timedate1")
    zone = call(services, property="Timezone", **base)["value"]
    target = "Europe/Berlin" if zone != "Europe/Berlin" else "Asia/Tokyo"
    bad = call(services, method="SetTimezone", args=[target], **base)
    assert bad["failed"] and "1 argument given, the signature 'sb' takes 2" in bad["msg"]
    done = call(services, method="SetTimezone", args=[target, False], **base)
    assert done["changed"] is True and done["reply"] == []
    assert bus.get_property(*(list(base.values()) + ["Timezone"])) == target
    ntp = call(services, property="NTP", **base)["value"]
    flipped = call(services, diff=True, property="NTP", value=not ntp, **base)
    assert flipped["changed"] and flipped["diff"]["before"] == {"NTP": ntp} and flipped["value"] is (not ntp)
    assert call(services, property="NTP", value=not ntp, **base)["changed"] is False


def test_dbusmock_networkmanager(services):
    if "networkmanager" not in MOCKS:
        pytest.skip("python-dbusmock is not installed (requirements-test.txt)")
    base = dict(service="org.freedesktop.NetworkManager", path="/org/freedesktop/NetworkManager",
                interface="org.freedesktop.NetworkManager")
    devices = call(services, method="GetDevices", read_only=True, **base)
    assert devices["changed"] is False and devices["out_signature"] == "ao" and isinstance(devices["reply"][0], list)
    state = call(services, property="WirelessEnabled", **base)["value"]
    assert call(services, property="WirelessEnabled", value=not state, **base)["changed"] is True
    assert call(services, property="WirelessEnabled", **base)["value"] is (not state)


# ------------------------------------------------------------------------------------------ ansible-playbook

def test_through_ansible_playbook_with_check_mode(services, bus, tmp_path):
    bumps = prop(bus, "Bumps")
    level = prop(bus, "Level")
    tasks = """\
        - name: add with typed arguments
          opdbus.infra.dbus_call:
            bus_address: "{address}"
            service: org.opdbus.Test
            path: /org/opdbus/Test
            interface: org.opdbus.Test
            method: Add
            args: [40, 2]
            read_only: true
          register: added
        - name: bump (a side effect)
          opdbus.infra.dbus_call:
            bus_address: "{address}"
            service: org.opdbus.Test
            path: /org/opdbus/Test/typed
            interface: org.opdbus.Typed
            method: Bump
          register: bumped
        - name: set a property
          opdbus.infra.dbus_call:
            bus_address: "{address}"
            service: org.opdbus.Test
            path: /org/opdbus/Test/typed
            interface: org.opdbus.Typed
            property: Level
            value: {level}
          register: level
        - name: save
          ansible.builtin.copy:
            content: "{{{{ {{'added': added, 'bumped': bumped, 'level': level}} | to_json }}}}"
            dest: "{workdir}/out.json"
            mode: "0644"
          check_mode: false
        """.format(address=services.bus.address, level=level + 1, workdir=tmp_path)
    proc = run_playbook(tmp_path, tasks, check=True, diff=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = saved(tmp_path, "out.json")
    assert out["added"]["reply"] == [42] and out["added"]["changed"] is False
    assert out["bumped"]["changed"] is True and out["bumped"]["skipped_call"] is True
    assert out["level"]["changed"] is True and out["level"]["diff"]["after"] == {"Level": level + 1}
    assert prop(bus, "Bumps") == bumps and prop(bus, "Level") == level
    proc = run_playbook(tmp_path, tasks)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    out = saved(tmp_path, "out.json")
    assert out["bumped"]["reply"] == [bumps + 1] and prop(bus, "Bumps") == bumps + 1
    assert out["level"]["changed"] is True and prop(bus, "Level") == level + 1


def test_resolve_address():
    env = {"DBUS_SYSTEM_BUS_ADDRESS": "unix:path=/sys.sock", "DBUS_SESSION_BUS_ADDRESS": "unix:path=/ses.sock"}
    assert dbus_invoke.resolve_address("system", None, env) == "unix:path=/sys.sock"
    assert dbus_invoke.resolve_address("session", None, env) == "unix:path=/ses.sock"
    assert dbus_invoke.resolve_address("session", "unix:path=/given", env) == "unix:path=/given"
    assert dbus_invoke.resolve_address("system", None, dict(env, OPDBUS_DBUS_ADDRESS="unix:path=/lab")) == "unix:path=/lab"
    assert dbus_invoke.resolve_address("system", None, {}) == dbus_invoke.DEFAULT_SYSTEM_SOCKET
    with pytest.raises(transport.DBusUnavailable, match="DBUS_SESSION_BUS_ADDRESS is not set"):
        dbus_invoke.resolve_address("session", None, {})
