# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fact cache's store (plugin_utils/kvstore.py) off btrfs: round trip, TTL, index, other processes' writes."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import sqlite3

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils import kvstore

FACTS = {"ansible_facts": {"hostname": "h1", "interfaces": ["lo", "eth0"], "memtotal_mb": 7960, "nested": {"a": [1, 2.5, None]}}}


def test_round_trip_files_and_index(tmp_path):
    store = kvstore.KVStore(str(tmp_path / "c"), prefix="facts_", ttl=3600)
    assert store.compression is None  # tmp_path is not btrfs here (the btrfs case is an integration test)
    store.set("h1", FACTS)
    store.set("web/01", {"x": 1})
    assert store.get("h1") == FACTS and store.contains("h1") and not store.contains("nope")
    assert sorted(store.keys()) == ["h1", "web/01"]
    files = sorted(os.listdir(str(tmp_path / "c")))
    assert "facts_h1.json" in files and "facts_web%2F01.json" in files and kvstore.INDEX in files
    assert json.loads((tmp_path / "c" / "facts_h1.json").read_text()) == FACTS
    assert not [f for f in files if f.startswith(".tmp-")]
    rows = sqlite3.connect(str(tmp_path / "c" / kvstore.INDEX)).execute("SELECT key, file, ttl FROM entries ORDER BY key").fetchall()
    assert rows == [("h1", "facts_h1.json", 3600.0), ("web/01", "facts_web%2F01.json", 3600.0)]
    assert sqlite3.connect(str(tmp_path / "c" / kvstore.INDEX)).execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert kvstore.KVStore.key_of("facts_web%2F01.json", "facts_") == "web/01"
    store.delete("h1")
    assert not store.contains("h1") and not (tmp_path / "c" / "facts_h1.json").exists()
    with pytest.raises(KeyError):
        store.get("h1")
    store.flush()
    assert store.keys() == [] and [f for f in os.listdir(str(tmp_path / "c")) if f.endswith(".json")] == []


def test_ttl_expiry_with_a_simulated_clock(tmp_path, monkeypatch):
    clock = [1000000.0]
    monkeypatch.setattr(kvstore.time, "time", lambda: clock[0])
    store = kvstore.KVStore(str(tmp_path), ttl=60)
    store.set("h1", FACTS)
    forever = kvstore.KVStore(str(tmp_path), ttl=0)
    forever.set("h2", FACTS)
    clock[0] += 60
    assert store.get("h1") == FACTS
    clock[0] += 1
    with pytest.raises(KeyError):
        store.get("h1")
    # the reader's TTL (60 s) applies to h2 too; a reader without a TTL still sees h2 (written without one)
    assert store.keys() == [] and not store.contains("h1") and not store.contains("h2")
    assert forever.keys() == ["h2"] and forever.get("h2") == FACTS and not forever.contains("h1")
    assert forever.expire() == ["h1"] and not (tmp_path / "h1.json").exists() and (tmp_path / "h2.json").exists()


def test_another_writer_is_seen_and_the_memo_is_not_stale(tmp_path):
    one = kvstore.KVStore(str(tmp_path))
    two = kvstore.KVStore(str(tmp_path))
    one.set("h1", {"v": 1})
    assert two.get("h1") == {"v": 1}
    one.set("h1", {"v": 2})
    assert two.get("h1") == {"v": 2}
    one.delete("h1")
    with pytest.raises(KeyError):
        two.get("h1")


def test_unusable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(kvstore.StoreError, match="cannot create the store directory"):
        kvstore.KVStore(str(blocker / "sub"))
    with pytest.raises(kvstore.StoreError, match="no directory"):
        kvstore.KVStore("")
