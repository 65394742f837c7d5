# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Snapshot names and the retention rule, with the clock passed in (pure Python, no I/O).

A snapshot is named by the UTC second it was taken, ``20261123T011030Z``; a second snapshot in
the same second gets ``.1``, ``.2``, ... appended. Names that do not parse are never touched.

Retention counts periods back from ``now``: ``hourly: 24`` keeps, for each of the 24 hours
ending with the current one, the OLDEST snapshot taken in that hour (the first of the period,
so the kept set does not change as later snapshots arrive in the same period); ``daily`` counts
UTC days, ``weekly`` ISO weeks (Monday to Sunday), ``quarterly`` calendar quarters. A snapshot
kept by any rule stays. The newest snapshot is always kept (pruning never leaves none), and so
is a snapshot named after ``now`` (a clock that went back must not delete it).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import re

KINDS = ("hourly", "daily", "weekly", "quarterly")
NAME_RE = re.compile(r"^(\d{8}T\d{6}Z)(?:\.(\d+))?$")
TIME_FORMAT = "%Y%m%dT%H%M%SZ"
UTC = datetime.timezone.utc


class RetentionError(ValueError):
    """Bad retention counts or a bad time."""


def utc(value):
    """A timezone-aware UTC datetime from a datetime (naive = UTC), an epoch number or ISO 8601 text."""
    if isinstance(value, datetime.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.datetime.fromisoformat(text)
        except ValueError:
            try:
                parsed = datetime.datetime.strptime(value.strip(), TIME_FORMAT)
            except ValueError:
                raise RetentionError("%r is not an ISO 8601 time (e.g. 2026-11-23T01:10:30Z)" % value) from None
        return utc(parsed)
    raise RetentionError("%r is not a time" % (value,))


def snapshot_name(when, existing=()):
    """The name of a snapshot taken at ``when``, unique among ``existing``."""
    base = utc(when).strftime(TIME_FORMAT)
    taken = set(existing)
    if base not in taken:
        return base
    index = 1
    while "%s.%d" % (base, index) in taken:
        index += 1
    return "%s.%d" % (base, index)


def parse_name(name):
    """(UTC datetime, sequence) of a snapshot name, or None when the name is not one of ours."""
    match = NAME_RE.match(name)
    if not match:
        return None
    try:
        when = datetime.datetime.strptime(match.group(1), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None
    return when, int(match.group(2) or 0)


def validate_counts(counts):
    """{kind: int >= 0} for every kind; unknown kinds, negatives and non-integers raise RetentionError."""
    counts = dict(counts or {})
    unknown = sorted(set(counts) - set(KINDS))
    if unknown:
        raise RetentionError("retention: unknown period %s (known: %s)" % (", ".join(unknown), ", ".join(KINDS)))
    out = {}
    for kind in KINDS:
        value = counts.get(kind, 0)
        if value is None:
            value = 0
        if isinstance(value, bool) or not isinstance(value, int):
            raise RetentionError("retention.%s must be a whole number, not %r" % (kind, value))
        if value < 0:
            raise RetentionError("retention.%s must be 0 or more, not %d" % (kind, value))
        if value > 100000:
            raise RetentionError("retention.%s = %d is more than 100000 periods" % (kind, value))
        out[kind] = value
    return out


def period(kind, when):
    """The index of the period of ``kind`` holding the UTC time ``when`` (consecutive periods differ by 1)."""
    when = utc(when)
    seconds = int(when.timestamp() // 1)
    if kind == "hourly":
        return seconds // 3600
    days = seconds // 86400
    if kind == "daily":
        return days
    if kind == "weekly":
        return (days + 3) // 7  # 1970-01-01 was a Thursday: weeks start on Mondays
    if kind == "quarterly":
        return when.year * 4 + (when.month - 1) // 3
    raise RetentionError("unknown period %r" % kind)


def select(names, counts, now):
    """Split snapshot names into kept and deleted under ``counts`` at time ``now``.

    Returns ``(keep, delete, reasons)``: ``keep`` and ``delete`` are lists of names (oldest
    first), ``reasons`` maps each kept name to the rules that keep it. Names that are not
    snapshot names are in neither list.
    """
    counts = validate_counts(counts)
    now = utc(now)
    dated = sorted((parse_name(name) + (name,) for name in names if parse_name(name) is not None),
                   key=lambda item: (item[0], item[1]))
    reasons = {}
    for kind in KINDS:
        if not counts[kind]:
            continue
        newest = period(kind, now)
        wanted = set(range(newest - counts[kind] + 1, newest + 1))
        claimed = set()
        for when, dummy_seq, name in dated:
            key = period(kind, when)
            if key in wanted and key not in claimed:
                claimed.add(key)
                reasons.setdefault(name, []).append(kind)
    for when, dummy_seq, name in dated:
        if when > now:
            reasons.setdefault(name, []).append("future")
    if dated:
        reasons.setdefault(dated[-1][2], []).append("latest")
    keep = [name for dummy_when, dummy_seq, name in dated if name in reasons]
    delete = [name for dummy_when, dummy_seq, name in dated if name not in reasons]
    return keep, delete, reasons
