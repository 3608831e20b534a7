#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: host
short_description: Remove a compute host's cell mapping
version_added: 0.1.0
description:
  - Removes the host mapping of a compute host with C(nova-manage cell_v2 delete_host), which also marks the host's
    compute nodes as unmapped so the host can be discovered again (for example in another cell).
  - A host without a mapping is reported unchanged without running C(nova-manage).
  - Refuses, before any write, a host that is mapped to a different cell than O(cell) or that still has instances.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.state
options:
  name:
    description:
      - The compute host name, as in C(host_mappings.host) (the C([DEFAULT]/host) of the nova-compute service).
    type: str
    required: true
  cell:
    description:
      - The cell (exact name) the host is expected to be mapped to. Default is whatever cell it is mapped to.
    type: str
  state:
    description:
      - Only V(absent) is supported; hosts are mapped by M(nova.cells.discover_hosts).
    type: str
    choices: [absent]
    default: absent
notes:
  - Send nova-scheduler a SIGHUP afterwards so it forgets the host (RV(restart_required)).
'''

EXAMPLES = r'''
- name: Remove the mapping of a decommissioned compute
  nova.cells.host:
    name: cmp17
    cell: cell2
    state: absent
'''

RETURN = r'''
host:
  description: The host mapping before the run (empty if there was none).
  returned: always
  type: dict
  contains:
    name:
      description: Host name.
      type: str
    cell:
      description: Cell name.
      type: str
    cell_uuid:
      description: Cell uuid.
      type: str
restart_required:
  description: V(scheduler_sighup) when a mapping was removed.
  returned: always
  type: list
  elements: str
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import find_cell, require_cell, validate_name
from ansible_collections.nova.cells.plugins.module_utils._module import DiffTracker, NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import ABSENT


class HostModule(NovaCellsModule):
    argument_spec = dict(
        name=dict(type='str', required=True),
        cell=dict(type='str'),
        state=dict(type='str', choices=['absent'], default='absent'),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        host = self.params['name']
        validate_name(host, 'host name')
        api_db = self.api_db()
        cells = api_db.cells()
        expected = require_cell(cells, self.params['cell']) if self.params['cell'] else None
        before = self.current(api_db, cells, host, expected)
        tracker = DiffTracker()
        tracker.add('host', before, {})
        outcome = {}

        def apply():
            result = self.nova_manage.run(('cell_v2', 'delete_host'), ['--cell_uuid', before['cell_uuid'], '--host', host],
                                          context=dict(cell=before['cell'], uuid=before['cell_uuid'], host=host))
            outcome['already_absent'] = result is not None and result.status == ABSENT

        changed, _after = self.converge(tracker, apply, reread=lambda: self.reread(api_db, host), desired={})
        changed = changed and not outcome.get('already_absent')
        return self.changed_result(tracker, changed, before, {}, host=before,
                                   restart_required=['scheduler_sighup'] if changed else [])

    def current(self, api_db, cells, host, expected):
        """The host's mapping ({} without one); refuses a mapping in another cell than ``expected`` or a host with instances."""
        mapping = api_db.host_mapping(host)
        if mapping is None:
            return {}
        cell = find_cell(cells, uuid=mapping['cell_uuid'])
        before = dict(name=host, cell=cell['name'], cell_uuid=cell['uuid'])
        if expected is not None and expected['uuid'] != cell['uuid']:
            raise NovaCellsError(f"host {host!r} is mapped to cell {cell['name']!r} ({cell['uuid']}), not to {expected['name']!r}; name the cell "
                                 'it is mapped to', host=before)
        live = self.cell_db(cell).live_instance_count(host)
        if live:
            raise NovaCellsError(f"host {host!r} in cell {cell['name']!r} still has {live} instance(s); migrate or delete them, then remove "
                                 'the host', host=before)
        return before

    def reread(self, api_db, host):
        mapping = api_db.host_mapping(host)
        if mapping is not None:
            raise NovaCellsError('nova-manage reported success but host {!r} is still mapped to cell {!r}; check that config_files '
                                 'point nova-manage at the same API database'.format(host, mapping['cell_name']))
        return {}


def main():
    HostModule()()


if __name__ == '__main__':
    main()
