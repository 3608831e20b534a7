#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: archive_deleted_rows
short_description: Move Nova's soft-deleted rows to the shadow tables, in every cell
version_added: 0.2.0
description:
  - Runs C(nova-manage db archive_deleted_rows --verbose) (with C(--all-cells), C(--until-complete), C(--before),
    C(--max_rows), C(--task-log) and C(--purge) as asked) and returns the rows archived per table, as nova-manage
    prints them (C(cell1.instances), C(API_DB.instance_mappings), ...).
  - Exit codes (Nova 34) - 0 nothing archived (C(changed=false)), 1 rows archived (C(changed=true)); 2 invalid
    C(max_rows), 3 API database unreachable, 4 invalid C(before) are refusals before any write and fail the task.
  - Archiving a deleted instance also deletes its instance mapping, request spec and instance group membership in
    the API database (nova-manage does this); rows of live instances are never touched.
  - Check mode counts the soft-deleted rows that would move (C(deleted != 0), and C(deleted_at < before)) in the
    cell databases and reports them in RV(pending); nothing runs.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
options:
  all_cells:
    description:
      - Archive in every mapped cell (C(--all-cells)); V(false) archives only C([database]/connection) of O(config_files).
    type: bool
    default: true
  until_complete:
    description:
      - Repeat batches of O(max_rows) until nothing is left (C(--until-complete)). With V(false) one batch of at most
        O(max_rows) rows per table runs; run the task again while it reports C(changed).
    type: bool
    default: true
  before:
    description:
      - Archive only rows deleted before this date, V(YYYY-MM-DD) or V(YYYY-MM-DD HH:MM[:SS]) (C(--before)). Other
        forms are refused before anything runs (nova-manage itself would read almost any text as some date).
    type: str
  max_rows:
    description:
      - Rows per table and batch (C(--max_rows)), at least 1.
    type: int
    default: 1000
  task_log:
    description:
      - Also archive C(task_log) rows (C(--task-log)); use with O(before).
    type: bool
    default: false
  purge:
    description:
      - After archiving, delete every row of the shadow tables (C(--purge), as M(nova.cells.purge) with O(nova.cells.purge#module:all=true)).
    type: bool
    default: false
'''

EXAMPLES = r'''
- name: Archive what was deleted more than 90 days ago, in every cell
  nova.cells.archive_deleted_rows:
    before: "{{ '%Y-%m-%d' | strftime(now().timestamp() - 90 * 86400) }}"
  run_once: true

- name: Archive and purge everything deleted
  nova.cells.archive_deleted_rows:
    purge: true
'''

RETURN = r'''
archived:
  description: Rows archived per table (C(<cell>.<table>) with O(all_cells), C(API_DB.<table>) for the API database).
  returned: always
  type: dict
  sample: {cell1.instances: 2, cell1.instance_extra: 2, API_DB.instance_mappings: 2}
total:
  description: Rows archived, all tables together (in check mode, that would be archived).
  returned: always
  type: int
purged:
  description: With O(purge), the rows deleted per C(<cell>.<shadow table>).
  returned: when O(purge=true) and not in check mode
  type: dict
pending:
  description: In check mode, the soft-deleted rows per C(<cell>.<table>) that a run would archive (the API database
    rows of deleted instances not included).
  returned: check mode
  type: dict
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._housekeeping import (
    archivable_rows,
    archive_args,
    parse_archive,
    parse_before,
    parse_purge,
)
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import OK

COMMAND = ('db', 'archive_deleted_rows')


class ArchiveDeletedRowsModule(NovaCellsModule):
    argument_spec = dict(
        all_cells=dict(type='bool', default=True),
        until_complete=dict(type='bool', default=True),
        before=dict(type='str'),
        max_rows=dict(type='int', default=1000),
        task_log=dict(type='bool', default=False),
        purge=dict(type='bool', default=False),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        before = None
        if self.params['before'] is not None:
            try:
                before = parse_before(self.params['before'])
            except ValueError as exc:
                raise NovaCellsError(str(exc)) from None
        if self.params['max_rows'] < 1:
            raise NovaCellsError(f"max_rows must be a positive number of rows per table and batch, not {self.params['max_rows']}")
        args = archive_args(all_cells=self.params['all_cells'], until_complete=self.params['until_complete'],
                            before=self.params['before'], max_rows=self.params['max_rows'], purge=self.params['purge'],
                            task_log=self.params['task_log'])
        if self.check_mode:
            pending = {}
            for label, database in self.cell_databases(self.params['all_cells'], 'archives'):
                for table, rows in archivable_rows(database, before=before, task_log=self.params['task_log']).items():
                    pending[f'{label}.{table}'] = rows
            self.nova_manage.run(COMMAND, args)
            total = sum(pending.values())
            self.exit(changed=total > 0, archived={}, total=total, pending=pending)
        result = self.nova_manage.run(COMMAND, args)
        archived = parse_archive(result.stdout)
        extra = dict(purged=parse_purge(result.stdout)) if self.params['purge'] else {}
        self.exit(changed=result.status == OK, archived=archived, total=sum(archived.values()), **extra)


def main():
    ArchiveDeletedRowsModule()()


if __name__ == '__main__':
    main()
