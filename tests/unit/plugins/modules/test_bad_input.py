# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Bad input that a module refuses from its arguments and config files alone: a clear message, and nothing read or run.

These cases need no service: each module is run in-process on the fake Nova of fake_nova.py, which records every
SQL statement and nova-manage run, and the refusal must come before any of them (and, for servicegroup, leave
the file as it was). Refusals that depend on the state of real databases (duplicate names, cells in use,
unreachable or wrong credentials) stay in tests/integration/test_reliability_bad_input.py.
"""

from __future__ import annotations

import importlib

import pytest

from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID

GOOD_DB = 'mysql+pymysql://nova:pw@127.0.0.1/nova_bad_new'
GOOD_MQ = 'rabbit://nova:pw@127.0.0.1:5672/bad_new'
METACHARACTERS = 'cell1; rm -rf / #$(reboot)`id`'


def cell(**args):
    return 'cell', args


def new_cell(**args):
    return 'cell', {'name': 'bnew', 'database_connection': GOOD_DB, 'transport_url': GOOD_MQ, **args}


def sg(**args):
    return 'servicegroup', {'nova_release': '34', **args}


CASES = {
    # URLs
    'cell-db-url-without-scheme': (new_cell(database_connection='127.0.0.1:3306/nova_x'), 'has no scheme'),
    'cell-db-url-unknown-scheme': (new_cell(database_connection='postgresql://nova:pw@127.0.0.1/nova_x'), "unsupported scheme 'postgresql'"),
    'cell-db-url-without-database': (new_cell(database_connection='mysql+pymysql://nova:pw@127.0.0.1:3306'), 'names no database'),
    'cell-db-url-port-out-of-range': (new_cell(database_connection='mysql+pymysql://nova:pw@127.0.0.1:99999/x'), 'has an invalid port'),
    'cell-db-url-without-host': (new_cell(database_connection='mysql+pymysql:///nova_x'), 'has no host'),
    'cell-db-url-with-a-path': (new_cell(database_connection='mysql+pymysql://nova:pw@127.0.0.1/a/b'), 'more than a database name'),
    'cell-transport-unknown-scheme': (new_cell(transport_url='http://nova:pw@127.0.0.1:5672/x'), "unknown transport scheme 'http'"),
    'cell-transport-without-scheme': (new_cell(transport_url='127.0.0.1:5672/x'), 'has no scheme'),
    'cell-transport-empty': (new_cell(transport_url=''), 'transport_url is empty'),
    'cell-transport-none-for-a-regular-cell': (new_cell(transport_url='none:///'), 'only valid for cell0'),
    'cell-transport-bad-port': (new_cell(transport_url='rabbit://nova:pw@127.0.0.1:notaport/x'), 'invalid host or port'),
    'cell-template-without-base': (new_cell(transport_url='{scheme}://{username}:{password}@127.0.0.1:{nope}/x'), 'cannot be rendered'),
    'cell-db-url-not-a-url': (new_cell(database_connection='not a url'), 'has no scheme'),
    'cell-db-url-template-with-an-unknown-variable': (new_cell(database_connection='mysql+pymysql://u:pw@h/db?{nosuchvar}'), 'cannot be rendered'),
    'api-db-url-unknown-scheme': (('cell_info', {'api_database_connection': 'sqlite:////var/lib/nova/nova.sqlite'}), "unsupported scheme 'sqlite'"),
    'config-file-missing': (('cell_info', {'config_files': ['/nonexistent/nova.conf']}), 'does not exist; set config_files'),
    # names and uuids
    'cell-name-empty': (new_cell(name=''), 'cell name is empty'),
    'cell-name-surrounding-space': (cell(name=' bcell1', disabled=True), 'leading or trailing white space'),
    'cell-name-control-character': (new_cell(name='cell\x1b[2J'), 'contains control characters'),
    'cell-name-shell-metacharacters': (new_cell(name=METACHARACTERS), 'shells and scripts interpret'),
    'cell-name-with-a-line-break': (new_cell(name='x\n; DROP TABLE cell_mappings'), 'control characters'),
    'cell-name-300-characters': (new_cell(name='c' * 300), 'Nova stores at most 255'),
    'cell-uuid-not-a-uuid': (cell(name='bcell1', uuid='bcell1; DROP TABLE cell_mappings'), 'is not a valid cell uuid'),
    # cell0
    'cell0-disabled': (cell(name='cell0', disabled=True), 'cell0 cannot be disabled'),
    'cell0-uuid-named-zero': (cell(name='zero', uuid=CELL0_UUID, database_connection=GOOD_DB), "must be named 'cell0'"),
    'cell0-with-a-transport-url': (cell(name='cell0', transport_url=GOOD_MQ), 'cell0 has no message queue'),
    'cell0-uuid-under-another-name': (cell(name='notcell0', uuid=CELL0_UUID), "must be named 'cell0'"),
    # hosts
    'host-name-shell-metacharacters': (('host', {'name': 'bhost1;reboot'}), 'shells and scripts interpret'),
    'host-name-300-characters': (('host', {'name': 'h' * 300}), 'Nova stores at most 255'),
    'host-state-present': (('host', {'name': 'bhost1', 'state': 'present'}), 'value of state must be one of: absent'),
    # numbers
    'discover-negative-retries': (('discover_hosts', {'cell': 'bcell1', 'retries': -1}), 'must not be negative'),
    'map-instances-max-count-zero': (('map_instances', {'cell': 'bcell1', 'max_count': 0}), 'max_count must be a positive'),
    'map-instances-max-batches-zero': (('map_instances', {'cell': 'bcell1', 'max_batches': 0}), 'max_batches must be at least 1'),
    'connect-timeout-zero': (('cell_info', {'database_connect_timeout': 0}), 'database_connect_timeout is 0'),
    # db_sync
    'db-sync-cell-without-database': (('db_sync', {'database': 'cell', 'config_files': ['NOVA_CONF_WITHOUT_DATABASE']}),
                                      '[database]/connection is not set'),
    'db-sync-cell-unknown-scheme': (('db_sync', {'database': 'cell', 'config_files': ['NOVA_CONF_SQLITE']}), "unsupported scheme 'sqlite'"),
    'db-sync-unknown-database-kind': (('db_sync', {'database': 'everything'}), 'value of database must be one of: api, cell'),
    # ServiceGroup
    'servicegroup-zk-on-a-modern-release': (sg(driver='zk', zookeeper_address=['127.0.0.1:2181']), 'zk'),
    'servicegroup-down-time-not-above-interval': (sg(driver='db', report_interval=30, service_down_time=30), 'must be greater than report_interval'),
    'servicegroup-mc-empty-server-list': (sg(driver='mc', memcache_servers=[]), 'is empty: give at least one'),
    'servicegroup-mc-no-server-list': (sg(driver='mc'), 'memcache'),
    'servicegroup-mc-unix-socket': (sg(driver='mc', memcache_servers=['unix:/run/memcached.sock']), 'unix socket'),
    'servicegroup-mc-server-without-port': (sg(driver='mc', memcache_servers=['127.0.0.1']), 'has no port'),
    'servicegroup-mc-server-listed-twice': (sg(driver='mc', memcache_servers=['127.0.0.1:11211', '127.0.0.1:11211']), 'twice'),
    'servicegroup-mc-null-backend': (sg(driver='mc', memcache_servers=['127.0.0.1:11211'], cache_backend='dogpile.cache.null'), 'stores nothing'),
    'servicegroup-mc-short-expiration': (sg(driver='mc', memcache_servers=['127.0.0.1:11211'], backend_expiration_time=60), '604800'),
    'servicegroup-zero-report-interval': (sg(driver='db', report_interval=0), 'report_interval must be at least 1'),
    'servicegroup-unknown-release': (sg(driver='db', nova_release='banana'), "cannot parse nova_release 'banana'"),
    'servicegroup-path-is-a-directory': (sg(driver='db', path='TMP'), 'is a directory'),
    'servicegroup-directory-missing': (sg(driver='db', path='TMP/missing/nova.conf'), 'does not exist'),
    'service-status-unknown-driver-in-config': (('service_status', {'config_files': ['NOVA_CONF_REDIS']}), 'is not a driver Nova knows'),
}

CONFIGS = {
    'NOVA_CONF_WITHOUT_DATABASE': '[api_database]\nconnection = mysql+pymysql://nova:pw@db/nova_api\n',
    'NOVA_CONF_SQLITE': '[api_database]\nconnection = mysql+pymysql://nova:pw@db/nova_api\n[database]\nconnection = sqlite:///nova.sqlite\n',
    'NOVA_CONF_REDIS': '[DEFAULT]\nservicegroup_driver = redis\n[api_database]\nconnection = mysql+pymysql://nova:pw@db/nova_api\n',
}


def resolve(value, tmp_path):
    if isinstance(value, list):
        return [resolve(item, tmp_path) for item in value]
    if isinstance(value, str) and value in CONFIGS:
        path = tmp_path / (value.lower() + '.conf')
        path.write_text(CONFIGS[value])
        return str(path)
    if isinstance(value, str) and value.startswith('TMP'):
        return str(tmp_path) + value[len('TMP'):]
    return value


@pytest.mark.parametrize('case', sorted(CASES))
def test_module_refuses_bad_input_before_reading_or_running_anything(nova, run_module, tmp_path, case):
    (name, args), expected = CASES[case]
    args = {key: resolve(value, tmp_path) for key, value in args.items()}
    conf = tmp_path / 'servicegroup.conf'
    conf.write_text('[DEFAULT]\ndebug = true\n')
    if name == 'servicegroup':
        args.setdefault('path', str(conf))
    before = sorted(str(path) for path in tmp_path.rglob('*')), conf.read_text()
    result = run_module(importlib.import_module(f'ansible_collections.nova.cells.plugins.modules.{name}'), **args)
    assert result.get('failed'), f'{case} was accepted: {result}'
    assert expected in result['msg'], result['msg']
    assert 'Traceback' not in result['msg'] and 'exception' not in result
    assert nova.statements == [] and nova.commands == []
    after = sorted(str(path) for path in tmp_path.rglob('*')), conf.read_text()
    assert after == before
