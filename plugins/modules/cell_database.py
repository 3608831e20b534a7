#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cell_database
short_description: Drop the database of a removed cell
version_added: 0.2.0
description:
  - Drops (C(DROP DATABASE)) the database of O(database_connection), the database of the cell O(cell) that was just
    removed, when O(state=absent).
  - "Refuses before any write when: the cell is still mapped (delete the mapping first, M(nova.cells.cell) with
    O(nova.cells.cell#module:state=absent)); the database is the API database or the database of a remaining cell
    mapping (compared by server, port and name, templates rendered as Nova renders them); it still holds live
    instances; O(cell) is cell0."
  - A database that does not exist is nothing to do. Meant for the C(nova.cells.remove_cell) playbook.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
options:
  cell:
    description:
      - The name of the removed cell (exact), for the refusals and messages.
    type: str
    required: true
  database_connection:
    description:
      - The URL of the database to drop (with credentials allowed to drop it).
    type: str
    required: true
  state:
    description:
      - Only V(absent).
    type: str
    choices: [absent]
    default: absent
'''

EXAMPLES = r'''
- name: Drop the database of the removed cell2
  nova.cells.cell_database:
    cell: cell2
    database_connection: "{{ cell2_database_url }}"
    state: absent
    config_files: [/etc/nova/manage/api.conf]
'''

RETURN = r'''
database:
  description: The database name (dropped, or that would be dropped in check mode).
  returned: always
  type: str
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import CELL0_NAME, find_cell
from ansible_collections.nova.cells.plugins.module_utils._databases import Database
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._urls import UrlError, parse_db_url, validate_db_url, with_database


def same_database(left, right):
    """Two database URLs name the same database on the same server (host, port, name)."""
    a, b = parse_db_url(left), parse_db_url(right)
    return ((a['host'] or 'localhost').lower(), a['port'] or 3306, a['database']) == \
        ((b['host'] or 'localhost').lower(), b['port'] or 3306, b['database'])


class CellDatabaseModule(NovaCellsModule):
    argument_spec = dict(
        cell=dict(type='str', required=True),
        database_connection=dict(type='str', required=True, no_log=True),
        state=dict(type='str', choices=['absent'], default='absent'),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_nova_manage = False

    def run(self):
        name, url = self.params['cell'], self.params['database_connection']
        self.register_url_secrets(url)
        try:
            validate_db_url(url, 'database_connection')
        except UrlError as exc:
            raise NovaCellsError(str(exc)) from None
        database = parse_db_url(url)['database']
        if name == CELL0_NAME:
            raise NovaCellsError('cell0 is not removable: every deployment needs it')
        cells = self.api_db().cells()
        if find_cell(cells, name=name) is not None:
            raise NovaCellsError(f'cell {name!r} is still mapped; delete its mapping first (nova.cells.cell name={name} state=absent), '
                                 'then drop its database')
        if same_database(url, self.api_database_url()):
            raise NovaCellsError(f'{database} is the API database; it is not dropped')
        sharing = [cell['name'] or cell['uuid'] for cell in cells if same_database(self.rendered_cell_urls(cell)[1], url)]
        if sharing:
            raise NovaCellsError('{} is the database of cell(s) {}; it is not dropped'.format(database, ', '.join(sharing)))
        server = Database(with_database(url, 'information_schema'), self.params['database_connect_timeout'],
                          label=f'database server of {database}')
        try:
            if not server.scalar('SELECT COUNT(*) AS n FROM information_schema.schemata WHERE schema_name = %s', (database,)):
                return self.exit(changed=False, database=database)
            if server.scalar("SELECT COUNT(*) AS n FROM information_schema.tables WHERE table_schema = %s "
                             "AND table_name = 'instances'", (database,)):
                live = server.scalar('SELECT COUNT(*) AS n FROM `{}`.instances WHERE deleted = 0'.format(database.replace('`', '``')))
                if live:
                    raise NovaCellsError(f'{database} (cell {name!r}) still holds {live} live instance(s); it is not dropped')
            if not self.check_mode:
                server.execute('DROP DATABASE `{}`'.format(database.replace('`', '``')))
        finally:
            server.close()
        return self.exit(changed=True, database=database)


def main():
    CellDatabaseModule()()


if __name__ == '__main__':
    main()
