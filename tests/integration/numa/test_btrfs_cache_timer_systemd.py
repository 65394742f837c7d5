# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""btrfs_cache's snapshot timer under a real systemd (PID 1 of the numa suite's container).

The container's root filesystem is a subvolume of the lab's btrfs, so the module runs inside it
(through the opdbus.infra.lxc connection) on real btrfs, installs the timer and service, and asks
the container's systemd over D-Bus to reload and start the timer. Oracles: ``systemctl`` inside
the container (the timer active and enabled, its next elapse), ``systemctl start`` of the service
(which runs the installed script: a read-only snapshot appears, ``btrfs property get`` from the
host says ro=true), and a calendar expression systemd rejects failing the task with nothing left.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import secrets
import shlex
import subprocess

import pytest

from btrfs_support import btrfs_cli


def cache_task(args, name="btrfs_cache"):
    return {"name": name, "opdbus.infra.btrfs_cache": args}


@pytest.fixture
def cache_dir(numa_ct):
    """A fresh directory inside the container (on its btrfs root) for one cache; removed afterwards."""
    rel = "srv/opdbus-cache-%s" % secrets.token_hex(3)
    numa_ct.sh("mkdir -p /%s" % rel)
    yield "/" + rel
    numa_ct.sh("for t in /etc/systemd/system/opdbus-btrfs-cache-*.timer; do [ -e \"$t\" ] && systemctl stop \"$(basename \"$t\")\"; done; "
               "rm -f /etc/systemd/system/opdbus-btrfs-cache-* /etc/systemd/system/timers.target.wants/opdbus-btrfs-cache-*; "
               "systemctl daemon-reload", check=False)
    cli = btrfs_cli()
    host = os.path.join(str(numa_ct.rootfs), rel)
    for root, dirs, files in os.walk(host, topdown=False):
        for name in dirs:
            sub = os.path.join(root, name)
            subprocess.run([cli, "subvolume", "delete", sub], capture_output=True, check=False)
    for sub in sorted((os.path.join(host, n) for n in os.listdir(host)), reverse=True) if os.path.isdir(host) else []:
        subprocess.run([cli, "subvolume", "delete", sub], capture_output=True, check=False)
    numa_ct.sh("rm -rf /%s" % rel, check=False)


def test_timer_started_by_systemd_and_its_service_snapshots(numa_ct, cache_dir):
    if btrfs_cli() is None:
        pytest.skip("btrfs-progs is not installed (the oracle)")
    assert numa_ct.out("stat -f -c %T /") == "btrfs"
    args = {"filesystem": cache_dir, "snapshot_schedule": "*-*-* 03:15:00", "retention": {"hourly": 2, "daily": 1,
                                                                                          "weekly": 0, "quarterly": 0}}
    rc, results, out = numa_ct.playbook([cache_task(args, "check")], check=True)
    assert rc == 0, out
    assert results[0]["changed"] is True
    assert numa_ct.sh("ls /etc/systemd/system/ | grep -c opdbus-btrfs-cache", check=False).stdout.strip() in ("", "0")

    rc, results, out = numa_ct.playbook([cache_task(args, "apply"), cache_task(args, "again")])
    assert rc == 0, out
    real, again = results
    # escaped unit names hold backslashes (\x2d): quoted for the oracle's shell
    timer = shlex.quote(os.path.basename(real["cache"]["timer"]))
    service = shlex.quote(os.path.basename(real["cache"]["service"]))
    assert any(c.startswith("reload systemd and start timer") for c in real["changes"])
    assert again["changed"] is False
    # systemd's view: loaded from our file, enabled by the link the module wrote, running, due at 03:15
    assert numa_ct.prop(timer, "LoadState") == "loaded"
    assert numa_ct.prop(timer, "ActiveState") == "active"
    assert numa_ct.out("systemctl is-enabled %s" % timer) == "enabled"
    assert "03:15:00" in numa_ct.prop(timer, "TimersCalendar")

    # The service runs the installed script: a read-only snapshot of the cache appears.
    snapdir = real["cache"]["snapshot_dir"]
    before = numa_ct.out("ls -1 %s 2>/dev/null | wc -l" % snapdir)
    numa_ct.sh("systemctl start %s" % service, timeout=120)
    assert numa_ct.prop(service, "Result") == "success"
    names = numa_ct.out("ls -1 %s" % snapdir).split()
    assert int(before) + 1 == len(names)
    host_snap = os.path.join(str(numa_ct.rootfs), snapdir.lstrip("/"), names[-1])
    ro = subprocess.run([btrfs_cli(), "property", "get", "-ts", host_snap, "ro"], capture_output=True, text=True, check=True)
    assert ro.stdout.strip() == "ro=true"

    # Removing the schedule stops the timer before its files go.
    rc, results, out = numa_ct.playbook([cache_task(dict(args, snapshot_schedule="absent"), "absent")])
    assert rc == 0, out
    assert numa_ct.prop(timer, "ActiveState") == "inactive"
    assert numa_ct.prop(timer, "LoadState") == "not-found"


def test_a_calendar_systemd_rejects_fails_and_leaves_nothing(numa_ct, cache_dir):
    """An expression that passes the module's grammar check but not systemd's own parser (a time zone
    name that is a directory of the zone database, not a zone): systemd does not load the timer, the
    task fails saying so, and the module's undo removes the units it wrote."""
    if not numa_ct.out("ls -d /usr/share/zoneinfo/posix 2>/dev/null || true"):
        pytest.skip("no /usr/share/zoneinfo/posix in the container")
    args = {"filesystem": cache_dir, "snapshot_schedule": "*-*-* 03:00 posix"}
    assert numa_ct.sh("systemd-analyze calendar '*-*-* 03:00 posix'", check=False).returncode != 0
    rc, results, out = numa_ct.playbook([cache_task(args)])
    assert rc != 0
    msg = results[0]["msg"]
    assert "systemd did not load" in msg and "bad-setting" in msg, msg
    assert numa_ct.sh("ls /etc/systemd/system/ | grep opdbus-btrfs-cache", check=False).stdout.strip() == ""
