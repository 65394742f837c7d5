# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 2: opdbus.infra.openflow_flow against ovs-ofctl.

One bridge on the userspace (netdev) datapath, one cookie, N flows (default 10,000) generated
from a fixed seed: IPv4/TCP/UDP matches (in_port, nw_src/nw_dst as /32 and prefixes, tp_dst,
ct_state) over four tables and many priorities, with output, NORMAL, drop, ct, set_field,
dec_ttl and goto_table actions. Three phases, in this order, on every variant:

  first load   the N flows into an empty table;
  no-op        the same N flows again (nothing may change);
  change       10% of the flows get other actions (the same matches): the new list of N.

Variants:

  (a) ours, direct: the module run as ``python -m ansible_collections.opdbus.infra.plugins.
      modules.openflow_flow ARGS.json`` (exclusive: true): what the module itself costs.
  (b) ours, end to end: one ``opdbus.infra.openflow_flow`` task in ``ansible-playbook -i
      localhost, -c local``, the flows list in a vars file.
  (c) the C tool, the practical floor: ``ovs-ofctl -O OpenFlow14 --bundle add-flows`` (first
      load) and ``--bundle replace-flows`` (no-op and change) from one file.
  (d) what users do today: one ``ovs-ofctl add-flow`` per flow, from a shell script. A sample
      (default 500 commands) is timed and scaled linearly to the phase's flow count; the rest of
      the phase is loaded untimed with ``--bundle add-flows`` so that every phase ends with the
      full table.

Checked after every phase of every variant, or the benchmark fails: ``ovs-ofctl diff-flows``
(the oracle) finds no difference between the switch's table and the intended flow file (match,
actions and cookie), and ``ovs-ofctl dump-flows`` lists exactly N flows, all of the cookie. For
(a) and (b) the module's result must say changed/counts as planned (first load: added=N; no-op:
changed=false; change: modified=N/10), with N flows and as many change lines as counted.

The table is cleared (``ovs-ofctl del-flows``) before each variant's first load. Rounds are
interleaved (a, b, c, d, the order rotating every round); the first round is a warm-up and is
not counted. Medians, minima and maxima go to stdout and to docs/performance.md, between this
benchmark's markers (other sections are kept).

Needs: OPDBUS_OVSDB and OVS_RUNDIR (the lab's env file) with ovs-vswitchd running; ovs-vsctl
and ovs-ofctl on PATH; ansible-playbook next to this Python. ``make bench`` provides them
(bench/run.py runs this file after benchmark 1). The bridge is created here and deleted at the
end. Reuses bench/run.py's machine facts, ovs-vsctl wrapper and ansible-playbook runner.

Standard library only.
"""

from __future__ import absolute_import, division, print_function

import argparse
import importlib.util
import json
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
WORK = os.path.join(REPO, ".bench")
DATA = os.path.join(WORK, "openflow")
DOC = os.path.join(REPO, "docs", "performance.md")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "openflow_flow"
START_MARK, END_MARK = docsection.markers(SECTION)
PREVIOUS_SECTION = "ovs_bridge"  # a new section of this benchmark goes after that one

MODULE = "ansible_collections.opdbus.infra.plugins.modules.openflow_flow"
BRIDGE = "bench-of"
PROTOCOLS = "OpenFlow13,OpenFlow14,OpenFlow15"
OFCTL_VERSION = "OpenFlow14"
COOKIE = 0x0be7c4f10
N_PORTS = 48
TIME_BUDGET = 480.0   # seconds: 5 counted rounds if the whole run stays under this, else 3

PHASES = ("first", "noop", "change")
PHASE_NAMES = {"first": "first load", "noop": "no-op re-run", "change": "10% change"}


def _load_bridge_benchmark():
    """bench/run.py (benchmark 1) as a module: its BenchError, Vsctl, Runner, machine facts."""
    spec = importlib.util.spec_from_file_location("opdbus_bench_ovs_bridge", os.path.join(BENCH, "run.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


B1 = _load_bridge_benchmark()
BenchError = B1.BenchError
say = B1.say


# --------------------------------------------------------------------------------------------
# The flows
# --------------------------------------------------------------------------------------------

TCP_PORTS = (22, 25, 80, 110, 143, 443, 465, 587, 993, 995, 1433, 3306, 5432, 6379, 8080, 8443, 9200)
UDP_PORTS = (53, 67, 69, 123, 161, 500, 514, 1194, 4500, 4789, 5060, 51820)


def _ip(number):
    return "%d.%d.%d.%d" % (number >> 24, (number >> 16) & 255, (number >> 8) & 255, number & 255)


def _net(rng, base, base_len, lengths):
    """A random network (address, prefix length) inside base/base_len, host bits cleared."""
    length = rng.choice(lengths)
    addr = base | rng.getrandbits(32 - base_len)
    addr &= (0xffffffff << (32 - length)) & 0xffffffff
    return addr, length


def _addr_text(rng, net):
    addr, length = net
    if length == 32:
        return _ip(addr) + ("/32" if rng.random() < 0.25 else "")  # both spellings, as people write them
    return "%s/%d" % (_ip(addr), length)


def _mac(rng):
    return "02:00:%02x:%02x:%02x:%02x" % tuple(rng.getrandbits(8) for i in range(4))


def _actions(rng, table):
    port = rng.randint(1, N_PORTS)
    zone = rng.randint(1, 64)
    if table == 0:
        choices = ("goto_table:1", "ct(table=1,zone=%d)" % zone, "drop", "goto_table:3")
    elif table == 1:
        choices = ("output:%d" % port, "NORMAL", "drop", "ct(commit,zone=%d),output:%d" % (zone, port),
                   "set_field:%s->eth_dst,output:%d" % (_mac(rng), port),
                   "set_field:0x%x->reg0,goto_table:2" % rng.randint(1, 0xffff), "goto_table:3")
    elif table == 2:
        choices = ("output:%d" % port, "NORMAL", "ct(commit,zone=%d),NORMAL" % zone, "drop")
    else:
        choices = ("set_field:%s->eth_dst,dec_ttl,output:%d" % (_mac(rng), port), "output:%d" % port, "drop")
    return rng.choice(choices)


def _match(rng, table):
    """(priority, canonical key, text) of a random match for ``table``."""
    if table == 0:
        port = rng.randint(1, N_PORTS)
        src = _net(rng, 10 << 24, 8, (16, 24, 24, 32, 32, 32))
        return 100 + src[1], ("ip", port, src), "ip,in_port=%d,nw_src=%s" % (port, _addr_text(rng, src))
    if table == 1:
        proto = rng.choice(("tcp", "tcp", "tcp", "udp"))
        tp_dst = rng.choice(TCP_PORTS if proto == "tcp" else UDP_PORTS) if rng.random() < 0.7 \
            else rng.randint(1024, 65535)
        port = rng.randint(1, N_PORTS) if rng.random() < 0.5 else None
        src = _net(rng, 10 << 24, 8, (8, 16, 24, 32, 32))
        dst = _net(rng, (172 << 24) | (16 << 16), 12, (24, 28, 32, 32))
        text = proto + ("" if port is None else ",in_port=%d" % port)
        text += ",nw_src=%s,nw_dst=%s,tp_dst=%d" % (_addr_text(rng, src), _addr_text(rng, dst), tp_dst)
        return 200 + src[1] + dst[1], (proto, port, src, dst, tp_dst), text
    if table == 2:
        dst = _net(rng, (192 << 24) | (168 << 16), 16, (32,))
        if rng.random() < 0.5:
            return 100, ("est", dst), "ct_state=+trk+est,ip,nw_dst=%s" % _addr_text(rng, dst)
        tp_dst = rng.choice(TCP_PORTS)
        return 200, ("new", dst, tp_dst), "ct_state=+trk+new,tcp,nw_dst=%s,tp_dst=%d" % (_addr_text(rng, dst), tp_dst)
    dst = _net(rng, 10 << 24, 8, (16, 20, 24, 24, 24, 28, 32))
    return 1000 + dst[1], ("route", dst), "ip,nw_dst=%s" % _addr_text(rng, dst)


TABLE_SHARES = ((0, 10), (1, 55), (2, 15), (3, 20))   # percent of the flows per table


def generate_flows(n_flows, n_changed, seed):
    """(base, changed, changed_indices): two lists of N flow lines (ovs-ofctl syntax, no cookie)
    that differ in the actions of ``n_changed`` flows."""
    rng = random.Random(seed)
    tables = []
    for table, share in TABLE_SHARES:
        tables += [table] * share
    seen = set()
    entries = []
    while len(entries) < n_flows:
        table = rng.choice(tables)
        priority, key, match = _match(rng, table)
        if (table, priority, key) in seen:
            continue
        seen.add((table, priority, key))
        entries.append((table, priority, match, _actions(rng, table)))
    base = ["table=%d,priority=%d,%s,actions=%s" % e for e in entries]
    changed = list(base)
    indices = sorted(rng.sample(range(n_flows), n_changed))
    for i in indices:
        table, priority, match, actions = entries[i]
        new = actions
        while new == actions:
            new = _actions(rng, table)
        changed[i] = "table=%d,priority=%d,%s,actions=%s" % (table, priority, match, new)
    return base, changed, indices


def flow_stats(flows):
    """A few facts about a flow list, for the docs (table -> count, action kinds)."""
    per_table = {}
    kinds = {}
    for line in flows:
        table = int(line.split(",", 1)[0].split("=")[1])
        per_table[table] = per_table.get(table, 0) + 1
        actions = line.split(",actions=", 1)[1]
        for kind in ("output", "NORMAL", "drop", "ct(", "set_field", "dec_ttl", "goto_table"):
            if kind in actions:
                kinds[kind.rstrip("(")] = kinds.get(kind.rstrip("("), 0) + 1
    return per_table, kinds


# --------------------------------------------------------------------------------------------
# ovs-ofctl
# --------------------------------------------------------------------------------------------

def tail(text, lines=30, width=600):
    """The last lines of an output, each cut to ``width`` characters (a module result is one long line)."""
    out = []
    for line in text.rstrip().splitlines()[-lines:]:
        out.append(line if len(line) <= width else line[:width] + " … (%d characters)" % len(line))
    return "\n".join(out)


class Ofctl(object):
    def __init__(self, target):
        self.target = target
        self.exe = shutil.which("ovs-ofctl")
        if self.exe is None:
            raise BenchError("ovs-ofctl not found on PATH (it is the oracle and variants (c) and (d))")

    def cmd(self, *args):
        return [self.exe, "-O", OFCTL_VERSION] + list(args)

    def __call__(self, *args, check=True, timeout=600):
        cmd = self.cmd(*args)
        try:
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                               check=False, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise BenchError("%s did not finish within %d s" % (" ".join(cmd), timeout))
        if check and p.returncode != 0:
            raise BenchError("%s failed (exit %d):\n%s" % (" ".join(cmd), p.returncode, tail(p.stderr + p.stdout)))
        return p

    def version(self):
        out = subprocess.run([self.exe, "--version"], stdout=subprocess.PIPE, universal_newlines=True,
                             check=False).stdout
        return out.splitlines()[0].split()[-1] if out.strip() else "unknown"

    def clear(self):
        self("del-flows", self.target)
        n = len(self.dump())
        if n:
            raise BenchError("the table of %s still holds %d flows after del-flows" % (BRIDGE, n))

    def dump(self):
        return [line.strip() for line in self("--no-stats", "dump-flows", self.target).stdout.splitlines()
                if line.strip()]


def verify_table(ofctl, expected_file, n_flows, label):
    """The oracle: the switch's table is exactly the intended flows (ovs-ofctl diff-flows and dump-flows)."""
    p = ofctl("diff-flows", ofctl.target, expected_file, check=False)
    if p.returncode == 2 or (p.returncode == 0 and p.stdout.strip()):
        diff = p.stdout.splitlines()
        raise BenchError("%s: the table differs from %s (ovs-ofctl diff-flows, %d lines; '-' = switch, "
                         "'+' = intended):\n%s" % (label, display(expected_file), len(diff), "\n".join(diff[:20])))
    if p.returncode != 0:
        raise BenchError("%s: ovs-ofctl diff-flows failed (exit %d): %s" % (label, p.returncode, tail(p.stderr)))
    lines = ofctl.dump()
    cookie = "cookie=0x%x," % COOKIE
    foreign = [line for line in lines if not line.startswith(cookie)]
    if len(lines) != n_flows or foreign:
        raise BenchError("%s: ovs-ofctl dump-flows lists %d flows (expected %d), %d without cookie 0x%x: %s"
                         % (label, len(lines), n_flows, len(foreign), COOKIE, foreign[:3]))


# --------------------------------------------------------------------------------------------
# The bridge
# --------------------------------------------------------------------------------------------

def create_bridge(vsctl, rundir):
    if vsctl.bridge_exists_named(BRIDGE):
        say("bridge %s is left over from an earlier benchmark: removing it" % BRIDGE)
        remove_bridge(vsctl)
    vsctl("add-br", BRIDGE, "--", "set", "Bridge", BRIDGE, "datapath_type=netdev", "protocols=" + PROTOCOLS,
          "fail_mode=secure")
    mgmt = os.path.join(rundir, BRIDGE + ".mgmt")
    deadline = time.monotonic() + 10
    while not os.path.exists(mgmt):
        if time.monotonic() > deadline:
            raise BenchError("%s did not appear within 10 s of creating %s (is ovs-vswitchd running with "
                             "OVS_RUNDIR=%s?)" % (mgmt, BRIDGE, rundir))
        time.sleep(0.05)
    return mgmt


def remove_bridge(vsctl):
    vsctl("--if-exists", "del-br", BRIDGE)
    if vsctl.bridge_exists_named(BRIDGE):
        raise BenchError("bridge %s is still there after del-br" % BRIDGE)


class Vsctl(B1.Vsctl):
    def bridge_exists_named(self, name):
        p = self("br-exists", name, check=False)
        if p.returncode not in (0, 2):
            raise BenchError("ovs-vsctl br-exists %s failed: %s" % (name, p.stderr.strip()))
        return p.returncode == 0


# --------------------------------------------------------------------------------------------
# Inputs of every variant, written once into .bench/openflow/
# --------------------------------------------------------------------------------------------

def write(path, text):
    with open(path, "w") as f:
        f.write(text)
    return path


def flow_file(path, flows):
    return write(path, "".join("cookie=0x%x,%s\n" % (COOKIE, line) for line in flows))


def add_flow_script(path, ofctl, flows):
    """A shell script with one ovs-ofctl add-flow per flow: what people write today."""
    lines = ["# Generated by bench/openflow.py: one ovs-ofctl add-flow per flow.", "set -e"]
    lines += [" ".join(shlex.quote(a) for a in ofctl.cmd("add-flow", ofctl.target, "cookie=0x%x,%s" % (COOKIE, f)))
              for f in flows]
    return write(path, "\n".join(lines) + "\n")


def expectation(phase, n_flows, n_changed):
    counts = {"first": {"added": n_flows, "modified": 0, "deleted": 0},
              "noop": {"added": 0, "modified": 0, "deleted": 0},
              "change": {"added": 0, "modified": n_changed, "deleted": 0}}[phase]
    return {"changed": phase != "noop", "counts": counts, "n_flows": n_flows, "n_changes": sum(counts.values())}


class Inputs(object):
    """Every file the variants read, per phase."""

    def __init__(self, args, ofctl, rundir, base, changed, indices):
        os.makedirs(DATA, exist_ok=True)
        self.n_flows, self.n_changed = len(base), len(indices)
        self.flows = {"first": base, "noop": base, "change": changed}
        self.expected_file = {"first": flow_file(os.path.join(DATA, "base.flows"), base),
                              "change": flow_file(os.path.join(DATA, "changed.flows"), changed)}
        self.expected_file["noop"] = self.expected_file["first"]
        self.expect = dict((phase, expectation(phase, self.n_flows, self.n_changed)) for phase in PHASES)
        # (a) the module's argument files
        self.module_args = {}
        for phase, name in (("first", "base"), ("change", "changed")):
            params = {"bridge": BRIDGE, "rundir": rundir, "cookie": "0x%x" % COOKIE, "exclusive": True,
                      "flows": self.flows[phase]}
            self.module_args[phase] = write(os.path.join(DATA, "module-%s.json" % name),
                                            json.dumps({"ANSIBLE_MODULE_ARGS": params}))
        self.module_args["noop"] = self.module_args["first"]
        # (b) one playbook per phase, the flows in its vars file
        self.playbooks = {}
        for phase in PHASES:
            vars_file = write(os.path.join(DATA, "vars-%s.json" % phase),
                              json.dumps({"bench_flows": self.flows[phase], "bench_expect": self.expect[phase]}))
            self.playbooks[phase] = write_playbook(phase, vars_file, rundir, self.n_flows)
        # (d) one add-flow per flow: the timed sample and the untimed rest of each phase
        sample = args.per_flow
        first_idx = spaced(self.n_flows, min(sample, self.n_flows))
        change_idx = [indices[i] for i in spaced(len(indices), min(sample, len(indices)))]
        self.per_flow = {}
        for phase, idx, pool in (("first", first_idx, range(self.n_flows)), ("noop", first_idx, ()),
                                 ("change", change_idx, indices)):
            timed = [self.flows[phase][i] for i in idx]
            chosen = set(idx)
            rest = [self.flows[phase][i] for i in pool if i not in chosen]
            total = self.n_flows if phase != "change" else self.n_changed
            self.per_flow[phase] = {
                "script": add_flow_script(os.path.join(DATA, "add-flow-%s.sh" % phase), ofctl, timed),
                "n_timed": len(timed), "n_phase": total,
                "rest": flow_file(os.path.join(DATA, "rest-%s.flows" % phase), rest) if rest else None,
                "n_rest": len(rest)}


def spaced(n, k):
    """k indices spread evenly over range(n): a sample that covers every table and kind of flow."""
    return sorted(set(int(i * n / k) for i in range(k))) if k else []


def write_playbook(phase, vars_file, rundir, n_flows):
    condition = ("(of_result.failed | default(false)) or of_result.changed != bench_expect.changed "
                 "or of_result.counts | default({}) != bench_expect.counts "
                 "or of_result.flows | default([]) | length != bench_expect.n_flows "
                 "or of_result.changes | default([]) | length != bench_expect.n_changes")
    task = {"name": "%d flows of cookie 0x%x, one task (%s)" % (n_flows, COOKIE, PHASE_NAMES[phase]),
            "opdbus.infra.openflow_flow": {"bridge": BRIDGE, "rundir": rundir, "cookie": "0x%x" % COOKIE,
                                           "exclusive": True, "flows": "{{ bench_flows }}"},
            "register": "of_result",
            "failed_when": condition}
    play = [{"name": "benchmark %s: %s" % (SECTION, phase), "hosts": "localhost", "gather_facts": False,
             "vars": {"ansible_python_interpreter": sys.executable}, "vars_files": [vars_file],
             "tasks": [task]}]
    os.makedirs(os.path.join(WORK, "playbooks"), exist_ok=True)
    path = os.path.join(WORK, "playbooks", "%s-%s.yml" % (SECTION, phase))
    return write(path, "# Generated by bench/openflow.py; overwritten on every run.\n"
                 + "\n".join(B1.yaml_lines(play)) + "\n")


# --------------------------------------------------------------------------------------------
# The variants
# --------------------------------------------------------------------------------------------

def run_timed(cmd, label, env=None, timeout=900):
    t0 = time.monotonic()
    try:
        p = subprocess.run(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           universal_newlines=True, check=False, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("%s: %s did not finish within %d s" % (label, " ".join(cmd[:4]), timeout))
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise BenchError("%s: %s failed (exit %d)\n--- last lines of its output ---\n%s"
                         % (label, " ".join(cmd[:6]), p.returncode, tail(p.stderr + "\n" + p.stdout)))
    return wall, p


def check_module_result(result, expect, label):
    problems = []
    if result.get("failed"):
        problems.append("the module failed: %s" % result.get("msg"))
    if result.get("changed") != expect["changed"]:
        problems.append("changed=%r, expected %r" % (result.get("changed"), expect["changed"]))
    if result.get("counts") != expect["counts"]:
        problems.append("counts=%r, expected %r" % (result.get("counts"), expect["counts"]))
    if len(result.get("flows") or []) != expect["n_flows"]:
        problems.append("%d flows returned, expected %d" % (len(result.get("flows") or []), expect["n_flows"]))
    if len(result.get("changes") or []) != expect["n_changes"]:
        problems.append("%d change lines, expected %d" % (len(result.get("changes") or []), expect["n_changes"]))
    if problems:
        raise BenchError("%s: wrong module result: %s" % (label, "; ".join(problems)))


class Direct(object):
    key = "a"
    label = "(a) ours, direct: the module process"

    def __init__(self, inputs, pythonpath):
        self.inputs = inputs
        self.env = dict(os.environ)
        self.env["PYTHONPATH"] = os.pathsep.join([pythonpath] + [p for p in [os.environ.get("PYTHONPATH")] if p])

    def run(self, phase, label):
        wall, p = run_timed([sys.executable, "-m", MODULE, self.inputs.module_args[phase]], label, env=self.env)
        try:
            result = json.loads(p.stdout)
        except ValueError:
            raise BenchError("%s: the module printed no JSON result:\n%s" % (label, tail(p.stdout + p.stderr)))
        check_module_result(result, self.inputs.expect[phase], label)
        return {"wall": wall, "openflow_version": result.get("openflow_version")}


class Playbook(object):
    key = "b"
    label = "(b) ours, end to end: one `ansible-playbook` task"

    def __init__(self, inputs, runner):
        self.inputs, self.runner = inputs, runner

    def run(self, phase, label):
        play = B1.Variant(self.key, self.label, None)
        play.playbook, play.n_tasks = self.inputs.playbooks[phase], 1
        try:
            res = self.runner.run(play, label)
        except BenchError as exc:
            # the failed task's result (all flows) is one long line: cut it, and say what it held
            raise BenchError("%s%s\n(the whole output: %s)"
                             % (tail(str(exc), lines=60), self.failed_result(phase), display(self.runner.last_output)))
        expect = self.inputs.expect[phase]
        if res["stats"]["changed"] != int(expect["changed"]):
            raise BenchError("%s: the play recap says changed=%d, expected %d"
                             % (label, res["stats"]["changed"], int(expect["changed"])))
        return {"wall": res["wall"], "task": sum(res["task_seconds"])}

    def failed_result(self, phase):
        """The failed task's result, in short, from ansible-playbook's output (or "")."""
        try:
            with open(self.runner.last_output) as f:
                lines = [line for line in f if line.startswith("fatal: [") and "=> {" in line]
            result = json.loads(lines[-1].split("=> ", 1)[1])
        except (OSError, IndexError, ValueError):
            return ""
        return ("\nthe task's result: changed=%r counts=%r, %d flows, %d change lines, msg=%r; expected %r"
                % (result.get("changed"), result.get("counts"), len(result.get("flows") or []),
                   len(result.get("changes") or []), result.get("msg"), self.inputs.expect[phase]))


class Bundle(object):
    key = "c"
    label = "(c) `ovs-ofctl --bundle add-flows` / `replace-flows`"

    def __init__(self, inputs, ofctl):
        self.inputs, self.ofctl = inputs, ofctl

    def run(self, phase, label):
        command = "add-flows" if phase == "first" else "replace-flows"
        wall, _unused = run_timed(self.ofctl.cmd("--bundle", command, self.ofctl.target,
                                                 self.inputs.expected_file[phase]), label)
        return {"wall": wall}


class PerFlow(object):
    key = "d"
    label = "(d) one `ovs-ofctl add-flow` per flow (scaled)"

    def __init__(self, inputs, ofctl):
        self.inputs, self.ofctl = inputs, ofctl
        self.shell = shutil.which("sh") or "/bin/sh"

    def run(self, phase, label):
        pf = self.inputs.per_flow[phase]
        wall, _unused = run_timed([self.shell, pf["script"]], label)
        if pf["rest"]:
            # not timed: the rest of the phase, so that the table is complete for the oracle
            run_timed(self.ofctl.cmd("--bundle", "add-flows", self.ofctl.target, pf["rest"]), label + " (rest)")
        return {"wall": wall * pf["n_phase"] / pf["n_timed"], "measured": wall, "n_timed": pf["n_timed"],
                "per_command": wall / pf["n_timed"]}


# --------------------------------------------------------------------------------------------
# The benchmark
# --------------------------------------------------------------------------------------------

def measure(variant, ofctl, inputs, label):
    """Empty table -> first load -> no-op -> change, the oracle after each. Returns {phase: result}."""
    ofctl.clear()
    out = {}
    for phase in PHASES:
        plabel = "%s %s" % (label, PHASE_NAMES[phase])
        out[phase] = variant.run(phase, plabel)
        verify_table(ofctl, inputs.expected_file[phase], inputs.n_flows, plabel)
    return out


def run_benchmark(args, variants, ofctl, inputs):
    results = dict((v.key, dict((phase, []) for phase in PHASES)) for v in variants)
    runs = args.runs
    t_start = time.monotonic()
    rnd = 0
    while runs is None or rnd < args.warmup + runs:
        counted = rnd >= args.warmup
        name = ("round %d/%s" % (rnd - args.warmup + 1, runs or "?")) if counted else "warm-up"
        order = variants[rnd % len(variants):] + variants[:rnd % len(variants)]
        t_round = time.monotonic()
        for v in order:
            res = measure(v, ofctl, inputs, "[%s] (%s)" % (name, v.key))
            say("  %-12s (%s) first load %7.2f s   no-op %7.2f s   change %7.2f s%s"
                % (name, v.key, res["first"]["wall"], res["noop"]["wall"], res["change"]["wall"],
                   "   (scaled from %d commands)" % res["first"]["n_timed"] if v.key == "d" else ""))
            if counted:
                for phase in PHASES:
                    results[v.key][phase].append(res[phase])
        ofctl.clear()
        per_round = time.monotonic() - t_round
        if runs is None:
            # 5 counted rounds if the whole benchmark stays within the budget, else 3
            spent = time.monotonic() - t_start
            left_rounds = args.warmup - rnd - 1 + 5
            runs = 5 if spent + per_round * left_rounds <= TIME_BUDGET else 3
            say("  one round takes %.0f s: %d counted rounds (the budget is %.0f s), about %.0f s to go"
                % (per_round, runs, TIME_BUDGET, per_round * (args.warmup - rnd - 1 + runs)))
        elif rnd == 0:
            say("  one round takes %.0f s: about %.0f s to go" % (per_round, per_round * (args.warmup + runs - 1)))
        rnd += 1
    return results, runs, time.monotonic() - t_start


def analyse(variants, results, inputs):
    out = {}
    for v in variants:
        entry = {"label": v.label}
        for phase in PHASES:
            runs = results[v.key][phase]
            entry[phase] = {"wall": B1.summary([r["wall"] for r in runs])}
            if v.key == "b":
                entry[phase]["task"] = statistics.median(r["task"] for r in runs)
                entry[phase]["outside"] = statistics.median(r["wall"] - r["task"] for r in runs)
            if v.key == "d":
                entry[phase]["measured"] = B1.summary([r["measured"] for r in runs])
                entry[phase]["per_command"] = statistics.median(r["per_command"] for r in runs)
                entry[phase]["n_timed"] = runs[0]["n_timed"]
                entry[phase]["n_phase"] = inputs.per_flow[phase]["n_phase"]
            if v.key == "a":
                entry["openflow_version"] = runs[0]["openflow_version"]
        out[v.key] = entry

    def med(key, phase):
        return out[key][phase]["wall"]["median"]

    ratios = {}
    for num, den in (("a", "c"), ("b", "c"), ("d", "a"), ("d", "b")):
        if num in out and den in out:
            ratios["%s/%s" % (num, den)] = dict((phase, med(num, phase) / med(den, phase)) for phase in PHASES)
    out["ratios"] = ratios
    return out


# --------------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------------

def fmt_s(value):
    if value >= 100:
        return "%.0f s" % value
    if value >= 10:
        return "%.1f s" % value
    return "%.2f s" % value


def fmt_us(value):
    return "{:,.0f} µs".format(value * 1e6) if value >= 1e-4 else "%.1f µs" % (value * 1e6)


def fmt_ratio(value):
    return "%.1f×" % value if value >= 1 else "%.2f×" % value


def wall_table(variants, res):
    lines = ["| variant | " + " | ".join("%s: median | min | max" % PHASE_NAMES[p] for p in PHASES) + " |",
             "|---|" + "--:|--:|--:|" * len(PHASES)]
    for v in variants:
        cells = []
        for phase in PHASES:
            w = res[v.key][phase]["wall"]
            cells.append("**%s** | %s | %s" % (fmt_s(w["median"]), fmt_s(w["min"]), fmt_s(w["max"])))
        lines.append("| %s | %s |" % (res[v.key]["label"], " | ".join(cells)))
    return lines


RATIO_NAMES = {
    "a/c": "ours direct (a) / `ovs-ofctl --bundle` (c)",
    "b/c": "ours end to end (b) / `ovs-ofctl --bundle` (c)",
    "d/a": "one `add-flow` per flow (d) / ours direct (a)",
    "d/b": "one `add-flow` per flow (d) / ours end to end (b)",
}


def ratio_table(res):
    lines = ["| ratio of medians | " + " | ".join(PHASE_NAMES[p] for p in PHASES) + " |",
             "|---|" + "--:|" * len(PHASES)]
    for key in ("a/c", "b/c", "d/a", "d/b"):
        if key in res["ratios"]:
            cells = ["**%s**" % fmt_ratio(res["ratios"][key][p]) for p in PHASES]
            lines.append("| %s | %s |" % (RATIO_NAMES[key], " | ".join(cells)))
    return lines


def per_flow_table(variants, res, inputs):
    n, k = inputs.n_flows, inputs.n_changed
    lines = ["| variant | first load: per flow | no-op: per flow | 10% change: per flow of the list | "
             "per changed flow |",
             "|---|--:|--:|--:|--:|"]
    for v in variants:
        e = res[v.key]
        lines.append("| (%s) | %s | %s | %s | %s |"
                     % (v.key, fmt_us(e["first"]["wall"]["median"] / n), fmt_us(e["noop"]["wall"]["median"] / n),
                        fmt_us(e["change"]["wall"]["median"] / n), fmt_us(e["change"]["wall"]["median"] / k)))
    return lines


def measured_table(res):
    """(d) as measured, before scaling."""
    e = res["d"]
    lines = ["| (d) phase | commands timed | measured: median | min | max | per command | scaled to |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for phase in PHASES:
        p = e[phase]
        m = p["measured"]
        lines.append("| %s | %d | %s | %s | %s | %.2f ms | %d flows: **%s** |"
                     % (PHASE_NAMES[phase], p["n_timed"], fmt_s(m["median"]), fmt_s(m["min"]), fmt_s(m["max"]),
                        p["per_command"] * 1000.0, p["n_phase"], fmt_s(p["wall"]["median"])))
    return lines


def findings(res, inputs):
    out = []
    r = res["ratios"]
    n = "{:,}".format(inputs.n_flows)
    if "a/c" in r and "b/c" in r:
        for phase in PHASES:
            out.append("- %s: the module takes %s directly, %s the %s of `ovs-ofctl --bundle`, and %s end to end "
                       "(%s)." % (PHASE_NAMES[phase][0].upper() + PHASE_NAMES[phase][1:],
                                  fmt_s(res["a"][phase]["wall"]["median"]), fmt_ratio(r["a/c"][phase]),
                                  fmt_s(res["c"][phase]["wall"]["median"]), fmt_s(res["b"][phase]["wall"]["median"]),
                                  fmt_ratio(r["b/c"][phase])))
    if "d/a" in r:
        d = res["d"]
        out.append("- One `ovs-ofctl add-flow` per flow costs %.1f ms a command here: %s flows would take %s "
                   "(scaled), %s the module run directly and %s the whole `ansible-playbook` run."
                   % (d["first"]["per_command"] * 1000.0, n, fmt_s(d["first"]["wall"]["median"]),
                      fmt_ratio(r["d/a"]["first"]), fmt_ratio(r["d/b"]["first"]) if "d/b" in r else "?"))
        out.append("- A script of add-flows has no no-op: re-running it re-adds all %s flows (%s, scaled) and "
                   "resets their counters; the module reads the table, finds nothing to do and reports "
                   "`changed: false` in %s."
                   % (n, fmt_s(d["noop"]["wall"]["median"]), fmt_s(res["a"]["noop"]["wall"]["median"])))
    if "b" in res:
        b = res["b"]
        out.append("- In (b), the task itself (task start to result) takes %s of the first load's %s; the rest is "
                   "`ansible-playbook` around it (start-up, loading the playbook and its %s-flow vars file, the "
                   "recap)." % (fmt_s(b["first"]["task"]), fmt_s(b["first"]["wall"]["median"]), n))
    return out


def verified_lines(inputs, res):
    n, k = "{:,}".format(inputs.n_flows), "{:,}".format(inputs.n_changed)
    return [
        "- Every phase of every variant, in every round (warm-up included), is followed by the oracle: "
        "`ovs-ofctl diff-flows` between the switch and the intended flow file (match, actions and cookie "
        "compared by Open vSwitch's own parser) must print nothing, and `ovs-ofctl --no-stats dump-flows` must "
        "list exactly %s flows, all with cookie `0x%x`. After (d)'s timed commands, the rest of its phase is "
        "loaded untimed with `--bundle add-flows`, so the oracle sees the full table there too." % (n, COOKIE),
        "- (a) and (b): the module's result must be `changed: true` with `counts` "
        "`{added: %s, modified: 0, deleted: 0}` on the first load, `changed: false` with all counts 0 and no "
        "change lines on the no-op re-run, and `changed: true` with `{added: 0, modified: %s, deleted: 0}` on "
        "the change; every time with %s flows in `flows` and as many `changes` lines as the counts add up to. "
        "(a) checks the JSON the module prints; (b) asserts it inside the task (`failed_when` on the registered "
        "result) and checks the play recap (`changed=1`, `0`, `1`)." % (n, k, n),
        "- The module negotiated %s with the bridge; `ovs-ofctl` was told `-O %s`."
        % (res.get("a", {}).get("openflow_version") or "?", OFCTL_VERSION),
    ]


def render_section(args, machine, variants, res, inputs, elapsed, runs, ofctl_version, db):
    m = machine
    per_table, kinds = flow_stats(inputs.flows["first"])
    n, k = "{:,}".format(inputs.n_flows), "{:,}".format(inputs.n_changed)
    out = [START_MARK,
           "## Benchmark 2: `openflow_flow` against `ovs-ofctl`",
           "",
           "*Written by `bench/openflow.py` on %s; every figure below comes from that run. "
           "Re-run with `make bench` (which runs both benchmarks; this one alone: "
           "`.venv/bin/python bench/run.py --only openflow_flow`, options: `.venv/bin/python bench/openflow.py "
           "--help`).*" % m["date"],
           "",
           "**The work:** %s flows of one cookie on a bridge of the userspace (`netdev`) datapath "
           "(`protocols=%s`, `fail_mode=secure`, created for the benchmark): loaded into an empty table "
           "(*first load*), the same flows again (*no-op re-run*), then the same list with %s of the flows' "
           "actions changed (*10%% change*). All variants talk to the same `ovs-vswitchd` (the lab's) over the "
           "bridge's management socket." % (n, PROTOCOLS, k),
           "",
           "### Machine",
           "",
           "| | |",
           "|---|---|",
           "| CPUs (nproc) | %s × %s |" % (m["nproc"], m["cpu"]),
           "| memory | %s |" % m["memory"],
           "| kernel | %s |" % m["kernel"],
           "| OS | %s |" % m["os"],
           "| Open vSwitch | %s (ovs-vswitchd), ovs-ofctl %s, `netdev` datapath |" % (m["ovs"], ofctl_version),
           "| ansible-core | %s |" % m["ansible_core"],
           "| Python | %s |" % m["python"],
           "| load average (1/5/15 min) | %s at the start, %s at the end |" % (m["load_start"], m["load_end"]),
           "| date | %s |" % m["date"],
           "",
           "### Method",
           "",
           "- The flows (seed %d, `ovs-ofctl` syntax, in `.bench/openflow/base.flows` and `changed.flows`): "
           "%s. Matches: `ip`/`tcp`/`udp` with `in_port`, `nw_src`/`nw_dst` as /32 (sometimes written `/32`) "
           "and as prefixes, `tp_dst`, `ct_state`; %d priorities. Actions (flows using each): %s. Ports 1-%d "
           "are referenced by number (the bridge needs no ports for that)."
           % (args.seed, ", ".join("table %d: %s" % (t, "{:,}".format(c)) for t, c in sorted(per_table.items())),
              len(set(int(line.split("priority=")[1].split(",")[0]) for line in inputs.flows["first"])),
              ", ".join("`%s` %s" % (kk, "{:,}".format(c)) for kk, c in sorted(kinds.items(), key=lambda x: -x[1])),
              N_PORTS),
           "- The change: %s flows (chosen with the same seed) get other actions, matches unchanged; no flow is "
           "added or removed." % k,
           "- (a) ours, direct: `python -m %s ARGS.json` with `PYTHONPATH=.collections` (parse and check all flows, "
           "read the table once, plan, apply in one bundle, print the result): `bridge`, `rundir`, `cookie`, "
           "`exclusive: true` and the list of %s flows. The time includes Python's start-up." % (MODULE, n),
           "- (b) ours, end to end: one `opdbus.infra.openflow_flow` task with the same options, `flows: \"{{ "
           "bench_flows }}\"` from a JSON vars file, run as `ansible-playbook -i localhost, -c local` with the "
           "repository's `ansible.cfg`; the whole process is timed. *In the task* is the task's own time "
           "(task start to result, from `bench/callback_plugins/opdbus_bench.py`).",
           "- (c) the C tool, the practical floor: `ovs-ofctl -O %s --bundle add-flows BRIDGE FILE` for the first "
           "load, `ovs-ofctl -O %s --bundle replace-flows BRIDGE FILE` for the no-op and the change (the table "
           "holds only these flows, so replace-flows does the same work as the module's `exclusive: true`)."
           % (OFCTL_VERSION, OFCTL_VERSION),
           "- (d) one `ovs-ofctl -O %s add-flow BRIDGE FLOW` per flow, from a `sh` script: **%d commands timed "
           "per phase and scaled linearly** to the phase (first load and no-op: %s flows, re-adding them all, as "
           "re-running such a script does; change: the %s changed flows only), the commands spread evenly over "
           "the list. Scaling assumes a command costs the same whatever the table's size: the first load's timed "
           "commands run against a table of at most %d flows (the rest of the phase is loaded untimed after "
           "them), the no-op's against the full table. The measured times are in their own table below."
           % (OFCTL_VERSION, inputs.per_flow["first"]["n_timed"], n, k, inputs.per_flow["first"]["n_timed"]),
           "- The table is cleared (`ovs-ofctl del-flows`) before each variant's first load. %d counted round%s "
           "after %d warm-up round%s; in each round every variant runs its three phases, in an order that rotates "
           "per round.%s" % (runs, "" if runs == 1 else "s", args.warmup, "" if args.warmup == 1 else "s",
                             " The number of rounds is 5 when the whole benchmark fits in %.0f s, else 3."
                             % TIME_BUDGET if args.runs is None else ""),
           "- The OVSDB endpoint of the lab: `%s`." % B1.display_endpoint(db),
           ]
    env_over = sorted(key for key in os.environ if key.startswith("ANSIBLE_") and key not in (
        "ANSIBLE_COLLECTIONS_PATH", "ANSIBLE_COLLECTIONS_PATHS", "ANSIBLE_CONFIG"))
    if env_over:
        out.append("- Ansible settings from the environment in effect: %s." % ", ".join("`%s`" % e for e in env_over))
    out += ["", "### Wall time", ""] + wall_table(variants, res)
    if "c" in res:
        out += ["", "### Ratios", ""] + ratio_table(res)
    out += ["", "### Per flow (median wall time / flows)", ""] + per_flow_table(variants, res, inputs)
    if "d" in res:
        out += ["", "### (d) as measured", ""] + measured_table(res)
    if "b" in res:
        b = res["b"]
        out += ["", "### (b): in the task and around it", "",
                "| phase | wall | in the task | outside the task |", "|---|--:|--:|--:|"]
        out += ["| %s | %s | %s | %s |"
                % (PHASE_NAMES[p], fmt_s(b[p]["wall"]["median"]), fmt_s(b[p]["task"]), fmt_s(b[p]["outside"]))
                for p in PHASES]
    out += ["", "### What was verified", ""] + verified_lines(inputs, res)
    out += ["", "### Reading", ""] + findings(res, inputs)
    out += ["", "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


def update_doc(section, path=DOC):
    """Replace this benchmark's section; a new one goes after benchmark 1's (or at the end)."""
    try:
        docsection.replace_section(path, SECTION, section, after=PREVIOUS_SECTION, empty=B1.DOC_HEAD)
    except ValueError as exc:
        raise BenchError(str(exc)) from None


def print_summary(variants, res, inputs):
    say("")
    say("openflow_flow benchmark: wall time (%s flows, %s changed)"
        % ("{:,}".format(inputs.n_flows), "{:,}".format(inputs.n_changed)))
    lines = wall_table(variants, res) + [""]
    if "c" in res:
        lines += ratio_table(res) + [""]
    lines += per_flow_table(variants, res, inputs) + [""]
    if "d" in res:
        lines += measured_table(res) + [""]
    for line in lines + findings(res, inputs):
        say(line)


def display(path):
    return B1.display_path(path)


# --------------------------------------------------------------------------------------------
# Profile (optional): where the module's time goes
# --------------------------------------------------------------------------------------------

def profile_module(direct, ofctl, inputs, top):
    """Each phase once under cProfile; prints the top functions by own time and cumulative time."""
    import pstats  # pylint: disable=import-outside-toplevel
    ofctl.clear()
    for phase in PHASES:
        out = os.path.join(WORK, "openflow-profile-%s.pstats" % phase)
        cmd = [sys.executable, "-m", "cProfile", "-o", out, "-m", MODULE, inputs.module_args[phase]]
        wall, p = run_timed(cmd, "profile %s" % phase, env=direct.env)
        check_module_result(json.loads(p.stdout), inputs.expect[phase], "profile %s" % phase)
        verify_table(ofctl, inputs.expected_file[phase], inputs.n_flows, "profile %s" % phase)
        say("")
        say("profile, %s: %.2f s under cProfile (%s)" % (PHASE_NAMES[phase], wall, display(out)))
        for sort in ("tottime", "cumulative"):
            stats = pstats.Stats(out, stream=sys.stdout)
            stats.strip_dirs().sort_stats(sort).print_stats(top)
    ofctl.clear()


# --------------------------------------------------------------------------------------------

VARIANT_KEYS = ("a", "b", "c", "d")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="Benchmark opdbus.infra.openflow_flow against ovs-ofctl on the lab's "
                                             "Open vSwitch.")
    env_runs = os.environ.get("BENCH_RUNS")
    ap.add_argument("--runs", type=int, default=int(env_runs) if env_runs else None,
                    help="counted rounds (default: 5 if the whole run fits in %.0f s, else 3; or $BENCH_RUNS)"
                    % TIME_BUDGET)
    ap.add_argument("--warmup", type=int, default=1, help="uncounted warm-up rounds (default 1)")
    ap.add_argument("--flows", type=int, default=10000, help="flows in the table (default 10000)")
    ap.add_argument("--change-percent", type=int, default=10, help="share of the flows the change touches (default 10)")
    ap.add_argument("--per-flow", type=int, default=500,
                    help="add-flow commands timed per phase in (d), scaled to the phase (default 500)")
    ap.add_argument("--seed", type=int, default=20261122, help="seed of the generated flows")
    ap.add_argument("--variants", default=",".join(VARIANT_KEYS), help="which of a,b,c,d to run (default all)")
    ap.add_argument("--profile", action="store_true",
                    help="afterwards, run the module once per phase under cProfile and print where its time goes")
    ap.add_argument("--profile-top", type=int, default=25, help="functions to print per profile listing")
    ap.add_argument("--no-doc", action="store_true", help="print only; do not update docs/performance.md")
    args = ap.parse_args(argv)
    if (args.runs is not None and args.runs < 1) or args.warmup < 0:
        ap.error("--runs must be at least 1 and --warmup at least 0")
    if not 10 <= args.flows <= 200000:
        ap.error("--flows must be between 10 and 200000")
    if not 1 <= args.change_percent <= 100:
        ap.error("--change-percent must be between 1 and 100")
    if args.per_flow < 1:
        ap.error("--per-flow must be at least 1")
    keys = [k.strip() for k in args.variants.split(",") if k.strip()]
    if not keys or any(k not in VARIANT_KEYS for k in keys):
        ap.error("--variants takes a comma-separated subset of a,b,c,d")
    args.variants = [k for k in VARIANT_KEYS if k in keys]
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t0 = time.monotonic()
    db, rundir = os.environ.get("OPDBUS_OVSDB"), os.environ.get("OVS_RUNDIR")
    if not db or not rundir:
        say("bench: OPDBUS_OVSDB and OVS_RUNDIR must be set: run `make bench`, or source the lab's env file "
            "(.lab/env) first")
        return 2
    vsctl = None  # set once the bridge is made: from then on, failures remove it
    try:
        checked = Vsctl(db)
        p = checked("show", check=False, timeout=10)
        if p.returncode != 0:
            raise BenchError("no OVSDB server answers at %s: %s" % (db, p.stderr.strip()))
        coll_path = B1.collections_path()
        runner = B1.Runner(coll_path) if "b" in args.variants else None
        ovs_version = B1._atom(checked.table("Open_vSwitch", ["ovs_version"])[0]["ovs_version"]) \
            or B1.vswitchd_version()
        machine = B1.machine_info(checked, ovs_version, None)
        vsctl = checked
        mgmt = create_bridge(vsctl, rundir)
        ofctl = Ofctl("unix:" + mgmt)
        n_changed = max(1, args.flows * args.change_percent // 100)
        base, changed, indices = generate_flows(args.flows, n_changed, args.seed)
        inputs = Inputs(args, ofctl, rundir, base, changed, indices)
        direct = Direct(inputs, coll_path[0])
        make = {"a": lambda: direct, "b": lambda: Playbook(inputs, runner), "c": lambda: Bundle(inputs, ofctl),
                "d": lambda: PerFlow(inputs, ofctl)}
        variants = [make[k]() for k in args.variants]
        say("openflow_flow benchmark: %s flows (%s changed), %s round(s) + %d warm-up, variants %s, bridge %s"
            % ("{:,}".format(args.flows), "{:,}".format(n_changed), args.runs or "3-5", args.warmup,
               ",".join(args.variants), BRIDGE))
        say("machine: %s × %s, %s, OVS %s, ovs-ofctl %s, ansible-core %s"
            % (machine["nproc"], machine["cpu"], machine["kernel"], machine["ovs"], ofctl.version(),
               machine["ansible_core"]))
        results, runs, elapsed = run_benchmark(args, variants, ofctl, inputs)
        if args.profile:
            profile_module(direct, ofctl, inputs, args.profile_top)
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
    res = analyse(variants, results, inputs)
    print_summary(variants, res, inputs)
    raw = os.path.join(WORK, "results-%s.json" % SECTION)
    with open(raw, "w") as f:
        json.dump({"machine": machine, "args": vars(args), "runs_counted": runs, "summary": res, "runs": results},
                  f, indent=1, sort_keys=True)
    total = time.monotonic() - t0
    if args.no_doc or len(variants) != len(VARIANT_KEYS):
        say("\n%s not updated (%s); raw results in %s"
            % (display(DOC), "--no-doc" if args.no_doc else "not all variants ran", display(raw)))
    else:
        update_doc(render_section(args, machine, variants, res, inputs, total, runs, ofctl.version(), db))
        say("\nwrote %s (section %s); raw results in %s" % (display(DOC), SECTION, display(raw)))
    say("total %.0f s" % total)
    return 0


def cleanup(vsctl):
    if vsctl is None:
        return
    try:
        remove_bridge(vsctl)
    except BenchError as exc:
        say("bench: cleanup failed: %s" % exc)


if __name__ == "__main__":
    sys.exit(main())
