# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The decisions of cell, host, discover_hosts, map_instances and cell_info, on the fake Nova of conftest.py.

Each test names what the module decides: when it runs nova-manage and with which arguments, when it
refuses (before any nova-manage run), what it reports. Real Nova proves the same end to end in
tests/integration/test_cell_modules.py.
"""

from __future__ import annotations

from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID, MARKER_PROJECT_ID
from ansible_collections.nova.cells.plugins.modules import cell, cell_info, discover_hosts, host, map_instances
from ansible_collections.nova.cells.tests.unit.plugins.modules.fake_nova import CELL1_DB, CELL1_UUID, secrets_in

CELL2_DB = 'mysql+pymysql://nova:Cell2Pw0rd@db/nova_cell2'
CELL2_MQ = 'rabbit://nova:Mq2Pw0rd@mq:5672/cell2'


def commands(nova):
    return [' '.join(argv[argv.index('cell_v2'):]) for argv in nova.commands]


# -- cell_info ---------------------------------------------------------------------------------------

def test_cell_info_does_not_report_a_host_mapped_in_another_case_as_unmapped(nova, run_module):
    nova.add_node('CMP1')          # compute_nodes.mapped is still 0, but the host is mapped as 'cmp1'
    nova.add_node('cmp2')
    nova.map_host('cmp1')
    result = run_module(cell_info)
    cell1 = next(entry for entry in result['cells'] if entry['name'] == 'cell1')
    assert cell1['unmapped_hosts'] == ['cmp2']
    assert cell1['hosts'] == ['cmp1'] and cell1['host_count'] == 1 and cell1['reachable'] is True


def test_cell_info_counts_instance_mappings_without_the_marker(nova, run_module):
    nova.add_instance(mapped_to=2)
    nova.instance_mappings.append(dict(instance_uuid='x', cell_id=None, project_id='p'))
    nova.instance_mappings.append(dict(instance_uuid='m', cell_id=None, project_id=MARKER_PROJECT_ID))
    result = run_module(cell_info, hosts=False)
    cell1 = next(entry for entry in result['cells'] if entry['name'] == 'cell1')
    assert cell1['instance_mappings'] == 1 and 'hosts' not in cell1
    assert result['unmapped_instance_mappings'] == 1
    assert result['changed'] is False and 'commands' not in result


def test_cell_info_reports_an_unreachable_cell_instead_of_failing(nova, run_module):
    nova.unreachable.add('nova_cell1')
    result = run_module(cell_info)
    cell1 = next(entry for entry in result['cells'] if entry['name'] == 'cell1')
    assert cell1['reachable'] is False and 'unreachable' in cell1['error'] and cell1['unmapped_hosts'] == []
    assert 'cell0' not in [entry['name'] for entry in result['cells'] if 'reachable' in entry]   # cell0 is not queried
    assert secrets_in(result) == []


def test_cell_info_masks_urls(nova, run_module):
    result = run_module(cell_info)
    assert [entry['database_connection'] for entry in result['cells']][1] == 'mysql+pymysql://nova:****@db/nova_cell1'
    assert secrets_in(result) == []


def test_cell_info_refuses_an_unknown_cell(nova, run_module):
    result = run_module(cell_info, cells=['cell1', 'nosuchcell'])
    assert result['failed'] and "there is no cell named 'nosuchcell'" in result['msg']


# -- discover_hosts ----------------------------------------------------------------------------------

def test_discover_hosts_runs_no_nova_manage_when_nothing_is_unmapped(nova, run_module):
    nova.add_node('cmp1', mapped=1)
    nova.map_host('cmp1')
    result = run_module(discover_hosts)
    assert result['changed'] is False and result['commands'] == [] and nova.commands == []
    assert result['unmapped_hosts'] == {'cell1': []}


def test_discover_hosts_ignores_a_host_mapped_in_another_case(nova, run_module):
    nova.add_node('CMP1')
    nova.map_host('cmp1')
    result = run_module(discover_hosts)
    assert result['changed'] is False and nova.commands == []


def test_discover_hosts_maps_the_candidates_of_each_cell(nova, run_module):
    nova.add_node('cmp1')
    nova.add_node('cmp2')
    result = run_module(discover_hosts)
    assert result['changed'] is True
    assert result['mapped_hosts'] == {'cell1': ['cmp1', 'cmp2']} and result['unmapped_hosts'] == {'cell1': ['cmp1', 'cmp2']}
    assert commands(nova) == [f'cell_v2 discover_hosts --cell_uuid {CELL1_UUID} --strict --verbose']
    assert run_module(discover_hosts)['changed'] is False


def test_discover_hosts_in_check_mode_lists_the_command_and_runs_nothing(nova, run_module):
    nova.add_node('cmp1')
    result = run_module(discover_hosts, _ansible_check_mode=True)
    assert result['changed'] is True and result['mapped_hosts'] == {'cell1': ['cmp1']}
    assert len(result['commands']) == 1 and nova.commands == [] and nova.host_mappings == []


def test_discover_hosts_by_service_passes_the_flag(nova, run_module):
    nova.tables()['services'].append('ironic1')
    result = run_module(discover_hosts, by_service=True)
    assert result['mapped_hosts'] == {} and commands(nova)[0].endswith('--by-service')


def test_discover_hosts_refuses_cell0_and_negative_retries_before_running_anything(nova, run_module):
    assert "cell0 holds no hosts" in run_module(discover_hosts, cell='cell0')['msg']
    assert 'must not be negative' in run_module(discover_hosts, retries=-1)['msg']
    assert nova.commands == []


def test_discover_hosts_refuses_duplicate_cell_names(nova, run_module):
    nova.cells.append(dict(nova.cell('cell1'), id=3, uuid='22222222-2222-4222-8222-222222222222', database_connection=CELL2_DB,
                           transport_url=CELL2_MQ))
    result = run_module(discover_hosts)
    assert result['failed'] and 'is used by 2 cell mappings' in result['msg'] and nova.commands == []


# -- map_instances -----------------------------------------------------------------------------------

def test_map_instances_runs_no_nova_manage_when_every_instance_is_mapped(nova, run_module):
    nova.add_instance(mapped_to=2)
    result = run_module(map_instances, cell='cell1')
    assert (result['changed'], result['unmapped_before'], result['mapped'], result['batches']) == (False, 0, 0, 0)
    assert nova.commands == []


def test_map_instances_maps_deleted_instances_too_and_counts_them(nova, run_module):
    nova.add_instance(mapped_to=2)
    nova.add_instance()
    nova.add_instance(deleted=1)
    result = run_module(map_instances, cell='cell1', max_count=50)
    assert (result['changed'], result['unmapped_before'], result['mapped'], result['batches']) == (True, 2, 2, 1)
    assert commands(nova) == [f'cell_v2 map_instances --cell_uuid {CELL1_UUID} --max-count 50']


def test_map_instances_skips_instances_mapped_to_another_cell(nova, run_module):
    nova.add_instance(mapped_to=9)
    result = run_module(map_instances, cell='cell1')
    assert result['changed'] is False and nova.commands == []


def test_map_instances_in_check_mode_counts_and_runs_nothing(nova, run_module):
    nova.add_instance()
    result = run_module(map_instances, cell='cell1', _ansible_check_mode=True)
    assert (result['changed'], result['mapped'], result['batches']) == (True, 1, 0)
    assert len(result['commands']) == 1 and nova.commands == [] and nova.instance_mappings == []


def test_map_instances_direct_in_check_mode_writes_nothing(nova, run_module):
    nova.add_instance()
    result = run_module(map_instances, cell='cell1', engine='direct', _ansible_check_mode=True)
    assert (result['changed'], result['mapped'], result['commands']) == (True, 1, [])
    assert nova.writes() == []


# -- host --------------------------------------------------------------------------------------------

def test_host_without_a_mapping_is_unchanged_without_nova_manage(nova, run_module):
    result = run_module(host, name='cmp9', _ansible_diff=True)
    assert (result['changed'], result['host'], result['restart_required']) == (False, {}, [])
    assert result['diff'] == {'before': {}, 'after': {}} and nova.commands == []


def test_host_removes_the_mapping_and_asks_for_a_scheduler_sighup(nova, run_module):
    nova.map_host('cmp1')
    result = run_module(host, name='CMP1', cell='cell1', _ansible_diff=True)
    assert result['changed'] is True and result['restart_required'] == ['scheduler_sighup']
    assert result['host'] == {'name': 'CMP1', 'cell': 'cell1', 'cell_uuid': CELL1_UUID}
    assert result['diff'] == {'before': result['host'], 'after': {}}
    assert commands(nova) == [f'cell_v2 delete_host --cell_uuid {CELL1_UUID} --host CMP1'] and nova.host_mappings == []


def test_host_in_check_mode_lists_the_command_and_keeps_the_mapping(nova, run_module):
    nova.map_host('cmp1')
    result = run_module(host, name='cmp1', _ansible_check_mode=True)
    assert result['changed'] is True and len(result['commands']) == 1
    assert nova.commands == [] and nova.host_mappings == [{'host': 'cmp1', 'cell_id': 2}]


def test_host_refuses_a_host_with_instances_or_in_another_cell(nova, run_module):
    nova.map_host('cmp1')
    nova.add_instance(host='cmp1')
    nova.cells.append(dict(id=3, uuid='22222222-2222-4222-8222-222222222222', name='cell2', transport_url=CELL2_MQ,
                           database_connection=CELL2_DB, disabled=0))
    assert 'still has 1 instance(s)' in run_module(host, name='cmp1')['msg']
    assert "is mapped to cell 'cell1'" in run_module(host, name='cmp1', cell='cell2')['msg']
    assert "there is no cell named 'nosuchcell'" in run_module(host, name='cmp1', cell='nosuchcell')['msg']
    assert nova.commands == [] and len(nova.host_mappings) == 1


# -- cell --------------------------------------------------------------------------------------------

def test_cell_creates_a_cell_and_reports_it_masked(nova, run_module):
    result = run_module(cell, name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ, _ansible_diff=True)
    assert result['changed'] is True and result['restart_required'] == ['scheduler_sighup']
    assert result['cell']['name'] == 'cell2' and result['cell']['uuid'] == nova.cell('cell2')['uuid']
    assert result['cell']['database_connection'] == 'mysql+pymysql://nova:****@db/nova_cell2'
    assert result['diff']['before'] == {} and result['diff']['after'] == result['cell']
    assert commands(nova)[0].startswith('cell_v2 create_cell --name cell2')
    assert 'Cell2Pw0rd' not in str(result) and 'Mq2Pw0rd' not in str(result)


def test_cell_with_the_same_urls_is_unchanged_without_nova_manage(nova, run_module):
    result = run_module(cell, name='cell1', database_connection=CELL1_DB, transport_url=nova.cell('cell1')['transport_url'])
    assert (result['changed'], result['commands'], result['restart_required']) == (False, [], [])


def test_cell_update_passes_both_urls_and_the_new_flag(nova, run_module):
    result = run_module(cell, name='cell1', disabled=True, _ansible_diff=True)
    assert result['changed'] is True and result['restart_required'] == ['scheduler_sighup']
    assert result['diff']['before']['disabled'] is False and result['diff']['after']['disabled'] is True
    (command,) = commands(nova)
    assert command.startswith(f'cell_v2 update_cell --cell_uuid {CELL1_UUID} --name cell1 --transport-url')
    assert '--database_connection' in command and command.endswith('--disable')
    assert nova.cell('cell1')['disabled'] == 1


def test_cell_url_change_asks_for_service_restarts(nova, run_module):
    result = run_module(cell, name='cell1', transport_url='rabbit://nova:MqPw0rd@mq2:5672/cell1')
    assert result['restart_required'] == ['api', 'conductor', 'scheduler']


def test_cell_in_check_mode_runs_nothing(nova, run_module):
    result = run_module(cell, name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ, _ansible_check_mode=True)
    assert result['changed'] is True and len(result['commands']) == 1 and nova.commands == []
    assert [c['name'] for c in nova.cells] == ['cell0', 'cell1']


def test_cell_refuses_what_nova_would_refuse_before_running_nova_manage(nova, run_module):
    cases = [
        (dict(name='cell2', database_connection=CELL1_DB, transport_url=CELL2_MQ), 'would share its database'),
        (dict(name='cell2', database_connection=CELL2_DB, transport_url=nova.cell('cell1')['transport_url']), 'would share its transport URL'),
        (dict(name='cell2'), 'creating it needs database_connection and transport_url'),
        (dict(name='cell2', uuid='b0000000-0000-4000-8000-0000000000ff'), 'there is no cell with uuid'),
        (dict(name='cell0', state='absent', force=True), 'cell0 cannot be deleted'),
    ]
    for args, expected in cases:
        result = run_module(cell, **args)
        assert result.get('failed') and expected in result['msg'], (args, result)
    assert nova.commands == []


def test_cell_rename_onto_another_name_is_refused(nova, run_module):
    nova.cells.append(dict(id=3, uuid='22222222-2222-4222-8222-222222222222', name='cell2', transport_url=CELL2_MQ,
                           database_connection=CELL2_DB, disabled=0))
    result = run_module(cell, name='cell1', uuid='22222222-2222-4222-8222-222222222222')
    assert 'that name is already used by' in result['msg'] and nova.commands == []


def test_cell_delete_refuses_mapped_hosts_and_instances_unless_forced(nova, run_module):
    nova.map_host('cmp1')
    assert 'still has 1 mapped host(s): cmp1' in run_module(cell, name='cell1', state='absent')['msg']
    nova.add_instance(host='cmp1', mapped_to=2)
    refused = run_module(cell, name='cell1', state='absent', force=True)
    live_uuid = nova.tables()['instances'][0]['uuid']
    # The refusal names the live instances that are in the way.
    assert 'still has 1 live instance(s): ' + live_uuid in refused['msg'] and refused['instances'] == [live_uuid]
    nova.tables()['instances'][0]['deleted'] = 1
    nova.host_mappings = []
    assert 'has 1 mapping(s) of deleted instances' in run_module(cell, name='cell1', state='absent')['msg']
    assert nova.commands == []
    nova.map_host('cmp1')
    result = run_module(cell, name='cell1', state='absent', force=True, _ansible_diff=True)
    assert result['changed'] is True and commands(nova) == [f'cell_v2 delete_cell --force --cell_uuid {CELL1_UUID}']
    assert result['diff']['after'] == {} and result['cell']['name'] == 'cell1'


def test_cell_absent_that_does_not_exist_is_unchanged(nova, run_module):
    result = run_module(cell, name='cell9', state='absent')
    assert (result['changed'], result['cell'], result['commands']) == (False, {}, [])


def test_cell0_is_mapped_with_map_cell0(nova, run_module):
    nova.cells = [c for c in nova.cells if c['uuid'] != CELL0_UUID]
    nova.cmd_map_cell0 = lambda options: (nova.cells.insert(0, dict(
        id=9, uuid=CELL0_UUID, name='cell0', transport_url='none:///', database_connection=options['--database_connection'],
        disabled=0)), (0, '', ''))[1]
    result = run_module(cell, name='cell0', database_connection='mysql+pymysql://nova:Cell0Pw0rd@db/nova_cell0')
    assert result['changed'] is True and result['cell']['uuid'] == CELL0_UUID
    assert commands(nova)[0].startswith('cell_v2 map_cell0 --database_connection')


# -- cell with cells (several in one run) -------------------------------------------------------------

def _lock_statements(nova):
    return [sql for _db, sql, _args in nova.statements if 'GET_LOCK' in sql]


def _cell_reads(nova):
    return [sql for _db, sql, _args in nova.statements if 'FROM cell_mappings' in sql]


def test_cells_converged_is_one_read_no_lock_no_nova_manage(nova, run_module):
    cell1 = nova.cell('cell1')
    result = run_module(cell, cells=[dict(name='cell0', database_connection=nova.cell('cell0')['database_connection']),
                                     dict(name='cell1', database_connection=CELL1_DB, transport_url=cell1['transport_url'], disabled=None)],
                        _ansible_diff=True)
    assert (result['changed'], result['commands'], result['restart_required']) == (False, [], [])
    assert [(entry['name'], entry['changed'], entry['commands'], entry['restart_required']) for entry in result['cells']] == [
        ('cell0', False, [], []), ('cell1', False, [], [])]
    assert result['cells'][1]['cell']['database_connection'] == 'mysql+pymysql://nova:****@db/nova_cell1'
    assert result['diff'] == {'before': {}, 'after': {}} and 'cell' not in result
    assert len(_cell_reads(nova)) == 1 and _lock_statements(nova) == [] and nova.commands == []
    assert secrets_in(result) == []


def test_cells_creates_and_updates_like_one_task_per_cell(nova, run_module):
    result = run_module(cell, cells=[dict(name='cell1', disabled=True),
                                     dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ)], _ansible_diff=True)
    assert result['changed'] is True and result['restart_required'] == ['scheduler_sighup']
    first, second = result['cells']
    assert first['changed'] and second['changed']
    assert 'update_cell' in first['commands'][0] and first['commands'][0].endswith('--disable')
    assert 'create_cell' in second['commands'][0] and second['cell']['uuid'] == nova.cell('cell2')['uuid']
    assert commands(nova)[0].startswith(f'cell_v2 update_cell --cell_uuid {CELL1_UUID}') and commands(nova)[1].startswith('cell_v2 create_cell --name cell2')
    assert result['diff']['before'] == {'cell1': result['diff']['before']['cell1'], 'cell2': {}}
    assert result['diff']['before']['cell1']['disabled'] is False and result['diff']['after']['cell1']['disabled'] is True
    assert result['diff']['after']['cell2']['name'] == 'cell2'
    # the changed cells took the named lock; a second run changes nothing
    assert len(_lock_statements(nova)) == 2
    again = run_module(cell, cells=[dict(name='cell1', disabled=True), dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ)])
    assert again['changed'] is False and again['commands'] == []
    assert 'Cell2Pw0rd' not in str(result) and 'Mq2Pw0rd' not in str(result)


def test_cells_in_check_mode_runs_nothing(nova, run_module):
    result = run_module(cell, cells=[dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ)], _ansible_check_mode=True)
    assert result['changed'] is True and len(result['commands']) == 1 and nova.commands == []
    assert result['cells'][0]['changed'] is True and result['restart_required'] == ['scheduler_sighup']
    assert [c['name'] for c in nova.cells] == ['cell0', 'cell1']


def test_cells_validates_every_entry_before_any_change(nova, run_module):
    cases = [
        ([dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ), dict(name='cell0', disabled=True)],
         "cells[1] ('cell0'): cell0 cannot be disabled"),
        ([dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ), dict(name='bad;name')], 'cells[1]'),
        ([dict(name='cell2', database_connection=CELL2_DB, transport_url=CELL2_MQ), dict(name='cell2')], "'cell2' more than once"),
        ([dict(name='cell2', database_connection='nonsense', transport_url=CELL2_MQ)], "cells[0] ('cell2')"),
    ]
    for cells, expected in cases:
        result = run_module(cell, cells=cells)
        assert result.get('failed') and expected in result['msg'], (cells, result)
    assert 'state=present' in run_module(cell, cells=[dict(name='cell1')], state='absent')['msg']
    assert 'mutually exclusive' in run_module(cell, cells=[dict(name='cell1')], name='cell1')['msg']
    assert 'one of the following is required' in run_module(cell)['msg']
    assert nova.commands == [] and [c['name'] for c in nova.cells] == ['cell0', 'cell1']


def test_cells_refusal_stops_at_that_cell_and_reports_the_earlier_ones(nova, run_module):
    result = run_module(cell, cells=[dict(name='cell1', disabled=True),
                                     dict(name='cell2', database_connection=CELL1_DB, transport_url=CELL2_MQ)])
    assert result['failed'] and 'would share its database' in result['msg']
    assert [(entry['name'], entry['changed']) for entry in result['cells']] == [('cell1', True)]
    assert len(result['commands']) == 1 and 'update_cell' in result['commands'][0]
    assert 'Cell1Pw0rd' not in str(result)


def test_discover_hosts_with_cells_handles_only_those_in_one_run(nova, run_module):
    nova.cells.append(dict(id=3, uuid='22222222-2222-4222-8222-222222222222', name='cell2', transport_url=CELL2_MQ,
                           database_connection=CELL2_DB, disabled=0))
    nova.add_node('cmp1')
    nova.add_node('cmp2', database='nova_cell2')
    result = run_module(discover_hosts, cells=['cell2'])
    assert result['mapped_hosts'] == {'cell2': ['cmp2']} and result['unmapped_hosts'] == {'cell2': ['cmp2']}
    result = run_module(discover_hosts, cells=['cell1', 'cell2'])
    assert result['mapped_hosts'] == {'cell1': ['cmp1']} and result['unmapped_hosts'] == {'cell1': ['cmp1'], 'cell2': []}
    assert run_module(discover_hosts, cells=[])['unmapped_hosts'] == {}
    assert "there is no cell named 'cell9'" in run_module(discover_hosts, cells=['cell1', 'cell9'])['msg']
    assert 'mutually exclusive' in run_module(discover_hosts, cells=['cell1'], cell='cell1')['msg']
