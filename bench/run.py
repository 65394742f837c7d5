# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 1: opdbus.infra.ovs_bridge against openvswitch.openvswitch.

Same ovsdb-server, same work: a bridge on the userspace (netdev) datapath with N internal
ports (default 50), built from nothing (first run), then the same playbook again (re-run,
which must change nothing).

  (a) ONE opdbus.infra.ovs_bridge task listing all N ports;
  (b) the peer: openvswitch.openvswitch.openvswitch_bridge plus N openvswitch_port tasks;
  (c) N opdbus.infra.ovs_bridge tasks, one port each (ports_exclusive: false).
  (floor) N ansible.builtin.ping tasks: what Ansible costs per task before a module does work.

Every playbook runs as ``ansible-playbook -i localhost, -c local`` with the repository's
ansible.cfg. The first run starts with the bridge absent (removed with ovs-vsctl); the
re-run must report changed=0 and the first run a change in every task, otherwise the
benchmark fails. After every run ``ovs-vsctl`` (the oracle) checks the end state: the
bridge on the netdev datapath with exactly the N ports, each an internal interface with
an OpenFlow port number and no error.

Rounds are interleaved (a, b, c, floor; the order rotates every round) so that a change of
load on the machine affects all variants alike; the first round is a warm-up and is not
counted. The medians, minima and maxima go to stdout and to docs/performance.md, between
the markers of this benchmark (other sections of the file are kept).

Needs: OPDBUS_OVSDB (the lab's ovsdb-server, e.g. unix:/path/db.sock) with ovs-vswitchd
running; ovs-vsctl on PATH; ansible-playbook next to this Python. ``make bench`` provides
all three. The peer collection is taken from the ``ansible==10.7.0`` wheel (the last
``ansible`` release for this Python that bundles it) and cached in .bench/collections.

``make bench`` runs this file: this benchmark, then benchmark 2 (``bench/openflow.py``,
openflow_flow against ovs-ofctl), then benchmark 3 (``bench/ledger.py``, the audit ledger
callback against ARA, and the ledger's appends, verify, search and embedding), then benchmark 4
(``bench/containers.py``, lxc_container's liblxc backend against lxc-create and lxc-ls), then
benchmarks 5 to 7 (``bench/btrfs_cache.py``, ``bench/packagekit.py`` and ``bench/privacy.py``, the
privacy chain's converge time and its throughput against the direct path); ``--only NAME``
(ovs_bridge, openflow_flow, ledger, lxc, btrfs_cache, packagekit, privacy) runs one of them (see run_all).

Standard library only.
"""

from __future__ import absolute_import, division, print_function

import argparse
import configparser
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
WORK = os.path.join(REPO, ".bench")
PEER_ROOT = os.path.join(WORK, "collections")
PEER_PREFIX = "ansible_collections/openvswitch/openvswitch/"
PEER_WHEEL = "ansible==10.7.0"
PEER_VERSION = "2.1.1"
ANSIBLE_CFG = os.path.join(REPO, "ansible.cfg")
CALLBACK_DIR = os.path.join(BENCH, "callback_plugins")
CALLBACK = "opdbus_bench"
DOC = os.path.join(REPO, "docs", "performance.md")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "ovs_bridge"
START_MARK, END_MARK = docsection.markers(SECTION)

BRIDGE = "bench-br"
PORT_PREFIX = "bench-p"


class BenchError(Exception):
    """The benchmark cannot go on; the message says why."""


def say(msg=""):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------------
# ovs-vsctl: setup, cleanup and the oracle
# --------------------------------------------------------------------------------------------

class Vsctl(object):
    def __init__(self, db):
        self.db = db
        self.exe = shutil.which("ovs-vsctl")
        if self.exe is None:
            raise BenchError("ovs-vsctl not found on PATH (it is the oracle and the peer's backend)")

    def __call__(self, *args, check=True, timeout=30):
        cmd = [self.exe, "--db=" + self.db, "--timeout=%d" % timeout] + list(args)
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                           check=False)
        if check and p.returncode != 0:
            raise BenchError("%s failed (exit %d): %s" % (" ".join(cmd), p.returncode, p.stderr.strip()))
        return p

    def out(self, *args):
        return self(*args).stdout.strip()

    def table(self, table, columns, *records):
        """Rows of a table as dicts (ovs-vsctl --format=json)."""
        data = json.loads(self.out("--format=json", "--columns=" + ",".join(columns), "list", table, *records))
        return [dict(zip(data["headings"], row)) for row in data["data"]]

    def bridge_exists(self):
        p = self("br-exists", BRIDGE, check=False)
        if p.returncode not in (0, 2):
            raise BenchError("ovs-vsctl br-exists %s failed: %s" % (BRIDGE, p.stderr.strip()))
        return p.returncode == 0

    def remove_bridge(self):
        # Waits for ovs-vswitchd to apply it, so the internal ports' devices are gone too.
        self("--if-exists", "del-br", BRIDGE)
        if self.bridge_exists():
            raise BenchError("bridge %s is still there after del-br" % BRIDGE)


def _atom(value):
    """An ovs-vsctl JSON atom: a set of 0 or 1 elements becomes None or the element."""
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        return value[1][0] if value[1] else None
    return value


def check_end_state(vsctl, ports, label):
    """The oracle: the bridge is on netdev with exactly ``ports``, all internal and working."""
    problems = []
    if not vsctl.bridge_exists():
        raise BenchError("%s: bridge %s does not exist after the run" % (label, BRIDGE))
    dp = vsctl.out("get", "Bridge", BRIDGE, "datapath_type").strip('"')
    if dp != "netdev":
        problems.append("datapath_type is %r, not 'netdev'" % dp)
    listed = set(vsctl.out("list-ports", BRIDGE).split())
    if listed != set(ports):
        missing, extra = sorted(set(ports) - listed), sorted(listed - set(ports))
        problems.append("ports differ: missing %s, unexpected %s" % (missing, extra))
    ifaces = dict((r["name"], r) for r in vsctl.table("Interface", ["name", "type", "ofport", "error"]))
    for name in [BRIDGE] + sorted(ports):
        row = ifaces.get(name)
        if row is None:
            problems.append("no Interface row %s" % name)
            continue
        ofport, error = _atom(row["ofport"]), _atom(row["error"])
        if row["type"] != "internal":
            problems.append("interface %s has type %r, not 'internal'" % (name, row["type"]))
        if not isinstance(ofport, int) or ofport <= 0:
            problems.append("interface %s has no OpenFlow port (ofport %r)" % (name, ofport))
        if error:
            problems.append("interface %s: ovs-vswitchd reports %r" % (name, error))
    if problems:
        raise BenchError("%s: wrong end state (ovs-vsctl):\n  " % label + "\n  ".join(problems[:20]))


def preflight(vsctl, ports):
    """The server answers, ovs-vswitchd runs with netdev, and no port name is taken elsewhere."""
    p = vsctl("show", check=False, timeout=10)
    if p.returncode != 0:
        raise BenchError("no OVSDB server answers at %s: %s" % (vsctl.db, p.stderr.strip()))
    ovs = vsctl.table("Open_vSwitch", ["ovs_version", "datapath_types"])[0]
    # ovs-vswitchd fills datapath_types when it connects.
    dps = ovs["datapath_types"]
    dps = dps[1] if isinstance(dps, list) and dps and dps[0] == "set" else [dps]
    if "netdev" not in dps:
        raise BenchError("ovs-vswitchd behind %s does not offer the netdev datapath (datapath_types %s); "
                         "is it running?" % (vsctl.db, dps))
    if vsctl.bridge_exists():
        say("bridge %s is left over from an earlier benchmark: removing it" % BRIDGE)
        vsctl.remove_bridge()
    taken = set(r["name"] for r in vsctl.table("Port", ["name"])) & set(ports)
    if taken:
        raise BenchError("port names %s already exist on another bridge of %s" % (sorted(taken), vsctl.db))
    return _atom(ovs["ovs_version"]) or vswitchd_version()


def vswitchd_version():
    """The running ovs-vswitchd's version (ovs-appctl), else the installed binary's."""
    rundir = os.environ.get("OVS_RUNDIR")
    targets = []
    if rundir and os.path.exists(os.path.join(rundir, "ovs-vswitchd.ctl")):
        targets.append(os.path.join(rundir, "ovs-vswitchd.ctl"))
    targets.append("ovs-vswitchd")
    appctl = shutil.which("ovs-appctl")
    for target in targets if appctl else []:
        p = subprocess.run([appctl, "--timeout=5", "-t", target, "version"], check=False, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, universal_newlines=True)
        if p.returncode == 0 and p.stdout.strip():
            return p.stdout.splitlines()[0].split()[-1]
    exe = shutil.which("ovs-vswitchd")
    if exe:
        out = subprocess.run([exe, "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                             check=False).stdout
        return out.splitlines()[0].split()[-1] + " (installed binary)"
    return "unknown"


# --------------------------------------------------------------------------------------------
# The peer collection
# --------------------------------------------------------------------------------------------

def peer_manifest():
    path = os.path.join(PEER_ROOT, PEER_PREFIX, "MANIFEST.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)["collection_info"]


def ensure_peer():
    """openvswitch.openvswitch out of the ansible==10.7.0 wheel, cached in .bench/collections."""
    info = peer_manifest()
    if info is not None:
        return info["version"]
    os.makedirs(WORK, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="peer-", dir=WORK)
    try:
        say("fetching the peer collection: pip download --no-deps %s" % PEER_WHEEL)
        pips = [[sys.executable, "-m", "pip"]] + [[p] for p in (shutil.which("pip3"), shutil.which("pip")) if p]
        for pip in pips:
            p = subprocess.run(pip + ["download", "--no-deps", "--only-binary=:all:", "--disable-pip-version-check",
                                      "-q", PEER_WHEEL, "-d", tmp], check=False,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
            if p.returncode == 0:
                break
        else:
            raise BenchError("pip download %s failed:\n%s" % (PEER_WHEEL, p.stdout[-2000:]))
        wheels = [f for f in os.listdir(tmp) if f.endswith(".whl")]
        if len(wheels) != 1:
            raise BenchError("pip download left %s in %s, expected one wheel" % (wheels, tmp))
        extract = os.path.join(tmp, "x")
        with zipfile.ZipFile(os.path.join(tmp, wheels[0])) as wheel:
            members = [n for n in wheel.namelist() if n.startswith(PEER_PREFIX)]
            if not members or any(".." in n.split("/") or n.startswith("/") for n in members):
                raise BenchError("%s does not contain a usable %s" % (wheels[0], PEER_PREFIX))
            wheel.extractall(extract, members)
        # Move into place only when complete, so a half-extracted cache never counts as present.
        dest = os.path.join(PEER_ROOT, "ansible_collections", "openvswitch")
        if os.path.exists(dest):
            shutil.rmtree(dest)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        os.rename(os.path.join(extract, "ansible_collections", "openvswitch"), dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    info = peer_manifest()
    if info is None or info["version"] != PEER_VERSION:
        raise BenchError("the peer collection in %s is %s, expected %s"
                         % (PEER_ROOT, info and info["version"], PEER_VERSION))
    return info["version"]


# --------------------------------------------------------------------------------------------
# Playbooks
# --------------------------------------------------------------------------------------------

def _scalar(value):
    if isinstance(value, dict):
        return "{}"
    if isinstance(value, list):
        return "[]"
    return json.dumps(value)  # a JSON string/number/bool/null is a valid YAML scalar


def yaml_lines(value, indent=0):
    """A small block-style YAML emitter for dicts, lists and scalars."""
    pad = " " * indent
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            if isinstance(item, (dict, list)) and item:
                out.append("%s%s:" % (pad, key))
                out += yaml_lines(item, indent + 2)
            else:
                out.append("%s%s: %s" % (pad, key, _scalar(item)))
    else:
        for item in value:
            if isinstance(item, dict) and item:
                sub = yaml_lines(item, indent + 2)
                out.append(pad + "- " + sub[0][indent + 2:])
                out += sub[1:]
            else:
                out.append("%s- %s" % (pad, _scalar(item)))
    return out


def tasks_one(db, ports):
    return [{"name": "bridge %s with %d internal ports, one task" % (BRIDGE, len(ports)),
             "opdbus.infra.ovs_bridge": {"name": BRIDGE, "datapath_type": "netdev", "ovsdb": db,
                                         "ports": [{"name": p, "type": "internal"} for p in ports]}}]


def tasks_peer(db, ports):
    tasks = [{"name": "bridge %s" % BRIDGE,
              "openvswitch.openvswitch.openvswitch_bridge": {
                  "bridge": BRIDGE, "set": "bridge %s datapath_type=netdev" % BRIDGE, "database_socket": db}}]
    for p in ports:
        tasks.append({"name": "port %s" % p,
                      "openvswitch.openvswitch.openvswitch_port": {
                          "bridge": BRIDGE, "port": p, "set": ["Interface %s type=internal" % p],
                          "database_socket": db}})
    return tasks


def tasks_per_port(db, ports):
    return [{"name": "port %s" % p,
             "opdbus.infra.ovs_bridge": {"name": BRIDGE, "datapath_type": "netdev", "ovsdb": db,
                                         "ports": [{"name": p, "type": "internal"}], "ports_exclusive": False}}
            for p in ports]


def tasks_floor(db, ports):
    # As many tasks as the longest variant (the peer's bridge task + one per port).
    return [{"name": "ping %d" % i, "ansible.builtin.ping": {}} for i in range(len(ports) + 1)]


class Variant(object):
    def __init__(self, key, label, make_tasks, changes_state=True):
        self.key, self.label, self.make_tasks, self.changes_state = key, label, make_tasks, changes_state
        self.playbook = None
        self.n_tasks = 0


VARIANTS = [
    Variant("a", "(a) `opdbus.infra.ovs_bridge`, one task with all ports", tasks_one),
    Variant("b", "(b) peer: `openvswitch_bridge` + one `openvswitch_port` task per port", tasks_peer),
    Variant("c", "(c) `opdbus.infra.ovs_bridge`, one task per port", tasks_per_port),
]
FLOOR = Variant("floor", "floor: `ansible.builtin.ping` tasks", tasks_floor, changes_state=False)


def write_playbook(variant, db, ports):
    tasks = variant.make_tasks(db, ports)
    play = [{"name": "benchmark %s: %s" % (SECTION, variant.key), "hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "tasks": tasks}]
    os.makedirs(os.path.join(WORK, "playbooks"), exist_ok=True)
    path = os.path.join(WORK, "playbooks", "%s-%s.yml" % (SECTION, variant.key))
    with open(path, "w") as f:
        f.write("# Generated by bench/run.py; overwritten on every run.\n")
        f.write("\n".join(yaml_lines(play)) + "\n")
    variant.playbook, variant.n_tasks = path, len(tasks)


# --------------------------------------------------------------------------------------------
# Running ansible-playbook
# --------------------------------------------------------------------------------------------

def collections_path():
    paths = [os.path.join(REPO, ".collections"), PEER_ROOT]
    extra = os.environ.get("ANSIBLE_COLLECTIONS_PATH") or os.environ.get("ANSIBLE_COLLECTIONS_PATHS")
    if extra:
        paths += [p for p in extra.split(os.pathsep) if p and p not in paths]
    # opdbus.infra must resolve to this checkout.
    for p in paths:
        link = os.path.join(p, "ansible_collections", "opdbus", "infra")
        if os.path.exists(link):
            if os.path.realpath(link) != os.path.realpath(REPO):
                raise BenchError("opdbus.infra in %s is %s, not this checkout %s"
                                 % (p, os.path.realpath(link), REPO))
            return paths
    raise BenchError("opdbus.infra is not installed in %s (make links .collections/ansible_collections/"
                     "opdbus/infra to the checkout)" % os.pathsep.join(paths))


def callback_plugins_path():
    """bench/callback_plugins first, then whatever the repository's ansible.cfg names."""
    paths = [CALLBACK_DIR]
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ANSIBLE_CFG)
    configured = os.environ.get("ANSIBLE_CALLBACK_PLUGINS") or cfg.get("defaults", "callback_plugins", fallback="")
    for p in configured.split(os.pathsep):
        if p.strip():
            paths.append(os.path.join(os.path.dirname(ANSIBLE_CFG), os.path.expanduser(p.strip())))
    return os.pathsep.join(paths)


class Runner(object):
    def __init__(self, coll_path):
        self.exe = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
        if not os.access(self.exe, os.X_OK):
            raise BenchError("%s not found: run this with the Python of the venv that has ansible-core" % self.exe)
        self.env = dict(os.environ)
        self.env.update({
            "ANSIBLE_CONFIG": ANSIBLE_CFG,
            "ANSIBLE_COLLECTIONS_PATH": os.pathsep.join(coll_path),
            "ANSIBLE_STDOUT_CALLBACK": CALLBACK,
            "ANSIBLE_CALLBACK_PLUGINS": callback_plugins_path(),
            "ANSIBLE_NOCOLOR": "1",
        })
        self.env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
        self.timing = os.path.join(WORK, "timing.json")
        self.last_output = os.path.join(WORK, "last-run.log")

    def run(self, variant, label):
        """Run a playbook; return its wall time, recap and task durations."""
        if os.path.exists(self.timing):
            os.unlink(self.timing)
        env = dict(self.env, OPDBUS_BENCH_TIMING=self.timing)
        cmd = [self.exe, "-i", "localhost,", "-c", "local", variant.playbook]
        t0 = time.monotonic()
        p = subprocess.run(cmd, env=env, cwd=REPO, check=False, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           universal_newlines=True)
        wall = time.monotonic() - t0
        with open(self.last_output, "w") as f:
            f.write(p.stdout)
        if p.returncode != 0:
            raise BenchError("%s: ansible-playbook failed (exit %d): %s\n--- last lines of its output ---\n%s"
                             % (label, p.returncode, " ".join(cmd), tail(p.stdout)))
        try:
            with open(self.timing) as f:
                timing = json.load(f)
        except (OSError, ValueError) as exc:
            raise BenchError("%s: the timing callback wrote no result (%s)\n%s" % (label, exc, tail(p.stdout)))
        stats = timing["stats"].get("localhost")
        if stats is None:
            raise BenchError("%s: no recap for localhost\n%s" % (label, tail(p.stdout)))
        if stats["failures"] or stats["unreachable"] or len(timing["tasks"]) != variant.n_tasks:
            raise BenchError("%s: %d tasks ran of %d, recap %s\n%s"
                             % (label, len(timing["tasks"]), variant.n_tasks, stats, tail(p.stdout)))
        return {"wall": wall, "playbook": timing["playbook_seconds"], "stats": stats,
                "task_seconds": [t["seconds"] for t in timing["tasks"]],
                "changed_tasks": [t["name"] for t in timing["tasks"] if t["changed"]],
                "unchanged_tasks": [t["name"] for t in timing["tasks"] if not t["changed"]]}


def tail(text, lines=40):
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --------------------------------------------------------------------------------------------
# Machine
# --------------------------------------------------------------------------------------------

def _read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def machine_info(vsctl, ovs_version, peer_version):
    cpu = None
    for line in _read("/proc/cpuinfo").splitlines():
        key, value = (line.split(":", 1) + [""])[:2]
        if key.strip() in ("model name", "Model", "Hardware", "cpu model"):
            cpu = value.strip()
            break
    mem = None
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            mem = "%.1f GiB" % (int(line.split()[1]) / 1048576.0)
    osname = None
    for line in _read("/etc/os-release").splitlines():
        if line.startswith("PRETTY_NAME="):
            osname = line.split("=", 1)[1].strip('"')
    try:
        from ansible.release import __version__ as ansible_version  # pylint: disable=import-outside-toplevel
    except ImportError:
        out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "--version"],
                             check=False,
                             stdout=subprocess.PIPE, universal_newlines=True).stdout
        ansible_version = out.split("[core ")[-1].split("]")[0] if "[core " in out else out.split("\n")[0]
    vsctl_version = subprocess.run([vsctl.exe, "--version"], check=False, stdout=subprocess.PIPE,
                                   universal_newlines=True).stdout.splitlines()[0].split()[-1]
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu": cpu or platform.processor() or "unknown",
        "memory": mem or "unknown",
        "kernel": "%s %s" % (platform.system(), platform.release()),
        "os": osname or "unknown",
        "ovs": ovs_version,
        "ovs_vsctl": vsctl_version,
        "ansible_core": ansible_version,
        "python": "%s (%s)" % (platform.python_version(), display_path(sys.executable)),
        "peer": peer_version,
        "load_start": "%.2f %.2f %.2f" % os.getloadavg(),
    }


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------

def measure_variant(runner, vsctl, variant, ports, label):
    """Bridge absent -> first run -> oracle -> re-run -> oracle. Returns (first, rerun)."""
    vsctl.remove_bridge()
    first = runner.run(variant, label + " first run")
    check_end_state(vsctl, ports, label + " first run")
    if first["stats"]["changed"] == 0:
        raise BenchError("%s first run: the bridge was absent but the run reported no change" % label)
    if first["unchanged_tasks"]:
        raise BenchError("%s first run: every task adds something, but these reported no change: %s"
                         % (label, ", ".join(first["unchanged_tasks"][:10])))
    rerun = runner.run(variant, label + " re-run")
    check_end_state(vsctl, ports, label + " re-run")
    if rerun["stats"]["changed"] != 0:
        raise BenchError("%s re-run is not idempotent: changed=%d (%s)"
                         % (label, rerun["stats"]["changed"], ", ".join(rerun["changed_tasks"][:10])))
    return first, rerun


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def run_benchmark(args, runner, vsctl, variants, ports):
    results = dict((v.key, {"first": [], "rerun": []}) for v in variants)
    floor = []
    total_rounds = args.warmup + args.runs
    t_start = time.monotonic()
    for rnd in range(total_rounds):
        counted = rnd >= args.warmup
        name = ("round %d/%d" % (rnd - args.warmup + 1, args.runs)) if counted else "warm-up"
        order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
        t_round = time.monotonic()
        for v in order:
            first, rerun = measure_variant(runner, vsctl, v, ports, "[%s] (%s)" % (name, v.key))
            say("  %-12s (%s) first run %6.2f s (changed=%d)   re-run %6.2f s (changed=0)"
                % (name, v.key, first["wall"], first["stats"]["changed"], rerun["wall"]))
            if counted:
                results[v.key]["first"].append(first)
                results[v.key]["rerun"].append(rerun)
        vsctl.remove_bridge()
        if not args.no_floor:
            fl = runner.run(FLOOR, "[%s] (floor)" % name)
            say("  %-12s (floor) %d ping tasks %6.2f s" % (name, FLOOR.n_tasks, fl["wall"]))
            if counted:
                floor.append(fl)
        if rnd == 0:
            per_round = time.monotonic() - t_round
            say("  one round takes %.0f s: about %.0f s to go" % (per_round, per_round * (total_rounds - 1)))
    return results, floor, time.monotonic() - t_start


def floor_seconds(floor, n_tasks):
    """Median time of the floor's first ``n_tasks`` ping tasks (the first task of a playbook costs
    more than the others: Ansible builds the module's payload once per run), or None."""
    if not floor:
        return None
    return statistics.median(sum(r["task_seconds"][:n_tasks]) for r in floor)


def analyse(variants, results, floor):
    out = {}
    if floor:
        out["floor"] = {"wall": summary([r["wall"] for r in floor]), "n_tasks": FLOOR.n_tasks,
                        "per_task": statistics.median(statistics.median(r["task_seconds"][1:] or r["task_seconds"])
                                                      for r in floor)}
    for v in variants:
        fl = floor_seconds(floor, v.n_tasks)
        entry = {"label": v.label, "n_tasks": v.n_tasks, "floor": fl}
        for phase in ("first", "rerun"):
            runs = results[v.key][phase]
            in_tasks = statistics.median(sum(r["task_seconds"]) for r in runs)
            entry[phase] = {
                "wall": summary([r["wall"] for r in runs]),
                "in_tasks": in_tasks,
                "startup": statistics.median(r["wall"] - sum(r["task_seconds"]) for r in runs),
                "above_floor": None if fl is None else in_tasks - fl,
            }
        out[v.key] = entry
    ratios = {}
    if "b" in out:
        for other in ("a", "c"):
            if other in out:
                ratios["b/" + other] = dict(
                    (phase, out["b"][phase]["wall"]["median"] / out[other][phase]["wall"]["median"])
                    for phase in ("first", "rerun"))
    out["ratios"] = ratios
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def fmt_s(value):
    return "%.2f s" % value


def fmt_ms(value):
    return "%.0f ms" % (value * 1000.0)


def wall_table(variants, res):
    lines = ["| variant | tasks | first run: median | min | max | re-run: median | min | max |",
             "|---|--:|--:|--:|--:|--:|--:|--:|"]
    for v in variants:
        e = res[v.key]
        f, r = e["first"]["wall"], e["rerun"]["wall"]
        lines.append("| %s | %d | **%s** | %s | %s | **%s** | %s | %s |"
                     % (e["label"], e["n_tasks"], fmt_s(f["median"]), fmt_s(f["min"]), fmt_s(f["max"]),
                        fmt_s(r["median"]), fmt_s(r["min"]), fmt_s(r["max"])))
    if "floor" in res:
        fl = res["floor"]["wall"]
        lines.append("| %s | %d | %s | %s | %s | | | |"
                     % (FLOOR.label, res["floor"]["n_tasks"], fmt_s(fl["median"]), fmt_s(fl["min"]),
                        fmt_s(fl["max"])))
    return lines


def ratio_table(res):
    names = {"b/a": "peer (b) / (a): the same bridge, one task", "b/c": "peer (b) / (c): task for task"}
    lines = ["| ratio of medians | first run | re-run |", "|---|--:|--:|"]
    for key in ("b/a", "b/c"):
        if key in res["ratios"]:
            r = res["ratios"][key]
            lines.append("| %s | **%.1f×** | **%.1f×** |" % (names[key], r["first"], r["rerun"]))
    return lines


def task_table(variants, res):
    has_floor = "floor" in res
    head = "| variant | tasks | first run: in tasks |"
    sep = "|---|--:|--:|"
    if has_floor:
        head += " above the floor | per task |"
        sep += "--:|--:|"
    head += " re-run: in tasks |"
    sep += "--:|"
    if has_floor:
        head += " above the floor | per task |"
        sep += "--:|--:|"
    head += " floor: as many `ping` tasks |" if has_floor else ""
    sep += "--:|" if has_floor else ""
    lines = [head, sep]
    for v in variants:
        e = res[v.key]
        row = "| (%s) | %d |" % (v.key, e["n_tasks"])
        for phase in ("first", "rerun"):
            p = e[phase]
            row += " %s |" % fmt_s(p["in_tasks"])
            if has_floor:
                row += " %s | %s |" % (fmt_s(p["above_floor"]), fmt_ms(p["above_floor"] / e["n_tasks"]))
        if has_floor:
            row += " %s |" % fmt_s(e["floor"])
        lines.append(row)
    lines.append("")
    lines.append("Outside the tasks (`ansible-playbook` start-up, parsing, recap), median of the first runs: %s."
                 % ", ".join("(%s) %s" % (v.key, fmt_s(res[v.key]["first"]["startup"])) for v in variants))
    if has_floor:
        lines.append("One `ansible.builtin.ping` task after the first takes %s (median): Ansible's own cost of a "
                     "task on this machine." % fmt_ms(res["floor"]["per_task"]))
    return lines


def findings(res):
    """Plain statements read off the figures (no figure is typed in by hand)."""
    out = []
    r = res["ratios"]
    if "b/a" in r:
        out.append("- The same bridge, %d ports: the peer's %d tasks take %.1f× the wall time of one `ovs_bridge` "
                   "task on the first run and %.1f× on the re-run."
                   % (res["b"]["n_tasks"] - 1, res["b"]["n_tasks"], r["b/a"]["first"], r["b/a"]["rerun"]))
    if "b/c" in r:
        out.append("- Task for task, (b) against (c): %.1f× on the first run, %.1f× on the re-run."
                   % (r["b/c"]["first"], r["b/c"]["rerun"]))
    if "floor" in res:
        for key in ("b", "c"):
            if key in res:
                e = res[key]
                out.append("- (%s): the floor of %d `ping` tasks is %.0f%% of its time in tasks on the first run and "
                           "%.0f%% on the re-run; the module's own part is about %s per task (first run) and %s "
                           "(re-run)." % (key, e["n_tasks"], 100.0 * e["floor"] / e["first"]["in_tasks"],
                                          100.0 * e["floor"] / e["rerun"]["in_tasks"],
                                          fmt_ms(e["first"]["above_floor"] / e["n_tasks"]),
                                          fmt_ms(e["rerun"]["above_floor"] / e["n_tasks"])))
    return out


def display_path(path):
    """A path as the docs show it: inside the checkout, relative to it."""
    if path.startswith(REPO + os.sep):
        return os.path.relpath(path, REPO)
    return path


def display_endpoint(db):
    kind, sep, rest = db.partition(":")
    return "%s:%s" % (kind, display_path(rest)) if sep else db


def render_section(args, machine, variants, res, n_ports, db, elapsed, coll_path):
    m = machine
    out = [START_MARK,
           "## Benchmark 1: `ovs_bridge` against `openvswitch.openvswitch`",
           "",
           "*Written by `bench/run.py` on %s; every figure below comes from that run. "
           "Re-run with `make bench` (options: `.venv/bin/python bench/run.py --help`).*" % m["date"],
           "",
           "**The work:** a bridge on the userspace (`netdev`) datapath with %d internal ports, created from "
           "nothing (*first run*: the bridge is removed with `ovs-vsctl del-br` before), then the same playbook "
           "again (*re-run*: must report `changed=0`). All variants talk to the same `ovsdb-server` and "
           "`ovs-vswitchd` (the lab's)." % n_ports,
           "",
           "### Machine",
           "",
           "| | |",
           "|---|---|",
           "| CPUs (nproc) | %s × %s |" % (m["nproc"], m["cpu"]),
           "| memory | %s |" % m["memory"],
           "| kernel | %s |" % m["kernel"],
           "| OS | %s |" % m["os"],
           "| Open vSwitch | %s (ovs-vswitchd), ovs-vsctl %s, `netdev` datapath |" % (m["ovs"], m["ovs_vsctl"]),
           "| ansible-core | %s |" % m["ansible_core"],
           "| Python | %s |" % m["python"],
           "| peer collection | openvswitch.openvswitch %s (from the `%s` wheel) |" % (m["peer"], PEER_WHEEL),
           "| load average (1/5/15 min) | %s at the start, %s at the end |" % (m["load_start"], m["load_end"]),
           "| date | %s |" % m["date"],
           "",
           "### Method",
           "",
           "- (a) one `opdbus.infra.ovs_bridge` task that lists all %d ports (`type: internal`) and "
           "`datapath_type: netdev`." % n_ports,
           "- (b) the peer: one `openvswitch.openvswitch.openvswitch_bridge` task "
           "(`set: \"bridge %s datapath_type=netdev\"`) and %d `openvswitch_port` tasks "
           "(`set: [\"Interface <port> type=internal\"]`) — %d tasks, since the peer's port module cannot "
           "create the bridge." % (BRIDGE, n_ports, n_ports + 1),
           "- (c) %d `opdbus.infra.ovs_bridge` tasks, each listing its one port (`ports_exclusive: false`); the "
           "first also creates the bridge, so there is no separate bridge task." % n_ports,
           "- The peer is pointed at the lab's database with its own `database_socket` option (it adds "
           "`--db=` to every `ovs-vsctl` it runs); `opdbus.infra.ovs_bridge` gets the same endpoint in its "
           "`ovsdb` option: `%s`. Both wait for `ovs-vswitchd` to apply each change (`ovs-vsctl` without "
           "`--no-wait`; `ovs_bridge` follows `cur_cfg`)." % display_endpoint(db),
           "- Each playbook (generated into `.bench/playbooks/`) runs as `ansible-playbook -i localhost, -c local` "
           "with the repository's `ansible.cfg`, `ansible_python_interpreter` = the Python running Ansible, and "
           "`ANSIBLE_COLLECTIONS_PATH=%s`." % os.pathsep.join(os.path.relpath(p, REPO) for p in coll_path[:2]),
           "- Checked on every run, or the benchmark fails: every task of a first run reports a change, the "
           "re-run reports `changed=0` in the play recap, and `ovs-vsctl` (the oracle) finds the bridge on "
           "`netdev` with exactly the %d ports, each an `internal` interface with an OpenFlow port number and "
           "no error — after variant (b) as after (a) and (c)." % n_ports,
           "- %d counted rounds after %d warm-up round%s; in each round every variant runs first run + re-run, "
           "in an order that rotates per round, so load changes on the machine hit all variants alike. "
           "*Wall time* is the whole `ansible-playbook` process, start-up included."
           % (args.runs, args.warmup, "" if args.warmup == 1 else "s"),
           ]
    if not args.no_floor:
        out.append("- The *floor* is a playbook of %d `ansible.builtin.ping` tasks, run in every round: what "
                   "Ansible spends on a task before a module does any work. *In tasks* is the sum of the tasks' "
                   "durations (task start to result, recorded by the benchmark's stdout callback "
                   "`bench/callback_plugins/opdbus_bench.py`); *above the floor* subtracts the time of the floor's "
                   "first as many tasks (the first task of a playbook costs more): an estimate of what the module "
                   "itself costs, work on the switch included, no more precise than the spread of the floor "
                   "(its min and max are in the wall-time table)." % FLOOR.n_tasks)
    env_over = sorted(k for k in os.environ if k.startswith("ANSIBLE_") and k not in (
        "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_CONFIG"))
    if env_over:
        out.append("- Ansible settings from the environment in effect: %s." % ", ".join("`%s`" % k for k in env_over))
    out += ["", "### Wall time", ""] + wall_table(variants, res)
    out += ["", "### Ratios", ""] + ratio_table(res)
    out += ["", "### Time in tasks (module-only estimate)", ""] + task_table(variants, res)
    out += ["", "### Reading", ""] + findings(res)
    out += ["", "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


DOC_HEAD = """# Performance

Measured, not estimated: every figure in this file is written by a benchmark script from its own run
(`make bench` runs them against the lab). Each benchmark owns one section between its markers
(`<!-- bench:NAME:start -->` … `<!-- bench:NAME:end -->`); a run replaces only its own section.

"""


def update_doc(section, path=DOC):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        docsection.replace_section(path, SECTION, section, empty=DOC_HEAD)
    except ValueError as exc:
        raise BenchError(str(exc)) from None


def print_summary(variants, res):
    say("")
    say("ovs_bridge benchmark: wall time per playbook run")
    for line in wall_table(variants, res) + [""] + ratio_table(res) + [""] + task_table(variants, res) + [""] + \
            findings(res):
        say(line)


# --------------------------------------------------------------------------------------------

def parse_args(argv):
    ap = argparse.ArgumentParser(description="Benchmark opdbus.infra.ovs_bridge against openvswitch.openvswitch "
                                             "on the lab's Open vSwitch.")
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "5")),
                    help="counted rounds; the medians are over these (default 5, or $BENCH_RUNS)")
    ap.add_argument("--warmup", type=int, default=1, help="uncounted warm-up rounds (default 1)")
    ap.add_argument("--ports", type=int, default=50, help="internal ports on the bridge (default 50)")
    ap.add_argument("--variants", default="a,b,c", help="which of a,b,c to run (default all)")
    ap.add_argument("--no-floor", action="store_true", help="skip the ansible.builtin.ping floor")
    ap.add_argument("--no-doc", action="store_true", help="print only; do not update docs/performance.md")
    args = ap.parse_args(argv)
    if args.runs < 1 or args.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    if not 1 <= args.ports <= 999:
        ap.error("--ports must be between 1 and 999")
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    if not keys or any(k not in ("a", "b", "c") for k in keys):
        ap.error("--variants takes a comma-separated subset of a,b,c")
    args.variants = keys
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.monotonic()
    db = os.environ.get("OPDBUS_OVSDB")
    if not db:
        say("bench: OPDBUS_OVSDB is not set: run `make bench`, or source the lab's env file (.lab/env) first")
        return 2
    width = max(2, len(str(args.ports - 1)))
    ports = ["%s%0*d" % (PORT_PREFIX, width, i) for i in range(args.ports)]
    variants = [v for v in VARIANTS if v.key in args.variants]
    vsctl = None  # set once the server answered: from then on, failures remove the bridge
    try:
        checked = Vsctl(db)
        coll_path = collections_path()
        peer_version = ensure_peer() if "b" in args.variants else PEER_VERSION
        ovs_version = preflight(checked, ports)
        vsctl = checked
        runner = Runner(coll_path)
        machine = machine_info(vsctl, ovs_version, peer_version)
        for v in variants + [FLOOR]:
            write_playbook(v, db, ports)
        say("ovs_bridge benchmark: %d ports, %d round(s) + %d warm-up, variants %s%s, OVSDB %s"
            % (args.ports, args.runs, args.warmup, ",".join(args.variants), "" if args.no_floor else " + floor", db))
        say("machine: %s × %s, %s, OVS %s, ansible-core %s"
            % (machine["nproc"], machine["cpu"], machine["kernel"], machine["ovs"], machine["ansible_core"]))
        results, floor, elapsed = run_benchmark(args, runner, vsctl, variants, ports)
    except BenchError as exc:
        say("bench: FAILED: %s" % exc)
        cleanup(vsctl)
        return 1
    except KeyboardInterrupt:
        say("bench: interrupted")
        cleanup(vsctl)
        return 130
    cleanup(vsctl)
    machine["load_end"] = "%.2f %.2f %.2f" % os.getloadavg()
    res = analyse(variants, results, floor)
    print_summary(variants, res)
    raw = os.path.join(WORK, "results-%s.json" % SECTION)
    with open(raw, "w") as f:
        json.dump({"machine": machine, "args": vars(args), "summary": res,
                   "runs": results, "floor": floor}, f, indent=1, sort_keys=True)
    total = time.monotonic() - t0
    if args.no_doc or len(variants) != len(VARIANTS):
        say("\n%s not updated (%s); raw results in %s"
            % (os.path.relpath(DOC, REPO), "--no-doc" if args.no_doc else "not all variants ran",
               os.path.relpath(raw, REPO)))
    else:
        update_doc(render_section(args, machine, variants, res, args.ports, db, total, coll_path))
        say("\nwrote %s (section %s); raw results in %s"
            % (os.path.relpath(DOC, REPO), SECTION, os.path.relpath(raw, REPO)))
    say("total %.0f s" % total)
    return 0


def cleanup(vsctl):
    if vsctl is None:
        return
    try:
        vsctl.remove_bridge()
    except BenchError as exc:
        say("bench: cleanup failed: %s" % exc)


BENCHMARKS = ("ovs_bridge", "openflow_flow", "ledger", "lxc", "btrfs_cache", "packagekit", "privacy")
SUBPROCESS_BENCHMARKS = (("openflow_flow", "openflow.py"), ("ledger", "ledger.py"), ("lxc", "containers.py"), ("btrfs_cache", "btrfs_cache.py"),
                         ("packagekit", "packagekit.py"), ("privacy", "privacy.py"))


def run_all(argv):
    """All four benchmarks, this one first; ``--only NAME`` runs one, with the other options for it.

    Without --only, the options are this benchmark's, and --runs and --no-doc go to benchmarks 2
    to 4 as well. Benchmarks 2 to 4 run even when an earlier one failed; the exit code is the
    first non-zero one.
    """
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--only", choices=BENCHMARKS)
    known, rest = ap.parse_known_args(argv)
    if known.only is None and ("-h" in rest or "--help" in rest):
        say("bench/run.py runs benchmark 1 (ovs_bridge, below), then benchmark 2 (bench/openflow.py), then "
            "benchmark 3 (bench/ledger.py), then benchmark 4 (bench/containers.py), then benchmarks 5 to 7 "
            "(bench/btrfs_cache.py, bench/packagekit.py, bench/privacy.py); "
            "--only ovs_bridge|openflow_flow|ledger|lxc|btrfs_cache|packagekit|privacy runs one of them.\n")
    rc = 0
    if known.only in (None, "ovs_bridge"):
        rc = main(rest)
    for name, script in SUBPROCESS_BENCHMARKS:
        if known.only not in (None, name):
            continue
        if known.only:
            forward = rest
        else:
            shared = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
            shared.add_argument("--runs")
            shared.add_argument("--no-doc", action="store_true")
            common = shared.parse_known_args(rest)[0]
            forward = (["--runs", common.runs] if common.runs else []) + (["--no-doc"] if common.no_doc else [])
        say("")
        p = subprocess.run([sys.executable, os.path.join(BENCH, script)] + forward, check=False)
        rc = rc or p.returncode
    return rc


if __name__ == "__main__":
    sys.exit(run_all(sys.argv[1:]))
