#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: online_data_migrations
short_description: Run Nova's online data migrations in every cell, to completion
version_added: 0.2.0
description:
  - Runs C(nova-manage db online_data_migrations --max-count N) once per cell database, and again while nova-manage
    says the batch migrated rows and more may remain (rc 1), until it reports completion (rc 0).
  - Each cell's run gets that cell's database as C([database]/connection) through the environment
    (C(OS_DATABASE__CONNECTION), which oslo.config prefers to config files), rendered from the cell mapping with
    O(config_files) as Nova renders templates. The migrations that move data into the API database (quotas,
    instance mapping fields) run within each cell's run, against C([api_database]/connection) of O(config_files); there
    is no separate API-level command.
  - rc 2 (migrations raised and none progressed) fails the module with the names of the failing migrations; the
    exception itself is in nova-manage's log on stderr (returned as C(stderr) of the failure).
  - C(changed) is true when some row was migrated (the sum of the C(Completed) column over every batch and cell).
  - Run it after the schema syncs and after every service runs the new release (Nova's upgrade order).
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
attributes:
  check_mode:
    support: partial
    details: Nova cannot count pending online migrations without running them; check mode runs nothing, reports the
      commands that would run and C(changed=false).
options:
  cells:
    description:
      - The cells (exact names) whose databases to migrate. Default every mapped cell, cell0 included.
      - Unknown names are refused before anything runs.
    type: list
    elements: str
  local:
    description:
      - Run once against C([database]/connection) of O(config_files) instead of per cell mapping (for a cell whose
        mapping is not readable from here, or before any cell is mapped).
    type: bool
    default: false
  max_count:
    description:
      - Rows per batch (C(--max-count)); every batch is one nova-manage process (a few seconds of start-up).
    type: int
    default: 1000
  max_batches:
    description:
      - Safety limit of batches per cell; the module fails rather than loop forever.
    type: int
    default: 1000
notes:
  - With a containerised nova-manage (O(nova_manage) such as V([podman, exec, nova_api, nova-manage])), pass
    C(OS_DATABASE__CONNECTION) into the container too (V([podman, exec, -e, OS_DATABASE__CONNECTION, ...])).
'''

EXAMPLES = r'''
- name: Online data migrations in every cell, after the upgrade
  nova.cells.online_data_migrations:
    config_files: [/etc/nova/manage/api.conf]
  run_once: true

- name: Only cell2, in batches of 50 rows
  nova.cells.online_data_migrations:
    cells: [cell2]
    max_count: 50
'''

RETURN = r'''
migrated:
  description: Rows migrated by this run, all cells together (0 in check mode).
  returned: always
  type: int
cells:
  description:
    - Per cell (or V(local)), the batches that ran, the rows migrated, and per migration the rows done and the rows
      that the last batch found but could not migrate (C(remaining)).
  returned: always
  type: dict
  sample:
    cell1:
      batches: 2
      migrated: 3
      migrations: {populate_instance_compute_id: {done: 3, remaining: 0}}
      errors: []
commands:
  description: The nova-manage command lines that ran, or would run in check mode (the cell URL masked).
  returned: always
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._housekeeping import (
    add_batch,
    migration_args,
    migration_errors,
    parse_migrations,
    select_cells,
    with_database,
)
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import MORE

COMMAND = ('db', 'online_data_migrations')


class OnlineDataMigrationsModule(NovaCellsModule):
    argument_spec = dict(
        cells=dict(type='list', elements='str'),
        local=dict(type='bool', default=False),
        max_count=dict(type='int', default=1000),
        max_batches=dict(type='int', default=1000),
    )
    module_kwargs = dict(supports_check_mode=True)

    def targets(self):
        """[(label, runner)] in the API database's cell order."""
        if self.params['local']:
            if self.params['cells'] is not None:
                raise NovaCellsError('cells and local=true exclude each other: local=true migrates the database of '
                                     'config_files, cells the databases of the named cell mappings')
            if not self.config.database_connection:
                raise NovaCellsError('local=true migrates [database]/connection of {}, which is not set'.format(', '.join(self.params['config_files'])))
            return [('local', self.nova_manage)]
        try:
            cells = select_cells(self.api_db().cells(), self.params['cells'])
        except ValueError as exc:
            raise NovaCellsError(str(exc)) from None
        if not cells:
            raise NovaCellsError('the API database has no cell mappings; map cell0 and create the cells first, '
                                 'or use local=true')
        return [(cell['name'] or cell['uuid'], with_database(self.nova_manage, self.rendered_cell_urls(cell)[1]))
                for cell in cells]

    def run(self):
        if self.params['max_count'] < 1:
            raise NovaCellsError(f"max_count must be a positive number of rows per batch, not {self.params['max_count']}")
        if self.params['max_batches'] < 1:
            raise NovaCellsError(f"max_batches must be at least 1, not {self.params['max_batches']}")
        args = migration_args(self.params['max_count'])
        report, total = {}, 0
        for label, runner in self.targets():
            entry = dict(batches=0, migrated=0, migrations={}, errors=[])
            report[label] = entry
            if self.check_mode:
                runner.run(COMMAND, args, context=dict(target=label))
                continue
            while True:
                entry['batches'] += 1
                result = runner.run(COMMAND, args, context=dict(target=label))
                batch = parse_migrations(result.stdout)
                add_batch(entry['migrations'], batch)
                entry['migrated'] += sum(counts['done'] for counts in batch.values())
                for name in migration_errors(result.stdout):
                    if name not in entry['errors']:
                        entry['errors'].append(name)
                if result.status != MORE:
                    break
                if entry['batches'] >= self.params['max_batches']:
                    raise NovaCellsError(f"online data migrations of {label!r} still report more work after {entry['batches']} batches of "
                                         f"{self.params['max_count']} rows; raise max_batches or max_count",
                                         cells=report, migrated=total + entry['migrated'])
            total += entry['migrated']
            if entry['errors']:
                self.ansible.warn('online data migrations of {!r}: {} raised but others progressed; the exception is in '
                                  "nova-manage's log".format(label, ', '.join(entry['errors'])))
        self.exit(changed=total > 0, migrated=total, cells=report)


def main():
    OnlineDataMigrationsModule()()


if __name__ == '__main__':
    main()
