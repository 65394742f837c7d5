# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The D-Bus transport against a real dbus-daemon and a real service on it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import time

import pytest

from private_bus import PrivateBus, dbus_daemon

from ansible_collections.opdbus.infra.plugins.module_utils import dbus as transport

pytest.importorskip("dbus")
if not os.access(dbus_daemon(), os.X_OK):
    pytest.skip("dbus-daemon is not installed", allow_module_level=True)

HERE = os.path.dirname(os.path.abspath(__file__))
SERVICE = "org.opdbus.Test"
PATH = "/org/opdbus/Test"
IFACE = "org.opdbus.Test"


@pytest.fixture(scope="module")
def bus_address():
    bus = PrivateBus().start()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "echo_service.py"), bus.address],
                            stdout=subprocess.PIPE, env=env)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        yield bus.address
    finally:
        proc.kill()
        proc.wait()
        bus.stop()


@pytest.fixture
def bus(bus_address):
    with transport.Bus(bus_address, timeout=5) as conn:
        yield conn


def test_call_returns_plain_python(bus):
    assert bus.call(SERVICE, PATH, IFACE, "Echo", "héllo", signature="s") == "héllo"
    assert bus.call(SERVICE, PATH, IFACE, "Add", 2, 40, signature="ii") == 42
    mapping, names = bus.call(SERVICE, PATH, IFACE, "Complex")
    assert mapping == {"flag": True, "n": 7, "bytes": b"ab"}
    # plain Python types, not dbus-python's subclasses of them
    assert [type(mapping["flag"]).__name__, type(mapping["n"]).__name__] == ["bool", "int"]
    assert names == ["x", "y"] and {type(n).__name__ for n in names} == {"str"}
    assert bus.call(SERVICE, PATH, IFACE, "Sleep", 0.0, signature="d") is None


def test_properties(bus):
    assert bus.get_all(SERVICE, PATH, IFACE) == {"Version": "1.2.3"}
    bus.set_property(SERVICE, PATH, IFACE, "Version", "2.0")
    assert bus.get_property(SERVICE, PATH, IFACE, "Version") == "2.0"


def test_names(bus):
    assert bus.name_has_owner(SERVICE)
    assert not bus.name_has_owner("org.opdbus.Nobody")
    assert not bus.available("org.opdbus.Nobody")


def test_service_not_on_bus(bus):
    with pytest.raises(transport.DBusUnavailable, match="org.opdbus.Nobody is not on the bus"):
        bus.call("org.opdbus.Nobody", PATH, IFACE, "Echo", "x")


def test_unknown_method(bus):
    with pytest.raises(transport.DBusUnknownMember, match="org.opdbus.Test.Nope on org.opdbus.Test /org/opdbus/Test"):
        bus.call(SERVICE, PATH, IFACE, "Nope")


def test_service_error_keeps_its_name(bus):
    with pytest.raises(transport.DBusError) as info:
        bus.call(SERVICE, PATH, IFACE, "Fail")
    assert info.value.name == "org.opdbus.Test.Error.Broken"
    assert "it broke on purpose" in str(info.value) and "org.opdbus.Test.Fail" in str(info.value)


def test_policy_denial(bus):
    with pytest.raises(transport.DBusAccessDenied, match="access denied to org.opdbus.Test.Forbidden"):
        bus.call(SERVICE, PATH, IFACE, "Forbidden")


def test_call_timeout(bus):
    started = time.monotonic()
    with pytest.raises(transport.DBusTimeout, match="no reply to org.opdbus.Test.Sleep"):
        bus.call(SERVICE, PATH, IFACE, "Sleep", 3.0, signature="d", timeout=0.5)
    assert time.monotonic() - started < 3.0


def test_collect_until_terminal(bus):
    result, signals = bus.collect(SERVICE, PATH, IFACE, ["Finished"],
                                  lambda: bus.call(SERVICE, PATH, IFACE, "Emit", 3, True, signature="ub"))
    assert result == 3
    assert [s.name for s in signals] == ["Progress", "Progress", "Progress", "Finished"]
    assert signals[1].args == [1, "step 1"]
    assert signals[-1].args == ["done", 3] and signals[-1].path == PATH


def test_collect_filters_signals(bus):
    signals = bus.collect(SERVICE, PATH, IFACE, ["Finished"],
                          lambda: bus.call(SERVICE, PATH, IFACE, "Emit", 2, True, signature="ub"),
                          signals=())[1]
    assert [s.name for s in signals] == ["Finished"]


def test_collect_times_out_with_what_arrived(bus):
    with pytest.raises(transport.DBusSignalTimeout) as info:
        bus.collect(SERVICE, PATH, IFACE, ["Finished"],
                    lambda: bus.call(SERVICE, PATH, IFACE, "Emit", 2, False, signature="ub"), timeout=0.5)
    assert [s.name for s in info.value.signals] == ["Progress", "Progress"]
    assert "no Finished signal" in str(info.value) and "Progress, Progress" in str(info.value)


def test_collect_until_narrows_the_terminal_signal(bus):
    # Progress is terminal, but only the one with index 1 ends the wait (the first one does not).
    signals = bus.collect(SERVICE, PATH, IFACE, ["Progress"],
                          lambda: bus.call(SERVICE, PATH, IFACE, "Emit", 3, True, signature="ub"),
                          until=lambda s: s.args[0] == 1)[1]
    assert [(s.name, s.args[0]) for s in signals] == [("Progress", 0), ("Progress", 1)]


def test_collect_twice_on_one_connection(bus):
    for count in (1, 4):
        signals = bus.collect(SERVICE, PATH, IFACE, ["Finished"],
                              lambda: bus.call(SERVICE, PATH, IFACE, "Emit", count, True, signature="ub"))[1]
        assert len(signals) == count + 1


def test_no_bus_at_address(tmp_path):
    with pytest.raises(transport.DBusUnavailable, match="cannot connect to unix:path="):
        transport.Bus("unix:path=%s" % (tmp_path / "none.sock"))


def test_import_dbus_without_binding(monkeypatch):
    monkeypatch.setitem(sys.modules, "dbus", None)
    with pytest.raises(transport.DBusUnavailable, match="dbus-python .module dbus. is not importable"):
        transport.import_dbus()
