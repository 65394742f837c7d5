# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The fact cache plugin opdbus.infra.btrfs on real btrfs: ansible-playbook with gathering smart, concurrency.

Oracles: ``btrfs property get`` (compression), the JSON files and the SQLite index read directly,
and Ansible's own output (whether a "Gathering Facts" task ran).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import multiprocessing
import os
import sqlite3
import sys

from test_btrfs_cache_support import playbook, property_get

from ansible_collections.opdbus.infra.plugins.plugin_utils.kvstore import INDEX, KVStore

PLAYS = [
    {"name": "first play", "hosts": "all", "gather_facts": True, "tasks": [
        {"name": "facts seen", "ansible.builtin.debug": {"msg": "{{ ansible_facts.machine_id | default('') }} {{ ansible_facts.hostname }}"}},
    ]},
    {"name": "second play", "hosts": "all", "gather_facts": True, "tasks": [
        {"name": "facts again", "ansible.builtin.debug": {"msg": "{{ ansible_facts.machine_id | default('') }} {{ ansible_facts.hostname }}"}},
    ]},
]
INVENTORY = "h1\nh2\nh3\n[all:vars]\nansible_connection=local\nansible_python_interpreter=%s\n" % sys.executable


def cache_env(directory, **extra):
    env = {"ANSIBLE_GATHERING": "smart", "ANSIBLE_CACHE_PLUGIN": "opdbus.infra.btrfs",
           "ANSIBLE_CACHE_PLUGIN_CONNECTION": directory, "ANSIBLE_CACHE_PLUGIN_TIMEOUT": "3600"}
    env.update(extra)
    return env


def gathered(run):
    """Hosts whose facts were gathered (the implicit setup task ran for them) in a run."""
    out = set()
    for task in run.tasks:
        if task["task"]["name"] == "Gathering Facts":
            out.update(h for h, r in task["hosts"].items() if not r.get("skipped"))
    return out


def test_facts_gathered_once_then_read_from_the_cache(bdir, tmp_path):
    directory = os.path.join(bdir, "facts")
    first = playbook(tmp_path, PLAYS, extra_env=cache_env(directory), inventory=INVENTORY)
    assert first.rc == 0, first.output
    assert gathered(first) == {"h1", "h2", "h3"}
    # gathering smart: the second play of the same run does not gather again
    assert [t["task"]["name"] for t in first.tasks].count("Gathering Facts") == 1
    messages = dict((h, first.result("facts seen", h)["msg"]) for h in ("h1", "h2", "h3"))
    assert all(m.split()[-1] for m in messages.values()), messages
    # the store: one JSON file per host (under Ansible's schema-qualified key), the index rows, zstd on the directory
    store = KVStore(directory)
    keys = store.keys()
    assert len(keys) == 3 and sorted(k.split("_", 1)[1] for k in keys) == ["h1", "h2", "h3"], keys
    for key in keys:
        with open(os.path.join(directory, store.file_name(key)), encoding="utf-8") as handle:
            payload = json.loads(json.load(handle)["__payload__"])
        assert payload["ansible_hostname"] == messages["h1"].split()[-1], sorted(payload)[:5]
    rows = sqlite3.connect(os.path.join(directory, INDEX)).execute("SELECT key, ttl FROM entries").fetchall()
    assert sorted(r[0] for r in rows) == sorted(keys) and all(r[1] == 3600.0 for r in rows)
    assert property_get(directory, "compression") == "compression=zstd"

    # a new ansible-playbook process: no host gathers; the facts come from the cache and are the same
    second = playbook(tmp_path, PLAYS, extra_env=cache_env(directory), inventory=INVENTORY)
    assert second.rc == 0, second.output
    assert gathered(second) == set(), [t["task"]["name"] for t in second.tasks]
    assert dict((h, second.result("facts seen", h)["msg"]) for h in ("h1", "h2", "h3")) == messages
    # a timeout that has passed: the cache is not used and the facts are gathered again
    third = playbook(tmp_path, PLAYS, extra_env=cache_env(directory, ANSIBLE_CACHE_PLUGIN_TIMEOUT="1"), inventory=INVENTORY)
    assert third.rc == 0 and gathered(third) == {"h1", "h2", "h3"}, third.output


def test_works_off_btrfs_uncompressed(plain_dir, tmp_path):
    directory = os.path.join(plain_dir, "facts")
    run = playbook(tmp_path, PLAYS[:1], extra_env=cache_env(directory), inventory=INVENTORY)
    assert run.rc == 0, run.output
    assert len(KVStore(directory).keys()) == 3
    assert not [n for n in os.listdir(directory) if n.startswith(".tmp-")]


def _writer(directory, worker, rounds, shared_keys):
    store = KVStore(directory, ttl=0)
    for index in range(rounds):
        doc = {"worker": worker, "round": index, "blob": ["x" * 200] * 20}
        store.set("own-%d-%d" % (worker, index), doc)
        store.set(shared_keys[index % len(shared_keys)], doc)
        got = store.get("own-%d-%d" % (worker, index))
        assert got == doc
        for key in shared_keys:  # a shared key is always a whole document from some worker
            try:
                value = store.get(key)
            except KeyError:
                continue
            assert set(value) == {"worker", "round", "blob"}


def test_concurrent_writers_do_not_corrupt(bdir):
    directory = os.path.join(bdir, "concurrent")
    KVStore(directory)
    shared = ["shared-%d" % i for i in range(5)]
    workers, rounds = 8, 60
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(directory, w, rounds, shared)) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(300)
    assert [p.exitcode for p in procs] == [0] * workers
    store = KVStore(directory, ttl=0)
    keys = set(store.keys())
    assert keys == set(["own-%d-%d" % (w, i) for w in range(workers) for i in range(rounds)] + shared)
    for key in keys:
        value = store.get(key)
        assert set(value) == {"worker", "round", "blob"}, key
        if key.startswith("own-"):
            assert key == "own-%d-%d" % (value["worker"], value["round"])
    conn = sqlite3.connect(os.path.join(directory, INDEX))
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == len(keys)
    files = [n for n in os.listdir(directory) if n.endswith(".json")]
    assert len(files) == len(keys) and not [n for n in os.listdir(directory) if n.startswith(".tmp-")]
    assert property_get(directory, "compression") == "compression=zstd"
