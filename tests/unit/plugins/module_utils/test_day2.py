# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The day-2 playbooks' decisions (module_utils/_day2.py) on what the compute API and the modules return."""

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils import _day2 as d

SERVICES = [
    {'ID': 'u-sched', 'Binary': 'nova-scheduler', 'Host': 'cmp1', 'Zone': 'internal', 'Status': 'enabled', 'State': 'up'},
    {'ID': 'u-cmp1', 'Binary': 'nova-compute', 'Host': 'cmp1', 'Zone': 'nova', 'Status': 'enabled', 'State': 'up'},
    {'ID': 'u-cmp10', 'Binary': 'nova-compute', 'Host': 'cmp10', 'Zone': 'nova', 'Status': 'enabled', 'State': 'up'},
    {'ID': 'u-cmp2', 'Binary': 'nova-compute', 'Host': 'cmp2', 'Zone': 'nova', 'Status': 'disabled', 'State': 'down'},
]


def test_names_from_string_and_list():
    assert d.names('cmp1, cmp2 cmp1') == ['cmp1', 'cmp2']
    assert d.names(['cmp1', ' cmp2 ', '']) == ['cmp1', 'cmp2']
    assert d.names(None) == []
    assert d.names('') == []


@pytest.mark.parametrize('pattern', ['cmp*', 'cmp?', 'cmp[12]'])
def test_names_refuse_patterns(pattern):
    with pytest.raises(d.Day2Error, match='pattern'):
        d.names(pattern)


def test_names_refuse_non_strings():
    with pytest.raises(d.Day2Error, match='strings'):
        d.names([1])


def test_removal_matches_exact_host_and_binary_only():
    plan = d.compute_removal('cmp1', SERVICES, [[]], {'cmp1': 'inv-cmp1'})
    # Not cmp10 (a substring match would take it), not the scheduler on the same host.
    assert plan['services'] == [{'id': 'u-cmp1', 'host': 'cmp1', 'status': 'enabled', 'state': 'up'}]
    assert plan['servers'] == [] and plan['servers_message'] == ''
    assert plan['gone'] == [] and plan['unreachable'] == []


def test_removal_lists_blocking_servers_per_host_with_uuid_and_name():
    servers = [[{'ID': 'uuid-a', 'Name': 'vm-a', 'Host': 'cmp1'}, {'ID': 'uuid-x', 'Name': 'vm-x', 'Host': 'cmp10'}],
               [{'ID': 'uuid-b', 'Name': 'vm-b', 'Host': 'cmp2'}]]
    plan = d.compute_removal(['cmp1', 'cmp2'], SERVICES, servers)
    assert [s['id'] for s in plan['servers']] == ['uuid-a', 'uuid-b']
    assert 'cmp1 has 1 instance(s): uuid-a vm-a' in plan['servers_message']
    assert 'cmp2 has 1 instance(s): uuid-b vm-b' in plan['servers_message']
    assert 'uuid-x' not in plan['servers_message']
    assert 'Nothing was changed' in plan['servers_message']


def test_removal_of_a_host_already_gone():
    plan = d.compute_removal(['cmp3'], SERVICES, [[]], {})
    assert plan['services'] == [] and plan['gone'] == ['cmp3'] and plan['unreachable'] == []


def test_removal_refuses_an_up_service_outside_the_inventory():
    plan = d.compute_removal(['cmp1', 'cmp2'], SERVICES, [[], []], {'cmp2': 'inv-cmp2'})
    # cmp2 is down: deleting its service is safe even without the host; cmp1 is up and nobody can stop it.
    assert plan['unreachable'] == ['cmp1']
    assert 'nova-compute on cmp1 is up' in plan['unreachable_message']
    assert d.compute_removal(['cmp1'], SERVICES, [[]])['unreachable'] == []


def test_removal_reads_lowercase_columns():
    rows = [{'id': 7, 'binary': 'nova-compute', 'host': 'cmp1', 'status': 'enabled', 'state': 'up'}]
    assert d.compute_removal('cmp1', rows, [])['services'][0]['id'] == '7'


def test_provider_names():
    hypervisors = [{'ID': 'n1', 'Hypervisor Hostname': 'cmp1.example.org', 'Service Host': 'cmp1'},
                   {'ID': 'n10', 'Hypervisor Hostname': 'cmp10.example.org', 'Service Host': 'cmp10'},
                   {'ID': 'n2', 'Hypervisor Hostname': 'node-b', 'service': {'host': 'cmp2', 'id': 'u-cmp2'}}]
    assert d.provider_names(['cmp1', 'cmp2'], hypervisors) == ['cmp1', 'cmp2', 'cmp1.example.org', 'node-b']
    assert d.provider_names(['cmp3'], hypervisors) == ['cmp3']
    assert d.provider_names(['cmp2'], [{'Hypervisor Hostname': 'x', 'service_id': 'u-cmp2'}],
                            [{'id': 'u-cmp2'}]) == ['cmp2', 'x']


def test_catalog_url_list_and_text():
    listed = {'name': 'placement', 'endpoints': [
        {'interface': 'internal', 'url': 'http://int:8778', 'region': 'R1'},
        {'interface': 'public', 'url': 'http://pub:8778/', 'region': 'R1'},
        {'interface': 'public', 'url': 'http://pub2:8778', 'region_id': 'R2'}]}
    assert d.catalog_url(listed) == 'http://pub:8778'
    assert d.catalog_url(listed, 'public', 'R2') == 'http://pub2:8778'
    assert d.catalog_url(listed, 'internal') == 'http://int:8778'
    text = {'name': 'placement', 'endpoints': 'RegionOne\n  public: http://p:8778\nRegionOne\n  admin: http://a:8778\n'}
    assert d.catalog_url(text) == 'http://p:8778'
    assert d.catalog_url(text, 'admin', 'RegionOne') == 'http://a:8778'
    with pytest.raises(d.Day2Error, match='no admin endpoint'):
        d.catalog_url(listed, 'admin')


def test_move_check():
    ok = {'nova_cell1_new': {'before': 'abc', 'after': 'abc'}}
    assert d.move_check('cell1', ok, 'abc') == ''
    assert d.move_check('cell1', ok, None) == ''
    empty = d.move_check('cell1', {'nova_cell1_new': {'before': None, 'after': 'abc'}}, 'abc', database='db2/nova_cell1_new')
    assert 'holds no Nova schema' in empty and 'db2/nova_cell1_new' in empty and 'Nothing was changed' in empty
    assert 'holds no Nova schema' in d.move_check('cell1', {}, 'abc')
    old = d.move_check('cell1', {'n': {'before': 'old', 'after': 'abc'}}, 'abc')
    assert 'revision old' in old
    down = d.move_check('cell1', None, None, error="Can't connect to MySQL server on 'db9'")
    assert 'does not answer' in down and 'db9' in down


def test_move_queue_check():
    # cell1 keeps sharing the API message queue (its queue moves with nova_rabbit_*): nothing in the way.
    assert d.move_queue_check('cell1', True, []) == ''
    # cell2 has its own queue and its own conductor there.
    assert d.move_queue_check('cell2', False, ['c2cond']) == ''
    # cell1 would stop sharing (nova_cells.cell1.rabbit_vhost) with no cell conductor of its own: refused, with the way out.
    message = d.move_queue_check('cell1', False, [])
    assert 'no host runs a cell conductor of cell1' in message
    assert 'nova_rabbit_vhost' in message
    assert message.endswith('Nothing was changed.')
