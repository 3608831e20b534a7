# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._nova_manage import (
    ABSENT,
    ERROR,
    EXIT_CODES,
    MORE,
    NOOP,
    OK,
    RETRY,
    NovaManage,
    NovaManageError,
    interpret,
)

CELL = {'cell': 'cell1', 'uuid': 'c0ffee00-0000-4000-8000-000000000001', 'host': 'cmp1'}


@pytest.mark.parametrize('command,rc,status', [
    (('cell_v2', 'map_cell0'), 0, OK),
    (('cell_v2', 'create_cell'), 0, OK),
    (('cell_v2', 'create_cell'), 1, ERROR),
    (('cell_v2', 'create_cell'), 2, ERROR),
    (('cell_v2', 'update_cell'), 3, ERROR),
    (('cell_v2', 'update_cell'), 5, ERROR),
    (('cell_v2', 'delete_cell'), 1, ABSENT),
    (('cell_v2', 'delete_cell'), 2, ERROR),
    (('cell_v2', 'delete_cell'), 4, ERROR),
    (('cell_v2', 'discover_hosts'), 0, OK),
    (('cell_v2', 'discover_hosts'), 1, NOOP),
    (('cell_v2', 'discover_hosts'), 2, RETRY),
    (('cell_v2', 'delete_host'), 2, ABSENT),
    (('cell_v2', 'delete_host'), 3, ERROR),
    (('cell_v2', 'map_instances'), 1, MORE),
    (('cell_v2', 'map_instances'), 127, ERROR),
    (('db', 'sync'), 1, ERROR),
])
def test_exit_code_table(command, rc, status):
    assert interpret(command, rc, 'out', CELL).status == status


@pytest.mark.parametrize('command', sorted(EXIT_CODES))
def test_every_command_treats_255_as_a_crash(command):
    outcome = interpret(command, 255, 'An error has occurred:\nTraceback...\nCellMappingNotFound: Cell x has no mapping.', CELL)
    assert outcome.status == ERROR
    assert 'rc 255' in outcome.message and 'CellMappingNotFound' in outcome.message


def test_crash_with_a_traceback_names_the_final_exception_without_the_sql():
    output = '\n'.join([
        'An error has occurred:',
        'Traceback (most recent call last):',
        '  File "/nova/cmd/manage.py", line 3380, in main',
        '    ret = fn(*fn_args, **fn_kwargs)',
        '          ^^^^^^^^^^^^^^^^^^^^^^^^^',
        "oslo_db.exception.DBConnectionError: (pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')",
        '[SQL: SELECT compute_nodes.id AS compute_nodes_id FROM compute_nodes]',
        "[parameters: {'deleted_1': 0}]",
        '(Background on this error at: https://sqlalche.me/e/21/e3q8)',
    ])
    message = interpret(('cell_v2', 'discover_hosts'), 255, output, CELL).message
    assert 'rc 255' in message and "DBConnectionError: (pymysql.err.OperationalError) (2013, 'Lost connection" in message
    assert 'check the database server' in message
    assert '[SQL:' not in message and 'parameters' not in message and 'File "' not in message


def test_unexpected_rc_is_an_error_naming_the_command():
    outcome = interpret(('cell_v2', 'create_cell'), 42, '', CELL)
    assert outcome.status == ERROR
    assert 'create_cell exited with unexpected rc 42' in outcome.message


@pytest.mark.parametrize('rc,advice', [(2, 'force=true'), (3, 'force does not override'), (4, 'archive_deleted_rows')])
def test_delete_cell_messages_say_what_to_do(rc, advice):
    assert advice in interpret(('cell_v2', 'delete_cell'), rc, 'x', CELL).message


def test_long_output_is_summarised_to_its_tail():
    output = '\n'.join('line %d' % i for i in range(100))
    message = interpret(('cell_v2', 'list_cells'), 255, output).message
    assert 'line 99' in message and 'line 10\n' not in message


class FakeRunner:
    def __init__(self, rc=0, stdout='', stderr=''):
        self.calls = []
        self.reply = (rc, stdout, stderr)

    def __call__(self, argv, environ_update=None):
        self.calls.append((argv, environ_update))
        return self.reply


def manage(runner, check_mode=False, secrets=None):
    return NovaManage(runner, ['true'], ['/etc/nova/nova.conf', '/etc/nova/extra.conf'],
                      secrets=set(secrets or ()), check_mode=check_mode)


def test_argv_passes_every_config_file_and_fail_fast_environment():
    runner = FakeRunner()
    manage(runner).run(('cell_v2', 'list_cells'), ['--verbose'], changes_state=False)
    argv, env = runner.calls[0]
    assert argv == ['true', '--config-file', '/etc/nova/nova.conf', '--config-file', '/etc/nova/extra.conf',
                    'cell_v2', 'list_cells', '--verbose']
    assert env == {'OS_DEFAULT__USE_STDERR': 'true', 'OS_DATABASE__MAX_RETRIES': '0', 'OS_API_DATABASE__MAX_RETRIES': '0'}


def test_recorded_commands_and_output_are_masked():
    runner = FakeRunner(rc=2, stdout='already exists for url mysql://u:s3cret@h/db')
    nova_manage = manage(runner, secrets={'s3cret'})
    with pytest.raises(NovaManageError) as info:
        nova_manage.run(('cell_v2', 'create_cell'), ['--database_connection', 'mysql://u:s3cret@h/db'], CELL)
    assert 's3cret' not in str(info.value)
    assert 's3cret' not in info.value.result.stdout
    assert nova_manage.commands == ['true --config-file /etc/nova/nova.conf --config-file /etc/nova/extra.conf '
                                    'cell_v2 create_cell --database_connection mysql://u:****@h/db']


def test_check_mode_records_but_does_not_run_state_changes():
    runner = FakeRunner()
    nova_manage = manage(runner, check_mode=True)
    assert nova_manage.run(('cell_v2', 'map_cell0'), []) is None
    assert runner.calls == []
    assert len(nova_manage.commands) == 1


def test_missing_nova_manage_is_a_clear_error():
    nova_manage = NovaManage(FakeRunner(), ['/nonexistent/nova-manage'], [])
    with pytest.raises(NovaManageError, match='command not found; set nova_manage'):
        nova_manage.run(('cell_v2', 'list_cells'), changes_state=False)
