# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Fixtures of the module tests: the fake Nova of fake_nova.py, and modules run in-process against it."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.module_utils import _databases, _module
from ansible_collections.nova.cells.tests.unit.plugins.modules.fake_nova import NOVA_CONF, Connection, FakeNova


@pytest.fixture
def nova(monkeypatch, tmp_path):
    world = FakeNova()

    def connection(database):
        if database._connection is None:
            name = _databases.db_name(database.url)
            if name in world.unreachable:
                raise _databases.DatabaseError(f'cannot connect to the {database.label}: (2003) the server is unreachable')
            database._connection = Connection(world, name)
        return database._connection

    def run_command(_module, argv, **_kwargs):
        return world.nova_manage(list(argv))

    monkeypatch.setattr(_databases.Database, 'connection', connection)
    monkeypatch.setattr(_module._MaskingAnsibleModule, 'run_command', run_command)
    conf = tmp_path / 'nova.conf'
    conf.write_text(NOVA_CONF)
    world.config_files = [str(conf)]
    return world


@pytest.fixture
def run_module(nova, capsys):
    """``run_module(module, **args)``: the module's result as JSON (args default to the fake's nova.conf and /bin/true)."""

    def run(module, **args):
        args.setdefault('config_files', nova.config_files)
        args.setdefault('nova_manage', ['/bin/true'])
        with patch_module_args(args), pytest.raises(SystemExit):
            module.main()
        return json.loads(capsys.readouterr().out)

    return run
