# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger callback and command line on real btrfs: subvolume, snapshots per playbook, replication."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import subprocess
import sys
import textwrap

from btrfs_support import REPO, _collections_root, run_btrfs

from ansible_collections.opdbus.infra.plugins.module_utils.btrfs import create_snapshot, delete_subvolume, set_readonly

PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
CANARY = "canary-btrfs-9d41c07e"

PLAYBOOK = textwrap.dedent("""\
    - name: ledger on btrfs
      hosts: all
      connection: local
      gather_facts: false
      tasks:
        - name: say something
          ansible.builtin.debug:
            msg: "run {{ run }} on {{ inventory_hostname }}"
        - name: keep a secret
          ansible.builtin.set_fact:
            hidden: %s
          no_log: true
        - name: a password in text
          ansible.builtin.debug:
            msg: "password=%s"
    """ % (CANARY, CANARY))


def run_playbook(work, ledger_dir, run, extra=None):
    with open(os.path.join(work, "pb.yml"), "w", encoding="utf-8") as handle:
        handle.write(PLAYBOOK)
    with open(os.path.join(work, "inv"), "w", encoding="utf-8") as handle:
        handle.write("a\nb\n[all:vars]\nansible_python_interpreter=%s\n" % sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "OPDBUS_LEDGER"))}
    env.update({"ANSIBLE_COLLECTIONS_PATH": _collections_root(), "ANSIBLE_CALLBACKS_ENABLED": "opdbus.infra.ledger",
                "OPDBUS_LEDGER_DIR": ledger_dir, "HOME": work, "OPDBUS_LEDGER_RETENTION": "last=10"})
    env.update(extra or {})
    proc = subprocess.run([PLAYBOOK_BIN, "-i", "inv", "pb.yml", "-e", "run=%d" % run], cwd=work, env=env,
                          capture_output=True, text=True, timeout=180, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def cli(*args):
    env = dict(os.environ, PYTHONPATH=_collections_root())
    proc = subprocess.run([sys.executable, "-m", "ansible_collections.opdbus.infra.plugins.plugin_utils.ledger"] + list(args),
                          env=env, capture_output=True, text=True, timeout=120, check=False)
    return proc.returncode, proc.stdout, proc.stderr


def all_bytes(top):
    data = b""
    for root, dirs, files in os.walk(top):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                data += handle.read()
    return data


def test_callback_snapshots_and_replication(bdir, replica_dir):
    ledger_dir = os.path.join(bdir, "ledger")
    snaps_dir = ledger_dir + ".snapshots"
    first = run_playbook(bdir, ledger_dir, 1)
    assert "snapshots off" not in first.stdout + first.stderr
    # The ledger directory is its own subvolume (oracle: the btrfs command).
    show = run_btrfs("subvolume", "show", ledger_dir)
    assert "Name:" in show.stdout and not os.path.exists(os.path.join(ledger_dir, "snapshots-off"))
    run_playbook(bdir, ledger_dir, 2)
    snaps = sorted(os.listdir(snaps_dir))
    assert len(snaps) == 2 and all(name.endswith("-playbook") or "-playbook." in name for name in snaps), snaps
    for name in snaps:
        prop = run_btrfs("property", "get", "-ts", os.path.join(snaps_dir, name), "ro")
        assert prop.stdout.strip() == "ro=true"
    # The private key is beside the ledger, in no snapshot.
    assert os.path.exists(ledger_dir + ".key")
    rc, out, err = cli("--ledger", ledger_dir, "--json", "verify", "--snapshots")
    report = json.loads(out)
    assert rc == 0 and report["snapshots_checked"] == 2, out + err
    # Replicate to the other filesystem: first full then incremental; again: nothing to send.
    rc, out, err = cli("--ledger", ledger_dir, "--json", "replicate", os.path.join(replica_dir, "ledger"))
    sent = json.loads(out)["sent"]
    assert rc == 0 and [bool(s["parent"]) for s in sent] == [False, True], out + err
    run_playbook(bdir, ledger_dir, 3)
    rc, out, err = cli("--ledger", ledger_dir, "--json", "replicate", os.path.join(replica_dir, "ledger"))
    sent = json.loads(out)["sent"]
    assert rc == 0 and len(sent) == 1 and sent[0]["parent"] == sorted(os.listdir(snaps_dir))[-2], out + err
    replicas = sorted(os.listdir(os.path.join(replica_dir, "ledger")))
    assert replicas == sorted(os.listdir(snaps_dir))
    # Each replica is a whole ledger that verifies with the same key.
    newest = os.path.join(replica_dir, "ledger", replicas[-1])
    rc, out, err = cli("--ledger", newest, "verify", "--public-key", ledger_dir + ".key.pub")
    assert rc == 0 and "ledger OK" in out, out + err
    # Secrets are in no ledger file, snapshot or replica.
    for top in (ledger_dir, snaps_dir, os.path.join(replica_dir, "ledger")):
        assert CANARY.encode() not in all_bytes(top), top


def test_replaced_snapshot_is_detected(bdir):
    ledger_dir = os.path.join(bdir, "ledger")
    snaps_dir = ledger_dir + ".snapshots"
    run_playbook(bdir, ledger_dir, 1)
    run_playbook(bdir, ledger_dir, 2)
    victim = os.path.join(snaps_dir, sorted(os.listdir(snaps_dir))[0])
    # Forge: a writable copy of the snapshot, one record changed, made read-only, put in its place.
    forged = os.path.join(bdir, "forged")
    create_snapshot(victim, forged, readonly=False)
    seg = os.path.join(forged, "records", "seg-000000.jsonl")
    with open(seg, "rb") as handle:
        data = handle.read()
    with open(seg, "wb") as handle:
        handle.write(data.replace(b"run 1 on a", b"run 9 on a", 1))
    delete_subvolume(victim)
    os.rename(forged, victim)
    set_readonly(victim, True)
    rc, out, err = cli("--ledger", ledger_dir, "verify", "--snapshots")
    assert rc == 1, out + err
    assert os.path.basename(victim) in out
    # The live ledger itself is fine: only the snapshot was replaced.
    rc, out, err = cli("--ledger", ledger_dir, "verify")
    assert rc == 0, out + err


def test_retention_through_the_command_line(bdir):
    ledger_dir = os.path.join(bdir, "ledger")
    run_playbook(bdir, ledger_dir, 1, {"OPDBUS_LEDGER_SNAPSHOT_POLICY": "never"})
    assert not os.path.exists(ledger_dir + ".snapshots")
    for num in range(3):
        rc, out, err = cli("--ledger", ledger_dir, "snapshot", "--reason", "manual%d" % num)
        assert rc == 0, out + err
    rc, out, err = cli("--ledger", ledger_dir, "--json", "snapshot", "--reason", "last", "--retention", "hourly=1,daily=0,weekly=0,quarterly=0")
    result = json.loads(out)
    assert rc == 0 and len(result["removed"]) == 3 and [s["name"] for s in result["snapshots"]] == [result["taken"]["name"]], out
    assert REPO.is_dir()


def test_default_retention_prunes_per_playbook_snapshots_of_the_same_hour(bdir):
    ledger_dir = os.path.join(bdir, "ledger")
    for run in (1, 2, 3):
        run_playbook(bdir, ledger_dir, run, {"OPDBUS_LEDGER_RETENTION": "last=1,hourly=5,daily=5,weekly=5,quarterly=5"})
    snaps = os.listdir(ledger_dir + ".snapshots")
    assert len(snaps) == 1, snaps
    rc, out, err = cli("--ledger", ledger_dir, "verify", "--snapshots")
    assert rc == 0 and "snapshots: 1 checked" in out, out + err
