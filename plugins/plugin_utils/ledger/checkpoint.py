# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Signed checkpoints: C2SP tlog-checkpoint bodies in C2SP signed notes, Ed25519.

A checkpoint note::

    <origin>\\n
    <tree size, decimal>\\n
    <base64 root hash>\\n
    \\n
    \\u2014 <key name> <base64(key hash (4 bytes) || Ed25519 signature (64 bytes))>\\n

The signature covers the body (the three lines, final newline included).
Key hash = SHA-256(key name || 0x0A || 0x01 || 32-byte public key)[:4]
(signed-note, Ed25519 signature type 0x01).  The key name is the origin.

Keys: ``load_or_create_key(path, name)`` keeps the private key as an
unencrypted PKCS#8 PEM file created 0600 (O_EXCL), and beside it
``<path>.pub`` holding the verifier key in the signed-note "vkey" form
``<name>+<key hash hex>+<base64(0x01 || public key)>`` (what Go's
golang.org/x/mod/sumdb/note and the C2SP tools read).

Checkpoint files: ``checkpoints/<size, 12 digits>.ckpt`` (one per signed size)
and ``checkpoints/latest`` (replaced atomically).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import os

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
except ImportError as exc:  # reported when a key is first needed, not at import
    CRYPTOGRAPHY_ERROR = exc
else:
    CRYPTOGRAPHY_ERROR = None

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import CHECKPOINTS_DIR, FILE_MODE, _fsync_dir, _mkdir

ALG_ED25519 = 0x01
EM_DASH = "\u2014"
LATEST = "latest"


class CheckpointError(ValueError):
    """A checkpoint or key is malformed, or its signature does not verify."""


def key_hash(name, public_bytes):
    """The 4-byte signed-note key hash of an Ed25519 key."""
    return hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([ALG_ED25519]) + public_bytes).digest()[:4]


def _require_cryptography():
    if CRYPTOGRAPHY_ERROR is not None:
        raise CheckpointError("signed checkpoints need the Python library cryptography (pip install cryptography): %s"
                              % CRYPTOGRAPHY_ERROR)


def _check_name(name):
    if not name or any(c.isspace() or c == "+" for c in name):
        raise CheckpointError("key name %r must be non-empty, without spaces or '+'" % name)


class Verifier:
    """A named Ed25519 public key."""

    def __init__(self, name, public_bytes):
        _require_cryptography()
        _check_name(name)
        if len(public_bytes) != 32:
            raise CheckpointError("an Ed25519 public key is 32 bytes")
        self.name = name
        self.public_bytes = bytes(public_bytes)
        self.key_hash = key_hash(name, self.public_bytes)
        self._key = Ed25519PublicKey.from_public_bytes(self.public_bytes)

    @classmethod
    def from_vkey(cls, text):
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("malformed verifier key")
        try:
            raw = base64.b64decode(parts[2], validate=True)
            expected = bytes.fromhex(parts[1])
        except (binascii.Error, ValueError) as exc:
            raise CheckpointError("malformed verifier key: %s" % exc) from exc
        if len(raw) != 33 or raw[0] != ALG_ED25519:
            raise CheckpointError("verifier key is not Ed25519")
        verifier = cls(parts[0], raw[1:])
        if verifier.key_hash != expected:
            raise CheckpointError("verifier key hash does not match its key")
        return verifier

    def vkey(self):
        return "%s+%s+%s" % (self.name, self.key_hash.hex(), base64.b64encode(bytes([ALG_ED25519]) + self.public_bytes).decode())

    def verify(self, message, signature):
        try:
            self._key.verify(signature, message)
            return True
        except InvalidSignature:
            return False


class Signer(Verifier):
    """A named Ed25519 private key."""

    def __init__(self, name, private_key):
        self.private_key = private_key
        public = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        super().__init__(name, public)

    def verifier(self):
        return Verifier(self.name, self.public_bytes)

    def sign(self, message):
        return self.private_key.sign(message)


def default_key_path(ledger_dir):
    """Where a ledger's signing key lives unless told otherwise: ``<dir>.key`` (public half ``<dir>.key.pub``).

    Beside the ledger directory, not in it: snapshots and replicas of the ledger
    never carry the private key.
    """
    return os.path.abspath(ledger_dir).rstrip("/") + ".key"


def load_or_create_key(path, name):
    """Load the signing key at ``path``, creating it (0600) and ``path.pub`` on first use."""
    _require_cryptography()
    _check_name(name)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        with open(path, "rb") as handle:
            key = serialization.load_pem_private_key(handle.read(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise CheckpointError("%s is not an Ed25519 private key" % path) from None
        if os.stat(path).st_mode & 0o077:
            raise CheckpointError("%s is readable by group or others; chmod 600 it" % path)
        signer = Signer(name, key)
    else:
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        try:
            os.write(fd, pem)
            os.fsync(fd)
        finally:
            os.close(fd)
        signer = Signer(name, key)
    pub = path + ".pub"
    if not os.path.exists(pub):
        with open(pub, "w", encoding="utf-8") as handle:
            handle.write(signer.vkey() + "\n")
        _fsync_dir(os.path.dirname(os.path.abspath(path)))
    return signer


class Checkpoint:
    """A parsed checkpoint body."""

    def __init__(self, origin, size, root, extensions=()):
        self.origin = origin
        self.size = size
        self.root = root
        self.extensions = list(extensions)

    def body(self):
        lines = [self.origin, str(self.size), base64.b64encode(self.root).decode()] + self.extensions
        return "".join(line + "\n" for line in lines)

    def __repr__(self):
        return "Checkpoint(%r, %d, %s)" % (self.origin, self.size, self.root.hex())


def sign_checkpoint(signer, origin, size, root):
    """The signed note text of a checkpoint."""
    body = Checkpoint(origin, size, root).body()
    sig = signer.sign(body.encode("utf-8"))
    return body + "\n" + "%s %s %s\n" % (EM_DASH, signer.name, base64.b64encode(signer.key_hash + sig).decode())


def parse_checkpoint(text):
    """Split a checkpoint note into (Checkpoint, body bytes, [(name, key hash, signature)])."""
    if not isinstance(text, str):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CheckpointError("checkpoint is not UTF-8") from exc
    if any(ord(c) < 0x20 and c != "\n" for c in text):
        raise CheckpointError("checkpoint contains control characters")
    cut = text.rfind("\n\n")
    if cut < 0 or not text.endswith("\n"):
        raise CheckpointError("not a signed note (no blank line before signatures)")
    body, sig_block = text[:cut + 1], text[cut + 2:]
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint body needs origin, size and root lines")
    origin, size_text, root_text = lines[0], lines[1], lines[2]
    if not origin or not size_text.isdigit() or (size_text != "0" and size_text.startswith("0")):
        raise CheckpointError("malformed origin or size line")
    try:
        root = base64.b64decode(root_text, validate=True)
    except binascii.Error as exc:
        raise CheckpointError("root hash is not base64") from exc
    if len(root) != 32:
        raise CheckpointError("root hash is not 32 bytes")
    sigs = []
    for line in sig_block[:-1].split("\n"):
        parts = line.split(" ")
        if len(parts) != 3 or parts[0] != EM_DASH:
            raise CheckpointError("malformed signature line %r" % line)
        try:
            raw = base64.b64decode(parts[2], validate=True)
        except binascii.Error as exc:
            raise CheckpointError("signature is not base64") from exc
        if len(raw) < 5:
            raise CheckpointError("signature too short")
        sigs.append((parts[1], raw[:4], raw[4:]))
    return Checkpoint(origin, int(size_text), root, lines[3:]), body.encode("utf-8"), sigs


def _as_verifier(public_key):
    if isinstance(public_key, Verifier):
        return public_key
    if isinstance(public_key, str):
        if os.path.exists(public_key):
            with open(public_key, encoding="utf-8") as handle:
                return Verifier.from_vkey(handle.read())
        return Verifier.from_vkey(public_key)
    raise CheckpointError("public_key must be a Verifier, a vkey string or a .pub file path")


def verify_checkpoint(text, public_key):
    """Verify a checkpoint note against ``public_key`` (Verifier, vkey text or .pub path).

    Returns the ``Checkpoint``; raises ``CheckpointError`` unless a signature by
    that key (matching name and key hash) is present and valid.
    """
    verifier = _as_verifier(public_key)
    ckpt, body, sigs = parse_checkpoint(text)
    for name, khash, sig in sigs:
        if name == verifier.name and khash == verifier.key_hash:
            if len(sig) == 64 and verifier.verify(body, sig):
                return ckpt
            raise CheckpointError("signature by %s does not verify" % name)
    raise CheckpointError("no signature by key %s+%s" % (verifier.name, verifier.key_hash.hex()))


def _write_atomic(path, data):
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def write_checkpoint(ledger, signer, origin=None):
    """Sign the ledger's current size and root; store it in checkpoints/; return the note text."""
    origin = origin or signer.name
    size = ledger.size
    text = sign_checkpoint(signer, origin, size, ledger.root(size))
    cdir = os.path.join(ledger.path, CHECKPOINTS_DIR)
    _mkdir(cdir)
    data = text.encode("utf-8")
    _write_atomic(os.path.join(cdir, "%012d.ckpt" % size), data)
    _write_atomic(os.path.join(cdir, LATEST), data)
    _fsync_dir(cdir)
    return text


def list_checkpoints(path):
    """Sorted [(file name, text)] of the stored checkpoints of ledger directory ``path``."""
    cdir = os.path.join(path, CHECKPOINTS_DIR)
    if not os.path.isdir(cdir):
        return []
    out = []
    for name in sorted(os.listdir(cdir)):
        if name.endswith(".ckpt") or name == LATEST:
            with open(os.path.join(cdir, name), "rb") as handle:
                out.append((name, handle.read()))
    return out
