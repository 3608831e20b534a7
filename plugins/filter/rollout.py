# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: rollout
short_description: Decisions of the day-2 playbooks that roll a nova.conf change through running services
version_added: 0.3.0
description:
  - V(stale_units) gives the running systemd units (of O(wanted)) that must restart to read their configuration
    files, from C(systemctl show -p Id -p ActiveState -p ActiveEnterTimestamp --timestamp=us+utc) output (the input)
    and the files' modification times O(mtimes). A unit restarts when it entered the active state before the newest
    file was written, or always with O(changed).
  - "V(switch_plan) gives the phases of a ServiceGroup driver switch to O(target), from the drivers the hosts have
    now (the input, C({host: driver})), with C(widen) (whether the readers first get the grace), C(moving) and the
    refusals in C(problems)."
  - V(conf_changes) gives the options that differ between two nova.conf texts (the input and O(after)), secrets
    masked.
  - "V(rotation_plan) gives the database and RabbitMQ accounts a credential rotation changes and the refusals, from
    C({host: {templates, cell, db: {user, password}, mq: {user, password}}}) (the input) and O(selected)."
  - V(db_account_step) gives what one MariaDB account needs in O(phase) (V(add) the new password next to the current
    ones, V(retire) the others), from its C(SHOW CREATE USER) (the input) and the new O(password), as C(action),
    C(sql_auth) (an IDENTIFIED clause with hashes only), C(state).
  - V(stalled_heartbeats) gives the services (C(binary@host), of O(binaries)) that were alive at O(since), the start
    of a restarted conductor, and have reported no heartbeat after it, from the C(services) of
    M(nova.cells.service_status) (the input). With the db driver, a compute whose heartbeat call reached the old
    conductor while it shut down waits C(rpc_response_timeout) for an answer before it reports again.
  - The results of V(rotation_plan) hold passwords; use them with C(no_log).
author: nova.cells contributors (@nova-cells)
positional: view
options:
  _input:
    description: The text, dict or list the view works on (see the description).
    type: raw
    required: true
  view:
    description: What to return.
    type: str
    choices: [stale_units, switch_plan, conf_changes, rotation_plan, db_account_step, stalled_heartbeats]
    required: true
  mtimes:
    description: With V(stale_units), the modification times of the files the units read.
    type: list
    elements: float
  wanted:
    description: With V(stale_units), the units to consider, in order.
    type: list
    elements: str
  changed:
    description: With V(stale_units), the files change in this run (every running unit of O(wanted) restarts).
    type: bool
    default: false
  target:
    description: With V(switch_plan), the ServiceGroup driver to switch to (V(db) or V(mc)).
    type: str
  writer_hosts:
    description: With V(switch_plan), the hosts whose services report liveness (computes, conductors, schedulers).
    type: list
    elements: str
  service_down_time:
    description: With V(switch_plan) and V(stalled_heartbeats), the service_down_time of the deployment.
    type: int
    default: 60
  report_interval:
    description: With V(switch_plan), the report_interval of the deployment.
    type: int
  grace:
    description: With V(switch_plan), the service_down_time the readers get while the writers move (0 never widens).
    type: int
  after:
    description: With V(conf_changes), the new nova.conf text.
    type: str
  selected:
    description: With V(rotation_plan), the hosts to roll.
    type: list
    elements: str
  cell:
    description: With V(rotation_plan), the cell being rotated (null, every host).
    type: str
  password:
    description: With V(db_account_step), the new password (only its hash leaves the filter).
    type: str
  phase:
    description: With V(db_account_step), V(add) or V(retire).
    type: str
  since:
    description: With V(stalled_heartbeats), when the restarted conductor started (seconds since the epoch, or ISO 8601).
    type: raw
  binaries:
    description: With V(stalled_heartbeats), the binaries to look at.
    type: list
    elements: str
    default: [nova-compute]
'''

EXAMPLES = r'''
- name: The units to restart
  ansible.builtin.set_fact:
    units_to_restart: "{{ systemctl_show.stdout | nova.cells.rollout('stale_units', mtimes=[conf.stat.mtime], wanted=['nova-api']) }}"
'''

RETURN = r'''
_value:
  description: The list or dict asked for (see the description).
  type: raw
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils import _rollout


def rollout(data, view, mtimes=None, wanted=None, changed=False, target=None, writer_hosts=None, service_down_time=60,
            report_interval=10, grace=0, after='', selected=None, cell=None, password=None, phase=None, since=None,
            binaries=None):
    try:
        if view == 'stale_units':
            return _rollout.stale_units(data, mtimes or [], wanted or [], changed=bool(changed))
        if view == 'switch_plan':
            return _rollout.switch_plan(target, data or {}, writer_hosts or [], service_down_time, grace, report_interval)
        if view == 'conf_changes':
            return _rollout.conf_changes(data or '', after or '')
        if view == 'rotation_plan':
            return _rollout.rotation_plan(data or {}, selected or [], cell=cell or None)
        if view == 'stalled_heartbeats':
            return _rollout.stalled_heartbeats(data or [], since, service_down_time, binaries=binaries or ('nova-compute',))
        if view == 'db_account_step':
            return _rollout.db_account_step(data or '', _rollout.mysql_native_hash(password), phase)
    except ValueError as exc:
        raise AnsibleFilterError(f'nova.cells.rollout: {exc}') from None
    raise AnsibleFilterError(f'nova.cells.rollout: unknown view {view!r}; known: stale_units, switch_plan, conf_changes, '
                             'rotation_plan, db_account_step, stalled_heartbeats')


class FilterModule:
    def filters(self):
        return {'rollout': rollout}
