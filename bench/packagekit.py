# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark 6: opdbus.infra.packagekit (PackageKit over D-Bus) against ansible.builtin.apt.

Same machine, same apt cache, same package set; every playbook runs as
``ansible-playbook -i localhost, -c local`` with the repository's ansible.cfg and the venv's Python
(apt respawns into the system Python for python3-apt, as it does on any host without it):

  check     one task with 20 installed packages, state present: must report changed=false.
  install   one task installing 3 small packages absent here (hello, sl, tree): must report
            changed=true, and dpkg-query must then show all three installed. Between rounds the
            three are purged with dpkg (the oracle), so every round installs them again.

Rounds are interleaved (ours and apt alternate, the order rotating every round); the first round is
a warm-up (it fills the apt archive cache both use) and is not counted. Medians, minima and maxima
go to stdout and to docs/performance.md between this benchmark's markers. ``--runs N`` (default 5).

Needs the lab's PackageKit (``lab/lab.sh up``; DBUS_SYSTEM_BUS_ADDRESS from its env) and root.
Standard library only.
"""

from __future__ import absolute_import, division, print_function

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(REPO, ".bench")
DOC = os.path.join(REPO, "docs", "performance.md")

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import docsection  # noqa: E402  pylint: disable=import-error,wrong-import-position

SECTION = "packagekit"
START_MARK, END_MARK = docsection.markers(SECTION)
CANDIDATES = ("bash", "coreutils", "dpkg", "apt", "tar", "gzip", "grep", "sed", "findutils", "util-linux",
              "procps", "iproute2", "openssl", "ca-certificates", "curl", "git", "make", "rsync", "python3", "dbus",
              "gawk", "diffutils", "less", "xz-utils", "bzip2")
INSTALL = ("hello", "sl", "tree")


class BenchError(Exception):
    pass


def say(msg=""):
    print(msg, flush=True)


def dpkg_installed(names):
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n"] + list(names),
                          capture_output=True, text=True, check=False)
    return sorted(line.split("\t")[0] for line in proc.stdout.splitlines() if line.endswith("\tinstalled"))


def dpkg_known(names):
    proc = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Status}\n"] + list(names),
                          capture_output=True, text=True, check=False)
    return sorted(line.split("\t")[0] for line in proc.stdout.splitlines() if not line.endswith("\tnot-installed"))


def purge(names):
    known = dpkg_known(names)
    if known:
        subprocess.run(["dpkg", "--purge"] + known, capture_output=True, check=True,
                       env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))


def write_playbook(path, module, names):
    args = {"name": list(names), "state": "present"}
    play = [{"hosts": "localhost", "gather_facts": False, "tasks": [{"name": "packages", module: args}]}]
    with open(path, "w") as handle:
        json.dump(play, handle)


class Runner:
    def __init__(self, workdir):
        self.workdir = workdir
        self.env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(REPO, "ansible.cfg"),
                        ANSIBLE_COLLECTIONS_PATH=os.path.join(REPO, ".collections"),
                        ANSIBLE_STDOUT_CALLBACK="json_results", ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                        ANSIBLE_CALLBACK_PLUGINS=os.path.join(REPO, "tests", "integration", "callback_plugins"))
        if self.env.get("DBUS_SYSTEM_BUS_ADDRESS") and not self.env.get("OPDBUS_DBUS_ADDRESS"):
            self.env["OPDBUS_DBUS_ADDRESS"] = self.env["DBUS_SYSTEM_BUS_ADDRESS"]

    def run(self, book):
        cmd = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", "ansible_python_interpreter=%s" % sys.executable, book]
        started = time.monotonic()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self.env, cwd=self.workdir, check=False)
        seconds = time.monotonic() - started
        if proc.returncode != 0:
            raise BenchError("%s failed (rc %d):\n%s%s" % (book, proc.returncode, proc.stdout[-3000:], proc.stderr[-2000:]))
        docs = [line for line in proc.stdout.splitlines() if line.startswith('{"plays"')]
        if not docs:
            raise BenchError("%s: no result from the json_results callback:\n%s" % (book, proc.stdout[-2000:]))
        doc = json.loads(docs[-1])
        result = doc["plays"][0]["tasks"][0]["hosts"]["localhost"]
        return seconds, result


def summary(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "n": len(values)}


def measure(args):
    installed = dpkg_installed(CANDIDATES)
    if len(installed) < 20:
        raise BenchError("fewer than 20 of %s are installed here" % ", ".join(CANDIDATES))
    twenty = [n for n in CANDIDATES if n in installed][:20]
    already = dpkg_known(INSTALL)
    if already:
        raise BenchError("%s already known to dpkg; the install benchmark needs them absent" % ", ".join(already))
    os.makedirs(WORK, exist_ok=True)
    workdir = tempfile.mkdtemp(prefix="packagekit-", dir=WORK)
    books = {}
    for key, module, names in (("ours-check", "opdbus.infra.packagekit", twenty),
                               ("apt-check", "ansible.builtin.apt", twenty),
                               ("ours-install", "opdbus.infra.packagekit", INSTALL),
                               ("apt-install", "ansible.builtin.apt", INSTALL)):
        books[key] = os.path.join(workdir, key + ".yml")
        write_playbook(books[key], module, names)
    runner = Runner(workdir)
    times = dict((k, []) for k in books)
    try:
        for rnd in range(args.runs + 1):
            order = ["ours", "apt"] if rnd % 2 == 0 else ["apt", "ours"]
            for who in order:
                seconds, result = runner.run(books[who + "-check"])
                if result.get("changed"):
                    raise BenchError("%s check of installed packages reported changed: %s" % (who, result))
                if rnd:
                    times[who + "-check"].append(seconds)
                purge(INSTALL)
                seconds, result = runner.run(books[who + "-install"])
                if not result.get("changed") or dpkg_installed(INSTALL) != sorted(INSTALL):
                    raise BenchError("%s install did not install %s (dpkg: %s)" % (who, INSTALL, dpkg_installed(INSTALL)))
                if rnd:
                    times[who + "-install"].append(seconds)
                purge(INSTALL)
            say("round %d%s: %s" % (rnd, " (warm-up)" if rnd == 0 else "", ", ".join(
                "%s %.2fs" % (k, v[-1]) for k, v in sorted(times.items()) if v and rnd)))
    finally:
        purge(INSTALL)
    return {"twenty": twenty, "install": list(INSTALL), "times": times,
            "summary": dict((k, summary(v)) for k, v in times.items())}


def render(res, elapsed):
    s = res["summary"]
    version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "packagekit"], capture_output=True, text=True,
                             check=False).stdout
    rows = []
    for key, label in (("check", "idempotent check, 20 installed packages (one task)"),
                       ("install", "install %s (one task, dependencies included)" % ", ".join(res["install"]))):
        ours, apt = s["ours-" + key], s["apt-" + key]
        rows.append("| %s | %.2f s (%.2f–%.2f) | %.2f s (%.2f–%.2f) | %.2f |" % (
            label, ours["median"], ours["min"], ours["max"], apt["median"], apt["min"], apt["max"],
            ours["median"] / apt["median"]))
    measured = ("Measured %s on %s (%d CPUs), %s, PackageKit %s (apt backend) on the lab's bus. Wall time of one "
                "`ansible-playbook -i localhost, -c local` run with one task, median of %d interleaved rounds after a "
                "warm-up (min–max in brackets). `make bench` (or `python bench/run.py --only packagekit`) regenerates "
                "this section." % (datetime.date.today().isoformat(), platform.node(), os.cpu_count() or 0,
                                   platform.platform(), version, s["ours-check"]["n"]))
    packages = ("The 20 packages: %s. Between install rounds the three are purged with dpkg; both modules find the "
                "packages in the same apt archive cache after the warm-up." % ", ".join(res["twenty"]))
    what = ("What each does: ours runs one PackageKit `Resolve` for the check; the install is a `Resolve`, a "
            "simulated `InstallPackages` (it names the versions being replaced, and is the whole of check mode) and "
            "the real `InstallPackages`; each PackageKit transaction of the apt backend opens the apt cache afresh. "
            "ansible.builtin.apt respawns into the system Python for python3-apt, opens the cache once and runs "
            "`apt-get install`.")
    out = [START_MARK, "## Benchmark 6: packagekit (PackageKit over D-Bus) against ansible.builtin.apt", "", measured, "",
           "| | opdbus.infra.packagekit | ansible.builtin.apt | ours / apt |", "|---|--:|--:|--:|"]
    out += rows
    out += ["", packages, "", what, "", "The whole benchmark took %.0f s." % elapsed, END_MARK]
    return "\n".join(out) + "\n"


def update_doc(section):
    docsection.replace_section(DOC, SECTION, section)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n", maxsplit=1)[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--no-doc", action="store_true")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        say("bench: the packagekit benchmark needs root")
        return 2
    if not (os.environ.get("OPDBUS_DBUS_ADDRESS") or os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")):
        say("bench: no lab D-Bus (source the lab's env: DBUS_SYSTEM_BUS_ADDRESS)")
        return 2
    started = time.monotonic()
    try:
        res = measure(args)
    except BenchError as exc:
        say("bench: %s" % exc)
        return 1
    elapsed = time.monotonic() - started
    section = render(res, elapsed)
    say(section)
    with open(os.path.join(WORK, "results-packagekit.json"), "w") as handle:
        json.dump(res, handle, indent=1)
    if not args.no_doc:
        update_doc(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
