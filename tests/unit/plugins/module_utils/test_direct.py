# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The direct engines' statements and decisions, against a small in-memory model of the tables they touch.

The model keeps host_mappings with InnoDB's visibility rules for one REPEATABLE READ transaction: a consistent
read sees the rows committed before the snapshot plus the transaction's own inserts; INSERT IGNORE skips any
committed duplicate. ``concurrent`` rows appear (committed by "another writer") right before our INSERT runs.
"""

from __future__ import annotations

import datetime
import re

import pymysql
import pytest

from ansible_collections.nova.cells.plugins.module_utils import _databases, _direct
from ansible_collections.nova.cells.plugins.module_utils._databases import DatabaseError

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5)


class Cursor:
    def __init__(self, database):
        self.database = database
        self.rows = []
        self.warning_count = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, sql, args=None):
        self.database.statements.append((sql, list(args or [])))
        result = self.database.handle(sql, list(args or []))
        self.rows, count, self.warning_count = result
        return count

    def fetchall(self):
        return self.rows


class Connection:
    """A fake PyMySQL connection: every statement goes to ``handle(sql, args)`` -> (rows, count, warnings)."""

    def __init__(self, handle):
        self.handle = handle
        self.statements = []

    def cursor(self):
        return Cursor(self)


class FakeDatabase(_databases.ApiDatabase, _databases.CellDatabase):
    """The real query code of _databases (API and cell queries alike) on a fake connection."""


def Database(handle):
    database = FakeDatabase('mysql+pymysql://nova:pw@db/nova', label='fake database')
    database._connection = Connection(handle)
    database.statements = database._connection.statements
    return database


class ApiModel:
    """host_mappings / instance_mappings with snapshot visibility; ``concurrent`` hosts commit before our INSERT."""

    def __init__(self, mapped=(), concurrent=(), deadlocks=0):
        self.committed = {_databases.host_key(host): host for host in mapped}
        self.concurrent = list(concurrent)
        self.deadlocks = deadlocks
        self.snapshot = None
        self.own = {}
        self.warnings = []
        self.instance_mappings = []
        self.markers = []

    def handle(self, sql, args):
        if sql.startswith('SET TRANSACTION'):
            return [], 0, 0
        if sql.startswith('START TRANSACTION'):
            self.snapshot, self.own = dict(self.committed), {}
            return [], 0, 0
        if sql == 'COMMIT':
            self.committed.update(self.own)
            self.snapshot, self.own = None, {}
            return [], 0, 0
        if sql == 'ROLLBACK':
            self.snapshot, self.own = None, {}
            return [], 0, 0
        if sql.startswith('SELECT host FROM host_mappings WHERE host IN'):
            visible = self.visible()
            return [{'host': visible[_databases.host_key(host)]} for host in args if _databases.host_key(host) in visible], 0, 0
        if sql.startswith('INSERT IGNORE INTO host_mappings'):
            if self.deadlocks:
                self.deadlocks -= 1
                raise pymysql.err.OperationalError(1213, 'Deadlock found when trying to get lock')
            for host in self.concurrent:
                self.committed[_databases.host_key(host)] = host
            self.concurrent = []
            inserted, duplicates = 0, []
            for host in args[2::3]:
                key = _databases.host_key(host)
                if key in self.committed or key in self.own:
                    duplicates.append(host)
                else:
                    self.own[key] = host
                    inserted += 1
            self.warnings = [{'Level': 'Warning', 'Code': 1062, 'Message': "Duplicate entry '%s'" % host} for host in duplicates]
            return [], inserted, len(self.warnings)
        if sql.startswith('SELECT host FROM host_mappings WHERE cell_id'):
            visible = self.visible()
            return [{'host': visible[_databases.host_key(host)]} for host in args[1:] if _databases.host_key(host) in visible], 0, 0
        if sql == 'SHOW WARNINGS':
            return self.warnings, 0, 0
        if sql.startswith('SET SESSION max_error_count'):
            return [], 0, 0
        if sql.startswith('SELECT COUNT(*) AS n, GROUP_CONCAT(instance_uuid') and sql.endswith('WHERE cell_id = %s'):
            uuids = [row[1] for row in self.instance_mappings if row[2] == args[0]]
            return [{'n': len(uuids), 'v': ','.join(uuids) or None}], 0, 0
        if sql.startswith('SELECT instance_uuid FROM instance_mappings WHERE instance_uuid IN'):
            return [{'instance_uuid': row[1]} for row in self.instance_mappings if row[1] in args], 0, 0
        if sql.startswith('INSERT IGNORE INTO instance_mappings'):
            rows = [tuple(args[index:index + 6]) for index in range(0, len(args), 6)]
            known = {row[1] for row in self.instance_mappings}
            new = [row for row in rows if row[1] not in known]
            self.instance_mappings.extend(new)
            return [], len(new), len(rows) - len(new)
        if sql.startswith('SELECT id, instance_uuid FROM instance_mappings WHERE project_id'):
            return [{'id': index, 'instance_uuid': uuid} for index, uuid in enumerate(self.markers)], 0, 0
        if sql.startswith('DELETE FROM instance_mappings'):
            ids = set(args[1:])
            self.markers = [uuid for index, uuid in enumerate(self.markers) if index not in ids]
            return [], len(ids), 0
        raise AssertionError('unexpected statement: %s' % sql)

    def visible(self):
        base = self.snapshot if self.snapshot is not None else self.committed
        return {**base, **self.own}


class CellModel:
    def __init__(self, nodes=(), services=(), instances=(), concat_limit=None):
        self.concat_limit = concat_limit
        self.nodes = [dict(node) for node in nodes]
        self.services = list(services)
        self.instances = [dict(row) for row in instances]
        self.updates = []

    def handle(self, sql, args):
        if sql.startswith('SELECT id, host, cpu_allocation_ratio'):
            return [dict(node) for node in self.nodes if node.get('mapped') == 0], 0, 0
        if sql.startswith('SELECT id, host FROM services'):
            return [{'id': index + 1, 'host': host} for index, host in enumerate(self.services)], 0, 0
        if sql.startswith('UPDATE compute_nodes'):
            self.updates.append((sql, args))
            return [], 0, 0
        if sql.startswith('SELECT uuid FROM instances WHERE uuid IN'):
            return [{'uuid': row['uuid']} for row in self.instances if row['uuid'] in args], 0, 0
        if sql.startswith('SET SESSION max_error_count'):
            return [], 0, 0
        if sql.startswith('SELECT COUNT(*) AS n, GROUP_CONCAT(uuid'):
            uuids = [row['uuid'] for row in self.instances if not row.get('hidden')]
            value = ','.join(uuids)[:self.concat_limit] if uuids else None
            return [{'n': len(uuids), 'v': value}], 0, 0
        if sql.startswith('SELECT uuid FROM instances WHERE'):   # the row-by-row fallback
            return [{'uuid': row['uuid']} for row in self.instances if not row.get('hidden')], 0, 0
        if sql.startswith('SELECT id, uuid, project_id, user_id, created_at FROM instances WHERE uuid IN'):
            return [dict(row) for row in reversed(self.instances) if row['uuid'] in args], 0, 0
        if sql.startswith('SELECT COUNT(*) AS n FROM instances'):
            return [{'n': len([row for row in self.instances if not row.get('hidden')])}], 0, 0
        if sql.startswith('SELECT id, uuid, project_id, user_id, created_at FROM instances WHERE (hidden'):
            assert sql.endswith('ORDER BY created_at, id')
            return sorted((dict(row) for row in self.instances if not row.get('hidden')), key=mysql_age_order), 0, 0
        raise AssertionError('unexpected statement: %s' % sql)


def mysql_age_order(row):
    return (row['created_at'] is not None, row['created_at'] or datetime.datetime.min, row['id'])


def node(node_id, host, mapped=0, cpu=16.0, ram=1.5, disk=1.0, legacy_numa=0):
    return {'id': node_id, 'host': host, 'mapped': mapped, 'cpu_allocation_ratio': cpu, 'ram_allocation_ratio': ram,
            'disk_allocation_ratio': disk, 'legacy_numa': legacy_numa}


def run_discovery(api, cell, by_service=False, ratios=None):
    api_db, cell_db = Database(api.handle), Database(cell.handle)
    plan = _direct.plan_discovery(api_db, cell_db, by_service)
    ratios = ratios or {'cpu_allocation_ratio': 4.0, 'ram_allocation_ratio': 1.0, 'disk_allocation_ratio': 1.0}
    mapped = _direct.discover(api_db, cell_db, 7, plan, ratios, now=NOW)
    return plan, mapped, api_db, cell_db


def marked_ids(cell):
    ids = []
    for sql, args in cell.updates:
        if sql.startswith('UPDATE compute_nodes SET mapped = 1'):
            assert args[0] == NOW
            ids.extend(args[1:])
    return ids


# -- configuration ---------------------------------------------------------------------------------

@pytest.mark.parametrize('conf,expected', [
    ({}, {'cpu_allocation_ratio': 4.0, 'ram_allocation_ratio': 1.0, 'disk_allocation_ratio': 1.0}),
    ({'cpu_allocation_ratio': '8', 'initial_ram_allocation_ratio': '1.5'},
     {'cpu_allocation_ratio': 8.0, 'ram_allocation_ratio': 1.5, 'disk_allocation_ratio': 1.0}),
    # Nova: ``r if r else initial`` - a configured 0.0 falls back to the initial value.
    ({'cpu_allocation_ratio': '0.0', 'initial_cpu_allocation_ratio': '2'},
     {'cpu_allocation_ratio': 2.0, 'ram_allocation_ratio': 1.0, 'disk_allocation_ratio': 1.0}),
])
def test_allocation_ratios_follow_nova(conf, expected):
    assert _direct.allocation_ratios(lambda section, option: conf.get(option) if section == 'DEFAULT' else None) == expected


def test_allocation_ratio_that_is_no_number_is_refused():
    with pytest.raises(_direct.DirectUnsupported, match='not a number'):
        _direct.allocation_ratios(lambda _section, option: 'lots' if option == 'cpu_allocation_ratio' else None)


def test_host_key_compares_like_mysql_general_ci():
    assert _databases.host_key('CMP1 ') == _databases.host_key('cmp1') == 'cmp1'
    assert _databases.host_key(' cmp1') != _databases.host_key('cmp1')   # leading space counts


def test_chunks_and_placeholders():
    assert [len(chunk) for chunk in _databases.chunks(range(2500))] == [1000, 1000, 500]
    assert _databases.placeholders(2) == '%s, %s'
    assert _databases.placeholders(2, 3) == '(%s, %s, %s), (%s, %s, %s)'


# -- discover_hosts --------------------------------------------------------------------------------

def test_plan_lists_unmapped_hosts_in_node_order_once_and_skips_mapped_ones():
    api = ApiModel(mapped=['b', 'elsewhere', 'case'])
    cell = CellModel(nodes=[node(5, 'z'), node(1, 'a'), node(2, 'a'), node(3, 'b'), node(4, 'CASE'), node(6, None),
                            node(7, 'done', mapped=1)])
    cell.nodes.sort(key=lambda row: row['id'])
    plan = _direct.plan_discovery(Database(api.handle), Database(cell.handle))
    assert plan.hosts == ['a', 'z'] and plan.unsupported is None and not plan.by_service


def test_discover_marks_only_the_first_node_of_each_newly_mapped_host():
    api = ApiModel(mapped=['b'])
    cell = CellModel(nodes=[node(1, 'a'), node(2, 'a'), node(3, 'b'), node(4, 'c')])
    plan, mapped, _api_db, _cell_db = run_discovery(api, cell)
    assert mapped == ['a', 'c'] and plan.hosts == ['a', 'c']
    assert marked_ids(cell) == [1, 4]
    assert set(api.committed) == {'a', 'b', 'c'}


def test_hosts_a_concurrent_writer_mapped_are_neither_reported_nor_marked():
    api = ApiModel(concurrent=['b'])   # e.g. nova-manage commits 'b' after our plan and snapshot, before our INSERT
    cell = CellModel(nodes=[node(1, 'a'), node(2, 'b'), node(3, 'c')])
    plan, mapped, api_db, _cell_db = run_discovery(api, cell)
    assert plan.hosts == ['a', 'b', 'c'] and mapped == ['a', 'c']
    assert marked_ids(cell) == [1, 3]
    assert ('SHOW WARNINGS', []) in api_db.statements   # the duplicate was checked for what it is


def test_a_host_mapped_between_plan_and_transaction_is_not_inserted_again():
    api = ApiModel()
    cell = CellModel(nodes=[node(1, 'a'), node(2, 'b')])
    api_db, cell_db = Database(api.handle), Database(cell.handle)
    plan = _direct.plan_discovery(api_db, cell_db)
    api.committed['a'] = 'a'
    ratios = {'cpu_allocation_ratio': 4.0, 'ram_allocation_ratio': 1.0, 'disk_allocation_ratio': 1.0}
    mapped = _direct.discover(api_db, cell_db, 7, plan, ratios, now=NOW)
    assert mapped == ['b'] and marked_ids(cell) == [2]
    inserts = [args for sql, args in api_db.statements if sql.startswith('INSERT IGNORE')]
    assert inserts == [[NOW, 7, 'b']]


def test_warnings_other_than_duplicates_fail_the_run():
    api = ApiModel()
    original = api.handle

    def handle(sql, args):
        if sql == 'SHOW WARNINGS':
            return [{'Level': 'Warning', 'Code': 1452, 'Message': 'Cannot add or update a child row'}], 0, 0
        rows, count, _warnings = original(sql, args)
        return rows, count, 1 if sql.startswith('INSERT') else 0

    api.handle = handle
    with pytest.raises(DatabaseError, match='1452'):
        run_discovery(api, CellModel(nodes=[node(1, 'a')]))
    assert api.committed == {}   # rolled back


def test_deadlocks_are_retried_in_a_new_transaction():
    api = ApiModel(deadlocks=2)
    _plan, mapped, api_db, _cell_db = run_discovery(api, CellModel(nodes=[node(1, 'a')]))
    assert mapped == ['a']
    statements = [sql for sql, _args in api_db.statements]
    assert statements.count('ROLLBACK') == 2
    assert len([sql for sql in statements if sql.startswith('SET SESSION')]) == 1   # once per connection


def test_allocation_ratios_are_written_where_nova_manage_writes_them():
    api = ApiModel(mapped=['old'])
    cell = CellModel(nodes=[node(1, 'a', cpu=None), node(2, 'old', disk=0.0), node(3, 'fine')])
    run_discovery(api, cell, ratios={'cpu_allocation_ratio': 8.0, 'ram_allocation_ratio': 1.5, 'disk_allocation_ratio': 1.0})
    (sql, args), = [update for update in cell.updates if 'allocation_ratio' in update[0]]
    assert 'cpu_allocation_ratio = IF(cpu_allocation_ratio IS NULL OR cpu_allocation_ratio = 0, %s, cpu_allocation_ratio)' in sql
    assert args == [8.0, 1.5, 1.0, NOW, 1, 2]   # every loaded node that needs it, mapped by this run or not


def test_by_service_writes_nothing_to_the_cell_database():
    api = ApiModel(mapped=['s2'])
    cell = CellModel(services=['s1', 's2', 's3'])
    plan, mapped, _api_db, _cell_db = run_discovery(api, cell, by_service=True)
    assert plan.by_service and mapped == ['s1', 's3'] and cell.updates == []


@pytest.mark.parametrize('nodes,reason', [
    ([node(1, 'a', legacy_numa=1)], 'numa_topology'),
    ([node(1, 'ñode')], 'non-ASCII'),
])
def test_state_the_engine_does_not_reproduce_is_refused_before_any_write(nodes, reason):
    api = ApiModel()
    cell = CellModel(nodes=nodes)
    plan = _direct.plan_discovery(Database(api.handle), Database(cell.handle))
    assert reason in plan.unsupported
    with pytest.raises(_direct.DirectUnsupported):
        _direct.discover(Database(api.handle), Database(cell.handle), 7, plan, {}, now=NOW)
    assert api.committed == {} and cell.updates == []


# -- map_instances ---------------------------------------------------------------------------------

def instance(key, project='p', user='u', created=None, hidden=0):
    return {'id': key, 'uuid': '00000000-0000-4000-8000-%012d' % key, 'project_id': project, 'user_id': user,
            'created_at': created if created is not None else NOW + datetime.timedelta(seconds=key), 'hidden': hidden}


def test_unmapped_instances_need_two_queries_when_all_are_mapped_here():
    api = ApiModel()
    api.instance_mappings = [(NOW, instance(i)['uuid'], 7, 'p', 'u', 0) for i in range(3)]
    api_db, cell_db = Database(api.handle), Database(CellModel(instances=[instance(i) for i in range(3)] + [instance(3, hidden=1)]).handle)
    assert _databases.unmapped_instance_uuids(api_db, cell_db, 7) == set()
    queries = [sql for sql, _args in api_db.statements + cell_db.statements if sql.startswith('SELECT')]
    assert len(queries) == 2 and 'WHERE (hidden = 0 OR hidden IS NULL)' in cell_db.statements[1][0]


def test_a_cut_short_group_concat_falls_back_to_rows():
    api = ApiModel()
    api_db = Database(api.handle)
    cell_db = Database(CellModel(instances=[instance(i) for i in range(3)], concat_limit=40).handle)
    assert _databases.unmapped_instance_uuids(api_db, cell_db, 7) == {instance(i)['uuid'] for i in range(3)}
    assert any(sql.startswith('SELECT uuid FROM instances WHERE') for sql, _args in cell_db.statements)


@pytest.mark.parametrize('share', ['all: one ordered scan', 'few: chunked IN'])
def test_instance_rows_come_oldest_first_like_nova_manage_walks_them(share):
    early = NOW - datetime.timedelta(days=1)
    cell = CellModel(instances=[instance(1, created=early), instance(2, created=early), instance(3), instance(0)]
                     + [instance(key) for key in range(10, 30 if share.startswith('few') else 10)])
    cell.instances[3]['created_at'] = None   # MySQL sorts NULL first
    cell_db = Database(cell.handle)
    rows = cell_db.instance_rows({row['uuid'] for row in cell.instances[:4]})
    assert [row['id'] for row in rows] == [0, 1, 2, 3]
    assert any(' IN (' in sql for sql, _args in cell_db.statements) == share.startswith('few')


def test_map_instances_inserts_nova_manage_columns_and_skips_mappings_elsewhere():
    api = ApiModel()
    api.instance_mappings = [(NOW, instance(1)['uuid'], 9, 'p', 'u', 0)]   # mapped to another cell: never touched
    api.markers = [instance(2)['uuid'].replace('-', ' '), 'ffffffff ffff ffff ffff ffffffffffff']
    cell = CellModel(instances=[instance(i) for i in range(4)])
    api_db, cell_db = Database(api.handle), Database(cell.handle)
    uuids = _databases.unmapped_instance_uuids(api_db, cell_db, 7)
    rows = cell_db.instance_rows(uuids)
    assert [row['id'] for row in rows] == [0, 2, 3]
    created, statements = _direct.map_instances(api_db, cell_db, 7, rows, now=NOW)
    assert (created, statements) == (3, 1)
    assert api.instance_mappings[1:] == [(NOW, instance(i)['uuid'], 7, 'p', 'u', 0) for i in (0, 2, 3)]
    assert api.markers == ['ffffffff ffff ffff ffff ffffffffffff']   # only this cell's marker is consumed


def test_instances_nova_manage_cannot_map_fail_before_any_write():
    api = ApiModel()
    api_db = Database(api.handle)
    with pytest.raises(DatabaseError, match='no project_id or user_id'):
        _direct.map_instances(api_db, Database(CellModel().handle), 7, [instance(1), instance(2, user=None)], now=NOW)
    assert api_db.statements == []


def test_unknown_column_errors_name_the_release_requirement():
    def handle(sql, args):
        if sql.startswith('INSERT'):
            raise pymysql.err.OperationalError(1054, "Unknown column 'user_id' in 'field list'")
        return [], 0, 0

    with pytest.raises(DatabaseError, match=re.escape('needs the schema of the Nova release')):
        _direct.map_instances(Database(handle), Database(CellModel().handle), 7, [instance(1)], now=NOW)


def test_connections_in_preferred_tls_mode_share_one_context():
    """PyMySQL 1.2 loads the CA bundle for every connection; _databases builds that context once per process."""
    from ansible_collections.nova.cells.plugins.module_utils import _databases

    first = _databases._Connection(host='127.0.0.1', defer_connect=True)
    second = _databases._Connection(host='127.0.0.1', defer_connect=True)
    if getattr(first, 'ctx', None) is None:
        pytest.skip('this PyMySQL does not negotiate TLS by default')
    assert first.ctx is second.ctx and not first._ssl_required
    verified = _databases._Connection(host='127.0.0.1', defer_connect=True, ssl_verify_cert=True)
    assert verified.ctx is not first.ctx and verified._ssl_required   # explicit TLS options are untouched
