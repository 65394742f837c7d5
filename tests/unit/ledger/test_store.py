# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import random
import signal
import stat
import subprocess
import sys
import time

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import mth, verify_consistency, verify_inclusion
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger import store as store_module
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import (
    INDEX_FILE, Ledger, LedgerLockedError, TornTailError, leaf_of,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify


def task_fields(i):
    return {"kind": "task", "task": "task %d" % i, "host": "web1", "module": "ansible.builtin.command", "status": "changed",
            "changed": True, "duration": 0.001 * i, "result": {"rc": 0, "stdout": "line %d \u00e9" % i}}


def _seg(path, ordinal=0):
    return os.path.join(path, "records", "seg-%06d.jsonl" % ordinal)


def test_round_trip_and_reopen(make_ledger):
    path, ledger = make_ledger(50, max_records=16)
    assert ledger.size == 50
    assert [s[2] for s in ledger.segments()] == [16, 16, 16, 2]
    recs = list(ledger.records())
    assert [r["seq"] for r in recs] == list(range(50))
    assert ledger.get(17) == recs[17] and recs[17]["task"] == "task 17"
    assert list(ledger.records(10, 12)) == recs[10:12]
    root = ledger.root()
    assert root == mth([leaf_of(r["hash"]) for r in recs])
    ledger.close()
    with Ledger(path, max_records=16) as again:
        assert not again.recovery.repaired
        assert again.size == 50 and again.root() == root and again.last_hash == recs[-1]["hash"]
        more = again.append([task_fields(50)])
        assert more[0]["seq"] == 50 and more[0]["prev"] == recs[-1]["hash"]
        proof = again.inclusion_proof(3)
        assert verify_inclusion(3, 51, again.leaf_hash(3), proof, again.root())
        cproof = again.consistency_proof(50, 51)
        assert verify_consistency(50, 51, cproof, root, again.root())
    assert verify(path).ok


def test_rolls_by_bytes(make_ledger):
    path, ledger = make_ledger(20, max_bytes=2000)
    assert len(ledger.segments()) > 2
    assert all(os.path.getsize(_seg(path, i)) <= 2000 for i in range(len(ledger.segments())))
    assert verify(path).ok


def test_permissions_and_lock(make_ledger):
    path, ledger = make_ledger(3)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(os.path.join(path, "records")).st_mode) == 0o700
    for name in (_seg(path), os.path.join(path, INDEX_FILE), os.path.join(path, "LOCK")):
        assert stat.S_IMODE(os.stat(name).st_mode) == 0o600
    with pytest.raises(LedgerLockedError):
        Ledger(path)
    with Ledger(path, readonly=True) as reader:
        assert reader.size == 3
    ledger.close()
    Ledger(path).close()


def test_group_commit_is_on_disk_before_return(make_ledger):
    path, ledger = make_ledger(0)
    recs = ledger.append([task_fields(i) for i in range(5)])
    # Another reader, without the writer closing anything, sees every returned record.
    with Ledger(path, readonly=True) as reader:
        assert list(reader.records()) == recs


def _reopen(path, **opts):
    ledger = Ledger(path, **opts)
    report = ledger.recovery
    return ledger, report


def test_torn_partial_line(make_ledger):
    path, ledger = make_ledger(10)
    ledger.close()
    size = os.path.getsize(_seg(path))
    with open(_seg(path), "r+b") as handle:
        handle.truncate(size - 25)
    with pytest.raises(TornTailError) as err:
        Ledger(path, repair=False)
    assert err.value.report.events[0]["kind"] == "partial-line"
    ledger, report = _reopen(path)
    kinds = [e["kind"] for e in report.events]
    assert "partial-line" in kinds and "index-longer" in kinds
    assert ledger.size == 9
    assert os.listdir(os.path.join(path, "recovered"))
    ledger.close()
    assert verify(path).ok


def test_torn_garbage_appended(make_ledger):
    path, ledger = make_ledger(10)
    ledger.close()
    with open(_seg(path), "ab") as handle:
        handle.write(b'{"seq": 10, "garbage\n')
    ledger, report = _reopen(path)
    assert [e["kind"] for e in report.events] == ["bad-last-line"]
    assert ledger.size == 10
    ledger.append([task_fields(10)])
    ledger.close()
    assert verify(path).ok


def test_torn_last_line_hash_mismatch(make_ledger):
    path, ledger = make_ledger(10)
    ledger.close()
    with open(_seg(path), "rb") as handle:
        data = handle.read()
    # Change the last record's content (not its timestamp, whose digits vary): its hash no longer matches.
    head, last = data[:-1].rsplit(b"\n", 1)
    tampered = last.replace(b'"task 9"', b'"task X"')
    assert tampered != last
    with open(_seg(path), "wb") as handle:
        handle.write(head + b"\n" + tampered + b"\n")
    ledger, report = _reopen(path)
    assert "bad-last-line" in [e["kind"] for e in report.events]
    assert ledger.size == 9
    ledger.close()
    assert verify(path).ok


def test_index_shorter_is_completed(make_ledger):
    path, ledger = make_ledger(10)
    ledger.close()
    with open(os.path.join(path, INDEX_FILE), "r+b") as handle:
        handle.truncate(32 * 7 + 5)
    ledger, report = _reopen(path)
    kinds = [e["kind"] for e in report.events]
    assert "partial-index-entry" in kinds and "index-shorter" in kinds
    assert ledger.size == 10
    ledger.close()
    assert verify(path).ok


def test_index_longer_is_cut(make_ledger):
    path, ledger = make_ledger(10)
    ledger.close()
    with open(os.path.join(path, INDEX_FILE), "ab") as handle:
        handle.write(b"\x07" * 64)
    ledger, report = _reopen(path)
    assert [e["kind"] for e in report.events] == ["index-longer"]
    ledger.close()
    assert verify(path).ok


def _collections_root():
    path = store_module.__file__
    for _level in range(7):
        path = os.path.dirname(path)
    return path


CHILD = r"""
import random, sys
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
rng = random.Random(int(sys.argv[2]))
ledger = Ledger(sys.argv[1], max_records=int(sys.argv[3]))
i = ledger.size
while True:
    batch = [{"task": "t%d" % (i + j), "host": "h", "result": {"n": "x" * rng.randrange(200)}} for j in range(rng.randint(1, 20))]
    recs = ledger.append(batch)
    i += len(recs)
    sys.stdout.write("%d\n" % recs[-1]["seq"])
    sys.stdout.flush()
"""


@pytest.mark.parametrize("seed", range(6))
def test_crash_kill9_recovers(tmp_path, seed):
    rng = random.Random(seed)
    path = str(tmp_path / "ledger")
    env = dict(os.environ, PYTHONPATH=_collections_root())
    committed = -1
    for round_no in range(2):
        child = subprocess.Popen([sys.executable, "-c", CHILD, path, str(seed * 10 + round_no), "37"],
                                 stdout=subprocess.PIPE, env=env)
        first = child.stdout.readline()
        assert first, "child did not start"
        time.sleep(rng.uniform(0.0, 0.25))
        child.send_signal(signal.SIGKILL)
        out = first + child.stdout.read()
        child.wait()
        lines = [int(x) for x in out.split()]
        committed = max([committed] + lines)
        ledger = Ledger(path, max_records=37)
        assert ledger.size >= committed + 1, ledger.recovery.summary()
        assert [r["seq"] for r in ledger.records()] == list(range(ledger.size))
        ledger.close()
        report = verify(path)
        assert report.ok, report.summary()


def test_benchmark(tmp_path, capsys):
    figures = []
    for group in (1, 100):
        with Ledger(str(tmp_path / ("bench%d" % group))) as ledger:
            count = 0
            start = time.perf_counter()
            while time.perf_counter() - start < 0.5:
                ledger.append([task_fields(count + j) for j in range(group)])
                count += group
            figures.append("group commit %d: %.0f appends/s" % (group, count / (time.perf_counter() - start)))
    path = str(tmp_path / "big")
    with Ledger(path) as ledger:
        for base in range(0, 100000, 5000):
            ledger.append([task_fields(i) for i in range(base, base + 5000)])
    start = time.perf_counter()
    report = verify(path)
    took = time.perf_counter() - start
    assert report.ok and report.size == 100000
    figures.append("verify: %.0f records/s (100k records in %.2f s)" % (100000 / took, took))
    with capsys.disabled():
        print("\n[bench] " + "; ".join(figures))
