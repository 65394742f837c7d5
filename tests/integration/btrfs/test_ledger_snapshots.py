# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugin_utils/ledger/snapshots.py on real btrfs: policies, retention, replication, checks.

Real ledgers (``Ledger.append``) in real subvolumes on the lab's two btrfs filesystems. The clock
is injected so that policies and retention can be exercised over simulated months; what exists on
disk is read back with the ``btrfs`` command line, and the retention's expected keep set is
computed independently here (with ``datetime``, not with the module's period arithmetic).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import datetime
import os
import shutil
import stat
import subprocess

import pytest

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger import snapshots as snapshots_module
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import (
    DEFAULT_RETENTION, POLICIES, SnapshotError, SnapshotManager,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger

BTRFS_CLI = shutil.which("btrfs", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])) or "btrfs"
UTC = datetime.timezone.utc


def run_btrfs(*args, check=True):
    return subprocess.run([BTRFS_CLI] + [str(a) for a in args], check=check, capture_output=True, text=True)


def show(path):
    fields = {}
    for line in run_btrfs("subvolume", "show", path).stdout.splitlines()[1:]:
        key, sep, value = line.strip().partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    return fields


def ro(path):
    return run_btrfs("property", "get", "-ts", path, "ro").stdout.strip() == "ro=true"


def subvolumes_under(mount, directory):
    """Names of the subvolumes directly under directory, as `btrfs subvolume list` sees them."""
    prefix = os.path.relpath(directory, os.path.realpath(mount)) + "/"
    names = set()
    for line in run_btrfs("subvolume", "list", mount).stdout.splitlines():
        path = line.split(" path ", 1)[1]
        if path.startswith(prefix) and "/" not in path[len(prefix):]:
            names.add(path[len(prefix):])
    return names


def task_fields(i):
    return {"kind": "task", "playbook": "site.yml", "task": "task %d" % i, "host": "web1", "module": "ansible.builtin.command",
            "status": "changed", "changed": True, "duration": 0.001 * i, "result": {"rc": 0, "stdout": "line %d \u00e9" % i}}


def append(ledger, count):
    start = ledger.size
    ledger.append([task_fields(i) for i in range(start, start + count)])


def tree(path):
    found = {}
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full, "rb") as handle:
                found[os.path.relpath(full, path)] = handle.read()
    return found


def epoch(*args):
    return float(calendar.timegm(datetime.datetime(*args, tzinfo=UTC).utctimetuple()))


class Clock:
    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def setup(bdir):
    """(manager, ledger) for a fresh ledger subvolume with 10 records; the ledger is closed after."""
    opened = []

    def factory(records=10, **kwargs):
        mgr = SnapshotManager(os.path.join(bdir, "ledger"), **kwargs)
        assert mgr.ensure_subvolume() is True
        ledger = Ledger(mgr.ledger_dir)
        opened.append(ledger)
        if records:
            append(ledger, records)
        return mgr, ledger

    yield factory
    for ledger in opened:
        ledger.close()


# -- support ------------------------------------------------------------------------------------

def test_ensure_subvolume(bdir, btrfs_mounts):
    path = os.path.join(bdir, "ledger")
    mgr = SnapshotManager(path)
    assert mgr.snapshot_dir == path + ".snapshots"
    assert mgr.supported is False and "does not exist yet" in mgr.reason
    assert mgr.ensure_subvolume() is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o700
    assert show(path)["Name"] == "ledger"
    assert "ledger" in subvolumes_under(btrfs_mounts[0], bdir)
    assert mgr.supported is True and mgr.reason is None
    assert mgr.ensure_subvolume() is False
    with Ledger(path) as ledger:
        append(ledger, 3)
        assert ledger.size == 3
    assert stat.S_IMODE(os.stat(os.path.join(path, "leaves.idx")).st_mode) == 0o600


def test_plain_directory_is_not_converted(bdir):
    path = os.path.join(bdir, "ledger")
    with Ledger(path) as ledger:
        append(ledger, 3)
    mgr = SnapshotManager(path)
    assert mgr.ensure_subvolume() is False
    assert mgr.supported is False
    assert "plain directory" in mgr.reason and "btrfs subvolume create" in mgr.reason and path in mgr.reason
    assert run_btrfs("subvolume", "show", path, check=False).returncode != 0
    with pytest.raises(SnapshotError, match="plain directory"):
        mgr.snapshot("playbook")
    assert mgr.list() == []


def test_not_on_btrfs(plain_dir):
    path = os.path.join(plain_dir, "ledger")
    mgr = SnapshotManager(path)
    assert mgr.ensure_subvolume() is False
    assert not os.path.exists(path)
    assert mgr.supported is False and mgr.reason == "%s is not on btrfs: snapshots off" % path
    with Ledger(path) as ledger:
        append(ledger, 2)
    assert mgr.supported is False and mgr.reason == "%s is not on btrfs: snapshots off" % path
    with pytest.raises(SnapshotError, match="not on btrfs"):
        mgr.snapshot("playbook")
    with pytest.raises(SnapshotError, match="not on btrfs"):
        mgr.prune()
    assert mgr.list() == [] and mgr.plan_prune() == ([], [])


def test_snapshot_dir_on_another_filesystem(bdir, replica_dir):
    mgr = SnapshotManager(os.path.join(bdir, "ledger"), snapshot_dir=os.path.join(replica_dir, "snaps"))
    mgr.ensure_subvolume()
    assert mgr.supported is False and "not on the btrfs filesystem of" in mgr.reason


def test_retention_validation(bdir):
    path = os.path.join(bdir, "ledger")
    assert SnapshotManager(path).retention == DEFAULT_RETENTION == {"last": 1, "hourly": 5, "daily": 5, "weekly": 5, "quarterly": 5}
    assert SnapshotManager(path, retention={"hourly": 24, "quarterly": 0}).retention == {
        "last": 1, "hourly": 24, "daily": 5, "weekly": 5, "quarterly": 0}
    for bad in ({"monthly": 3}, {"hourly": -1}, {"daily": 1.5}, {"weekly": True}, {"hourly": "5"}, [("hourly", 5)]):
        with pytest.raises(SnapshotError):
            SnapshotManager(path, retention=bad)
    with pytest.raises(SnapshotError, match="outside the ledger directory"):
        SnapshotManager(path, snapshot_dir=os.path.join(path, "snaps"))


# -- snapshots and policies ---------------------------------------------------------------------

def test_snapshot_names_info_and_content(setup):
    clock = Clock(epoch(2024, 1, 2, 3, 4, 5) + 0.75)
    mgr, ledger = setup(clock=clock)
    first = mgr.snapshot("playbook")
    assert first["name"] == "20240102T030405Z-playbook"
    assert first["path"] == os.path.join(mgr.snapshot_dir, first["name"])
    assert first["time"] == epoch(2024, 1, 2, 3, 4, 5) and first["reason"] == "playbook"
    assert first["readonly"] is True and ro(first["path"])
    oracle = show(first["path"])
    assert first["uuid"] == oracle["UUID"]
    assert oracle["Parent UUID"] == show(mgr.ledger_dir)["UUID"]
    assert stat.S_IMODE(os.stat(mgr.snapshot_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(first["path"]).st_mode) == 0o700
    assert sorted(first) == ["name", "path", "readonly", "reason", "time", "uuid"]

    again = mgr.snapshot("playbook")
    third = mgr.snapshot("playbook")
    assert again["name"] == "20240102T030405Z-playbook.2" and third["name"] == "20240102T030405Z-playbook.3"
    odd = mgr.snapshot("site.yml run/1 \u00e9", now=clock.now + 60)
    assert odd["name"] == "20240102T030505Z-site_yml_run_1__" and odd["reason"] == "site_yml_run_1__"
    assert mgr.snapshot("", now=clock.now + 120)["reason"] == "snapshot"

    # the snapshot is frozen: later appends are not in it
    frozen = tree(first["path"])
    append(ledger, 5)
    assert tree(first["path"]) == frozen
    with Ledger(first["path"], readonly=True) as snap:
        assert snap.size == 10 and snap.root() == ledger.root(10)

    names = [info["name"] for info in mgr.list()]
    assert names == ["20240102T030405Z-playbook", "20240102T030405Z-playbook.2", "20240102T030405Z-playbook.3",
                     "20240102T030505Z-site_yml_run_1__", "20240102T030605Z-snapshot"]
    # entries that are not snapshots are ignored
    os.mkdir(os.path.join(mgr.snapshot_dir, "notes"))
    btrfs.create_subvolume(os.path.join(mgr.snapshot_dir, "20240102T030405Z-bad.name.x"))
    assert [info["name"] for info in mgr.list()] == names


def test_due_by_policy(setup):
    start = epoch(2024, 3, 10, 12, 34, 56)
    clock = Clock(start)
    mgr, _ledger = setup(clock=clock)
    assert POLICIES == ("playbook", "minute", "hourly", "daily", "never")
    for policy in ("playbook", "minute", "hourly", "daily"):
        assert mgr.due(policy) is True
    assert mgr.due("never") is False
    with pytest.raises(SnapshotError, match="unknown snapshot policy"):
        mgr.due("weekly")
    mgr.snapshot("minute")
    assert mgr.due("playbook") is True and mgr.due("never") is False
    clock.now = start + 3  # 12:34:59
    assert (mgr.due("minute"), mgr.due("hourly"), mgr.due("daily")) == (False, False, False)
    clock.now = start + 4  # 12:35:00
    assert (mgr.due("minute"), mgr.due("hourly"), mgr.due("daily")) == (True, False, False)
    assert mgr.due("hourly", now=epoch(2024, 3, 10, 12, 59, 59)) is False
    assert mgr.due("hourly", now=epoch(2024, 3, 10, 13, 0, 0)) is True
    assert mgr.due("daily", now=epoch(2024, 3, 10, 23, 59, 59)) is False
    assert mgr.due("daily", now=epoch(2024, 3, 11, 0, 0, 0)) is True
    mgr.snapshot("hourly", now=epoch(2024, 3, 10, 13, 5, 0))
    assert mgr.due("hourly", now=epoch(2024, 3, 10, 13, 59, 0)) is False
    assert mgr.due("minute", now=epoch(2024, 3, 10, 13, 5, 30)) is False


# -- retention ----------------------------------------------------------------------------------

def expected_keep(times, now, retention):
    """The keep set, computed with datetime calendars (independently of the module)."""
    when = dict((t, datetime.datetime.fromtimestamp(t, UTC)) for t in times)
    now_dt = datetime.datetime.fromtimestamp(now, UTC)
    keys = {
        "hourly": lambda d: (d.year, d.month, d.day, d.hour),
        "daily": lambda d: d.date(),
        "weekly": lambda d: d.isocalendar()[:2],
        "quarterly": lambda d: (d.year, (d.month - 1) // 3),
    }

    def back(kind, k):
        if kind == "hourly":
            return keys[kind](now_dt - datetime.timedelta(hours=k))
        if kind == "daily":
            return keys[kind](now_dt - datetime.timedelta(days=k))
        if kind == "weekly":
            return keys[kind](now_dt - datetime.timedelta(weeks=k))
        year, quarter = now_dt.year, (now_dt.month - 1) // 3 - k
        while quarter < 0:
            year, quarter = year - 1, quarter + 4
        return (year, quarter)

    keep = {max(times)} | set(sorted(times)[-retention.get("last", 1):] if retention.get("last", 1) else [])
    for kind, count in retention.items():
        if kind == "last":
            continue
        for k in range(count):
            bucket = [t for t in times if keys[kind](when[t]) == back(kind, k)]
            if bucket:
                keep.add(max(bucket))
    return keep


def test_retention_60_days_of_hourly_snapshots(setup, btrfs_mounts):
    start = epoch(2024, 2, 10, 0, 17, 0)
    clock = Clock(start)
    mgr, ledger = setup(records=1, clock=clock)
    times = [start + 3600 * i for i in range(60 * 24)]
    names = {}
    for i, when in enumerate(times):
        if i % 24 == 0:
            append(ledger, 1)
        names[when] = mgr.snapshot("hourly", now=when)["name"]
    now = times[-1] + 1800
    keep, remove = mgr.plan_prune(now=now)
    want = expected_keep(times, now, DEFAULT_RETENTION)
    assert keep == [names[t] for t in times if t in want]
    assert remove == [names[t] for t in times if t not in want]
    # 5 hours + 5 days + 5 ISO weeks + 2 quarters (Q1 and Q2 2024), overlaps counted once
    assert len(keep) == len(want) and 12 <= len(keep) <= 17
    assert names[times[-1]] in keep

    clock.now = now
    removed = mgr.prune()
    assert removed == remove
    assert subvolumes_under(btrfs_mounts[0], mgr.snapshot_dir) == set(keep)
    assert [info["name"] for info in mgr.list()] == keep
    assert mgr.prune() == []
    assert mgr.check_snapshots(ledger) == []


def test_retention_small_rules(setup):
    base = epoch(2024, 5, 6, 10, 0, 0)
    mgr, _ledger = setup(retention={"hourly": 2, "daily": 0, "weekly": 0, "quarterly": 0})
    made = [mgr.snapshot("t", now=base + offset)["name"] for offset in (0, 600, 3600, 4000, 7200, 7300, 99999)]
    keep, remove = mgr.plan_prune(now=base + 7400)
    # hours 11:00 and 12:00 newest each, and the future one (a clock that went back)
    assert keep == [made[3], made[5], made[6]]
    assert remove == [made[0], made[1], made[2], made[4]]
    mgr_none = SnapshotManager(mgr.ledger_dir, retention={"hourly": 0, "daily": 0, "weekly": 0, "quarterly": 0})
    assert mgr_none.plan_prune(now=base + 200000)[0] == [made[6]]  # the newest is always kept


# -- replication --------------------------------------------------------------------------------

def test_replicate_incrementally(setup, replica_dir, tmp_path, monkeypatch):
    clock = Clock(epoch(2024, 6, 1, 8, 0, 0))
    mgr, ledger = setup(records=20, clock=clock)
    s1 = mgr.snapshot("playbook")
    append(ledger, 5)
    s2 = mgr.snapshot("playbook", now=clock.now + 3600)
    target = os.path.join(replica_dir, "ledger-replica")
    work = tmp_path / "work"
    work.mkdir()

    seen = []
    real_send = snapshots_module.send

    def observing_send(subvolume, out_path, parent=None):
        seen.append((stat.S_IMODE(os.stat(os.path.dirname(out_path)).st_mode), parent))
        size = real_send(subvolume, out_path, parent=parent)
        seen[-1] += (stat.S_IMODE(os.stat(out_path).st_mode),)
        return size

    monkeypatch.setattr(snapshots_module, "send", observing_send)
    assert mgr.replicate(target, tmp_dir=str(work)) == [s1["name"], s2["name"]]
    assert [(r["name"], r["parent"]) for r in mgr.last_replication] == [(s1["name"], None), (s2["name"], s1["name"])]
    assert seen == [(0o700, None, 0o600), (0o700, s1["path"], 0o600)]
    assert list(work.iterdir()) == []
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o700
    for info in (s1, s2):
        got = os.path.join(target, info["name"])
        assert show(got)["Received UUID"] == info["uuid"] and ro(got)
        assert tree(got) == tree(info["path"])

    append(ledger, 7)
    s3 = mgr.snapshot("playbook", now=clock.now + 7200)
    assert mgr.replicate(target, tmp_dir=str(work)) == [s3["name"]]
    (record,) = mgr.last_replication
    assert record["parent"] == s2["name"]
    full = str(tmp_path / "full.stream")
    assert record["bytes"] < btrfs.send(s3["path"], full)
    got3 = os.path.join(target, s3["name"])
    assert show(got3)["Received UUID"] == s3["uuid"]
    assert tree(got3) == tree(s3["path"])
    with Ledger(got3, readonly=True) as replica:
        assert replica.size == 32 and replica.root() == ledger.root(32)
    assert mgr.replicate(target, tmp_dir=str(work)) == [] and mgr.last_replication == []
    assert list(work.iterdir()) == []


def test_replicate_after_an_interrupted_receive(setup, replica_dir):
    mgr, _ledger = setup()
    first = mgr.snapshot("playbook", now=epoch(2024, 6, 2, 0, 0, 0))
    target = os.path.join(replica_dir, "r")
    os.mkdir(target)
    # what `btrfs receive` leaves when killed: a writable subvolume without a received UUID
    partial = btrfs.create_subvolume(os.path.join(target, first["name"]))
    with open(os.path.join(partial, "half"), "w") as handle:
        handle.write("x")
    assert mgr.replicate(target) == [first["name"]]
    got = os.path.join(target, first["name"])
    assert show(got)["Received UUID"] == first["uuid"] and not os.path.exists(os.path.join(got, "half"))
    # something else under a snapshot's name is a conflict, left alone
    second = mgr.snapshot("playbook", now=epoch(2024, 6, 2, 1, 0, 0))
    os.mkdir(os.path.join(target, second["name"]))
    with pytest.raises(SnapshotError, match="already holds something else"):
        mgr.replicate(target)
    assert os.path.isdir(os.path.join(target, second["name"]))


def test_replicate_refuses_non_btrfs_target(setup, plain_dir):
    mgr, _ledger = setup()
    mgr.snapshot("playbook")
    with pytest.raises(SnapshotError, match="not on btrfs"):
        mgr.replicate(plain_dir)


# -- checks -------------------------------------------------------------------------------------

def _replace(mgr, info, edit):
    """Replace snapshot info by a writable copy edited by edit(path), made read-only and renamed into place."""
    tmp = os.path.join(mgr.snapshot_dir, "forge")
    btrfs.create_snapshot(info["path"], tmp, readonly=False)
    edit(tmp)
    btrfs.set_readonly(tmp, True)
    btrfs.delete_subvolume(info["path"])
    os.rename(tmp, info["path"])


def _rewrite_line(path, needle, replacement):
    seg = os.path.join(path, "records", "seg-000000.jsonl")
    with open(seg, "rb") as handle:
        data = handle.read()
    assert needle in data
    with open(seg, "wb") as handle:
        handle.write(data.replace(needle, replacement, 1))


def test_check_snapshots(setup, bdir):
    clock = Clock(epoch(2024, 7, 1, 0, 0, 0))
    mgr, ledger = setup(records=30, clock=clock)
    snaps = [mgr.snapshot("playbook", now=clock.now)]
    append(ledger, 10)
    snaps.append(mgr.snapshot("playbook", now=clock.now + 60))
    append(ledger, 10)
    snaps.append(mgr.snapshot("playbook", now=clock.now + 120))
    snaps.append(mgr.snapshot("playbook", now=clock.now + 180))
    assert mgr.check_snapshots(ledger) == []

    # a record in the middle altered (the JSON stays valid)
    _replace(mgr, snaps[1], lambda p: _rewrite_line(p, b'"task 7"', b'"task X"'))
    problems = mgr.check_snapshots(ledger)
    assert problems and all(snaps[1]["name"] in p for p in problems)
    assert any("record 7 does not hash" in p for p in problems)
    assert any("Merkle root" in p for p in problems)
    assert any("replaced" in p and "parent uuid" in p for p in problems)

    # replaced by the snapshot of another, self-consistent ledger of the same size
    other = os.path.join(bdir, "other")
    btrfs.create_subvolume(other)
    with Ledger(other) as forged:
        forged.append([dict(task_fields(i), host="evil") for i in range(30)])

    def swap(path):
        for name in os.listdir(path):
            full = os.path.join(path, name)
            if os.path.isdir(full):
                shutil.rmtree(full)
            else:
                os.unlink(full)
        subprocess.run(["cp", "-a", other + "/.", path + "/"], check=True)

    _replace(mgr, snaps[0], swap)
    problems = mgr.check_snapshots(ledger)
    mine = [p for p in problems if snaps[0]["name"] in p]
    assert any("Merkle root of its 30 records differs" in p and "first difference at record 0" in p for p in mine)
    assert not any("does not hash" in p for p in mine)

    # a snapshot made writable
    btrfs.set_readonly(snaps[2]["path"], False)
    problems = mgr.check_snapshots(ledger)
    assert "snapshot %s is not read-only" % snaps[2]["name"] in problems

    # the last record altered: not mistaken for a torn tail and silently cut off
    _replace(mgr, snaps[3], lambda p: _rewrite_line(p, b'"task 49"', b'"task Y"'))
    problems = mgr.check_snapshots(ledger)
    assert any(snaps[3]["name"] in p and "torn or altered" in p for p in problems)

    # the others, and a new healthy one, are not reported
    fresh = mgr.snapshot("playbook", now=clock.now + 240)
    assert not any(fresh["name"] in p for p in mgr.check_snapshots(ledger))


def test_check_snapshots_ledger_truncated(setup):
    mgr, ledger = setup(records=12)
    mgr.snapshot("playbook")
    ledger.close()
    small_dir = mgr.ledger_dir + "-small"
    btrfs.create_subvolume(small_dir)
    with Ledger(small_dir) as small:
        append(small, 5)
        problems = mgr.check_snapshots(small)
    assert len(problems) >= 1 and any("holds 12 records, more than the ledger's 5" in p for p in problems)
