# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd's manager over D-Bus (org.freedesktop.systemd1), on top of the D-Bus transport.

Two ways in, as ``systemctl`` has: the system bus (``/run/dbus/system_bus_socket``, when a bus
daemon runs) or systemd's private peer-to-peer socket ``/run/systemd/private`` (root only, no bus
daemon needed: minimal containers). :func:`connect` prefers the bus and falls back to the socket.

What is offered: the manager's ``Version``; ``LoadUnit`` (loads a unit that is not loaded, so a
unit that does not exist comes back with ``LoadState`` ``not-found``); a unit's properties on any
of its interfaces; ``SetUnitProperties`` with typed values; ``Reload`` (systemd answers once the
reload is done); start/stop/restart jobs waited for through ``JobRemoved`` (subscribed before the
job is queued, so the signal cannot be missed). Nothing here knows Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re
import time

from ansible_collections.opdbus.infra.plugins.module_utils.dbus import (
    Bus, DBusError, DBusTimeout, DBusUnavailable)

SERVICE = "org.freedesktop.systemd1"
PATH = "/org/freedesktop/systemd1"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE_IFACE = "org.freedesktop.systemd1.Service"

SYSTEM_BUS_SOCKET = "/run/dbus/system_bus_socket"
PRIVATE_SOCKET = "/run/systemd/private"

# The unit name grammar of systemd (unit-name.c): a prefix of [A-Za-z0-9:-_.\\@], one type suffix.
UNIT_TYPES = ("service", "socket", "target", "device", "mount", "automount", "swap", "timer", "path", "slice", "scope")
_UNIT_NAME = re.compile(r"^[A-Za-z0-9:_.\\@-]+\.(%s)$" % "|".join(UNIT_TYPES))
UNIT_NAME_MAX = 255


class SystemdError(Exception):
    """A systemd failure that is not a D-Bus transport failure (a job that failed, a bad unit name)."""


class UnitNotFound(SystemdError):
    """systemd has no such unit (LoadState not-found)."""


class JobFailed(SystemdError):
    """A job ended with a result other than ``done``."""

    def __init__(self, msg, result):
        super(JobFailed, self).__init__(msg)
        self.result = result


def unit_name(name, default_type="service"):
    """A full unit name: ``foo`` -> ``foo.service``; a name that is not valid raises ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError("a unit name is needed")
    if "." not in name or name.rsplit(".", 1)[1] not in UNIT_TYPES:
        name = "%s.%s" % (name, default_type)
    if len(name) > UNIT_NAME_MAX or not _UNIT_NAME.match(name) or name.startswith("."):
        raise ValueError("%r is not a valid systemd unit name" % name)
    return name


def parse_version(text):
    """The major version number of systemd's ``Version`` property (``252.39-1~deb12u2`` -> 252)."""
    match = re.match(r"^\D*(\d+)", text or "")
    if not match:
        raise SystemdError("cannot read a version number from systemd's Version %r" % text)
    return int(match.group(1))


def connect(mode="auto", timeout=30.0, system_socket=SYSTEM_BUS_SOCKET, private_socket=PRIVATE_SOCKET):
    """A :class:`Systemd` over the system bus (``system``), the private socket (``private``) or
    the first that works, bus first (``auto``, what systemctl does)."""
    errors = []
    if mode in ("auto", "system"):
        address = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or "unix:path=%s" % system_socket
        if mode == "system" or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS") or os.path.exists(system_socket):
            try:
                bus = Bus(address, timeout=timeout)
                if bus.name_has_owner(SERVICE):
                    return Systemd(bus, "system")
                bus.close()
                errors.append("%s is not on the system bus at %s" % (SERVICE, address))
            except DBusUnavailable as exc:
                errors.append(str(exc))
        else:
            errors.append("no system bus socket %s" % system_socket)
        if mode == "system":
            raise DBusUnavailable("; ".join(errors))
    if mode in ("auto", "private"):
        try:
            bus = Bus("unix:path=%s" % private_socket, timeout=timeout, peer=True)
        except DBusUnavailable as exc:
            errors.append(str(exc))
        else:
            try:
                prime_private(bus, timeout)
            except DBusError:
                bus.close()
                raise
            return Systemd(bus, "private")
    if mode not in ("auto", "system", "private"):
        raise ValueError("unknown bus mode %r (auto, system or private)" % mode)
    raise DBusUnavailable("cannot reach systemd: %s" % "; ".join(errors))


def prime_private(bus, timeout, attempt=0.25):
    """Get a fresh connection to systemd's private socket going.

    systemd's server side of ``/run/systemd/private`` (seen with 252 in a container) leaves a message
    that reaches it in the same read as the client's SASL ``BEGIN`` unprocessed until more bytes
    arrive on the connection. sd-bus clients (systemctl) do not hit this, libdbus always does: it
    writes its first message right behind ``BEGIN``. So the first message here is a Peer.Ping with a
    short reply timeout, sent again until one is answered (each new Ping wakes the server up, which
    then answers every Ping it holds); the connection then works normally.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            bus.call(SERVICE, PATH, "org.freedesktop.DBus.Peer", "Ping", timeout=attempt)
            return
        except DBusTimeout:
            if time.monotonic() >= deadline:
                raise


class Systemd:
    """The manager of one systemd instance on a :class:`Bus` (``via``: ``system`` or ``private``)."""

    def __init__(self, bus, via="system"):
        self.bus = bus
        self.via = via
        self._version = None

    def close(self):
        self.bus.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def _manager(self, method, *args, **kwargs):
        return self.bus.call(SERVICE, PATH, MANAGER, method, *args, **kwargs)

    # -- the manager ------------------------------------------------------------------------------
    def version(self):
        """(the Version string, its major number)."""
        if self._version is None:
            text = self.bus.get_property(SERVICE, PATH, MANAGER, "Version")
            self._version = (text, parse_version(text))
        return self._version

    def reload(self, timeout=None):
        """``daemon-reload``: systemd replies when the unit files have been read again."""
        self._manager("Reload", timeout=timeout)

    # -- units ------------------------------------------------------------------------------------
    def load_unit(self, name):
        """The object path of ``name``, loading it if needed; :class:`UnitNotFound` when it does not exist."""
        path = self._manager("LoadUnit", name, signature="s")
        state = self.bus.get_property(SERVICE, path, UNIT, "LoadState")
        if state == "not-found":
            raise UnitNotFound("unit %s does not exist (systemd has no unit file for it)" % name)
        return path

    def properties(self, path, interface=UNIT):
        """Every property of ``interface`` of the unit at ``path`` (plain Python)."""
        return self.bus.get_all(SERVICE, path, interface)

    def get(self, path, name, interface=UNIT):
        return self.bus.get_property(SERVICE, path, interface, name)

    def set_unit_properties(self, name, properties, runtime=True):
        """``SetUnitProperties(name, runtime, a(sv))``; ``properties`` is [(name, signature, value)].

        The signature of each value is given explicitly (dbus-python would guess ``i`` for every int).
        """
        dbus = self.bus.dbus
        items = [dbus.Struct((prop, typed(dbus, signature, value)), signature="sv") for prop, signature, value in properties]
        self._manager("SetUnitProperties", name, bool(runtime), dbus.Array(items, signature="(sv)"), signature="sba(sv)")

    def _job(self, method, name, mode="replace", timeout=None):
        """Queue a job with ``method`` and wait for its JobRemoved; returns the job's result (``done``)."""
        state = {}

        def start():
            state["job"] = self._manager(method, name, mode, signature="ss")
            return state["job"]

        def ours(signal):
            # JobRemoved(u id, o job, s unit, s result)
            return len(signal.args) >= 4 and signal.args[1] == state.get("job")

        subscribed = False
        try:
            try:
                self._manager("Subscribe")
                subscribed = True
            except DBusError as exc:
                if exc.name != "org.freedesktop.systemd1.AlreadySubscribed":
                    raise
            job, signals = self.bus.collect(SERVICE, PATH, MANAGER, ["JobRemoved"], start,
                                            timeout=timeout, signals=["JobRemoved"], until=ours)
        finally:
            if subscribed:
                try:
                    self._manager("Unsubscribe")
                except DBusError:
                    pass
        result = [s for s in signals if s.name == "JobRemoved" and ours(s)][-1].args[3]
        if result != "done":
            raise JobFailed("%s of %s ended with result %r (job %s)" % (method, name, result, job), result)
        return result

    def start_unit(self, name, mode="replace", timeout=None):
        return self._job("StartUnit", name, mode, timeout)

    def stop_unit(self, name, mode="replace", timeout=None):
        return self._job("StopUnit", name, mode, timeout)

    def restart_unit(self, name, mode="replace", timeout=None):
        return self._job("RestartUnit", name, mode, timeout)


def typed(dbus, signature, value):
    """``value`` as dbus-python's type for ``signature`` (the few types unit properties use)."""
    if signature == "ay":
        return dbus.Array([dbus.Byte(b) for b in bytearray(value)], signature="y")
    if signature == "i":
        return dbus.Int32(value)
    if signature == "u":
        return dbus.UInt32(value)
    if signature == "t":
        return dbus.UInt64(value)
    if signature == "b":
        return dbus.Boolean(value)
    if signature == "s":
        return dbus.String(value)
    if signature == "as":
        return dbus.Array([dbus.String(v) for v in value], signature="s")
    raise ValueError("unsupported property signature %r" % signature)


def mask_bytes(numbers):
    """CPU or node numbers as systemd's bit mask bytes (``ay``: bit n of byte n // 8), as CPUAffinity uses."""
    numbers = sorted(set(numbers))
    if not numbers:
        return b""
    out = bytearray(numbers[-1] // 8 + 1)
    for n in numbers:
        out[n // 8] |= 1 << (n % 8)
    return bytes(out)


def mask_numbers(data):
    """systemd's ``ay`` bit mask as sorted numbers."""
    out = []
    for index, byte in enumerate(bytearray(data or b"")):
        for bit in range(8):
            if byte & (1 << bit):
                out.append(index * 8 + bit)
    return out
