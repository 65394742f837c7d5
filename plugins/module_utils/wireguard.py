# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard: Curve25519 keys (cryptography) and the cross-platform userspace API (UAPI).

Keys are the base64 of 32 bytes, as ``wg`` prints them. The UAPI is the line protocol every
userspace implementation (wireguard-go, boringtun) serves on ``/var/run/wireguard/<ifname>.sock``:
``get=1`` answers ``key=value`` lines ending with ``errno=0`` and a blank line. Only what is needed
to watch a tunnel is read here; the private key the answer starts with is dropped on arrival and
never returned.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import os
import socket
import time

KEY_LEN = 32
# /var/run is a link to /run on current systems; the real directory, so that the path also works below
# /proc/PID/root (an absolute link there would resolve on the host).
UAPI_DIR = "/run/wireguard"
# A handshake older than this (REJECT_AFTER_TIME, 180 s) means the session is gone.
HANDSHAKE_FRESH = 180


class WireGuardError(Exception):
    pass


def _crypto():
    try:
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
        from cryptography.hazmat.primitives import serialization
    except ImportError as exc:  # pragma: no cover - cryptography is a dependency
        raise WireGuardError("WireGuard keys need the Python package cryptography: %s" % exc)
    return X25519PrivateKey, serialization


def check_key(text, what="key"):
    """The key ``text`` (base64 of 32 bytes), stripped; ValueError naming ``what`` otherwise (never the value)."""
    if not isinstance(text, str):
        raise ValueError("%s must be a string (base64 of 32 bytes)" % what)
    text = text.strip()
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise ValueError("%s is not base64 (a WireGuard key is 44 characters of base64)" % what)
    if len(raw) != KEY_LEN:
        raise ValueError("%s decodes to %d bytes, not %d" % (what, len(raw), KEY_LEN))
    return text


def generate_private():
    """A new private key (base64), clamped as Curve25519 wants."""
    key_class, serialization = _crypto()
    raw = key_class.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                             serialization.NoEncryption())
    return base64.b64encode(raw).decode("ascii")


def public_key(private):
    """The public key (base64) of a private key (base64)."""
    key_class, serialization = _crypto()
    raw = base64.b64decode(check_key(private, "private key"))
    pub = key_class.from_private_bytes(raw).public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(pub).decode("ascii")


def hex_to_b64(text):
    return base64.b64encode(binascii.unhexlify(text)).decode("ascii")


def parse_get(text):
    """The answer to ``get=1`` as {'listen_port', 'public_key'?, 'peers': [...]} (no private key)."""
    device = {"listen_port": None, "peers": []}
    peer = None
    errno_value = None
    for line in text.splitlines():
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise WireGuardError("malformed UAPI line %r" % line[:40])
        if key == "errno":
            try:
                errno_value = int(value)
            except ValueError:
                raise WireGuardError("malformed UAPI errno %r" % value[:20])
        elif key == "private_key":
            continue  # never kept
        elif key == "listen_port":
            device["listen_port"] = int(value)
        elif key == "fwmark":
            device["fwmark"] = int(value)
        elif key == "public_key":
            peer = {"public_key": hex_to_b64(value), "endpoint": None, "allowed_ips": [],
                    "last_handshake": 0, "rx_bytes": 0, "tx_bytes": 0, "persistent_keepalive": 0}
            device["peers"].append(peer)
        elif peer is None:
            continue
        elif key == "endpoint":
            peer["endpoint"] = value
        elif key == "allowed_ip":
            peer["allowed_ips"].append(value)
        elif key == "last_handshake_time_sec":
            peer["last_handshake"] = int(value)
        elif key in ("rx_bytes", "tx_bytes"):
            peer[key] = int(value)
        elif key == "persistent_keepalive_interval":
            peer["persistent_keepalive"] = int(value)
    if errno_value is None:
        raise WireGuardError("the UAPI answer has no errno line")
    if errno_value != 0:
        raise WireGuardError("the UAPI answered errno=%d" % errno_value)
    return device


def socket_path(ifname, root="/"):
    """Where the UAPI socket of ``ifname`` is, below ``root`` (e.g. ``/proc/PID/root`` for a container)."""
    return os.path.join(root, UAPI_DIR.lstrip("/"), "%s.sock" % ifname)


def get_device(path, timeout=5.0):
    """Read a device over its UAPI socket at ``path``."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout)
    try:
        try:
            sock.connect(path)
        except (OSError, socket.error) as exc:
            raise WireGuardError("no WireGuard device answers on %s: %s" % (path, exc.strerror or exc))
        sock.sendall(b"get=1\n\n")
        chunks = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            if b"".join(chunks[-2:]).endswith(b"\n\n"):
                break
    except socket.timeout:
        raise WireGuardError("the WireGuard device on %s did not answer within %ss" % (path, timeout))
    finally:
        sock.close()
    return parse_get(b"".join(chunks).decode("ascii", "replace"))


def handshake_age(peer, now=None):
    """Seconds since the peer's last handshake, or None if there was none."""
    if not peer.get("last_handshake"):
        return None
    return max(0, int((now if now is not None else time.time()) - peer["last_handshake"]))
