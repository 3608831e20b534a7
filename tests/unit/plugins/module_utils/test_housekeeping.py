# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import datetime

import pytest

from ansible_collections.nova.cells.plugins.module_utils import _housekeeping as hk
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import (
    ERROR,
    MORE,
    NOOP,
    OK,
    NovaManage,
    NovaManageError,
    interpret,
)
from ansible_collections.nova.cells.plugins.modules.status_check import nova_status_command

PASSWORD = 'N0va+p@ss/w:rd%!'
URL = 'mysql+pymysql://nova:N0va%2Bp%40ss%2Fw%3Ard%25%21@db:3306/nova_cell1'

MIGRATIONS = '''\
2 rows matched query populate_instance_compute_id, 2 migrated
+---------------------------------------------+--------------+-----------+
|                  Migration                  | Total Needed | Completed |
+---------------------------------------------+--------------+-----------+
|         fill_virtual_interface_list         |      0       |     0     |
|     migrate_quota_limits_to_api_db          |      0       |     0     |
|        populate_instance_compute_id         |      3       |     2     |
|              populate_user_id               |      1       |     1     |
+---------------------------------------------+--------------+-----------+
'''

STATUS = '''\
+-------------------------------------------------------------------+
| Upgrade Check Results                                             |
+-------------------------------------------------------------------+
| Check: Cells v2                                                   |
| Result: Success                                                   |
| Details: None                                                     |
+-------------------------------------------------------------------+
| Check: Placement API                                              |
| Result: Failure                                                   |
| Details: Placement API version 1.39 needed, you have              |
|   1.36.                                                           |
+-------------------------------------------------------------------+
| Check: hw_machine_type unset                                      |
| Result: Warning                                                   |
| Details: hw_machine_type is not set                               |
+-------------------------------------------------------------------+
'''

ARCHIVE = '''\
Archiving.....complete
+-----------------------------+-------------------------+
| Table                       | Number of Rows Archived |
+-----------------------------+-------------------------+
| API_DB.instance_group_member| 0                       |
| API_DB.instance_mappings    | 2                       |
| cell1.instance_extra        | 2                       |
| cell1.instances             | 2                       |
+-----------------------------+-------------------------+
Rows were archived, running purge...
Cell 8d2f(cell1): Deleted 2 rows from shadow_instances based on timestamp column (n/a)
Cell 8d2f(cell1): Deleted 2 rows from shadow_instance_extra based on timestamp column (n/a)
'''


# -- exit codes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize('command,rc,status', [
    (('db', 'online_data_migrations'), 0, OK),
    (('db', 'online_data_migrations'), 1, MORE),
    (('db', 'online_data_migrations'), 2, ERROR),
    (('db', 'online_data_migrations'), 127, ERROR),
    (('db', 'archive_deleted_rows'), 0, NOOP),
    (('db', 'archive_deleted_rows'), 1, OK),
    (('db', 'archive_deleted_rows'), 2, ERROR),
    (('db', 'archive_deleted_rows'), 3, ERROR),
    (('db', 'archive_deleted_rows'), 4, ERROR),
    (('db', 'purge'), 0, OK),
    (('db', 'purge'), 3, NOOP),
    (('db', 'purge'), 1, ERROR),
    (('db', 'purge'), 2, ERROR),
    (('db', 'purge'), 4, ERROR),
    (('upgrade', 'check'), 0, OK),
    (('upgrade', 'check'), 1, hk.WARNING),
    (('upgrade', 'check'), 2, hk.FAILURE),
    (('upgrade', 'check'), 255, ERROR),
    (('db', 'purge'), 255, ERROR),
])
def test_exit_code_tables(command, rc, status):
    assert interpret(command, rc, 'out', {'target': 'cell1'}).status == status


def test_migration_errors_name_the_cell_and_where_the_exception_is():
    outcome = interpret(('db', 'online_data_migrations'), 2, 'Some migrations failed unexpectedly.', {'target': 'cell2'})
    assert "of cell2 failed" in outcome.message and 'log' in outcome.message


def test_registering_twice_keeps_one_table():
    hk.register_exit_codes()
    hk.register_exit_codes()
    assert interpret(('db', 'purge'), 3, '').status == NOOP


# -- parsers ---------------------------------------------------------------------------------------------------
def test_parse_migrations_reads_the_table_only():
    assert hk.parse_migrations(MIGRATIONS) == {
        'fill_virtual_interface_list': {'found': 0, 'done': 0},
        'migrate_quota_limits_to_api_db': {'found': 0, 'done': 0},
        'populate_instance_compute_id': {'found': 3, 'done': 2},
        'populate_user_id': {'found': 1, 'done': 1},
    }


def test_batches_add_up_done_and_keep_the_last_remaining():
    totals = hk.add_batch({}, hk.parse_migrations(MIGRATIONS))
    totals = hk.add_batch(totals, {'populate_instance_compute_id': {'found': 1, 'done': 0}})
    assert totals['populate_instance_compute_id'] == {'done': 2, 'remaining': 1}
    assert totals['populate_user_id'] == {'done': 1, 'remaining': 0}


def test_migration_errors_are_named():
    out = ('Error attempting to run <function populate_user_id at 0x7f>\n'
           'Error attempting to run <bound method PciDevice.populate_dev_uuids of <class x>>\n')
    assert hk.migration_errors(out) == ['populate_user_id', 'populate_dev_uuids']


def test_parse_status_joins_wrapped_details():
    checks = hk.parse_status(STATUS)
    assert checks == [
        {'check': 'Cells v2', 'result': 'success', 'details': None},
        {'check': 'Placement API', 'result': 'failure', 'details': 'Placement API version 1.39 needed, you have 1.36.'},
        {'check': 'hw_machine_type unset', 'result': 'warning', 'details': 'hw_machine_type is not set'},
    ]
    assert hk.summarize_status(checks) == {'success': 1, 'warning': 1, 'failure': 1}


@pytest.mark.parametrize('fail_on,names', [
    ('failure', ['Placement API']),
    ('warning', ['Placement API', 'hw_machine_type unset']),
    ('never', []),
])
def test_status_problems(fail_on, names):
    assert [c['check'] for c in hk.status_problems(hk.parse_status(STATUS), fail_on)] == names


def test_an_unknown_result_counts_as_a_failure():
    checks = [{'check': 'x', 'result': 'odd', 'details': None}]
    assert hk.status_problems(checks, 'failure') == checks


def test_parse_archive_and_purge():
    assert hk.parse_archive(ARCHIVE) == {'API_DB.instance_group_member': 0, 'API_DB.instance_mappings': 2,
                                         'cell1.instance_extra': 2, 'cell1.instances': 2}
    assert hk.parse_purge(ARCHIVE) == {'8d2f(cell1).shadow_instances': 2, '8d2f(cell1).shadow_instance_extra': 2}
    assert hk.parse_purge('DB: Deleted 3 rows from shadow_migrations based on timestamp column deleted_at') == {
        'DB.shadow_migrations': 3}
    assert hk.parse_archive('Nothing was archived.') == {}


# -- arguments and dates ---------------------------------------------------------------------------------------------
def test_archive_args():
    assert hk.archive_args() == ['--verbose', '--max_rows', '1000', '--all-cells', '--until-complete']
    assert hk.archive_args(all_cells=False, until_complete=False, before='2026-01-01', max_rows=5, purge=True,
                           task_log=True) == ['--verbose', '--max_rows', '5', '--before', '2026-01-01', '--task-log', '--purge']


def test_purge_args():
    assert hk.purge_args(purge_all=True) == ['--verbose', '--all', '--all-cells']
    assert hk.purge_args(before='2026-01-01', all_cells=False) == ['--verbose', '--before', '2026-01-01']


@pytest.mark.parametrize('text,expected', [
    ('2026-01-31', datetime.datetime(2026, 1, 31)),
    ('2026-01-31 12:30', datetime.datetime(2026, 1, 31, 12, 30)),
    ('2026-01-31T12:30:05', datetime.datetime(2026, 1, 31, 12, 30, 5)),
])
def test_parse_before(text, expected):
    assert hk.parse_before(text) == expected


@pytest.mark.parametrize('text', ['last tuesday', '31/01/2026', '2026-02-30', '', None, '2026-01-31; DROP TABLE x'])
def test_parse_before_refuses(text):
    with pytest.raises(ValueError, match='before'):
        hk.parse_before(text)


# -- cells -------------------------------------------------------------------------------------------------------
CELLS = [{'name': 'cell0'}, {'name': 'cell1'}, {'name': 'cell10'}, {'name': 'cell2'}]


def test_select_cells_by_exact_name_in_database_order():
    assert hk.select_cells(CELLS, None) == CELLS
    assert hk.select_cells(CELLS, ['cell2', 'cell1']) == [{'name': 'cell1'}, {'name': 'cell2'}]


def test_select_cells_refuses_substrings_and_duplicates():
    with pytest.raises(ValueError, match=r"no cell named 'cell'.*'cell10'"):
        hk.select_cells(CELLS, ['cell'])
    with pytest.raises(ValueError, match='more than one'):
        hk.select_cells(CELLS + [{'name': 'cell2'}], ['cell2'])


# -- the per-cell runner ----------------------------------------------------------------------------------------
class FakeRun:
    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = []

    def __call__(self, argv, environ_update=None):
        self.calls.append((argv, environ_update))
        return self.answers.pop(0)


def test_cell_runner_sets_the_database_in_the_environment_and_masks_it(monkeypatch):
    monkeypatch.setattr('shutil.which', lambda program: '/usr/bin/' + program)
    fake = FakeRun((1, MIGRATIONS, ''), (0, '', ''))
    base = NovaManage(fake, ['nova-manage'], ['/etc/nova/api.conf'], secrets={PASSWORD})
    runner = hk.with_database(base, URL)
    assert runner.run(('db', 'online_data_migrations'), ['--max-count', '5'], context={'target': 'cell1'}).status == MORE
    assert fake.calls[0][1]['OS_DATABASE__CONNECTION'] == URL
    assert fake.calls[0][0] == ['nova-manage', '--config-file', '/etc/nova/api.conf', 'db', 'online_data_migrations',
                                '--max-count', '5']
    assert base.commands == ['OS_DATABASE__CONNECTION=mysql+pymysql://nova:****@db:3306/nova_cell1 nova-manage '
                             '--config-file /etc/nova/api.conf db online_data_migrations --max-count 5']
    assert 'OS_DATABASE__CONNECTION' not in base.environment()


def test_cell_runner_in_check_mode_runs_nothing():
    fake = FakeRun()
    base = NovaManage(fake, ['nova-manage'], ['/etc/nova/api.conf'], check_mode=True)
    assert hk.with_database(base, URL).run(('db', 'online_data_migrations'), ['--max-count', '5']) is None
    assert fake.calls == [] and len(base.commands) == 1


def test_a_failed_migration_raises_with_the_output(monkeypatch):
    monkeypatch.setattr('shutil.which', lambda program: '/usr/bin/' + program)
    base = NovaManage(FakeRun((2, 'Some migrations failed unexpectedly. Check log for details.', 'trace')),
                      ['nova-manage'], ['/etc/nova/api.conf'])
    with pytest.raises(NovaManageError, match='cell1 failed'):
        hk.with_database(base, URL).run(('db', 'online_data_migrations'), [], context={'target': 'cell1'})


@pytest.mark.parametrize('nova_status,nova_manage,expected', [
    (None, ['nova-manage'], ['nova-status']),
    (None, ['/opt/nova/bin/nova-manage'], ['/opt/nova/bin/nova-status']),
    (None, ['podman', 'exec', 'nova_api', 'nova-manage'], ['podman', 'exec', 'nova_api', 'nova-status']),
    (['/x/nova-status'], ['nova-manage'], ['/x/nova-status']),
])
def test_nova_status_command(nova_status, nova_manage, expected):
    assert nova_status_command(nova_status, nova_manage) == expected


# -- check-mode estimates on a fake database ----------------------------------------------------------------------
class FakeDatabase:
    """Answers the information_schema and COUNT queries of archivable_rows / purgeable_rows."""

    def __init__(self, tables, counts):
        self.tables = tables          # {table: [columns]}
        self.counts = counts          # {table: count}
        self.statements = []

    def query(self, sql, args=None):
        self.statements.append((sql, args))
        if 'information_schema.tables' in sql:
            return [{'t': name} for name in sorted(self.tables) if name.startswith('shadow_')]
        if 'information_schema.columns' in sql:
            return [{'c': column} for column in self.tables.get(args[0], [])]
        raise AssertionError(sql)

    def scalar(self, sql, args=None):
        self.statements.append((sql, args))
        table = sql.split('`')[1]
        return self.counts.get(table, 0)


def test_archivable_rows_counts_soft_deleted_rows_of_tables_with_shadows():
    database = FakeDatabase({
        'instances': ['id', 'deleted', 'deleted_at'], 'shadow_instances': ['id'],
        'task_log': ['id', 'updated_at'], 'shadow_task_log': ['id'],
        'instance_actions': ['id', 'deleted'], 'shadow_instance_actions': ['id'],
    }, {'instances': 2, 'task_log': 5, 'instance_actions': 0})
    assert hk.archivable_rows(database) == {'instances': 2}
    before = datetime.datetime(2026, 1, 1)
    assert hk.archivable_rows(database, before=before, task_log=True) == {'instances': 2, 'task_log': 5}
    instances = [s for s in database.statements if '`instances`' in s[0]][-1]
    assert instances == ('SELECT COUNT(*) FROM `instances` WHERE deleted != 0 AND deleted_at < %s', (before,))


def test_purgeable_rows_uses_novas_age_column_per_table():
    database = FakeDatabase({
        'shadow_instances': ['id', 'deleted_at', 'updated_at'], 'shadow_instance_actions': ['id', 'created_at'],
        'shadow_thing': ['id'],
    }, {'shadow_instances': 3, 'shadow_instance_actions': 1, 'shadow_thing': 9})
    assert hk.purgeable_rows(database) == {'shadow_instances': 3, 'shadow_instance_actions': 1, 'shadow_thing': 9}
    database.statements.clear()
    expected = {'shadow_instances': 3, 'shadow_instance_actions': 1}
    assert hk.purgeable_rows(database, before=datetime.datetime(2026, 1, 1)) == expected
    sql = [s[0] for s in database.statements if s[0].startswith('SELECT COUNT')]
    assert 'FROM `shadow_instance_actions` WHERE `created_at` < %s' in sql[0]
    assert 'FROM `shadow_instances` WHERE `deleted_at` < %s' in sql[1]
