# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""dbus_introspect against real services on a real (private) dbus-daemon: the daemon itself
(org.freedesktop.DBus), the echo service, and python-dbusmock templates."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from private_bus import dbus_daemon

from ansible_collections.opdbus.infra.plugins.module_utils import dbus as transport
from ansible_collections.opdbus.infra.plugins.module_utils import dbus_introspect as I
from ansible_collections.opdbus.infra.plugins.module_utils import dbus_schema as S

dbus = pytest.importorskip("dbus")
jsonschema = pytest.importorskip("jsonschema")
if not os.access(dbus_daemon(), os.X_OK):
    pytest.skip("dbus-daemon is not installed", allow_module_level=True)

from dbus_modules_support import ECHO, ActivatingBus, TEMPLATES, Services, dbusmock_available, run_module, run_playbook, saved  # noqa: E402

MOCKS = ("upower", "timedated", "networkmanager", "logind") if dbusmock_available() else ()


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


def introspect(services, **params):
    params.setdefault("bus_address", services.bus.address)
    return run_module("dbus_introspect", params)


# ------------------------------------------------------------------------------------------ domain

def test_list_names_globs_and_unique_names(bus):
    names = I.list_names(bus, "org.opdbus.*")
    assert names == {ECHO: {"running": True, "activatable": False}}
    everything = I.list_names(bus, "*")
    assert "org.freedesktop.DBus" in everything and not any(n.startswith(":") for n in everything)
    unique = I.list_names(bus, ":*")
    assert unique and all(n.startswith(":") for n in unique)


def test_parse_xml_of_the_echo_service(bus):
    data = I.introspect(bus, ECHO, "/org/opdbus/Test/typed")
    typed = data["interfaces"]["org.opdbus.Typed"]
    basic = typed["methods"]["Basic"]
    assert [a["signature"] for a in basic["in"]] == list("ynqiuxtdbsog")
    assert [a["name"] for a in basic["in"]][:3] == ["byte", "int16", "uint16"]
    assert all(a["schema"] == S.schema(a["signature"]) for a in basic["in"] + basic["out"])
    assert typed["properties"]["Serial"]["access"] == "read"
    assert typed["properties"]["Secret"]["access"] == "write"
    assert typed["properties"]["Limits"]["schema"]["prefixItems"] == [S.schema("u")] * 2
    assert [a["signature"] for a in typed["signals"]["Changed"]["args"]] == ["s", "a{sv}", "as"]
    assert typed["methods"]["Nothing"] == {"in": [], "out": [], "annotations": {}}


def test_parse_xml_keeps_a_bad_signature_as_an_error():
    data = I.parse_xml('<node><interface name="x.Y"><method name="M"><arg type="a{vs}" direction="in"/>'
                       '<arg type="s" direction="out"/></method></interface><node name="c"/></node>')
    arg = data["interfaces"]["x.Y"]["methods"]["M"]["in"][0]
    assert "dict key must be a basic type" in arg["error"] and "schema" not in arg
    assert data["children"] == ["c"]
    with pytest.raises(I.IntrospectionError, match="not valid XML"):
        I.parse_xml("<node>")
    with pytest.raises(I.IntrospectionError, match="expected <node>"):
        I.parse_xml("<interface/>")


def test_walk_follows_children_within_the_limits(bus):
    objects, truncated, errors = I.walk(bus, ECHO, "/")
    assert not truncated and errors == []
    leaves = [p for p in objects if p.startswith("/org/opdbus/Test/tree/")]
    assert sorted(leaves) == ["/org/opdbus/Test/tree/a", "/org/opdbus/Test/tree/a/b", "/org/opdbus/Test/tree/a/b/c",
                              "/org/opdbus/Test/tree/z"]
    # the path-only nodes (/org, /org/opdbus) carry no interface of their own and are passed through
    assert "/org" not in objects and "/" in objects
    shallow, truncated, errors = I.walk(bus, ECHO, "/org/opdbus/Test/tree", max_depth=1)
    assert truncated and sorted(shallow) == ["/org/opdbus/Test/tree", "/org/opdbus/Test/tree/a", "/org/opdbus/Test/tree/z"]
    few, truncated, errors = I.walk(bus, ECHO, "/org/opdbus/Test/tree", max_objects=2)
    assert truncated and len([p for p in few if p != "/org/opdbus/Test/tree"]) == 1


def test_walk_of_a_service_not_on_the_bus_raises(bus):
    with pytest.raises(transport.DBusUnavailable, match="org.opdbus.Nobody is not on the bus"):
        I.walk(bus, "org.opdbus.Nobody")


def test_the_bus_daemon_itself(bus):
    objects, truncated, errors = I.walk(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", max_depth=0)
    iface = objects["/org/freedesktop/DBus"]["interfaces"]["org.freedesktop.DBus"]
    assert [a["signature"] for a in iface["methods"]["RequestName"]["in"]] == ["s", "u"]
    assert iface["methods"]["ListNames"]["out"][0]["schema"] == {"type": "array", "items": {"type": "string"}}
    assert "NameOwnerChanged" in iface["signals"]
    assert iface["properties"]["Features"]["access"] == "read"
    # every argument the daemon declares parses, and its real replies fit the schema of their signature
    for method in iface["methods"].values():
        for arg in method["in"] + method["out"]:
            assert "schema" in arg, arg
    reply = bus.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "GetConnectionCredentials",
                     ECHO, signature="s", raw=True)
    out = iface["methods"]["GetConnectionCredentials"]["out"][0]
    assert out["signature"] == "a{sv}"
    jsonschema.validate(S.to_json(reply), out["schema"])


# ------------------------------------------------------------------------------------------ module

def test_module_on_the_echo_service(services):
    result = introspect(services, service=ECHO)
    assert result["changed"] is False, result
    svc = result["services"][ECHO]
    assert svc["running"] and not svc["truncated"] and svc["errors"] == []
    test = svc["objects"]["/org/opdbus/Test"]["interfaces"]
    assert set(test) == {"org.opdbus.Test"}  # standard interfaces left out by default
    assert [a["signature"] for a in test["org.opdbus.Test"]["methods"]["Emit"]["in"]] == ["u", "b"]
    with_std = introspect(services, service=ECHO, path="/org/opdbus/Test", max_depth=0, standard_interfaces=True,
                          schema=False)
    ifaces = with_std["services"][ECHO]["objects"]["/org/opdbus/Test"]["interfaces"]
    assert "org.freedesktop.DBus.Introspectable" in ifaces
    assert "schema" not in ifaces["org.opdbus.Test"]["methods"]["Add"]["in"][0]


def test_module_on_the_daemon_with_a_glob(services):
    result = introspect(services, service="org.freedesktop.DBu?", max_depth=3)
    daemon = result["services"]["org.freedesktop.DBus"]
    assert "org.freedesktop.DBus" in daemon["objects"]["/org/freedesktop/DBus"]["interfaces"]


def test_module_errors(services):
    missing = introspect(services, service="org.opdbus.Nobody")
    assert missing["failed"] and "org.opdbus.Nobody is not on the bus" in missing["msg"]
    nothing = introspect(services, service="org.opdbus.Nobody*")
    assert nothing["services"] == {} and not nothing.get("failed")
    bad = introspect(services, service=ECHO, max_depth=-1)
    assert bad["failed"] and "max_depth" in bad["msg"]
    gone = run_module("dbus_introspect", {"service": ECHO, "bus_address": "unix:path=/nonexistent/socket"})
    assert gone["failed"] and "cannot connect to unix:path=/nonexistent/socket" in gone["msg"]
    no_session = run_module("dbus_introspect", {"service": ECHO, "bus": "session"})
    assert no_session["failed"] and "DBUS_SESSION_BUS_ADDRESS is not set" in no_session["msg"]


def test_session_bus_from_the_environment(services):
    result = run_module("dbus_introspect", {"service": ECHO, "bus": "session", "max_depth": 0, "path": "/org/opdbus/Test"},
                        env_extra={"DBUS_SESSION_BUS_ADDRESS": services.bus.address})
    assert "org.opdbus.Test" in result["services"][ECHO]["objects"]["/org/opdbus/Test"]["interfaces"], result


@pytest.mark.parametrize("template", ["upower", "timedated", "networkmanager", "logind"])
def test_dbusmock_templates(services, bus, template):
    if not MOCKS:
        pytest.skip("python-dbusmock is not installed (requirements-test.txt)")
    if template in services.skipped:
        pytest.skip("dbusmock template %s: %s" % (template, services.skipped[template]))
    name = TEMPLATES[template][0]
    result = introspect(services, service=name)
    svc = result["services"][name]
    assert svc["errors"] == [] and svc["objects"], result
    # every property of every object: its real value (GetAll) fits the schema introspection gave
    checked = 0
    for path, obj in svc["objects"].items():
        for iface_name, iface in obj["interfaces"].items():
            if not iface["properties"]:
                continue
            values = bus.call(name, path, I.PROPERTIES, "GetAll", iface_name, signature="s", raw=True)
            for prop, desc in iface["properties"].items():
                jsonschema.validate(S.to_json(values[prop]), desc["schema"])
                checked += 1
    assert checked > 0
    main_iface = {"upower": "org.freedesktop.UPower", "timedated": "org.freedesktop.timedate1",
                  "networkmanager": "org.freedesktop.NetworkManager", "logind": "org.freedesktop.login1.Manager"}[template]
    assert any(main_iface in obj["interfaces"] and obj["interfaces"][main_iface]["methods"]
               for obj in svc["objects"].values())


def test_activatable_names_are_listed_on_request_and_started_by_the_walk():
    if not MOCKS:
        pytest.skip("python-dbusmock is not installed (requirements-test.txt)")
    name = "org.freedesktop.timedate1"
    activating = ActivatingBus(name, "timedated").start()
    try:
        with transport.Bus(activating.address, timeout=30) as conn:
            assert I.list_names(conn, "org.freedesktop.time*") == {}
            assert I.list_names(conn, "org.freedesktop.time*", activatable=True) == {
                name: {"running": False, "activatable": True}}
            refused = run_module("dbus_introspect", {"bus_address": activating.address, "service": name})
            assert refused["failed"] and "activatable names are included only with activatable=true" in refused["msg"]
            assert not conn.name_has_owner(name)
            result = run_module("dbus_introspect", {"bus_address": activating.address, "service": name,
                                                    "activatable": True, "timeout": 60})
            svc = result["services"][name]
            assert svc["running"] is False and svc["activatable"] is True, result
            assert "org.freedesktop.timedate1" in svc["objects"]["/org/freedesktop/timedate1"]["interfaces"]
            assert conn.name_has_owner(name)  # introspecting it started it
    finally:
        activating.stop()


def test_through_ansible_playbook(services, tmp_path):
    proc = run_playbook(tmp_path, """\
        - name: describe the echo service
          opdbus.infra.dbus_introspect:
            bus_address: "{address}"
            service: "org.opdbus.*"
            path: /org/opdbus/Test
          register: described
        - name: the Add method takes two int32
          ansible.builtin.assert:
            that:
              - objects['/org/opdbus/Test'].interfaces['org.opdbus.Test'].methods.Add.in | map(attribute='signature') | list == ['i', 'i']
              - objects['/org/opdbus/Test/typed'].interfaces['org.opdbus.Typed'].properties.Level.schema.maximum == 4294967295
          vars:
            objects: "{{{{ described.services['org.opdbus.Test'].objects }}}}"
        - name: save it
          ansible.builtin.copy:
            content: "{{{{ described | to_json }}}}"
            dest: "{workdir}/described.json"
            mode: "0644"
        """.format(address=services.bus.address, workdir=tmp_path))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    described = saved(tmp_path, "described.json")
    assert described["changed"] is False and list(described["services"]) == [ECHO]
    direct = introspect(services, service="org.opdbus.*", path="/org/opdbus/Test")
    assert described["services"] == direct["services"]  # the playbook run and the direct run agree
