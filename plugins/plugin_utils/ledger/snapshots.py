# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only btrfs snapshots of the ledger directory: policy, retention, replication, checks.

On btrfs the ledger directory is a subvolume of its own, and a read-only
snapshot of it is an atomic, immutable copy of the whole ledger (records,
leaf index, checkpoints) at one instant, made in constant time.  Elsewhere the
ledger works exactly the same without snapshots; ``SnapshotManager.supported``
is False and ``reason`` says why in one sentence, for the caller to say once.

Layout (snapshot directory 0700, default ``<ledger_dir>.snapshots`` beside the
ledger, on the same btrfs filesystem)::

    <ledger_dir>.snapshots/20261122T221500Z-playbook     read-only snapshots
    <ledger_dir>.snapshots/20261122T230000Z-hourly
    <ledger_dir>.snapshots/20261122T230000Z-hourly.2     same second and reason taken

A name is ``<UTC %Y%m%dT%H%M%SZ>-<reason>[.<n>]``: the time comes from the
manager's clock (injectable), ``reason`` is what the caller passed with every
character outside ``[A-Za-z0-9_-]`` replaced by ``_`` (so ``.`` only ever
introduces the uniqueness suffix).  Entries that do not match are ignored.

Policies (``due``): ``playbook`` (every run), ``minute``/``hourly``/``daily``
(when no snapshot exists yet in the current UTC minute/hour/day), ``never``.

Retention (``plan_prune``): for each kind with a count N, the newest snapshot
of each of the last N periods counted back from now, the current period
included: UTC hours, UTC days, ISO weeks (Monday to Sunday), calendar quarters.
The union is kept, and the newest snapshot always; everything else is removed.
Snapshots dated after ``now`` (a clock that went back) are kept.  A partial
``retention`` dict overrides the defaults key by key; 0 turns a kind off.

Replication (``replicate``): each local snapshot the target lacks (matched by
the target's received UUID, which ``btrfs receive`` sets to the sent
snapshot's UUID) is sent with ``BTRFS_IOC_SEND`` and applied with
``btrfs receive``; incrementally from the newest snapshot both sides hold
(preferring one older than the snapshot sent), in full for the first.  The
streams go through a private temporary directory (0700, files 0600) that is
removed afterwards.  What an interrupted receive leaves behind (a writable
subvolume under the snapshot's name, without a received UUID) is deleted and
received again; anything else under that name is a conflict and an error.  ``last_replication`` records what was sent from what.

Checks (``check_snapshots``): every snapshot must be read-only, must be a
snapshot of this ledger's subvolume (its parent UUID), and its ledger must be a
prefix of the live one: opened read-only (a torn or altered last record is a
problem, not repaired), size s not beyond the live size, and the Merkle root of
its s records, recomputed from the records themselves (not taken from its
``leaves.idx``), equal to the live ledger's root of its first s records.  A
snapshot replaced by another subvolume, or whose records were altered, fails.
This reads every record of every snapshot: it is a verification, not a probe.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import calendar
import os
import re
import shutil
import tempfile
import time

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import (
    BtrfsError, create_snapshot, create_subvolume, delete_subvolume, filesystem_uuid, get_readonly, is_btrfs,
    is_subvolume, receive, send, stream_subvolume_name, subvolume_info,
)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import MerkleTree
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import record_hash
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import (
    DIR_MODE, INDEX_FILE, Ledger, LedgerError, TornTailError, leaf_of,
)

DEFAULT_RETENTION = {"last": 1, "hourly": 5, "daily": 5, "weekly": 5, "quarterly": 5}
POLICIES = ("playbook", "minute", "hourly", "daily", "never")
NAME_RE = re.compile(r"^(\d{8}T\d{6}Z)-([A-Za-z0-9_-]+)(?:\.(\d+))?$")
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
MAX_REASON = 64
_POLICY_PERIOD = {"minute": 60, "hourly": 3600, "daily": 86400}


class SnapshotError(Exception):
    """A snapshot operation failed or was asked for where snapshots are not supported."""


def clean_reason(reason):
    """The reason as it appears in a snapshot name: [A-Za-z0-9_-], at most 64 characters."""
    text = re.sub(r"[^A-Za-z0-9_-]", "_", str(reason or ""))[:MAX_REASON]
    return text or "snapshot"


def parse_name(name):
    """(epoch seconds, reason, suffix number) of a snapshot name, or None when it is not one."""
    match = NAME_RE.match(name)
    if not match:
        return None
    try:
        stamp = calendar.timegm(time.strptime(match.group(1), STAMP_FORMAT))
    except ValueError:
        return None
    return stamp, match.group(2), int(match.group(3) or 1)


def period_of(kind, when):
    """The ordinal of the UTC period of ``kind`` (hourly, daily, weekly, quarterly) holding epoch ``when``."""
    secs = int(when // 1)
    if kind == "hourly":
        return secs // 3600
    day = secs // 86400
    if kind == "daily":
        return day
    if kind == "weekly":
        # 1970-01-01 was a Thursday: day -3 is the Monday that starts its ISO week
        return (day + 3) // 7
    if kind == "quarterly":
        tm = time.gmtime(secs)
        return tm.tm_year * 4 + (tm.tm_mon - 1) // 3
    raise SnapshotError("unknown retention kind %r" % (kind,))


def plan_retention(snapshots, now, retention):
    """Split ``[(name, time)]`` (oldest first) into (keep, remove) name lists by the rules above."""
    if not snapshots:
        return [], []
    keep = {snapshots[-1][0]}
    keep.update(name for name, _when in snapshots[-retention.get("last", 1):] if retention.get("last", 1) > 0)
    for kind, count in retention.items():
        if count <= 0 or kind == "last":
            continue
        current = period_of(kind, now)
        newest = {}
        for name, when in snapshots:
            newest[period_of(kind, when)] = name  # oldest first: the last one seen is the newest
        for period, name in newest.items():
            if current - count < period:
                keep.add(name)
    keep.update(name for name, when in snapshots if when > now)
    return ([name for name, _when in snapshots if name in keep],
            [name for name, _when in snapshots if name not in keep])


def validate_retention(retention):
    """DEFAULT_RETENTION overridden by ``retention`` (known keys, non-negative ints)."""
    merged = dict(DEFAULT_RETENTION)
    if retention is None:
        return merged
    if not isinstance(retention, dict):
        raise SnapshotError("retention must be a dict like %r" % (DEFAULT_RETENTION,))
    for key, value in retention.items():
        if key not in DEFAULT_RETENTION:
            raise SnapshotError("unknown retention key %r (known: %s)" % (key, ", ".join(sorted(DEFAULT_RETENTION))))
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SnapshotError("retention %s must be a non-negative integer, got %r" % (key, value))
        merged[key] = value
    return merged


class SnapshotManager:
    """Snapshots of one ledger directory; see the module docstring for the rules."""

    def __init__(self, ledger_dir, snapshot_dir=None, retention=None, clock=time.time):
        self.ledger_dir = os.path.abspath(ledger_dir)
        if snapshot_dir is None:
            snapshot_dir = self.ledger_dir.rstrip("/") + ".snapshots"
        self.snapshot_dir = os.path.abspath(snapshot_dir)
        if self.snapshot_dir == self.ledger_dir or self.snapshot_dir.startswith(self.ledger_dir + "/"):
            raise SnapshotError("snapshot directory %s must be outside the ledger directory %s" % (self.snapshot_dir, self.ledger_dir))
        self.retention = validate_retention(retention)
        self.clock = clock
        self.last_replication = []

    # -- support -------------------------------------------------------

    def _nearest_existing(self, path):
        while not os.path.exists(path):
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        return path

    def _why_not(self):
        """None when snapshots work here, else the one sentence saying why not."""
        try:
            if not os.path.exists(self.ledger_dir):
                parent = self._nearest_existing(os.path.dirname(self.ledger_dir))
                if not is_btrfs(parent):
                    return "%s is not on btrfs: snapshots off" % self.ledger_dir
                return "%s does not exist yet (ensure_subvolume creates it as a btrfs subvolume): snapshots off" % self.ledger_dir
            if not is_btrfs(self.ledger_dir):
                return "%s is not on btrfs: snapshots off" % self.ledger_dir
            if not is_subvolume(self.ledger_dir):
                return ("%s is a plain directory, not a btrfs subvolume: snapshots off (to convert, with no writer running: "
                        "btrfs subvolume create %s.new && cp -a --reflink=always %s/. %s.new/ && mv %s %s.old && mv %s.new %s)"
                        % ((self.ledger_dir,) * 8))
            snap_fs = self._nearest_existing(self.snapshot_dir)
            if not is_btrfs(snap_fs) or filesystem_uuid(snap_fs) != filesystem_uuid(self.ledger_dir):
                return "snapshot directory %s is not on the btrfs filesystem of %s: snapshots off" % (self.snapshot_dir, self.ledger_dir)
        except BtrfsError as exc:
            return "btrfs check failed (%s): snapshots off" % exc
        return None

    @property
    def reason(self):
        return self._why_not()

    @property
    def supported(self):
        return self._why_not() is None

    def _require_supported(self, what):
        why = self._why_not()
        if why is not None:
            raise SnapshotError("cannot %s: %s" % (what, why))

    def ensure_subvolume(self):
        """Create the ledger directory as a subvolume (0700) if it is missing and its parent is on btrfs.

        True when it was created; False otherwise (an existing directory, plain
        or subvolume, is left as it is: ``reason`` tells how to convert a plain one).
        """
        if os.path.lexists(self.ledger_dir):
            return False
        parent = os.path.dirname(self.ledger_dir)
        if not os.path.isdir(parent):
            return False
        try:
            if not is_btrfs(parent):
                return False
            create_subvolume(self.ledger_dir)
            os.chmod(self.ledger_dir, DIR_MODE)
        except (BtrfsError, OSError) as exc:
            raise SnapshotError("cannot create the ledger subvolume %s: %s" % (self.ledger_dir, exc)) from exc
        return True

    # -- snapshots -----------------------------------------------------

    def _now(self, now):
        return self.clock() if now is None else now

    def due(self, policy, now=None):
        """Whether ``policy`` asks for a snapshot now."""
        if policy not in POLICIES:
            raise SnapshotError("unknown snapshot policy %r (known: %s)" % (policy, ", ".join(POLICIES)))
        if policy == "playbook":
            return True
        if policy == "never":
            return False
        period = _POLICY_PERIOD[policy]
        current = int(self._now(now) // period)
        return not any(int(info["time"] // period) == current for info in self.list())

    def _info(self, name, parsed):
        path = os.path.join(self.snapshot_dir, name)
        sub = subvolume_info(path)
        return {"name": name, "path": path, "time": float(parsed[0]), "reason": parsed[1], "uuid": sub["uuid"],
                "readonly": sub["readonly"], "_order": (parsed[0], sub["otime"], parsed[2], name)}

    def list(self):
        """Info dicts ``{name, path, time, reason, uuid, readonly}`` of the snapshots, oldest first."""
        if not os.path.isdir(self.snapshot_dir):
            return []
        found = []
        for name in os.listdir(self.snapshot_dir):
            parsed = parse_name(name)
            path = os.path.join(self.snapshot_dir, name)
            if parsed is None or not os.path.isdir(path) or os.path.islink(path):
                continue
            try:
                if not is_subvolume(path):
                    continue
                found.append(self._info(name, parsed))
            except BtrfsError:
                continue
        found.sort(key=lambda info: info["_order"])
        for info in found:
            del info["_order"]
        return found

    def _make_snapshot_dir(self):
        try:
            os.mkdir(self.snapshot_dir, DIR_MODE)
        except FileExistsError:
            pass
        os.chmod(self.snapshot_dir, DIR_MODE)

    def snapshot(self, reason, now=None):
        """Take a read-only snapshot of the ledger; return its info dict."""
        self._require_supported("snapshot the ledger")
        when = self._now(now)
        base = "%s-%s" % (time.strftime(STAMP_FORMAT, time.gmtime(int(when // 1))), clean_reason(reason))
        self._make_snapshot_dir()
        number = 1
        while True:
            name = base if number == 1 else "%s.%d" % (base, number)
            path = os.path.join(self.snapshot_dir, name)
            if not os.path.lexists(path):
                try:
                    create_snapshot(self.ledger_dir, path, readonly=True)
                    break
                except BtrfsError as exc:
                    if not os.path.lexists(path):
                        raise SnapshotError("snapshot of %s failed: %s" % (self.ledger_dir, exc)) from exc
            number += 1
        info = self._info(name, parse_name(name))
        del info["_order"]
        return info

    def plan_prune(self, now=None):
        """(keep, remove): snapshot names, oldest first, by the retention rules."""
        snaps = [(info["name"], info["time"]) for info in self.list()]
        return plan_retention(snaps, self._now(now), self.retention)

    def prune(self, now=None):
        """Delete the snapshots the retention rules do not keep; return their names."""
        self._require_supported("prune snapshots")
        removed = []
        for name in self.plan_prune(now)[1]:
            try:
                delete_subvolume(os.path.join(self.snapshot_dir, name))
            except BtrfsError as exc:
                raise SnapshotError("pruning snapshot %s failed (removed so far: %s): %s"
                                    % (name, ", ".join(removed) or "none", exc)) from exc
            removed.append(name)
        return removed

    # -- replication ---------------------------------------------------

    def _target_received(self, target_dir):
        """{received uuid: name} of the subvolumes directly under target_dir."""
        held = {}
        for name in os.listdir(target_dir):
            path = os.path.join(target_dir, name)
            if os.path.islink(path) or not os.path.isdir(path):
                continue
            try:
                if is_subvolume(path):
                    received = subvolume_info(path)["received_uuid"]
                    if received:
                        held[received] = name
            except BtrfsError:
                continue
        return held

    @staticmethod
    def _clear_interrupted(target_dir, name):
        """Delete what an interrupted receive left under this name: a writable subvolume with no received UUID.

        Anything else already there under the name is a conflict, not ours to remove.
        """
        path = os.path.join(target_dir, name)
        if not os.path.lexists(path):
            return
        if not os.path.islink(path) and os.path.isdir(path) and is_subvolume(path):
            info = subvolume_info(path)
            if info["received_uuid"] is None and not info["readonly"]:
                delete_subvolume(path)
                return
        raise BtrfsError(path, "receive", "the target already holds something else under this name")

    def replicate(self, target_dir, tmp_dir=None):
        """Send every snapshot missing under ``target_dir`` (a btrfs directory); return the names sent."""
        self._require_supported("replicate snapshots")
        target_dir = os.path.abspath(target_dir)
        try:
            if not os.path.isdir(target_dir):
                parent = os.path.dirname(target_dir)
                if not os.path.isdir(parent) or not is_btrfs(parent):
                    raise SnapshotError("replication target %s does not exist and its parent is not a btrfs directory" % target_dir)
                os.mkdir(target_dir, DIR_MODE)
            if not is_btrfs(target_dir):
                raise SnapshotError("replication target %s is not on btrfs" % target_dir)
        except (BtrfsError, OSError) as exc:
            raise SnapshotError("replication target %s: %s" % (target_dir, exc)) from exc
        local = self.list()
        held = self._target_received(target_dir)
        order = dict((info["name"], pos) for pos, info in enumerate(local))
        both = [info for info in local if info["uuid"] in held]
        self.last_replication = []
        sent = []
        work = tempfile.mkdtemp(prefix="opdbus-ledger-send-", dir=tmp_dir)
        try:
            os.chmod(work, 0o700)
            for pos, info in enumerate(local):
                if info["uuid"] in held:
                    continue
                older = [b for b in both if order[b["name"]] < pos]
                parent = (older or both or [None])[-1]
                stream = os.path.join(work, "%s.stream" % info["name"])
                try:
                    size = send(info["path"], stream, parent=parent["path"] if parent else None)
                    self._clear_interrupted(target_dir, stream_subvolume_name(stream))
                    received = receive(stream, target_dir)
                except BtrfsError as exc:
                    raise SnapshotError("replicating %s to %s failed (sent so far: %s): %s"
                                        % (info["name"], target_dir, ", ".join(sent) or "none", exc)) from exc
                finally:
                    if os.path.exists(stream):
                        os.unlink(stream)
                held[info["uuid"]] = os.path.basename(received)
                both.append(info)
                both.sort(key=lambda b: order[b["name"]])
                sent.append(info["name"])
                self.last_replication.append({"name": info["name"], "parent": parent["name"] if parent else None,
                                              "bytes": size, "path": received})
        finally:
            shutil.rmtree(work, ignore_errors=True)
        return sent

    # -- checks --------------------------------------------------------

    def check_snapshots(self, ledger):
        """Problems (strings naming the snapshot) found comparing every snapshot with the live ``ledger``."""
        problems = []
        ledger_uuid = None
        try:
            if is_subvolume(self.ledger_dir):
                ledger_uuid = subvolume_info(self.ledger_dir)["uuid"]
        except BtrfsError as exc:
            problems.append("ledger %s: cannot read its subvolume info: %s" % (self.ledger_dir, exc))
        for info in self.list():
            name = info["name"]
            if not info["readonly"] or not get_readonly(info["path"]):
                problems.append("snapshot %s is not read-only" % name)
            parent_uuid = subvolume_info(info["path"])["parent_uuid"]
            if ledger_uuid is not None and parent_uuid != ledger_uuid:
                problems.append("snapshot %s was not taken of the ledger subvolume %s (its parent uuid is %s, the ledger's %s): "
                                "replaced" % (name, self.ledger_dir, parent_uuid, ledger_uuid))
            problems.extend(self._check_content(name, info["path"], ledger))
        return problems

    @staticmethod
    def _check_content(name, path, ledger):
        """Problems of one snapshot's records against the live ledger (leaves recomputed from the records)."""
        problems = []
        try:
            with Ledger(path, readonly=True, repair=False) as snap:
                size = snap.size
                index_root = snap.root(size)
                leaves = []
                for rec in snap.records():
                    actual = record_hash(rec)
                    if actual != rec["hash"]:
                        problems.append("snapshot %s: record %d does not hash to its stored hash (altered)" % (name, rec["seq"]))
                    leaves.append(leaf_of(actual))
        except TornTailError as exc:
            return ["snapshot %s: its last record is torn or altered (%s)" % (name, exc)]
        except (LedgerError, OSError, ValueError) as exc:
            return ["snapshot %s: its ledger cannot be read: %s" % (name, exc)]
        root = MerkleTree.from_leaf_hashes(b"".join(leaves)).root()
        if root != index_root:
            problems.append("snapshot %s: its %s does not match its records (altered)" % (name, INDEX_FILE))
        if size > ledger.size:
            problems.append("snapshot %s holds %d records, more than the ledger's %d: the ledger lost records or the "
                            "snapshot was replaced" % (name, size, ledger.size))
        elif root != ledger.root(size):
            first = next((seq for seq, leaf in enumerate(leaves) if leaf != ledger.leaf_hash(seq)), None)
            problems.append("snapshot %s: the Merkle root of its %d records differs from the ledger's (first difference at "
                            "record %s): the snapshot was replaced or altered, or the ledger was" % (name, size, first))
        return problems
