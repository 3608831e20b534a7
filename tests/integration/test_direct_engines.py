"""engine=direct of discover_hosts and map_instances against real nova-manage 34.0.0: parity and concurrency.

Parity: two identical worlds (an API database and two cell databases each, with Nova's real schema cloned with
CREATE TABLE ... LIKE, and the same synthetic rows) are converged, one with ``engine: nova_manage`` (real
nova-manage), the other with ``engine: direct``. After every phase the two worlds must hold the same rows: every
table of every database, every column; ids of API rows are compared by order only (the insertion order nova-manage
uses, oldest first), and timestamps by what they are: NULL, the fixture's value, or "written by this run".

Concurrency: a real ``nova-manage cell_v2 discover_hosts`` runs while the module runs (both engines), and two direct
runs race each other; every host must be mapped exactly once, by exactly one writer, and every node Nova would
mark must be marked.
"""

from __future__ import annotations

import datetime
import re
import threading
import time
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
from harness import Lab

TEMPLATE_API_DB = 'nova_api'
FIXTURE_TIME = datetime.datetime(2001, 1, 1, 12, 0, 0)
FIXTURE_EPOCH = datetime.datetime(2010, 1, 1)   # anything later was written by a run
NAMESPACE = uuidlib.UUID('6f1c2a4e-0000-4000-8000-00000000de00')
# nova.conf of both worlds: nova-manage writes these into NULL / 0.0 ratio columns of the nodes it loads.
RATIO_CONF = {'cpu_allocation_ratio': '8.0', 'initial_ram_allocation_ratio': '1.5'}


def det_uuid(*parts):
    return str(uuidlib.uuid5(NAMESPACE, '/'.join(str(part) for part in parts)))


class World:
    """An API database and cell databases with Nova's real schema, plus the module arguments to reach them."""

    def __init__(self, lab: Lab, run_module, name: str, cells=('de1', 'de2')):
        self.lab = lab
        self._run_module = run_module
        self.name = name
        self.api_db = f'nova_api_{name}'
        self.cell_dbs = {cell: f'nova_{name}_{cell}' for cell in cells}
        self.cell_ids = {}
        self._connections = {}
        lab.clone_database(TEMPLATE_API_DB, self.api_db)
        for cell, database in self.cell_dbs.items():
            lab.clone_database(lab.cells['cell1'].database, database)
            self.sql(self.api_db, 'INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) '
                                  'VALUES (%s, %s, %s, %s, %s, 0)',
                     (FIXTURE_TIME, det_uuid('cell', cell), cell, lab.transport_url(f'{name}_{cell}'), lab.db_url(database)))
            self.cell_ids[cell] = self.sql(self.api_db, 'SELECT id FROM cell_mappings WHERE name = %s', (cell,))[0]['id']
        self.conf = lab.write_config(f'{name}-api', {
            'DEFAULT': {'transport_url': lab.transport_url(f'{name}_default'), **RATIO_CONF},
            'api_database': {'connection': lab.db_url(self.api_db)},
            'database': {'connection': lab.db_url(next(iter(self.cell_dbs.values())))},
        })

    # -- SQL as root, one connection per database (hundreds of statements per comparison) ----------
    def sql(self, database, statement, args=None):
        connection = self._connections.get(database)
        if connection is None:
            connection = self._connections[database] = self.lab.db_connect(database, admin=True)
        with connection.cursor(pymysql.cursors.DictCursor) as cursor:
            cursor.execute(statement, args)
            return list(cursor.fetchall())

    def insert_many(self, database, head, row_sql, rows, chunk=500):
        for start in range(0, len(rows), chunk):
            part = rows[start:start + chunk]
            self.sql(database, head + ', '.join([row_sql] * len(part)), [value for row in part for value in row])

    def run(self, module, check=False, **kwargs):
        args = {'config_files': [str(self.conf)], 'nova_manage': self.lab.nova_manage_command}
        args.update(kwargs)
        return self._run_module(module, args, check=check)

    def cell_uuid(self, cell):
        return det_uuid('cell', cell)

    # -- synthetic rows (deterministic: both worlds get identical ones) ------------------------------
    def add_nodes(self, cell, nodes):
        """nodes: dicts with host and optional hypervisor_hostname, mapped, deleted, ratios, updated_at."""
        rows = []
        for node in nodes:
            hypervisor = node.get('hypervisor_hostname', node['host'])
            rows.append((FIXTURE_TIME, node.get('updated_at'), node['host'], hypervisor, det_uuid('node', cell, node['host'], hypervisor),
                         node.get('cpu', 16.0), node.get('ram', 1.5), node.get('disk', 1.0), node.get('mapped', 0), node.get('numa')))
        self.insert_many(
            self.cell_dbs[cell],
            'INSERT INTO compute_nodes (created_at, updated_at, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, '
            'vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, supported_instances, stats, '
            'cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, deleted, mapped, numa_topology) VALUES ',
            '(%s, %s, %s, %s, %s, 1000, 800000, 600000, 0, 512, 0, "fake", 1000, "{}", \'[["x86_64", "fake", "hvm"]]\', '
            '\'{"failed_builds": "0"}\', %s, %s, %s, 0, %s, %s)', rows)
        for node in nodes:
            if node.get('deleted'):
                self.sql(self.cell_dbs[cell], 'UPDATE compute_nodes SET deleted = id, deleted_at = %s WHERE host = %s',
                         (FIXTURE_TIME, node['host']))

    def add_services(self, cell, hosts):
        self.insert_many(
            self.cell_dbs[cell],
            'INSERT INTO services (created_at, host, `binary`, topic, report_count, disabled, deleted, uuid, forced_down, version) VALUES ',
            '(%s, %s, "nova-compute", "compute", 0, %s, 0, %s, 0, 74)',
            [(FIXTURE_TIME, host, index % 2, det_uuid('service', cell, host)) for index, host in enumerate(hosts)])

    def add_instances(self, cell, specs):
        """specs: dicts with key, created (datetime), and optional deleted, hidden, project, user."""
        rows = [(spec['created'], det_uuid('instance', cell, spec['key']), spec.get('user', 'u1'), spec.get('project', 'p1'),
                 f"vm-{spec['key']}", f"vm-{spec['key']}", spec.get('hidden', 0)) for spec in specs]
        self.insert_many(
            self.cell_dbs[cell],
            'INSERT INTO instances (created_at, deleted, uuid, user_id, project_id, display_name, hostname, host, node, vm_state, '
            'power_state, memory_mb, vcpus, root_gb, ephemeral_gb, instance_type_id, launched_at, locked, cleaned, hidden) VALUES ',
            '(%s, 0, %s, %s, %s, %s, %s, "cmp", "cmp", "active", 1, 512, 1, 1, 0, 1, NULL, 0, 0, %s)', rows)
        deleted = [det_uuid('instance', cell, spec['key']) for spec in specs if spec.get('deleted')]
        if deleted:
            self.sql(self.cell_dbs[cell], 'UPDATE instances SET deleted = id, deleted_at = %s WHERE uuid IN %s', (FIXTURE_TIME, deleted))

    def add_host_mapping(self, cell, host):
        self.sql(self.api_db, 'INSERT INTO host_mappings (created_at, cell_id, host) VALUES (%s, %s, %s)',
                 (FIXTURE_TIME, self.cell_ids[cell], host))

    def add_instance_mapping(self, cell, instance_cell, key, queued_for_delete=None, marker=False):
        instance_uuid = det_uuid('instance', instance_cell, key)
        if marker:
            self.sql(self.api_db, 'INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id) '
                                  'VALUES (%s, %s, NULL, %s, %s)',
                     (FIXTURE_TIME, instance_uuid.replace('-', ' '), 'INSTANCE_MIGRATION_MARKER', 'INSTANCE_MIGRATION_MARKER'))
            return
        self.sql(self.api_db, 'INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, queued_for_delete) '
                              'VALUES (%s, %s, %s, "p1", "u1", %s)', (FIXTURE_TIME, instance_uuid, self.cell_ids[cell], queued_for_delete))

    # -- state ------------------------------------------------------------------------------------
    def snapshot(self):
        """Every table of every database of this world, normalised for comparison with the other world."""
        state = {'api': self.dump(self.api_db, api=True)}
        for cell, database in self.cell_dbs.items():
            state[cell] = self.dump(database, api=False)
        return state

    def dump(self, database, api):
        columns = {}
        for row in self.sql(database, 'SELECT TABLE_NAME AS t, COLUMN_NAME AS c FROM information_schema.COLUMNS '
                                      'WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME, ORDINAL_POSITION', (database,)):
            columns.setdefault(row['t'], []).append(row['c'])
        tables = {}
        rename = (self.name, 'W')
        for table, names in sorted(columns.items()):
            order = 'id' if 'id' in names else ', '.join(f'`{column}`' for column in names)
            tables[table] = [tuple((column, normalise(row[column], rename)) for column in names if not (api and column == 'id'))
                             for row in self.sql(database, f'SELECT * FROM `{table}` ORDER BY {order}')]
        return tables


def normalise(value, rename):
    if isinstance(value, datetime.datetime):   # NULL stays None
        return value.isoformat() if value < FIXTURE_EPOCH else 'written'
    if isinstance(value, str) and rename[0] in value:
        return value.replace(rename[0], rename[1])
    return value


def assert_same(left: World, right: World, phase: str):
    a, b = left.snapshot(), right.snapshot()
    for database in a:
        for table in a[database]:
            assert a[database][table] == b[database][table], (
                f'{phase}: {database}.{table} differs between engines:\n'
                f'nova_manage only: {[row for row in a[database][table] if row not in b[database][table]][:5]}\n'
                f'direct only:      {[row for row in b[database][table] if row not in a[database][table]][:5]}')
    return a


def populate(world: World):
    """The parity fixture: every case discover_hosts and map_instances treat specially."""
    de1 = [{'host': f'de1-h{i:04d}', 'cpu': None if i % 3 == 0 else (0.0 if i % 3 == 1 else 16.0),
            'ram': None if i % 4 == 0 else 1.5, 'disk': 0.0 if i % 5 == 0 else 1.0,
            'updated_at': FIXTURE_TIME if i % 2 else None} for i in range(200)]
    de1 += [
        {'host': 'de1-multi', 'hypervisor_hostname': 'de1-multi-n1', 'cpu': None},   # ironic-like: two nodes, one host
        {'host': 'de1-multi', 'hypervisor_hostname': 'de1-multi-n2', 'cpu': None},
        {'host': 'de-elsewhere', 'cpu': None},                                      # host already mapped to de2
        {'host': 'de1-premapped', 'cpu': None},                                     # host already mapped here (mapped=0)
        {'host': 'DE1-CASE'},                                                       # mapped as 'de1-case': same host for MySQL
        {'host': 'de1-deleted', 'deleted': True, 'cpu': None},                      # deleted: never looked at
        {'host': 'de1-null', 'mapped': None, 'cpu': None},                          # mapped NULL: invisible to Nova
        {'host': 'de1-done', 'mapped': 1, 'cpu': None},                             # mapped already
    ]
    world.add_nodes('de1', de1)
    world.add_nodes('de2', [{'host': f'de2-h{i:03d}', 'cpu': None if i % 2 else 16.0} for i in range(50)])
    world.add_host_mapping('de2', 'de-elsewhere')
    world.add_host_mapping('de1', 'de1-premapped')
    world.add_host_mapping('de1', 'de1-case')
    world.add_host_mapping('de1', 'de1-done')

    base = datetime.datetime(2001, 6, 1)
    specs = [{'key': i, 'created': base + datetime.timedelta(seconds=i // 3), 'deleted': i % 10 == 0,
              'hidden': int(i % 50 == 7), 'project': f'p{i % 7}', 'user': f'u{i % 5}'} for i in range(300)]
    # Inserted newest first, so ids (instance i gets id 300 - i) and age order differ; ties in created_at
    # are broken by id, as Nova sorts (created_at, id).
    world.add_instances('de1', list(reversed(specs)))
    world.add_instances('de2', [{'key': i, 'created': base + datetime.timedelta(minutes=i)} for i in range(30)])
    nova_order = sorted(range(300), key=lambda i: (i // 3, 300 - i))
    for i in nova_order[:20]:                            # an interrupted --max-count run mapped the first 20 ...
        if not specs[i]['hidden']:
            world.add_instance_mapping('de1', 'de1', i, queued_for_delete=1 if specs[i]['deleted'] else None)
    world.add_instance_mapping('de1', 'de1', nova_order[19], marker=True)   # ... and left its marker
    world.add_instance_mapping('de2', 'de1', 25)                # mapped to the other cell: never changed


@pytest.fixture(name='worlds', scope='module')
def worlds_fixture(nova_lab, run_module):
    # World names use letters that cannot occur in a uuid, so renaming them for the comparison is safe.
    reference, direct = World(nova_lab, run_module, 'wnova'), World(nova_lab, run_module, 'wsql')
    for world in (reference, direct):
        populate(world)
    assert_same(reference, direct, 'fixture')
    return reference, direct


def test_discover_hosts_parity(worlds):
    reference, direct = worlds
    started = time.monotonic()
    by_nova = reference.run('discover_hosts')
    nova_seconds = time.monotonic() - started
    started = time.monotonic()
    by_sql = direct.run('discover_hosts', engine='direct')
    direct_seconds = time.monotonic() - started
    assert not by_nova.failed and not by_sql.failed, (by_nova.msg, by_sql.msg)
    assert by_sql['commands'] == [] and len(by_nova['commands']) == 2
    assert by_nova.changed and by_sql.changed
    assert by_sql['mapped_hosts'] == by_nova['mapped_hosts']
    assert len(by_sql['mapped_hosts']['de1']) == 201 and 'de1-multi' in by_sql['mapped_hosts']['de1']
    # The default engine now compares host names as MySQL does, so DE1-CASE is no candidate for either engine.
    assert by_sql['unmapped_hosts'] == by_nova['unmapped_hosts']
    state = assert_same(reference, direct, 'discover_hosts')

    nodes = {dict(row)['hypervisor_hostname']: dict(row) for row in state['de1']['compute_nodes']}
    assert nodes['de1-multi-n1']['mapped'] == 1 and nodes['de1-multi-n2']['mapped'] == 0
    assert nodes['de-elsewhere']['mapped'] == 0 and nodes['de1-premapped']['mapped'] == 0 and nodes['DE1-CASE']['mapped'] == 0
    assert nodes['de-elsewhere']['cpu_allocation_ratio'] == 8.0 and nodes['de-elsewhere']['updated_at'] == 'written'
    assert nodes['de1-h0000']['ram_allocation_ratio'] == 1.5 and nodes['de1-h0000']['disk_allocation_ratio'] == 1.0
    assert nodes['de1-deleted']['cpu_allocation_ratio'] is None and nodes['de1-deleted']['updated_at'] is None
    assert nodes['de1-null']['cpu_allocation_ratio'] is None and nodes['de1-done']['updated_at'] is None
    print(f'\ndiscover_hosts, 251 hosts in 2 cells: nova_manage engine {nova_seconds:.1f} s, direct engine {direct_seconds:.1f} s')

    again_nova, again_sql = reference.run('discover_hosts'), direct.run('discover_hosts', engine='direct')
    assert not again_nova.changed and not again_sql.changed and again_nova['commands'] == [] == again_sql['commands']
    assert_same(reference, direct, 'discover_hosts again')


def test_check_mode_parity(worlds):
    reference, direct = worlds
    for world in worlds:
        world.add_nodes('de2', [{'host': f'de2-new{i}'} for i in range(3)])
    before = direct.snapshot()
    checked_nova = reference.run('discover_hosts', check=True)
    checked_sql = direct.run('discover_hosts', check=True, engine='direct')
    assert checked_nova.changed and checked_sql.changed
    assert checked_sql['mapped_hosts'] == checked_nova['mapped_hosts'] == {'de2': ['de2-new0', 'de2-new1', 'de2-new2']}
    assert checked_sql['commands'] == [] and direct.snapshot() == before
    checked_nova = reference.run('map_instances', check=True, cell='de1')
    checked_sql = direct.run('map_instances', check=True, cell='de1', engine='direct')
    assert checked_sql.changed and checked_sql['unmapped_before'] == checked_nova['unmapped_before'] == checked_sql['mapped']
    assert direct.snapshot() == before
    assert_same(reference, direct, 'check mode')


def test_map_instances_parity(worlds):
    reference, direct = worlds
    results = {}
    for cell in ('de1', 'de2'):
        results[cell] = (reference.run('map_instances', cell=cell), direct.run('map_instances', cell=cell, engine='direct'))
    for by_nova, by_sql in results.values():
        assert not by_nova.failed and not by_sql.failed, (by_nova.msg, by_sql.msg)
        assert by_nova.changed and by_sql.changed and by_sql['commands'] == []
        assert by_sql['unmapped_before'] == by_nova['unmapped_before'] == by_sql['mapped'] == by_nova['mapped']
    # 300 instances: 6 hidden (never mapped by nova-manage; one of them among the first 20), 19 mapped by the
    # interrupted run, 1 mapped to the other cell.
    assert results['de1'][1]['mapped'] == 300 - 6 - 19 - 1
    state = assert_same(reference, direct, 'map_instances')
    mappings = [dict(row) for row in state['api']['instance_mappings']]
    assert not [row for row in mappings if row['project_id'] == 'INSTANCE_MIGRATION_MARKER']
    created = [row for row in mappings if row['created_at'] == 'written']
    assert {row['queued_for_delete'] for row in created} == {0} and all(row['user_id'] for row in created)

    again = (reference.run('map_instances', cell='de1'), direct.run('map_instances', cell='de1', engine='direct'))
    assert not any(result.changed for result in again) and all(result['commands'] == [] for result in again)
    assert_same(reference, direct, 'map_instances again')


def test_by_service_parity(worlds):
    reference, direct = worlds
    for world in worlds:
        world.add_services('de2', [f'de2-svc{i}' for i in range(5)] + ['de2-h000', 'de2-new0'])
    by_nova = reference.run('discover_hosts', by_service=True)
    by_sql = direct.run('discover_hosts', by_service=True, engine='direct')
    assert by_nova.changed and by_sql.changed
    assert by_sql['mapped_hosts'] == by_nova['mapped_hosts'] == {'de2': ['de2-new0'] + [f'de2-svc{i}' for i in range(5)]}
    state = assert_same(reference, direct, 'by_service')
    nodes = {dict(row)['host']: dict(row) for row in state['de2']['compute_nodes']}
    assert nodes['de2-new0']['mapped'] == 0 and nodes['de2-new0']['updated_at'] is None   # by-service writes no cell row

    rest_nova, rest_sql = reference.run('discover_hosts'), direct.run('discover_hosts', engine='direct')
    assert rest_nova['mapped_hosts'] == rest_sql['mapped_hosts'] == {'de2': ['de2-new1', 'de2-new2']}
    assert_same(reference, direct, 'discover after by_service')


def test_direct_refuses_instances_nova_manage_cannot_map_before_any_write(worlds):
    _reference, direct = worlds
    direct.add_instances('de2', [{'key': 'no-user', 'created': FIXTURE_TIME}])
    direct.sql(direct.cell_dbs['de2'], 'UPDATE instances SET user_id = NULL WHERE uuid = %s', (det_uuid('instance', 'de2', 'no-user'),))
    direct.add_instances('de2', [{'key': 'fine', 'created': FIXTURE_TIME}])
    before = direct.snapshot()
    result = direct.run('map_instances', cell='de2', engine='direct')
    assert result.failed and 'no project_id or user_id' in result.msg and det_uuid('instance', 'de2', 'no-user') in result.msg
    assert direct.snapshot() == before


# -- concurrency -----------------------------------------------------------------------------------

CREATED = re.compile(r"^Creating host mapping for compute host '([^']+)'", re.MULTILINE)


def nova_manage_created(result):
    """Hosts a nova-manage discover_hosts --verbose run really mapped (the last line names the collision on rc 2)."""
    hosts = CREATED.findall(result.stdout)
    return hosts[:-1] if result.rc == 2 and hosts else hosts


def race(world: World, hosts, module_args, delay_rows=20):
    """Start a real nova-manage discover_hosts, run the module once it is inserting, return both results."""
    world.add_nodes('de1', [{'host': host} for host in hosts])
    box = {}
    thread = threading.Thread(target=lambda: box.update(result=world.lab.nova_manage(
        'cell_v2', 'discover_hosts', '--cell_uuid', world.cell_uuid('de1'), '--verbose', config_files=[world.conf], timeout=600)))
    thread.start()
    deadline = time.monotonic() + 120
    while world.sql(world.api_db, 'SELECT COUNT(*) AS n FROM host_mappings')[0]['n'] < delay_rows:
        assert time.monotonic() < deadline and thread.is_alive(), 'nova-manage did not start mapping hosts'
        time.sleep(0.05)
    started_at = world.sql(world.api_db, 'SELECT COUNT(*) AS n FROM host_mappings')[0]['n']
    module = world.run('discover_hosts', cell='de1', **module_args)
    thread.join()
    return box['result'], module, started_at


def assert_mapped_once(world: World, hosts):
    counts = world.sql(world.api_db, 'SELECT host, cell_id, COUNT(*) AS n FROM host_mappings GROUP BY host, cell_id')
    assert sorted(row['host'] for row in counts) == sorted(hosts) and all(row['n'] == 1 for row in counts)
    unmarked = world.sql(world.cell_dbs['de1'], 'SELECT host FROM compute_nodes WHERE mapped != 1')
    assert unmarked == [], f'{len(unmarked)} nodes left unmarked, e.g. {unmarked[:3]}'


def test_direct_engine_interleaves_with_a_running_nova_manage(nova_lab, run_module):
    world = World(nova_lab, run_module, 'wrace1', cells=('de1',))
    hosts = [f'race-{i:05d}' for i in range(1500)]
    manage, module, started_at = race(world, hosts, {'engine': 'direct'})
    assert manage.rc in (0, 2), manage.stdout[-2000:]          # 2: nova-manage's own documented collision
    assert not module.failed and module.changed, module.msg
    ours = module['mapped_hosts']['de1']
    theirs = nova_manage_created(manage)
    assert not set(ours) & set(theirs) and sorted(ours + theirs) == sorted(hosts), (len(ours), len(theirs))
    assert_mapped_once(world, hosts)
    print(f'\nnova-manage had mapped {started_at} hosts when the direct run started; nova-manage mapped {len(theirs)} '
          f'(rc {manage.rc}, {manage.seconds:.1f} s), the direct run {len(ours)}')


def test_nova_manage_engine_interleaves_with_a_running_nova_manage(nova_lab, run_module):
    world = World(nova_lab, run_module, 'wrace2', cells=('de1',))
    hosts = [f'race2-{i:04d}' for i in range(600)]
    manage, module, _started_at = race(world, hosts, {'retry_delay': 1})
    assert manage.rc in (0, 2), manage.stdout[-2000:]
    assert not module.failed, module.msg
    # The nova_manage engine reads back what is mapped to the cell, so it may also list hosts the other run mapped.
    assert set(module['mapped_hosts'].get('de1', [])) <= set(hosts)
    assert_mapped_once(world, hosts)


def test_parallel_direct_runs_split_the_hosts(nova_lab, run_module):
    world = World(nova_lab, run_module, 'wsplit', cells=('de1',))
    hosts = [f'split-{i:05d}' for i in range(3000)]
    world.add_nodes('de1', [{'host': host} for host in hosts])
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _i: world.run('discover_hosts', engine='direct'), range(3)))
    assert not any(result.failed for result in results), [result.msg for result in results]
    reported = [host for result in results for host in result['mapped_hosts'].get('de1', [])]
    assert sorted(reported) == sorted(hosts)   # each host reported by exactly one run
    assert_mapped_once(world, hosts)
