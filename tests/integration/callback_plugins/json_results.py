# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A stdout callback for the integration tests: the whole run as one JSON document.

ansible-core no longer ships the ``json`` stdout callback (it moved to ansible.posix),
so the tests bring this one. Output, printed once at the end of the run::

    {"plays": [{"play": {"name": ...},
                "tasks": [{"task": {"name": ..., "action": ...},
                           "hosts": {"localhost": <the task result>}}]}],
     "stats": {"localhost": {"ok": 1, "changed": 1, "failures": 0, ...}}}

Works for ansible-playbook and for ad-hoc ``ansible`` (with ANSIBLE_LOAD_CALLBACK_PLUGINS=1).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: json_results
type: stdout
short_description: The whole run as one JSON document (integration tests)
description:
  - Prints every task result of the run as one JSON document when the run ends.
"""

import json
import sys

from ansible.module_utils.common.json import AnsibleJSONEncoder
from ansible.plugins.callback import CallbackBase


def _result_of(result):
    data = getattr(result, "result", None)  # ansible-core >= 2.19
    if data is None:
        data = result._result
    return dict(data)


def _task_of(result):
    return getattr(result, "task", None) or result._task


def _host_of(result):
    return getattr(result, "host", None) or result._host


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json_results"

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self.plays = []

    # -- structure -------------------------------------------------------------
    def _current_play(self):
        if not self.plays:
            self.plays.append({"play": {"name": ""}, "tasks": []})
        return self.plays[-1]

    def _task_entry(self, task):
        tasks = self._current_play()["tasks"]
        uuid = str(task._uuid)
        for entry in tasks:
            if entry["task"]["id"] == uuid:
                return entry
        entry = {"task": {"id": uuid, "name": task.get_name(), "action": task.action}, "hosts": {}}
        tasks.append(entry)
        return entry

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_entry(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_entry(task)

    # -- results ---------------------------------------------------------------
    def _record(self, result, **extra):
        handle = getattr(self, "_handle_warnings_and_exception", None)
        if handle is not None:
            handle(result)
        data = _result_of(result)
        data.update(extra)
        self._task_entry(_task_of(result))["hosts"][_host_of(result).get_name()] = data

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, ignore_errors=bool(ignore_errors))

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    # -- the end ---------------------------------------------------------------
    def v2_playbook_on_stats(self, stats):
        summary = dict((host, stats.summarize(host)) for host in sorted(stats.processed))
        doc = {"plays": self.plays, "stats": summary}
        sys.stdout.write(json.dumps(doc, cls=AnsibleJSONEncoder, sort_keys=True) + "\n")
        sys.stdout.flush()
