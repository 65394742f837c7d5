# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 4: the liblxc backend of lxc_container against liblxc's own tools.

In a container directory of its own (``.bench/lxc``, on the checkout's filesystem), with N busybox
containers (default 200):

  create   N containers from the busybox template through ``LiblxcBackend.create`` (what
           ``opdbus.infra.lxc_container`` does for ``template: busybox``): seconds per create. The
           reference: ``lxc-create -t busybox`` for a sample of S containers (default 20), made and
           destroyed in the same directory.
  list     what ``opdbus.infra.lxc_container_info`` gathers for all N (list, then each container's
           state and settings; addresses of the running ones), in one process, against
           ``lxc-ls --fancy`` (name, state, autostart, groups, IPv4, IPv6) — with all N stopped, and
           again with R of them running (default 10). Median of 7 timings each.
  module   the same listing end to end: one ``opdbus.infra.lxc_container_info`` task in
           ``ansible-playbook -i localhost, -c local`` (the module respawns into the system Python for
           python3-lxc), median of 3, with R running.

Checked, or the benchmark fails: both listings name the same N containers with the same states.
The containers are destroyed at the end (and on failure). The lxc binding is the system's
python3-lxc, imported from /usr/lib/python3/dist-packages (the venv is built on that interpreter).

Results go to stdout and to docs/performance.md between this benchmark's markers; raw figures to
``.bench/results-lxc.json``. ``--quick``: N=20, S=5, R=3.
"""

from __future__ import absolute_import, division, print_function

import argparse
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

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, ".bench")
LXCPATH = os.path.join(WORK, "lxc")
DOC = os.path.join(REPO, "docs", "performance.md")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "lxc"
START_MARK, END_MARK = docsection.markers(SECTION)
SYSTEM_SITE = "/usr/lib/python3/dist-packages"
PREFIX = "bb"


class BenchError(Exception):
    pass


def say(msg=""):
    print(msg, flush=True)


def import_binding():
    try:
        import lxc  # pylint: disable=import-outside-toplevel
        return lxc
    except ImportError:
        pass
    sys.path.insert(0, SYSTEM_SITE)
    try:
        import lxc  # pylint: disable=import-outside-toplevel,reimported
        return lxc
    except ImportError as exc:
        raise BenchError("python3-lxc is not importable (%s); install the Debian package python3-lxc" % exc) from None
    finally:
        sys.path.remove(SYSTEM_SITE)


def backend(binding):
    sys.path.insert(0, os.path.join(REPO, ".collections"))
    from ansible_collections.opdbus.infra.plugins.module_utils.lxc.liblxc import LiblxcBackend  # pylint: disable=import-outside-toplevel
    return LiblxcBackend(LXCPATH, lxc_module=binding)


def tool(*args, check=True):
    proc = subprocess.run(list(args), capture_output=True, text=True, timeout=300, check=False)
    if check and proc.returncode != 0:
        raise BenchError("%s failed: %s" % (" ".join(args), proc.stderr.strip()))
    return proc


def wipe(binding):
    if not os.path.isdir(LXCPATH):
        return
    for name in binding.list_containers(config_path=LXCPATH):
        tool("lxc-stop", "-P", LXCPATH, "-n", name, "-k", check=False)
        tool("lxc-destroy", "-P", LXCPATH, "-n", name, "-f", check=False)
    shutil.rmtree(LXCPATH, ignore_errors=True)


def median_of(func, repeats):
    times = []
    result = None
    for num in range(repeats):
        started = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - started)
        del num
    return statistics.median(times), min(times), max(times), result


def our_listing(back):
    out = {}
    for entry in back.list():
        name = entry["name"]
        state = back.state(name)
        config = back.read(name)
        addresses = back.addresses(name) if state == "running" else {}
        out[name] = (state, config["hostname"], addresses)
    return out


def peer_listing():
    proc = tool("lxc-ls", "-P", LXCPATH, "--fancy", "--fancy-format", "name,state,autostart,groups,ipv4,ipv6")
    out = {}
    for line in proc.stdout.splitlines()[1:]:
        parts = line.split()
        if parts:
            out[parts[0]] = parts[1].lower()
    return out


def module_listing(running):
    work = tempfile.mkdtemp(prefix="opdbus-bench-lxc-")
    playbook = os.path.join(work, "list.yml")
    with open(playbook, "w", encoding="utf-8") as handle:
        handle.write("- hosts: localhost\n  gather_facts: false\n  tasks:\n    - name: list\n"
                     "      opdbus.infra.lxc_container_info:\n        lxcpath: %s\n      register: listed\n"
                     "    - name: count\n      ansible.builtin.assert:\n        that:\n"
                     "          - listed.containers | length > 0\n"
                     "          - (listed.containers | selectattr('state', 'equalto', 'running') | list | length) == %d\n"
                     % (LXCPATH, running))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
               ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"))
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
           "-e", "ansible_python_interpreter=%s" % sys.executable, playbook]

    def once():
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
        if proc.returncode != 0:
            raise BenchError("lxc_container_info run failed: %s %s" % (proc.stdout[-2000:], proc.stderr[-2000:]))
    try:
        return median_of(once, 3)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(args):
    binding = import_binding()
    wipe(binding)
    os.makedirs(LXCPATH, mode=0o700)
    back = backend(binding)
    fs = tool("stat", "-f", "-c", "%T", LXCPATH).stdout.strip()
    res = {"n": args.count, "sample": args.sample, "running": args.running, "fs": fs}
    try:
        say("lxc benchmark: %d busybox containers in %s (%s)" % (args.count, os.path.relpath(LXCPATH, REPO), fs))
        # peer create sample first (made and destroyed), then ours
        peer_times = []
        for num in range(args.sample):
            name = "peer%03d" % num
            started = time.perf_counter()
            tool("lxc-create", "-P", LXCPATH, "-n", name, "-t", "busybox")
            peer_times.append(time.perf_counter() - started)
            tool("lxc-destroy", "-P", LXCPATH, "-n", name, "-f")
        ours = []
        for num in range(args.count):
            name = "%s%03d" % (PREFIX, num)
            started = time.perf_counter()
            back.create({"name": name, "template": "busybox", "cores": 1, "memory_mb": 64}, timeout=120)
            ours.append(time.perf_counter() - started)
        res["create"] = {"ours": {"median": statistics.median(ours), "mean": statistics.mean(ours), "total": sum(ours)},
                         "peer": {"median": statistics.median(peer_times), "mean": statistics.mean(peer_times)}}
        say("create: ours %.3f s median (%.0f s for %d); lxc-create -t busybox %.3f s median (sample of %d)"
            % (res["create"]["ours"]["median"], sum(ours), args.count, res["create"]["peer"]["median"], args.sample))
        for phase, running in (("stopped", 0), ("running", args.running)):
            if running:
                for num in range(running):
                    back.start("%s%03d" % (PREFIX, num), timeout=60)
            mine = median_of(lambda: our_listing(back), 7)
            theirs = median_of(peer_listing, 7)
            a, b = mine[3], theirs[3]
            if sorted(a) != sorted(b) or any(a[name][0] != b[name] for name in a):
                raise BenchError("the listings disagree: ours %s, lxc-ls %s" % (sorted(a.items())[:3], sorted(b.items())[:3]))
            if sum(1 for v in a.values() if v[0] == "running") != running:
                raise BenchError("expected %d running containers" % running)
            res["list_%s" % phase] = {"ours": mine[:3], "peer": theirs[:3], "containers": len(a)}
            say("list (%s, %d running): ours %.1f ms, lxc-ls --fancy %.1f ms, ours/peer %.2f"
                % (phase, running, mine[0] * 1e3, theirs[0] * 1e3, mine[0] / theirs[0]))
        res["module"] = module_listing(args.running)[:3]
        say("lxc_container_info through ansible-playbook (%d running): %.2f s" % (args.running, res["module"][0]))
    finally:
        wipe(binding)
    return res


def render(res, args, elapsed):
    c, ls, lr = res["create"], res["list_stopped"], res["list_running"]
    out = [START_MARK, "## Benchmark 4: lxc_container (liblxc) against liblxc's tools", "",
           "Measured %s on %s (%d CPUs), %s, lxc %s; container directory on %s. `make bench` (or "
           "`python bench/containers.py`) regenerates this section." % (
               datetime.date.today().isoformat(), platform.node(), os.cpu_count() or 0, platform.platform(),
               tool("lxc-create", "--version", check=False).stdout.strip(), res["fs"]), "",
           "| | ours (LiblxcBackend) | liblxc's tool | ours / tool |", "|---|--:|--:|--:|",
           "| create one busybox container (median) | %.3f s | %.3f s (`lxc-create -t busybox`, %d made) | %.2f |" % (
               c["ours"]["median"], c["peer"]["median"], res["sample"], c["ours"]["median"] / c["peer"]["median"]),
           "| list %d containers, all stopped (median of 7) | %.1f ms | %.1f ms (`lxc-ls --fancy`) | %.2f |" % (
               ls["containers"], ls["ours"][0] * 1e3, ls["peer"][0] * 1e3, ls["ours"][0] / ls["peer"][0]),
           "| list %d containers, %d running (median of 7) | %.1f ms | %.1f ms (`lxc-ls --fancy`) | %.2f |" % (
               lr["containers"], res["running"], lr["ours"][0] * 1e3, lr["peer"][0] * 1e3, lr["ours"][0] / lr["peer"][0]),
           "", "All %d creates through the backend took %.0f s. One `opdbus.infra.lxc_container_info` task listing them "
           "through `ansible-playbook` (respawning into the system Python for python3-lxc) took %.2f s (median of 3)."
           % (res["n"], c["ours"]["total"], res["module"][0]), "",
           "What each listing does: ours lists the directory, then reads every container's state and full settings "
           "(its config file and opdbus.json) and the addresses of the running ones — what the info module returns; "
           "`lxc-ls --fancy` prints name, state, autostart, groups and the addresses. Both listings were checked to "
           "name the same containers with the same states.", "",
           "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


def update_doc(section):
    docsection.replace_section(DOC, SECTION, section)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--sample", type=int, default=20)
    ap.add_argument("--running", type=int, default=10)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--runs", help="accepted for bench/run.py; this benchmark has its own repeat counts")
    args = ap.parse_args(argv)
    if args.quick:
        args.count, args.sample, args.running = 20, 5, 3
    if os.geteuid() != 0:
        say("bench: the lxc benchmark needs root")
        return 2
    started = time.monotonic()
    try:
        res = run(args)
    except BenchError as exc:
        say("bench: FAILED: %s" % exc)
        return 1
    elapsed = time.monotonic() - started
    os.makedirs(WORK, exist_ok=True)
    with open(os.path.join(WORK, "results-lxc.json"), "w", encoding="utf-8") as handle:
        json.dump(res, handle, indent=1)
    if not args.no_doc and not args.quick:
        update_doc(render(res, args, elapsed))
        say("wrote %s (section %s)" % (os.path.relpath(DOC, REPO), SECTION))
    say("total %.0f s" % elapsed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
