# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared fixtures for the ledger storage tests."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import pytest

from ansible_collections.opdbus.infra.plugins.plugin_utils.ledger.store import Ledger


def task_fields(i, host="web1"):
    return {
        "kind": "task", "playbook": "site.yml", "play": "web", "role": "nginx", "task": "task %d" % i,
        "task_uuid": "uuid-%d" % i, "host": host, "module": "ansible.builtin.command",
        "status": "changed" if i % 3 else "ok", "changed": bool(i % 3), "duration": 0.001 * i,
        "result": {"rc": 0, "stdout": "line %d \u00e9\u2603" % i, "cmd": ["echo", str(i)]},
    }


@pytest.fixture
def make_ledger(tmp_path):
    """make_ledger(n, **opts) -> (path, Ledger) with n records appended in small batches."""
    opened = []

    def factory(count=0, batch=7, **opts):
        path = str(tmp_path / "ledger")
        ledger = Ledger(path, **opts)
        opened.append(ledger)
        done = 0
        while done < count:
            step = min(batch, count - done)
            ledger.append([task_fields(i) for i in range(done, done + step)])
            done += step
        return path, ledger

    yield factory
    for ledger in opened:
        ledger.close()
