# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The btrfs_cache reconciler: validate, read the current state, plan, apply (with undo), report.

The plan is computed on a model of the state (``read_state``): every step says what it changes
and changes the model the same way, so check mode's ``after`` is what a real run leaves, and the
real run re-reads the state at the end. Steps that fail are undone in reverse order as far as
they can be (a created subvolume is deleted again, files get their old content back, a limit its
old value; deleted snapshots cannot come back, so deletions run last).

Usage comes from the cache's level-0 qgroup (referenced and exclusive bytes, from the quota
tree) when quotas are on and consistent, else from a walk over the cache's files adding their
allocated blocks (``st_blocks``, each inode once; exclusive unknown). The compression ratio comes
from the file extent items of the cache's tree (``btrfs.compression_usage``, as ``compsize``):
bytes on disk / uncompressed bytes, as of the last transaction commit.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import hashlib
import os
import re
import stat
import time

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs
from ansible_collections.opdbus.infra.plugins.module_utils.btrfs_cache import retention, script, snapshots, units

LAYOUT = ("embeddings", "blocks", "queries", "diffs")
DEFAULT_NAME = "@cache"
DEFAULT_UNITS_DIR = "/etc/systemd/system"
DEFAULT_SCRIPT = "/usr/local/libexec/opdbus/btrfs-cache-snapshot"
DEFAULT_RETENTION = {"hourly": 24, "daily": 7, "weekly": 4, "quarterly": 4}
WANTS = "timers.target.wants"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtpe]?)(?:i?b)?\s*$", re.IGNORECASE)
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5, "e": 6}


class ValidationError(Exception):
    """The desired state is not acceptable; nothing was touched."""


def parse_size(value):
    """Bytes from ``10G``, ``512M``, ``1.5T``, ``1073741824`` (binary units, as btrfs-progs); "none" gives "none"."""
    if value is None:
        return None
    text = str(value).strip()
    if text.lower() == "none":
        return "none"
    match = _SIZE_RE.match(text)
    if not match:
        raise ValidationError("size_limit %r is not a size (e.g. 10G, 512M, 1T, a number of bytes, or none)" % (value,))
    size = int(float(match.group(1)) * (1024 ** _UNITS[match.group(2).lower()]))
    if size < 1:
        raise ValidationError("size_limit %r is zero; give a positive size or none" % (value,))
    if size >= 2 ** 64 - 1:
        raise ValidationError("size_limit %r is larger than btrfs can limit" % (value,))
    return size


def compression_value(algorithm, level):
    """The btrfs.compression property value for an algorithm and level, validated."""
    if algorithm in (None, ""):
        if level is not None:
            raise ValidationError("compression_level %s needs compression (zstd or zlib)" % level)
        return None
    if algorithm == "none":
        if level is not None:
            raise ValidationError("compression none takes no compression_level (got %s)" % level)
        return "none"
    bounds = btrfs.COMPRESSION_LEVELS.get(algorithm, False)
    if bounds is False:
        raise ValidationError("compression %r is not one of zstd, zlib, lzo, none" % (algorithm,))
    if level is None:
        return algorithm
    if bounds is None:
        raise ValidationError("compression %s takes no compression_level (got %s)" % (algorithm, level))
    if not bounds[0] <= level <= bounds[1]:
        raise ValidationError("compression_level %s is out of range for %s (%d to %d)" % (level, algorithm, bounds[0], bounds[1]))
    return "%s:%d" % (algorithm, level)


def _fstype(path):
    """The filesystem type the mount holding ``path`` has, from /proc/self/mountinfo (for messages)."""
    try:
        mnt = btrfs.find_mount(path)
        with open("/proc/self/mountinfo", "r", encoding="utf-8", errors="surrogateescape") as handle:
            found = None
            for line in handle:
                head, sep, tail = line.partition(" - ")
                fields = head.split(" ")
                if sep and len(fields) >= 5 and btrfs._unescape_mountinfo(fields[4]) == mnt:  # pylint: disable=protected-access
                    found = "%s, mounted on %s" % (tail.split(" ")[0], mnt)
            return found or "unknown"
    except (OSError, btrfs.BtrfsError):
        return "unknown"


def _inside(path, top):
    return path == top or path.startswith(top.rstrip("/") + "/")


def validate(params, now=None):
    """The desired state from the module's parameters, checked against the host without changing it."""
    fs = params.get("filesystem")
    if not fs or not os.path.isabs(fs):
        raise ValidationError("filesystem must be an absolute path (a btrfs mount point or a directory on one), not %r" % (fs,))
    fs = os.path.normpath(fs)
    if not os.path.isdir(fs):
        raise ValidationError("filesystem %s does not exist or is not a directory" % fs)
    if not btrfs.is_btrfs(fs):
        raise ValidationError("filesystem %s is not on btrfs (%s)" % (fs, _fstype(fs)))
    fs_uuid = btrfs.filesystem_uuid(fs)

    raw_path = params.get("path") or DEFAULT_NAME
    path = os.path.normpath(os.path.join(fs, raw_path))
    if not _inside(path, fs) or path == fs:
        raise ValidationError("path %s is outside the filesystem directory %s (give a name or a path below it)" % (raw_path, fs))
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        raise ValidationError("path %s: its parent directory %s does not exist" % (path, parent))
    if not btrfs.is_btrfs(parent) or btrfs.filesystem_uuid(parent) != fs_uuid:
        raise ValidationError("path %s is outside the filesystem of %s (its parent is on %s)" % (path, fs, _fstype(parent)))
    if os.path.islink(path):
        raise ValidationError("path %s is a symbolic link, not a subvolume" % path)
    if os.path.lexists(path) and not btrfs.is_subvolume(path):
        raise ValidationError("path %s exists and is not a btrfs subvolume (a plain directory or file); move it away first" % path)
    for name in LAYOUT:
        entry = os.path.join(path, name)
        if os.path.lexists(entry) and (os.path.islink(entry) or not os.path.isdir(entry)):
            raise ValidationError("layout entry %s exists and is not a directory" % entry)

    snapshot_dir = os.path.normpath(os.path.join(fs, params.get("snapshot_dir") or path + ".snapshots"))
    if not _inside(snapshot_dir, fs) or _inside(snapshot_dir, path):
        raise ValidationError("snapshot_dir %s must be below %s and outside the cache %s" % (snapshot_dir, fs, path))
    if os.path.lexists(snapshot_dir) and (os.path.islink(snapshot_dir) or not os.path.isdir(snapshot_dir)):
        raise ValidationError("snapshot_dir %s exists and is not a directory" % snapshot_dir)
    snap_parent = os.path.dirname(snapshot_dir)
    if not os.path.isdir(snap_parent):
        raise ValidationError("snapshot_dir %s: its parent directory %s does not exist" % (snapshot_dir, snap_parent))
    if not btrfs.is_btrfs(snap_parent) or btrfs.filesystem_uuid(snap_parent) != fs_uuid:
        raise ValidationError("snapshot_dir %s is not on the same btrfs filesystem as %s" % (snapshot_dir, fs))

    compression = compression_value(params.get("compression"), params.get("compression_level"))
    size_limit = parse_size(params.get("size_limit"))
    try:
        counts = retention.validate_counts(params.get("retention") if params.get("retention") is not None else DEFAULT_RETENTION)
        when = retention.utc(params["now"]) if params.get("now") else retention.utc(now if now is not None else time.time())
    except retention.RetentionError as exc:
        raise ValidationError(str(exc)) from None
    schedule = params.get("snapshot_schedule")
    if schedule is not None and schedule != "absent":
        try:
            schedule = units.check_schedule(schedule)
        except units.ScheduleError as exc:
            raise ValidationError(str(exc)) from None
    units_dir = os.path.normpath(params.get("units_dir") or DEFAULT_UNITS_DIR)
    script_path = os.path.normpath(params.get("script_path") or DEFAULT_SCRIPT)
    if schedule is not None or params.get("state") == "absent":
        if not os.path.isdir(units_dir):
            raise ValidationError("units_dir %s does not exist" % units_dir)
    if not os.path.isabs(script_path):
        raise ValidationError("script_path must be absolute, not %s" % script_path)
    if os.path.isdir(script_path):
        raise ValidationError("script_path %s is a directory" % script_path)
    state = params.get("state") or "present"
    if state == "absent":
        for sub in btrfs.list_subvolumes(fs):
            if sub["abspath"] and sub["abspath"] != path and _inside(sub["abspath"], path):
                raise ValidationError("path %s holds another subvolume (%s); delete it first" % (path, sub["abspath"]))
    base = units.unit_base(path)
    return {
        "state": state, "filesystem": fs, "path": path, "snapshot_dir": snapshot_dir, "compression": compression,
        "size_limit": size_limit, "schedule": schedule, "retention": counts, "prune": bool(params.get("prune")),
        "snapshot": bool(params.get("snapshot")), "now": when, "units_dir": units_dir, "script_path": script_path,
        "service": base + ".service", "timer": base + ".timer",
        "measure_compression": params.get("measure_compression", True) is not False,
    }


def _read(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _digest(text):
    return None if text is None else "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def unit_paths(desired):
    d = desired["units_dir"]
    return {"service": os.path.join(d, desired["service"]), "timer": os.path.join(d, desired["timer"]),
            "link": os.path.join(d, WANTS, desired["timer"])}


def read_state(desired):
    """What the module owns, as it is now (the model the plan works on and the diff shows)."""
    path = desired["path"]
    exists = os.path.isdir(path) and btrfs.is_subvolume(path)
    quota = btrfs.quota_enabled(desired["filesystem"])
    limit = None
    if exists and quota:
        group = btrfs.qgroup_show(desired["filesystem"]).get(btrfs.subvolume_info(path)["id"])
        limit = group["max_referenced"] if group else None
    paths = unit_paths(desired)
    link = paths["link"]
    return {
        "state": "present" if exists else "absent",
        "layout": sorted(n for n in LAYOUT if exists and os.path.isdir(os.path.join(path, n))),
        "compression": (btrfs.get_compression(path) or None) if exists else None,
        "layout_compression": dict((n, btrfs.get_compression(os.path.join(path, n)) or None)
                                   for n in LAYOUT if exists and os.path.isdir(os.path.join(path, n))),
        "quota_enabled": quota,
        "size_limit": limit,
        "snapshot_dir": os.path.isdir(desired["snapshot_dir"]),
        "snapshots": snapshots.list_snapshots(desired["snapshot_dir"]),
        "service": _read(paths["service"]),
        "timer": _read(paths["timer"]),
        "timer_enabled": os.path.islink(link) and os.readlink(link) == paths["timer"],
        "script": _digest(_read(desired["script_path"])),
    }


class Step:
    """One change: its text, how to make it, how to undo it (None: cannot be undone)."""

    def __init__(self, text, do, undo=None, systemd=False):
        self.text = text
        self.do = do
        self.undo = undo
        self.systemd = systemd


def _write_file(path, text, mode):
    """Write atomically (temp file + rename) with ``mode``; returns the undo."""
    old = _read(path)
    directory = os.path.dirname(path)
    made_dir = not os.path.isdir(directory)
    if made_dir:
        os.makedirs(directory, 0o755)
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, mode)
    os.rename(tmp, path)

    def undo():
        if old is None:
            os.unlink(path)
        else:
            _write_file(path, old, mode)
    return undo


def _remove_file(path):
    old = _read(path) if not os.path.islink(path) else None
    target = os.readlink(path) if os.path.islink(path) else None
    os.unlink(path)

    def undo():
        if target is not None:
            os.symlink(target, path)
        elif old is not None:
            _write_file(path, old, 0o644)
    return undo


def _link(target, link):
    directory = os.path.dirname(link)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(target, link)
    return lambda: os.unlink(link)


def plan(desired, current, module=None):
    """(steps, after model): the changes from ``current`` to ``desired``; ``after`` is the state they leave."""
    after = copy.deepcopy(current)
    steps = []
    path, fs = desired["path"], desired["filesystem"]
    paths = unit_paths(desired)
    booted = units.systemd_running()

    def add(text, do, undo_maker=None, systemd=False):
        steps.append(Step(text, do, undo_maker, systemd))

    # units first when removing (stop the timer before its files and the cache go)
    remove_units = desired["schedule"] == "absent" or desired["state"] == "absent"
    if remove_units and (current["service"] is not None or current["timer"] is not None or current["timer_enabled"]):
        if booted:
            add("stop timer %s (systemd)" % desired["timer"], lambda: units.stop(desired["timer"], module), systemd=True)
        if current["timer_enabled"]:
            add("disable timer %s (remove %s)" % (desired["timer"], paths["link"]), lambda: _remove_file(paths["link"]))
            after["timer_enabled"] = False
        for kind in ("timer", "service"):
            if current[kind] is not None:
                add("remove unit %s" % paths[kind], lambda p=paths[kind]: _remove_file(p))
                after[kind] = None
        if booted:
            add("reload systemd", lambda: units.reload(module), systemd=True)

    if desired["state"] == "absent":
        for name in current["snapshots"]:
            add("delete snapshot %s" % os.path.join(desired["snapshot_dir"], name),
                lambda n=name: btrfs.delete_subvolume(os.path.join(desired["snapshot_dir"], n)))
        after["snapshots"] = []
        if current["snapshot_dir"]:
            others = [n for n in os.listdir(desired["snapshot_dir"]) if n not in current["snapshots"]]
            if not others:
                add("remove directory %s" % desired["snapshot_dir"], lambda: os.rmdir(desired["snapshot_dir"]))
                after["snapshot_dir"] = False
        if current["state"] == "present":
            add("delete subvolume %s" % path, lambda: btrfs.delete_subvolume(path))
            after.update(state="absent", layout=[], layout_compression={}, compression=None, size_limit=None)
        return steps, after

    if current["state"] == "absent":
        add("create subvolume %s" % path, lambda: btrfs.create_subvolume(path), lambda: btrfs.delete_subvolume(path))
        after["state"] = "present"
    # Compression first, so that what is made afterwards inherits it. The kernel passes on the
    # algorithm but not the level, so each layout directory gets the whole value set as well.
    want = desired["compression"]
    if want is not None and want != current["compression"]:
        old = current["compression"] or ""
        add("set compression of %s to %s" % (path, want), lambda: _set_compression(path, want),
            lambda: _restore_compression(path, old))
        after["compression"] = want
    for name in LAYOUT:
        entry = os.path.join(path, name)
        if name not in current["layout"]:
            add("create directory %s" % entry, lambda e=entry: _mkdir(e, want), lambda e=entry: os.rmdir(e))
        elif want is not None and current["layout_compression"].get(name) != want:
            old = current["layout_compression"].get(name) or ""
            add("set compression of %s to %s" % (entry, want), lambda e=entry: _set_compression(e, want),
                lambda e=entry, o=old: _restore_compression(e, o))
        after["layout_compression"][name] = want if want is not None else current["layout_compression"].get(name)
    after["layout"] = sorted(LAYOUT)
    limit = desired["size_limit"]
    if isinstance(limit, int):
        if not current["quota_enabled"]:
            add("enable quotas on the filesystem of %s (all its subvolumes get qgroups)" % fs,
                lambda: btrfs.enable_quota(fs, wait=True))
            after["quota_enabled"] = True
        if current["size_limit"] != limit:
            old_limit = current["size_limit"]
            add("set size limit of %s to %d bytes (qgroup max referenced)" % (path, limit),
                lambda: btrfs.set_qgroup_limit(path, max_referenced=limit),
                lambda: btrfs.set_qgroup_limit(path, max_referenced=old_limit, clear_referenced=old_limit is None))
            after["size_limit"] = limit
    elif limit == "none" and current["size_limit"] is not None:
        old_limit = current["size_limit"]
        add("remove size limit of %s" % path, lambda: btrfs.set_qgroup_limit(path, clear_referenced=True),
            lambda: btrfs.set_qgroup_limit(path, max_referenced=old_limit))
        after["size_limit"] = None
    if not current["snapshot_dir"]:
        add("create directory %s" % desired["snapshot_dir"], lambda: os.mkdir(desired["snapshot_dir"], 0o755),
            lambda: os.rmdir(desired["snapshot_dir"]))
        after["snapshot_dir"] = True

    if desired["schedule"] not in (None, "absent"):
        text = script.script_text()
        if current["script"] != _digest(text):
            add("write snapshot script %s" % desired["script_path"], lambda: _write_file(desired["script_path"], text, 0o755))
            after["script"] = _digest(text)
        wanted = {"service": units.service_text(path, desired["snapshot_dir"], desired["retention"], desired["script_path"]),
                  "timer": units.timer_text(path, desired["schedule"])}
        touched = False
        for kind in ("service", "timer"):
            if current[kind] != wanted[kind]:
                add("write unit %s" % paths[kind], lambda p=paths[kind], t=wanted[kind]: _write_file(p, t, 0o644))
                after[kind] = wanted[kind]
                touched = True
        if not current["timer_enabled"]:
            add("enable timer %s (link in %s)" % (desired["timer"], WANTS), lambda: _link(paths["timer"], paths["link"]))
            after["timer_enabled"] = True
            touched = True
        if touched and booted:
            add("reload systemd and start timer %s" % desired["timer"], lambda: units.activate(desired["timer"], module),
                systemd=True)

    names = list(current["snapshots"])
    if desired["snapshot"]:
        name = retention.snapshot_name(desired["now"], os.listdir(desired["snapshot_dir"]) if current["snapshot_dir"] else ())
        target = os.path.join(desired["snapshot_dir"], name)
        add("take snapshot %s" % target, lambda: btrfs.create_snapshot(path, target, readonly=True),
            lambda: btrfs.delete_subvolume(target))
        names.append(name)
    if desired["prune"]:
        keep, drop, dummy_reasons = retention.select(names, desired["retention"], desired["now"])
        for name in drop:
            add("delete snapshot %s" % os.path.join(desired["snapshot_dir"], name),
                lambda n=name: btrfs.delete_subvolume(os.path.join(desired["snapshot_dir"], n)))
        names = keep + [n for n in names if retention.parse_name(n) is None]
    after["snapshots"] = sorted(names, key=retention.parse_name)
    return steps, after


def _mkdir(path, compression):
    os.mkdir(path, 0o755)
    if compression is not None:
        _set_compression(path, compression)


def _set_compression(path, value):
    if value == "none":
        _set_none(path)
    else:
        btrfs.set_compression(path, value)


def _set_none(path):
    """compression none: the property value "none" (the kernel then does not compress new files here)."""
    try:
        os.setxattr(path, btrfs.COMPRESSION_XATTR, b"none")
    except OSError as exc:
        raise btrfs.BtrfsError(path, "set compression property 'none'", err=exc.errno) from exc


def _restore_compression(path, old):
    if old == "none":
        _set_none(path)
    else:
        btrfs.set_compression(path, old or None)


def apply(steps):
    """Run the steps in order; on failure undo the done ones (newest first) and raise the first error."""
    undos = []
    for step in steps:
        try:
            result = step.do()
        except Exception:
            for undo in reversed(undos):
                try:
                    undo()
                except Exception:  # pylint: disable=broad-except
                    pass
            raise
        if callable(result) and step.undo is None:
            undos.append(result)
        elif step.undo is not None:
            undos.append(step.undo)


def walk_usage(path):
    """Allocated bytes of the files under ``path`` (st_blocks * 512, each inode once, not into other subvolumes)."""
    seen = set()
    total = 0
    top = os.stat(path).st_dev
    for root, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if os.lstat(os.path.join(root, d)).st_dev == top
                   and os.lstat(os.path.join(root, d)).st_ino != btrfs.BTRFS_FIRST_FREE_OBJECTID]
        for name in files + [""]:
            full = os.path.join(root, name) if name else root
            st = os.lstat(full)
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode):
                total += st.st_blocks * 512
    return total


def usage(desired, state):
    """{"referenced", "exclusive", "source"}: from the qgroup when quotas are on and consistent, else a walk."""
    path = desired["path"]
    if state["state"] != "present" or not os.path.isdir(path):
        return {"referenced": 0, "exclusive": 0, "source": "none"}
    status = btrfs.quota_status(desired["filesystem"])
    if status["enabled"] and not status["inconsistent"] and not status["rescanning"]:
        group = btrfs.qgroup_show(desired["filesystem"]).get(btrfs.subvolume_info(path)["id"])
        if group and group["referenced"] is not None:
            return {"referenced": group["referenced"], "exclusive": group["exclusive"], "source": "qgroup"}
    return {"referenced": walk_usage(path), "exclusive": None, "source": "walk"}


def report(desired, state):
    """The ``cache`` return value."""
    path = desired["path"]
    present = state["state"] == "present" and os.path.isdir(path)
    ratio = None
    if present and desired["measure_compression"]:
        ratio = btrfs.compression_usage(path)
    paths = unit_paths(desired)
    return {
        "path": path, "filesystem": desired["filesystem"], "state": state["state"],
        "snapshot_dir": desired["snapshot_dir"],
        "layout": dict((name, os.path.join(path, name)) for name in state["layout"]),
        "compression": state["compression"], "quota_enabled": state["quota_enabled"], "size_limit": state["size_limit"],
        "usage": usage(desired, state) if present else {"referenced": 0, "exclusive": 0, "source": "none"},
        "compression_ratio": ratio, "snapshots": state["snapshots"],
        "timer": paths["timer"] if state["timer"] is not None else None,
        "service": paths["service"] if state["service"] is not None else None,
        "timer_enabled": state["timer_enabled"], "script": desired["script_path"] if state["script"] else None,
        "systemd_running": units.systemd_running(),
    }


def run(params, check_mode=False, module=None, now=None):
    """One task: returns (changed, changes, before, after, cache report)."""
    desired = validate(params, now=now)
    before = read_state(desired)
    steps, predicted = plan(desired, before, module)
    if check_mode or not steps:
        return bool(steps), [s.text for s in steps], before, predicted, report(desired, before if not steps else predicted)
    if any(step.systemd for step in steps):
        # D-Bus must be importable before the first change (import_dbus may respawn the module).
        units.dbus_ready(module)
    apply(steps)
    after = read_state(desired)
    return True, [s.text for s in steps], before, after, report(desired, after)
