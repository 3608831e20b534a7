# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._topology import (
    CELL0_UUID,
    STATE_COLOURS,
    TopologyError,
    safe_url,
    safe_url_text,
    stable_reason,
    topology_dot,
)

CELL1 = '5b7c3a0e-1111-4e0c-9a52-0f3c1d2e3f41'
CELL2 = '5b7c3a0e-2222-4e0c-9a52-0f3c1d2e3f42'
CELL3 = '5b7c3a0e-3333-4e0c-9a52-0f3c1d2e3f43'
SECRET = 'Pa55:w@rd/x'


def cell_info():
    return {'cells': [
        {'uuid': CELL0_UUID, 'name': 'cell0', 'disabled': False, 'hosts': [], 'host_count': 0,
         'transport_url': 'none:///', 'database_connection': 'mysql+pymysql://nova:****@db:3306/nova_cell0'},
        {'uuid': CELL1, 'name': 'cell1', 'disabled': False, 'hosts': ['c1cmp1', 'c1cmp2', 'c1old'], 'host_count': 3,
         'unmapped_hosts': ['c1new', 'c1cmp3'], 'reachable': True,
         'transport_url': 'rabbit://nova:%s@mq1:5672,nova:%s@mq2:5672/cell1' % (SECRET, SECRET),
         'database_connection': 'mysql+pymysql://nova:%s@db:3306/nova_cell1?password=%s' % (SECRET, SECRET)},
        {'uuid': CELL2, 'name': 'cell2', 'disabled': True, 'hosts': ['c2cmp1'], 'host_count': 1, 'unmapped_hosts': [],
         'reachable': True, 'transport_url': 'rabbit://nova:****@mq1:5672/cell2',
         'database_connection': 'mysql+pymysql://{username}:{password}@db:3306/nova_cell2'},
        {'uuid': CELL3, 'name': 'cell3', 'disabled': False, 'hosts': [], 'host_count': 0, 'unmapped_hosts': [],
         'reachable': False, 'error': "(2003, \"Can't connect to MySQL server on 'db3'\") for mysql+pymysql://nova:%s@db3/nova_cell3" % SECRET,
         'transport_url': 'rabbit://nova:****@mq1:5672/cell3', 'database_connection': 'mysql+pymysql://nova:****@db3:3306/nova_cell3'},
    ]}


def service(cell, uuid, host, binary, state='up', **extra):
    entry = {'cell': cell, 'cell_uuid': uuid, 'host': host, 'binary': binary, 'topic': binary.split('-')[-1], 'state': state,
             'reason': None if state == 'up' else 'no heartbeat for 75 s (service_down_time 60 s)', 'forced_down': False,
             'disabled': False, 'disabled_reason': None, 'last_seen': None, 'age_seconds': 2.0}
    entry.update(extra)
    return entry


def service_status():
    return {
        'driver': 'mc', 'service_down_time': 60, 'report_interval': 10,
        'services': [
            service('cell0', CELL0_UUID, 'ctl', 'nova-scheduler'),
            service('cell0', CELL0_UUID, 'ctl', 'nova-conductor'),
            service('cell1', CELL1, 'c1cond', 'nova-conductor'),
            service('cell1', CELL1, 'c1cmp1', 'nova-compute'),
            service('cell1', CELL1, 'c1cmp2', 'nova-compute', state='down', disabled=True, disabled_reason='maintenance'),
            service('cell1', CELL1, 'c1cmp3', 'nova-compute'),
            service('cell2', CELL2, 'c2cmp1', 'nova-compute', state='unknown'),
        ],
        'summary': {'cell0': {'reachable': True}, 'cell1': {'reachable': True}, 'cell2': {'reachable': True},
                    'cell3': {'reachable': False}},
    }


def clusters(dot):
    """{first line of a cluster's label: (its whole label, the text of the cluster)}."""
    found = {}
    for block in dot.split('  subgraph ')[1:]:
        label = block.split('label="', 1)[1].split('";', 1)[0]
        found[label.split('\\n')[0]] = (label, block.split('\n  }', 1)[0])
    return found


@pytest.mark.parametrize(('url', 'expected'), [
    ('mysql+pymysql://nova:s3cret@db1:3306/nova_cell1?charset=utf8', 'mysql+pymysql://nova@db1:3306/nova_cell1'),
    ('rabbit://nova:a@mq1:5672,nova:b@mq2:5672/cell1', 'rabbit://nova@mq1:5672,nova@mq2:5672/cell1'),
    ('rabbit://nova:p@ss@mq1:5672/', 'rabbit://nova@mq1:5672/'),
    ('mysql+pymysql://nova:a/b?c#d@db:3306/nova?charset=utf8#x', 'mysql+pymysql://nova@db:3306/nova'),
    ('mysql+pymysql://{username}:{password}@db:3306/nova_cell2', 'mysql+pymysql://{username}@db:3306/nova_cell2'),
    ('mysql+pymysql://db/nova', 'mysql+pymysql://db/nova'),
    ('none:///', 'none:///'),
    (None, ''),
])
def test_safe_url_keeps_where_and_drops_password_and_query(url, expected):
    assert safe_url(url) == expected


def test_urls_inside_free_text_are_reduced_too():
    text = 'cannot connect for mysql+pymysql://nova:%s@db3/nova_cell3, giving up' % SECRET
    assert safe_url_text(text) == 'cannot connect for mysql+pymysql://nova@db3/nova_cell3, giving up'


def test_picture_has_every_cell_service_host_and_state():
    dot = topology_dot(cell_info(), service_status())
    assert dot.startswith('digraph nova_cells {') and dot.endswith('}\n')
    found = clusters(dot)
    assert {'API level: cell0', 'cell cell1', 'cell cell2', 'cell cell3', 'legend'} <= set(found)
    assert 'ctl\\nnova-scheduler\\nUP' in found['API level: cell0'][1]
    assert 'ctl\\nnova-conductor\\nUP' in found['API level: cell0'][1]
    assert 'c1cond\\nnova-conductor\\nUP' in found['cell cell1'][1]
    assert 'c1cmp1\\nnova-compute\\nUP' in found['cell cell1'][1]
    assert 'c1cmp2\\nnova-compute\\nDOWN\\ndisabled: maintenance' in found['cell cell1'][1]
    assert 'c2cmp1\\nnova-compute\\nUNKNOWN' in found['cell cell2'][1]
    assert '7 service(s): 3 up, 1 down, 2 unknown' not in dot  # counts are exact:
    assert '7 service(s): 5 up, 1 down, 1 unknown' in dot
    assert 'ServiceGroup driver mc, service_down_time 60 s' in dot


def test_states_are_coloured_and_disabled_services_dashed():
    dot = topology_dot(cell_info(), service_status())
    line = next(line for line in dot.splitlines() if 'c1cmp2\\nnova-compute' in line)
    assert 'fillcolor="%s"' % STATE_COLOURS['down'] in line and 'dashed' in line
    line = next(line for line in dot.splitlines() if 'c1cmp1\\nnova-compute' in line)
    assert 'fillcolor="%s"' % STATE_COLOURS['up'] in line and 'dashed' not in line
    line = next(line for line in dot.splitlines() if 'c2cmp1\\nnova-compute' in line)
    assert 'fillcolor="%s"' % STATE_COLOURS['unknown'] in line


def test_disabled_and_unreachable_cells_are_marked():
    found = clusters(topology_dot(cell_info(), service_status()))
    assert 'DISABLED' in found['cell cell2'][0] and 'style="rounded,dashed"' in found['cell cell2'][1]
    assert 'DISABLED' not in found['cell cell1'][0]
    assert 'DATABASE UNREACHABLE' in found['cell cell3'][0] and 'penwidth="3"' in found['cell cell3'][1]
    assert 'UNREACHABLE' not in found['cell cell1'][1]


def test_unreachable_from_service_status_summary_alone_is_marked():
    info = cell_info()
    del info['cells'][3]['reachable']
    assert 'DATABASE UNREACHABLE' in clusters(topology_dot(info, service_status()))['cell cell3'][0]


def test_databases_and_queues_are_drawn_without_password():
    dot = topology_dot(cell_info(), service_status())
    assert 'database\\nmysql+pymysql://nova@db:3306/nova_cell1' in dot
    assert 'message queue\\nrabbit://nova@mq1:5672,nova@mq2:5672/cell1' in dot
    assert "UNREACHABLE\\n(2003, \\\"Can't connect to MySQL server on 'db3'\\\")" in dot
    for secret in (SECRET, 'Pa55', 'w@rd', '****', 'password='):
        assert secret not in dot


def test_unmapped_and_serviceless_hosts_are_drawn():
    found = clusters(topology_dot(cell_info(), service_status()))
    assert 'c1new\\nNOT MAPPED' in found['cell cell1'][1]
    assert 'c1old\\nmapped, no service row' in found['cell cell1'][1]
    assert 'c1cmp1\\nmapped' not in found['cell cell1'][1]
    # A compute with a service row but no mapping yet: one node, marked.
    assert 'c1cmp3\\nnova-compute\\nUP\\nNOT MAPPED' in found['cell cell1'][1]
    assert found['cell cell1'][1].count('c1cmp3') == 1


def test_services_of_a_cell_without_mapping_get_their_own_cluster():
    status = service_status()
    status['services'].append(service('(database)', None, 'lonely', 'nova-compute'))
    found = clusters(topology_dot(cell_info(), status))
    assert 'lonely\\nnova-compute\\nUP' in found['cell (database)'][1]


def test_cells_only_and_list_input_work():
    dot = topology_dot(cell_info()['cells'])
    assert 'cell cell1' in dot and '0 service(s)' in dot and 'ServiceGroup' not in dot


def test_title_and_quotes_are_escaped():
    info = cell_info()
    info['cells'][1]['name'] = 'cell "1"\\x'
    dot = topology_dot(info, title='prod "A"\nsite')
    assert 'label="prod \\"A\\"\\nsite\\n' in dot
    assert 'cell cell \\"1\\"\\\\x' in dot


def test_cell0_is_drawn_first_and_mapped_cells_hang_off_the_api_database():
    dot = topology_dot(cell_info(), service_status())
    assert dot.index('API level: cell0') < dot.index('cell cell1')
    assert dot.count('style="dashed", color="#adb5bd", arrowhead="none"') == 3


@pytest.mark.parametrize(('cells', 'services', 'message'), [
    ('cell1', None, 'expected the result of nova.cells.cell_info'),
    ({'cells': ['cell1']}, None, 'expected the result of nova.cells.cell_info'),
    ({'cells': []}, ['x'], 'expected the result of nova.cells.service_status'),
    ({'cells': []}, {'services': ['x']}, 'every entry of "services" must be a dict'),
])
def test_wrong_input_is_refused_with_what_was_expected(cells, services, message):
    with pytest.raises(TopologyError, match=message):
        topology_dot(cells, services)


def test_reasons_name_the_heartbeat_time_not_its_age_so_the_picture_is_stable():
    assert stable_reason('last heartbeat 75 s ago (service_down_time 60)', '2026-12-03T08:50:01.5+00:00') == \
        'last heartbeat at 2026-12-03 08:50:01 UTC (service_down_time 60)'
    assert stable_reason('heartbeat 9 s old, and memcached m1 did not answer', '2026-12-03T08:50:01+00:00') == \
        'heartbeat at 2026-12-03 08:50:01 UTC, and memcached m1 did not answer'
    assert stable_reason('no heartbeat in memcached', None) == 'no heartbeat in memcached'
    status = service_status()
    status['services'][4].update(reason='last heartbeat 75 s ago (service_down_time 60)', last_seen='2026-12-03T08:50:01+00:00')
    first = topology_dot(cell_info(), status)
    status['services'][4].update(reason='last heartbeat 95 s ago (service_down_time 60)', age_seconds=95.0)
    assert topology_dot(cell_info(), status) == first
