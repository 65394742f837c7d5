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

import os
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


TYPED = "org.opdbus.Typed"
TYPED_PATH = "/org/opdbus/Test/typed"

# name: (signature, access, initial value) of the Typed object's properties.
TYPED_PROPERTIES = {
    "Level": ("u", "readwrite", dbus.UInt32(1)),
    "Label": ("s", "readwrite", dbus.String("start")),
    "Tags": ("a{sv}", "readwrite", dbus.Dictionary({}, signature="sv")),
    "Limits": ("(uu)", "readwrite", dbus.Struct((dbus.UInt32(0), dbus.UInt32(10)), signature="uu")),
    "Serial": ("s", "read", dbus.String("SN-1")),
    "Secret": ("s", "write", dbus.String("")),
    "Bumps": ("u", "read", dbus.UInt32(0)),
    "Sets": ("u", "read", dbus.UInt32(0)),
}


class Typed(dbus.service.Object):
    """For dbus_introspect / dbus_call: every basic type, containers, properties with each access,
    a method with a side effect, and child objects (``tree/a/b/c``) to walk."""

    def __init__(self, bus, path=TYPED_PATH):
        super(Typed, self).__init__(bus, path)
        self.props = dict((name, spec[2]) for name, spec in TYPED_PROPERTIES.items())

    @dbus.service.method(TYPED, in_signature="ynqiuxtdbsog", out_signature="ynqiuxtdbsog")
    def Basic(self, byte, int16, uint16, int32, uint32, int64, uint64, double, boolean, string, path, signature):
        return (byte, int16, uint16, int32, uint32, int64, uint64, double, boolean, string, path, signature)

    @dbus.service.method(TYPED, in_signature="a{sv}a(is)a{ia{sas}}ayvav(ia(sb))a{ub}",
                         out_signature="a{sv}a(is)a{ia{sas}}ayvav(ia(sb))a{ub}")
    def Containers(self, options, pairs, nested, data, anything, several, record, flags):
        return (options, pairs, nested, data, anything, several, record, flags)

    @dbus.service.method(TYPED, in_signature="v", out_signature="g")
    def VariantType(self, value):
        return dbus.Signature(_signature_of(value))

    @dbus.service.method(TYPED, in_signature="", out_signature="u")
    def Bump(self):
        self.props["Bumps"] = dbus.UInt32(self.props["Bumps"] + 1)
        return self.props["Bumps"]

    @dbus.service.method(TYPED, in_signature="", out_signature="")
    def Nothing(self):
        pass

    @dbus.service.method(TYPED, in_signature="", out_signature="hs")
    def Descriptor(self):
        fd = os.open(os.devnull, os.O_RDONLY)
        try:
            return dbus.types.UnixFd(fd), "devnull"  # UnixFd holds its own duplicate
        finally:
            os.close(fd)

    @dbus.service.signal(TYPED, signature="sa{sv}as")
    def Changed(self, interface, changed, invalidated):
        pass

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ss", out_signature="v")
    def Get(self, interface, name):
        self._check(interface, name, "read")
        return self.props[name]

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="s", out_signature="a{sv}")
    def GetAll(self, interface):
        self._check(interface, None, "read")
        return dict((n, v) for n, v in self.props.items() if TYPED_PROPERTIES[n][1] != "write")

    @dbus.service.method(dbus.PROPERTIES_IFACE, in_signature="ssv", out_signature="")
    def Set(self, interface, name, value):
        self._check(interface, name, "write")
        signature = TYPED_PROPERTIES[name][0]
        if _signature_of(value) != signature:
            raise dbus.exceptions.DBusException("%s takes %s, got %s" % (name, signature, _signature_of(value)),
                                                name="org.freedesktop.DBus.Error.InvalidArgs")
        self.props[name] = value
        self.props["Sets"] = dbus.UInt32(self.props["Sets"] + 1)

    def _check(self, interface, name, mode):
        if interface != TYPED:
            raise dbus.exceptions.DBusException("no interface %s" % interface,
                                                name="org.freedesktop.DBus.Error.UnknownInterface")
        if name is None:
            return
        if name not in TYPED_PROPERTIES:
            raise dbus.exceptions.DBusException("no property %s" % name, name="org.freedesktop.DBus.Error.UnknownProperty")
        if mode not in TYPED_PROPERTIES[name][1]:
            raise dbus.exceptions.DBusException("%s is not %sable" % (name, mode),
                                                name="org.freedesktop.DBus.Error.PropertyReadOnly")

    @dbus.service.method(dbus.INTROSPECTABLE_IFACE, in_signature="", out_signature="s",
                         path_keyword="object_path", connection_keyword="connection")
    def Introspect(self, object_path, connection):
        # dbus-python leaves properties out of its introspection data: add them.
        xml = dbus.service.Object.Introspect(self, object_path, connection)
        props = "".join('<property name="%s" type="%s" access="%s"/>' % (n, s[0], s[1])
                        for n, s in sorted(TYPED_PROPERTIES.items()))
        marker = '<interface name="%s">' % TYPED
        return xml.replace(marker, marker + props, 1)


def _signature_of(value):
    """The D-Bus signature dbus-python received a typed value with."""
    if isinstance(value, dbus.Boolean):
        return "b"
    for cls, code in ((dbus.Byte, "y"), (dbus.Int16, "n"), (dbus.UInt16, "q"), (dbus.Int32, "i"),
                      (dbus.UInt32, "u"), (dbus.Int64, "x"), (dbus.UInt64, "t"), (dbus.Double, "d"),
                      (dbus.ObjectPath, "o"), (dbus.Signature, "g"), (dbus.String, "s")):
        if isinstance(value, cls):
            return code
    if isinstance(value, dbus.ByteArray):
        return "ay"
    if isinstance(value, dbus.Dictionary):
        return "a{%s}" % value.signature
    if isinstance(value, dbus.Array):
        return "a%s" % value.signature
    if isinstance(value, dbus.Struct):
        return "(%s)" % "".join(_signature_of(v) for v in value)
    return "?"


class Leaf(dbus.service.Object):
    @dbus.service.method("org.opdbus.Leaf", in_signature="", out_signature="o", path_keyword="path")
    def Where(self, path):
        return dbus.ObjectPath(path)


def main():
    dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)
    bus = dbus.bus.BusConnection(sys.argv[1])
    name = dbus.service.BusName("org.opdbus.Test", bus)
    obj = Test(bus)
    others = [Typed(bus)] + [Leaf(bus, "/org/opdbus/Test/tree" + p) for p in ("/a", "/a/b", "/a/b/c", "/z")]
    print("ready", flush=True)
    _GLib.iterate_until(lambda: False, time.monotonic() + 3600)
    return name, obj, others


if __name__ == "__main__":
    main()
