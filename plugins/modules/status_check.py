#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: status_check
short_description: Run nova-status upgrade check and return each check's result
version_added: 0.2.0
description:
  - Runs C(nova-status upgrade check) with O(config_files) and returns each check (C(Cells v2), C(Placement API),
    C(Service User Token Configuration), ...) with its result (V(success), V(warning), V(failure)) and details.
  - Nova 34's C(nova-status) has no JSON output (its parser accepts no C(--json)), so the module reads the table it
    prints. The exit code is the worst result (0 success, 1 warning, 2 failure); 255 is a crash and always fails.
  - O(fail_on) decides which results fail the task. Read-only; runs in check mode too.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
options:
  nova_status:
    description:
      - The command that runs C(nova-status), as a list (like O(nova_manage)). Default C(nova-status) next to the first
        element of O(nova_manage) when that is a path, else V(nova-status).
    type: list
    elements: str
  fail_on:
    description:
      - V(failure) fails the task when a check fails, V(warning) also on a warning, V(never) only returns the results.
    type: str
    choices: [failure, warning, never]
    default: failure
  ignore:
    description:
      - Names of checks (exact, as nova-status prints them) whose result never fails the task, for example
        V(Service User Token Configuration) in a lab without Keystone. They are still returned.
    type: list
    elements: str
    default: []
'''

EXAMPLES = r'''
- name: Upgrade check, fail on failures
  nova.cells.status_check:
    config_files: [/etc/nova/manage/api.conf]

- name: Report only
  nova.cells.status_check:
    fail_on: never
  register: nova_status
'''

RETURN = r'''
checks:
  description: Every check in Nova's order.
  returned: always
  type: list
  elements: dict
  sample: [{check: Cells v2, result: success, details: null}]
summary:
  description: The number of checks per result.
  returned: always
  type: dict
  sample: {success: 6, warning: 0, failure: 1}
problems:
  description: The names of the checks that failed the task (empty unless the task failed).
  returned: always
  type: list
  elements: str
exit_code:
  description: The exit code of nova-status (0 success, 1 warning, 2 failure); not C(rc), which Ansible would read as a
    failure of the task.
  returned: always
  type: int
commands:
  description: The command line that ran.
  returned: always
  type: list
  elements: str
'''

import os
import shutil

from ansible_collections.nova.cells.plugins.module_utils._housekeeping import parse_status, status_problems, summarize_status
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import NovaManage


def nova_status_command(nova_status, nova_manage):
    """The nova-status command: as given, else next to a nova-manage given as a path, else from PATH."""
    if nova_status:
        return list(nova_status)
    if len(nova_manage) == 1 and os.sep in nova_manage[0]:
        return [os.path.join(os.path.dirname(nova_manage[0]), 'nova-status')]
    if len(nova_manage) > 1 and os.path.basename(nova_manage[-1]) == 'nova-manage':
        return list(nova_manage[:-1]) + [nova_manage[-1][:-len('nova-manage')] + 'nova-status']
    return ['nova-status']


class StatusCheckModule(NovaCellsModule):
    argument_spec = dict(
        nova_status=dict(type='list', elements='str'),
        fail_on=dict(type='str', choices=['failure', 'warning', 'never'], default='failure'),
        ignore=dict(type='list', elements='str', default=[]),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        base = self.nova_manage
        command = nova_status_command(self.params['nova_status'], self.params['nova_manage'])
        if shutil.which(command[0]) is None:
            raise NovaCellsError(f'nova_status {command[0]}: command not found; set nova_status to the nova-status command on this '
                                 'host, e.g. [/opt/nova/bin/nova-status]')
        runner = NovaManage(base._run_command, command, base.config_files, fail_fast=base.fail_fast,  # pylint: disable=protected-access
                            secrets=base._secrets, check_mode=self.check_mode)  # pylint: disable=protected-access
        runner.commands = base.commands
        result = runner.run(('upgrade', 'check'), changes_state=False)
        checks = parse_status(result.stdout)
        if not checks:
            raise NovaCellsError(f'nova-status printed no check results (rc {result.rc}): {result.stdout.strip()[-2000:]}',
                                 exit_code=result.rc)
        summary = summarize_status(checks)
        considered = [check for check in checks if check['check'] not in self.params['ignore']]
        problems = status_problems(considered, self.params['fail_on'])
        self.result.update(checks=checks, summary=summary, exit_code=result.rc, problems=[check['check'] for check in problems])
        if problems:
            raise NovaCellsError('nova-status upgrade check: {}'.format('; '.join(
                '{}: {}{}'.format(check['check'], check['result'], ' ({})'.format(check['details']) if check['details'] else '')
                for check in problems)))
        self.exit(changed=False)


def main():
    StatusCheckModule()()


if __name__ == '__main__':
    main()
