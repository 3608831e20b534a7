# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""A fake Nova for the modules' decisions: API and cell databases as Python rows, and a nova-manage that changes them.

``nova`` (the fixture, in conftest.py) answers the SQL the modules send through the real query code of _databases (a fake
connection under ``Database.connection``) and runs ``cell_v2`` commands through the real NovaManage (a fake
``run_command``). Host names compare as the database compares them (case-insensitively). What these tests
prove is the modules' own logic; the same behaviour against real Nova is in tests/integration.
"""

from __future__ import annotations

import json
import re
import uuid as uuidlib

from ansible_collections.nova.cells.plugins.module_utils import _databases
from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID, MARKER_PROJECT_ID, host_key

CELL1_UUID = '11111111-1111-4111-8111-111111111111'
API_URL = 'mysql+pymysql://nova:ApiPw0rd@db/nova_api'
CELL1_DB = 'mysql+pymysql://nova:Cell1Pw0rd@db/nova_cell1'
CELL1_MQ = 'rabbit://nova:MqPw0rd@mq:5672/cell1'
NOVA_CONF = f'''[DEFAULT]
transport_url = {CELL1_MQ}
[api_database]
connection = {API_URL}
[database]
connection = {CELL1_DB}
'''


class Cursor:
    def __init__(self, nova, database):
        self.nova, self.database = nova, database
        self.rows = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        args = list(args or [])
        self.nova.statements.append((self.database, sql, args))
        self.rows = self.nova.answer(self.database, ' '.join(sql.split()), args)
        return len(self.rows)

    def fetchall(self):
        return self.rows


class Connection:
    def __init__(self, nova, database):
        self.nova, self.database = nova, database

    def cursor(self):
        return Cursor(self.nova, self.database)

    def close(self):
        pass


class FakeNova:
    """The rows of one small deployment; ``answer`` plays MySQL, ``nova_manage`` plays nova-manage 34."""

    def __init__(self):
        self.cells = [
            dict(id=1, uuid=CELL0_UUID, name='cell0', transport_url='none:///',
                 database_connection='mysql+pymysql://nova:Cell0Pw0rd@db/nova_cell0', disabled=0),
            dict(id=2, uuid=CELL1_UUID, name='cell1', transport_url=CELL1_MQ, database_connection=CELL1_DB, disabled=0),
        ]
        self.host_mappings = []        # {host, cell_id}
        self.instance_mappings = []    # {instance_uuid, cell_id, project_id}
        self.cell_tables = {}          # database name -> {'compute_nodes': [...], 'services': [...], 'instances': [...]}
        self.statements = []
        self.commands = []             # argv of every nova-manage run
        self.unreachable = set()       # database names that refuse connections

    # -- building the state ------------------------------------------------------------------
    def tables(self, database='nova_cell1'):
        return self.cell_tables.setdefault(database, {'compute_nodes': [], 'services': [], 'instances': []})

    def add_node(self, host, mapped=0, database='nova_cell1'):
        nodes = self.tables(database)['compute_nodes']
        nodes.append(dict(id=len(nodes) + 1, host=host, mapped=mapped, deleted=0))

    def map_host(self, host, cell_id=2):
        self.host_mappings.append(dict(host=host, cell_id=cell_id))

    def add_instance(self, host='cmp1', deleted=0, mapped_to=None, database='nova_cell1'):
        instances = self.tables(database)['instances']
        instance_uuid = str(uuidlib.UUID(int=len(instances) + 1 + 1000 * len(self.cell_tables)))
        instances.append(dict(id=len(instances) + 1, uuid=instance_uuid, host=host, deleted=deleted, hidden=0,
                              project_id='p', user_id='u', created_at=None))
        if mapped_to is not None:
            self.instance_mappings.append(dict(instance_uuid=instance_uuid, cell_id=mapped_to, project_id='p'))
        return instance_uuid

    def cell(self, name):
        return next(cell for cell in self.cells if cell['name'] == name)

    def writes(self):
        """The statements that would have changed a database (none of the modules write SQL but the direct engines)."""
        return [sql for _db, sql, _args in self.statements if sql.split()[0].upper() in ('INSERT', 'UPDATE', 'DELETE')]

    # -- MySQL ---------------------------------------------------------------------------------
    def answer(self, database, sql, args):
        if database == 'nova_api':
            return self.answer_api(sql, args)
        return self.answer_cell(self.tables(database), sql, args)

    def answer_api(self, sql, args):
        if sql.startswith('SELECT GET_LOCK'):
            return [{'got': 1}]
        if sql.startswith('SELECT RELEASE_LOCK'):
            return [{'released': 1}]
        if sql.startswith('SELECT id, uuid, name, transport_url, database_connection, disabled FROM cell_mappings'):
            return [dict(cell) for cell in self.cells]
        if sql == 'SELECT host, cell_id FROM host_mappings ORDER BY host':
            return sorted((dict(row) for row in self.host_mappings), key=lambda row: row['host'])
        if sql == 'SELECT host, cell_id FROM host_mappings WHERE cell_id = %s ORDER BY host':
            return sorted((dict(row) for row in self.host_mappings if row['cell_id'] == args[0]), key=lambda row: row['host'])
        if sql.startswith('SELECT h.host, h.cell_id, c.uuid AS cell_uuid'):
            for row in self.host_mappings:
                if host_key(row['host']) == host_key(args[0]):
                    cell = next(cell for cell in self.cells if cell['id'] == row['cell_id'])
                    return [dict(host=row['host'], cell_id=cell['id'], cell_uuid=cell['uuid'], cell_name=cell['name'])]
            return []
        if sql.startswith('SELECT host FROM host_mappings WHERE host IN'):
            wanted = {host_key(host) for host in args}
            return [{'host': row['host']} for row in self.host_mappings if host_key(row['host']) in wanted]
        if sql.startswith('SELECT cell_id, COUNT(*) AS n FROM instance_mappings'):
            counts = {}
            for row in self.instance_mappings:
                if row['project_id'] != MARKER_PROJECT_ID:
                    counts[row['cell_id']] = counts.get(row['cell_id'], 0) + 1
            return [{'cell_id': cell_id, 'n': n} for cell_id, n in counts.items()]
        if sql.startswith('SET SESSION'):
            return []
        if sql.startswith('SELECT COUNT(*) AS n, GROUP_CONCAT(instance_uuid'):
            uuids = [row['instance_uuid'] for row in self.instance_mappings if row['cell_id'] == args[0]]
            return [{'n': len(uuids), 'v': ','.join(uuids) or None}]
        if sql.startswith('SELECT instance_uuid FROM instance_mappings WHERE instance_uuid IN'):
            return [{'instance_uuid': row['instance_uuid']} for row in self.instance_mappings if row['instance_uuid'] in args]
        raise AssertionError(f'unexpected statement on nova_api: {sql}')

    @staticmethod
    def answer_cell(tables, sql, args):
        if sql.startswith('SELECT DISTINCT host FROM compute_nodes'):
            hosts = {node['host'] for node in tables['compute_nodes'] if not node['deleted'] and node['mapped'] < 1 and node['host']}
            return [{'host': host} for host in sorted(hosts)]
        if sql.startswith('SELECT DISTINCT host FROM services'):
            return [{'host': host} for host in sorted(set(tables['services']))]
        if sql == 'SELECT COUNT(*) AS n FROM instances WHERE deleted = 0':
            return [{'n': sum(1 for row in tables['instances'] if not row['deleted'])}]
        if sql == 'SELECT COUNT(*) AS n FROM instances WHERE deleted = 0 AND host = %s':
            return [{'n': sum(1 for row in tables['instances'] if not row['deleted'] and row['host'] == args[0])}]
        if sql.startswith('SELECT uuid, display_name FROM instances WHERE deleted = 0 ORDER BY id LIMIT'):
            live = [row for row in tables['instances'] if not row['deleted']][:args[0]]
            return [{'uuid': row['uuid'], 'display_name': row.get('display_name')} for row in live]
        if sql.startswith('SHOW COLUMNS FROM instances'):
            return [{'Field': 'hidden'}]
        if sql.startswith('SET SESSION'):
            return []
        if sql.startswith('SELECT COUNT(*) AS n, GROUP_CONCAT(uuid'):
            uuids = [row['uuid'] for row in tables['instances'] if not row['hidden']]
            return [{'n': len(uuids), 'v': ','.join(uuids) or None}]
        raise AssertionError(f'unexpected statement on a cell database: {sql}')

    # -- nova-manage -----------------------------------------------------------------------------
    def nova_manage(self, argv):
        """(rc, stdout, stderr) of one nova-manage 34 run, with its effect on the rows."""
        self.commands.append(argv)
        words = argv[argv.index('cell_v2') + 1:]
        command, options = words[0], _options(words[1:])
        return getattr(self, 'cmd_' + command)(options)

    def cmd_create_cell(self, options):
        new = dict(id=max(cell['id'] for cell in self.cells) + 1, uuid=str(uuidlib.uuid4()), name=options['--name'],
                   transport_url=options['--transport-url'], database_connection=options['--database_connection'],
                   disabled=int('--disabled' in options))
        self.cells.append(new)
        return 0, new['uuid'] + '\n', ''

    def cmd_update_cell(self, options):
        cell = next(cell for cell in self.cells if cell['uuid'] == options['--cell_uuid'])
        cell.update(name=options['--name'], transport_url=options['--transport-url'], database_connection=options['--database_connection'])
        if '--disable' in options:
            cell['disabled'] = 1
        if '--enable' in options:
            cell['disabled'] = 0
        return 0, '', ''

    def cmd_delete_cell(self, options):
        cell = next((cell for cell in self.cells if cell['uuid'] == options['--cell_uuid']), None)
        if cell is None:
            return 1, 'Cell with uuid %s was not found.\n' % options['--cell_uuid'], ''
        self.cells.remove(cell)
        self.host_mappings = [row for row in self.host_mappings if row['cell_id'] != cell['id']]
        return 0, '', ''

    def cmd_delete_host(self, options):
        mapping = next((row for row in self.host_mappings if host_key(row['host']) == host_key(options['--host'])), None)
        if mapping is None:
            return 2, 'The host %s is not mapped to any cell.\n' % options['--host'], ''
        self.host_mappings.remove(mapping)
        return 0, '', ''

    def cmd_discover_hosts(self, options):
        cell = next(cell for cell in self.cells if cell['uuid'] == options['--cell_uuid'])
        tables = self.tables(_databases.db_name(cell['database_connection']))
        lines, created = [], False
        for node in tables['compute_nodes']:
            if node['deleted'] or node['mapped'] >= 1 or not node['host']:
                continue
            if any(host_key(row['host']) == host_key(node['host']) for row in self.host_mappings):
                continue
            lines.append(f"Creating host mapping for compute host '{node['host']}': {node['id']}")
            self.map_host(node['host'], cell['id'])
            node['mapped'] = 1
            created = True
        return (0 if created else 1), '\n'.join(lines) + '\n', ''

    def cmd_map_instances(self, options):
        cell = next(cell for cell in self.cells if cell['uuid'] == options['--cell_uuid'])
        tables = self.tables(_databases.db_name(cell['database_connection']))
        known = {row['instance_uuid'] for row in self.instance_mappings}
        for row in tables['instances']:
            if not row['hidden'] and row['uuid'] not in known:
                self.instance_mappings.append(dict(instance_uuid=row['uuid'], cell_id=cell['id'], project_id=row['project_id']))
        return 0, '', ''


def _options(words):
    options, index = {}, 0
    while index < len(words):
        if index + 1 < len(words) and not words[index + 1].startswith('--'):
            options[words[index]] = words[index + 1]
            index += 2
        else:
            options[words[index]] = True
            index += 1
    return options


def secrets_in(result):
    """The fake's passwords found in a result."""
    text = json.dumps(result)
    return [word for word in re.findall(r'\w+Pw0rd', NOVA_CONF + 'Cell0Pw0rd') if word in text]
