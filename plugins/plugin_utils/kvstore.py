# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A key-value store of JSON documents: one file per key, an SQLite index, btrfs compression.

Controller-side and standard library only (``sqlite3``, ``json``), shared by the fact cache
plugin ``opdbus.infra.btrfs`` and meant for other caches (the ledger's embeddings could use it).

- Values are JSON files in one directory, written atomically: a temporary file in the same
  directory, flushed, then ``rename(2)`` over the old one; a reader sees the old or the new
  document, never a part.
- ``index.sqlite3`` beside them holds ``(key, file, time, ttl)``: when each key was written and
  for how long the writer said it is valid. A reader takes an entry while it is younger than
  both that TTL and its own (0 means no limit), so a shorter ``_timeout`` applies to old entries
  too. SQLite runs in WAL mode with a busy timeout, so several processes
  (Ansible's forks, several ansible-playbook runs) read and write at once; each process opens
  its own connection (again after a fork).
- When the directory is on btrfs, its ``btrfs.compression`` property is set to ``zstd`` (through
  module_utils/btrfs.py, an xattr) so that the kernel compresses every file created in it; on
  other filesystems the store works the same, uncompressed.
- A value read is kept in memory with the index time it was written at; a later ``get`` of the
  key returns it without reading the file as long as the index still has that time (one indexed
  SQLite lookup), so another process's write is always seen.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import sqlite3
import tempfile
import threading
import time
from urllib.parse import quote, unquote

from ansible_collections.opdbus.infra.plugins.module_utils import btrfs

INDEX = "index.sqlite3"
SUFFIX = ".json"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, file TEXT NOT NULL, "
           "time REAL NOT NULL, ttl REAL NOT NULL)")


class StoreError(Exception):
    """The store cannot be used (directory, index); the message says why."""


def enable_compression(directory, algorithm="zstd"):
    """Set the btrfs compression property of ``directory``; returns the value now set, or None off btrfs."""
    try:
        if not btrfs.is_btrfs(directory):
            return None
        current = btrfs.get_compression(directory)
        if current.split(":", 1)[0] != algorithm:
            btrfs.set_compression(directory, algorithm)
            current = btrfs.get_compression(directory)
        return current
    except btrfs.BtrfsError:
        return None


class KVStore:
    """JSON documents by key in ``directory``; ``ttl`` seconds of validity (0: forever)."""

    def __init__(self, directory, prefix="", ttl=86400, compression="zstd", encoder=None, decoder=None):
        if not directory:
            raise StoreError("no directory given for the store")
        self.directory = os.path.abspath(os.path.expanduser(directory))
        self.prefix = prefix or ""
        self.ttl = float(ttl or 0)
        self.encoder = encoder
        self.decoder = decoder
        try:
            os.makedirs(self.directory, 0o700, exist_ok=True)
        except OSError as exc:
            raise StoreError("cannot create the store directory %s: %s" % (self.directory, exc.strerror)) from exc
        if not os.access(self.directory, os.R_OK | os.W_OK | os.X_OK):
            raise StoreError("the store directory %s is not readable and writable" % self.directory)
        self.compression = enable_compression(self.directory, compression) if compression else None
        self.index_path = os.path.join(self.directory, INDEX)
        self._local = threading.local()
        self._memo = {}
        self._db()  # create the index now: errors show at start, not at the first write

    # -- index ----------------------------------------------------------------------------------

    def _db(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            return conn
        try:
            conn = sqlite3.connect(self.index_path, timeout=60, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 60000")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode.lower() != "wal":
                raise StoreError("the index %s cannot use WAL mode (got %s)" % (self.index_path, mode))
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError("cannot open the index %s: %s" % (self.index_path, exc)) from exc
        self._local.conn = conn
        self._local.pid = os.getpid()
        return conn

    def _row(self, key):
        return self._db().execute("SELECT file, time, ttl FROM entries WHERE key = ?", (key,)).fetchone()

    def _alive(self, row, now=None):
        """Valid within the TTL the row was written with AND this store's TTL (0: no limit from that side)."""
        if row is None:
            return False
        age = (now if now is not None else time.time()) - row[1]
        return all(limit <= 0 or age <= limit for limit in (row[2], self.ttl))

    # -- files ----------------------------------------------------------------------------------

    def file_name(self, key):
        """The file a key is kept in: prefix + the key, percent-encoded (no "/" or leading dot)."""
        name = self.prefix + quote(key, safe="@+,=-_")
        if name.startswith("."):
            name = "%2E" + name[1:]
        return name + SUFFIX

    def _load(self, name):
        with open(os.path.join(self.directory, name), "rb") as handle:
            return json.loads(handle.read(), cls=self.decoder)

    def _dump(self, value):
        data = json.dumps(value, cls=self.encoder, separators=(",", ":")).encode("utf-8")
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=self.directory)  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except BaseException:
            os.unlink(tmp)
            raise
        return tmp

    # -- the store ------------------------------------------------------------------------------

    def get(self, key):
        """The value of ``key``; KeyError when missing or expired."""
        row = self._row(key)
        if not self._alive(row):
            self._memo.pop(key, None)
            raise KeyError(key)
        memo = self._memo.get(key)
        if memo is not None and memo[0] == row[1]:
            return memo[1]
        try:
            value = self._load(row[0])
        except FileNotFoundError:
            raise KeyError(key) from None
        self._memo[key] = (row[1], value)
        return value

    def set(self, key, value, ttl=None):
        """Write ``value`` (JSON) under ``key``: the file atomically, then its index row."""
        name = self.file_name(key)
        tmp = self._dump(value)
        now = time.time()
        try:
            os.rename(tmp, os.path.join(self.directory, name))
        except OSError:
            os.unlink(tmp)
            raise
        self._db().execute("INSERT INTO entries (key, file, time, ttl) VALUES (?, ?, ?, ?) "
                           "ON CONFLICT(key) DO UPDATE SET file = excluded.file, time = excluded.time, ttl = excluded.ttl",
                           (key, name, now, self.ttl if ttl is None else float(ttl)))
        self._memo[key] = (now, value)

    def contains(self, key):
        return self._alive(self._row(key))

    def keys(self):
        now = time.time()
        rows = self._db().execute("SELECT key, file, time, ttl FROM entries ORDER BY key").fetchall()
        return [row[0] for row in rows if self._alive(row[1:], now)]

    def delete(self, key):
        row = self._row(key)
        self._memo.pop(key, None)
        self._db().execute("DELETE FROM entries WHERE key = ?", (key,))
        if row is not None:
            try:
                os.unlink(os.path.join(self.directory, row[0]))
            except OSError as exc:
                if exc.errno != errno.ENOENT:
                    raise

    def flush(self):
        for key in [row[0] for row in self._db().execute("SELECT key FROM entries").fetchall()]:
            self.delete(key)

    def expire(self):
        """Delete the expired entries (rows and files); returns their keys."""
        now = time.time()
        gone = [row[0] for row in self._db().execute("SELECT key, file, time, ttl FROM entries").fetchall()
                if not self._alive(row[1:], now)]
        for key in gone:
            self.delete(key)
        return gone

    def entries(self):
        """[(key, file, time, ttl)] of every row, for inspection."""
        return self._db().execute("SELECT key, file, time, ttl FROM entries ORDER BY key").fetchall()

    def close(self):
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    @staticmethod
    def key_of(file_name, prefix=""):
        """The key a file name stands for (the inverse of file_name)."""
        if not file_name.endswith(SUFFIX) or not file_name.startswith(prefix):
            return None
        return unquote(file_name[len(prefix):-len(SUFFIX)])
