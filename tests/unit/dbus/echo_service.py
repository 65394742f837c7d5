# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small D-Bus service for the transport's tests: ``python echo_service.py ADDRESS``.

Owns ``org.opdbus.Test`` on the bus at ADDRESS and exports ``/org/opdbus/Test`` with methods
that echo, compute, sleep, fail with a named error and emit signals, and a property. It runs
its main loop with the transport's own GLib driver (no PyGObject).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys
import time

import dbus
import dbus.mainloop.glib
import dbus.service

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import _GLib

IFACE = "org.opdbus.Test"


class Failure(dbus.DBusException):
    _dbus_error_name = "org.opdbus.Test.Error.Broken"


class Test(dbus.service.Object):
    def __init__(self, bus):
        super(Test, self).__init__(bus, "/org/opdbus/Test")
        self.version = "1.2.3"

    @dbus.service.method(IFACE, in_signature="s", out_signature="s")
    def Echo(self, text):
        return text

    @dbus.service.method(IFACE, in_signature="ii", out_signature="i")
    def Add(self, a, b):
        return a + b

    @dbus.service.method(IFACE, in_signature="", out_signature="a{sv}as")
    def Complex(self):
        return ({"flag": dbus.Boolean(True), "n": dbus.UInt64(7), "bytes": dbus.ByteArray(b"ab")}, ["x", "y"])

    @dbus.service.method(IFACE, in_signature="d", out_signature="")
    def Sleep(self, seconds):
        time.sleep(seconds)

    @dbus.service.method(IFACE, in_signature="", out_signature="")
    def Fail(self):
        raise Failure("it broke on purpose")

    @dbus.service.method(IFACE, in_signature="", out_signature="")
    def Forbidden(self):
        pass

    @dbus.service.method(IFACE, in_signature="ub", out_signature="u")
    def Emit(self, count, finish):
        for i in range(count):
            self.Progress(i, "step %d" % i)
        if finish:
            self.Finished("done", count)
        return count

    @dbus.service.signal(IFACE, signature="us")
    def Progress(self, index, text):
        pass

    @dbus.service.signal(IFACE, signature="su")
    def Finished(self, status, count):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        return self.GetAll(interface)[name]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        if interface != IFACE:
            raise dbus.exceptions.DBusException("no such interface", name="org.freedesktop.DBus.Error.UnknownInterface")
        return {"Version": self.version}

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ssv", out_signature="")
    def Set(self, interface, name, value):
        self.version = str(value)


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(sys.argv[1])
    name = dbus.service.BusName("org.opdbus.Test", bus)
    obj = Test(bus)
    print("ready", flush=True)
    _GLib.iterate_until(lambda: False, time.monotonic() + 3600)
    return name, obj


if __name__ == "__main__":
    main()
