# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""db_sync's decisions on fake databases: nova-manage runs only when a database is behind the installed head."""

from __future__ import annotations

import json
import os

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.module_utils._releases import nova_python
from ansible_collections.nova.cells.plugins.modules import db_sync

HEAD = '13863f4e1612'
OLD = '8f2f1571d55b'


class FakeDatabase:
    def __init__(self, name, version):
        self.name = name
        self.version = version

    def schema_version(self):
        return self.version


class FakeNovaManage:
    """Records the commands; a real run migrates every fake database to the head."""

    def __init__(self, databases, check_mode):
        self.databases = databases
        self.check_mode = check_mode
        self.commands = []

    def run(self, command, args=(), **_kwargs):
        self.commands.append(' '.join(['nova-manage', *command, *args]))
        if not self.check_mode:
            for database in self.databases:
                database.version = HEAD


@pytest.fixture(name='fake')
def fake_fixture(monkeypatch):
    state = {'databases': [], 'head': HEAD, 'warnings': []}

    def nova_manage(self):
        if self._nova_manage is None:
            self._nova_manage = FakeNovaManage(state['databases'], self.check_mode)
        return self._nova_manage

    monkeypatch.setattr(db_sync.DbSyncModule, 'targets', lambda self: state['databases'])
    monkeypatch.setattr(db_sync.DbSyncModule, 'expected_head', lambda self: state['head'])
    monkeypatch.setattr(db_sync.DbSyncModule, 'nova_manage', property(nova_manage))
    # Where a module warning ends up depends on what else the test process imported: record it here.
    monkeypatch.setattr(AnsibleModule, 'warn', lambda self, warning: state['warnings'].append(warning))
    return state


def run(capsys, **args):
    args.setdefault('database', 'cell')
    with patch_module_args(args), pytest.raises(SystemExit):
        db_sync.main()
    return json.loads(capsys.readouterr().out)


def test_current_databases_run_no_nova_manage(fake, capsys):
    fake['databases'][:] = [FakeDatabase('nova_cell0', HEAD), FakeDatabase('nova_cell1', HEAD)]
    result = run(capsys)
    assert result['changed'] is False and result['commands'] == []
    assert result['versions'] == {'nova_cell0': {'before': HEAD, 'after': HEAD}, 'nova_cell1': {'before': HEAD, 'after': HEAD}}
    assert result['head'] == HEAD


def test_current_databases_in_check_mode_would_run_nothing(fake, capsys):
    fake['databases'][:] = [FakeDatabase('nova_api', HEAD)]
    result = run(capsys, database='api', _ansible_check_mode=True)
    assert result['changed'] is False and result['commands'] == []


def test_a_database_behind_runs_nova_manage_and_reports_the_change(fake, capsys):
    fake['databases'][:] = [FakeDatabase('nova_cell0', HEAD), FakeDatabase('nova_cell1', OLD)]
    result = run(capsys, _ansible_diff=True)
    assert result['changed'] is True and result['commands'] == ['nova-manage db sync']
    assert result['versions']['nova_cell1'] == {'before': OLD, 'after': HEAD}
    assert result['diff'] == {'before': {'nova_cell0': HEAD, 'nova_cell1': OLD}, 'after': {'nova_cell0': HEAD, 'nova_cell1': HEAD}}


def test_a_database_behind_in_check_mode_says_what_would_run(fake, capsys):
    database = FakeDatabase('nova_cell2', None)
    fake['databases'][:] = [database]
    result = run(capsys, local_cell=True, _ansible_check_mode=True)
    assert result['changed'] is True and result['commands'] == ['nova-manage db sync --local_cell']
    assert result['versions'] == {'nova_cell2': {'before': None, 'after': HEAD}}
    assert database.version is None


def test_unknown_head_runs_nova_manage_with_the_true_changed(fake, capsys):
    fake['head'] = None
    fake['databases'][:] = [FakeDatabase('nova_api', HEAD)]
    result = run(capsys, database='api')
    assert result['commands'] == ['nova-manage api_db sync'] and result['changed'] is False
    fake['databases'][0].version = OLD
    assert run(capsys, database='api')['changed'] is True


def test_unknown_head_in_check_mode_warns_and_reports_only_never_synced(fake, capsys):
    fake['head'] = None
    fake['databases'][:] = [FakeDatabase('nova_api', OLD)]
    result = run(capsys, database='api', _ansible_check_mode=True)
    assert result['changed'] is False and 'could not find the Nova installation' in ' '.join(fake['warnings'])


@pytest.mark.parametrize(('versions', 'head', 'expected'), [
    ({'a': HEAD, 'b': HEAD}, HEAD, db_sync.CURRENT),
    ({'a': HEAD, 'b': None}, HEAD, db_sync.BEHIND),
    ({'a': OLD}, HEAD, db_sync.BEHIND),
    ({'a': HEAD}, None, db_sync.UNKNOWN),
])
def test_decide(versions, head, expected):
    assert db_sync.decide(versions, head) == expected


def make_nova(tmp_path, shebang):
    """A fake Nova installation: a nova-manage script with ``shebang`` and two migrations."""
    versions = tmp_path / 'site' / 'nova' / 'db' / 'main' / 'migrations' / 'versions'
    versions.mkdir(parents=True)
    (versions / 'a.py').write_text("revision = '%s'\ndown_revision = None\n" % OLD)
    (versions / 'b.py').write_text("revision = '%s'\ndown_revision = '%s'\n" % (HEAD, OLD))
    script = tmp_path / 'nova-manage'
    script.write_text(shebang + '\nimport sys\n')
    os.chmod(script, 0o755)
    return script, tmp_path / 'site' / 'nova'


@pytest.mark.parametrize('shebang', ['#!/usr/bin/python3', '#!/usr/bin/env python3', '#!/opt/nova/bin/python3 -s'])
def test_installed_migrations_follows_the_shebang(tmp_path, shebang):
    script, package = make_nova(tmp_path, shebang)
    seen = []

    def run_command(argv):
        seen.append(argv)
        return 0, '%s\n' % package, ''

    versions = db_sync.installed_migrations(run_command, nova_python([str(script)]), 'cell')
    assert versions == str(package / 'db' / 'main' / 'migrations' / 'versions')
    assert db_sync.head_revision(versions) == HEAD
    assert seen[0][:-2] == shebang[2:].split()


def test_installed_migrations_gives_up_quietly(tmp_path):
    script, _package = make_nova(tmp_path, '#!/bin/sh')
    assert db_sync.installed_migrations(lambda argv: (0, '', ''), nova_python([str(script)]), 'cell') is None

    def missing(argv):
        raise OSError(2, 'No such file or directory')

    script.write_text('#!/nonexistent/python3\n')
    assert db_sync.installed_migrations(missing, nova_python([str(script)]), 'cell') is None
    assert db_sync.installed_migrations(lambda argv: (1, '', 'ImportError'), nova_python([str(script)]), 'api') is None


# -- databases: several syncs in one run ------------------------------------------------------

@pytest.fixture(name='many')
def many_fixture(monkeypatch):
    """Fake databases per config file; nova-manage migrates the databases of the config it runs with."""
    state = {'by_config': {}, 'heads': {'api': 'apihead', 'cell': HEAD}, 'commands': [], 'warnings': []}

    class Manage:
        def __init__(self, databases, check_mode, config_files):
            self.databases, self.check_mode, self.config_files = databases, check_mode, config_files
            self.commands = []

        def run(self, command, args=(), **_kwargs):
            line = ' '.join(['nova-manage', '--config-file', *self.config_files, *command, *args])
            self.commands.append(line)   # what the module reports (check mode: what would run)
            if not self.check_mode:
                state['commands'].append(line)   # what ran
                for database in self.databases:
                    database.version = state['heads'][database.kind]

    def targets(self):
        found = state['by_config'][self.params['config_files'][0], self.params['database']]
        if isinstance(found, Exception):
            raise found
        return found

    def nova_manage(self):
        if self._nova_manage is None:
            self._nova_manage = Manage(targets(self), self.check_mode, self.params['config_files'])
        return self._nova_manage

    monkeypatch.setattr(db_sync.DbSyncModule, 'targets', targets)
    monkeypatch.setattr(db_sync.DbSyncModule, 'expected_head', lambda self: state['heads'][self.params['database']])
    monkeypatch.setattr(db_sync.DbSyncModule, 'nova_manage', property(nova_manage))
    monkeypatch.setattr(AnsibleModule, 'warn', lambda self, warning: state['warnings'].append(warning))
    return state


def kind(database, name, version):
    fake = FakeDatabase(name, version)
    fake.kind = database
    return fake


def lab(many, api='apihead', cell0=HEAD, cell1=HEAD, cell2=HEAD):
    many['by_config'].update({
        ('api.conf', 'api'): [kind('api', 'nova_api', api)],
        ('api.conf', 'cell'): [kind('cell', 'nova_cell0', cell0)],
        ('cell1.conf', 'cell'): [kind('cell', 'nova_cell1', cell1)],
        ('cell2.conf', 'cell'): [kind('cell', 'nova_cell2', cell2)],
    })


SYNCS = [{'database': 'api'}, {'database': 'cell', 'local_cell': True},
         {'database': 'cell', 'local_cell': True, 'config_files': ['cell1.conf']},
         {'database': 'cell', 'local_cell': True, 'config_files': ['cell2.conf']}]


def run_many(capsys, **args):
    args = dict(config_files=['api.conf'], databases=SYNCS, **args)
    with patch_module_args(args), pytest.raises(SystemExit):
        db_sync.main()
    return json.loads(capsys.readouterr().out)


def test_databases_all_current_run_no_nova_manage(many, capsys):
    lab(many)
    result = run_many(capsys, _ansible_diff=True)
    assert result['changed'] is False and result['commands'] == [] and many['commands'] == []
    assert list(result['versions']) == ['nova_api', 'nova_cell0', 'nova_cell1', 'nova_cell2']
    assert result['heads'] == {'api': 'apihead', 'cell': HEAD}
    assert [(entry['database'], entry['changed'], entry['commands']) for entry in result['databases']] == [
        ('api', False, []), ('cell', False, []), ('cell', False, []), ('cell', False, [])]
    assert result['diff']['before'] == result['diff']['after']


def test_databases_only_the_one_behind_runs_nova_manage(many, capsys):
    lab(many, cell2=None)
    result = run_many(capsys, _ansible_diff=True)
    assert result['changed'] is True
    assert result['commands'] == ['nova-manage --config-file cell2.conf db sync --local_cell']
    assert result['versions']['nova_cell2'] == {'before': None, 'after': HEAD}
    assert [entry['changed'] for entry in result['databases']] == [False, False, False, True]
    assert result['databases'][3]['commands'] == result['commands']
    assert result['diff'] == {'before': {'nova_api': 'apihead', 'nova_cell0': HEAD, 'nova_cell1': HEAD, 'nova_cell2': None},
                              'after': {'nova_api': 'apihead', 'nova_cell0': HEAD, 'nova_cell1': HEAD, 'nova_cell2': HEAD}}
    assert run_many(capsys)['changed'] is False


def test_databases_first_deploy_in_order_and_check_mode_runs_nothing(many, capsys):
    lab(many, api=None, cell0=None, cell1=None, cell2=OLD)
    checked = run_many(capsys, _ansible_check_mode=True)
    assert checked['changed'] is True and many['commands'] == []
    assert checked['commands'] == ['nova-manage --config-file api.conf api_db sync', 'nova-manage --config-file api.conf db sync --local_cell',
                                   'nova-manage --config-file cell1.conf db sync --local_cell',
                                   'nova-manage --config-file cell2.conf db sync --local_cell']
    assert checked['versions']['nova_cell2'] == {'before': OLD, 'after': HEAD}
    assert all(database.version in (None, OLD) for databases in many['by_config'].values() for database in databases)
    result = run_many(capsys)
    assert result['changed'] is True and result['commands'] == checked['commands'] == many['commands']
    assert all(entry['changed'] for entry in result['databases'])


def test_databases_bad_entry_changes_nothing(many, capsys):
    lab(many, api=None)
    many['by_config']['cell2.conf', 'cell'] = db_sync.NovaCellsError('[database]/connection is not set in cell2.conf')
    result = run_many(capsys)
    assert result['failed'] and result['msg'].startswith('databases[3] (cell): [database]/connection is not set')
    assert many['commands'] == [] and result['commands'] == []


def test_database_and_databases_are_exclusive(many, capsys):
    lab(many)
    result = run_many(capsys, database='api')
    assert result['failed'] and 'mutually exclusive' in result['msg']
