# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Exports of a ledger: the JSON document re-verifies on its own; Qdrant gets vectors and metadata only."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import json
import os
import random
import stat
import sys

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import (
    load_or_create_key, parse_checkpoint, verify_checkpoint, write_checkpoint,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.export import (
    QDRANT_PAYLOAD_FIELDS, ExportError, RecordFilter, RecordVectors, export_json, export_qdrant, find_similar,
    load_json_export, qdrant_client, result_msg,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import MerkleTree
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import FIELDS, GENESIS_PREV, record_hash
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger, leaf_of

WORDS = ("apt", "lock", "held", "dpkg", "interrupted", "permission", "denied", "socket", "timeout", "bridge",
         "missing", "certificate", "expired", "disk", "full", "refused", "mirror", "signature", "invalid", "quota",
         "kernel", "module", "unknown", "symbol", "route", "unreachable", "resolver", "nxdomain", "template", "undefined")
CANARY = "CANARY-5f1c0b9e-result-body-must-not-leave"


def varied_fields(i, host=None):
    """Records whose texts differ enough that each one is its own nearest neighbour."""
    rng = random.Random(i)
    words = " ".join(rng.choice(WORDS) for _n in range(6))
    failed = i % 4 == 1
    result = {"rc": 1 if failed else 0, "msg": "%s %s" % (words, "failed" if failed else "done")}
    if i == 7:
        result["secret_note"] = CANARY
    return {
        "kind": "task", "playbook": "site.yml", "play": "play %s" % WORDS[i % 5], "role": None,
        "task": "step %s %s" % (WORDS[(3 * i) % len(WORDS)], WORDS[(7 * i + 1) % len(WORDS)]),
        "task_uuid": "uuid-%d" % i, "host": host or "node%d" % (i % 4), "module": "ansible.builtin.%s" % WORDS[i % 3],
        "status": "failed" if failed else "ok", "changed": False, "duration": 0.01 * i,
        "time": "2026-11-22T08:%02d:%02d.000000Z" % (i // 60, i % 60), "result": result,
    }


@pytest.fixture
def signed_ledger(tmp_path):
    """A ledger of 45 varied records with checkpoints at 20 and 45; returns (path, signer)."""
    path = str(tmp_path / "ledger")
    signer = load_or_create_key(str(tmp_path / "ledger.key"), "example.com/ledger")
    with Ledger(path) as ledger:
        ledger.append([varied_fields(i) for i in range(20)])
        write_checkpoint(ledger, signer)
        for start in range(20, 45, 9):
            ledger.append([varied_fields(i) for i in range(start, min(start + 9, 45))])
        write_checkpoint(ledger, signer)
    return path, signer


def test_json_export_rehashes_to_the_chain_and_the_signed_root(signed_ledger, tmp_path):
    path, signer = signed_ledger
    out = str(tmp_path / "export.json")
    done = export_json(path, out)
    assert done["records"] == 45 and done["complete"]
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    doc = load_json_export(out)
    records = doc["records"]
    assert doc["complete"] is True and doc["ledger"]["size"] == len(records) == 45
    prev = GENESIS_PREV
    for seq, record in enumerate(records):
        assert record["seq"] == seq
        assert record["prev"] == prev
        assert record_hash(record) == record["hash"]
        prev = record["hash"]
    tree = MerkleTree.from_leaf_hashes(b"".join(leaf_of(record["hash"]) for record in records))
    assert tree.root().hex() == doc["ledger"]["root"]
    # The latest checkpoint in the export is signed over that same root.
    ckpt = verify_checkpoint(doc["ledger"]["checkpoint"], signer.verifier())
    assert ckpt.size == 45 and ckpt.root == tree.root()
    # So is every stored checkpoint, over the prefix it signs.
    for stored in doc["ledger"]["checkpoints"]:
        ckpt = parse_checkpoint(stored["text"])[0]
        assert tree.root(ckpt.size) == ckpt.root
    # A fresh ledger fed the exported fields rebuilds the same chain.
    with Ledger(str(tmp_path / "restored")) as restored:
        again = restored.append([dict((k, r[k]) for k in FIELDS if k not in ("seq", "prev")) for r in records])
        assert [r["hash"] for r in again] == [r["hash"] for r in records]
        assert restored.root().hex() == doc["ledger"]["root"]


def test_json_export_detects_an_altered_record(signed_ledger, tmp_path):
    out = str(tmp_path / "export.json")
    export_json(signed_ledger[0], out)
    doc = load_json_export(out)
    doc["records"][12]["result"]["msg"] = "nothing happened"
    assert record_hash(doc["records"][12]) != doc["records"][12]["hash"]


def test_json_export_filtered_to_a_stream_is_marked_incomplete(signed_ledger):
    stream = io.StringIO()
    done = export_json(signed_ledger[0], stream, record_filter=RecordFilter(status="failed"))
    doc = json.loads(stream.getvalue())
    assert doc["complete"] is False and not done["complete"]
    assert doc["filters"] == {"status": ["failed"]}
    assert [r["seq"] for r in doc["records"]] == [i for i in range(45) if i % 4 == 1]


def test_json_export_resets_an_existing_file_to_0600(signed_ledger, tmp_path):
    out = tmp_path / "export.json"
    out.write_text("old")
    os.chmod(str(out), 0o644)
    export_json(signed_ledger[0], str(out))
    assert stat.S_IMODE(os.stat(str(out)).st_mode) == 0o600
    assert load_json_export(str(out))["ledger"]["size"] == 45


def test_export_of_a_missing_ledger_is_an_export_error(tmp_path):
    with pytest.raises(ExportError, match="does not exist"):
        export_json(str(tmp_path / "nope"), io.StringIO())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ExportError, match="not a ledger directory"):
        export_json(str(tmp_path / "empty"), io.StringIO())


def test_record_filter():
    rec = varied_fields(5)
    rec["seq"] = 5
    assert RecordFilter()(rec)
    assert RecordFilter(host=["node0", "node1"], status="failed")(rec)
    assert not RecordFilter(host="node2")(rec)
    assert RecordFilter(jmespath_expr="result.rc != `0`")(rec)
    assert not RecordFilter(jmespath_expr="result.rc == `0`")(rec)
    assert not RecordFilter(jmespath_expr="result.nothing")(rec)
    # A type error on one record's data is no match, not an error.
    assert not RecordFilter(jmespath_expr="length(result.nothing) > `1`")(rec)
    assert RecordFilter(since="2026-11-22T08:00:05Z", until="2026-11-22T08:00:05Z")(rec)
    assert not RecordFilter(since="2026-11-22T08:00:06+00:00")(rec)
    with pytest.raises(ExportError, match="bad JMESPath expression"):
        RecordFilter(jmespath_expr="result.rc !=== `0`")
    with pytest.raises(ExportError, match="ISO 8601"):
        RecordFilter(since="yesterday")


def test_result_msg_is_one_line_and_cut():
    assert result_msg({"result": {"msg": "a\n  b"}}) == "a b"
    assert result_msg({"result": {"msg": "x" * 50}}, 10) == "xxxxxxx..."
    assert result_msg({"result": {"rc": 0}}) is None
    assert result_msg({"result": {"msg": ["one", 2]}}) == '["one", 2]'


def test_find_similar_ranks_the_same_failure_first(signed_ledger):
    path = signed_ledger[0]
    with Ledger(path, readonly=True) as ledger:
        target = ledger.get(9)
    hits = find_similar(path, text=target["result"]["msg"], k=3, record_filter=RecordFilter(status="failed"))
    assert hits[0][1]["seq"] == 9 and all(record["status"] == "failed" for _s, record in hits)
    like = find_similar(path, like_seq=9, k=5)
    assert 9 not in [record["seq"] for _s, record in like] and len(like) == 5
    assert find_similar(path, text="anything", k=3, min_score=1.01) == []


# ---------------------------------------------------------------------------
# Qdrant (local mode)

def _grep(directory, needle):
    found = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                if needle in handle.read():
                    found.append(os.path.join(root, name))
    return found


def test_qdrant_local_export_nearest_neighbour_idempotent_no_result_body(signed_ledger, tmp_path):
    pytest.importorskip("qdrant_client")
    path = signed_ledger[0]
    qdir = str(tmp_path / "qdrant")
    first = export_qdrant(path, path=qdir, collection="audit", batch=8)
    assert first["created"] and first["upserted"] == 45 and first["points"] == 45
    again = export_qdrant(path, path=qdir, collection="audit", batch=16)
    assert not again["created"] and again["upserted"] == 45 and again["points"] == 45

    with Ledger(path, readonly=True) as ledger:
        records = list(ledger.records())
    vectors = RecordVectors(path).of_records(records)
    client = qdrant_client(path=qdir)
    try:
        info = client.get_collection("audit")
        assert info.config.params.vectors.size == vectors.shape[1]
        for seq in (0, 7, 23, 44):
            found = client.query_points("audit", query=[float(x) for x in vectors[seq]], limit=3, with_payload=True).points
            assert found[0].id == seq
            assert found[0].score > 0.999
            assert set(found[0].payload) == set(QDRANT_PAYLOAD_FIELDS)
            assert found[0].payload["hash"] == records[seq]["hash"]
    finally:
        client.close()
    assert CANARY in json.dumps(records[7])
    assert _grep(qdir, CANARY.encode("utf-8")) == []
    assert _grep(qdir, records[7]["result"]["msg"].encode("utf-8")) == []


def test_qdrant_dim_mismatch_and_missing_package(signed_ledger, tmp_path, monkeypatch):
    pytest.importorskip("qdrant_client")
    from qdrant_client import models
    qdir = str(tmp_path / "qdrant")
    client = qdrant_client(path=qdir)
    try:
        client.create_collection("small", vectors_config=models.VectorParams(size=8, distance=models.Distance.COSINE))
    finally:
        client.close()
    with pytest.raises(ExportError, match="dim 8"):
        export_qdrant(signed_ledger[0], path=qdir, collection="small")
    with pytest.raises(ExportError, match="not both"):
        export_qdrant(signed_ledger[0], path=qdir, url="http://localhost:6333")
    monkeypatch.setitem(sys.modules, "qdrant_client", None)
    with pytest.raises(ExportError, match="qdrant-client"):
        export_qdrant(signed_ledger[0], path=str(tmp_path / "other"))
