# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opdbus-ledger command line: exit statuses, verify, proofs, listings, search, export, stats."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import stat
import subprocess
import sys

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import load_or_create_key, write_checkpoint
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.cli import COMMANDS, main
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
MODULE = "ansible_collections.opdbus.infra.plugins.plugin_utils.ledger"
FAILURE = "Failed to fetch http://deb.example.com/pool/main/n/nginx/nginx_%d.deb  404  Not Found [IP: 10.0.0.%d 80]"


def fields(i):
    failed = i % 10 == 4
    return {
        "kind": "task", "playbook": "site.yml", "play": "web" if i % 2 else "db", "role": None,
        "task": "install packages" if failed else "render config %d" % i, "task_uuid": "uuid-%d" % i,
        "host": "web%d" % (i % 3), "module": "ansible.builtin.apt" if failed else "ansible.builtin.template",
        "status": "failed" if failed else ("changed" if i % 3 else "ok"), "changed": bool(i % 3) and not failed,
        "duration": 0.5, "time": "2026-11-22T09:%02d:00.000000Z" % i,
        "result": {"rc": 100 if failed else 0, "msg": FAILURE % (i, i) if failed else "rendered file %d" % i},
    }


@pytest.fixture
def ledger(tmp_path):
    """A 40-record ledger with signed checkpoints at sizes 16 and 40: (path, public key file)."""
    path = str(tmp_path / "ledger")
    signer = load_or_create_key(str(tmp_path / "ledger.key"), "example.com/ledger")
    with Ledger(path) as led:
        led.append([fields(i) for i in range(16)])
        write_checkpoint(led, signer)
        led.append([fields(i) for i in range(16, 40)])
        write_checkpoint(led, signer)
    return path, str(tmp_path / "ledger.key.pub")


def run(capsys, *argv):
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def tamper(path, seq, old=b"rendered file", new=b"rendered FILE"):
    segment = os.path.join(path, "records", "seg-000000.jsonl")
    with open(segment, "rb") as handle:
        lines = handle.read().split(b"\n")
    assert old in lines[seq]
    lines[seq] = lines[seq].replace(old, new)
    with open(segment, "wb") as handle:
        handle.write(b"\n".join(lines))


# ---------------------------------------------------------------------------
# verify

def test_verify_ok_with_public_key(ledger, capsys):
    path, pub = ledger
    status, out, err = run(capsys, "--ledger", path, "verify", "--public-key", pub)
    assert status == 0, err
    assert out.splitlines()[0].startswith("ledger OK: 40 records, root ")
    assert "checkpoints: 3 signatures verified" in out
    status, out, err = run(capsys, "verify", "--ledger", path, "--json")
    report = json.loads(out)
    assert status == 0 and report["ok"] and report["size"] == 40


def test_verify_names_the_first_bad_record(ledger, capsys):
    path, pub = ledger
    tamper(path, 21)
    tamper(path, 30)
    status, out, err = run(capsys, "--ledger", path, "verify", "--public-key", pub)
    assert status == 1
    first = out.splitlines()[0]
    assert first.startswith("ledger FAILED: record 21 (seg-000000.jsonl line 22): hash mismatch")
    assert "record 30" in out


def test_verify_with_trusted_checkpoint_catches_truncation(ledger, tmp_path, capsys):
    path, pub = ledger
    trusted = str(tmp_path / "trusted.ckpt")
    with open(os.path.join(path, "checkpoints", "latest"), "rb") as src, open(trusted, "wb") as dst:
        dst.write(src.read())
    assert run(capsys, "--ledger", path, "verify", "--public-key", pub, "--trusted-checkpoint", trusted)[0] == 0
    # Cut the last 5 records and the checkpoints that mention them: only the trusted one notices.
    segment = os.path.join(path, "records", "seg-000000.jsonl")
    with open(segment, "rb") as handle:
        lines = handle.read().split(b"\n")
    with open(segment, "wb") as handle:
        handle.write(b"\n".join(lines[:35]) + b"\n")
    with open(os.path.join(path, "leaves.idx"), "r+b") as handle:
        handle.truncate(35 * 32)
    for name in ("latest", "000000000040.ckpt"):
        os.unlink(os.path.join(path, "checkpoints", name))
    assert run(capsys, "--ledger", path, "verify", "--public-key", pub)[0] == 0
    status, out, err = run(capsys, "--ledger", path, "verify", "--public-key", pub, "--trusted-checkpoint", trusted)
    assert status == 1 and "log truncated" in out.splitlines()[0]


def test_usage_and_io_errors_exit_2_with_one_line(ledger, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("OPDBUS_LEDGER_DIR", raising=False)
    status, out, err = run(capsys, "verify")
    assert status == 2 and "OPDBUS_LEDGER_DIR" in err and len(err.splitlines()) == 1
    status, out, err = run(capsys, "--ledger", str(tmp_path / "nope"), "show")
    assert status == 2 and "does not exist" in err and "Traceback" not in err
    status, out, err = run(capsys, "--ledger", ledger[0], "verify", "--public-key", str(tmp_path / "nope.pub"))
    assert status == 2 and len(err.splitlines()) == 1
    status, out, err = run(capsys, "frobnicate")
    assert status == 2 and len(err.splitlines()) == 1
    assert run(capsys)[0] == 2
    assert run(capsys, "--help")[0] == 0
    monkeypatch.setenv("OPDBUS_LEDGER_DIR", ledger[0])
    assert run(capsys, "verify")[0] == 0


def test_command_table_is_the_parser():
    names = ["verify", "prove", "verify-proof", "show", "tail", "search", "export", "stats", "snapshot", "replicate"]
    assert [row[0] for row in COMMANDS] == names


# ---------------------------------------------------------------------------
# prove / verify-proof

def write(tmp_path, name, obj):
    path = str(tmp_path / name)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(obj, handle)
    return path


def test_inclusion_proof_round_trip_and_forgeries(ledger, tmp_path, capsys):
    path = ledger[0]
    status, out, err = run(capsys, "--ledger", path, "prove", "13", "--size", "30")
    assert status == 0, err
    proof = json.loads(out)
    assert proof["type"] == "inclusion" and proof["seq"] == 13 and proof["size"] == 30
    good = write(tmp_path, "good.json", proof)
    status, out, err = run(capsys, "--ledger", path, "verify-proof", good)
    assert status == 0 and out.startswith("inclusion proof OK: record 13"), out + err
    # Against a root given by hand, without the ledger.
    status, out, err = run(capsys, "verify-proof", good, "--root", proof["root"])
    assert status == 0, out + err

    with Ledger(path, readonly=True) as led:
        other_leaf = led.leaf_hash(14).hex()
        other_hash = led.get(14)["hash"]
    # The proof of record 13 does not prove record 14, whichever way it is relabelled.
    for change in ({"leaf_hash": other_leaf, "record_hash": other_hash}, {"seq": 14}):
        forged = dict(proof, **change)
        status, out, err = run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "forged.json", forged))
        assert status == 1 and "FAILED" in out, forged
    # A leaf swapped without its record hash is caught by the record hash.
    forged = dict(proof, leaf_hash=other_leaf)
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "swap.json", forged))[0] == 1
    # --record-hash of another record fails.
    assert run(capsys, "--ledger", path, "verify-proof", good, "--record-hash", other_hash)[0] == 1
    # One flipped digit in one node.
    node = proof["proof"][1]
    forged = dict(proof, proof=proof["proof"][:1] + [("0" if node[0] != "0" else "1") + node[1:]] + proof["proof"][2:])
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "flip.json", forged))[0] == 1
    # A node dropped.
    forged = dict(proof, proof=proof["proof"][:-1])
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "short.json", forged))[0] == 1
    # The wrong root.
    assert run(capsys, "verify-proof", good, "--root", "00" * 32)[0] == 1
    # A proof for a size beyond the ledger.
    forged = dict(proof, size=41)
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "big.json", forged))[0] == 1
    # Not a proof at all, or no root to check against: usage errors.
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "junk.json", {"type": "x"}))[0] == 2
    assert run(capsys, "verify-proof", good)[0] == 2


def test_consistency_proof_between_checkpoints(ledger, tmp_path, capsys):
    path, pub = ledger
    first = os.path.join(path, "checkpoints", "000000000016.ckpt")
    second = os.path.join(path, "checkpoints", "latest")
    status, out, err = run(capsys, "--ledger", path, "prove", "--consistency", first, second)
    assert status == 0, err
    proof = json.loads(out)
    assert (proof["type"], proof["first"], proof["second"]) == ("consistency", 16, 40)
    good = write(tmp_path, "cons.json", proof)
    assert run(capsys, "--ledger", path, "verify-proof", good)[0] == 0
    # Without the ledger: the checkpoints inside the proof, their signatures checked.
    status, out, err = run(capsys, "verify-proof", good, "--public-key", pub)
    assert status == 0 and "consistency proof OK" in out, out + err
    status, out, err = run(capsys, "verify-proof", good, "--checkpoint", first, "--checkpoint", second, "--public-key", pub)
    assert status == 0, out + err
    # A forged node, or roots of other sizes.
    node = proof["proof"][0]
    forged = dict(proof, proof=[("f" if node[0] != "f" else "e") + node[1:]] + proof["proof"][1:])
    assert run(capsys, "verify-proof", write(tmp_path, "f.json", forged), "--public-key", pub)[0] == 1
    forged = dict(proof, first=15)
    assert run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "g.json", forged))[0] == 1
    # Sizes instead of checkpoint files.
    status, out, err = run(capsys, "--ledger", path, "prove", "--consistency", "7", "33")
    assert status == 0 and run(capsys, "--ledger", path, "verify-proof", write(tmp_path, "s.json", json.loads(out)))[0] == 0
    assert run(capsys, "--ledger", path, "prove", "--consistency", "33", "7")[0] == 2
    assert run(capsys, "--ledger", path, "prove", "40")[0] == 2


# ---------------------------------------------------------------------------
# show / tail / search

def seqs_of(out):
    return [json.loads(line)["seq"] for line in out.splitlines()]


def test_show_and_tail_with_filters(ledger, capsys):
    path = ledger[0]
    status, out, err = run(capsys, "--ledger", path, "show", "3", "10-12", "--json")
    assert status == 0 and seqs_of(out) == [3, 10, 11, 12]
    status, out, err = run(capsys, "--ledger", path, "--json", "show", "--status", "failed")
    assert seqs_of(out) == [4, 14, 24, 34]
    status, out, err = run(capsys, "--ledger", path, "--json", "show", "--jmespath", "result.rc != `0`", "--host", "web1")
    assert seqs_of(out) == [4, 34]
    status, out, err = run(capsys, "--ledger", path, "--json", "show", "--since", "2026-11-22T09:20:00Z",
                           "--until", "2026-11-22T09:22:00Z", "--play", "web")
    assert seqs_of(out) == [21]
    status, out, err = run(capsys, "--ledger", path, "--json", "show", "--module", "ansible.builtin.apt", "--kind", "task",
                           "--task", "install packages", "--host", "web0", "--host", "web2")
    assert seqs_of(out) == [14, 24]
    status, out, err = run(capsys, "--ledger", path, "show", "4")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["SEQ", "TIME", "KIND"]
    assert lines[1].split()[:5] == ["4", "2026-11-22T09:04:00.000000Z", "task", "failed", "web1"]
    assert "| Failed to fetch" in lines[1]
    status, out, err = run(capsys, "--ledger", path, "tail", "-n", "3", "--json")
    assert seqs_of(out) == [37, 38, 39]
    status, out, err = run(capsys, "--ledger", path, "tail", "-n", "2", "--status", "failed", "--json")
    assert seqs_of(out) == [24, 34]
    assert run(capsys, "--ledger", path, "show", "99")[0] == 2


def test_bad_jmespath_exits_2_with_the_parser_message(ledger, capsys):
    status, out, err = run(capsys, "--ledger", ledger[0], "show", "--jmespath", "result.rc !=== `0`")
    assert status == 2 and out == ""
    assert "bad JMESPath expression" in err and "Parse error at column" in err and len(err.splitlines()) == 1


def test_search_by_text_and_like(ledger, capsys):
    path = ledger[0]
    text = "Failed to fetch http://deb.example.com/pool/main/n/nginx/nginx_99.deb 404 Not Found [IP: 192.0.2.7 80]"
    status, out, err = run(capsys, "--ledger", path, "--json", "search", text, "-k", "4")
    assert status == 0, err
    hits = [json.loads(line) for line in out.splitlines()]
    assert sorted(hit["record"]["seq"] for hit in hits) == [4, 14, 24, 34]
    assert hits[0]["score"] >= hits[-1]["score"] > 0.3
    status, out, err = run(capsys, "--ledger", path, "--json", "search", "--like", "14", "-k", "3")
    assert sorted(json.loads(line)["record"]["seq"] for line in out.splitlines()) == [4, 24, 34]
    status, out, err = run(capsys, "--ledger", path, "search", text, "-k", "2", "--host", "web0")
    lines = out.splitlines()
    assert lines[0].startswith("SCORE") and len(lines) == 3 and all(" web0 " in line for line in lines[1:])
    assert os.path.exists(os.path.join(path, "vectors", "index.tsv"))
    assert run(capsys, "--ledger", path, "search")[0] == 2
    assert run(capsys, "--ledger", path, "search", "--like", "400")[0] == 2


# ---------------------------------------------------------------------------
# export / stats

def test_export_json_and_qdrant(ledger, tmp_path, capsys):
    path = ledger[0]
    out_file = str(tmp_path / "export.json")
    status, out, err = run(capsys, "--ledger", path, "export", "--format", "json", "-o", out_file)
    assert status == 0 and "exported 40 of 40 records" in out, err
    assert stat.S_IMODE(os.stat(out_file).st_mode) == 0o600
    with open(out_file, encoding="utf-8") as handle:
        assert len(json.load(handle)["records"]) == 40
    status, out, err = run(capsys, "--ledger", path, "export", "--status", "failed")
    assert [r["seq"] for r in json.loads(out)["records"]] == [4, 14, 24, 34]
    pytest.importorskip("qdrant_client")
    qdir = str(tmp_path / "qdrant")
    status, out, err = run(capsys, "--ledger", path, "--json", "export", "--format", "qdrant", "--qdrant-path", qdir,
                           "--collection", "audit")
    assert status == 0, err
    assert json.loads(out)["points"] == 40
    assert run(capsys, "--ledger", path, "export", "--format", "qdrant")[0] == 2
    assert run(capsys, "--ledger", path, "export", "--format", "qdrant", "--qdrant-url", "http://127.0.0.1:1",
               "--qdrant-api-key-env", "OPDBUS_TEST_UNSET_VARIABLE")[0] == 2


def test_stats(ledger, capsys):
    path = ledger[0]
    status, out, err = run(capsys, "--ledger", path, "--json", "stats")
    stats = json.loads(out)
    assert status == 0
    assert stats["records"] == 40 and stats["segments"] == 1 and stats["checkpoints"] == 2
    assert stats["latest_checkpoint_size"] == 40
    assert stats["by_status"]["failed"] == 4 and sum(stats["by_host"].values()) == 40
    assert stats["by_kind"] == {"task": 40}
    assert stats["first_time"] == "2026-11-22T09:00:00.000000Z" and stats["last_time"] == "2026-11-22T09:39:00.000000Z"
    assert stats["record_bytes"] > 0 and stats["total_bytes"] > stats["record_bytes"]
    status, out, err = run(capsys, "--ledger", path, "stats")
    assert status == 0 and "records: 40 in 1 segments" in out and "by status: changed" in out


# ---------------------------------------------------------------------------
# python -m, as the opdbus-ledger wrapper runs it

def _collections_dir():
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, "ansible_collections", "opdbus", "infra", "plugins")):
            return entry
    return os.path.join(REPO, ".collections")


def test_python_dash_m(ledger):
    path, pub = ledger
    env = dict(os.environ, PYTHONPATH=_collections_dir())
    env.pop("OPDBUS_LEDGER_DIR", None)
    cmd = [sys.executable, "-m", MODULE, "--ledger", path, "verify", "--public-key", pub]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("ledger OK: 40 records")
    tamper(path, 17)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[0].startswith("ledger FAILED: record 17 (seg-000000.jsonl line 18)")
    done = subprocess.run([sys.executable, "-m", MODULE, "--ledger", path + "-missing", "stats"], env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
