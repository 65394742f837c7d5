# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Vectors made in a helper process, so numpy never enters the Ansible controller.

Importing numpy into ``ansible-playbook`` makes every later fork of an Ansible worker slower
(~0.3 ms each, measured), and importing it at the end of a run puts its import time on the play's
critical path. The callback therefore starts one helper process per run
(:class:`EmbedWorker`): the callback's background thread writes each group of records, as the
canonical lines the ledger stored, into the helper's stdin; the helper (``python -m`` this
module) embeds them into the ledger's vector cache as they come, and exits at end of input.
At the end of the run the callback closes the pipe and waits for the helper, so every record
has its vector when ``ansible-playbook`` returns.

The helper takes an exclusive ``flock`` on ``<vectors>/.lock`` before it opens the cache: the
cache has one writer at a time even when the helper of a killed run is still finishing while
the next run starts. If the controller dies, the helper reads end of input, embeds what it has
and exits. Vectors that never got made (a helper that failed) are made on demand by search and
export, which embed whatever the cache lacks.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fcntl
import json
import os
import subprocess
import sys

# As large as Linux allows an unprivileged pipe by default: the background thread should not
# wait on the helper while it starts (its numpy import takes ~0.1-0.3 s).
PIPE_SIZE = 1024 * 1024
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
LOCK_NAME = ".lock"
MODULE = "ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embedworker"


def _collections_root():
    """The directory holding ``ansible_collections`` that this file was imported from."""
    here = os.path.abspath(__file__)
    parts = here.split(os.sep)
    for index in range(len(parts) - 1, -1, -1):
        if parts[index] == "ansible_collections":
            return os.sep.join(parts[:index]) or os.sep
    raise RuntimeError("%s is not inside an ansible_collections tree" % here)


class EmbedWorker:
    """The helper process, seen from the callback."""

    def __init__(self, vectors_dir, embedder, python=None):
        env = dict(os.environ)
        root = _collections_root()
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        self.failed = None
        self.proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [python or sys.executable, "-m", MODULE, vectors_dir, embedder],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
            close_fds=True, start_new_session=True)
        try:
            fcntl.fcntl(self.proc.stdin.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
        except OSError:
            pass  # a smaller pipe only means the thread may wait a little

    def feed(self, lines):
        """Hand canonical record lines (bytes ending in a newline) to the helper."""
        if self.failed or not lines:
            return
        try:
            self.proc.stdin.write(b"".join(lines))
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError, ValueError) as exc:
            self.failed = "the embedding helper stopped reading (%s)" % exc

    def close(self, timeout=120.0):
        """End of input; wait for the helper. Returns None, or why vectors may be missing."""
        try:
            self.proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        try:
            self.proc.wait(timeout=timeout)  # the helper writes one line at most to stderr
        except subprocess.TimeoutExpired:
            return "the embedding helper (pid %d) still runs after %.0f s; it finishes on its own" % (self.proc.pid, timeout)
        with self.proc.stderr:
            stderr = self.proc.stderr.read()
        if self.proc.returncode != 0:
            detail = (stderr or b"").decode("utf-8", "replace").strip().splitlines()
            return "the embedding helper failed (exit %d): %s" % (self.proc.returncode, detail[-1] if detail else "no message")
        return self.failed


def _read_lines(fd, bufsize=1 << 20):
    """Yield lists of complete lines from fd as they arrive, until end of input."""
    rest = b""
    while True:
        chunk = os.read(fd, bufsize)
        if not chunk:
            if rest.strip():
                yield [rest]
            return
        data = rest + chunk
        cut = data.rfind(b"\n")
        if cut < 0:
            rest = data
            continue
        rest = data[cut + 1:]
        yield [line for line in data[:cut].split(b"\n") if line]


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        sys.stderr.write("usage: python -m %s VECTORS_DIR EMBEDDER\n" % MODULE)
        return 2
    vectors_dir, embedder_name = argv
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import (  # pylint: disable=import-outside-toplevel
        VectorCache, load_embedder)
    try:
        os.makedirs(vectors_dir, mode=0o700, exist_ok=True)
        lock_fd = os.open(os.path.join(vectors_dir, LOCK_NAME), os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        cache = VectorCache(vectors_dir, load_embedder(embedder_name))
        stdin = sys.stdin.buffer.fileno()
        for lines in _read_lines(stdin):
            records = [json.loads(line) for line in lines]
            cache.get_records(records)
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write("%s: %s\n" % (type(exc).__name__, exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
