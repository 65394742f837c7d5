# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the dbus_introspect / dbus_call tests: a private dbus-daemon with the echo service
and python-dbusmock templates on it, and the two ways of running a module (as Ansible runs one
module - a JSON args file - and through ansible-playbook)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time

from private_bus import CONFIG, PrivateBus, dbus_daemon

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
COLLECTIONS = os.path.join(REPO, ".collections")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SYSTEM_PYTHON = "/usr/bin/python3"

ECHO = "org.opdbus.Test"

# template: (bus name, whether it imports gi - PyGObject - which the venv does not have)
TEMPLATES = {
    "upower": ("org.freedesktop.UPower", False),
    "timedated": ("org.freedesktop.timedate1", False),
    "networkmanager": ("org.freedesktop.NetworkManager", False),
    "logind": ("org.freedesktop.login1", True),
}


def dbusmock_available():
    return importlib.util.find_spec("dbusmock") is not None


def python_with_gi():
    """An interpreter that has PyGObject and dbus-python, for the templates that import gi."""
    for python in (sys.executable, SYSTEM_PYTHON):
        if os.access(python, os.X_OK) and subprocess.call([python, "-c", "import gi, dbus"],
                                                          stderr=subprocess.DEVNULL) == 0:
            return python
    return None


def _clean_env():
    env = dict(os.environ)
    for name in ("DBUS_SYSTEM_BUS_ADDRESS", "DBUS_SESSION_BUS_ADDRESS", "OPDBUS_DBUS_ADDRESS"):
        env.pop(name, None)
    return env


class Services:
    """A private dbus-daemon with the echo service and dbusmock templates; stopped by PID."""

    def __init__(self, templates=()):
        self.templates = templates
        self.bus = None
        self.procs = []
        self.dirs = []
        self.skipped = {}

    def start(self):
        self.bus = PrivateBus().start()
        env = _clean_env()
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        echo = subprocess.Popen([sys.executable, os.path.join(HERE, "echo_service.py"), self.bus.address],
                                stdout=subprocess.PIPE, env=env)
        self.procs.append(echo)
        if echo.stdout.readline().strip() != b"ready":
            raise RuntimeError("the echo service did not start")
        for template in self.templates:
            self._start_mock(template)
        return self

    def _start_mock(self, template):
        name, needs_gi = TEMPLATES[template]
        python = sys.executable
        env = _clean_env()
        env.update(DBUS_SYSTEM_BUS_ADDRESS=self.bus.address, DBUS_SESSION_BUS_ADDRESS=self.bus.address)
        if needs_gi:
            python = python_with_gi()
            if python is None:
                self.skipped[template] = "no Python here has both PyGObject (gi) and dbus-python"
                return
            if python != sys.executable:
                # only the dbusmock package of the venv, not the venv's whole site-packages
                spec = importlib.util.find_spec("dbusmock")
                link_dir = tempfile.mkdtemp(prefix="opdbus-dbusmock-")
                self.dirs.append(link_dir)
                os.symlink(os.path.dirname(spec.origin), os.path.join(link_dir, "dbusmock"))
                env["PYTHONPATH"] = link_dir
        proc = subprocess.Popen([python, "-m", "dbusmock", "--template", template], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.procs.append(proc)
        self.wait_for(name, proc)

    def wait_for(self, name, proc):
        import dbus  # pylint: disable=import-outside-toplevel
        conn = dbus.bus.BusConnection(self.bus.address)
        try:
            deadline = time.monotonic() + 60
            while not conn.name_has_owner(name):
                if proc.poll() is not None:
                    raise RuntimeError("dbusmock for %s exited: %s" % (name, proc.stderr.read().decode(errors="replace")))
                if time.monotonic() > deadline:
                    raise RuntimeError("%s did not appear on the bus" % name)
                time.sleep(0.05)
        finally:
            conn.close()

    def stop(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if self.bus is not None:
            self.bus.stop()
        for path in self.dirs:
            subprocess.call(["rm", "-rf", path])


class ActivatingBus(PrivateBus):
    """A private dbus-daemon that can start ``template`` (python-dbusmock) on demand: bus activation."""

    def __init__(self, name, template):
        super(ActivatingBus, self).__init__()
        self.name = name
        self.template = template

    def start(self):
        services = os.path.join(self.dir, "services")
        os.mkdir(services)
        script = os.path.join(self.dir, "start-%s.sh" % self.template)
        with open(script, "w") as handle:
            # the daemon gives its address as DBUS_STARTER_ADDRESS; dbusmock --session reads the session variable
            handle.write('#!/bin/sh\nDBUS_SESSION_BUS_ADDRESS="$DBUS_STARTER_ADDRESS" exec %s -m dbusmock --session '
                         '--template %s\n' % (sys.executable, self.template))
        os.chmod(script, 0o755)
        with open(os.path.join(services, "%s.service" % self.name), "w") as handle:
            handle.write("[D-BUS Service]\nName=%s\nExec=%s\n" % (self.name, script))
        config = os.path.join(self.dir, "bus.conf")
        with open(config, "w") as handle:
            handle.write(CONFIG.format(socket=self.socket).replace(
                "<auth>EXTERNAL</auth>", "<auth>EXTERNAL</auth>\n  <servicedir>%s</servicedir>" % services))
        env = _clean_env()
        env["PYTHONPATH"] = os.pathsep.join(sys.path)
        self.proc = subprocess.Popen([dbus_daemon(), "--config-file=%s" % config, "--nofork", "--nopidfile"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        deadline = time.monotonic() + 10
        while not os.path.exists(self.socket):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("dbus-daemon did not start: %s" % self.proc.stderr.read())
            time.sleep(0.02)
        return self

    def stop(self):
        """The activated service (started by the daemon, not by us) is stopped by its PID first."""
        import dbus  # pylint: disable=import-outside-toplevel
        try:
            conn = dbus.bus.BusConnection(self.address)
            try:
                if conn.name_has_owner(self.name):
                    pid = int(conn.call_blocking("org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                                 "GetConnectionUnixProcessID", "s", (self.name,)))
                    os.kill(pid, 15)
            finally:
                conn.close()
        except (dbus.exceptions.DBusException, OSError):
            pass
        super(ActivatingBus, self).stop()


def run_module(module, params, check=False, diff=False, env_extra=None, workdir=None):
    """One module run as Ansible runs it (args file), with this Python; its JSON result."""
    params = dict(params)
    params["_ansible_check_mode"] = check
    params["_ansible_diff"] = diff
    workdir = workdir or tempfile.mkdtemp(prefix="opdbus-mod-")
    path = os.path.join(workdir, "args.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    env = _clean_env()
    env.update(env_extra or {})
    env["PYTHONPATH"] = os.pathsep.join([COLLECTIONS] + sys.path)
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.modules." + module, path],
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr)) from None


def run_playbook(workdir, tasks, env_extra=None, check=False, diff=False):
    """``tasks`` (YAML text) in one play on localhost with this Python; the finished process.

    Tasks can save what they registered with ``ansible.builtin.copy`` into ``workdir`` for the test
    to read (ansible.posix's json callback is not installed here)."""
    workdir = str(workdir)
    playbook = "- hosts: local\n  connection: local\n  gather_facts: false\n  tasks:\n" + textwrap.indent(
        textwrap.dedent(tasks), "    ")
    with open(os.path.join(workdir, "pb.yml"), "w", encoding="utf-8") as handle:
        handle.write(playbook)
    with open(os.path.join(workdir, "inv"), "w", encoding="utf-8") as handle:
        handle.write("[local]\nlocalhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    env = _clean_env()
    for name in list(env):
        if name.startswith("ANSIBLE_"):
            del env[name]
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_NOCOLOR": "1",
        "HOME": workdir,
    })
    env.update(env_extra or {})
    cmd = [PLAYBOOK_BIN, "-i", "inv", "pb.yml"] + (["--check"] if check else []) + (["--diff"] if diff else [])
    return subprocess.run(cmd, cwd=workdir, env=env, capture_output=True, text=True, timeout=300, check=False)


def saved(workdir, name):
    with open(os.path.join(str(workdir), name), encoding="utf-8") as handle:
        return json.load(handle)
