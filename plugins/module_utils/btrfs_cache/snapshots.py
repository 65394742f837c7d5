# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Taking and pruning the cache's read-only snapshots (used by the module and by the timer's script).

Snapshots live in a plain directory beside the cache, ``<cache>.snapshots`` by default (as the
ledger's), one read-only subvolume per snapshot named by its UTC time (see retention.py). Only
subvolumes whose names parse as snapshot names are ever deleted.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import retention


def list_snapshots(snapshot_dir):
    """Names of the snapshots (subvolumes with snapshot names) in ``snapshot_dir``, oldest first."""
    if not os.path.isdir(snapshot_dir):
        return []
    found = []
    for name in os.listdir(snapshot_dir):
        full = os.path.join(snapshot_dir, name)
        if retention.parse_name(name) is None or os.path.islink(full) or not os.path.isdir(full):
            continue
        if os.stat(full).st_ino == btrfs.BTRFS_FIRST_FREE_OBJECTID:
            found.append(name)
    return sorted(found, key=retention.parse_name)


def take(cache, snapshot_dir, now):
    """Take a read-only snapshot of ``cache`` into ``snapshot_dir`` (made if missing), named for ``now``; its path."""
    if not os.path.isdir(snapshot_dir):
        os.mkdir(snapshot_dir, 0o755)
    existing = os.listdir(snapshot_dir)
    name = retention.snapshot_name(now, existing)
    return btrfs.create_snapshot(cache, os.path.join(snapshot_dir, name), readonly=True)


def plan_prune(snapshot_dir, counts, now, extra=()):
    """(keep, delete, reasons) for the snapshots now in ``snapshot_dir`` plus the names in ``extra``."""
    return retention.select(list_snapshots(snapshot_dir) + list(extra), counts, now)


def delete(snapshot_dir, names):
    """Delete the named snapshots (BTRFS_IOC_SNAP_DESTROY); returns the names deleted."""
    done = []
    for name in names:
        btrfs.delete_subvolume(os.path.join(snapshot_dir, name))
        done.append(name)
    return done


def prune(snapshot_dir, counts, now):
    """Delete what the retention rule does not keep; returns (kept, deleted)."""
    keep, drop, dummy_reasons = plan_prune(snapshot_dir, counts, now)
    return keep, delete(snapshot_dir, drop)
