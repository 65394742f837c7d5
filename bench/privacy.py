# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 7: the privacy chain (opdbus.infra.privacy_router) on the lab: converge time and throughput.

In one run, on the lab (``lab/lab.sh up``; its env sourced):

  converge   ``ansible-playbook -i inventory/lab playbooks/site.yml`` from a lab without the chain (first
             the chain is removed - role opdbus.infra.privacy_router with privacy_router_state: absent on
             opdbus_full - and ``lab/lab.sh peers-down``, so the three containers are absent), wall time;
             then the same command again, wall time: its recap must report changed=0 for lab-host,
             otherwise the benchmark fails.
  throughput ``iperf3 -c ADDR -t 5 -J`` (TCP) from the client's namespace (OPDBUS_CLIENT_NS) to the www
             namespace's ``iperf3 -s``: 198.18.0.80 goes through the chain (WireGuard -> CT100 -> CT102
             XRay/VLESS -> CT101 WARP -> the WARP endpoint -> the VPS -> www), 198.18.1.80 is the direct
             path (client -> the uplink router -> www). ``--runs`` rounds (default 3), the two paths
             alternating, the order rotating every round; medians of the receiver's rate and of the
             sender's TCP retransmits. The chain carries TCP only (a transparent proxy), so TCP only. An
             iperf3 that fails is recorded with its error instead of a figure.

Checked, or the benchmark fails: the chain's containers are absent before the first converge, the
client's fetch of http://198.18.0.80/ through the chain answers ``source=<the VPS>`` before the
throughput is measured, and the containers are absent again at the end. The chain is always torn down at
the end (and on failure), so the benchmark can be run again.

Results go to stdout and to docs/performance.md between this benchmark's markers; raw figures to
``.bench/results-privacy.json``. Needs root and the lab (OPDBUS_LAB_DIR, OPDBUS_LXC_PATH, OPDBUS_OVSDB).
Standard library only.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, ".bench")
DOC = os.path.join(REPO, "docs", "performance.md")
SITE = os.path.join(REPO, "playbooks", "site.yml")
INVENTORY = os.path.join(REPO, "inventory", "lab")
LAB_SH = os.path.join(REPO, "lab", "lab.sh")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "privacy"
START_MARK, END_MARK = docsection.markers(SECTION)
CONTAINERS = ("ct100", "ct101", "ct102")
TASK_LINE = re.compile(r"^TASK \[(.+?)\] \*+$")
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
DOWN_PLAY = """---
- name: Remove the privacy chain
  hosts: opdbus_full
  gather_facts: false
  roles:
    - role: opdbus.infra.privacy_router
      vars:
        privacy_router_state: absent
        privacy_router_discover: false
"""


class BenchError(Exception):
    pass


def say(msg=""):
    print(msg, flush=True)


class Lab:
    def __init__(self, workdir):
        self.workdir = workdir
        self.env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                        ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
        venv_bin = os.path.join(REPO, ".venv", "bin")
        if os.path.isdir(venv_bin):
            self.env["PATH"] = "%s:%s" % (venv_bin, self.env.get("PATH", ""))
        self.lxcpath = self.env["OPDBUS_LXC_PATH"]
        self.client_ns = self.env.get("OPDBUS_CLIENT_NS", "opdbus-client")
        self.chain = self.env.get("OPDBUS_WWW_ADDR", "198.18.0.80")
        self.direct = self.env.get("OPDBUS_WWW_DIRECT_ADDR", "198.18.1.80")
        self.vps = self.env.get("OPDBUS_VPS_ADDR", "203.0.113.10")
        self.down_book = os.path.join(workdir, "down.yml")
        with open(self.down_book, "w", encoding="utf-8") as handle:
            handle.write(DOWN_PLAY)

    def playbook(self, book, timeout=1800, log=None):
        """(seconds, recap by host, proc) of one ansible-playbook run with the lab inventory; stdout kept in ``log``."""
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", INVENTORY, book]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=REPO, timeout=timeout, check=False)
        seconds = time.monotonic() - started
        if log:
            with open(os.path.join(self.workdir, log), "w", encoding="utf-8") as handle:
                handle.write(proc.stdout + proc.stderr)
        if proc.returncode != 0:
            raise BenchError("%s failed (rc %d):\n%s%s" % (book, proc.returncode, proc.stdout[-4000:], proc.stderr[-2000:]))
        recap = dict((m.group(1), {"ok": int(m.group(2)), "changed": int(m.group(3)), "failed": int(m.group(5))})
                     for m in RECAP.finditer(proc.stdout))
        return seconds, recap, proc

    def sh(self, argv, check=True, timeout=120):
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env, timeout=timeout, check=False)
        if check and proc.returncode != 0:
            raise BenchError("%s: rc %d\n%s%s" % (" ".join(argv), proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:]))
        return proc

    def containers(self):
        """The chain's containers that exist (lxc-ls, the oracle)."""
        names = self.sh(["lxc-ls", "-P", self.lxcpath, "-1"], check=False).stdout.split()
        return sorted(n for n in names if n in CONTAINERS)

    def teardown(self):
        started = time.monotonic()
        self.playbook(self.down_book)
        self.sh([LAB_SH, "peers-down"])
        left = self.containers()
        if left:
            raise BenchError("the chain's containers %s are still there after state=absent" % left)
        return time.monotonic() - started

    def fetch(self, addr, seconds=6):
        proc = self.sh(["ip", "netns", "exec", self.client_ns, "curl", "-sS", "-m", str(seconds), "http://%s/" % addr],
                       check=False, timeout=seconds + 10)
        return proc.returncode == 0, (proc.stdout.strip() or proc.stderr.strip())

    def wait_flowing(self, seconds=150):
        deadline = time.monotonic() + seconds
        body = None
        while time.monotonic() < deadline:
            ok, body = self.fetch(self.chain)
            if ok:
                return body
            time.sleep(2)
        raise BenchError("no traffic through the chain within %ss (last: %s)" % (seconds, body))

    def iperf(self, addr, seconds):
        """One TCP iperf3 run from the client's namespace: dict with mbits and retransmits, or error."""
        proc = self.sh(["ip", "netns", "exec", self.client_ns, "iperf3", "-c", addr, "-t", str(seconds), "-J"],
                       check=False, timeout=seconds + 60)
        try:
            doc = json.loads(proc.stdout)
        except ValueError:
            return {"error": "rc %d, no JSON: %s" % (proc.returncode, (proc.stderr or proc.stdout).strip()[-300:])}
        if doc.get("error") or proc.returncode != 0:
            return {"error": doc.get("error") or "rc %d" % proc.returncode}
        end = doc["end"]
        return {"mbits": end["sum_received"]["bits_per_second"] / 1e6,
                "sent_mbits": end["sum_sent"]["bits_per_second"] / 1e6,
                "retransmits": end["sum_sent"].get("retransmits", 0)}


def changed_tasks(stdout):
    """The names of the tasks that reported a change (``changed: [host]`` lines under ``TASK [...]``)."""
    task, out = None, []
    for line in stdout.splitlines():
        match = TASK_LINE.match(line)
        if match:
            task = match.group(1)
        elif line.startswith("changed: [") and task:
            out.append("%s (%s)" % (task, line.split("[", 1)[1].split("]", 1)[0]))
    return out


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def measure(args, lab):
    res = {"paths": {"chain": lab.chain, "direct": lab.direct}}
    say("tearing the chain down first (state=absent, peers-down)")
    res["teardown_before"] = lab.teardown()
    try:
        say("first converge: ansible-playbook -i inventory/lab playbooks/site.yml")
        seconds, recap, proc = lab.playbook(SITE, log="site-first.log")
        if recap.get("lab-host", {}).get("changed", 0) == 0:
            raise BenchError("the first converge changed nothing on lab-host: %s" % recap)
        if lab.containers() != sorted(CONTAINERS):
            raise BenchError("after the first converge the containers are %s" % lab.containers())
        res["first"] = {"seconds": seconds, "recap": recap, "changed_tasks": changed_tasks(proc.stdout)}
        say("first converge: %.1f s, recap %s" % (seconds, recap))
        seconds, recap, proc = lab.playbook(SITE, log="site-rerun.log")
        if recap.get("lab-host", {}).get("changed") != 0:
            raise BenchError("the re-run was not idempotent: recap %s; changed: %s (log: %s)"
                             % (recap, changed_tasks(proc.stdout), os.path.join(lab.workdir, "site-rerun.log")))
        res["rerun"] = {"seconds": seconds, "recap": recap}
        say("re-run: %.1f s, recap %s" % (seconds, recap))
        body = lab.wait_flowing()
        if body != "source=%s" % lab.vps:
            raise BenchError("through the chain the server saw %r, not the VPS %s" % (body, lab.vps))
        ok, direct_body = lab.fetch(lab.direct)
        if not ok:
            raise BenchError("the direct path does not answer: %s" % direct_body)
        res["fetch"] = {"chain": body, "direct": direct_body}
        runs = {"chain": [], "direct": []}
        for rnd in range(args.runs):
            order = ["chain", "direct"] if rnd % 2 == 0 else ["direct", "chain"]
            for path in order:
                one = lab.iperf(res["paths"][path], args.seconds)
                runs[path].append(one)
                say("round %d %s (%s): %s" % (rnd + 1, path, res["paths"][path],
                                              "%.1f Mbit/s, %d retransmits" % (one["mbits"], one["retransmits"])
                                              if "mbits" in one else "error: %s" % one["error"]))
                time.sleep(1)
        res["iperf"] = runs
        res["summary"] = {}
        for path, items in runs.items():
            good = [i for i in items if "mbits" in i]
            res["summary"][path] = {
                "mbits": summary([i["mbits"] for i in good]) if good else None,
                "retransmits": summary([i["retransmits"] for i in good]) if good else None,
                "errors": [i["error"] for i in items if "error" in i]}
    finally:
        say("tearing the chain down (state=absent, peers-down)")
        res["teardown_after"] = lab.teardown()
    return res


def tool_version(argv):
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).strip().splitlines()[0] if (proc.stdout or proc.stderr).strip() else "unknown"


def _rate_cell(s):
    if s["mbits"] is None:
        return "failed: %s" % "; ".join(sorted(set(s["errors"])))
    text = "%.1f Mbit/s (%.1f–%.1f)" % (s["mbits"]["median"], s["mbits"]["min"], s["mbits"]["max"])
    if s["errors"]:
        text += ", %d of the runs failed: %s" % (len(s["errors"]), "; ".join(sorted(set(s["errors"]))))
    return text


def _retr_cell(s):
    if s["retransmits"] is None:
        return "–"
    return "%d (%d–%d)" % (s["retransmits"]["median"], s["retransmits"]["min"], s["retransmits"]["max"])


def render(res, args, elapsed):
    first, rerun = res["first"], res["rerun"]
    chain, direct = res["summary"]["chain"], res["summary"]["direct"]
    if chain["mbits"] and direct["mbits"]:
        ratio = "%.3f" % (chain["mbits"]["median"] / direct["mbits"]["median"])
    else:
        ratio = "–"
    measured = ("Measured %s on %s (%d CPUs), %s; Open vSwitch's userspace (netdev) datapath of the lab, the hops as "
                "Debian bookworm LXC containers (wireguard-go, Debian's v2ray), %s. `make bench` (or "
                "`python bench/run.py --only privacy`) regenerates this section; it ends with the chain torn down."
                % (datetime.date.today().isoformat(), platform.node(), os.cpu_count() or 0, platform.platform(),
                   tool_version(["iperf3", "--version"])))
    out = [START_MARK, "## Benchmark 7: privacy chain (opdbus.infra.privacy_router) on the lab", "", measured, "",
           "### Converge", "",
           "`ansible-playbook -i inventory/lab playbooks/site.yml`, wall time, one run each. The first run starts from a lab "
           "without the chain: before it the chain is removed (role `opdbus.infra.privacy_router` with "
           "`privacy_router_state: absent` on `opdbus_full`) and `lab/lab.sh peers-down` stops the lab's outside world, "
           "so site.yml starts the peers, creates the three containers from the `debian` template, installs "
           "their packages, writes their files and starts the hops, then fetches a page through the chain. The re-run "
           "must change nothing (checked from the play recap).", "",
           "| run | wall time | play recap, lab-host |", "|---|--:|---|",
           "| first converge (chain absent) | %.1f s | ok=%d changed=%d |" % (
               first["seconds"], first["recap"]["lab-host"]["ok"], first["recap"]["lab-host"]["changed"]),
           "| idempotent re-run | %.1f s | ok=%d changed=%d |" % (
               rerun["seconds"], rerun["recap"]["lab-host"]["ok"], rerun["recap"]["lab-host"]["changed"]),
           "| re-run / first | %.3f | |" % (rerun["seconds"] / first["seconds"]), "",
           "Tasks that changed in the first converge: %s." % ", ".join("`%s`" % t for t in first["changed_tasks"]), "",
           "Removing the chain again (state absent, then `peers-down`) took %.1f s." % res["teardown_after"], "",
           "### Throughput", "",
           "`iperf3 -c ADDR -t %d -J` (TCP) from the client's namespace to `iperf3 -s` in the www namespace, %d rounds, "
           "the two paths alternating; median (min–max) of the receiver's rate and of the sender's TCP retransmits. "
           "Through the chain: %s (client -> WireGuard -> CT100 -> CT102 XRay/VLESS -> CT101 WARP -> WARP endpoint -> "
           "VPS -> www). Direct: %s (client -> the uplink router -> www). Before measuring, the page through the chain "
           "answered `%s`, the direct one `%s`." % (args.seconds, args.runs, res["paths"]["chain"], res["paths"]["direct"],
                                                    res["fetch"]["chain"], res["fetch"]["direct"]), "",
           "| path | TCP throughput | retransmits (sender) |", "|---|--:|--:|",
           "| through the chain | %s | %s |" % (_rate_cell(chain), _retr_cell(chain)),
           "| direct | %s | %s |" % (_rate_cell(direct), _retr_cell(direct)),
           "| chain / direct | %s | |" % ratio, "",
           "What the figures mean: the chain only carries TCP (CT102's transparent `dokodemo-door` proxy), so only TCP "
           "is measured. Through the chain the client's TCP connection ends at CT102: the retransmits counted are those "
           "of the client's socket on its WireGuard tunnel up to CT102, not of v2ray's connection to the VPS. Every "
           "packet of the chain crosses ovs-br0 (the userspace datapath, on the same 2 cores as the hops) several times: "
           "client WireGuard in on the uplink, CT100 -> CT102, CT102 -> CT101, CT101's WARP tunnel out, and the replies "
           "back; each hop encrypts or decrypts in user space (wireguard-go twice, v2ray once, plus the peers' "
           "wireguard-go and v2ray). The direct path crosses only the uplink router namespace, not the bridge.", "",
           "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


def update_doc(section):
    docsection.replace_section(DOC, SECTION, section)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--runs", type=int, default=3, help="iperf3 rounds per path (default 3)")
    ap.add_argument("--seconds", type=int, default=5, help="iperf3 -t (default 5)")
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        say("bench: the privacy benchmark needs root")
        return 2
    missing = [k for k in ("OPDBUS_LAB_DIR", "OPDBUS_LXC_PATH", "OPDBUS_OVSDB") if not os.environ.get(k)]
    if missing:
        say("bench: no lab (source the lab's env: %s)" % ", ".join(missing))
        return 2
    os.makedirs(WORK, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="privacy-", dir=WORK)
    started = time.monotonic()
    try:
        res = measure(args, Lab(workdir))
    except BenchError as exc:
        say("bench: FAILED: %s" % exc)
        return 1
    elapsed = time.monotonic() - started
    section = render(res, args, elapsed)
    say(section)
    with open(os.path.join(WORK, "results-privacy.json"), "w", encoding="utf-8") as handle:
        json.dump(res, handle, indent=1)
    if not args.no_doc:
        update_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
