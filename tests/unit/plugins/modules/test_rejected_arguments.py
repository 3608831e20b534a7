# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Issue 13: no URL password in the output when Ansible itself rejects the arguments, for every module.

AnsibleModule validates in its constructor and fails with ``invocation.module_args`` (shown at -vvv)
before the module's own code runs; the end-to-end proof with ``ansible -vvv`` is in
tests/integration/test_reliability_secrets.py.
"""

from __future__ import annotations

import importlib
import json

import pytest
from ansible.module_utils.common.parameters import PASS_VARS
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.module_utils._nova_conf import ConfigError, NovaConfig
from ansible_collections.nova.cells.plugins.modules.discover_hosts import hosts_created_by_run

REQUIRED = {'cell': {'name': 'cell1'}, 'db_sync': {'database': 'api'}, 'host': {'name': 'cmp1'}, 'map_instances': {'cell': 'cell1'},
            'servicegroup': {'driver': 'db', 'path': '/nonexistent/nova.conf'}}
MODULES = ['cell', 'cell_info', 'db_sync', 'discover_hosts', 'host', 'map_instances', 'service_status', 'servicegroup']
# Long, short, with an apostrophe, equal to the user name: each in a URL of its own.
PASSWORDS = ["Rej3cted'Pw/#", 'x', 'nova', 'L1teral"pw']
URLS = [
    "mysql+pymysql://nova:Rej3cted'Pw%2F%23@db1/nova_api",
    'rabbit://nova:x@mq1:5672/cell1',
    '{scheme}://nova:nova@db2/nova_cell2',
    'mysql+pymysql://nova:L1teral"pw@db1:0/nova',
]


# ansible-core 2.21 adds the invocation to a result only when the controller asks for it
# (INJECT_INVOCATION, default off): ask, so that the masked module_args are there to check.
# 2.19 and 2.20 always add it (and do not know the argument).
INJECT = {'_ansible_inject_invocation': True} if 'inject_invocation' in PASS_VARS else {}


def run(capsys, name, args):
    module = importlib.import_module('ansible_collections.nova.cells.plugins.modules.%s' % name)
    with patch_module_args({**args, **INJECT}), pytest.raises(SystemExit):
        module.main()
    return capsys.readouterr().out


def leaks(out):
    return [password for password in ("Rej3cted'Pw", "Rej3cted\\u0027Pw", 'L1teral', ':x@', ':nova@') if password in out]


@pytest.mark.parametrize('name', MODULES)
def test_misspelt_option_holding_a_url_never_shows_its_password(capsys, name):
    args = {'transport_ur': URLS[1], 'databse_connection': URLS[0], 'template': URLS[2], 'other': [URLS[3]], **REQUIRED.get(name, {})}
    out = run(capsys, name, args)
    result = json.loads(out)
    assert result['failed'] and 'Unsupported parameters' in result['msg']
    assert leaks(out) == []
    assert result['invocation']['module_args']['transport_ur'] == 'rabbit://nova:****@mq1:5672/cell1'
    assert result['invocation']['module_args']['template'] == '{scheme}://nova:****@db2/nova_cell2'


@pytest.mark.parametrize('name', MODULES)
def test_invalid_value_next_to_url_options_never_shows_a_password(capsys, name):
    args = {'database_connect_timeout': 'soon', 'api_database_connection': URLS[0], **REQUIRED.get(name, {})}
    if name == 'cell':
        args.update(name='cell1', disabled='maybe', transport_url=URLS[1], database_connection=URLS[2])
    out = run(capsys, name, args)
    assert json.loads(out)['failed']
    assert leaks(out) == []


def test_cell_with_a_zero_connect_timeout_is_refused_by_name(capsys):
    out = run(capsys, 'cell_info', {'database_connect_timeout': 0, 'api_database_connection': URLS[0]})
    assert 'database_connect_timeout is 0' in json.loads(out)['msg']
    assert leaks(out) == []


def test_config_file_that_is_not_utf8_is_named(tmp_path):
    path = tmp_path / 'nova.conf'
    path.write_bytes(b'[database]\nconnection = mysql://nova:p\xe9@db/nova\n')
    with pytest.raises(ConfigError, match='%s is not UTF-8' % path):
        NovaConfig.load([str(path)])


VERBOSE = """Found 2 cell mappings.
Getting computes from cell 'cell1': 1b4b7d9e
Checking host mapping for compute host 'cmp1': 5d1f
Creating host mapping for compute host 'cmp1': 5d1f
Checking host mapping for compute host 'cmp2': 6e2a
Creating host mapping for compute host 'cmp2': 6e2a
"""


def test_discover_hosts_reports_only_the_hosts_its_own_run_created():
    assert hosts_created_by_run(VERBOSE, collided=False) == ['cmp1', 'cmp2']
    # rc 2: the insert of the last host named failed because a parallel run mapped it first.
    assert hosts_created_by_run(VERBOSE, collided=True) == ['cmp1']
    assert hosts_created_by_run('', collided=True) == []
