# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The embedding helper process: what it is fed becomes vectors in the cache, and failures are told."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import os
import threading

import numpy as np
import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import HashingEmbedder, VectorCache, record_text
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embedworker import LOCK_NAME, EmbedWorker
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger


def _ledger_lines(path, count):
    lines = []
    with Ledger(str(path)) as ledger:
        for num in range(count):
            ledger.append([{"kind": "task", "host": "h%d" % (num % 3), "status": "ok" if num % 2 else "failed",
                            "task": "task %d" % num, "result": {"msg": "message number %d" % num}}], lines_out=lines)
        records = list(ledger.records())
    return records, lines


def test_fed_records_get_the_vectors_an_in_process_cache_makes(tmp_path):
    records, lines = _ledger_lines(tmp_path / "ledger", 50)
    assert len(lines) == 50 and all(line.endswith(b"\n") for line in lines)
    vectors = str(tmp_path / "vectors")
    worker = EmbedWorker(vectors, "hashing")
    worker.feed(lines[:20])
    worker.feed(lines[20:])
    assert worker.close() is None
    assert os.stat(vectors).st_mode & 0o777 == 0o700
    cache = VectorCache(vectors, HashingEmbedder())
    assert len(cache) == len({record_text(r) for r in records})
    expected = HashingEmbedder().embed([record_text(r) for r in records])
    assert np.allclose(cache.get_records(records), expected)
    assert cache.misses == 0


def test_a_failing_helper_is_reported(tmp_path):
    worker = EmbedWorker(str(tmp_path / "vectors"), "word2vec")
    worker.feed([b'{"seq": 0}\n'])
    problem = worker.close()
    assert problem and "the embedding helper failed (exit 1)" in problem and "word2vec" in problem


def test_garbage_input_is_reported(tmp_path):
    worker = EmbedWorker(str(tmp_path / "vectors"), "hashing")
    worker.feed([b"this is not json\n"])
    assert "the embedding helper failed" in worker.close()


def test_helpers_take_turns_on_one_cache(tmp_path):
    """A second helper waits for the first (the lock), so the cache has one writer at a time."""
    records, lines = _ledger_lines(tmp_path / "ledger", 10)
    vectors = tmp_path / "vectors"
    vectors.mkdir(mode=0o700)
    lock_fd = os.open(str(vectors / LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)
    worker = EmbedWorker(str(vectors), "hashing")
    worker.feed(lines)
    worker.proc.stdin.close()
    with pytest.raises(Exception):
        worker.proc.wait(timeout=1.0)  # held back by the lock
    assert not (vectors / VectorCache.INDEX).exists()
    os.close(lock_fd)
    assert worker.close() is None
    assert len(VectorCache(str(vectors), HashingEmbedder())) == len({record_text(r) for r in records})


def test_lines_out_are_the_stored_lines(tmp_path):
    path = tmp_path / "ledger"
    lines = _ledger_lines(path, 5)[1]
    stored = b"".join(open(os.path.join(str(path), "records", name), "rb").read()
                      for name in sorted(os.listdir(os.path.join(str(path), "records"))))
    assert stored == b"".join(lines)


def test_feed_after_the_helper_died_does_not_raise(tmp_path):
    worker = EmbedWorker(str(tmp_path / "vectors"), "hashing")
    worker.proc.kill()
    worker.proc.wait()
    done = threading.Event()

    def feed():
        for dummy in range(50):
            worker.feed([b"x" * 65536 + b"\n"])
        done.set()

    thread = threading.Thread(target=feed)
    thread.start()
    thread.join(30)
    assert done.is_set() and worker.failed and "stopped reading" in worker.failed
    assert "the embedding helper failed" in worker.close()
