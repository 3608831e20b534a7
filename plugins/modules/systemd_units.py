#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: systemd_units
short_description: Enable and start several systemd units in one module run, acting only on what differs
version_added: 0.2.0
description:
  - Reads the state of every unit in O(names) with one C(systemctl show), then enables (C(systemctl enable)) and starts
    (C(systemctl start)) only the units that are not enabled or not running, one unit at a time in the order given.
    A host whose units all run enabled costs one module process and one C(systemctl) call, where a loop of
    C(ansible.builtin.systemd_service) took a module process per unit.
  - A unit counts as enabled when C(systemctl is-enabled) would say so (C(enabled), C(enabled-runtime), C(static),
    C(indirect), C(alias), C(generated), C(transient)) and as running when it is C(active), C(activating) or
    C(reloading), as for C(ansible.builtin.systemd_service).
  - Fails before anything changes when a unit is not installed, naming every such unit.
  - C(changed) is true only when a unit was (or, in check mode, would be) enabled or started.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells._attributes
  - nova.cells._attributes.actiongroup_cells
  - nova.cells.common.unused_group_options
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The units that change, with their enablement and active state before and after.
  idempotent:
    support: full
options:
  names:
    description: The units, for example V(nova-api) or V(nova-api.service), in the order in which to enable and start them.
    type: list
    elements: str
    required: true
  enabled:
    description: Enable the units that are not enabled (V(true)). V(false) leaves the enablement as it is.
    type: bool
    default: true
  state:
    description: V(started) starts the units that do not run.
    type: str
    choices: [started]
    default: started
seealso:
  - name: systemctl(1)
    description: How systemd enables, starts and reports units.
    link: https://www.freedesktop.org/software/systemd/man/latest/systemctl.html
'''

EXAMPLES = r'''
- name: Enable and start the Nova units of this host
  nova.cells.systemd_units:
    names: [nova-conductor, nova-scheduler, nova-api]
  register: units
'''

RETURN = r'''
units:
  description: One entry per unit in the order given, with its state before the run and whether it changed.
  returned: always
  type: list
  elements: dict
  sample: [{name: nova-api, enabled: enabled, active: active, changed: false}]
commands:
  description: The C(systemctl) command lines that changed something (in check mode, that would run).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nova.cells.plugins.module_utils._units import PROPERTIES, parse_show, plan


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # Accepted for module_defaults of group/nova.cells.cells (see DOCUMENTATION); not used.
            config_files=dict(type='list', elements='path', default=['/etc/nova/nova.conf']),
            nova_manage=dict(type='list', elements='str', default=['nova-manage']),
            names=dict(type='list', elements='str', required=True),
            enabled=dict(type='bool', default=True),
            state=dict(type='str', choices=['started'], default='started'),
        ),
        supports_check_mode=True,
    )
    names = module.params['names']
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        module.fail_json(msg=f"names gives {', '.join(repeated)} more than once; give each unit once, nothing was changed")
    if not names:
        module.exit_json(changed=False, units=[], commands=[])
    systemctl = module.get_bin_path('systemctl', required=True)
    argv = [systemctl, 'show', '--property=' + ','.join(PROPERTIES), '--', *names]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg=f"systemctl show failed (rc {rc}): {err.strip() or out.strip()}; nothing was changed", rc=rc)
    try:
        blocks = parse_show(out, len(names))
    except ValueError as exc:
        module.fail_json(msg=f'{exc}; nothing was changed', stdout=out)
    missing, steps = plan(names, blocks, module.params['enabled'], module.params['state'])
    if missing:
        module.fail_json(msg=f"Could not find the requested service {', '.join(missing)}: host; install it or leave it out of names, "
                             'nothing was changed', missing=missing)

    commands, units, before, after = [], [], {}, {}
    for name, props, actions in steps:
        units.append(dict(name=name, enabled=props.get('UnitFileState'), active=props.get('ActiveState'), changed=bool(actions)))
        if not actions:
            continue
        before[name] = {'enabled': props.get('UnitFileState'), 'active': props.get('ActiveState')}
        after[name] = {'enabled': 'enabled' if 'enable' in actions else props.get('UnitFileState'),
                       'active': 'active' if 'start' in actions else props.get('ActiveState')}
        for action in actions:
            command = [systemctl, action, '--', name]
            commands.append(' '.join(command))
            if module.check_mode:
                continue
            rc, out, err = module.run_command(command)
            if rc != 0:
                module.fail_json(msg=f'Unable to {action} service {name}: {err.strip() or out.strip()}', rc=rc,
                                 units=units, commands=commands)
    if after and not module.check_mode:
        # What systemd reports now, not what was asked (a unit may stop again at once).
        changed_names = list(after)
        rc, out, err = module.run_command([systemctl, 'show', '--property=' + ','.join(PROPERTIES), '--', *changed_names])
        try:
            reread = parse_show(out, len(changed_names)) if rc == 0 else []
        except ValueError:
            reread = []
        for name, props in zip(changed_names, reread, strict=False):
            after[name] = {'enabled': props.get('UnitFileState'), 'active': props.get('ActiveState')}
    result = dict(changed=bool(commands), units=units, commands=commands)
    if module._diff:
        result['diff'] = {'before': before, 'after': after}
    module.exit_json(**result)


if __name__ == '__main__':
    main()
