# Apache License 2.0 (see LICENSE at the collection root)
"""Stdout callback ``json`` for the nova.cells test harness.

ansible-core only redirects ``json`` to ansible.posix, which the controller venv does not have.
This plugin prints the same document shape once, at the end of the run:
``{"plays": [{"play": {...}, "tasks": [{"task": {...}, "hosts": {host: result}}]}], "stats": {...}}``.
Results keep every key the module returned (``invocation``, ``diff``, ``warnings`` included), so tests
see exactly what a user would see at high verbosity.
"""

from __future__ import annotations

import json

from ansible.plugins.callback import CallbackBase
from ansible.vars.clean import strip_internal_keys

DOCUMENTATION = """
    name: json
    type: stdout
    short_description: One JSON document with every task result (nova.cells test harness)
    description:
        - Prints plays, tasks, per-host results and stats as a single JSON document at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "json"

    def __init__(self, display=None):
        super().__init__(display)
        self.plays = []

    def _current_tasks(self):
        return self.plays[-1]["tasks"]

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name(), "id": str(play._uuid)}, "tasks": []})  # pylint: disable=protected-access

    def _start_task(self, task):
        task_id = str(task._uuid)  # pylint: disable=protected-access  # the only stable task id
        self._current_tasks().append({"task": {"name": task.get_name(), "id": task_id, "action": task.action}, "hosts": {}})

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._start_task(task)

    def v2_playbook_on_handler_task_start(self, task):
        self._start_task(task)

    def _record(self, result, **status):
        tasks = self._current_tasks()
        if not tasks or tasks[-1]["task"]["id"] != str(result.task._uuid):  # pylint: disable=protected-access
            # Ad-hoc runs send no task-start event.
            self._start_task(result.task)
        host_result = strip_internal_keys(dict(result.result))
        host_result.update(status)
        self._current_tasks()[-1]["hosts"][result.host.get_name()] = host_result

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, **({"ignore_errors": True} if ignore_errors else {}))

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_playbook_on_stats(self, stats):
        summary = {host: stats.summarize(host) for host in sorted(stats.processed)}
        output = {"plays": self.plays, "stats": summary, "custom_stats": stats.custom}
        self._display.display(json.dumps(output, indent=4, sort_keys=True, default=str))
