# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Retention of the cache's snapshots with a simulated clock (no filesystem)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import retention

UTC = datetime.timezone.utc
T0 = datetime.datetime(2026, 3, 30, 0, 5, tzinfo=UTC)  # a Monday, Q1


def names_every(step, count, start=T0):
    """Snapshot names every ``step`` from ``start`` on, and the time after the last one."""
    out = []
    when = start
    for dummy in range(count):
        out.append(retention.snapshot_name(when, out))
        when += step
    return out, when - step


def test_names_round_trip_and_are_unique_within_a_second():
    first = retention.snapshot_name(T0)
    assert first == "20260330T000500Z"
    second = retention.snapshot_name(T0, [first])
    third = retention.snapshot_name(T0, [first, second])
    assert (second, third) == ("20260330T000500Z.1", "20260330T000500Z.2")
    assert retention.parse_name(third) == (T0, 2)
    for bad in ("20260330T000500", "snap", "20261340T000000Z", "20260330T000500Z.x", ".20260330T000500Z"):
        assert retention.parse_name(bad) is None, bad


def test_hourly_keeps_the_first_of_each_of_the_last_n_hours():
    names, last = names_every(datetime.timedelta(minutes=20), 30)  # 10 hours, 3 per hour
    keep, delete, reasons = retention.select(names, {"hourly": 4}, last)
    # the last 4 hours are hours 6..9 after T0's hour; the first of each is at :05
    expected = [retention.snapshot_name(T0 + datetime.timedelta(hours=h)) for h in range(6, 10)] + [names[-1]]
    assert keep == expected, keep
    assert sorted(keep + delete) == sorted(names) and not set(keep) & set(delete)
    assert reasons[names[-1]] == ["latest"]
    assert all(reasons[n] == ["hourly"] for n in expected[:-1])


def test_periods_combine_and_the_clock_decides():
    names, last = names_every(datetime.timedelta(hours=6), 4 * 7 * 5)  # five weeks, four a day
    counts = {"hourly": 0, "daily": 3, "weekly": 2, "quarterly": 1}
    keep, delete, reasons = retention.select(names, counts, last)
    days = sorted(set(n for n in keep if "daily" in reasons[n]))
    weeks = sorted(set(n for n in keep if "weekly" in reasons[n]))
    assert [retention.parse_name(n)[0].date() for n in days] == [(last - datetime.timedelta(days=d)).date() for d in (2, 1, 0)]
    # weeks: the first snapshot of the last two ISO weeks (Mondays 00:05)
    assert [retention.parse_name(n)[0].weekday() for n in weeks] == [0, 0]
    # the clock is in Q2 2026: the quarter's first snapshot (2026-04-01 00:05), not T0's (Q1)
    first_q2 = [n for n in names if retention.parse_name(n)[0] >= datetime.datetime(2026, 4, 1, tzinfo=UTC)][0]
    assert first_q2 == "20260401T000500Z"
    assert [n for n in keep if "quarterly" in reasons[n]] == [first_q2]
    # a clock 30 days later: no day or week of the snapshots is recent any more; the quarter and the newest stay
    later = last + datetime.timedelta(days=30)
    keep_later = retention.select(names, counts, later)[0]
    assert keep_later == [first_q2, names[-1]], keep_later


def test_newest_and_future_snapshots_are_kept_and_zero_counts_delete_the_rest():
    names, last = names_every(datetime.timedelta(hours=1), 5)
    keep, delete, dummy = retention.select(names, {"hourly": 0, "daily": 0, "weekly": 0, "quarterly": 0}, last)
    assert keep == [names[-1]] and delete == names[:-1]
    # the clock went back two hours: the two snapshots "from the future" stay
    keep, delete, reasons = retention.select(names, {}, last - datetime.timedelta(hours=2))
    assert keep == names[-2:] and "future" in reasons[names[-1]]
    assert retention.select([], {"hourly": 3}, last) == ([], [], {})
    foreign = ["manual-copy", names[0]]
    keep, delete, dummy = retention.select(foreign, {"hourly": 1}, last)
    assert "manual-copy" not in keep + delete


def test_week_boundary_is_monday_utc():
    sunday = datetime.datetime(2026, 3, 29, 23, 59, tzinfo=UTC)
    monday = datetime.datetime(2026, 3, 30, 0, 1, tzinfo=UTC)
    assert retention.period("weekly", monday) == retention.period("weekly", sunday) + 1
    assert retention.period("weekly", sunday) == retention.period("weekly", sunday - datetime.timedelta(days=6))
    assert retention.period("quarterly", datetime.datetime(2026, 3, 31, tzinfo=UTC)) + 1 == \
        retention.period("quarterly", datetime.datetime(2026, 4, 1, tzinfo=UTC))
    assert retention.period("quarterly", datetime.datetime(2026, 12, 31, tzinfo=UTC)) + 1 == \
        retention.period("quarterly", datetime.datetime(2027, 1, 1, tzinfo=UTC))


@pytest.mark.parametrize("counts, message", [
    ({"hourly": -1}, "retention.hourly must be 0 or more"),
    ({"daily": "7"}, "retention.daily must be a whole number"),
    ({"daily": True}, "retention.daily must be a whole number"),
    ({"monthly": 3}, "unknown period monthly"),
    ({"weekly": 10 ** 9}, "more than 100000"),
])
def test_bad_counts(counts, message):
    with pytest.raises(retention.RetentionError, match=message):
        retention.validate_counts(counts)


def test_times_parse_as_utc():
    assert retention.utc("2026-03-30T00:05:00Z") == T0
    assert retention.utc("2026-03-30T02:05:00+02:00") == T0
    assert retention.utc("2026-03-30T00:05:00") == T0
    assert retention.utc(T0.timestamp()) == T0
    with pytest.raises(retention.RetentionError, match="not an ISO 8601 time"):
        retention.utc("yesterday")
