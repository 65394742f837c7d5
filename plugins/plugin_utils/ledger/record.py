# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ledger records, their canonical encoding and their hash chain.

A record is a flat JSON object with the fields of ``FIELDS`` plus ``hash``.

Canonical encoding (what ``hash`` is computed over): every field except
``hash``, serialised as JSON with keys sorted by code point, no whitespace
(``,`` and ``:`` separators), UTF-8, non-ASCII characters written as
themselves (``ensure_ascii=False``), the JSON short escapes for control
characters, and NaN/Infinity refused.  This is RFC 8785 (JCS) in shape with
two documented differences, chosen so that the fast C JSON encoder does the
work (one record costs a few microseconds to encode):

- a float is written as Python's shortest round-trip ``repr`` (``1.5``,
  ``1.0``, ``1e-07``), deterministic on every CPython >= 3.1; JCS would
  write ``1`` for ``1.0``.  A reader in another language re-hashes the
  stored line's field text, not a re-serialisation, so this costs nothing;
- integers are exact (JCS limits them to 2**53).

``duration`` is rounded to microseconds; ``result`` is normalised through
the same encoder (bytes are decoded as UTF-8 with replacement, sets and
tuples become lists, other unknown objects become ``str(obj)``), so the
record in memory equals the record read back from disk.

``hash`` = lower-case hex SHA-256 of the canonical bytes.  ``prev`` is the
previous record's ``hash`` (``GENESIS_PREV``, 64 zeros, for seq 0).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import hashlib
import json

FIELDS = (
    "seq", "time", "kind", "playbook", "play", "role", "task", "task_uuid", "host",
    "module", "status", "changed", "duration", "result", "prev",
)
KINDS = ("playbook", "play", "task", "stats")
STATUSES = ("ok", "changed", "failed", "skipped", "unreachable")
GENESIS_PREV = "0" * 64
_HEX = frozenset("0123456789abcdef")


class RecordError(ValueError):
    """A record, or the fields given to build one, is malformed."""


def _default(obj):
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, (set, frozenset)):
        return sorted(obj, key=repr)
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def _dumps(obj):
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False, default=_default)
    except (TypeError, ValueError) as exc:
        raise RecordError("cannot encode canonically: %s" % exc) from exc


def now_rfc3339():
    """The current UTC time as an RFC 3339 string with microseconds and ``Z``."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(record):
    """The canonical bytes of ``record``: every field except ``hash``."""
    body = {k: v for k, v in record.items() if k != "hash"}
    try:
        return _dumps(body).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise RecordError("record is not valid UTF-8 text: %s" % exc) from exc


def record_hash(record):
    """Hex SHA-256 over ``canonical(record)``."""
    return hashlib.sha256(canonical(record)).hexdigest()


def record_line(record):
    """The stored form of a record: the canonical encoding of all fields, hash included."""
    return _dumps(record).encode("utf-8")


def _is_hex64(value):
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX


def validate(record):
    """Raise ``RecordError`` unless ``record`` has the shape of a ledger record."""
    if not isinstance(record, dict):
        raise RecordError("record is not an object")
    missing = [f for f in FIELDS + ("hash",) if f not in record]
    if missing:
        raise RecordError("missing fields: %s" % ", ".join(missing))
    extra = sorted(set(record) - set(FIELDS) - {"hash"})
    if extra:
        raise RecordError("unknown fields: %s" % ", ".join(extra))
    if not isinstance(record["seq"], int) or isinstance(record["seq"], bool) or record["seq"] < 0:
        raise RecordError("seq must be a non-negative integer")
    if record["kind"] not in KINDS:
        raise RecordError("kind must be one of %s" % ", ".join(KINDS))
    if record["status"] is not None and record["status"] not in STATUSES:
        raise RecordError("status must be one of %s" % ", ".join(STATUSES))
    if not _is_hex64(record["prev"]) or not _is_hex64(record["hash"]):
        raise RecordError("prev and hash must be 64 lower-case hex digits")


def make_record(fields, prev_hash, seq):
    """Build a record from ``fields`` (a dict of any subset of FIELDS but seq/prev).

    Missing fields default to None (``time`` to now, ``changed`` to False,
    ``result`` to {}).  Returns a new dict with ``seq``, ``prev`` and ``hash`` set.
    """
    if not isinstance(fields, dict):
        raise RecordError("fields must be a dict")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown:
        raise RecordError("unknown fields: %s" % ", ".join(unknown))
    if not _is_hex64(prev_hash):
        raise RecordError("prev_hash must be 64 lower-case hex digits")
    rec = {name: fields.get(name) for name in FIELDS}
    rec["seq"] = int(seq)
    rec["prev"] = prev_hash
    if rec["time"] is None:
        rec["time"] = now_rfc3339()
    if rec["kind"] is None:
        rec["kind"] = "task"
    if rec["changed"] is None:
        rec["changed"] = False
    if rec["result"] is None:
        rec["result"] = {}
    if rec["duration"] is not None:
        rec["duration"] = round(float(rec["duration"]), 6)
    if rec["kind"] not in KINDS:
        raise RecordError("kind must be one of %s" % ", ".join(KINDS))
    if rec["status"] is not None and rec["status"] not in STATUSES:
        raise RecordError("status must be one of %s" % ", ".join(STATUSES))
    # Normalise through the encoder so memory equals what is read back.
    rec = json.loads(canonical(rec))
    rec["hash"] = record_hash(rec)
    return rec


def parse_line(line):
    """Parse one stored line (bytes, without the newline) into a validated record."""
    try:
        rec = json.loads(line)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RecordError("line is not JSON: %s" % exc) from exc
    validate(rec)
    return rec
