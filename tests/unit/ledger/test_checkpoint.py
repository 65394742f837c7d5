# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import os
import stat

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import (
    EM_DASH, CheckpointError, Verifier, load_or_create_key, list_checkpoints, sign_checkpoint, verify_checkpoint,
    write_checkpoint,
)


def test_key_created_0600_and_reloaded(tmp_path):
    path = str(tmp_path / "ledger.key")
    signer = load_or_create_key(path, "example.com/ledger")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path + ".pub", encoding="utf-8") as handle:
        vkey = handle.read().strip()
    assert vkey == signer.vkey() and vkey.startswith("example.com/ledger+")
    again = load_or_create_key(path, "example.com/ledger")
    assert again.public_bytes == signer.public_bytes
    os.chmod(path, 0o644)
    with pytest.raises(CheckpointError):
        load_or_create_key(path, "example.com/ledger")


def test_note_format_and_key_hash(tmp_path):
    signer = load_or_create_key(str(tmp_path / "k"), "example.com/ledger")
    root = hashlib.sha256(b"x").digest()
    text = sign_checkpoint(signer, "example.com/ledger", 42, root)
    body, sigs = text.split("\n\n")
    assert body == "example.com/ledger\n42\n" + base64.b64encode(root).decode()
    dash, name, blob = sigs.rstrip("\n").split(" ")
    assert dash == EM_DASH and name == "example.com/ledger"
    raw = base64.b64decode(blob)
    assert raw[:4] == hashlib.sha256(b"example.com/ledger\n\x01" + signer.public_bytes).digest()[:4]
    assert len(raw) == 68
    ckpt = verify_checkpoint(text, signer.vkey())
    assert (ckpt.origin, ckpt.size, ckpt.root) == ("example.com/ledger", 42, root)
    assert verify_checkpoint(text, str(tmp_path / "k.pub")).size == 42
    assert Verifier.from_vkey(signer.vkey()).key_hash == signer.key_hash


def test_tampered_or_foreign_checkpoints_refused(tmp_path):
    signer = load_or_create_key(str(tmp_path / "k"), "example.com/ledger")
    other = load_or_create_key(str(tmp_path / "o"), "example.com/ledger")
    text = sign_checkpoint(signer, "example.com/ledger", 42, b"\1" * 32)
    bad = [text.replace("\n42\n", "\n43\n"), sign_checkpoint(other, "example.com/ledger", 42, b"\1" * 32),
           text.replace(EM_DASH, "-"), text.split("\n\n")[0] + "\n", "garbage", text[:-3] + "\n"]
    for note in bad:
        with pytest.raises(CheckpointError):
            verify_checkpoint(note, signer.vkey())


def test_write_checkpoint_files(make_ledger, tmp_path):
    path, ledger = make_ledger(10)
    signer = load_or_create_key(str(tmp_path / "k"), "example.com/ledger")
    first = write_checkpoint(ledger, signer)
    ledger.append([{"task": "more"}])
    second = write_checkpoint(ledger, signer)
    names = [n for n, _t in list_checkpoints(path)]
    assert names == ["000000000010.ckpt", "000000000011.ckpt", "latest"]
    assert dict(list_checkpoints(path))["latest"].decode() == second
    assert verify_checkpoint(first, signer).root == ledger.root(10)
