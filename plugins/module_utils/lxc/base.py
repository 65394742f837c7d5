# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The container backend interface of lxc_container, and the one model both backends speak.

A container's desired or current settings are a *spec*: a plain dict with the
keys of ``SPEC_KEYS`` (``None`` = not managed / unknown), validated and
normalised by :func:`normalise_spec`:

``name`` (str)
    the container's name (liblxc) or its hostname-like name (Proxmox ``hostname``
    when ``hostname`` is not given).
``id`` (int or None)
    the Proxmox VMID (100..999999999); liblxc has none.
``hostname`` (str), ``cores`` (int >= 1), ``memory_mb`` (int >= 16), ``swap_mb`` (int >= 0),
``rootfs_gb`` (int >= 1), ``onboot`` (bool), ``unprivileged`` (bool)
``template`` (str)
    what to create from: a liblxc template name (``busybox``, ``debian``), ``clone:<container>``,
    or a Proxmox volume id (``local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst``).
``features`` (dict)
    ``nesting``, ``tun``, ``keyctl``, ``fuse`` booleans.
``network`` (list of dicts, in interface order)
    ``name`` (eth0...), ``type`` (``veth`` or ``socket``), ``bridge``, ``address`` (CIDR, ``dhcp`` or
    ``manual``), ``gateway``, ``hwaddr`` (lower-case ``aa:bb:cc:dd:ee:ff``), ``port`` (the host side:
    the OVS port name; for ``socket`` an OVS internal port moved into the container).
``mounts`` (list of dicts)
    ``source`` (host path or Proxmox volume), ``target`` (absolute path in the container), ``readonly`` (bool).

Backends implement :class:`Backend`. Every method takes a container *ident* (the
name for liblxc, the VMID for Proxmox) and raises :class:`LxcError` (or a
subclass) with a message that says what failed and how to fix it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

SPEC_KEYS = (
    "name", "id", "hostname", "template", "cores", "memory_mb", "swap_mb", "rootfs_gb", "onboot", "unprivileged",
    "features", "network", "mounts",
)
FEATURES = ("nesting", "tun", "keyctl", "fuse")
NIC_TYPES = ("veth", "socket")
NIC_KEYS = ("name", "type", "bridge", "address", "gateway", "hwaddr", "port")
# NIC keys a backend picks when the spec leaves them out: not compared unless asked for.
BACKEND_CHOSEN = ("hwaddr", "port")
MOUNT_KEYS = ("source", "target", "readonly")
STATES = ("absent", "stopped", "running")
# Settings a running container cannot take without a restart (both backends); the
# others (cores, memory, swap, onboot) apply live.
RESTART_KEYS = ("hostname", "unprivileged", "features", "network", "mounts", "rootfs_gb")
# Settings that can only be chosen at creation.
CREATE_ONLY_KEYS = ("template", "unprivileged")

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
HOSTNAME_RE = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")


# The options of opdbus.infra.lxc_container that describe a container (the rest say how to act).
SPEC_OPTIONS = ("name", "id", "hostname", "template", "cores", "memory_mb", "swap_mb", "rootfs_gb", "onboot",
                "unprivileged", "features", "network", "mounts")


class LxcError(Exception):
    """A backend operation failed; the message is for the user."""


class ValidationError(LxcError):
    """The spec is not valid; nothing was touched."""


class NotFound(LxcError):
    """The container does not exist."""


class Timeout(LxcError):
    """An operation did not finish in time."""


def _bool(value, where):
    if isinstance(value, bool):
        return value
    raise ValidationError("%s must be true or false, got %r" % (where, value))


def _int(value, where, low, high=None):
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError("%s must be an integer, got %r" % (where, value))
    if value < low or (high is not None and value > high):
        bounds = "between %d and %d" % (low, high) if high is not None else "at least %d" % low
        raise ValidationError("%s must be %s, got %d" % (where, bounds, value))
    return value


def _nic(nic, pos):
    where = "network[%d]" % pos
    if not isinstance(nic, dict):
        raise ValidationError("%s must be a dict with keys %s" % (where, ", ".join(NIC_KEYS)))
    unknown = sorted(set(nic) - set(NIC_KEYS))
    if unknown:
        raise ValidationError("%s: unknown keys %s (known: %s)" % (where, ", ".join(unknown), ", ".join(NIC_KEYS)))
    out = dict((key, nic.get(key)) for key in NIC_KEYS)
    out["name"] = out["name"] or "eth%d" % pos
    if not IFNAME_RE.match(str(out["name"])):
        raise ValidationError("%s.name %r is not an interface name (1-15 of A-Z a-z 0-9 _ . -)" % (where, out["name"]))
    out["type"] = out["type"] or "veth"
    if out["type"] not in NIC_TYPES:
        raise ValidationError("%s.type must be one of %s, got %r" % (where, ", ".join(NIC_TYPES), out["type"]))
    if out["type"] == "socket" and not out["bridge"]:
        raise ValidationError("%s: a socket interface needs the OVS bridge its port is on (bridge)" % where)
    for key in ("bridge", "port"):
        if out[key] is not None and not IFNAME_RE.match(str(out[key])):
            raise ValidationError("%s.%s %r is not an interface name (1-15 of A-Z a-z 0-9 _ . -)" % (where, key, out[key]))
    address = out["address"]
    if address is not None and address not in ("dhcp", "manual"):
        try:
            iface = ipaddress.ip_interface(str(address))
        except ValueError:
            raise ValidationError("%s.address %r is not an address with a prefix (192.0.2.10/24), dhcp or manual"
                                  % (where, address)) from None
        if "/" not in str(address):
            raise ValidationError("%s.address %r needs a prefix length, e.g. %s/24" % (where, address, address))
        out["address"] = str(iface)
    if out["gateway"] is not None:
        try:
            gateway = ipaddress.ip_address(str(out["gateway"]))
        except ValueError:
            raise ValidationError("%s.gateway %r is not an IP address" % (where, out["gateway"])) from None
        if out["address"] in (None, "dhcp", "manual"):
            raise ValidationError("%s.gateway needs a static address on the same interface" % where)
        if gateway not in ipaddress.ip_interface(out["address"]).network:
            raise ValidationError("%s.gateway %s is not in %s" % (where, gateway, ipaddress.ip_interface(out["address"]).network))
        out["gateway"] = str(gateway)
    if out["hwaddr"] is not None:
        mac = str(out["hwaddr"]).lower().replace("-", ":")
        if not MAC_RE.match(mac):
            raise ValidationError("%s.hwaddr %r is not a MAC address (aa:bb:cc:dd:ee:ff)" % (where, out["hwaddr"]))
        if int(mac[:2], 16) & 1:
            raise ValidationError("%s.hwaddr %s is a multicast address; the first octet must be even" % (where, mac))
        out["hwaddr"] = mac
    return out


def _mount(mount, pos):
    where = "mounts[%d]" % pos
    if not isinstance(mount, dict):
        raise ValidationError("%s must be a dict with keys %s" % (where, ", ".join(MOUNT_KEYS)))
    unknown = sorted(set(mount) - set(MOUNT_KEYS))
    if unknown:
        raise ValidationError("%s: unknown keys %s (known: %s)" % (where, ", ".join(unknown), ", ".join(MOUNT_KEYS)))
    if not mount.get("source") or not mount.get("target"):
        raise ValidationError("%s needs source and target" % where)
    target = str(mount["target"])
    if not target.startswith("/") or "/../" in target + "/" or target == "/":
        raise ValidationError("%s.target %r must be an absolute path below / without '..'" % (where, target))
    return {"source": str(mount["source"]), "target": target.rstrip("/"),
            "readonly": _bool(mount.get("readonly", False), where + ".readonly")}


def normalise_spec(spec):
    """A validated copy of ``spec`` with every key of SPEC_KEYS (None = not managed)."""
    if not isinstance(spec, dict):
        raise ValidationError("the container spec must be a dict")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValidationError("unknown settings %s (known: %s)" % (", ".join(unknown), ", ".join(SPEC_KEYS)))
    out = dict((key, spec.get(key)) for key in SPEC_KEYS)
    if out["name"] is not None and not NAME_RE.match(str(out["name"])):
        raise ValidationError("name %r: 1-63 of A-Z a-z 0-9 _ . -, starting with a letter or digit" % (out["name"],))
    if out["id"] is not None:
        out["id"] = _int(out["id"], "id", 100, 999999999)
    if out["hostname"] is not None and not HOSTNAME_RE.match(str(out["hostname"])):
        raise ValidationError("hostname %r is not a valid host name (RFC 1123)" % (out["hostname"],))
    for key, low in (("cores", 1), ("memory_mb", 16), ("swap_mb", 0), ("rootfs_gb", 1)):
        if out[key] is not None:
            out[key] = _int(out[key], key, low, 8192 if key == "cores" else None)
    for key in ("onboot", "unprivileged"):
        if out[key] is not None:
            out[key] = _bool(out[key], key)
    if out["features"] is not None:
        if not isinstance(out["features"], dict):
            raise ValidationError("features must be a dict of %s" % ", ".join(FEATURES))
        bad = sorted(set(out["features"]) - set(FEATURES))
        if bad:
            raise ValidationError("unknown features %s (known: %s)" % (", ".join(bad), ", ".join(FEATURES)))
        out["features"] = dict((key, _bool(out["features"].get(key, False), "features.%s" % key)) for key in FEATURES)
    if out["network"] is not None:
        if not isinstance(out["network"], list):
            raise ValidationError("network must be a list of interfaces")
        out["network"] = [_nic(nic, pos) for pos, nic in enumerate(out["network"])]
        names = [nic["name"] for nic in out["network"]]
        if len(set(names)) != len(names):
            raise ValidationError("network: interface names must be unique, got %s" % ", ".join(names))
    if out["mounts"] is not None:
        if not isinstance(out["mounts"], list):
            raise ValidationError("mounts must be a list")
        out["mounts"] = [_mount(mount, pos) for pos, mount in enumerate(out["mounts"])]
    return out


def spec_changes(current, desired):
    """{key: (current value, desired value)} for every managed key (not None in desired) that differs.

    ``name``, ``id`` and ``template`` identify or create the container and are not compared.
    """
    changes = {}
    for key in SPEC_KEYS:
        if key in ("name", "id", "template") or desired.get(key) is None:
            continue
        want, have = desired[key], current.get(key)
        if key == "network" and have is not None:
            # hwaddr and port not asked for are whatever the backend chose
            have = [dict(nic, **dict((k, nic.get(k) if pos < len(want) and want[pos].get(k) else None) for k in BACKEND_CHOSEN))
                    for pos, nic in enumerate(have)]
        if want != have:
            changes[key] = (current.get(key), desired[key])
    return changes


def needs_restart(changes):
    """The changed keys that a running container only takes on its next start."""
    return sorted(key for key in changes if key in RESTART_KEYS)


class Backend:
    """What lxc_container needs from a container manager. ``ident``: name (liblxc) or VMID (Proxmox)."""

    name = None

    def list(self):
        """[{'name', 'id', 'state'}] of every container this backend sees."""
        raise NotImplementedError

    def state(self, ident):
        """'absent', 'stopped' or 'running' (a frozen container counts as running)."""
        raise NotImplementedError

    def read(self, ident):
        """The container's current spec (normalised; keys the backend cannot read are None); NotFound when absent."""
        raise NotImplementedError

    def create(self, spec, timeout):
        """Create the container from ``spec`` (it stays stopped); return its ident (a new VMID when ``id`` was None)."""
        raise NotImplementedError

    def change(self, ident, changes, timeout):
        """Apply ``changes`` ({key: (old, new)} from spec_changes); send or write only those keys."""
        raise NotImplementedError

    def start(self, ident, timeout):
        raise NotImplementedError

    def stop(self, ident, timeout, force=False):
        """Clean shutdown within ``timeout``; with ``force`` a hard stop after it."""
        raise NotImplementedError

    def destroy(self, ident, timeout):
        """Delete the container and its root filesystem (it must be stopped)."""
        raise NotImplementedError

    def addresses(self, ident):
        """{interface: [address/prefix, ...]} of a running container ({} when stopped)."""
        raise NotImplementedError
