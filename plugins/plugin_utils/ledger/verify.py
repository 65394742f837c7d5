# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Offline verification of a ledger directory (read-only; never repairs).

``verify(path, public_key=None, trusted_checkpoint=None)`` checks, in order:

1. segment names: ``seg-000000.jsonl`` onwards with no gap;
2. every record: a whole line, valid JSON of the record shape, ``hash`` equal
   to the SHA-256 of its canonical encoding, ``seq`` equal to its position,
   ``prev`` equal to the previous record's hash;
3. ``leaves.idx``: one 32-byte entry per record, each the leaf hash of the record;
4. the Merkle root over the recomputed leaves;
5. every stored checkpoint: its signature (when ``public_key`` is given) and that
   its root equals the root of the log's first ``size`` records;
6. ``trusted_checkpoint`` (a note held elsewhere): signature, size not beyond
   the log, and a consistency proof from it to the current log.

Truncating the tail (and rewriting the stored checkpoints along with it) cannot
be seen from inside the directory: only a checkpoint held elsewhere catches it.
The report's ``notes`` say so whenever no trusted checkpoint was given.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import (
    CheckpointError, parse_checkpoint, verify_checkpoint, list_checkpoints, _as_verifier,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import (
    HASH_SIZE, MerkleTree, verify_consistency,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import (
    GENESIS_PREV, RecordError, parse_line, record_hash,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import (
    INDEX_FILE, RECORDS_DIR, leaf_of, list_segments, segment_name,
)

MAX_PROBLEMS = 100


class Problem:
    """One failed check. ``seq``/``segment``/``line`` locate it when it concerns a record."""

    def __init__(self, what, detail, seq=None, segment=None, line=None):
        self.what = what
        self.detail = detail
        self.seq = seq
        self.segment = segment
        self.line = line

    def to_dict(self):
        return {"what": self.what, "detail": self.detail, "seq": self.seq, "segment": self.segment, "line": self.line}

    def __str__(self):
        where = ""
        if self.seq is not None:
            where = "record %d (%s line %s): " % (self.seq, self.segment, self.line)
        elif self.segment is not None:
            where = "%s: " % self.segment
        return "%s%s: %s" % (where, self.what, self.detail)

    __repr__ = __str__


class VerifyReport:
    """The outcome of ``verify``; ``ok`` is True only when no problem was found."""

    def __init__(self, path):
        self.path = path
        self.size = 0
        self.root = None
        self.problems = []
        self.checkpoints_verified = 0
        self.checkpoints_unsigned_checked = 0
        self.trusted_checked = False
        self.notes = []

    @property
    def ok(self):
        return not self.problems

    @property
    def first_problem(self):
        return self.problems[0] if self.problems else None

    def add(self, *args, **kwargs):
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(*args, **kwargs))

    def to_dict(self):
        return {
            "ok": self.ok, "path": self.path, "size": self.size,
            "root": self.root.hex() if self.root else None,
            "problems": [p.to_dict() for p in self.problems],
            "checkpoints_verified": self.checkpoints_verified,
            "trusted_checked": self.trusted_checked, "notes": list(self.notes),
        }

    def summary(self):
        if self.ok:
            return "ledger OK: %d records, root %s" % (self.size, self.root.hex())
        return "ledger FAILED: %s" % self.first_problem


def _check_records(path, report):
    """Steps 1 and 2; returns (recomputed leaf hashes, [(segment, line)] per record)."""
    rdir = os.path.join(path, RECORDS_DIR)
    leaves = []
    where = []
    if not os.path.isdir(rdir):
        return leaves, where
    segs = list_segments(rdir)
    for pos, (ordinal, name) in enumerate(segs):
        if ordinal != pos:
            report.add("segment sequence", "found %s where %s was expected (segment missing or renamed)"
                       % (name, segment_name(pos)), segment=name)
            break
    stray = sorted(set(os.listdir(rdir)) - {name for _o, name in segs})
    if stray:
        report.add("stray file", "unexpected files in records/: %s" % ", ".join(stray))
    expected_seq = 0
    prev = GENESIS_PREV
    for _ordinal, name in segs:
        with open(os.path.join(rdir, name), "rb") as handle:
            data = handle.read()
        lines = data.split(b"\n")
        partial = lines.pop()
        if partial:
            lines.append(partial)
        for lineno, line in enumerate(lines, 1):
            seq = expected_seq
            if partial and lineno == len(lines):
                report.add("partial line", "the segment's last line has no newline (torn tail; open() repairs it)",
                           seq=seq, segment=name, line=lineno)
            try:
                rec = parse_line(line)
            except RecordError as exc:
                report.add("unreadable record", str(exc), seq=seq, segment=name, line=lineno)
                leaves.append(None)
                where.append((name, lineno))
                expected_seq += 1
                prev = None
                continue
            actual = record_hash(rec)
            if actual != rec["hash"]:
                report.add("hash mismatch", "stored hash %s, content hashes to %s (record altered)" % (rec["hash"][:16], actual[:16]),
                           seq=seq, segment=name, line=lineno)
            if rec["seq"] != seq:
                kind = "duplicate seq" if rec["seq"] < seq else "seq gap"
                report.add(kind, "record says seq %d at position %d (records missing, inserted or reordered)" % (rec["seq"], seq),
                           seq=seq, segment=name, line=lineno)
            if prev is not None and rec["prev"] != prev:
                report.add("chain broken", "prev is %s, previous record's hash is %s" % (rec["prev"][:16], prev[:16]),
                           seq=seq, segment=name, line=lineno)
            prev = rec["hash"]
            leaves.append(leaf_of(actual))
            where.append((name, lineno))
            expected_seq += 1
    return leaves, where


def _check_index(path, leaves, where, report):
    ipath = os.path.join(path, INDEX_FILE)
    data = b""
    if os.path.exists(ipath):
        with open(ipath, "rb") as handle:
            data = handle.read()
    if len(data) % HASH_SIZE or len(data) // HASH_SIZE != len(leaves):
        report.add("index length", "%s has %d bytes (%d entries) for %d records"
                   % (INDEX_FILE, len(data), len(data) // HASH_SIZE, len(leaves)))
    for seq, leaf in enumerate(leaves):
        entry = data[seq * HASH_SIZE:(seq + 1) * HASH_SIZE]
        if leaf is not None and len(entry) == HASH_SIZE and entry != leaf:
            report.add("index mismatch", "%s entry %d is not the record's leaf hash" % (INDEX_FILE, seq),
                       seq=seq, segment=where[seq][0], line=where[seq][1])
            break


def _locate(report, where, seq):
    if 0 <= seq < len(where):
        return {"seq": seq, "segment": where[seq][0], "line": where[seq][1]}
    return {}


def _check_checkpoints(path, tree, where, verifier, report):
    good_sizes = [0]
    for name, text in list_checkpoints(path):
        try:
            if verifier is not None:
                ckpt = verify_checkpoint(text, verifier)
                report.checkpoints_verified += 1
            else:
                ckpt = parse_checkpoint(text)[0]
                report.checkpoints_unsigned_checked += 1
        except CheckpointError as exc:
            report.add("checkpoint signature", "checkpoints/%s: %s" % (name, exc))
            continue
        if ckpt.size > tree.size:
            report.add("checkpoint beyond log", "checkpoints/%s signs size %d but the log has %d records (tail truncated)"
                       % (name, ckpt.size, tree.size), **_locate(report, where, tree.size - 1))
            continue
        if tree.root(ckpt.size) != ckpt.root:
            low = max(s for s in good_sizes if s <= ckpt.size)
            report.add("checkpoint root mismatch",
                       "checkpoints/%s: root of the first %d records differs from the signed root; a record in seq %d..%d was rewritten"
                       % (name, ckpt.size, low, ckpt.size - 1), **_locate(report, where, low))
        else:
            good_sizes.append(ckpt.size)


def _check_trusted(tree, where, verifier, trusted, report):
    try:
        if verifier is not None:
            ckpt = verify_checkpoint(trusted, verifier)
        else:
            ckpt = parse_checkpoint(trusted)[0]
            report.notes.append("trusted checkpoint's signature not checked (no public key)")
    except CheckpointError as exc:
        report.add("trusted checkpoint", str(exc))
        return
    report.trusted_checked = True
    if ckpt.size > tree.size:
        report.add("log truncated", "trusted checkpoint has size %d, the log only %d records" % (ckpt.size, tree.size),
                   **_locate(report, where, tree.size - 1))
        return
    proof = tree.consistency_proof(ckpt.size, tree.size)
    if not verify_consistency(ckpt.size, tree.size, proof, ckpt.root, tree.root()):
        report.add("not consistent with trusted checkpoint",
                   "the first %d records no longer hash to the trusted root (history rewritten)" % ckpt.size)


def verify(path, public_key=None, trusted_checkpoint=None):
    """Verify the ledger in ``path``; returns a ``VerifyReport`` (never raises on tampering)."""
    report = VerifyReport(os.path.abspath(path))
    verifier = _as_verifier(public_key) if public_key is not None else None
    leaves, where = _check_records(path, report)
    _check_index(path, leaves, where, report)
    report.size = len(leaves)
    tree = MerkleTree.from_leaf_hashes(b"".join(leaf or b"\0" * HASH_SIZE for leaf in leaves))
    report.root = tree.root()
    _check_checkpoints(path, tree, where, verifier, report)
    if verifier is None:
        report.notes.append("checkpoint signatures not checked (no public key given)")
    if trusted_checkpoint is not None:
        _check_trusted(tree, where, verifier, trusted_checkpoint, report)
    else:
        report.notes.append("without a checkpoint held elsewhere, truncation of the tail cannot be detected; size is %d" % report.size)
    return report
