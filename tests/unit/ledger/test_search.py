# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Similarity search over ledger vectors: filters, neighbours, persistence, a labelled corpus."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import collections
import json
import os
import time

import numpy as np
import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import HashingEmbedder, VectorCache
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.search import (
    SearchError, UnknownRecord, VectorIndex, format_time, parse_time)

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "labelled_results.json")
HOSTS = ("web1", "web2", "db1")
STATUSES = ("ok", "changed", "failed", "unreachable")
MODULES = ("ansible.builtin.apt", "opdbus.infra.ovs_bridge", "ansible.builtin.template")
BASE = parse_time("2026-11-22T00:00:00Z")


def unit_rows(count, dim, seed=0):
    rows = np.random.default_rng(seed).standard_normal((count, dim)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def synthetic(count=600, dim=32, dtype="float32"):
    records = []
    for seq in range(count):
        records.append({"seq": 1000 + seq, "host": HOSTS[seq % 3], "status": STATUSES[seq % 4],
                        "module": MODULES[(seq // 5) % 3], "time": format_time(BASE + 60 * seq)})
    vectors = unit_rows(count, dim)
    index = VectorIndex(dim, dtype=dtype)
    index.add(records[:count // 2], vectors[:count // 2])
    index.add(records[count // 2:], vectors[count // 2:])
    return index, records, vectors


def expected(records, vectors, query, k, keep):
    rows = [row for row, record in enumerate(records) if keep(record)]
    scores = vectors[rows] @ query
    order = sorted(range(len(rows)), key=lambda pos: (-scores[pos], records[rows[pos]]["seq"]))[:k]
    return [records[rows[pos]]["seq"] for pos in order]


def in_range(record, low=None, high=None):
    moment = parse_time(record["time"])
    return (low is None or moment >= parse_time(low)) and (high is None or moment <= parse_time(high))


FILTER_CASES = [
    ({}, lambda r: True),
    ({"host": "web2"}, lambda r: r["host"] == "web2"),
    ({"status": "failed"}, lambda r: r["status"] == "failed"),
    ({"module": "opdbus.infra.ovs_bridge"}, lambda r: r["module"] == "opdbus.infra.ovs_bridge"),
    ({"host": ["web1", "db1"]}, lambda r: r["host"] in ("web1", "db1")),
    ({"from": "2026-11-22T02:00:00Z"}, lambda r: in_range(r, low="2026-11-22T02:00:00Z")),
    ({"to": "2026-11-22T01:00:00Z"}, lambda r: in_range(r, high="2026-11-22T01:00:00Z")),
    ({"from": "2026-11-22T01:00:00Z", "to": "2026-11-22T03:00:00Z"},
     lambda r: in_range(r, "2026-11-22T01:00:00Z", "2026-11-22T03:00:00Z")),
    ({"host": "web1", "status": "failed"}, lambda r: r["host"] == "web1" and r["status"] == "failed"),
    ({"host": "db1", "status": ["ok", "changed"], "module": "ansible.builtin.apt", "from": "2026-11-22T03:00:00+00:00"},
     lambda r: r["host"] == "db1" and r["status"] in ("ok", "changed") and r["module"] == "ansible.builtin.apt"
     and in_range(r, low="2026-11-22T03:00:00Z")),
]


@pytest.mark.parametrize("filters, keep", FILTER_CASES)
@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_filters_apply_before_ranking(filters, keep, dtype):
    index, records, vectors = synthetic(dtype=dtype)
    query = unit_rows(1, 32, seed=5)[0]
    hits = index.search(query, k=10, filters=filters)
    want = expected(records, vectors, query, 10, keep)
    assert len(want) == 10
    by_seq = dict((record["seq"], record) for record in records)
    assert all(keep(by_seq[hit.seq]) for hit in hits)
    if dtype == "float32":
        assert [hit.seq for hit in hits] == want
        assert np.allclose([hit.score for hit in hits], [vectors[seq - 1000] @ query for seq in want], atol=1e-5)
    else:
        # float16 storage rounds scores by ~1e-3: the same set up to near ties at the edge.
        assert len(set(hit.seq for hit in hits) & set(want)) >= 8
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_rare_filter_still_returns_k():
    index, records, vectors = synthetic()
    hits = index.search(vectors[0], k=5, filters={"host": "web1", "status": "ok", "module": "ansible.builtin.apt"})
    assert len(hits) == 5
    assert all((hit.host, hit.status, hit.module) == ("web1", "ok", "ansible.builtin.apt") for hit in hits)


def test_time_range_edges_are_inclusive():
    index, records, vectors = synthetic()
    at = records[10]["time"]
    hits = index.search(vectors[0], k=50, filters={"from": at, "to": at})
    assert [hit.seq for hit in hits] == [1010] and hits[0].time == at
    just_after = format_time(parse_time(at) + 1)
    assert index.search(vectors[0], k=50, filters={"from": just_after, "to": format_time(parse_time(at) + 59)}) == []
    assert [hit.seq for hit in index.search(vectors[0], k=50, filters={"from": just_after, "to": records[11]["time"]})] == [1011]


def test_records_without_time_never_match_a_time_filter():
    index = VectorIndex(8)
    index.add([{"seq": 1}, {"seq": 2, "time": "2026-11-22T00:00:00Z"}], unit_rows(2, 8))
    assert [hit.seq for hit in index.search(unit_rows(1, 8)[0], k=5, filters={"from": "2020-01-01T00:00:00Z"})] == [2]
    assert len(index.search(unit_rows(1, 8)[0], k=5)) == 2


def test_no_match_and_bad_arguments():
    index, records, vectors = synthetic()
    assert index.search(vectors[0], k=5, filters={"host": "nowhere"}) == []
    assert index.search(vectors[0], k=0) == []
    with pytest.raises(SearchError, match="unknown filter"):
        index.search(vectors[0], k=5, filters={"hosts": "web1"})
    with pytest.raises(SearchError):
        index.search(vectors[0][:10], k=5)
    with pytest.raises(SearchError):
        index.search(vectors[0], k=5, filters={"from": "yesterday"})
    with pytest.raises(SearchError, match="already"):
        index.add([records[0]], vectors[:1])
    with pytest.raises(SearchError):
        index.add([{"seq": 5}], vectors[:2])


def test_like_record_excludes_itself():
    index, records, vectors = synthetic()
    index.add([{"seq": 1, "host": "web1"}], vectors[7:8])  # an exact duplicate of seq 1007
    hits = index.like_record(1007, k=5)
    assert 1007 not in [hit.seq for hit in hits]
    assert hits[0].seq == 1 and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert len(hits) == 5
    filtered = index.like_record(1007, k=3, filters={"status": "failed"})
    assert all(hit.status == "failed" for hit in filtered)
    with pytest.raises(UnknownRecord):
        index.like_record(424242)


def test_k_larger_than_the_index():
    index, records, vectors = synthetic(count=6)
    assert len(index.search(vectors[0], k=100)) == 6
    assert len(index.like_record(1000, k=100)) == 5


def test_save_and_load(tmp_path):
    index, records, vectors = synthetic(dtype="float16")
    index.save(str(tmp_path))
    loaded = VectorIndex.load(str(tmp_path))
    assert len(loaded) == len(index) and loaded.dtype == np.float16
    assert isinstance(loaded.vectors, np.memmap)
    for filters, keep in FILTER_CASES:
        assert loaded.search(vectors[3], k=7, filters=filters) == index.search(vectors[3], k=7, filters=filters)
    loaded.add([{"seq": 5, "host": "new-host", "status": "failed"}], vectors[3:4])
    assert loaded.search(vectors[3], k=1, filters={"host": "new-host"})[0].seq == 5
    assert loaded.like_record(5, k=1)[0].seq == 1003
    with pytest.raises(SearchError):
        VectorIndex.load(str(tmp_path / "missing"))


def load_corpus():
    with open(DATA, "r", encoding="utf-8") as handle:
        return json.load(handle)


def corpus_index(tmp_path=None):
    records = load_corpus()
    embedder = HashingEmbedder()
    index = VectorIndex(embedder.dim, embedder=embedder)
    if tmp_path is None:
        index.add_records(records)
    else:
        index.add_records(records, cache=VectorCache(str(tmp_path), embedder))
    return index, records


def test_corpus_is_labelled_well_enough():
    records = load_corpus()
    per_label = collections.Counter(record["label"] for record in records)
    assert len(per_label) >= 12 and min(per_label.values()) >= 10
    assert len(set(record["seq"] for record in records)) == len(records)


def test_precision_at_5_on_the_labelled_corpus(tmp_path):
    index, records = corpus_index(tmp_path)
    label = dict((record["seq"], record["label"]) for record in records)
    per_label = collections.defaultdict(list)
    for record in records:
        hits = index.like_record(record["seq"], k=5)
        assert len(hits) == 5
        per_label[record["label"]].append(sum(label[hit.seq] == record["label"] for hit in hits) / 5.0)
    overall = float(np.mean([value for values in per_label.values() for value in values]))
    print("\nprecision@5 on %d labelled results in %d classes: %.3f" % (len(records), len(per_label), overall))
    for name in sorted(per_label):
        print("  %-22s %.2f" % (name, np.mean(per_label[name])))
    # 15 classes of 10: a random ranking scores about 9/149 = 0.06.
    assert overall > 0.6


def test_like_text_finds_the_failure_class():
    index, records = corpus_index()
    label = dict((record["seq"], record["label"]) for record in records)
    queries = {
        "Could not get lock /var/lib/dpkg/lock-frontend held by another process": "apt_lock",
        "Failed to connect to the host via ssh: connect to host 10.9.9.9 port 22: Connection refused": "ssh_unreachable",
        "No space left on device": "disk_full",
        "cannot connect to OVSDB: is ovsdb-server running?": "ovsdb_unreachable",
    }
    for text, want in queries.items():
        hits = index.like_text(text, k=3)
        assert [label[hit.seq] for hit in hits] == [want] * 3, text
    failed = index.like_text("No space left on device", k=20, filters={"module": "ansible.builtin.copy"})
    assert failed and all(hit.module == "ansible.builtin.copy" for hit in failed)
    with pytest.raises(SearchError):
        VectorIndex(8).like_text("x")


def test_search_latency_100k():
    """Prints query latency at 100k vectors of dim 1024 (no assertion: machines differ)."""
    dim, count = 1024, 100000
    records = [{"seq": seq, "host": HOSTS[seq % 3], "status": STATUSES[seq % 4], "module": MODULES[seq % 3],
                "time": BASE + seq} for seq in range(count)]
    rng = np.random.default_rng(1)
    for dtype in ("float32", "float16"):
        index = VectorIndex(dim, dtype=dtype)
        for start in range(0, count, 25000):
            block = rng.standard_normal((25000, dim)).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
            index.add(records[start:start + 25000], block)
        query = index.vector_of(7)
        for filters in ({}, {"host": "web1", "status": "failed"}):
            index.search(query, k=10, filters=filters)
            runs = 5
            start = time.perf_counter()
            for _run in range(runs):
                hits = index.search(query, k=10, filters=filters)
            took = (time.perf_counter() - start) / runs * 1000
            print("\nsearch top-10 of %d x %d %s, filters %s: %.1f ms" % (count, dim, dtype, filters or "none", took))
            assert hits[0].seq == 7 or filters
