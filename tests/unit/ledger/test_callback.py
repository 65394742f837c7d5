# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The ledger callback in real ansible-playbook runs on the local controller."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.redact import MASK, NO_LOG_MARKER, Redactor
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.verify import verify

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
COLLECTIONS = os.path.join(REPO, ".collections")
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

CANARIES = {
    "nolog": "canary-nolog-7f3a9c21",
    "password": "canary-pass-5be81d0e",
    "wgkey": "Y2FuYXJ5LXdnLWtleS1kOGU0YWIwMTIzNDU2Nzg5YWI=",
    "pem": "canary-pem-c0ffee99",
    "token": "canary-token-41d2e8aa",
    "itemnolog": "canary-item-0b9e77f1",
}

PLAYBOOK = textwrap.dedent("""\
    - name: ledger first play
      hosts: local
      connection: local
      gather_facts: false
      roles:
        - probe
      tasks:
        - name: plain command
          ansible.builtin.command: echo hello
          changed_when: false
        - name: changed debug carrying secrets in text
          ansible.builtin.debug:
            msg: "login with password={password} and [Interface] PrivateKey = {wgkey}"
          changed_when: true
        - name: secret under a key
          ansible.builtin.set_fact:
            api_token: "{token}"
            pem_blob: "-----BEGIN PRIVATE KEY-----\\nMIIE{pem}\\n-----END PRIVATE KEY-----"
        - name: no_log task
          ansible.builtin.set_fact:
            hidden: "{nolog}"
          no_log: true
        - name: loop with one no_log item
          ansible.builtin.debug:
            msg: "item {{{{ item }}}}"
          loop: [a, b, c]
        - name: loop item marked no_log
          ansible.builtin.set_fact:
            x: "{{{{ item }}}}"
          loop: ["{itemnolog}"]
          no_log: "{{{{ item is match('canary') }}}}"
        - name: skipped task
          ansible.builtin.debug:
            msg: never
          when: false
        - name: failing but ignored
          ansible.builtin.fail:
            msg: expected failure
          ignore_errors: true

    - name: ledger second play
      hosts: all
      gather_facts: false
      tasks:
        - name: ping everyone
          ansible.builtin.ping:
        - name: fail on one host
          ansible.builtin.fail:
            msg: host two fails
          when: inventory_hostname == 'h2'
    """).format(**CANARIES)

ROLE_TASKS = textwrap.dedent("""\
    - name: role task
      ansible.builtin.debug:
        msg: from the role
    """)

INVENTORY = textwrap.dedent("""\
    [local]
    h1
    h2
    [local:vars]
    ansible_connection=local
    ansible_python_interpreter={python}
    [remote]
    gone ansible_connection=ssh ansible_host=127.0.0.1 ansible_port=1 ansible_ssh_common_args='-o ConnectTimeout=3'
    """).format(python=sys.executable)

RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)\s+skipped=(\d+)\s+rescued=(\d+)\s+ignored=(\d+)",
                      re.MULTILINE)


def run_playbook(workdir, ledger_dir, extra_env=None, playbook=PLAYBOOK, timeout=180):
    workdir = str(workdir)
    os.makedirs(os.path.join(workdir, "roles", "probe", "tasks"), exist_ok=True)
    with open(os.path.join(workdir, "roles", "probe", "tasks", "main.yml"), "w", encoding="utf-8") as handle:
        handle.write(ROLE_TASKS)
    with open(os.path.join(workdir, "pb.yml"), "w", encoding="utf-8") as handle:
        handle.write(playbook)
    with open(os.path.join(workdir, "inv"), "w", encoding="utf-8") as handle:
        handle.write(INVENTORY)
    env = dict(os.environ)
    for name in list(env):
        if name.startswith(("ANSIBLE_", "OPDBUS_LEDGER")):
            del env[name]
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS,
        "ANSIBLE_CALLBACKS_ENABLED": "opdbus.infra.ledger",
        "ANSIBLE_ROLES_PATH": os.path.join(workdir, "roles"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "OPDBUS_LEDGER_DIR": str(ledger_dir),
        "OPDBUS_LEDGER_EMBEDDER": "hashing",
        "HOME": workdir,
    })
    env.update(extra_env or {})
    proc = subprocess.run([PLAYBOOK_BIN, "-i", "inv", "pb.yml"], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    return proc


def recap(stdout):
    out = {}
    for match in RECAP_RE.finditer(stdout):
        names = ("ok", "changed", "unreachable", "failed", "skipped", "rescued", "ignored")
        out[match.group(1)] = dict(zip(names, (int(g) for g in match.groups()[1:])))
    return out


def all_bytes(path):
    data = b""
    for root, dirs, files in os.walk(path):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                data += handle.read()
    return data


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    work = tmp_path_factory.mktemp("cb")
    ledger_dir = work / "ledger"
    proc = run_playbook(work, ledger_dir)
    assert proc.returncode == 4 or proc.returncode == 2, proc.stdout + proc.stderr  # h2 failed, 'gone' unreachable
    with Ledger(str(ledger_dir), readonly=True) as ledger:
        records = list(ledger.records())
    return work, ledger_dir, proc, records


def test_counts_match_ansible_stats(recorded):
    work, ledger_dir, proc, records = recorded
    stats = recap(proc.stdout)
    assert set(stats) == {"h1", "h2", "gone"}, proc.stdout
    for host, want in stats.items():
        mine = [r for r in records if r["kind"] == "task" and r["host"] == host]
        got = {
            "ok": sum(1 for r in mine if r["status"] in ("ok", "changed") or (r["status"] == "failed" and r["result"].get("ignored"))),
            "changed": sum(1 for r in mine if r["status"] == "changed"),
            "unreachable": sum(1 for r in mine if r["status"] == "unreachable"),
            "failed": sum(1 for r in mine if r["status"] == "failed" and not r["result"].get("ignored")),
            "skipped": sum(1 for r in mine if r["status"] == "skipped"),
            "rescued": 0,
            "ignored": sum(1 for r in mine if r["status"] == "failed" and r["result"].get("ignored")),
        }
        assert got == want, (host, got, want)
    kinds = [r["kind"] for r in records]
    assert kinds[0] == "playbook" and kinds[-1] == "stats"
    assert kinds.count("play") == 2
    stats_rec = records[-1]["result"]["hosts"]
    assert stats_rec["h2"]["failures"] == 1 and stats_rec["gone"]["unreachable"] == 1


def test_record_fields(recorded):
    records = recorded[3]
    by_task = {}
    for rec in records:
        if rec["kind"] == "task":
            by_task.setdefault(rec["task"], []).append(rec)
    role = by_task["probe : role task"] if "probe : role task" in by_task else by_task["role task"]
    assert role[0]["role"] == "probe" and role[0]["module"] == "ansible.builtin.debug"
    cmd = by_task["plain command"][0]
    assert cmd["module"] == "ansible.builtin.command" and cmd["status"] == "ok" and cmd["result"]["rc"] == 0
    assert cmd["play"] == "ledger first play" and cmd["playbook"] == "pb.yml"
    assert cmd["duration"] is not None and cmd["duration"] >= 0 and len(cmd["task_uuid"]) > 8
    loop = [r for r in by_task["loop with one no_log item"] if r["host"] == "h1"]
    assert len(loop) == 1 and [i["msg"] for i in loop[0]["result"]["results"]] == ["item a", "item b", "item c"]
    assert by_task["changed debug carrying secrets in text"][0]["status"] == "changed"
    assert by_task["skipped task"][0]["status"] == "skipped"
    assert by_task["ping everyone"][0]["module"] == "ansible.builtin.ping"
    gone = [r for r in records if r["host"] == "gone"]
    assert [r["status"] for r in gone] == ["unreachable"]
    seqs = [r["seq"] for r in records]
    assert seqs == list(range(len(records)))


def test_secrets_never_reach_the_ledger(recorded):
    work, ledger_dir, proc, records = recorded
    data = all_bytes(str(ledger_dir))
    for name, canary in CANARIES.items():
        assert canary.encode() not in data, name
    # the stdout of ansible itself does show the non-no_log ones: the canaries were really in the results
    assert CANARIES["password"] in proc.stdout
    nolog = [r for r in records if r["task"] == "no_log task"]
    assert nolog and all(r["result"] == {"censored": NO_LOG_MARKER, "changed": False} for r in nolog)
    text = json.dumps([r["result"] for r in records if r["task"] == "changed debug carrying secrets in text"])
    assert "password=%s" % MASK in text and "PrivateKey = %s" % MASK in text
    facts = [r for r in records if r["task"] == "secret under a key"][0]["result"]["ansible_facts"]
    assert facts["api_token"] == MASK and "PRIVATE KEY" not in json.dumps(facts).replace("%s" % MASK, "")
    item = [r for r in records if r["task"] == "loop item marked no_log"][0]["result"]["results"]
    assert item == [{"censored": NO_LOG_MARKER}]


def test_ledger_verifies_with_checkpoints_and_key(recorded):
    work, ledger_dir, proc, records = recorded
    key = str(ledger_dir) + ".key"
    assert os.stat(key).st_mode & 0o777 == 0o600
    report = verify(str(ledger_dir), public_key=key + ".pub")
    assert report.ok, report.summary()
    assert report.checkpoints_verified >= 3  # two play ends + the playbook's end (+ latest)
    for root, dirs, files in os.walk(str(ledger_dir)):
        for name in dirs:
            assert os.stat(os.path.join(root, name)).st_mode & 0o077 == 0, name
        for name in files:
            assert os.stat(os.path.join(root, name)).st_mode & 0o077 == 0, name
    vectors = os.path.join(str(ledger_dir), "vectors", "vectors.f32")
    dim = json.load(open(os.path.join(str(ledger_dir), "vectors", "meta.json")))["dim"]
    assert os.path.getsize(vectors) // (4 * dim) >= len({json.dumps(r, sort_keys=True) for r in records}) // 2


def test_second_run_appends_and_chains(recorded, tmp_path):
    work, ledger_dir, proc, records = recorded
    again = run_playbook(work, ledger_dir, {"OPDBUS_LEDGER_CHECKPOINT_EVERY": "5"})
    assert again.returncode in (2, 4), again.stderr
    with Ledger(str(ledger_dir), readonly=True) as ledger:
        both = list(ledger.records())
    assert len(both) == 2 * len(records)
    assert both[len(records)]["prev"] == records[-1]["hash"]
    sizes = sorted(int(n[:-5]) for n in os.listdir(os.path.join(str(ledger_dir), "checkpoints")) if n.endswith(".ckpt"))
    second = [size for size in sizes if size > len(records)]
    # the second run's play end and run end, and at least one more signed because 5 records had come
    assert len(second) >= 3, sizes
    assert verify(str(ledger_dir), public_key=str(ledger_dir) + ".key.pub").ok


def test_locked_ledger_is_reported_not_silently_skipped(tmp_path):
    ledger_dir = tmp_path / "ledger"
    holder = Ledger(str(ledger_dir))
    try:
        proc = run_playbook(tmp_path, ledger_dir, {"OPDBUS_LEDGER_LOCK_TIMEOUT": "0.3"})
    finally:
        holder.close()
    assert "locked by another writer" in proc.stderr + proc.stdout
    assert "NOT recorded" in proc.stderr + proc.stdout
    with Ledger(str(ledger_dir), readonly=True) as ledger:
        assert ledger.size == 0


def test_bad_options_disable_with_a_message(tmp_path):
    proc = run_playbook(tmp_path, tmp_path / "ledger", {"OPDBUS_LEDGER_RETENTION": "hourly=x"})
    assert "retention" in proc.stderr + proc.stdout and "NOT recorded" in proc.stderr + proc.stdout
    proc = run_playbook(tmp_path, tmp_path / "ledger2", {"OPDBUS_LEDGER_REDACT_PATTERNS": "(unclosed"})
    assert "bad redaction pattern" in proc.stderr + proc.stdout


def test_snapshots_off_is_said_once(tmp_path):
    ledger_dir = tmp_path / "ledger"
    first = run_playbook(tmp_path, ledger_dir)
    second = run_playbook(tmp_path, ledger_dir)
    said = "said once"
    if os.path.exists(os.path.join(str(ledger_dir), "snapshots-off")):
        assert said in first.stdout + first.stderr
        assert said not in second.stdout + second.stderr
    else:  # the temporary directory is a btrfs subvolume: snapshots are on
        assert said not in first.stdout + first.stderr


@pytest.mark.parametrize("text, secret", [
    ("PrivateKey = 8BhLZSNbnmlr1HQ9vf7TJxv5m8SaHbpQxYdX0vH8R2E=", "8BhLZSNbnmlr1HQ9vf7TJxv5m8SaHbpQxYdX0vH8R2E="),
    ("PresharedKey=abcdEFGH1234abcdEFGH1234abcdEFGH1234abcdEFG=", "abcdEFGH1234abcdEFGH1234abcdEFGH1234abcdEFG="),
    ("curl -H 'Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x'", "eyJhbGciOiJIUzI1NiJ9.e30.x"),
    ("PVEAPIToken=root@pam!ansible=5f1d3c2a-9e7b-4c1d-8a2b-3c4d5e6f7a8b", "5f1d3c2a-9e7b-4c1d-8a2b-3c4d5e6f7a8b"),
    ("https://admin:s3cr3tpass@example.org/api", "s3cr3tpass"),
    ("mysql --password=Tr0ub4dor&3 -u root", "Tr0ub4dor"),
    ("export API_KEY=AKIAABCDEFGHIJKLMNOP", "AKIAABCDEFGHIJKLMNOP"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\n-----END OPENSSH PRIVATE KEY-----", "b3BlbnNzaC1rZXk"),
    ("token: ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_abcdefghijklmnopqrstuvwxyz0123456789"),
])
def test_redactor_masks_secret_shapes(text, secret):
    out = Redactor().clean({"msg": text, "stdout_lines": [text]})
    assert secret not in json.dumps(out)
    assert MASK in out["msg"]


def test_redactor_keys_extra_patterns_and_size_limit():
    red = Redactor(extra_keys=[r"^wg_"], extra_values=[r"ID-(?P<secret>\d{6})"], max_bytes=2000)
    out = red.clean({"wg_peer": "x", "password": None, "db_passwd": 123, "passed": True, "msg": "order ID-123456",
                     "nested": [{"client_secret": "s"}], "_ansible_verbose_always": True})
    assert out == {"wg_peer": MASK, "password": None, "db_passwd": MASK, "passed": True, "msg": "order ID-%s" % MASK,
                   "nested": [{"client_secret": MASK}]}
    big = red.clean({"msg": "done", "rc": 0, "stdout": "x" * 5000})
    assert big["truncated"] is True and big["msg"] == "done" and big["rc"] == 0 and big["bytes"] > 5000
    assert len(big["sha256"]) == 64 and "stdout" in big["keys"] and "x" * 100 not in json.dumps(big)
    assert red.clean({"changed": True, "secret": "s"}, no_log=True) == {"censored": NO_LOG_MARKER, "changed": True}
