# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers of the btrfs_cache tests: the module run directly or through ansible-playbook, oracles.

Not a conftest.py (see btrfs_support.py); the tests import it by name. It holds no tests itself.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys

import yaml

from btrfs_support import REPO, _collections_root, run_btrfs

HERE = os.path.dirname(os.path.abspath(__file__))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
CALLBACKS = os.path.join(os.path.dirname(HERE), "callback_plugins")
MODULE = "opdbus.infra.btrfs_cache"


class AnsibleRun:
    """One ansible-playbook run with the json_results stdout callback (tests/integration/callback_plugins)."""

    def __init__(self, proc):
        self.rc = proc.returncode
        self.output = proc.stdout + proc.stderr
        doc = None
        for line in reversed(proc.stdout.splitlines()):
            if line.startswith('{"plays"'):
                doc = json.loads(line)
                break
        assert doc is not None, "no JSON document from the callback (rc %s):\n%s" % (proc.returncode, self.output)
        self.tasks = [t for play in doc["plays"] for t in play["tasks"]]

    def result(self, name, host="localhost"):
        matches = [t for t in self.tasks if t["task"]["name"] == name]
        assert matches, "no task %r in %s" % (name, [t["task"]["name"] for t in self.tasks])
        return matches[0]["hosts"][host]


def run_module(workdir, check=False, diff=True, **params):
    """The module run directly (python -m ...), as Ansible would run it; its JSON result."""
    params = dict(params)
    params["_ansible_check_mode"] = check
    params["_ansible_diff"] = diff
    path = os.path.join(str(workdir), "args-%d.json" % os.getpid())
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_MODULE_ARGS": params}, handle)
    env = dict(os.environ, PYTHONPATH=_collections_root() + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.modules.btrfs_cache", path],
                          env=env, capture_output=True, text=True, timeout=300, check=False)
    os.unlink(path)
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module output is not JSON: %s %s" % (proc.stdout, proc.stderr)) from None


def ansible_env(workdir, extra=None):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith("ANSIBLE_"))
    env.update({
        "ANSIBLE_CONFIG": os.path.join(str(REPO), "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": _collections_root(),
        "ANSIBLE_STDOUT_CALLBACK": "json_results",
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACKS,
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "HOME": str(workdir),
    })
    env.update(extra or {})
    return env


def playbook(workdir, plays, check=False, diff=False, extra_env=None, inventory=None):
    """Run plays (a list of dicts) with ansible-playbook on localhost; an AnsibleRun."""
    workdir = str(workdir)
    pb = os.path.join(workdir, "pb.yml")
    with open(pb, "w", encoding="utf-8") as handle:
        yaml.safe_dump(plays, handle, sort_keys=False)
    inv = os.path.join(workdir, "inv")
    with open(inv, "w", encoding="utf-8") as handle:
        handle.write(inventory or "localhost ansible_connection=local ansible_python_interpreter=%s\n" % sys.executable)
    cmd = [PLAYBOOK_BIN, "-i", inv, pb] + (["--check"] if check else []) + (["--diff"] if diff else [])
    proc = subprocess.run(cmd, cwd=workdir, env=ansible_env(workdir, extra_env), capture_output=True, text=True,
                          timeout=600, check=False)
    return AnsibleRun(proc)


def local_play(tasks, name="cache"):
    return [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]


def qgroup_row(fs, path):
    """(referenced, exclusive, max_rfer, max_excl) of path's qgroup from ``btrfs qgroup show -re --raw`` (the oracle)."""
    out = run_btrfs("qgroup", "show", "-re", "--raw", fs).stdout
    rel = os.path.relpath(path, fs)
    for line in out.splitlines():
        fields = line.split()
        if len(fields) >= 6 and fields[0].startswith("0/") and fields[5] == rel:
            return fields[1:5]
    raise AssertionError("no qgroup for %s in:\n%s" % (rel, out))


def quotas_on(fs):
    return run_btrfs("qgroup", "show", fs, check=False).returncode == 0


def property_get(path, name, kind=None):
    args = ["property", "get"] + (["-t", kind] if kind else []) + [path, name]
    return run_btrfs(*args).stdout.strip()


def tree(top):
    """Every path below top (relative), to show nothing changed."""
    out = []
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            out.append(os.path.relpath(os.path.join(root, name), top))
    return sorted(out)


def restore_quotas(fs):
    """Call at teardown with the state read before: quotas the test turned on are turned off again."""
    before = quotas_on(fs)

    def restore():
        if not before and quotas_on(fs):
            run_btrfs("quota", "disable", fs, check=False)
    return restore
