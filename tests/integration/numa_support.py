# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fixtures for the numa suite (tests/integration/numa): one Debian bookworm container with systemd
as PID 1 for the whole session, where the modules run through the opdbus.infra.lxc connection.

The container is made from the debian template (the debootstrap cache makes that ~20 s) in the
lab's lxcpath, without a network of its own (only ``lo``). Python and dbus-python are installed in it
with apt from deb.debian.org: apt runs attached to the container's mount, PID, UTS and IPC
namespaces but in the host's network namespace (``lxc-attach -s``), so the packages are the real
Debian packages, installed by the container's own dpkg, without giving the container a network.
The security line the template writes (``bookworm/updates``, a suite that no longer exists) is
corrected first. ``dbus`` is installed too but the bus daemon is stopped at first: the tests use
systemd's private socket, then start the bus and use it.

Oracles: ``systemctl`` and ``cat /proc/...`` inside the container (``lxc-attach``), and the drop-in
files seen from the host through the container's rootfs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from btrfs_support import REPO  # importing it also makes the collection importable
from lxc_support import force_remove

HERE = Path(__file__).resolve().parent
PACKAGES = ["python3", "python3-dbus", "dbus"]


class NumaContainer:
    """The container, commands in it, and playbooks run against it."""

    def __init__(self, name, lxcpath, workdir):
        self.name = name
        self.lxcpath = lxcpath
        self.workdir = Path(workdir)
        self.rootfs = Path(lxcpath) / name / "rootfs"
        self.timings = {}

    def sh(self, script, check=True, timeout=120, host_net=False):
        """``sh -c script`` in the container (clean environment); its CompletedProcess."""
        cmd = ["lxc-attach", "-P", self.lxcpath, "-n", self.name, "--clear-env",
               "--set-var", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "--set-var", "LANG=C.UTF-8"]
        if host_net:
            cmd += ["-s", "MOUNT|PID|UTSNAME|IPC"]
        cmd += ["--", "sh", "-c", script]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if check:
            assert proc.returncode == 0, "in %s: %s\nrc %d\n%s%s" % (self.name, script, proc.returncode,
                                                                     proc.stdout, proc.stderr)
        return proc

    def out(self, script):
        return self.sh(script).stdout.strip()

    def prop(self, unit, name):
        """``systemctl show -P name unit`` - systemctl as the oracle of systemd's view."""
        return self.out("systemctl show -P %s %s" % (name, unit))

    def proc_status(self, unit):
        """(MainPID, {Cpus_allowed_list, Mems_allowed_list}, numa_maps policies as {policy: count}) by cat."""
        pid = int(self.prop(unit, "MainPID"))
        assert pid > 0, "%s has no main process" % unit
        # A Type=simple job is done at fork: wait until the child runs the service's program, not systemd's.
        self.sh('i=0; while [ "$(readlink /proc/%d/exe)" = "$(readlink /proc/1/exe)" ] && [ $i -lt 500 ]; do '
                'sleep 0.02; i=$((i+1)); done' % pid)
        status = {}
        for line in self.out("cat /proc/%d/status" % pid).splitlines():
            key, _sep, value = line.partition(":")
            if key in ("Cpus_allowed_list", "Mems_allowed_list"):
                status[key] = value.strip()
        counts = {}
        for line in self.out("cat /proc/%d/numa_maps" % pid).splitlines():
            words = line.split()
            counts[words[1]] = counts.get(words[1], 0) + 1
        return pid, status, counts

    def make_service(self, unit, start=True):
        """A simple service (sleep) in /etc/systemd/system, started."""
        path = self.rootfs / "etc" / "systemd" / "system" / unit
        path.write_text("[Unit]\nDescription=opdbus numa test\n[Service]\nExecStart=/bin/sleep infinity\n")
        self.sh("systemctl daemon-reload" + (" && systemctl start %s" % unit if start else ""))

    def remove_service(self, unit):
        self.sh("systemctl stop %s; rm -rf /etc/systemd/system/%s /etc/systemd/system/%s.d "
                "/run/systemd/system.control/%s.d; systemctl daemon-reload" % (unit, unit, unit, unit), check=False)

    def playbook(self, tasks, check=False, diff=False, timeout=300):
        """Run ``tasks`` on the container through the opdbus.infra.lxc connection; the parsed results.

        Returns (rc, [result of each task], raw output).
        """
        plays = [{"name": "numa", "hosts": self.name, "gather_facts": False, "tasks": tasks}]
        handle, path = tempfile_in(self.workdir, ".yml")
        with os.fdopen(handle, "w") as fh:
            fh.write(json.dumps(plays, indent=1))
        inventory = {"all": {"hosts": {self.name: {
            "ansible_connection": "opdbus.infra.lxc", "ansible_lxc_path": self.lxcpath,
            "ansible_python_interpreter": "/usr/bin/python3"}}}}
        handle, inv = tempfile_in(self.workdir, ".json")
        with os.fdopen(handle, "w") as fh:
            fh.write(json.dumps(inventory))
        env = dict(os.environ)
        env.update({
            "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "json_results",
            "ANSIBLE_CALLBACK_PLUGINS": str(HERE / "callback_plugins"),
            "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".collections"),
        })
        for key in ("DBUS_SYSTEM_BUS_ADDRESS", "OPDBUS_DBUS_ADDRESS"):
            env.pop(key, None)
        cmd = [sys.executable, "-m", "ansible", "playbook", "-i", inv, path]
        if check:
            cmd.append("--check")
        if diff:
            cmd.append("--diff")
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=str(REPO), check=False)
        doc = None
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith('{"plays"'):
                doc = json.loads(line)
                break
        assert doc is not None, "no JSON from the callback (rc %d):\n%s\n%s" % (proc.returncode, proc.stdout, proc.stderr)
        results = [task["hosts"][self.name] for play in doc["plays"] for task in play["tasks"]]
        for res in results:
            assert "exception" not in res and "module_stderr" not in res, "the module crashed: %s" % json.dumps(res)
        return proc.returncode, results, proc.stdout + proc.stderr


def tempfile_in(directory, suffix):
    import tempfile  # pylint: disable=import-outside-toplevel
    return tempfile.mkstemp(suffix=suffix, dir=str(directory))


@pytest.fixture(scope="session")
def numa_ct(lxc_backend, lxcpath, tmp_path_factory):
    """The session's container, running, with python3, python3-dbus and dbus (the bus daemon stopped)."""
    name = "opdbus-t-numa-%s" % secrets.token_hex(3)
    ct = NumaContainer(name, lxcpath, tmp_path_factory.mktemp("numa"))
    try:
        started = time.monotonic()
        lxc_backend.create({"name": name, "template": "debian", "network": []}, timeout=1200)
        lxc_backend.start(name, timeout=120)
        ct.timings["create_and_start"] = time.monotonic() - started
        state = ""
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            state = ct.sh("systemctl is-system-running --wait", check=False, timeout=130).stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(1)
        assert state in ("running", "degraded"), "systemd in %s did not finish booting: %s" % (name, state)
        started = time.monotonic()
        ct.sh("sed -i 's#bookworm/updates#bookworm-security#' /etc/apt/sources.list && "
              "apt-get -q update && DEBIAN_FRONTEND=noninteractive apt-get -q install -y --no-install-recommends %s"
              % " ".join(PACKAGES), host_net=True, timeout=900)
        ct.timings["apt"] = time.monotonic() - started
        ct.sh("systemctl stop dbus.socket dbus.service; true")
        print("\nnuma container %s: created and booted in %.1fs, apt install %s in %.1fs" % (
            name, ct.timings["create_and_start"], " ".join(PACKAGES), ct.timings["apt"]))
        yield ct
    finally:
        force_remove(lxcpath, name)
