# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Opening a ledger for writing without reading all of it: closed segments, the tail window, the frontier.

Each scenario is checked against what a read-only open (which reads everything and trusts only
the index) and ``verify`` say of the same files.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

import pytest

from conftest import task_fields

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger import store as store_module
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import Frontier, MerkleTree, mth, verify_inclusion
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import FRONTIER_FILE, INDEX_FILE, Ledger, leaf_of
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify


def _seg(path, ordinal):
    return os.path.join(path, "records", "seg-%06d.jsonl" % ordinal)


def _truth(path):
    """(size, root, segments) as a read-only open sees them."""
    with Ledger(path, readonly=True) as reader:
        return reader.size, reader.root(), reader.segments()


@pytest.fixture
def small_window(monkeypatch):
    monkeypatch.setattr(store_module, "TAIL_WINDOW", 700)


def _build(path, count, **opts):
    with Ledger(path, **opts) as ledger:
        for start in range(0, count, 5):
            ledger.append([task_fields(i) for i in range(start, min(count, start + 5))], durable=False)
            ledger.sync()
    return path


def test_writer_open_matches_a_full_read(tmp_path, small_window):
    path = _build(str(tmp_path / "l"), 60, max_records=16)
    size, root, segments = _truth(path)
    with Ledger(path, max_records=16) as ledger:
        assert (ledger.size, ledger.root(), ledger.segments()) == (size, root, segments)
        assert [r["seq"] for r in ledger.records(14, 34)] == list(range(14, 34))
        assert ledger.leaf_hash(17) == leaf_of(ledger.get(17)["hash"])
        added = ledger.append([task_fields(60), task_fields(61)])
        assert added[0]["seq"] == 60 and added[0]["prev"] == ledger.get(59)["hash"]
        proof = ledger.inclusion_proof(5)
        assert verify_inclusion(5, 62, ledger.leaf_hash(5), proof, ledger.root())
    assert verify(path).ok
    assert _truth(path)[0] == 62


def test_closed_segments_are_not_read(tmp_path, small_window):
    """Damage in the middle of a closed segment does not slow or stop the writer; verify finds it."""
    path = _build(str(tmp_path / "l"), 40, max_records=16)
    with open(_seg(path, 0), "r+b") as handle:
        data = handle.read()
        handle.seek(0)
        handle.write(data.replace(b'"task 7"', b'"task Z"'))
    with Ledger(path, max_records=16) as ledger:
        assert ledger.size == 40 and not ledger.recovery.repaired
    report = verify(path)
    assert not report.ok and any("7" in str(p) for p in report.problems)


def test_frontier_is_saved_and_used(tmp_path):
    path = _build(str(tmp_path / "l"), 23)
    saved = Frontier.from_bytes(open(os.path.join(path, FRONTIER_FILE), "rb").read()[:-32])
    assert saved.size == 23
    leaves = open(os.path.join(path, INDEX_FILE), "rb").read()
    assert saved.root() == MerkleTree.from_leaf_hashes(leaves).root() == _truth(path)[1]


@pytest.mark.parametrize("damage", ["missing", "garbage", "stale", "wrong-last-leaf", "ahead-of-index"])
def test_a_bad_frontier_file_is_rebuilt(tmp_path, damage):
    path = _build(str(tmp_path / "l"), 30)
    fpath = os.path.join(path, FRONTIER_FILE)
    good = open(fpath, "rb").read()
    leaves = open(os.path.join(path, INDEX_FILE), "rb").read()
    if damage == "missing":
        os.unlink(fpath)
    elif damage == "garbage":
        open(fpath, "wb").write(b"\x00" * 50)
    elif damage == "stale":
        # A frontier of an earlier size (the last sync before a crash): extended from the index.
        older = Frontier.from_leaf_hashes(leaves[:12 * 32])
        open(fpath, "wb").write(older.to_bytes() + leaves[11 * 32:12 * 32])
    elif damage == "wrong-last-leaf":
        open(fpath, "wb").write(good[:-32] + b"\x01" * 32)
    else:
        bigger = Frontier.from_leaf_hashes(leaves + b"\x02" * 32 * 3)
        open(fpath, "wb").write(bigger.to_bytes() + b"\x02" * 32)
    with Ledger(path) as ledger:
        assert ledger.root() == mth([leaves[i:i + 32] for i in range(0, len(leaves), 32)])
        ledger.append([task_fields(30)])
        assert ledger.root() == ledger.tree.root()
    assert verify(path).ok


def test_a_forged_frontier_is_caught_by_verify(tmp_path):
    """A frontier that fits the index's last entry but lies about the rest: the checkpoint signed from it fails verify."""
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import load_or_create_key, write_checkpoint
    path = _build(str(tmp_path / "l"), 20)
    leaves = open(os.path.join(path, INDEX_FILE), "rb").read()
    forged = Frontier(20, [b"\x09" * 32, b"\x08" * 32])  # 20 = 16 + 4: two subtrees
    open(os.path.join(path, FRONTIER_FILE), "wb").write(forged.to_bytes() + leaves[-32:])
    signer = load_or_create_key(str(tmp_path / "key"), "test")
    with Ledger(path) as ledger:
        write_checkpoint(ledger, signer)
    report = verify(path)
    assert not report.ok


@pytest.mark.parametrize("torn", ["partial-line", "garbage-line", "hash-mismatch"])
def test_torn_tail_through_the_window(tmp_path, small_window, torn):
    path = _build(str(tmp_path / "l"), 40)
    seg = _seg(path, 0)
    assert os.path.getsize(seg) > store_module.TAIL_WINDOW
    data = open(seg, "rb").read()
    if torn == "partial-line":
        open(seg, "wb").write(data[:-30])
    elif torn == "garbage-line":
        open(seg, "ab").write(b'{"seq": 40, "garb\n')
    else:
        head, last = data[:-1].rsplit(b"\n", 1)
        open(seg, "wb").write(head + b"\n" + last.replace(b'"task 39"', b'"task Q"') + b"\n")
    with Ledger(path) as ledger:
        events = ledger.recovery.events
        assert events and events[0]["kind"] in ("partial-line", "bad-last-line")
        expected = 40 if torn == "garbage-line" else 39
        assert ledger.size == expected
        cut = events[0]["offset"]
        assert open(seg, "rb").read() == data[:cut] and data[cut - 1:cut] == b"\n"
        ledger.append([task_fields(expected)])
    assert verify(path).ok and _truth(path)[0] == expected + 1


def test_a_last_line_longer_than_the_window(tmp_path, small_window):
    path = str(tmp_path / "l")
    with Ledger(path) as ledger:
        ledger.append([task_fields(0)])
        big = dict(task_fields(1), result={"stdout": "x" * 5000})
        ledger.append([big])
    with Ledger(path) as ledger:
        assert ledger.size == 2 and ledger.get(1)["result"]["stdout"] == "x" * 5000
    assert verify(path).ok


def test_open_reads_a_bounded_amount(tmp_path, small_window, monkeypatch):
    """Bytes read from records/ while opening for writing do not grow with the ledger."""
    path = _build(str(tmp_path / "l"), 200, max_records=10)
    real_open = open
    counted = {"bytes": 0}

    class Counting:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def read(self, *args):
            data = self.handle.read(*args)
            counted["bytes"] += len(data)
            return data

        def readline(self, *args):
            data = self.handle.readline(*args)
            counted["bytes"] += len(data)
            return data

        def seek(self, *args):
            return self.handle.seek(*args)

    def counting_open(name, mode="r", *args, **kwargs):
        handle = real_open(name, mode, *args, **kwargs)
        if "records" in str(name) and "b" in mode and "r" in mode:
            return Counting(handle)
        return handle

    monkeypatch.setattr(store_module, "open", counting_open, raising=False)
    with Ledger(path, max_records=10) as ledger:
        assert ledger.size == 200
    total = sum(os.path.getsize(_seg(path, i)) for i in range(20))
    # first lines of 20 segments + the last segment: well under a third of the ledger
    assert 0 < counted["bytes"] < total / 3
