# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""wireguard: keys (against RFC 7748's test vector) and the UAPI client, against a socket served by the test."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import shutil
import socket
import tempfile
import threading
import time

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import wireguard

# RFC 7748 section 6.1: Alice's private key a and her public key X25519(a, 9); Bob's pair.
ALICE_PRIVATE_HEX = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
ALICE_PUBLIC_HEX = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
BOB_PRIVATE_HEX = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
BOB_PUBLIC_HEX = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
ALICE_PRIVATE = base64.b64encode(bytes.fromhex(ALICE_PRIVATE_HEX)).decode("ascii")
ALICE_PUBLIC = base64.b64encode(bytes.fromhex(ALICE_PUBLIC_HEX)).decode("ascii")
BOB_PUBLIC = base64.b64encode(bytes.fromhex(BOB_PUBLIC_HEX)).decode("ascii")

# What wireguard-go answers to get=1 for a device with two peers (one never handshaken).
UAPI_ANSWER = (
    "private_key=%(priv)s\n"
    "listen_port=51820\n"
    "fwmark=0\n"
    "public_key=%(peer1)s\n"
    "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\n"
    "endpoint=198.51.100.7:40123\n"
    "last_handshake_time_sec=1700000000\n"
    "last_handshake_time_nsec=123456789\n"
    "tx_bytes=4242\n"
    "rx_bytes=9000\n"
    "persistent_keepalive_interval=25\n"
    "allowed_ip=10.200.0.2/32\n"
    "allowed_ip=fd00::2/128\n"
    "public_key=%(peer2)s\n"
    "preshared_key=0000000000000000000000000000000000000000000000000000000000000000\n"
    "protocol_version=1\n"
    "last_handshake_time_sec=0\n"
    "last_handshake_time_nsec=0\n"
    "tx_bytes=0\n"
    "rx_bytes=0\n"
    "persistent_keepalive_interval=0\n"
    "allowed_ip=10.200.0.3/32\n"
    "errno=0\n"
    "\n"
) % {"priv": ALICE_PRIVATE_HEX, "peer1": ALICE_PUBLIC_HEX, "peer2": BOB_PUBLIC_HEX}


# ------------------------------------------------------------------------------------------------
# keys
# ------------------------------------------------------------------------------------------------

def test_check_key_good():
    assert wireguard.check_key(ALICE_PUBLIC) == ALICE_PUBLIC
    assert wireguard.check_key("  %s\n" % ALICE_PUBLIC) == ALICE_PUBLIC


@pytest.mark.parametrize("value, expected", [
    ("not base64 at all!", "not base64"),
    ("QUJD*EVG", "not base64"),
    (base64.b64encode(b"s" * 31).decode("ascii"), "decodes to 31 bytes, not 32"),
    (base64.b64encode(b"s" * 33).decode("ascii"), "decodes to 33 bytes, not 32"),
    (base64.b64encode(b"secret").decode("ascii"), "decodes to 6 bytes"),
    ("", "decodes to 0 bytes"),
    (ALICE_PUBLIC[:-1], "not base64"),
    ("\u00e9" * 44, "not base64"),
    (None, "must be a string"),
    (b"bytes-are-not-a-key", "must be a string"),
    (42, "must be a string"),
])
def test_check_key_bad(value, expected):
    with pytest.raises(ValueError) as err:
        wireguard.check_key(value, "the secret thing")
    message = str(err.value)
    assert message.startswith("the secret thing ")
    assert expected in message
    if isinstance(value, str) and value:
        assert value.strip() not in message


def test_check_key_message_never_holds_the_value():
    secret = base64.b64encode(b"a very secret private key").decode("ascii")
    with pytest.raises(ValueError) as err:
        wireguard.check_key(secret, "private key")
    assert secret not in str(err.value) and "private key" in str(err.value)


def test_public_key_rfc7748_vector():
    assert wireguard.public_key(ALICE_PRIVATE) == ALICE_PUBLIC
    bob_private = base64.b64encode(bytes.fromhex(BOB_PRIVATE_HEX)).decode("ascii")
    assert wireguard.public_key(bob_private) == BOB_PUBLIC


def test_public_key_refuses_bad_private_key_without_echoing_it():
    bad = base64.b64encode(b"x" * 16).decode("ascii")
    with pytest.raises(ValueError) as err:
        wireguard.public_key(bad)
    assert "private key" in str(err.value) and bad not in str(err.value)


def test_generate_private():
    first, second = wireguard.generate_private(), wireguard.generate_private()
    assert first != second
    for key in (first, second):
        assert len(key) == 44 and wireguard.check_key(key) == key
        raw = base64.b64decode(key)
        # clamped as Curve25519 wants
        assert raw[0] & 7 == 0
        assert raw[31] & 0x80 == 0 and raw[31] & 0x40 == 0x40
        public = wireguard.public_key(key)
        assert wireguard.check_key(public) == public and public != key


def test_hex_to_b64():
    assert wireguard.hex_to_b64(ALICE_PUBLIC_HEX) == ALICE_PUBLIC


# ------------------------------------------------------------------------------------------------
# UAPI answers
# ------------------------------------------------------------------------------------------------

def test_parse_get():
    device = wireguard.parse_get(UAPI_ANSWER)
    assert device == {
        "listen_port": 51820,
        "fwmark": 0,
        "peers": [
            {"public_key": ALICE_PUBLIC, "endpoint": "198.51.100.7:40123", "allowed_ips": ["10.200.0.2/32", "fd00::2/128"],
             "last_handshake": 1700000000, "rx_bytes": 9000, "tx_bytes": 4242, "persistent_keepalive": 25},
            {"public_key": BOB_PUBLIC, "endpoint": None, "allowed_ips": ["10.200.0.3/32"],
             "last_handshake": 0, "rx_bytes": 0, "tx_bytes": 0, "persistent_keepalive": 0},
        ],
    }
    text = repr(device)
    assert "private_key" not in text
    assert ALICE_PRIVATE_HEX not in text and ALICE_PRIVATE not in text


def test_parse_get_empty_device():
    assert wireguard.parse_get("listen_port=0\nerrno=0\n\n") == {"listen_port": 0, "peers": []}
    assert wireguard.parse_get("errno=0\n") == {"listen_port": None, "peers": []}


def test_parse_get_errno_raises():
    with pytest.raises(wireguard.WireGuardError, match="errno=19"):
        wireguard.parse_get("errno=19\n\n")
    with pytest.raises(wireguard.WireGuardError, match="errno=1"):
        wireguard.parse_get(UAPI_ANSWER.replace("errno=0", "errno=1"))


def test_parse_get_missing_errno_raises():
    truncated = UAPI_ANSWER.replace("errno=0\n", "")
    with pytest.raises(wireguard.WireGuardError, match="no errno"):
        wireguard.parse_get(truncated)
    with pytest.raises(wireguard.WireGuardError, match="no errno"):
        wireguard.parse_get("")


def test_parse_get_malformed_line():
    with pytest.raises(wireguard.WireGuardError, match="malformed"):
        wireguard.parse_get("listen_port=1\ngarbage\nerrno=0\n")


def test_parse_get_peer_keys_before_any_peer_are_ignored():
    device = wireguard.parse_get("endpoint=1.2.3.4:5\nallowed_ip=0.0.0.0/0\nerrno=0\n")
    assert device["peers"] == []


# ------------------------------------------------------------------------------------------------
# UAPI socket
# ------------------------------------------------------------------------------------------------

class FakeWireGuardGo(object):
    """Serves the UAPI on a unix socket like wireguard-go: reads a request up to the blank line, answers with
    lines and a blank line, and keeps the connection open for the next request (it never closes first)."""

    def __init__(self, path, answer, chunk=None, delay=0.0, silent=False):
        self.path, self.answer, self.chunk, self.delay, self.silent = path, answer, chunk, delay, silent
        self.requests = []
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(path)
        self.listener.listen(1)
        self.thread = threading.Thread(target=self.serve)
        self.thread.daemon = True
        self.thread.start()

    def serve(self):
        try:
            conn = self.listener.accept()[0]
        except OSError:
            return
        conn.settimeout(10)
        try:
            request = b""
            while not request.endswith(b"\n\n"):
                data = conn.recv(4096)
                if not data:
                    return
                request += data
            self.requests.append(request)
            if not self.silent:
                payload = self.answer.encode("ascii")
                size = self.chunk or len(payload)
                for start in range(0, len(payload), size):
                    conn.sendall(payload[start:start + size])
                    if self.delay:
                        time.sleep(self.delay)
            # like wireguard-go: wait for the next request or for the client to hang up
            while conn.recv(4096):
                pass
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.listener.close()
        self.thread.join(10)


@pytest.fixture
def sockdir():
    # unix socket paths are limited to 107 bytes: a short directory, not tmp_path
    path = tempfile.mkdtemp(prefix="wgu", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.parametrize("chunk, delay", [(None, 0.0), (7, 0.001), (1, 0.0)])
def test_get_device_over_socket(sockdir, chunk, delay):
    path = os.path.join(sockdir, "wg0.sock")
    server = FakeWireGuardGo(path, UAPI_ANSWER, chunk=chunk, delay=delay)
    try:
        started = time.time()
        device = wireguard.get_device(path, timeout=5.0)
        elapsed = time.time() - started
    finally:
        server.close()
    assert server.requests == [b"get=1\n\n"]
    assert device == wireguard.parse_get(UAPI_ANSWER)
    assert [p["public_key"] for p in device["peers"]] == [ALICE_PUBLIC, BOB_PUBLIC]
    assert ALICE_PRIVATE_HEX not in repr(device)
    # the answer ends at the blank line: the client does not wait for the server to hang up
    assert elapsed < 4.0


def test_get_device_split_blank_line(sockdir):
    """The closing blank line split across two reads still ends the answer."""
    path = os.path.join(sockdir, "wg0.sock")
    server = FakeWireGuardGo(path, UAPI_ANSWER, chunk=len(UAPI_ANSWER) - 1, delay=0.05)
    try:
        device = wireguard.get_device(path, timeout=5.0)
    finally:
        server.close()
    assert device["listen_port"] == 51820 and len(device["peers"]) == 2


def test_get_device_errno(sockdir):
    path = os.path.join(sockdir, "wg0.sock")
    server = FakeWireGuardGo(path, "errno=19\n\n")
    try:
        with pytest.raises(wireguard.WireGuardError, match="errno=19"):
            wireguard.get_device(path, timeout=5.0)
    finally:
        server.close()


def test_get_device_no_socket(sockdir):
    path = os.path.join(sockdir, "missing.sock")
    with pytest.raises(wireguard.WireGuardError, match="no WireGuard device answers on %s" % path):
        wireguard.get_device(path, timeout=1.0)


def test_get_device_not_a_socket(sockdir):
    path = os.path.join(sockdir, "plain")
    with open(path, "w") as handle:
        handle.write("x")
    with pytest.raises(wireguard.WireGuardError, match="no WireGuard device answers"):
        wireguard.get_device(path, timeout=1.0)


def test_get_device_silent_server_times_out(sockdir):
    path = os.path.join(sockdir, "wg0.sock")
    server = FakeWireGuardGo(path, UAPI_ANSWER, silent=True)
    try:
        started = time.time()
        with pytest.raises(wireguard.WireGuardError, match="did not answer within"):
            wireguard.get_device(path, timeout=0.5)
        assert time.time() - started < 3.0
    finally:
        server.close()


# ------------------------------------------------------------------------------------------------
# paths and ages
# ------------------------------------------------------------------------------------------------

def test_socket_path():
    assert wireguard.socket_path("wg0") == "/run/wireguard/wg0.sock"
    assert wireguard.socket_path("wgwarp", "/proc/1234/root") == "/proc/1234/root/run/wireguard/wgwarp.sock"
    assert wireguard.socket_path("wg0", "/proc/1234/root/") == "/proc/1234/root/run/wireguard/wg0.sock"


def test_handshake_age():
    assert wireguard.handshake_age({"last_handshake": 0}) is None
    assert wireguard.handshake_age({}) is None
    assert wireguard.handshake_age({"last_handshake": 1000}, now=1180) == 180
    assert wireguard.handshake_age({"last_handshake": 1000}, now=1000.9) == 0
    assert wireguard.handshake_age({"last_handshake": 2000}, now=1000) == 0  # clock skew: never negative
    age = wireguard.handshake_age({"last_handshake": int(time.time()) - 30})
    assert 29 <= age <= 40
