# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_cache: input validation and the plan, on a model of the state (no filesystem touched)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import shutil
import subprocess

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import cache, retention, script, units

NOW = datetime.datetime(2026, 11, 23, 1, 0, tzinfo=datetime.timezone.utc)


@pytest.mark.parametrize("text, expected", [
    ("10G", 10 * 1024 ** 3), ("512M", 512 * 1024 ** 2), ("1.5T", int(1.5 * 1024 ** 4)), ("4096", 4096),
    ("10GiB", 10 * 1024 ** 3), (" 2k ", 2048), ("none", "none"), ("NONE", "none"), (None, None),
])
def test_sizes(text, expected):
    assert cache.parse_size(text) == expected


@pytest.mark.parametrize("text", ["ten gigs", "10X", "-1G", "0", "0M", "G", "1e3", "99999999E"])
def test_bad_sizes(text):
    with pytest.raises(cache.ValidationError, match="size_limit"):
        cache.parse_size(text)


@pytest.mark.parametrize("algo, level, expected", [
    ("zstd", None, "zstd"), ("zstd", 1, "zstd:1"), ("zstd", 15, "zstd:15"), ("zlib", 9, "zlib:9"),
    ("lzo", None, "lzo"), ("none", None, "none"), (None, None, None),
])
def test_compression_values(algo, level, expected):
    assert cache.compression_value(algo, level) == expected


@pytest.mark.parametrize("algo, level, message", [
    ("zstd", 16, "compression_level 16 is out of range for zstd (1 to 15)"),
    ("zstd", 0, "out of range for zstd"),
    ("zlib", 10, "compression_level 10 is out of range for zlib (1 to 9)"),
    ("lzo", 1, "compression lzo takes no compression_level"),
    ("none", 3, "compression none takes no compression_level"),
    ("brotli", None, "is not one of zstd, zlib, lzo, none"),
])
def test_bad_compression(algo, level, message):
    with pytest.raises(cache.ValidationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cache.compression_value(algo, level)


@pytest.mark.parametrize("path", ["/srv/btrfs/@cache", "/srv/my cache/x", "/a/.hidden", "/a-b/c_d", "/ü/x"])
def test_escape_path_matches_systemd_escape(path):
    tool = shutil.which("systemd-escape")
    if tool is None:
        pytest.skip("systemd-escape is not installed (the oracle)")
    expected = subprocess.run([tool, "--path", path], check=True, capture_output=True, text=True).stdout.strip()
    assert units.escape_path(path) == expected


def test_schedules():
    assert units.check_schedule("hourly") == "hourly"
    assert units.check_schedule(" daily ") == "daily"
    for bad in ("", "every hour; rm -rf /", "hourly\nExecStart=/bin/sh"):
        with pytest.raises(units.ScheduleError):
            units.check_schedule(bad)
    # Forms of systemd.time(7)'s examples, and mistakes (systemd-analyze calendar, when installed, agrees).
    good = ["*-*-* 03:15:00", "Mon..Fri *-*-* 09:00", "Sat,Sun 10:00", "*-*-01 00:00:00", "2027-01..06-* 12:00",
            "*-02~03", "*:0/15", "Mon 2027-12-31 23:59:59.5 UTC", "*-*-* 03:00 Europe/Berlin", "12:00"]
    bad = ["*-*-* 25:99:00", "*-*-* 03:60", "Funday 10:00", "*-13-01", "*-*-32 00:00", "1..2..3 10:00",
           "*-*-* 10:00 Mars/Olympus", "10:00 10:00", "*-*-* 5..2:00"]
    for text in good:
        assert units.check_schedule(text) == text
    for text in bad:
        with pytest.raises(units.ScheduleError, match="is not a systemd OnCalendar expression: "):
            units.check_schedule(text)
    analyze = shutil.which("systemd-analyze")
    if analyze:
        for text in good + bad:
            accepted = subprocess.run([analyze, "calendar", text], capture_output=True, check=False).returncode == 0
            assert accepted == (text in good), text


def test_unit_texts_quote_and_carry_retention():
    counts = {"hourly": 24, "daily": 7, "weekly": 4, "quarterly": 1}
    text = units.service_text("/srv/my cache/@c", "/srv/my cache/@c.snapshots", counts, "/usr/local/libexec/opdbus/x")
    exec_line = [line for line in text.splitlines() if line.startswith("ExecStart=")][0]
    assert exec_line == ('ExecStart=/usr/bin/python3 /usr/local/libexec/opdbus/x --cache "/srv/my cache/@c" '
                         '--snapshot-dir "/srv/my cache/@c.snapshots" --hourly 24 --daily 7 --weekly 4 --quarterly 1')
    timer = units.timer_text("/srv/c", "*-*-* 03:00:00")
    assert "OnCalendar=*-*-* 03:00:00\n" in timer and "WantedBy=timers.target" in timer
    assert "%%" in units.service_text("/srv/100%", "/srv/100%.s", counts, "/x")


def desired(**changes):
    out = {"state": "present", "filesystem": "/fs", "path": "/fs/@cache", "snapshot_dir": "/fs/@cache.snapshots",
           "compression": "zstd:3", "size_limit": None, "schedule": None, "retention": dict(cache.DEFAULT_RETENTION),
           "prune": False, "snapshot": False, "now": NOW, "units_dir": "/units", "script_path": "/lib/snap",
           "service": "opdbus-btrfs-cache-fs-\\x40cache.service", "timer": "opdbus-btrfs-cache-fs-\\x40cache.timer",
           "measure_compression": True}
    out.update(changes)
    return out


def state(**changes):
    out = {"state": "absent", "layout": [], "layout_compression": {}, "compression": None, "quota_enabled": False, "size_limit": None,
           "snapshot_dir": False, "snapshots": [], "service": None, "timer": None, "timer_enabled": False, "script": None}
    out.update(changes)
    return out


def texts(steps):
    return [s.text for s in steps]


def test_plan_from_nothing_and_nothing_to_do_after(monkeypatch):
    monkeypatch.setattr(units, "systemd_running", lambda rundir=None: False)
    want = desired(size_limit=10 * 1024 ** 3, schedule="hourly")
    steps, after = cache.plan(want, state())
    assert texts(steps) == [
        "create subvolume /fs/@cache",
        "set compression of /fs/@cache to zstd:3",
        "create directory /fs/@cache/embeddings", "create directory /fs/@cache/blocks",
        "create directory /fs/@cache/queries", "create directory /fs/@cache/diffs",
        "enable quotas on the filesystem of /fs (all its subvolumes get qgroups)",
        "set size limit of /fs/@cache to 10737418240 bytes (qgroup max referenced)",
        "create directory /fs/@cache.snapshots",
        "write snapshot script /lib/snap",
        "write unit /units/opdbus-btrfs-cache-fs-\\x40cache.service",
        "write unit /units/opdbus-btrfs-cache-fs-\\x40cache.timer",
        "enable timer opdbus-btrfs-cache-fs-\\x40cache.timer (link in timers.target.wants)",
    ]
    assert after["state"] == "present" and after["size_limit"] == 10 * 1024 ** 3 and after["timer_enabled"]
    assert after["script"] == cache._digest(script.script_text())
    again, same = cache.plan(want, after)
    assert again == [] and same == after
    # with systemd running, it is asked to reload and start the timer
    monkeypatch.setattr(units, "systemd_running", lambda rundir=None: True)
    assert texts(cache.plan(want, state())[0])[-1] == "reload systemd and start timer opdbus-btrfs-cache-fs-\\x40cache.timer"


def test_plan_changes_only_what_differs(monkeypatch):
    monkeypatch.setattr(units, "systemd_running", lambda rundir=None: False)
    have = state(state="present", layout=sorted(cache.LAYOUT), compression="zstd", quota_enabled=True,
                 size_limit=1024, snapshot_dir=True, layout_compression=dict((n, "zstd") for n in cache.LAYOUT))
    steps, after = cache.plan(desired(compression="zstd", size_limit="none"), have)
    assert texts(steps) == ["remove size limit of /fs/@cache"] and after["size_limit"] is None
    steps, after = cache.plan(desired(compression="none", size_limit=None), have)
    assert texts(steps) == ["set compression of /fs/@cache to none"] + [
        "set compression of /fs/@cache/%s to none" % n for n in cache.LAYOUT]
    assert after["layout_compression"] == dict((n, "none") for n in cache.LAYOUT)
    # quotas already on: a new limit is one step
    steps, dummy = cache.plan(desired(compression="zstd", size_limit=2048), have)
    assert texts(steps) == ["set size limit of /fs/@cache to 2048 bytes (qgroup max referenced)"]
    # a layout directory without the property (made by hand, or before) gets it too
    have["layout_compression"]["blocks"] = None
    assert texts(cache.plan(desired(compression="zstd"), have)[0]) == ["set compression of /fs/@cache/blocks to zstd"]


def test_plan_snapshot_and_prune_use_the_clock():
    names = [retention.snapshot_name(NOW - datetime.timedelta(hours=h)) for h in range(30, 0, -1)]
    have = state(state="present", layout=sorted(cache.LAYOUT), compression="zstd:3", snapshot_dir=True, snapshots=names,
                 layout_compression=dict((n, "zstd:3") for n in cache.LAYOUT))
    counts = {"hourly": 5, "daily": 0, "weekly": 0, "quarterly": 0}
    steps, after = cache.plan(desired(prune=True, retention=counts), have)
    # hours NOW-4h .. NOW are kept: NOW-4h..NOW-1h exist, and the newest
    kept = [retention.snapshot_name(NOW - datetime.timedelta(hours=h)) for h in (4, 3, 2, 1)]
    assert after["snapshots"] == kept
    assert texts(steps) == ["delete snapshot /fs/@cache.snapshots/%s" % n for n in names if n not in kept]
    # a later clock deletes more; the newest stays
    later = cache.plan(desired(prune=True, retention=counts, now=NOW + datetime.timedelta(days=2)), have)[1]
    assert later["snapshots"] == [names[-1]]


def test_plan_absent_removes_units_snapshots_and_subvolume(monkeypatch, tmp_path):
    monkeypatch.setattr(units, "systemd_running", lambda rundir=None: False)
    snaps = tmp_path / "snaps"
    snaps.mkdir()
    names = ["20261123T000000Z", "20261123T010000Z"]
    for name in names:
        (snaps / name).mkdir()
    have = state(state="present", layout=sorted(cache.LAYOUT), compression="zstd", snapshot_dir=True, snapshots=names,
                 service="s", timer="t", timer_enabled=True, layout_compression=dict((n, "zstd") for n in cache.LAYOUT))
    steps, after = cache.plan(desired(state="absent", snapshot_dir=str(snaps)), have)
    assert texts(steps) == [
        "disable timer opdbus-btrfs-cache-fs-\\x40cache.timer (remove /units/timers.target.wants/opdbus-btrfs-cache-fs-\\x40cache.timer)",
        "remove unit /units/opdbus-btrfs-cache-fs-\\x40cache.timer",
        "remove unit /units/opdbus-btrfs-cache-fs-\\x40cache.service",
        "delete snapshot %s/%s" % (snaps, names[0]), "delete snapshot %s/%s" % (snaps, names[1]),
        "remove directory %s" % snaps,
        "delete subvolume /fs/@cache",
    ]
    assert after["state"] == "absent" and after["snapshots"] == [] and after["timer"] is None
    (snaps / "keep-me").mkdir()
    assert "remove directory %s" % snaps not in texts(cache.plan(desired(state="absent", snapshot_dir=str(snaps)), have)[0])


def test_apply_undoes_done_steps_on_failure():
    done = []

    def fail():
        raise OSError(28, "No space left on device")

    steps = [cache.Step("a", lambda: done.append("a"), lambda: done.append("undo a")),
             cache.Step("b", lambda: (done.append("b"), lambda: done.append("undo b"))[1]),
             cache.Step("c", fail)]
    with pytest.raises(OSError, match="No space"):
        cache.apply(steps)
    assert done == ["a", "b", "undo b", "undo a"]
