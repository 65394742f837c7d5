# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Append-only ledger storage: segments, leaf index, group commit, torn-tail recovery.

Layout of a ledger directory (directories 0700, files 0600)::

    LOCK                      fcntl lock: one writer at a time
    records/seg-000000.jsonl  records, one stored line each (record.record_line + "\\n"),
    records/seg-000001.jsonl  rolled at ``max_records`` records or ``max_bytes`` bytes
    leaves.idx                the Merkle leaf hash of every record, 32 bytes each, in seq order
    frontier                  the writer's Merkle frontier at its last sync (a cache, see below)
    checkpoints/              signed checkpoints (checkpoint.py)
    recovered/                bytes cut from a torn tail, kept as evidence

Group commit: ``append(fields_list)`` writes the whole batch with one ``write``
per segment, fsyncs the segment (and the directory when it created the
segment), then appends the batch's leaf hashes to ``leaves.idx`` and fsyncs it,
and only then returns.  A record returned by ``append`` survives a crash.

``append(fields_list, durable=False)`` does the same writes without the
fsyncs: once it returns, the records are in the kernel's page cache, so they
survive the death of the writing process (kill -9 included) but not a power
loss until ``sync()`` has run.  ``sync()`` fsyncs duplicates of the open file
descriptors outside the ledger's mutex, so one thread can append while another
makes earlier appends durable (the audit callback's group commit);
``synced_size`` is the number of records known to be on stable storage.

Recovery on open: a partial last line, a last line that does not parse or
whose hash is wrong, an index shorter or longer than the records, or a partial
index entry are repaired (the segment is cut back to its last whole record,
the cut bytes saved under ``recovered/``; the index is cut or completed from
the records) and described in ``Ledger.recovery`` (a ``RecoveryReport``);
with ``repair=False`` a ``TornTailError`` carrying the report is raised instead.
Damage before the tail is not "repaired": that is tampering, for verify.py.

Opening costs O(log n) and the size of the last segment, not the size of the ledger: closed
segments are not read (the first line of each gives its first seq), and a writer gets its Merkle
frontier (O(log n) hashes: enough to append and to compute roots for checkpoints) from
``frontier``, which ``sync()`` rewrites, extended with the index entries written since. A
``frontier`` file that is missing, stale beyond the index, or does not end on the index's entry is
ignored and the frontier is rebuilt from ``leaves.idx`` in one pass. A wrong frontier cannot
hide anything: checkpoints signed from it would not match the records, which verify recomputes.
The full tree (for proofs and roots of earlier sizes) is built from ``leaves.idx`` on first use;
read-only opens (verify, the command line) never use ``frontier``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import re
import threading
import time
import weakref

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.merkle import HASH_SIZE, Frontier, MerkleError, MerkleTree, hash_leaf
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.record import (
    GENESIS_PREV, RecordError, make_record, parse_line, record_hash, record_line,
)

RECORDS_DIR = "records"
CHECKPOINTS_DIR = "checkpoints"
RECOVERED_DIR = "recovered"
INDEX_FILE = "leaves.idx"
FRONTIER_FILE = "frontier"
TAIL_WINDOW = 4 * 1024 * 1024  # the part of the last segment a writer reads on open
LOCK_FILE = "LOCK"
SEGMENT_RE = re.compile(r"^seg-(\d{6})\.jsonl$")
DIR_MODE = 0o700
FILE_MODE = 0o600


class LedgerError(Exception):
    """Base class of every storage error."""


class LedgerLockedError(LedgerError):
    """Another writer holds the ledger's lock."""


class LedgerCorruptError(LedgerError):
    """The ledger is damaged before its tail; run verify."""


class TornTailError(LedgerError):
    """A torn tail was found and ``repair=False`` was asked for; ``.report`` says what."""

    def __init__(self, report):
        super().__init__(report.summary())
        self.report = report


class RecoveryReport:
    """What open() found at the tail and what it did about it."""

    def __init__(self):
        self.events = []

    @property
    def repaired(self):
        return bool(self.events)

    def add(self, kind, detail, **where):
        event = {"kind": kind, "detail": detail}
        event.update(where)
        self.events.append(event)

    def summary(self):
        if not self.events:
            return "ledger tail intact"
        return "; ".join("%s: %s" % (e["kind"], e["detail"]) for e in self.events)

    def to_dict(self):
        return {"repaired": self.repaired, "events": list(self.events)}


def segment_name(ordinal):
    return "seg-%06d.jsonl" % ordinal


def leaf_of(rec_hash_hex):
    """The Merkle leaf hash of a record, from its hex ``hash``."""
    return hash_leaf(bytes.fromhex(rec_hash_hex))


def _fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _mkdir(path):
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        pass
    os.chmod(path, DIR_MODE)


def list_segments(records_dir):
    """Sorted (ordinal, name) of the files that look like segments."""
    found = []
    for name in os.listdir(records_dir):
        match = SEGMENT_RE.match(name)
        if match:
            found.append((int(match.group(1)), name))
    found.sort()
    return found


def _pread(path, offset, size=HASH_SIZE):
    with open(path, "rb") as handle:
        handle.seek(offset)
        return handle.read(size)


def _read_prefix(path, size):
    if not size:
        return b""
    with open(path, "rb") as handle:
        return handle.read(size)


class _Empty:
    """An empty file stand-in for a ledger without an index yet."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def seek(self, offset):
        pass

    def read(self, size):
        return b""


def _write_all(fd, data):
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


_OPEN_LEDGERS = weakref.WeakSet()


def _forget_in_child():
    """After fork(), in the child: drop the parent's descriptors without touching the files.

    A forked child (Ansible's worker processes) must not keep the writer's lock:
    flock belongs to the open file description, so a child outliving a killed
    parent would keep the ledger locked.
    """
    for ledger in list(_OPEN_LEDGERS):
        ledger._drop_fds()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_in_child)


class Ledger:
    """An append-only ledger in ``path``.

    ``Ledger(path)`` opens (creating if needed) for writing and takes the lock;
    ``readonly=True`` opens without the lock and refuses to append.
    """

    def __init__(self, path, max_records=100000, max_bytes=64 * 1024 * 1024, repair=True, readonly=False):
        self.path = os.path.abspath(path)
        self.max_records = max_records
        self.max_bytes = max_bytes
        self.readonly = readonly
        self.recovery = RecoveryReport()
        self._lock_fd = None
        self._seg_fd = None
        self._idx_fd = None
        self._segments = []  # [ordinal, first_seq, count, bytes]
        self._tree = None  # the full tree, built on first use
        self._frontier = Frontier()
        self._last_leaf = None
        self._frontier_saved = -1
        self._last_hash = GENESIS_PREV
        self._broken = None
        self._mutex = threading.Lock()
        self._unsynced = False
        self._synced_size = 0
        if not readonly:
            _mkdir(self.path)
            for sub in (RECORDS_DIR, CHECKPOINTS_DIR):
                _mkdir(os.path.join(self.path, sub))
            self._lock()
        _OPEN_LEDGERS.add(self)
        try:
            self._open(repair)
        except BaseException:
            self.close()
            raise
        self._synced_size = self.size

    # -- opening -------------------------------------------------------

    def _lock(self):
        lock_path = os.path.join(self.path, LOCK_FILE)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise LedgerLockedError("ledger %s is locked by another writer" % self.path) from exc
            raise
        self._lock_fd = fd

    def _save_cut(self, name, data):
        rdir = os.path.join(self.path, RECOVERED_DIR)
        _mkdir(rdir)
        out = os.path.join(rdir, "%s.%d.torn" % (name, time.time_ns()))
        fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        _fsync_dir(rdir)
        return out

    def _truncate(self, path, size):
        fd = os.open(path, os.O_WRONLY)
        try:
            os.ftruncate(fd, size)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _open(self, repair):
        rdir = os.path.join(self.path, RECORDS_DIR)
        segs = list_segments(rdir) if os.path.isdir(rdir) else []
        for pos, (ordinal, name) in enumerate(segs):
            if ordinal != pos:
                raise LedgerCorruptError("segment %s out of sequence (expected %s)" % (name, segment_name(pos)))
        total = 0
        last_rec = None
        firsts = None if self.readonly else self._closed_segment_starts(rdir, segs)
        for pos, (ordinal, name) in enumerate(segs):
            spath = os.path.join(rdir, name)
            if pos < len(segs) - 1 and firsts is not None:
                # A closed segment is not read: its count is where the next one starts.
                count = firsts[pos + 1] - firsts[pos]
                self._segments.append([ordinal, total, count, os.path.getsize(spath)])
                total += count
                continue
            if firsts is not None and firsts[pos] == total:
                tail = self._open_tail(spath, name, repair)
                if tail is not None:
                    kept_bytes, last_rec = tail
                    count = last_rec["seq"] + 1 - total if last_rec is not None else 0
                    self._segments.append([ordinal, total, count, kept_bytes])
                    total += count
                    continue
            with open(spath, "rb") as handle:
                data = handle.read()
            if pos == len(segs) - 1:
                data, last_rec = self._check_tail(spath, name, data, repair)
            count = data.count(b"\n")
            self._segments.append([ordinal, total, count, len(data)])
            total += count
        if last_rec is None and total:
            # A new segment created just before a crash: the last record is in the one before.
            if len(segs) < 2 or self._segments[-1][2] or not self._segments[-2][2]:
                raise LedgerCorruptError("last segment is empty but earlier segments hold records")
            with open(os.path.join(rdir, segs[-2][1]), "rb") as handle:
                data = handle.read()
            try:
                last_rec = parse_line(data[data.rfind(b"\n", 0, len(data) - 1) + 1:-1])
            except RecordError as exc:
                raise LedgerCorruptError("last record of %s is unreadable: %s" % (segs[-2][1], exc)) from exc
        if last_rec is not None:
            if last_rec["seq"] != total - 1:
                raise LedgerCorruptError("last record has seq %d, expected %d" % (last_rec["seq"], total - 1))
            self._last_hash = last_rec["hash"]
        self._open_index(total, last_rec, repair)

    def _open_tail(self, spath, name, repair):
        """(segment bytes kept, last record) from the last segment's tail only; None: read it all."""
        size = os.path.getsize(spath)
        if size <= TAIL_WINDOW:
            return None
        with open(spath, "rb") as handle:
            handle.seek(size - TAIL_WINDOW)
            data = handle.read(TAIL_WINDOW)
        cut = data.find(b"\n") + 1
        if not cut:
            return None  # one line longer than the window
        base = size - TAIL_WINDOW + cut
        try:
            kept, last_rec = self._check_tail(spath, name, data[cut:], repair, base=base)
        except LedgerCorruptError:
            return None  # let the full read tell
        if last_rec is None:
            return None  # (what was cut is reported) the rest is read in full
        return base + len(kept), last_rec

    @staticmethod
    def _closed_segment_starts(rdir, segs):
        """The first seq of every segment but the last (and of the last when it has records), from
        each one's first line; None when any looks wrong (then every segment is read and counted)."""
        firsts = []
        for pos, (ordinal, name) in enumerate(segs):
            try:
                with open(os.path.join(rdir, name), "rb") as handle:
                    line = handle.readline()
                if not line.endswith(b"\n"):
                    if pos < len(segs) - 1:
                        return None
                    break  # an empty or torn last segment: _open reads it
                first = json.loads(line)["seq"]
            except (OSError, ValueError, KeyError, TypeError):
                return None
            if not isinstance(first, int) or (pos == 0 and first != 0) or (firsts and first <= firsts[-1]):
                return None
            firsts.append(first)
        if len(segs) > 1 and len(firsts) < len(segs) - 1:
            return None
        if len(firsts) < len(segs):
            # The last segment is empty or torn at its first line: it starts where its records would.
            # Its predecessor is then read in full by _open's fallback for an empty last segment.
            return None
        return firsts

    def _check_tail(self, spath, name, data, repair, base=0):
        """Cut a torn tail off the last segment; return (kept bytes, last record or None).

        ``data`` is the segment from byte ``base`` on (whole lines): the whole segment, or its tail.
        """
        keep = len(data)
        problems = []
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            problems.append(("partial-line", "last line has no newline (%d bytes)" % (len(data) - keep)))
        last_rec = None
        while keep:
            start = data.rfind(b"\n", 0, keep - 1) + 1
            line = data[start:keep - 1]
            where = "line %d" % (data.count(b"\n", 0, start) + 1) if not base else "byte %d" % (base + start)
            try:
                rec = parse_line(line)
                if record_hash(rec) != rec["hash"]:
                    raise RecordError("hash does not match the record")
                last_rec = rec
                break
            except RecordError as exc:
                problems.append(("bad-last-line", "%s %s: %s" % (name, where, exc)))
                keep = start
                if sum(1 for p in problems if p[0] == "bad-last-line") > 1:
                    # More than one bad line is not a torn write: leave it to verify.
                    raise LedgerCorruptError("%s: several bad lines at the tail; not a torn tail" % name) from exc
        if keep != len(data):
            for kind, detail in problems:
                self.recovery.add(kind, detail, segment=name, offset=base + keep, bytes_cut=len(data) - keep)
            if not repair or self.readonly:
                if not repair:
                    raise TornTailError(self.recovery)
                return data[:keep], last_rec
            saved = self._save_cut(name, data[keep:])
            self.recovery.events[-1]["saved_to"] = saved
            self._truncate(spath, base + keep)
        return data[:keep], last_rec

    def _open_index(self, total, last_rec, repair):
        ipath = os.path.join(self.path, INDEX_FILE)
        length = os.path.getsize(ipath) if os.path.exists(ipath) else 0
        entries = length // HASH_SIZE
        fix = None
        if length % HASH_SIZE:
            self.recovery.add("partial-index-entry", "index has %d trailing bytes" % (length % HASH_SIZE))
            fix = True
        if entries > total:
            self.recovery.add("index-longer", "index has %d entries, segments hold %d records" % (entries, total))
            entries = total
            fix = True
        elif entries < total:
            self.recovery.add("index-shorter", "index has %d entries, segments hold %d records; completed from records"
                              % (entries, total))
            fix = True
        if entries and last_rec is not None and entries == total and _pread(ipath, (entries - 1) * HASH_SIZE) != leaf_of(last_rec["hash"]):
            raise LedgerCorruptError("last index entry does not match the last record; run verify")
        missing = b""
        if entries < total:
            missing = b"".join(leaf_of(rec["hash"]) for rec in self.records(entries, total))
        if fix and not repair:
            raise TornTailError(self.recovery)
        if fix and not self.readonly:
            fd = os.open(ipath, os.O_WRONLY | os.O_CREAT, FILE_MODE)
            try:
                os.ftruncate(fd, entries * HASH_SIZE)
                os.lseek(fd, 0, os.SEEK_END)
                _write_all(fd, missing)
                os.fsync(fd)
            finally:
                os.close(fd)
        if self.readonly:
            # Readers (verify, the command line) trust nothing but the index itself.
            self._tree = MerkleTree.from_leaf_hashes(_read_prefix(ipath, entries * HASH_SIZE) + missing)
            self._frontier = None
            self._last_leaf = self._tree.leaf_hash(total - 1) if total else None
            return
        self._frontier, self._last_leaf = self._load_frontier(ipath, total)

    def _load_frontier(self, ipath, total):
        """(Frontier, last leaf) of the index's first ``total`` entries, from the saved frontier when it fits."""
        last_leaf = _pread(ipath, (total - 1) * HASH_SIZE) if total else None
        frontier = None
        try:
            with open(os.path.join(self.path, FRONTIER_FILE), "rb") as handle:
                data = handle.read()
            saved, saved_last = Frontier.from_bytes(data[:-HASH_SIZE]), data[-HASH_SIZE:]
            if 0 < saved.size <= total and _pread(ipath, (saved.size - 1) * HASH_SIZE) == saved_last:
                frontier = saved
            elif saved.size == 0 and total == 0:
                frontier = saved
        except (OSError, MerkleError):
            frontier = None
        if frontier is None:
            frontier = Frontier()
            start = 0
        else:
            start = frontier.size
        with open(ipath, "rb") if os.path.exists(ipath) else _Empty() as handle:
            handle.seek(start * HASH_SIZE)
            left = (total - start) * HASH_SIZE
            while left > 0:
                chunk = handle.read(min(left, HASH_SIZE * 65536))
                if len(chunk) % HASH_SIZE or not chunk:
                    raise LedgerCorruptError("index shorter than its records while opening")
                frontier.extend_packed(chunk)
                left -= len(chunk)
        return frontier, last_leaf

    def _save_frontier(self, frontier_bytes, size):
        """Write the frontier file (a cache: no fsync; replaced atomically)."""
        if self.readonly or size == self._frontier_saved:
            return
        tmp = os.path.join(self.path, FRONTIER_FILE + ".tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
            try:
                _write_all(fd, frontier_bytes)
            finally:
                os.close(fd)
            os.replace(tmp, os.path.join(self.path, FRONTIER_FILE))
            self._frontier_saved = size
        except OSError:
            pass  # next open rebuilds it from the index

    def _drop_fds(self):
        for attr in ("_seg_fd", "_idx_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
                setattr(self, attr, None)
        self._broken = "descriptors dropped in a forked child"
        self._unsynced = False
        self._mutex = threading.Lock()

    def close(self):
        _OPEN_LEDGERS.discard(self)
        if self._unsynced and not self._broken:
            self.sync()
        for attr in ("_seg_fd", "_idx_fd", "_lock_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- writing -------------------------------------------------------

    def _open_segment_for_append(self, create):
        rdir = os.path.join(self.path, RECORDS_DIR)
        if create:
            ordinal = len(self._segments)
            fd = os.open(os.path.join(rdir, segment_name(ordinal)), os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND,
                         FILE_MODE)
            _fsync_dir(rdir)
            self._segments.append([ordinal, self.size, 0, 0])
        else:
            fd = os.open(os.path.join(rdir, segment_name(self._segments[-1][0])), os.O_WRONLY | os.O_APPEND)
        if self._seg_fd is not None:
            if self._unsynced:
                os.fsync(self._seg_fd)
            os.close(self._seg_fd)
        self._seg_fd = fd

    def append(self, fields_list, durable=True, lines_out=None):
        """Append a batch of records; return them.

        ``durable=True`` (group commit): fsynced before returning.
        ``durable=False``: written (safe from a crash of this process), made
        durable by a later ``sync()`` or ``close()``.
        ``lines_out``: a list that gets the records' stored lines (bytes, newline-terminated).
        """
        if self.readonly:
            raise LedgerError("ledger opened read-only")
        with self._mutex:
            if self._broken:
                raise LedgerError("ledger unusable after a failed write: %s; reopen it" % self._broken)
            records = []
            prev = self._last_hash
            seq = self.size
            for fields in fields_list:
                rec = make_record(fields, prev, seq)
                records.append(rec)
                prev = rec["hash"]
                seq += 1
            if not records:
                return records
            lines = [record_line(rec) + b"\n" for rec in records]
            leaves = [leaf_of(rec["hash"]) for rec in records]
            try:
                self._write_batch(lines, durable)
                self._write_index(b"".join(leaves), durable)
            except OSError as exc:
                self._broken = str(exc)
                raise
            for leaf in leaves:
                self._frontier.append(leaf)
                if self._tree is not None:
                    self._tree.append(leaf)
            self._last_leaf = leaves[-1]
            if lines_out is not None:
                lines_out.extend(lines)
            self._last_hash = prev
            if durable and not self._unsynced:
                self._synced_size = self.size
            else:
                self._unsynced = True
            return records

    def sync(self):
        """Make every record appended so far durable; return ``synced_size``."""
        with self._mutex:
            if not self._unsynced:
                return self._synced_size
            size = self.size
            fds = [os.dup(fd) for fd in (self._seg_fd, self._idx_fd) if fd is not None]
            frontier = self._frontier.to_bytes() + self._last_leaf if self._last_leaf and self._frontier is not None else None
            self._unsynced = False
        try:
            for fd in fds:
                os.fsync(fd)
        except OSError as exc:
            with self._mutex:
                self._unsynced = True
                self._broken = "fsync failed: %s" % exc
            raise
        finally:
            for fd in fds:
                os.close(fd)
        with self._mutex:
            self._synced_size = max(self._synced_size, size)
            if frontier is not None and size == self._synced_size:
                self._save_frontier(frontier, size)
            return self._synced_size

    @property
    def synced_size(self):
        """Records known to be on stable storage (fsynced)."""
        return self._synced_size

    @property
    def mutex(self):
        """The lock every append holds; hold it to see the ledger at a record boundary (snapshots)."""
        return self._mutex

    def _write_batch(self, lines, durable=True):
        pos = 0
        if self._seg_fd is None:
            self._open_segment_for_append(create=not self._segments)
        while pos < len(lines):
            seg = self._segments[-1]
            if seg[2] >= self.max_records or (seg[2] and seg[3] + len(lines[pos]) > self.max_bytes):
                self._open_segment_for_append(create=True)
                seg = self._segments[-1]
            room = self.max_records - seg[2]
            chunk = []
            size = seg[3]
            while pos < len(lines) and len(chunk) < room and (not chunk or size + len(lines[pos]) <= self.max_bytes):
                chunk.append(lines[pos])
                size += len(lines[pos])
                pos += 1
            data = b"".join(chunk)
            _write_all(self._seg_fd, data)
            if durable:
                os.fsync(self._seg_fd)
            seg[2] += len(chunk)
            seg[3] += len(data)

    def _write_index(self, data, durable=True):
        if self._idx_fd is None:
            ipath = os.path.join(self.path, INDEX_FILE)
            created = not os.path.exists(ipath)
            self._idx_fd = os.open(ipath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
            if created:
                _fsync_dir(self.path)
        _write_all(self._idx_fd, data)
        if durable:
            os.fsync(self._idx_fd)

    # -- reading -------------------------------------------------------

    @property
    def size(self):
        return sum(seg[2] for seg in self._segments)

    @property
    def last_hash(self):
        return self._last_hash

    @property
    def tree(self):
        """The full Merkle tree (built from the index on first use; then kept up to date)."""
        with self._mutex:
            if self._tree is None:
                size = self.size
                data = _read_prefix(os.path.join(self.path, INDEX_FILE), size * HASH_SIZE)
                if len(data) != size * HASH_SIZE:
                    raise LedgerCorruptError("index holds %d entries, the ledger %d records" % (len(data) // HASH_SIZE, size))
                self._tree = MerkleTree.from_leaf_hashes(data)
            return self._tree

    def segments(self):
        """[(segment name, first seq, record count)]."""
        return [(segment_name(o), first, count) for o, first, count, _size in self._segments]

    def records(self, start=0, stop=None):
        """Iterate the records with start <= seq < stop, in order."""
        stop = self.size if stop is None else stop
        rdir = os.path.join(self.path, RECORDS_DIR)
        for ordinal, first, count, _size in self._segments:
            if first + count <= start or first >= stop:
                continue
            with open(os.path.join(rdir, segment_name(ordinal)), "rb") as handle:
                for seq, line in enumerate(handle, first):
                    if seq >= stop:
                        break
                    if seq >= start:
                        yield parse_line(line[:-1])

    def get(self, seq):
        """The record with this seq (KeyError when absent)."""
        for rec in self.records(seq, seq + 1):
            return rec
        raise KeyError(seq)

    def root(self, size=None):
        if self._tree is None and self._frontier is not None and size in (None, self._frontier.size):
            with self._mutex:
                if size in (None, self._frontier.size):
                    return self._frontier.root()
        return self.tree.root(size)

    def leaf_hash(self, seq):
        if self._tree is None and 0 <= seq < self.size:
            return _pread(os.path.join(self.path, INDEX_FILE), seq * HASH_SIZE)
        return self.tree.leaf_hash(seq)

    def inclusion_proof(self, seq, size=None):
        return self.tree.inclusion_proof(seq, size)

    def consistency_proof(self, first, second=None):
        return self.tree.consistency_proof(first, second)
