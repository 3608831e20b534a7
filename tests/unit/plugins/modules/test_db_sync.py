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
