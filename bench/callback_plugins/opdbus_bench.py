# -*- coding: utf-8 -*-
# Copyright: opdbus.infra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Stdout callback of the benchmarks: Ansible's default screen output, plus a JSON
file with the play recap and the duration of every task.

Used only by ``bench/run.py`` (not part of the collection's plugins). It is a stdout
callback rather than an extra enabled callback so that the ``callbacks_enabled`` of the
repository's ansible.cfg stays exactly as it is for the measured runs.

The JSON file is named by the environment variable ``OPDBUS_BENCH_TIMING``:

    {"playbook_seconds": float,            # playbook start -> recap
     "tasks": [{"name", "action", "host", "status", "changed", "seconds"}, ...],
     "stats": {host: {"ok", "changed", "failures", "unreachable", "skipped", "rescued", "ignored"}}}

A task's ``seconds`` run from the task's start event to its result event: Ansible's own
per-task work (templating, building and starting the module) plus the module's run.
"""

from __future__ import annotations

DOCUMENTATION = """
    name: opdbus_bench
    type: stdout
    short_description: default output plus a JSON file of task durations and the recap
    description:
        - Ansible's default stdout callback that also writes the play recap and per-task durations
          to the file named by the environment variable E(OPDBUS_BENCH_TIMING).
    extends_documentation_fragment:
      - default_callback
      - result_format_callback
    requirements:
      - set as stdout in configuration
"""

import json
import os
import time

from ansible.plugins.callback.default import CallbackModule as DefaultCallback


class CallbackModule(DefaultCallback):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "opdbus_bench"

    def __init__(self, *args, **kwargs):
        super(CallbackModule, self).__init__(*args, **kwargs)
        self._bench_out = os.environ.get("OPDBUS_BENCH_TIMING")
        self._bench_t0 = time.monotonic()
        self._bench_task_start = {}
        self._bench_tasks = []

    # -- timing ---------------------------------------------------------------
    def _bench_start(self, task):
        self._bench_task_start[task._uuid] = time.monotonic()

    def _bench_result(self, result, status):
        now = time.monotonic()
        task = getattr(result, "task", None) or getattr(result, "_task")
        host = getattr(result, "host", None) or getattr(result, "_host")
        start = self._bench_task_start.get(task._uuid, now)
        data = getattr(result, "result", None)
        if data is None:
            data = getattr(result, "_result", {})
        self._bench_tasks.append({
            "name": task.get_name(),
            "action": task.action,
            "host": host.get_name(),
            "status": status,
            "changed": bool(data.get("changed", False)),
            "seconds": now - start,
        })

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._bench_start(task)
        super(CallbackModule, self).v2_playbook_on_task_start(task, is_conditional)

    def v2_playbook_on_handler_task_start(self, task):
        self._bench_start(task)
        super(CallbackModule, self).v2_playbook_on_handler_task_start(task)

    def v2_runner_on_ok(self, result):
        self._bench_result(result, "ok")
        super(CallbackModule, self).v2_runner_on_ok(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._bench_result(result, "ignored" if ignore_errors else "failed")
        super(CallbackModule, self).v2_runner_on_failed(result, ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._bench_result(result, "skipped")
        super(CallbackModule, self).v2_runner_on_skipped(result)

    def v2_runner_on_unreachable(self, result):
        self._bench_result(result, "unreachable")
        super(CallbackModule, self).v2_runner_on_unreachable(result)

    def v2_playbook_on_stats(self, stats):
        super(CallbackModule, self).v2_playbook_on_stats(stats)
        if not self._bench_out:
            return
        report = {
            "playbook_seconds": time.monotonic() - self._bench_t0,
            "tasks": self._bench_tasks,
            "stats": dict((h, stats.summarize(h)) for h in sorted(stats.processed)),
        }
        tmp = self._bench_out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1, sort_keys=True)
        os.rename(tmp, self._bench_out)
