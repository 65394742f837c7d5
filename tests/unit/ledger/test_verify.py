# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Tampering with a ledger directory: each kind is detected and located."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import (
    load_or_create_key, sign_checkpoint, write_checkpoint,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import MerkleTree
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import GENESIS_PREV, record_hash, record_line
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import INDEX_FILE, leaf_of
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify

N = 30
SEG = 10  # records per segment: seg-000000 holds 0..9, seg-000001 10..19, seg-000002 20..29


@pytest.fixture
def signed(make_ledger, tmp_path):
    """A ledger of N records in 3 segments with checkpoints at 20 and 30; returns (path, signer, trusted note at 30)."""
    path, ledger = make_ledger(20, max_records=SEG)
    signer = load_or_create_key(str(tmp_path / "ledger.key"), "example.com/ledger")
    write_checkpoint(ledger, signer)
    ledger.append([{"task": "t%d" % i, "result": {"i": i}} for i in range(20, N)])
    trusted = write_checkpoint(ledger, signer)
    ledger.close()
    return path, signer, trusted


def seg(path, i):
    return os.path.join(path, "records", "seg-%06d.jsonl" % i)


def read_lines(path, i):
    with open(seg(path, i), "rb") as handle:
        return handle.read().split(b"\n")[:-1]


def write_lines(path, i, lines):
    with open(seg(path, i), "wb") as handle:
        handle.write(b"".join(line + b"\n" for line in lines))


def edit(path, seq, change, rehash=False):
    lines = read_lines(path, seq // SEG)
    rec = json.loads(lines[seq % SEG])
    change(rec)
    if rehash:
        rec["hash"] = record_hash(rec)
    lines[seq % SEG] = record_line(rec)
    write_lines(path, seq // SEG, lines)
    return rec


def rebuild_index(path):
    leaves = []
    for i in range(3):
        if os.path.exists(seg(path, i)):
            leaves += [leaf_of(json.loads(line)["hash"]) for line in read_lines(path, i)]
    with open(os.path.join(path, INDEX_FILE), "wb") as handle:
        handle.write(b"".join(leaves))


def check(path, signer, what, seq=None, trusted=None):
    report = verify(path, public_key=signer.vkey(), trusted_checkpoint=trusted)
    assert not report.ok, "tampering not detected"
    first = report.first_problem
    assert what in first.what, report.problems
    if seq is not None:
        assert first.seq == seq, report.problems
        assert first.segment == "seg-%06d.jsonl" % (seq // SEG) and first.line == seq % SEG + 1
    return report


def test_clean_ledger_verifies(signed):
    path, signer, trusted = signed
    report = verify(path, public_key=signer.vkey(), trusted_checkpoint=trusted)
    assert report.ok, report.problems
    assert report.size == N and report.checkpoints_verified == 3 and report.trusted_checked


def test_01_byte_flipped_in_result(signed):
    path, signer, _t = signed
    lines = read_lines(path, 1)
    lines[3] = lines[3].replace(b'"rc":0', b'"rc":1')
    write_lines(path, 1, lines)
    check(path, signer, "hash mismatch", 13)


def test_02_byte_flipped_in_hash(signed):
    path, signer, _t = signed
    edit(path, 5, lambda r: r.update(hash=("1" if r["hash"][0] != "1" else "2") + r["hash"][1:]))
    check(path, signer, "hash mismatch", 5)


def test_03_byte_flipped_in_prev(signed):
    path, signer, _t = signed
    edit(path, 7, lambda r: r.update(prev=("1" if r["prev"][0] != "1" else "2") + r["prev"][1:]))
    check(path, signer, "hash mismatch", 7)


def test_04_record_deleted(signed):
    path, signer, _t = signed
    lines = read_lines(path, 0)
    del lines[4]
    write_lines(path, 0, lines)
    check(path, signer, "seq gap", 4)


def test_05_records_swapped(signed):
    path, signer, _t = signed
    lines = read_lines(path, 2)
    lines[2], lines[3] = lines[3], lines[2]
    write_lines(path, 2, lines)
    check(path, signer, "seq gap", 22)


def test_06_tail_truncated_without_trusted_checkpoint_is_invisible(signed):
    path, signer, _t = signed
    os.remove(seg(path, 2))
    for name in os.listdir(os.path.join(path, "checkpoints")):
        if name != "000000000020.ckpt":
            os.remove(os.path.join(path, "checkpoints", name))
    rebuild_index(path)
    report = verify(path, public_key=signer.vkey())
    assert report.ok and report.size == 20
    assert any("truncation" in note for note in report.notes)


def test_07_tail_truncated_with_trusted_checkpoint(signed):
    path, signer, trusted = signed
    os.remove(seg(path, 2))
    for name in os.listdir(os.path.join(path, "checkpoints")):
        if name != "000000000020.ckpt":
            os.remove(os.path.join(path, "checkpoints", name))
    rebuild_index(path)
    report = check(path, signer, "log truncated", 19, trusted=trusted)
    assert "size 30" in report.first_problem.detail


def test_08_tail_truncated_stored_checkpoint_left(signed):
    path, signer, _t = signed
    os.remove(seg(path, 2))
    rebuild_index(path)
    check(path, signer, "checkpoint beyond log", 19)


def test_09_segment_contents_swapped(signed):
    path, signer, _t = signed
    os.rename(seg(path, 0), seg(path, 9))
    os.rename(seg(path, 1), seg(path, 0))
    os.rename(seg(path, 9), seg(path, 1))
    check(path, signer, "seq gap", 0)


def test_10_segments_renamed_out_of_order(signed):
    path, signer, _t = signed
    os.rename(seg(path, 1), seg(path, 5))
    report = check(path, signer, "segment sequence")
    assert any(p.what == "seq gap" and p.seq == 10 for p in report.problems)


def test_11_index_tampered(signed):
    path, signer, _t = signed
    with open(os.path.join(path, INDEX_FILE), "r+b") as handle:
        handle.seek(32 * 12)
        handle.write(b"\0" * 32)
    check(path, signer, "index mismatch", 12)


def test_12_index_truncated(signed):
    path, signer, _t = signed
    with open(os.path.join(path, INDEX_FILE), "r+b") as handle:
        handle.truncate(32 * 29)
    check(path, signer, "index length")


def test_13_checkpoint_forged_without_key(signed):
    path, signer, _t = signed
    name = os.path.join(path, "checkpoints", "000000000020.ckpt")
    with open(name, encoding="utf-8") as handle:
        body, sig = handle.read().split("\n\n")
    lines = body.split("\n")
    lines[2] = base64.b64encode(b"\5" * 32).decode()
    with open(name, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n\n" + sig)
    check(path, signer, "checkpoint signature")


def test_14_checkpoint_root_mismatch(signed):
    path, signer, _t = signed
    with open(os.path.join(path, "checkpoints", "000000000025.ckpt"), "w", encoding="utf-8") as handle:
        handle.write(sign_checkpoint(signer, "example.com/ledger", 25, b"\6" * 32))
    check(path, signer, "checkpoint root mismatch", 20)


def test_15_checkpoint_signed_by_another_key(signed, tmp_path):
    path, signer, _t = signed
    other = load_or_create_key(str(tmp_path / "other.key"), "example.com/ledger")
    with open(os.path.join(path, INDEX_FILE), "rb") as handle:
        tree = MerkleTree.from_leaf_hashes(handle.read())
    with open(os.path.join(path, "checkpoints", "000000000030.ckpt"), "w", encoding="utf-8") as handle:
        handle.write(sign_checkpoint(other, "example.com/ledger", 30, tree.root()))
    check(path, signer, "checkpoint signature")


def test_16_record_inserted_in_middle(signed):
    path, signer, _t = signed
    lines = read_lines(path, 1)
    lines.insert(5, lines[4])
    write_lines(path, 1, lines)
    check(path, signer, "duplicate seq", 15)


def test_17_seq_gap_rehashed(signed):
    path, signer, _t = signed
    edit(path, 16, lambda r: r.update(seq=17), rehash=True)
    check(path, signer, "seq gap", 16)


def test_18_duplicate_seq_rehashed(signed):
    path, signer, _t = signed
    edit(path, 16, lambda r: r.update(seq=15), rehash=True)
    check(path, signer, "duplicate seq", 16)


def test_19_rewritten_with_recomputed_hash_breaks_next_prev(signed):
    path, signer, _t = signed
    edit(path, 8, lambda r: r["result"].update(rc=99), rehash=True)
    report = check(path, signer, "chain broken", 9)
    assert not any(p.what == "hash mismatch" for p in report.problems)


def test_20_everything_rewritten_consistently_caught_by_checkpoint(signed):
    path, signer, trusted = signed
    prev = GENESIS_PREV
    for i in range(3):
        lines = []
        for line in read_lines(path, i):
            rec = json.loads(line)
            if rec["seq"] == 3:
                rec["result"] = {"rc": 0, "stdout": "nothing to see"}
            rec["prev"] = prev
            rec["hash"] = record_hash(rec)
            prev = rec["hash"]
            lines.append(record_line(rec))
        write_lines(path, i, lines)
    rebuild_index(path)
    # Chain, hashes and index are all consistent again: only checkpoints can tell.
    report = check(path, signer, "checkpoint root mismatch", 0)
    assert all(p.what == "checkpoint root mismatch" for p in report.problems)
    # Even with the stored checkpoints removed, the checkpoint held elsewhere catches it.
    for name in os.listdir(os.path.join(path, "checkpoints")):
        os.remove(os.path.join(path, "checkpoints", name))
    assert verify(path, public_key=signer.vkey()).ok
    check(path, signer, "not consistent with trusted checkpoint", trusted=trusted)


def test_21_stray_segment_appended(signed):
    path, signer, _t = signed
    write_lines(path, 5, read_lines(path, 2))
    check(path, signer, "segment sequence")


def test_22_record_reverted_to_older_content_with_valid_line(signed):
    path, signer, _t = signed
    lines0 = read_lines(path, 0)
    lines1 = read_lines(path, 1)
    lines1[0] = lines0[0]
    write_lines(path, 1, lines1)
    check(path, signer, "duplicate seq", 10)


def test_23_unparseable_line_in_middle(signed):
    path, signer, _t = signed
    lines = read_lines(path, 0)
    lines[6] = lines[6][:40]
    write_lines(path, 0, lines)
    check(path, signer, "unreadable record", 6)


def test_24_trusted_checkpoint_forged(signed, tmp_path):
    path, signer, _t = signed
    other = load_or_create_key(str(tmp_path / "other.key"), "example.com/ledger")
    forged = sign_checkpoint(other, "example.com/ledger", 30, b"\1" * 32)
    check(path, signer, "trusted checkpoint", trusted=forged)


def test_25_partial_last_line_reported_by_verify(signed):
    path, signer, _t = signed
    with open(seg(path, 2), "ab") as handle:
        handle.write(b'{"seq":30')
    first = check(path, signer, "partial line").first_problem
    assert (first.seq, first.segment, first.line) == (30, "seg-000002.jsonl", 11)
