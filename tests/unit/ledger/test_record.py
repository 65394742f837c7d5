# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import json

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import (
    GENESIS_PREV, RecordError, canonical, make_record, parse_line, record_hash, record_line,
)


def test_canonical_is_sorted_compact_utf8_and_excludes_hash():
    rec = make_record({"host": "h\u00e9", "result": {"b": 1, "a": [1.5, None, True]}, "time": "2024-01-01T00:00:00Z"}, GENESIS_PREV, 0)
    data = canonical(rec)
    assert b" " not in data.replace(b"2024", b"")
    assert "h\u00e9".encode("utf-8") in data
    assert b'"hash"' not in data
    assert data == json.dumps({k: v for k, v in rec.items() if k != "hash"}, sort_keys=True,
                              separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    assert rec["hash"] == hashlib.sha256(data).hexdigest() == record_hash(rec)
    assert list(json.loads(data)) == sorted(json.loads(data))


def test_round_trip_through_stored_line():
    rec = make_record({"result": {"x": b"bytes", "s": {3, 1}, "t": (1, 2), "o": object}, "duration": 1.23456789}, GENESIS_PREV, 5)
    assert rec["result"]["x"] == "bytes" and rec["result"]["t"] == [1, 2] and rec["duration"] == 1.234568
    back = parse_line(record_line(rec))
    assert back == rec and record_hash(back) == rec["hash"]


def test_chain_and_determinism():
    first = make_record({"time": "t"}, GENESIS_PREV, 0)
    second = make_record({"time": "t"}, first["hash"], 1)
    assert second["prev"] == first["hash"] and second["hash"] != first["hash"]
    assert make_record({"time": "t"}, GENESIS_PREV, 0) == first


@pytest.mark.parametrize("fields", [{"result": {"x": float("nan")}}, {"kind": "bogus"}, {"status": "weird"}, {"nope": 1}])
def test_bad_fields_refused(fields):
    with pytest.raises(RecordError):
        make_record(fields, GENESIS_PREV, 0)


def test_bad_lines_refused():
    for line in (b"{", b"[]", b'{"seq": 1}'):
        with pytest.raises(RecordError):
            parse_line(line)
    with pytest.raises(RecordError):
        make_record({}, "xyz", 0)
