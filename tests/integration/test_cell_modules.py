"""The cell_v2 modules against real nova-manage 34.0.0 and MariaDB (the twice-run idiom throughout).

Every test works in its own API database (``nova_api_cm``) and cell databases cloned from the
schema that real ``nova-manage db sync`` created, so the tests do not disturb other test files.
"""

from __future__ import annotations

import importlib.util
import json
import uuid as uuidlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from harness import Lab

REPO = Path(__file__).resolve().parents[2]
CELL0_UUID = '00000000-0000-0000-0000-000000000000'
API_DB = 'nova_api_cm'


def load_urls_module():
    """The collection's URL helpers, loaded from the file (they import nothing from Ansible)."""
    spec = importlib.util.spec_from_file_location('nova_cells_urls', REPO / 'plugins' / 'module_utils' / '_urls.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class World:
    """One API database and helpers to make cell databases with Nova's real schema."""

    def __init__(self, lab: Lab, run_module):
        self.lab = lab
        self._run_module = run_module
        self.template_db = lab.cells['cell1'].database
        lab.create_database(API_DB)
        self.conf = lab.write_config('cm-api', {
            'DEFAULT': {'transport_url': lab.transport_url('cm_default')},
            'api_database': {'connection': lab.db_url(API_DB)},
            'database': {'connection': lab.db_url('nova_cm_base')},
        })
        lab.nova_manage('api_db', 'sync', config_files=[self.conf]).check()

    def args(self, **kwargs):
        base = {'config_files': [str(self.conf)], 'nova_manage': self.lab.nova_manage_command}
        base.update(kwargs)
        return base

    def run(self, module, check=False, diff=False, verbosity=0, **kwargs):
        return self._run_module(module, self.args(**kwargs), check=check, diff=diff, verbosity=verbosity)

    def cell_database(self, name):
        """A database with every table of a real synced cell database (CREATE TABLE ... LIKE)."""
        self.lab.create_database(name)
        tables = [next(iter(row.values())) for row in self.lab.query(self.template_db, 'SHOW TABLES')]
        for table in tables:
            self.lab.query(name, f'CREATE TABLE IF NOT EXISTS `{table}` LIKE `{self.template_db}`.`{table}`')
        return self.lab.db_url(name)

    def cells(self):
        return self.lab.query(API_DB, 'SELECT id, uuid, name, transport_url, database_connection, disabled '
                                      'FROM cell_mappings ORDER BY id')

    def cell_row(self, name):
        rows = [row for row in self.cells() if row['name'] == name]
        assert len(rows) <= 1, rows
        return rows[0] if rows else None

    def checksum(self, *tables):
        rows = []
        for table in tables or ('cell_mappings', 'host_mappings', 'instance_mappings'):
            rows.append(self.lab.query(API_DB, f'CHECKSUM TABLE `{table}`'))
        return json.dumps(rows, default=str)

    def new_cell(self, name, **kwargs):
        """A created cell with its own cloned database and vhost URL; returns (row, db name)."""
        db = f'nova_cm_{name}'
        url = self.cell_database(db)
        result = self.run('cell', name=name, database_connection=url, transport_url=self.lab.transport_url(f'cm_{name}'), **kwargs)
        assert result.changed, result.result
        return self.cell_row(name), db

    def add_compute_nodes(self, db, hosts, mapped=0):
        for host in hosts:
            self.lab.query(db, 'INSERT INTO compute_nodes (created_at, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, '
                               'vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, '
                               'deleted, mapped) VALUES (UTC_TIMESTAMP(), %s, %s, %s, 8, 8192, 100, 0, 0, 0, "fake", 1000, "{}", 0, %s)',
                           (host, host, str(uuidlib.uuid4()), mapped))

    def add_compute_services(self, db, hosts):
        for host in hosts:
            self.lab.query(db, 'INSERT INTO services (created_at, host, `binary`, topic, report_count, disabled, deleted, uuid, forced_down, version) '
                               'VALUES (UTC_TIMESTAMP(), %s, "nova-compute", "compute", 0, 0, 0, %s, 0, 74)', (host, str(uuidlib.uuid4())))

    def add_instances(self, db, count, host='cmp-i', deleted=False):
        uuids = [str(uuidlib.uuid4()) for _instance in range(count)]
        for instance_uuid in uuids:
            self.lab.query(db, 'INSERT INTO instances (created_at, deleted, uuid, user_id, project_id, display_name, hostname, host, '
                               'node, vm_state, power_state, memory_mb, vcpus, root_gb, ephemeral_gb, instance_type_id, launched_at, '
                               'locked, cleaned, hidden) VALUES (UTC_TIMESTAMP(), 0, %s, "u1", "p1", "vm", "vm", %s, %s, "active", '
                               '1, 512, 1, 1, 0, 1, UTC_TIMESTAMP(), 0, 0, 0)', (instance_uuid, host, host))
        if deleted:
            self.lab.query(db, 'UPDATE instances SET deleted = id, deleted_at = UTC_TIMESTAMP() WHERE uuid IN %s', (uuids,))
        return uuids


@pytest.fixture(name='world', scope='module')
def world_fixture(nova_lab, run_module):
    return World(nova_lab, run_module)


def assert_no_secret(lab, *results):
    for result in results:
        for secret in lab.secrets:
            assert secret not in result.stdout and secret not in result.stderr, f'password leaked in {result.argv[:8]}'


# -- cell0 ----------------------------------------------------------------------------------------

def test_cell0_is_mapped_once_check_mode_changes_nothing_and_drift_is_repaired(world):
    url = world.cell_database('nova_cm_cell0')
    checked = world.run('cell', check=True, diff=True, name='cell0', database_connection=url)
    assert checked.changed and 'map_cell0' in checked['commands'][0]
    assert world.cell_row('cell0') is None

    first = world.run('cell', diff=True, name='cell0', database_connection=url)
    second = world.run('cell', name='cell0', database_connection=url)
    assert first.changed and not second.changed
    assert second['commands'] == []
    row = world.cell_row('cell0')
    assert (row['uuid'], row['transport_url'], row['database_connection']) == (CELL0_UUID, 'none:///', url)
    assert first['diff']['after']['database_connection'].count('****') == 1
    assert_no_secret(world.lab, checked, first, second)

    # map_cell0 never updates; the module repairs a drifted cell0 through update_cell, keeping none:///.
    moved = world.cell_database('nova_cm_cell0_moved')
    repaired = world.run('cell', name='cell0', database_connection=moved)
    assert repaired.changed and 'update_cell --cell_uuid ' + CELL0_UUID in repaired['commands'][0]
    assert "--transport-url 'none:///'" in repaired['commands'][0] or '--transport-url none:///' in repaired['commands'][0]
    row = world.cell_row('cell0')
    assert (row['transport_url'], row['database_connection']) == ('none:///', moved)
    assert not world.run('cell', name='cell0', database_connection=moved).changed


# -- regular cells ------------------------------------------------------------------------------

def test_create_cell_twice_reports_change_then_no_change(world):
    url = world.cell_database('nova_cm_alpha')
    mq = world.lab.transport_url('cm_alpha')
    checked = world.run('cell', check=True, diff=True, name='alpha', database_connection=url, transport_url=mq)
    assert checked.changed and world.cell_row('alpha') is None
    assert 'create_cell --name alpha' in checked['commands'][0]

    first = world.run('cell', diff=True, name='alpha', database_connection=url, transport_url=mq)
    second = world.run('cell', diff=True, name='alpha', database_connection=url, transport_url=mq)
    assert first.changed and not second.changed
    assert second['commands'] == []
    row = world.cell_row('alpha')
    assert first['cell']['uuid'] == row['uuid'] and not row['disabled']
    assert first['cell']['database_connection'] == url.split(':', 2)[0] + ':' + url.split(':', 2)[1] + ':****@' + url.split('@', 1)[1]
    assert first['diff']['before'] == {} and first['diff']['after']['name'] == 'alpha'
    assert first['restart_required'] == ['scheduler_sighup']
    assert_no_secret(world.lab, checked, first, second)


def test_created_disabled_then_enabled_and_disabled_for_maintenance(world):
    row, _db = world.new_cell('maint', disabled=True)
    assert row['disabled']
    enabled = world.run('cell', diff=True, name='maint', disabled=False)
    assert enabled.changed and '--enable' in enabled['commands'][0]
    assert enabled['diff']['before']['disabled'] is True and enabled['diff']['after']['disabled'] is False
    assert not world.cell_row('maint')['disabled']
    assert not world.run('cell', name='maint', disabled=False).changed
    disabled = world.run('cell', name='maint', disabled=True)
    assert disabled.changed and world.cell_row('maint')['disabled']
    # An update always passes both stored URLs, so nova-manage cannot replace them from nova.conf.
    assert world.cell_row('maint')['transport_url'] == world.lab.transport_url('cm_maint')


def test_drifted_url_is_updated_and_query_order_is_not_drift(world):
    _row, db = world.new_cell('drift')
    with_charset = world.lab.db_url(db) + '?charset=utf8&read_timeout=30'
    updated = world.run('cell', diff=True, name='drift', database_connection=with_charset)
    assert updated.changed and 'update_cell' in updated['commands'][0]
    assert set(updated['restart_required']) == {'api', 'conductor', 'scheduler'}
    reordered = world.lab.db_url(db) + '?read_timeout=30&charset=utf8'
    same = world.run('cell', name='drift', database_connection=reordered)
    assert not same.changed and same['commands'] == []
    assert world.cell_row('drift')['database_connection'] == with_charset
    assert_no_secret(world.lab, updated, same)


def test_rename_by_uuid(world):
    row, _db = world.new_cell('oldname')
    renamed = world.run('cell', uuid=row['uuid'], name='newname')
    assert renamed.changed and world.cell_row('newname')['uuid'] == row['uuid'] and world.cell_row('oldname') is None
    assert not world.run('cell', uuid=row['uuid'], name='newname').changed


def test_template_urls_are_stored_raw_and_expand_exactly_like_nova_manage(world):
    urls = load_urls_module()
    db = 'nova_cm_tmpl'
    world.cell_database(db)
    db_template = '{scheme}://{username}:{password}@{hostname}:{port}/' + db + '?{query}'
    mq_template = '{scheme}://{username}:{password}@{hostname}:{port}/cm_tmpl'
    first = world.run('cell', name='tmpl', database_connection=db_template, transport_url=mq_template)
    second = world.run('cell', name='tmpl', database_connection=db_template, transport_url=mq_template)
    assert first.changed and not second.changed, second.result  # no duplicate cell (nova LP#1923899)
    row = world.cell_row('tmpl')
    assert (row['database_connection'], row['transport_url']) == (db_template, mq_template)

    # nova-manage renders templates with the local nova.conf; ours must render identically.
    multi = world.lab.write_config('cm-multi', {
        'DEFAULT': {'transport_url': 'rabbit://a:pa%40@mq1:5672,b:pb@mq2:5673/vh?ssl=1'},
        'api_database': {'connection': world.lab.db_url(API_DB)},
        'database': {'connection': world.lab.db_url('nova_cm_base') + '?charset=utf8'},
    })
    numbered = 'rabbit://{username2}:{password2}@{hostname2}:{port2},{username1}@{hostname1}:{port1}/{path}?{query}'
    world.lab.query(API_DB, 'UPDATE cell_mappings SET transport_url = %s WHERE uuid = %s', (numbered, row['uuid']))
    listing = world.lab.nova_manage('cell_v2', 'list_cells', '--verbose', config_files=[multi]).check().stdout
    shown = [[part.strip() for part in line.split('|')[1:-1]] for line in listing.splitlines() if line.startswith('|')]
    rendered = {row[0]: row for row in shown}['tmpl']
    conf = {'transport': 'rabbit://a:pa%40@mq1:5672,b:pb@mq2:5673/vh?ssl=1',
            'database': world.lab.db_url('nova_cm_base') + '?charset=utf8'}
    assert urls.expand_template(numbered, conf['transport']) == (rendered[2], None)
    assert urls.expand_template(db_template, conf['database']) == (rendered[3], None)
    world.lab.query(API_DB, 'UPDATE cell_mappings SET transport_url = %s WHERE uuid = %s', (mq_template, row['uuid']))


def test_duplicate_names_made_by_nova_manage_are_refused_with_their_uuids(world):
    for suffix in ('1', '2'):
        world.cell_database(f'nova_cm_dup{suffix}')
        world.lab.nova_manage('cell_v2', 'create_cell', '--name', 'dup', '--database_connection', world.lab.db_url(f'nova_cm_dup{suffix}'),
                              '--transport-url', world.lab.transport_url(f'cm_dup{suffix}'), config_files=[world.conf]).check()
    uuids = [row['uuid'] for row in world.cells() if row['name'] == 'dup']
    assert len(uuids) == 2
    before = world.checksum()
    result = world.run('cell', name='dup', disabled=True)
    assert result.failed and all(uuid in result.msg for uuid in uuids) and 'not keep names unique' in result.msg
    assert world.checksum() == before
    removed = world.run('cell', uuid=uuids[1], name='dup', state='absent')
    assert removed.changed
    assert world.run('cell', name='dup', disabled=True).changed


def test_url_conflicts_with_another_cell_are_refused_before_any_write(world):
    _row, db = world.new_cell('owner')
    before = world.checksum()
    shared_mq = world.run('cell', name='thief', database_connection=world.cell_database('nova_cm_thief'),
                          transport_url=world.lab.transport_url('cm_owner'))
    assert shared_mq.failed and "share its transport URL" in shared_mq.msg and "'owner'" in shared_mq.msg
    # A template that renders to the owner's database is caught too (nova-manage compares raw text and misses it).
    template = '{scheme}://{username}:{password}@{hostname}:{port}/' + db
    shared_db = world.run('cell', name='thief', database_connection=template, transport_url=world.lab.transport_url('cm_thief'))
    assert shared_db.failed and 'share its database' in shared_db.msg
    assert world.checksum() == before
    assert_no_secret(world.lab, shared_mq, shared_db)


# Input that is wrong by itself (URL syntax, names, uuid form, cell0 rules) is refused in the unit tests
# (tests/unit/plugins/modules/test_bad_input.py); these refusals depend on the stored cells.
@pytest.mark.parametrize('args,message', [
    ({'name': 'bad5', 'database_connection': 'mysql+pymysql://u:bad-input-pw@h/db'}, 'needs transport_url'),
    ({'name': 'bad6', 'transport_url': 'rabbit://h/x'}, 'needs database_connection'),
    ({'name': 'bad9', 'uuid': str(uuidlib.uuid4())}, 'there is no cell with uuid'),
])
def test_bad_input_is_refused_before_any_write(world, args, message):
    before = world.checksum()
    result = world.run('cell', **args)
    assert result.failed and message in result.msg, result.msg
    assert 'commands' not in result or result['commands'] == []
    assert world.checksum() == before


def test_concurrent_creates_of_the_same_cell_yield_one_mapping(world):
    url = world.cell_database('nova_cm_race')
    mq = world.lab.transport_url('cm_race')
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda _i: world.run('cell', name='race', database_connection=url, transport_url=mq), range(8)))
    assert not any(result.failed for result in results), [r.msg for r in results if r.failed]
    assert sum(result.changed for result in results) == 1
    assert len([row for row in world.cells() if row['name'] == 'race']) == 1


def test_cells_list_converges_several_cells_in_one_run_with_true_changed(world):
    _row, db = world.new_cell('multi_a')
    url_b, url_c = world.cell_database('nova_cm_multi_b'), world.cell_database('nova_cm_multi_c')
    wanted = [dict(name='multi_a', database_connection=world.lab.db_url(db), transport_url=world.lab.transport_url('cm_multi_a'), disabled=True),
              dict(name='multi_b', database_connection=url_b, transport_url=world.lab.transport_url('cm_multi_b')),
              dict(name='multi_c', database_connection=url_c, transport_url=world.lab.transport_url('cm_multi_c'), disabled=None)]
    before = world.checksum('cell_mappings')
    checked = world.run('cell', check=True, diff=True, cells=wanted)
    assert checked.changed and world.checksum('cell_mappings') == before
    assert [(entry['name'], entry['changed']) for entry in checked['cells']] == [('multi_a', True), ('multi_b', True), ('multi_c', True)]

    first = world.run('cell', diff=True, cells=wanted)
    assert first.changed and [entry['changed'] for entry in first['cells']] == [True, True, True]
    assert '--disable' in first['cells'][0]['commands'][0] and 'create_cell --name multi_b' in first['cells'][1]['commands'][0]
    assert first['restart_required'] == ['scheduler_sighup'] and sorted(first['diff']['after']) == ['multi_a', 'multi_b', 'multi_c']
    assert first['diff']['before']['multi_b'] == {} and first['diff']['after']['multi_a']['disabled'] is True
    assert world.cell_row('multi_a')['disabled'] and not world.cell_row('multi_c')['disabled']
    assert first['cells'][2]['cell']['uuid'] == world.cell_row('multi_c')['uuid']

    second = world.run('cell', diff=True, cells=wanted)
    assert not second.changed and second['commands'] == [] and [entry['changed'] for entry in second['cells']] == [False] * 3
    assert second['diff'] == {'before': {}, 'after': {}}
    assert_no_secret(world.lab, checked, first, second)


def test_cells_list_refuses_bad_entries_before_any_write(world):
    before = world.checksum('cell_mappings')
    url = world.cell_database('nova_cm_multi_bad')
    bad = world.run('cell', cells=[dict(name='multi_bad', database_connection=url, transport_url=world.lab.transport_url('cm_multi_bad')),
                                   dict(name='cell0', disabled=True)])
    assert bad.failed and "cells[1] ('cell0'): cell0 cannot be disabled" in bad.msg
    assert world.checksum('cell_mappings') == before


def test_concurrent_cells_lists_create_each_cell_once(world):
    wanted = [dict(name=f'race_{i}', database_connection=world.cell_database(f'nova_cm_race_{i}'),
                   transport_url=world.lab.transport_url(f'cm_race_{i}')) for i in range(3)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _i: world.run('cell', cells=wanted), range(4)))
    assert not any(result.failed for result in results), [r.msg for r in results if r.failed]
    for i in range(3):
        assert sum(result['cells'][i]['changed'] for result in results) == 1
        assert len([row for row in world.cells() if row['name'] == f'race_{i}']) == 1


# -- delete ---------------------------------------------------------------------------------------

def test_delete_cell_refuses_hosts_and_instances_and_force_deletes_mappings(world):
    row, db = world.new_cell('doomed')
    world.add_compute_nodes(db, ['doomed-cmp1'])
    assert world.run('discover_hosts', cell='doomed').changed

    refused = world.run('cell', name='doomed', state='absent')
    assert refused.failed and 'doomed-cmp1' in refused.msg and 'force=true' in refused.msg

    live = world.add_instances(db, 1, host='doomed-cmp1')
    assert world.run('map_instances', cell='doomed').changed
    with_live = world.run('cell', name='doomed', state='absent', force=True)
    assert with_live.failed and 'live instance' in with_live.msg and 'force does not' in with_live.msg
    assert live[0] in with_live.msg  # the refusal names the instances (issue 12)

    world.lab.query(db, 'UPDATE instances SET deleted = id WHERE uuid = %s', (live[0],))
    world.lab.query(API_DB, 'DELETE FROM host_mappings WHERE host = "doomed-cmp1"')
    deleted_only = world.run('cell', name='doomed', state='absent')
    assert deleted_only.failed and 'archive_deleted_rows' in deleted_only.msg
    world.lab.query(API_DB, 'INSERT INTO host_mappings (created_at, cell_id, host) VALUES (UTC_TIMESTAMP(), %s, "doomed-cmp1")', (row['id'],))

    checked = world.run('cell', name='doomed', state='absent', force=True, check=True)
    assert checked.changed and world.cell_row('doomed') is not None
    gone = world.run('cell', name='doomed', state='absent', force=True, diff=True)
    again = world.run('cell', name='doomed', state='absent', force=True)
    assert gone.changed and not again.changed and again['commands'] == []
    assert world.cell_row('doomed') is None
    assert gone['diff']['after'] == {} and gone['diff']['before']['name'] == 'doomed'
    assert world.lab.query(API_DB, 'SELECT COUNT(*) AS n FROM host_mappings WHERE cell_id = %s', (row['id'],))[0]['n'] == 0
    assert world.lab.query(API_DB, 'SELECT COUNT(*) AS n FROM instance_mappings WHERE cell_id = %s', (row['id'],))[0]['n'] == 0
    assert world.lab.query(db, 'SELECT mapped FROM compute_nodes')[0]['mapped'] == 0


def test_delete_empty_cell_and_absent_is_idempotent(world):
    world.new_cell('empty')
    assert world.run('cell', name='empty', state='absent').changed
    assert not world.run('cell', name='empty', state='absent').changed
    assert not world.run('cell', name='never-existed', state='absent').changed


# -- discover_hosts -------------------------------------------------------------------------------

def test_discover_hosts_maps_new_hosts_once_and_skips_nova_manage_when_nothing_is_new(world):
    _row, db = world.new_cell('disco')
    assert not world.run('discover_hosts', cell='disco').changed
    world.add_compute_nodes(db, ['disco-a', 'disco-b'])
    checked = world.run('discover_hosts', check=True, cell='disco')
    assert checked.changed and checked['mapped_hosts'] == {'disco': ['disco-a', 'disco-b']}
    assert world.lab.query(API_DB, 'SELECT COUNT(*) AS n FROM host_mappings WHERE host LIKE "disco-%%"')[0]['n'] == 0

    first = world.run('discover_hosts', cell='disco')
    second = world.run('discover_hosts', cell='disco')
    assert first.changed and first['mapped_hosts'] == {'disco': ['disco-a', 'disco-b']}
    assert '--strict' in first['commands'][0]
    assert not second.changed and second['commands'] == []
    assert [r['mapped'] for r in world.lab.query(db, 'SELECT mapped FROM compute_nodes ORDER BY host')] == [1, 1]


def test_discover_hosts_with_a_list_of_cells_in_one_run(world):
    _row, db_x = world.new_cell('disco_x')
    _row, db_y = world.new_cell('disco_y')
    world.add_compute_nodes(db_x, ['discox-a'])
    world.add_compute_nodes(db_y, ['discoy-a'])
    only_y = world.run('discover_hosts', cells=['disco_y'])
    assert only_y.changed and only_y['mapped_hosts'] == {'disco_y': ['discoy-a']} and list(only_y['unmapped_hosts']) == ['disco_y']
    both = world.run('discover_hosts', cells=['disco_x', 'disco_y'])
    assert both.changed and both['mapped_hosts'] == {'disco_x': ['discox-a']}
    again = world.run('discover_hosts', cells=['disco_x', 'disco_y'])
    assert not again.changed and again['commands'] == [] and again['unmapped_hosts'] == {'disco_x': [], 'disco_y': []}


def test_discover_hosts_by_service(world):
    _row, db = world.new_cell('bysvc')
    world.add_compute_services(db, ['bysvc-ironic'])
    assert not world.run('discover_hosts', cell='bysvc').changed
    mapped = world.run('discover_hosts', cell='bysvc', by_service=True)
    assert mapped.changed and mapped['mapped_hosts'] == {'bysvc': ['bysvc-ironic']}
    again = world.run('discover_hosts', cell='bysvc', by_service=True)
    assert not again.changed and again['commands'] == []


def test_parallel_discovery_maps_every_host_exactly_once(world):
    _row, db = world.new_cell('crowd')
    hosts = [f'crowd-{i:04d}' for i in range(300)]
    world.add_compute_nodes(db, hosts)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda _i: world.run('discover_hosts', cell='crowd', retry_delay=1), range(3)))
    assert not any(r.failed for r in results), [r.msg for r in results if r.failed]
    counts = world.lab.query(API_DB, 'SELECT host, COUNT(*) AS n FROM host_mappings WHERE host LIKE "crowd-%%" GROUP BY host')
    assert len(counts) == 300 and all(row['n'] == 1 for row in counts)
    reported = [host for r in results for host in r['mapped_hosts'].get('crowd', [])]
    assert set(reported) == set(hosts)


def test_discover_hosts_unknown_cell_and_cell0_are_clear_errors(world):
    unknown = world.run('discover_hosts', cell='nope')
    assert unknown.failed and "no cell named 'nope'" in unknown.msg
    zero = world.run('discover_hosts', cell='cell0')
    assert zero.failed and 'cell0 holds no hosts' in zero.msg


# -- map_instances --------------------------------------------------------------------------------

def test_map_instances_loops_batches_to_completion_then_is_a_cheap_no_op(world):
    _row, db = world.new_cell('inst')
    assert not world.run('map_instances', cell='inst').changed
    world.add_instances(db, 20)
    world.add_instances(db, 5, deleted=True)
    checked = world.run('map_instances', check=True, cell='inst', max_count=10)
    assert checked.changed and checked['mapped'] == 25
    first = world.run('map_instances', cell='inst', max_count=10)
    assert first.changed and first['mapped'] == 25 and first['batches'] == 3, first.result
    second = world.run('map_instances', cell='inst', max_count=10)
    assert not second.changed and second['commands'] == []
    marker = world.lab.query(API_DB, 'SELECT COUNT(*) AS n FROM instance_mappings WHERE project_id = "INSTANCE_MIGRATION_MARKER"')
    assert marker[0]['n'] == 0
    assert world.run('map_instances', cell='inst', max_count=0).failed


# -- host ----------------------------------------------------------------------------------------

def test_host_absent_removes_mapping_once_and_refuses_wrong_cell_or_instances(world):
    _row, db = world.new_cell('hosts')
    world.new_cell('elsewhere')
    world.add_compute_nodes(db, ['hosts-a', 'hosts-b'])
    world.run('discover_hosts', cell='hosts')
    wrong = world.run('host', name='hosts-a', cell='elsewhere')
    assert wrong.failed and "mapped to cell 'hosts'" in wrong.msg
    world.add_instances(db, 1, host='hosts-b')
    busy = world.run('host', name='hosts-b')
    assert busy.failed and 'still has 1 instance' in busy.msg

    checked = world.run('host', check=True, name='hosts-a', cell='hosts')
    assert checked.changed and world.lab.query(API_DB, 'SELECT host FROM host_mappings WHERE host = "hosts-a"')
    first = world.run('host', name='hosts-a', cell='hosts', diff=True)
    second = world.run('host', name='hosts-a', cell='hosts')
    assert first.changed and not second.changed and second['commands'] == []
    assert first['host'] == {'name': 'hosts-a', 'cell': 'hosts', 'cell_uuid': world.cell_row('hosts')['uuid']}
    # delete_host resets compute_nodes.mapped, so the host can be discovered again.
    assert world.run('discover_hosts', cell='hosts')['mapped_hosts'] == {'hosts': ['hosts-a']}


# -- db_sync --------------------------------------------------------------------------------------

def test_db_sync_reports_true_changed_from_schema_versions(world):
    world.lab.create_database('nova_cm_fresh_api')
    conf = world.lab.write_config('cm-fresh', {
        'DEFAULT': {'transport_url': world.lab.transport_url('cm_default')},
        'api_database': {'connection': world.lab.db_url('nova_cm_fresh_api')},
        'database': {'connection': world.lab.db_url('nova_cm_base')},
    })
    args = {'config_files': [str(conf)], 'database': 'api'}
    checked = world.run('db_sync', check=True, **args)
    assert checked.changed and checked['versions']['nova_cm_fresh_api']['before'] is None
    first = world.run('db_sync', **args)
    second = world.run('db_sync', **args)
    assert first.changed and first['versions']['nova_cm_fresh_api']['after']
    assert not second.changed
    # Current against the real Nova's installed head: no nova-manage process at all, in check mode neither.
    assert second['head'] == first['versions']['nova_cm_fresh_api']['after'] and second['commands'] == []
    checked_again = world.run('db_sync', check=True, **args)
    assert not checked_again.changed and checked_again['commands'] == []

    world.lab.create_database('nova_cm_fresh_cell')
    cell_args = {'config_files': [str(conf)], 'database': 'cell', 'local_cell': True}
    conf.write_text(conf.read_text().replace('nova_cm_base', 'nova_cm_fresh_cell'))
    synced = world.run('db_sync', **cell_args)
    assert synced.changed and '--local_cell' in synced['commands'][0]
    again = world.run('db_sync', **cell_args)
    assert not again.changed and again['commands'] == []


# -- cell_info and secrets ------------------------------------------------------------------------

def test_cell_info_reports_hosts_unmapped_hosts_and_instance_counts(world):
    _row, db = world.new_cell('infocell')
    world.add_compute_nodes(db, ['info-a'])
    world.run('discover_hosts', cell='infocell')
    world.add_compute_nodes(db, ['info-b'])
    world.add_instances(db, 2)
    world.run('map_instances', cell='infocell')
    info = world.run('cell_info', cells=['infocell'])
    assert not info.changed
    (cell,) = info['cells']
    assert cell['hosts'] == ['info-a'] and cell['unmapped_hosts'] == ['info-b']
    assert cell['instance_mappings'] == 2 and cell['reachable'] and '****' in cell['database_connection']
    every = world.run('cell_info')
    assert {'cell0', 'infocell'} <= {c['name'] for c in every['cells']}
    assert world.run('cell_info', cells=['nope']).failed
    assert_no_secret(world.lab, info, every)


def test_no_password_reaches_vvv_output_of_any_module(world):
    _row, db = world.new_cell('secretive')
    url = world.lab.db_url(db)
    mq = world.lab.transport_url('cm_secretive')
    world.add_compute_nodes(db, ['secret-a'])
    runs = [
        world.run('cell', verbosity=3, diff=True, name='secretive', database_connection=url + '?charset=utf8', transport_url=mq),
        world.run('cell', verbosity=3, check=True, diff=True, name='secretive2', database_connection=url, transport_url=mq),
        world.run('cell', verbosity=3, name='secretive3', database_connection=url.replace('mysql+pymysql', 'postgresql'), transport_url=mq),
        world.run('cell', verbosity=3, name='secretive', state='absent'),
        world.run('cell_info', verbosity=3),
        world.run('discover_hosts', verbosity=3, cell='secretive'),
        world.run('discover_hosts', verbosity=3, check=True),
        world.run('map_instances', verbosity=3, cell='secretive'),
        world.run('host', verbosity=3, diff=True, name='secret-a'),
        world.run('db_sync', verbosity=3, database='api', check=True),
        world.run('db_sync', verbosity=3, database='cell', local_cell=True, api_database_connection=url),
    ]
    assert any(r.failed for r in runs) and any(r.changed for r in runs)
    assert_no_secret(world.lab, *runs)
