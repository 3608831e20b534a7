# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: deployment
short_description: The deployment model of the nova.cells roles, from the inventory variables
version_added: 0.2.0
description:
  - Turns the inventory variables of the C(nova_conf) and C(cells) roles (docs/inventory.md) into what they deploy,
    so that the roles' templates only render values they are given.
  - V(urls) gives the database and message-queue URLs of the deployment as this host uses them, the cell mapping
    values, this host's node types and the problems that make the inventory impossible to deploy.
  - V(nova_conf) gives this host's nova.conf options (C(file_sections), C(db_env_sections)), its systemd units, the
    units to start and every refusal (C(problems)).
  - V(node_types) gives this host's node types, V(start_units) the systemd units of those in C(nova_conf_start_types)
    (all of the host's when it is null), in that order.
  - V(cells) gives what the C(cells) role handles on this host (the cells, their nova-manage configs, the computes
    each cell should have, the ServiceGroup settings to read liveness with, and its refusals).
  - V(db_syncs) gives the O(nova.cells.db_sync#module:databases) of the C(cells) role's one schema sync, the API
    database (when O(sync_api)), cell0 through the API-level config, then each cell of O(selected) through its own
    config in O(conf), every cell database with C(--local_cell).
  - V(refresh) gives the C({host, unit, action}) jobs (V(sighup) or V(restart)) that make the running services see the
    cell changes named in O(restart_required), from O(groups).
  - The result holds passwords; use it with C(no_log).
author: nova.cells contributors (@nova-cells)
positional: view
options:
  _input:
    description:
      - The roles' inventory variables (the C(nova_*) names of docs/inventory.md) plus C(inventory_hostname) and
        C(group_names), as C(roles/nova_conf/vars/main.yml) collects them in C(_nova_conf_settings).
    type: dict
    required: true
  view:
    description: What to return.
    type: str
    choices: [urls, nova_conf, node_types, start_units, cells, db_syncs, refresh]
    default: urls
  extra_sections:
    description: 'With V(nova_conf), C({section: {option: value}}) merged over the computed options.'
    type: dict
  selected:
    description: With V(cells), the cells to handle (empty, all of them). With V(db_syncs), the cells to sync.
    type: list
    elements: str
  manage_dir:
    description: With V(cells), the directory of the nova-manage configs.
    type: str
  computes:
    description: With V(cells), the inventory names of the compute hosts.
    type: list
    elements: str
  hostvars:
    description: With V(cells), the inventory variables of the compute hosts (C(hostvars)).
    type: dict
  expected:
    description: 'With V(cells), the computes to wait for as C({cell: [host, ...]}); null, from O(computes).'
    type: dict
  conf:
    description: With V(db_syncs), the nova-manage config of the API level (C(api)) and of each cell, by name.
    type: dict
  sync_api:
    description: With V(db_syncs), sync the API database too.
    type: bool
    default: true
  restart_required:
    description: With V(refresh), what the cell changes concern (V(scheduler), V(scheduler_sighup), V(api), V(conductor)).
    type: list
    elements: str
  groups:
    description: With V(refresh), the inventory groups (C(groups)).
    type: dict
  warn:
    description: With V(nova_conf), show what the ServiceGroup renderer warns about as Ansible warnings.
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Work out the URLs
  ansible.builtin.set_fact:
    _nova_conf_urls: "{{ _nova_conf_settings | nova.cells.deployment('urls') }}"
  no_log: true
'''

RETURN = r'''
_value:
  description: The model asked for (see the description).
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils import _deployment
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import ServiceGroupError


def deployment(settings, view='urls', extra_sections=None, selected=None, manage_dir=None, computes=None, hostvars=None,
               expected=None, restart_required=None, groups=None, warn=False, conf=None, sync_api=True):
    try:
        if view == 'urls':
            return _deployment.urls(settings)
        if view == 'nova_conf':
            result = _deployment.nova_conf(settings, extra_sections)
            if warn and result['warnings']:
                from ansible.utils.display import Display  # pylint: disable=import-outside-toplevel

                for warning in result['warnings']:
                    Display().warning(f'nova.cells.servicegroup_options: {warning}')
            return result
        if view == 'node_types':
            return _deployment.node_types(settings)
        if view == 'start_units':
            return _deployment.start_units(settings['nova_service_units'], _deployment.node_types(settings),
                                           settings.get('nova_conf_start_types'))
        if view == 'cells':
            model = _deployment.urls(settings)
            plan = _deployment.cells_plan(model, selected or [], manage_dir, settings['inventory_hostname'])
            plan['expected_computes'] = (expected if expected is not None
                                         else _deployment.expected_computes(computes or [], hostvars or {}, plan['names']))
            plan['servicegroup'] = _deployment.servicegroup_reader(settings)
            return plan
        if view == 'db_syncs':
            return _deployment.db_syncs(conf or {}, selected or [], sync_api)
        if view == 'refresh':
            return _deployment.refresh_jobs(restart_required, groups or {}, settings['nova_node_type_groups'], settings['nova_service_units'])
    except ServiceGroupError as exc:
        raise AnsibleFilterError(f'nova.cells.deployment: {exc}') from None
    except KeyError as exc:
        raise AnsibleFilterError(f'nova.cells.deployment: the setting {exc} is missing') from None
    raise AnsibleFilterError(f'nova.cells.deployment: unknown view {view!r}; known: urls, nova_conf, node_types, start_units, cells, db_syncs, refresh')


class FilterModule:
    def filters(self):
        return {'deployment': deployment}
