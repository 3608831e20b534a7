#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: map_instances
short_description: Map all instances of a cell to it, to completion
version_added: 0.1.0
description:
  - Creates the missing instance mappings of one cell with C(nova-manage cell_v2 map_instances --cell_uuid U
    --max-count N), looping while nova-manage says more remain (rc 1) until it reports completion (rc 0).
  - First counts, with one query per database, the cell's instances (deleted ones included, as Nova maps them too)
    that have no instance mapping. When there are none it returns C(changed=false) without running nova-manage, which
    would otherwise spend about 30 seconds re-checking 10,000 mapped instances.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes
  - nova.cells._attributes.actiongroup_cells
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  cell:
    description:
      - The cell (exact name) whose instances to map.
    type: str
    required: true
  max_count:
    description:
      - Instances per C(nova-manage) batch (C(--max-count)). Larger batches mean fewer process start-ups.
    type: int
    default: 10000
  max_batches:
    description:
      - Safety limit on the number of batches; the module fails rather than loop forever if nova-manage keeps
        reporting more work.
    type: int
    default: 1000
'''

EXAMPLES = r'''
- name: Map the instances of cell1
  nova.cells.map_instances:
    cell: cell1
  run_once: true
'''

RETURN = r'''
unmapped_before:
  description: Instances of the cell without a mapping before the run.
  returned: always
  type: int
mapped:
  description: Instance mappings created by this run (in check mode, that would be created).
  returned: always
  type: int
batches:
  description: Number of nova-manage runs.
  returned: always
  type: int
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import require_cell
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import MORE


class MapInstancesModule(NovaCellsModule):
    argument_spec = dict(
        cell=dict(type='str', required=True),
        max_count=dict(type='int', default=10000),
        max_batches=dict(type='int', default=1000),
    )
    module_kwargs = dict(supports_check_mode=True)

    def unmapped(self, api_db, cell):
        instances = self.cell_db(cell).instance_uuids()
        if not instances:
            return 0
        # Any mapping counts, whatever its cell: nova-manage skips those too (it never updates a mapping).
        mapped = api_db.mapped_instances(instances)
        return len(instances) - len(mapped)

    def run(self):
        if self.params['max_count'] < 1:
            raise NovaCellsError('max_count must be a positive number of instances per batch, not %d' % self.params['max_count'])
        if self.params['max_batches'] < 1:
            raise NovaCellsError('max_batches must be at least 1')
        api_db = self.api_db()
        cell = require_cell(api_db.cells(), self.params['cell'])
        before = self.unmapped(api_db, cell)
        if before == 0:
            self.exit(changed=False, unmapped_before=0, mapped=0, batches=0)
        args = ['--cell_uuid', cell['uuid'], '--max-count', str(self.params['max_count'])]
        context = dict(cell=cell['name'], uuid=cell['uuid'])
        if self.check_mode:
            self.nova_manage.run(('cell_v2', 'map_instances'), args, context=context)
            self.exit(changed=True, unmapped_before=before, mapped=before, batches=0)
        batches = 0
        while True:
            batches += 1
            result = self.nova_manage.run(('cell_v2', 'map_instances'), args, context=context)
            if result.status != MORE:
                break
            if batches >= self.params['max_batches']:
                raise NovaCellsError('map_instances for cell %r still reports more work after %d batches of %d; '
                                     'raise max_batches or max_count' % (cell['name'], batches, self.params['max_count']))
        after = self.unmapped(api_db, cell)
        if after:
            raise NovaCellsError('nova-manage map_instances finished but %d instance(s) of cell %r are still unmapped'
                                 % (after, cell['name']))
        self.exit(changed=True, unmapped_before=before, mapped=before - after, batches=batches)


def main():
    MapInstancesModule()()


if __name__ == '__main__':
    main()
