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
  - First finds the cell's instances that nova-manage would map (deleted ones included, hidden ones not, as Nova
    does) and that have no instance mapping, with two queries when all of them are mapped to this cell. When there
    are none it returns C(changed=false) without running nova-manage, which would otherwise spend about 30 seconds
    re-checking 10,000 mapped instances.
  - With O(engine=direct), the mappings are written with set-based SQL instead of C(nova-manage) (see O(engine)).
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
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
  engine:
    description:
      - How the instance mappings are created.
      - V(nova_manage) runs C(nova-manage cell_v2 map_instances --max-count) batches until it reports completion
        (about 40 seconds for 10,000 instances, about 4 SQL statements per instance plus start-up).
      - V(direct) writes the same rows itself with PyMySQL, set-based. The unmapped instances are inserted oldest
        first with multi-row C(INSERT IGNORE) of 1,000 rows each, with the column values nova-manage writes
        (C(instance_uuid), C(cell_id), C(project_id), C(user_id), C(queued_for_delete = 0), C(created_at)); existing
        mappings are never changed and a concurrent writer of the same mapping simply wins. Marker rows left by an
        interrupted C(--max-count) run on this cell are removed, as nova-manage does when it completes. The API database
        ends up exactly as nova-manage leaves it. Instances without C(project_id) or C(user_id), which nova-manage
        cannot map either, fail the module before any write.
      - Choose V(direct) for large clouds and frequent converges. It is written for the schema and behaviour of the
        Nova release this collection targets (34); use V(nova_manage) for other releases. The trade-off is that it
        bypasses nova-manage and Nova's object layer, so it does not pick up changes that a later Nova makes to
        instance mappings. O(max_count) and O(max_batches) apply to V(nova_manage) only.
      - Check mode and C(changed) are the same for both engines.
    type: str
    choices: [nova_manage, direct]
    default: nova_manage
'''

EXAMPLES = r'''
- name: Map the instances of cell1
  nova.cells.map_instances:
    cell: cell1
  run_once: true

- name: Map 10,000 instances in about a second (set-based SQL, same rows as nova-manage)
  nova.cells.map_instances:
    cell: cell1
    engine: direct
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
  description: Number of nova-manage runs (O(engine=nova_manage)) or of multi-row INSERT statements (O(engine=direct)).
  returned: always
  type: int
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils import _direct
from ansible_collections.nova.cells.plugins.module_utils._cells import require_cell
from ansible_collections.nova.cells.plugins.module_utils._databases import unmapped_instance_uuids
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import MORE


class MapInstancesModule(NovaCellsModule):
    argument_spec = dict(
        cell=dict(type='str', required=True),
        max_count=dict(type='int', default=10000),
        max_batches=dict(type='int', default=1000),
        engine=dict(type='str', default='nova_manage', choices=['nova_manage', 'direct']),
    )
    module_kwargs = dict(supports_check_mode=True)

    def __init__(self):
        super().__init__()
        self._hidden_column = None

    def unmapped_uuids(self, api_db, cell):
        """Instances nova-manage would map that have no mapping. Any mapping counts, whatever its cell: nova-manage
        skips those too (it never updates a mapping). Hidden instances (cross-cell resize copies) are not mapped by
        nova-manage, so they are not counted either."""
        cell_db = self.cell_db(cell)
        if self._hidden_column is None:
            self._hidden_column = cell_db.has_hidden_column()
        return unmapped_instance_uuids(api_db, cell_db, cell['id'], hidden_column=self._hidden_column)

    def unmapped(self, api_db, cell):
        return len(self.unmapped_uuids(api_db, cell))

    def run(self):
        if self.params['max_count'] < 1:
            raise NovaCellsError(f"max_count must be a positive number of instances per batch, not {self.params['max_count']}")
        if self.params['max_batches'] < 1:
            raise NovaCellsError('max_batches must be at least 1')
        api_db = self.api_db()
        cell = require_cell(api_db.cells(), self.params['cell'])
        if self.params['engine'] == 'direct':
            return self.run_direct(api_db, cell)
        before = self.unmapped(api_db, cell)
        if before == 0:
            return dict(changed=False, unmapped_before=0, mapped=0, batches=0)
        args = ['--cell_uuid', cell['uuid'], '--max-count', str(self.params['max_count'])]
        context = dict(cell=cell['name'], uuid=cell['uuid'])
        if self.check_mode:
            self.nova_manage.run(('cell_v2', 'map_instances'), args, context=context)
            return dict(changed=True, unmapped_before=before, mapped=before, batches=0)
        batches = 0
        while True:
            batches += 1
            result = self.nova_manage.run(('cell_v2', 'map_instances'), args, context=context)
            if result.status != MORE:
                break
            if batches >= self.params['max_batches']:
                raise NovaCellsError(f"map_instances for cell {cell['name']!r} still reports more work after {batches} batches of "
                                     f"{self.params['max_count']}; raise max_batches or max_count")
        after = self.unmapped(api_db, cell)
        if after:
            raise NovaCellsError(f"nova-manage map_instances finished but {after} instance(s) of cell {cell['name']!r} are still unmapped")
        return dict(changed=True, unmapped_before=before, mapped=before - after, batches=batches)

    def run_direct(self, api_db, cell):
        uuids = self.unmapped_uuids(api_db, cell)
        if not uuids:
            return dict(changed=False, unmapped_before=0, mapped=0, batches=0)
        if self.check_mode:
            return dict(changed=True, unmapped_before=len(uuids), mapped=len(uuids), batches=0)
        rows = self.cell_db(cell).instance_rows(uuids, hidden_column=self._hidden_column)
        created, statements = _direct.map_instances(api_db, self.cell_db(cell), cell['id'], rows)
        return dict(changed=created > 0, unmapped_before=len(uuids), mapped=created, batches=statements)


def main():
    MapInstancesModule()()


if __name__ == '__main__':
    main()
