#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: purge
short_description: Delete archived rows from Nova's shadow tables, in every cell
version_added: 0.2.0
description:
  - Runs C(nova-manage db purge --verbose) with C(--all) or C(--before DATE), and C(--all-cells) unless
    O(all_cells=false), and returns the rows deleted per shadow table.
  - Only the shadow tables are touched (rows that M(nova.cells.archive_deleted_rows) moved there); live data never.
  - Exit codes (Nova 34) - 0 rows deleted (C(changed=true)), 3 nothing to delete (C(changed=false)); 1 (neither
    C(--all) nor C(--before)), 2 invalid date and 4 API database unreadable are refusals before any write.
  - Check mode counts the rows that would go (by the age column Nova uses per shadow table) and runs nothing.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
options:
  all:
    description:
      - Delete every row of the shadow tables (C(--all)). Exactly one of O(all) and O(before) is required.
    type: bool
    default: false
  before:
    description:
      - Delete the shadow rows older than this date, V(YYYY-MM-DD) or V(YYYY-MM-DD HH:MM[:SS]) (C(--before)); the age is
        C(deleted_at), or C(created_at) for instance actions and their events, C(updated_at) for the task log, as Nova
        decides.
    type: str
  all_cells:
    description:
      - Purge every mapped cell (C(--all-cells)); V(false) purges only C([database]/connection) of O(config_files).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Drop shadow rows older than a year
  nova.cells.purge:
    before: "2025-12-31"
  run_once: true
'''

RETURN = r'''
purged:
  description: Rows deleted per C(<cell>.<shadow table>) (C(DB.<table>) with O(all_cells=false)).
  returned: always
  type: dict
  sample: {"cell1(6c1f...).shadow_instances": 2}
total:
  description: Rows deleted (in check mode, that would be deleted).
  returned: always
  type: int
pending:
  description: In check mode, the rows per C(<cell>.<shadow table>) that a run would delete.
  returned: check mode
  type: dict
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._housekeeping import parse_before, parse_purge, purge_args, purgeable_rows
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import OK

COMMAND = ('db', 'purge')


class PurgeModule(NovaCellsModule):
    argument_spec = {
        'all': dict(type='bool', default=False),
        'before': dict(type='str'),
        'all_cells': dict(type='bool', default=True),
    }
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        purge_all, before_text = self.params['all'], self.params['before']
        if purge_all == (before_text is not None):
            raise NovaCellsError('give exactly one of all=true (every shadow row) and before=YYYY-MM-DD (older rows only)')
        before = None
        if before_text is not None:
            try:
                before = parse_before(before_text)
            except ValueError as exc:
                raise NovaCellsError(str(exc)) from None
        args = purge_args(purge_all=purge_all, before=before_text, all_cells=self.params['all_cells'])
        if self.check_mode:
            pending = {}
            for label, database in self.cell_databases(self.params['all_cells'], 'purges'):
                for table, rows in purgeable_rows(database, before=before).items():
                    pending[f'{label}.{table}'] = rows
            self.nova_manage.run(COMMAND, args)
            total = sum(pending.values())
            self.exit(changed=total > 0, purged={}, total=total, pending=pending)
        result = self.nova_manage.run(COMMAND, args)
        purged = parse_purge(result.stdout)
        self.exit(changed=result.status == OK, purged=purged, total=sum(purged.values()))


def main():
    PurgeModule()()


if __name__ == '__main__':
    main()
