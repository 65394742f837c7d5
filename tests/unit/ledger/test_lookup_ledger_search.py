# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The opdbus.infra.ledger_search lookup: called directly, and from a real playbook."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import subprocess
import sys
import textwrap

import pytest

from ansible.errors import AnsibleError

from ansible_collections.opdbus.infra.plugins.lookup.ledger_search import LookupModule
from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
APT_FAILURE = ("E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process %d (unattended-upgr)")
MATCH_KEYS = {"seq", "score", "time", "host", "play", "task", "module", "status", "msg"}


def fields(i):
    if i in (5, 17):
        status, module, task = "failed", "ansible.builtin.apt", "install nginx"
        result = {"rc": 100, "msg": APT_FAILURE % (4000 + i), "stderr": "dpkg lock held"}
    elif i == 11:
        status, module, task = "failed", "ansible.builtin.service", "start nginx"
        result = {"msg": "Unable to start service nginx: Job for nginx.service failed because the control process exited"}
    else:
        status, module, task = "ok", "ansible.builtin.template", "render site %d" % i
        result = {"changed": False, "msg": "rendered"}
    return {"kind": "task", "playbook": "site.yml", "play": "web servers", "task": task, "host": "web%d" % (i % 2),
            "module": module, "status": status, "time": "2026-11-22T12:%02d:00.000000Z" % i, "result": result}


@pytest.fixture
def ledger_dir(tmp_path):
    path = str(tmp_path / "ledger")
    with Ledger(path) as ledger:
        ledger.append([fields(i) for i in range(24)])
    return path


def lookup():
    try:
        from ansible.plugins.loader import lookup_loader
        plugin = lookup_loader.get("opdbus.infra.ledger_search")
    except Exception:  # pylint: disable=broad-except
        plugin = None
    return plugin if plugin is not None else LookupModule()


def test_direct_call_finds_the_seen_failure(ledger_dir):
    plugin = lookup()
    text = APT_FAILURE % 31337
    found = plugin.run([text, "Unable to start service nginx"], variables={}, ledger_dir=ledger_dir, status="failed", k=2)
    assert len(found) == 2
    first, second = found
    assert [m["seq"] for m in first] in ([5, 17], [17, 5])
    assert set(first[0]) == MATCH_KEYS and first[0]["module"] == "ansible.builtin.apt" and first[0]["status"] == "failed"
    assert first[0]["msg"].startswith("E: Could not get lock") and 0.5 < first[0]["score"] <= 1.0 + 1e-6
    assert second[0]["seq"] == 11


def test_filters_options_and_min_score(ledger_dir, monkeypatch):
    plugin = lookup()
    text = APT_FAILURE % 1
    only = plugin.run([text], variables={}, ledger_dir=ledger_dir, host=["web1"], status="failed", k=5)[0]
    assert sorted(m["seq"] for m in only) == [5, 11, 17] and only[-1]["seq"] == 11
    assert plugin.run([text], variables={}, ledger_dir=ledger_dir, host="web0", status="failed")[0] == []
    only = plugin.run([text], variables={}, ledger_dir=ledger_dir, jmespath="result.rc == `100`", k=5)[0]
    assert [m["seq"] for m in only] in ([5, 17], [17, 5])
    only = plugin.run([text], variables={}, ledger_dir=ledger_dir, since="2026-11-22T12:10:00Z",
                      until="2026-11-22T12:20:00Z", module="ansible.builtin.apt")[0]
    assert [m["seq"] for m in only] == [17]
    assert plugin.run([text], variables={}, ledger_dir=ledger_dir, min_score=0.999)[0] == []
    cut = plugin.run([text], variables={}, ledger_dir=ledger_dir, k=1, msg_chars=20)[0][0]["msg"]
    assert len(cut) == 20 and cut.endswith("...")
    monkeypatch.setenv("OPDBUS_LEDGER_DIR", ledger_dir)
    assert len(plugin.run([text], variables={})[0]) == 5


def test_errors_are_clear(ledger_dir, tmp_path):
    plugin = lookup()
    with pytest.raises(AnsibleError, match="does not exist"):
        plugin.run(["x"], variables={}, ledger_dir=str(tmp_path / "missing"))
    with pytest.raises(AnsibleError, match="bad JMESPath expression"):
        plugin.run(["x"], variables={}, ledger_dir=ledger_dir, jmespath="result.rc ==")
    with pytest.raises(AnsibleError, match="ISO 8601"):
        plugin.run(["x"], variables={}, ledger_dir=ledger_dir, since="last tuesday")
    with pytest.raises(AnsibleError, match="k must be"):
        plugin.run(["x"], variables={}, ledger_dir=ledger_dir, k=0)


def _collections_dir():
    for entry in sys.path:
        if os.path.isdir(os.path.join(entry, "ansible_collections", "opdbus", "infra", "plugins")):
            return entry
    return os.path.join(REPO, ".collections")


def test_playbook_asks_whether_a_failure_was_seen(ledger_dir, tmp_path):
    playbook = tmp_path / "seen.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars:
            failure: "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 999 (apt-get)"
          tasks:
            - name: Ask the ledger
              ansible.builtin.set_fact:
                seen: "{{ lookup('opdbus.infra.ledger_search', failure, status='failed', min_score=0.5, k=3) }}"
                never: "{{ query('opdbus.infra.ledger_search', 'kernel panic in module xyz', status='failed', min_score=0.9) }}"
            - name: Check the answer
              ansible.builtin.assert:
                that:
                  - seen | length == 2
                  - seen | map(attribute='seq') | sort | list == [5, 17]
                  - seen[0].module == 'ansible.builtin.apt'
                  - seen[0].msg is search('Could not get lock')
                  - never == [[]]
        """))
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=_collections_dir(), OPDBUS_LEDGER_DIR=ledger_dir,
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"), ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    ansible_playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    done = subprocess.run([ansible_playbook, "-i", "localhost,", str(playbook)], env=env, cwd=str(tmp_path),
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed=0" in done.stdout
