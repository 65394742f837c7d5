# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""D-Bus transport (dbus-python): method calls, properties and signal collection.

One :class:`Bus` per connection: the system bus (``DBUS_SYSTEM_BUS_ADDRESS`` is honoured, as
libdbus does), a bus at a given address (``unix:path=...``), or a peer-to-peer socket with no bus
daemon behind it (systemd's ``/run/systemd/private``). Every call has a timeout. Signals are
collected by subscribing *before* the call that causes them and iterating GLib's default main
context (the loop dbus-python's ``DBusGMainLoop`` attaches connections to) until a terminal
signal arrives or the deadline passes. GLib is driven through ``ctypes`` on libglib-2.0 itself,
so PyGObject is not needed: dbus-python alone (Debian's python3-dbus or dbus-python from PyPI).

``org.freedesktop.DBus.Error.*`` (and polkit's refusals) become typed exceptions with messages
that name the service, the object and the method. Nothing here knows Ansible, except
:func:`import_dbus`, which respawns a module under the system Python when dbus-python is not
importable in the module's interpreter (as Ansible's own apt module does for python3-apt).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ctypes
import ctypes.util
import functools
import sys
import time

DBUS_HINT = ("install dbus-python in this Python (pip: needs libdbus-1-dev, libglib2.0-dev and pkg-config) "
             "or python3-dbus for the system Python (apt)")

DEFAULT_TIMEOUT = 30.0

# D-Bus error names grouped by what they mean to a user.
_UNAVAILABLE = frozenset((
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
    "org.freedesktop.DBus.Error.NoServer",
    "org.freedesktop.DBus.Error.FileNotFound",
    "org.freedesktop.DBus.Error.Disconnected",
    "org.freedesktop.DBus.Error.NoNetwork",
    "org.freedesktop.DBus.Error.Spawn.ChildExited",
    "org.freedesktop.DBus.Error.Spawn.ExecFailed",
    "org.freedesktop.DBus.Error.Spawn.ServiceNotFound",
))
_DENIED = frozenset((
    "org.freedesktop.DBus.Error.AccessDenied",
    "org.freedesktop.DBus.Error.AuthFailed",
    "org.freedesktop.DBus.Error.InteractiveAuthorizationRequired",
    "org.freedesktop.PolicyKit1.Error.NotAuthorized",
    "org.freedesktop.PolicyKit1.Error.Failed",
))
_TIMEOUT = frozenset((
    "org.freedesktop.DBus.Error.NoReply",
    "org.freedesktop.DBus.Error.Timeout",
    "org.freedesktop.DBus.Error.TimedOut",
))
_UNKNOWN = frozenset((
    "org.freedesktop.DBus.Error.UnknownMethod",
    "org.freedesktop.DBus.Error.UnknownObject",
    "org.freedesktop.DBus.Error.UnknownInterface",
    "org.freedesktop.DBus.Error.UnknownProperty",
))


class DBusError(Exception):
    """A D-Bus failure; ``name`` is the D-Bus error name when there is one."""

    def __init__(self, msg, name=None):
        super(DBusError, self).__init__(msg)
        self.name = name


class DBusUnavailable(DBusError):
    """No bus at the address, or the service is not on the bus (and cannot be activated)."""


class DBusAccessDenied(DBusError):
    """The bus policy or polkit refused the call."""


class DBusTimeout(DBusError):
    """No reply, or no terminal signal, within the timeout."""


class DBusUnknownMember(DBusError):
    """The object, interface, method or property does not exist on that service."""


class DBusSignalTimeout(DBusTimeout):
    """The terminal signal did not arrive in time; ``signals`` holds what did arrive."""

    def __init__(self, msg, signals):
        super(DBusSignalTimeout, self).__init__(msg, name="org.freedesktop.DBus.Error.Timeout")
        self.signals = signals


def import_dbus(module=None):
    """dbus-python with its GLib main loop integration.

    With an AnsibleModule, respawn under the system Python when it has python3-dbus and this
    interpreter does not; otherwise fail (``fail_json``) or raise :class:`DBusUnavailable`
    naming what to install.
    """
    try:
        import dbus  # pylint: disable=import-outside-toplevel
        import dbus.mainloop.glib  # pylint: disable=import-outside-toplevel,unused-import
        return dbus
    except ImportError:
        pass
    if module is not None:
        # Imported here: the transport itself stays free of Ansible.
        from ansible.module_utils.common.respawn import (  # pylint: disable=import-outside-toplevel
            has_respawned, probe_interpreters_for_module, respawn_module)
        if not has_respawned():
            interpreter = probe_interpreters_for_module(["/usr/bin/python3", "/usr/bin/python"], "dbus")
            if interpreter:
                respawn_module(interpreter)  # does not return
    msg = "dbus-python (module dbus) is not importable by %s: %s" % (sys.executable, DBUS_HINT)
    if module is not None:
        module.fail_json(msg=msg)
    raise DBusUnavailable(msg)


def preload():
    """Load now everything a connection loads lazily (dbus-python's modules, libglib), for code that connects
    after leaving this mount namespace (a child attached to a container, where the host's files are gone)."""
    dbus = import_dbus()
    import dbus.mainloop.glib  # pylint: disable=import-outside-toplevel,unused-import,redefined-outer-name
    import dbus.connection  # pylint: disable=import-outside-toplevel,unused-import
    import dbus.bus  # pylint: disable=import-outside-toplevel,unused-import
    _GLib.lib()
    return dbus


class _GLib:
    """The few GLib calls needed to run the default main context, through ctypes."""

    _lib = None
    SOURCE_FUNC = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p)

    @classmethod
    def lib(cls):
        if cls._lib is None:
            name = ctypes.util.find_library("glib-2.0") or "libglib-2.0.so.0"
            lib = ctypes.CDLL(name)
            lib.g_main_context_iteration.argtypes = [ctypes.c_void_p, ctypes.c_int]
            lib.g_main_context_iteration.restype = ctypes.c_int
            lib.g_timeout_add.argtypes = [ctypes.c_uint, cls.SOURCE_FUNC, ctypes.c_void_p]
            lib.g_timeout_add.restype = ctypes.c_uint
            lib.g_source_remove.argtypes = [ctypes.c_uint]
            lib.g_source_remove.restype = ctypes.c_int
            cls._lib = lib
        return cls._lib

    @staticmethod
    def _wake(fired, data):  # pylint: disable=unused-argument
        fired.append(True)
        return 0  # G_SOURCE_REMOVE

    @classmethod
    def iterate_until(cls, done, deadline):
        """Dispatch events of the default context until ``done()`` or the monotonic ``deadline``."""
        lib = cls.lib()
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            fired = []
            callback = cls.SOURCE_FUNC(functools.partial(cls._wake, fired))
            source = lib.g_timeout_add(max(1, int(left * 1000)), callback, None)
            while not done() and not fired:
                lib.g_main_context_iteration(None, 1)
            if not fired:
                lib.g_source_remove(source)
        return True


def to_python(value):
    """dbus-python's typed values as plain Python (str, int, float, bool, bytes, list, dict)."""
    # The dbus types subclass the Python ones; Boolean subclasses int, so test it first.
    type_name = type(value).__name__
    if type_name == "Boolean":
        return bool(value)
    if isinstance(value, dict):
        return dict((to_python(k), to_python(v)) for k, v in value.items())
    if type_name == "ByteArray":
        return bytes(value)
    if isinstance(value, (list, tuple)):
        if type_name == "Array" and getattr(value, "signature", None) == "y":
            return bytes(bytearray(int(b) for b in value))
        return [to_python(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, bytes):
        return bytes(value)
    if isinstance(value, str):
        return str(value)
    return value


class Signal:
    """One received signal: its member name, plain-Python arguments and the emitting path."""

    __slots__ = ("name", "args", "path")

    def __init__(self, name, args, path):
        self.name = name
        self.args = args
        self.path = path

    def __repr__(self):
        return "Signal(%s, %r)" % (self.name, self.args)


class Bus:
    """A D-Bus connection.

    ``address``: None for the system bus; ``unix:path=...`` (or any D-Bus address) for a bus
    daemon at that address; with ``peer=True`` the address is a peer-to-peer socket (no bus
    daemon, no names: calls go to the peer itself, e.g. systemd's private socket).
    """

    def __init__(self, address=None, timeout=DEFAULT_TIMEOUT, peer=False, dbus_module=None):
        self.dbus = dbus_module or import_dbus()
        self.timeout = float(timeout)
        self.address = address
        self.peer = peer
        import dbus.mainloop.glib  # pylint: disable=import-outside-toplevel
        loop = dbus.mainloop.glib.DBusGMainLoop()
        where = address or "the system bus"
        try:
            if peer:
                self.conn = self.dbus.connection.Connection(address, mainloop=loop)
            elif address:
                self.conn = self.dbus.bus.BusConnection(address, mainloop=loop)
            else:
                self.conn = self.dbus.SystemBus(mainloop=loop, private=True)
        except self.dbus.exceptions.DBusException as exc:
            raise DBusUnavailable("cannot connect to %s: %s" % (where, _message(exc)), name=_name(exc))

    def close(self):
        try:
            self.conn.close()
        except Exception:  # pylint: disable=broad-except
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _proxy(self, service, path):
        return self.conn.get_object(None if self.peer else service, path, introspect=False)

    def call(self, service, path, interface, method, *args, **kwargs):
        """Call ``interface.method`` on ``service`` at ``path``; the reply as plain Python.

        Keyword ``signature`` gives the D-Bus signature of the arguments (dbus-python guesses
        otherwise), ``timeout`` overrides the bus's; ``raw=True`` keeps dbus-python's types.
        A single return value is returned as is, several as a list, none as None.
        """
        signature = kwargs.pop("signature", None)
        timeout = kwargs.pop("timeout", None) or self.timeout
        raw = kwargs.pop("raw", False)
        if kwargs:
            raise TypeError("unexpected arguments: %s" % ", ".join(sorted(kwargs)))
        try:
            reply = self.conn.call_blocking(None if self.peer else service, path, interface, method,
                                            signature, args, timeout=timeout)
        except self.dbus.exceptions.DBusException as exc:
            raise map_error(exc, service, path, interface, method, timeout)
        return reply if raw else to_python(reply)

    def get_property(self, service, path, interface, name):
        return self.call(service, path, "org.freedesktop.DBus.Properties", "Get", interface, name, signature="ss")

    def get_all(self, service, path, interface):
        return self.call(service, path, "org.freedesktop.DBus.Properties", "GetAll", interface, signature="s")

    def set_property(self, service, path, interface, name, value):
        return self.call(service, path, "org.freedesktop.DBus.Properties", "Set", interface, name, value, signature="ssv")

    def name_has_owner(self, name):
        """Whether ``name`` is owned on this bus right now (no activation)."""
        if self.peer:
            return True
        return bool(self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                              "NameHasOwner", name, signature="s"))

    def activatable(self, name):
        """Whether the bus can start ``name`` on demand (a .service file for it)."""
        if self.peer:
            return False
        names = self.call("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                          "ListActivatableNames")
        return name in names

    def available(self, name):
        return self.name_has_owner(name) or self.activatable(name)

    def collect(self, service, path, interface, terminal, start, timeout=None, signals=None, until=None):
        """Subscribe to ``interface``'s signals at ``path``, call ``start()``, gather signals.

        Returns ``(what start() returned, signals)``: the :class:`Signal` list up to and
        including the first whose name is in ``terminal``. ``signals`` limits what is kept (None: every signal of the interface).
        ``until``, a callable taking a :class:`Signal`, narrows what ends the wait: a signal named
        in ``terminal`` ends it only when ``until(signal)`` is true (e.g. the JobRemoved of one job
        among those of other clients). Handlers run only while the wait iterates, after ``start()``
        has returned, so ``until`` may use what ``start()`` produced.
        Raises :class:`DBusSignalTimeout` (carrying what arrived) when no terminal signal comes
        within ``timeout`` seconds after ``start()`` returned.
        """
        timeout = float(timeout or self.timeout)
        terminal = frozenset(terminal)
        received = []
        state = {"done": False}

        def handler(*args, **kwargs):
            member = kwargs.get("member")
            if signals is not None and member not in signals and member not in terminal:
                return
            received.append(Signal(member, [to_python(a) for a in args], kwargs.get("path")))
            if member in terminal and (until is None or until(received[-1])):
                state["done"] = True

        match = self.conn.add_signal_receiver(handler, dbus_interface=interface, path=path,
                                              bus_name=None if self.peer else service,
                                              member_keyword="member", path_keyword="path")
        try:
            result = start()
            deadline = time.monotonic() + timeout
            if not _GLib.iterate_until(lambda: state["done"], deadline):
                raise DBusSignalTimeout(
                    "no %s signal from %s at %s within %.0f s (received: %s)" % (
                        " or ".join(sorted(terminal)), service, path, timeout,
                        ", ".join(s.name for s in received) or "nothing"),
                    received)
        finally:
            match.remove()
        return result, received

    def wait(self, seconds):
        """Run the main context for ``seconds`` (lets queued signals be dispatched)."""
        _GLib.iterate_until(lambda: False, time.monotonic() + seconds)


def _name(exc):
    try:
        return exc.get_dbus_name()
    except Exception:  # pylint: disable=broad-except
        return None


def _message(exc):
    try:
        msg = exc.get_dbus_message()
    except Exception:  # pylint: disable=broad-except
        msg = None
    return msg or str(exc)


def map_error(exc, service, path, interface, method, timeout=None):
    """A dbus-python DBusException as the collection's typed error, with a message naming the call."""
    name = _name(exc)
    detail = _message(exc)
    where = "%s.%s on %s %s" % (interface, method, service, path)
    if name in _UNAVAILABLE:
        if name in ("org.freedesktop.DBus.Error.ServiceUnknown", "org.freedesktop.DBus.Error.NameHasNoOwner"):
            return DBusUnavailable("%s is not on the bus (%s)" % (service, detail), name=name)
        return DBusUnavailable("D-Bus unavailable for %s: %s" % (where, detail), name=name)
    if name in _DENIED:
        return DBusAccessDenied("access denied to %s: %s" % (where, detail), name=name)
    if name in _TIMEOUT:
        suffix = " within %.0f s" % timeout if timeout else ""
        return DBusTimeout("no reply to %s%s: %s" % (where, suffix, detail), name=name)
    if name in _UNKNOWN:
        return DBusUnknownMember("%s: %s" % (where, detail), name=name)
    if name == "org.freedesktop.DBus.Error.InvalidArgs":
        return DBusError("invalid arguments for %s: %s" % (where, detail), name=name)
    return DBusError("%s failed: %s%s" % (where, detail, " (%s)" % name if name else ""), name=name)
