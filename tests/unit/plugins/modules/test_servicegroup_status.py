# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Unit tests of nova.cells.service_status's pure parts (the backends are exercised in tests/integration)."""

from __future__ import annotations

from ansible_collections.nova.cells.plugins.modules.service_status import wait_problems


def service(cell, host, binary, state, reason=None):
    return {'cell': cell, 'host': host, 'binary': binary, 'state': state, 'reason': reason}


SUMMARY = {'cell1': {'reachable': True}, 'cell2': {'reachable': True}}
SERVICES = [
    service('cell1', 'cmp1', 'nova-compute', 'up'),
    service('cell1', 'cmp2', 'nova-compute', 'down', 'last heartbeat 70 s ago (service_down_time 60)'),
    service('cell1', 'cond1', 'nova-conductor', 'up'),
    service('cell2', 'cmp3', 'nova-compute', 'unknown', 'memcached did not answer'),
]


def spec(**values):
    base = dict(state='up', hosts=None, binary=None, count_per_cell=None)
    base.update(values)
    return base


def test_hosts_up():
    assert wait_problems(SERVICES, SUMMARY, spec(hosts=['cmp1', 'cond1'])) == []
    problems = wait_problems(SERVICES, SUMMARY, spec(hosts=['cmp1', 'cmp2', 'cmp9']))
    assert problems == ['cell1/cmp2 nova-compute is down (last heartbeat 70 s ago (service_down_time 60))',
                        'host cmp9 has no service row']


def test_hosts_down_and_unknown_never_satisfies():
    assert wait_problems(SERVICES, SUMMARY, spec(hosts=['cmp2'], state='down')) == []
    assert wait_problems(SERVICES, SUMMARY, spec(hosts=['cmp9'], state='down')) == []   # no row: nothing is up there
    assert wait_problems(SERVICES, SUMMARY, spec(hosts=['cmp3'], state='down')) == ['cell2/cmp3 nova-compute is unknown (memcached did not answer)']


def test_count_per_cell():
    assert wait_problems(SERVICES, SUMMARY, spec(binary='nova-compute', count_per_cell=1)) == ['cell cell2: 0 nova-compute up, 1 wanted']
    assert wait_problems(SERVICES, SUMMARY, spec(binary='nova-compute', count_per_cell=2)) == [
        'cell cell1: 1 nova-compute up, 2 wanted', 'cell cell2: 0 nova-compute up, 2 wanted']


def test_all_selected_services_and_unreachable_cells():
    assert len(wait_problems(SERVICES, SUMMARY, spec())) == 2
    assert wait_problems([], SUMMARY, spec()) == ['no service matches']
    assert wait_problems([], SUMMARY, spec(state='down')) == []
    summary = dict(SUMMARY, cell3={'reachable': False, 'error': 'cannot connect'})
    assert 'cell cell3: its database could not be read (cannot connect)' in wait_problems(SERVICES, summary, spec(binary='nova-conductor'))
