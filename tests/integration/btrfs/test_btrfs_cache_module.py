# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""opdbus.infra.btrfs_cache on real loop-mounted btrfs (the lab's), through ansible-playbook and directly.

Oracles: the btrfs command line (``subvolume show``, ``property get``, ``qgroup show -re --raw``),
the files on disk, and systemd-analyze for the unit files when it is installed. Quotas turned on
by a test are turned off again at its end.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from btrfs_support import run_btrfs
from test_btrfs_cache_support import (MODULE, local_play, playbook, property_get, qgroup_row, quotas_on, restore_quotas,
                                      run_module, tree)

LAYOUT = ["blocks", "diffs", "embeddings", "queries"]
GIB = 1024 ** 3


@pytest.fixture
def quotas(btrfs_mounts):
    restore = restore_quotas(btrfs_mounts[0])
    yield
    restore()


@pytest.fixture
def aside(tmp_path):
    """Units dir and script path off the real system."""
    units = tmp_path / "units"
    units.mkdir()
    return {"units_dir": str(units), "script_path": str(tmp_path / "libexec" / "btrfs-cache-snapshot")}


def test_layout_compression_limit_units_check_diff_idempotent(bdir, btrfs_mounts, quotas, aside, tmp_path):
    args = dict(filesystem=bdir, compression="zstd", compression_level=3, size_limit="10G", snapshot_schedule="hourly",
                retention={"hourly": 6, "daily": 3, "weekly": 2, "quarterly": 1}, **aside)
    quota_before = quotas_on(btrfs_mounts[0])
    check = playbook(tmp_path, local_play([{"name": "cache", MODULE: args}]), check=True, diff=True)
    assert check.rc == 0, check.output
    predicted = check.result("cache")
    assert predicted["changed"] is True
    # check mode touched nothing: no subvolume, no units, no script, quotas as they were
    assert os.listdir(bdir) == [] and os.listdir(aside["units_dir"]) == [] and not os.path.exists(aside["script_path"])
    assert quotas_on(btrfs_mounts[0]) == quota_before

    run = playbook(tmp_path, local_play([{"name": "cache", MODULE: args}, {"name": "again", MODULE: args}]), diff=True)
    assert run.rc == 0, run.output
    real, again = run.result("cache"), run.result("again")
    assert real["changed"] is True and real["changes"] == predicted["changes"], (predicted["changes"], real["changes"])
    assert real["diff"]["after"] == predicted["diff"]["after"]
    assert real["diff"]["before"] == predicted["diff"]["before"] and real["diff"]["before"]["state"] == "absent"
    assert again["changed"] is False and again["changes"] == [], again
    assert again["diff"]["before"] == again["diff"]["after"] == real["diff"]["after"]

    cache = os.path.join(bdir, "@cache")
    # oracles: a subvolume, with the layout, zstd:3, a 10 GiB referenced limit
    assert "Name:" in run_btrfs("subvolume", "show", cache).stdout
    assert sorted(os.listdir(cache)) == LAYOUT and all(os.path.isdir(os.path.join(cache, d)) for d in LAYOUT)
    for where in [cache] + [os.path.join(cache, d) for d in LAYOUT]:
        assert property_get(where, "compression") == "compression=zstd:3", where
    assert qgroup_row(btrfs_mounts[0], cache)[2] == str(10 * GIB)
    report = again["cache"]
    assert report["layout"] == dict((d, os.path.join(cache, d)) for d in LAYOUT)
    assert report["size_limit"] == 10 * GIB and report["compression"] == "zstd:3" and report["quota_enabled"] is True
    # the units: a timer on the schedule, a service running the script with the retention, enabled by its link
    timer, service = report["timer"], report["service"]
    assert os.path.dirname(timer) == aside["units_dir"] and timer.endswith(".timer") and service.endswith(".service")
    with open(timer, encoding="utf-8") as handle:
        assert "OnCalendar=hourly\n" in handle.read()
    with open(service, encoding="utf-8") as handle:
        service_text = handle.read()
    exec_line = [line for line in service_text.splitlines() if line.startswith("ExecStart=")][0]
    assert shlex.split(exec_line[len("ExecStart="):]) == [
        "/usr/bin/python3", aside["script_path"], "--cache", cache, "--snapshot-dir", cache + ".snapshots",
        "--hourly", "6", "--daily", "3", "--weekly", "2", "--quarterly", "1"]
    link = os.path.join(aside["units_dir"], "timers.target.wants", os.path.basename(timer))
    assert os.readlink(link) == timer and report["timer_enabled"] is True
    analyze = shutil.which("systemd-analyze")
    if analyze:
        verify = subprocess.run([analyze, "verify", "--man=no", timer], capture_output=True, text=True, check=False)
        assert "Failed to" not in verify.stderr and "Unknown" not in verify.stderr, verify.stderr
    assert os.access(aside["script_path"], os.X_OK)

    # a change of one setting is one step, and the diff shows it
    run = playbook(tmp_path, local_play([{"name": "zlib", MODULE: dict(args, compression="zlib", compression_level=9)}]), diff=True)
    result = run.result("zlib")
    assert result["changes"] == ["set compression of %s to zlib:9" % p for p in
                                 [cache] + [os.path.join(cache, d) for d in ("embeddings", "blocks", "queries", "diffs")]], result
    assert (result["diff"]["before"]["compression"], result["diff"]["after"]["compression"]) == ("zstd:3", "zlib:9")
    for where in [cache] + [os.path.join(cache, d) for d in LAYOUT]:
        assert property_get(where, "compression") == "compression=zlib:9", where


def test_usage_and_compression_ratio_are_measured(bdir, btrfs_mounts, quotas, aside, tmp_path):
    cache = os.path.join(bdir, "@cache")
    first = run_module(tmp_path, filesystem=bdir, compression="zstd", **aside)
    assert first["changed"] is True and first["cache"]["usage"]["source"] in ("walk", "qgroup")
    # compressible data in blocks/, then incompressible data in queries/
    with open(os.path.join(cache, "blocks", "text"), "wb") as handle:
        handle.write(b"opdbus cache line\n" * 200000)
    with open(os.path.join(cache, "queries", "random"), "wb") as handle:
        handle.write(os.urandom(1024 * 1024))
    os.sync()
    # without quotas: a walk; with quotas (a size limit), the qgroup, as btrfs qgroup show says
    walked = run_module(tmp_path, filesystem=bdir, compression="zstd", **aside)
    if not quotas_on(btrfs_mounts[0]):
        assert walked["cache"]["usage"]["source"] == "walk" and walked["cache"]["usage"]["exclusive"] is None
        blocks = sum(os.lstat(os.path.join(r, n)).st_blocks * 512 for r, ds, fs in os.walk(cache) for n in fs)
        assert walked["cache"]["usage"]["referenced"] >= blocks
    ratio = walked["cache"]["compression_ratio"]
    # 3.6 MB of text compresses a lot; 1 MiB of random bytes not at all: together disk < uncompressed
    assert ratio["uncompressed_bytes"] >= 200000 * 18 + 1024 * 1024, ratio
    assert 1024 * 1024 <= ratio["disk_bytes"] < ratio["uncompressed_bytes"], ratio
    assert ratio["compressed_extents"] >= 1 and ratio["extents"] > ratio["compressed_extents"]
    limited = run_module(tmp_path, filesystem=bdir, compression="zstd", size_limit="1G", **aside)
    assert limited["changed"] is True, limited
    run_btrfs("quota", "rescan", "-w", btrfs_mounts[0])
    again = run_module(tmp_path, filesystem=bdir, compression="zstd", size_limit="1G", **aside)
    assert again["changed"] is False
    usage = again["cache"]["usage"]
    rfer, excl, max_rfer, dummy = qgroup_row(btrfs_mounts[0], cache)
    assert usage == {"referenced": int(rfer), "exclusive": int(excl), "source": "qgroup"}
    assert max_rfer == str(GIB)


def test_size_limit_none_and_state_absent(bdir, btrfs_mounts, quotas, aside, tmp_path):
    cache = os.path.join(bdir, "data", "c1")
    os.mkdir(os.path.join(bdir, "data"))
    base = dict(filesystem=bdir, path="data/c1", snapshot_schedule="daily", **aside)
    assert run_module(tmp_path, size_limit="512M", snapshot=True, **base)["changed"] is True
    assert qgroup_row(btrfs_mounts[0], cache)[2] == str(512 * 1024 ** 2)
    out = run_module(tmp_path, size_limit="none", **base)
    assert out["changes"] == ["remove size limit of %s" % cache], out
    assert qgroup_row(btrfs_mounts[0], cache)[2] == "none"
    assert run_module(tmp_path, size_limit="none", **base)["changed"] is False
    # absent: check mode predicts and keeps everything, the real run removes units, snapshots and the subvolume
    snaps = sorted(os.listdir(cache + ".snapshots"))
    assert len(snaps) == 1
    units_before = tree(aside["units_dir"])
    predicted = run_module(tmp_path, check=True, filesystem=bdir, path="data/c1", state="absent", **aside)
    assert predicted["changed"] is True and os.path.isdir(cache) and tree(aside["units_dir"]) == units_before
    assert sorted(os.listdir(cache + ".snapshots")) == snaps
    gone = run_module(tmp_path, filesystem=bdir, path="data/c1", state="absent", **aside)
    assert gone["changes"] == predicted["changes"] and gone["diff"]["after"] == predicted["diff"]["after"], gone
    assert not os.path.exists(cache) and not os.path.exists(cache + ".snapshots")
    assert tree(aside["units_dir"]) == ["timers.target.wants"]
    assert os.path.exists(aside["script_path"])  # shared by all caches: stays
    assert run_module(tmp_path, filesystem=bdir, path="data/c1", state="absent", **aside)["changed"] is False


def at(hours):
    return (datetime.datetime(2026, 11, 20, 0, 30, tzinfo=datetime.timezone.utc)
            + datetime.timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp(hours):
    return at(hours).replace("-", "").replace(":", "")


def test_snapshots_and_retention_with_a_simulated_clock(bdir, aside, tmp_path):
    base = dict(filesystem=bdir, retention={"hourly": 3, "daily": 2, "weekly": 0, "quarterly": 0}, **aside)
    cache = os.path.join(bdir, "@cache")
    snapdir = cache + ".snapshots"
    hours = [0, 1, 2, 10, 20, 24, 30, 47, 48, 49]
    for hour in hours:
        out = run_module(tmp_path, snapshot=True, now=at(hour), **base)
        assert "take snapshot %s/%s" % (snapdir, stamp(hour)) in out["changes"], out
    assert sorted(os.listdir(snapdir)) == [stamp(h) for h in hours]
    for name in os.listdir(snapdir):  # the oracle: read-only subvolumes
        assert property_get(os.path.join(snapdir, name), "ro", "subvol") == "ro=true"
    # at hour 49 (2026-11-22 01:30): hourly 3 keeps hours 47, 48, 49; daily 2 keeps the first of 11-21 (hour 24)
    # and of 11-22 (hour 48)
    kept = [stamp(h) for h in (24, 47, 48, 49)]
    predicted = run_module(tmp_path, check=True, prune=True, now=at(49), **base)
    assert sorted(os.listdir(snapdir)) == [stamp(h) for h in hours]
    assert predicted["diff"]["after"]["snapshots"] == kept
    real = run_module(tmp_path, prune=True, now=at(49), **base)
    assert real["changes"] == predicted["changes"] == [
        "delete snapshot %s/%s" % (snapdir, stamp(h)) for h in hours if stamp(h) not in kept]
    assert sorted(os.listdir(snapdir)) == kept and real["cache"]["snapshots"] == kept
    assert run_module(tmp_path, prune=True, now=at(49), **base)["changed"] is False
    # a day later, one hour kept by the hourly rule is gone: only the newest and the day's first stay
    later = run_module(tmp_path, prune=True, now=at(73), **base)
    assert sorted(os.listdir(snapdir)) == [stamp(48), stamp(49)], later


def test_installed_script_snapshots_and_prunes(bdir, aside, tmp_path):
    base = dict(filesystem=bdir, snapshot_schedule="*-*-* *:00:00", retention={"hourly": 2, "daily": 0, "weekly": 0, "quarterly": 0},
                **aside)
    out = run_module(tmp_path, **base)
    assert out["changed"] is True, out
    cache = os.path.join(bdir, "@cache")
    with open(os.path.join(cache, "blocks", "b1"), "w", encoding="utf-8") as handle:
        handle.write("first")
    with open(out["cache"]["service"], encoding="utf-8") as handle:
        exec_line = [line for line in handle.read().splitlines() if line.startswith("ExecStart=")][0]
    argv = shlex.split(exec_line[len("ExecStart="):])
    argv[0] = sys.executable if not os.path.exists(argv[0]) else argv[0]
    env = dict((k, v) for k, v in os.environ.items() if k not in ("PYTHONPATH",))  # the script needs nothing else
    results = []
    for hour in (0, 1, 2, 3):
        proc = subprocess.run(argv + ["--now", at(hour)], capture_output=True, text=True, env=env, cwd="/", check=False)
        assert proc.returncode == 0, proc.stderr
        results.append(__import__("json").loads(proc.stdout))
    snapdir = cache + ".snapshots"
    assert results[0]["snapshot"] == os.path.join(snapdir, stamp(0)) and results[0]["deleted"] == []
    assert results[2]["deleted"] == [stamp(0)] and results[3]["deleted"] == [stamp(1)]
    assert sorted(os.listdir(snapdir)) == [stamp(2), stamp(3)]
    for name in os.listdir(snapdir):
        assert property_get(os.path.join(snapdir, name), "ro", "subvol") == "ro=true"
        with open(os.path.join(snapdir, name, "blocks", "b1"), encoding="utf-8") as handle:
            assert handle.read() == "first"
    # the module sees the same snapshots; a failure is reported, not a traceback
    assert run_module(tmp_path, **base)["cache"]["snapshots"] == [stamp(2), stamp(3)]
    bad = subprocess.run(argv[:2] + ["--cache", os.path.join(bdir, "missing"), "--snapshot-dir", snapdir],
                         capture_output=True, text=True, check=False)
    assert bad.returncode == 1 and "missing" in bad.stderr and "Traceback" not in bad.stderr


def test_bad_inputs_fail_clearly_and_touch_nothing(bdir, btrfs_mounts, plain_dir, aside, tmp_path, quotas):
    os.mkdir(os.path.join(bdir, "plain"))
    quota_before = quotas_on(btrfs_mounts[0])
    cases = [
        (dict(filesystem=plain_dir), "is not on btrfs"),
        (dict(filesystem=os.path.join(bdir, "nope")), "does not exist"),
        (dict(filesystem=bdir, compression_level=16), "compression_level 16 is out of range for zstd (1 to 15)"),
        (dict(filesystem=bdir, compression="zlib", compression_level=0), "out of range for zlib (1 to 9)"),
        (dict(filesystem=bdir, compression="lzo", compression_level=2), "lzo takes no compression_level"),
        (dict(filesystem=bdir, path="../escape"), "is outside the filesystem directory"),
        (dict(filesystem=bdir, path=plain_dir), "is outside the filesystem directory"),
        (dict(filesystem=bdir, path="plain"), "exists and is not a btrfs subvolume"),
        (dict(filesystem=bdir, path="no/such/dir"), "does not exist"),
        (dict(filesystem=bdir, retention={"hourly": -2}), "retention.hourly must be 0 or more"),
        (dict(filesystem=bdir, size_limit="lots"), "size_limit 'lots' is not a size"),
        (dict(filesystem=bdir, size_limit="0"), "size_limit '0' is zero"),
        (dict(filesystem=bdir, snapshot_schedule="every tuesday;"), "is not a systemd OnCalendar expression"),
        (dict(filesystem=bdir, snapshot_dir="/elsewhere"), "must be below"),
        (dict(filesystem=bdir, now="not-a-time"), "not an ISO 8601 time"),
    ]
    for args, message in cases:
        out = run_module(tmp_path, size_limit=args.pop("size_limit", "1G"), snapshot_schedule=args.pop("snapshot_schedule", "hourly"),
                         **dict(aside, **args))
        assert out.get("failed") is True and message in out["msg"], (args, out)
        assert "exception" not in out and "Traceback" not in out["msg"], out
        assert sorted(os.listdir(bdir)) == ["plain"], (args, os.listdir(bdir))
        assert os.listdir(aside["units_dir"]) == [] and not os.path.exists(aside["script_path"])
        assert quotas_on(btrfs_mounts[0]) == quota_before
    # and through Ansible: a message, no traceback
    run = playbook(tmp_path, local_play([{"name": "bad", MODULE: {"filesystem": bdir, "compression_level": 99}}]))
    result = run.result("bad")
    assert result["failed"] is True and "out of range for zstd" in result["msg"] and "module_stderr" not in result


def test_systemd_is_asked_in_order_when_it_runs(bdir, aside, monkeypatch):
    """The systemd steps, in-process with the D-Bus calls recorded (no systemd as PID 1 here)."""
    from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import cache, units  # pylint: disable=import-outside-toplevel
    calls = []
    monkeypatch.setattr(units, "systemd_running", lambda rundir=None: True)
    monkeypatch.setattr(units, "dbus_ready", lambda module=None: calls.append("dbus"))
    monkeypatch.setattr(units, "activate", lambda timer, module=None: calls.append(("activate", timer, os.path.exists(
        os.path.join(aside["units_dir"], timer)))))
    monkeypatch.setattr(units, "stop", lambda timer, module=None: calls.append(("stop", timer, os.path.exists(
        os.path.join(aside["units_dir"], timer)))))
    monkeypatch.setattr(units, "reload", lambda module=None: calls.append(("reload", os.listdir(aside["units_dir"]))))
    params = dict(filesystem=bdir, snapshot_schedule="daily", **aside)
    changed, changes, dummy_before, dummy_after, report = cache.run(params)
    timer = os.path.basename(report["timer"])
    assert changed and changes[-1] == "reload systemd and start timer %s" % timer
    assert calls == ["dbus", ("activate", timer, True)]  # D-Bus checked first, started after the files exist
    del calls[:]
    assert cache.run(params)[0] is False and calls == []
    changed, changes, dummy_before, dummy_after, report = cache.run(dict(params, snapshot_schedule="absent"))
    assert changes[0] == "stop timer %s (systemd)" % timer and changes[-1] == "reload systemd"
    assert calls == ["dbus", ("stop", timer, True), ("reload", ["timers.target.wants"])]
