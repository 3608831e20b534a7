# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The roles' deployment model (module_utils/_deployment.py): URLs, node types, the nova.conf matrix, refusals."""

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils import _deployment as d
from ansible_collections.nova.cells.tests.unit.plugins.deployment_settings import GROUPS, UNITS, settings

ISOLATED = {'cell1': {'rabbit_vhost': 'cell1'}, 'cell2': {'database_host': 'db2', 'rabbit_hosts': ['mq2a', 'mq2b']}}


def test_single_cell_shares_the_api_queue_and_encodes_passwords():
    model = d.urls(settings('nova_api', 'nova_scheduler', 'nova_super_conductor'))
    assert model['api_transport'] == 'rabbit://nova:Mq%2Bpw%3A1@mq:5672/'
    assert model['api_database'] == 'mysql+pymysql://nova:Db%2Bpw%2F1@db:3306/nova_api'
    assert model['cells']['cell1']['shares_api_mq'] and not model['isolated'] and model['shared_cell'] == 'cell1'
    host = model['host']
    assert host['types'] == ['api', 'scheduler', 'super_conductor'] and host['database'].endswith('/nova_cell1')
    assert model['problems'] == []


def test_isolated_cells_and_a_compute_of_cell2():
    model = d.urls(settings('nova_compute', nova_cells=ISOLATED, nova_api_mq_shared_cell='', nova_cell_name='cell2'))
    assert model['cells']['cell2']['transport'] == 'rabbit://nova:Mq%2Bpw%3A1@mq2a:5672,nova:Mq%2Bpw%3A1@mq2b:5672/cell2'
    assert model['isolated'] and model['host']['api_database'] is None and model['host']['database'] is None
    assert model['host']['transport_url'] == model['cells']['cell2']['transport']
    assert model['infrastructure']['vhosts'] == ['/', 'cell1', 'cell2']


def test_template_mode_uses_numbered_placeholders_for_several_queue_hosts():
    model = d.urls(settings('nova_api', nova_cell_url_templates=True, nova_rabbit_hosts=['mq1', 'mq2'],
                            nova_cells={'cell1': {}, 'cell2': {}}, nova_api_mq_shared_cell=''))
    assert model['cells']['cell2']['mapping_transport'] == 'rabbit://{username1}:{password1}@mq1:5672,{username1}:{password1}@mq2:5672/cell2'
    assert model['cells']['cell2']['mapping_database'] == 'mysql+pymysql://{username}:{password}@db:3306/nova_cell2'
    assert model['cell0_mapping'] == 'mysql+pymysql://{username}:{password}@db:3306/nova_cell0'


def test_ipv6_hosts_are_bracketed():
    model = d.urls(settings('nova_api', nova_database_host='fd00::1', nova_rabbit_hosts='fd00::2'))
    assert '@[fd00::1]:3306/' in model['api_database'] and '@[fd00::2]:5672/' in model['api_transport']


@pytest.mark.parametrize(('changes', 'groups', 'message'), [
    ({'nova_rabbit_password': 'a/b'}, ('nova_api',), 'contains "/", which oslo.messaging cannot pass'),
    ({'nova_cells': {'cell0': {}}}, ('nova_api',), 'cell0 is not a regular cell'),
    ({'nova_cells': {'cell1': {}, 'cell2': {'rabbit_vhost': '/'}}, 'nova_api_mq_shared_cell': 'cell1'}, ('nova_api',),
     'two cells cannot share a transport URL'),
    ({'nova_cell_name': 'nope'}, ('nova_compute',), 'which nova_cells does not define'),
    ({'nova_node_types': ['api', 'banana']}, (), 'unknown node type(s) banana'),
    ({'nova_database_password': ''}, ('nova_api',), 'has an empty password: set nova_database_password'),
    ({'nova_cells': ISOLATED, 'nova_api_mq_shared_cell': '', 'nova_cell_name': 'cell2'}, ('nova_api', 'nova_compute'),
     'one nova.conf has one transport_url'),
    ({}, ('nova_metadata', 'nova_cell_metadata'), 'choose one'),
    ({'nova_cell_url_templates': True, 'nova_cells': {'cell1': {'database_password': 'x'}}}, ('nova_api',),
     'cannot be used with nova_cell_url_templates'),
])
def test_url_problems(changes, groups, message):
    problems = d.urls(settings(*groups, **changes))['problems']
    assert any(message in problem for problem in problems), problems


@pytest.mark.parametrize(('changes', 'groups', 'message'), [
    ({'nova_upgrade_levels_compute': 'auto'}, ('nova_api',), 'LP#1815697'),
    ({'nova_conf_mode': '0644'}, ('nova_api',), 'lets other users read'),
    ({'nova_conf_mode': 0o644}, ('nova_api',), 'lets other users read'),
    ({}, (), 'is in none of the groups'),
    ({'nova_conf_overrides': {'DEFAULT': {'debug': 'a\nb'}}}, ('nova_api',), 'line break'),
    ({'nova_servicegroup_driver': 'zk'}, ('nova_api',), 'zk'),
    ({'nova_release': 'banana'}, ('nova_api',), "cannot parse nova_release 'banana'"),
])
def test_nova_conf_refusals(changes, groups, message):
    problems = d.nova_conf(settings(*groups, **changes))['problems']
    assert any(message in problem for problem in problems), problems


def test_mode_0640_as_a_yaml_integer_is_accepted():
    assert d.nova_conf(settings('nova_api', nova_conf_mode=0o640))['problems'] == []


def test_compute_gets_no_database_and_upcall_workarounds_in_isolated_cells():
    conf = d.nova_conf(settings('nova_compute', nova_cells=ISOLATED, nova_api_mq_shared_cell='', nova_placement_options={'auth_type': 'x'}))
    sections = conf['file_sections']
    assert 'database' not in sections and 'api_database' not in sections
    assert sections['workarounds'] == {'disable_group_policy_check_upcall': True}
    assert sections['filter_scheduler'] == {'track_instance_changes': False}
    assert sections['placement'] == {'auth_type': 'x'}
    assert conf['units'] == ['nova-compute'] and conf['db_files'] == [] and not conf['db_in_environment']


def test_all_in_one_moves_the_database_to_the_environment():
    conf = d.nova_conf(settings('nova_api', 'nova_scheduler', 'nova_compute', 'nova_cell_conductor'))
    assert conf['db_in_environment'] and set(conf['db_env_sections']) == {'api_database', 'database'}
    assert 'database' not in conf['file_sections']
    assert conf['db_units'] == ['nova-api', 'nova-scheduler', 'nova-conductor']
    assert conf['db_files'][0] == '/etc/nova/nova-db.env'
    assert conf['db_env_lines'][0] == 'OS_API_DATABASE__CONNECTION="mysql+pymysql://nova:Db%2Bpw%2F1@db:3306/nova_api"'


def test_overrides_merge_and_the_servicegroup_removals_win():
    conf = d.nova_conf(settings('nova_compute', nova_conf_node_type_overrides={'compute': {'libvirt': {'virt_type': 'qemu'}}},
                                nova_conf_overrides={'Default': {'debug': True}, 'zookeeper': {'address': 'zk:2181'},
                                                     'placement': {'token': None}}))
    sections = conf['file_sections']
    assert sections['libvirt'] == {'virt_type': 'qemu'} and sections['DEFAULT']['debug'] is True
    assert sections['zookeeper']['address'] is None
    ini = dict(conf['file_ini'])
    assert ini['DEFAULT'][0] == ['compute_driver', 'libvirt.LibvirtDriver'] and 'zookeeper' not in ini
    assert ['debug', 'true'] in ini['DEFAULT']


def test_extra_sections_are_merged_in_one_place():
    conf = d.nova_conf(settings('nova_api'), extra_sections={'service_user': {'send_service_user_token': True}})
    assert conf['file_sections']['service_user'] == {'send_service_user_token': True}


def test_overrides_win_over_extra_sections():
    conf = d.nova_conf(settings('nova_api', nova_conf_overrides={'service_user': {'send_service_user_token': False}}),
                       extra_sections={'service_user': {'send_service_user_token': True, 'username': 'nova'}})
    assert conf['file_sections']['service_user'] == {'send_service_user_token': False, 'username': 'nova'}


def test_scheduler_max_attempts_on_pike_with_isolated_cells():
    sections = d.nova_conf(settings('nova_scheduler', nova_release='pike', nova_upgrade_levels_compute='pike', nova_cells=ISOLATED,
                                    nova_api_mq_shared_cell=''))['file_sections']
    assert sections['scheduler']['max_attempts'] == 1


def test_start_units_follow_the_start_types_order():
    assert d.start_units(UNITS, ['api', 'scheduler', 'super_conductor'], ['super_conductor', 'api']) == ['nova-conductor', 'nova-api']
    assert d.start_units(UNITS, ['compute'], None) == ['nova-compute']
    assert d.start_units(UNITS, ['compute'], ['scheduler']) == []


def test_conf_text_is_the_header_and_the_sections_in_file_order():
    conf = d.nova_conf(settings('nova_compute', nova_conf_overrides={'zookeeper': {'address': None}, 'libvirt': {'virt_type': 'qemu'}}))
    lines = conf['text'].splitlines()
    assert lines[0].startswith('# Managed by Ansible (nova.cells.nova_conf) for ') and lines[0].endswith(f": {conf['description']}.")
    assert lines[1] == '# Local changes are overwritten; use nova_conf_overrides.'
    assert lines[2:4] == ['', '[DEFAULT]'] and conf['text'].endswith('\n') and not conf['text'].endswith('\n\n')
    assert '\n[libvirt]\nvirt_type = qemu\n' in conf['text']
    # Every option of file_ini, once, as "name = value" under its section.
    for section, options in conf['file_ini']:
        body = conf['text'].split(f'\n[{section}]\n', 1)[1].split('\n\n[', 1)[0]
        assert body.splitlines() == [f'{name} = {value}' for name, value in options]


@pytest.mark.parametrize(('selection', 'pattern'), [
    ('all', ':'.join(GROUPS.values())),
    ('api_level', 'nova_super_conductor:nova_api:nova_scheduler'),
    ('cell_level', 'nova_cell_conductor:nova_compute:nova_console_proxy:nova_cell_metadata'),
    ('lab_infra', 'nova_lab_infra'),
    (['scheduler', 'api'], 'nova_scheduler:nova_api'),
])
def test_host_pattern(selection, pattern):
    assert d.host_pattern(GROUPS, selection) == pattern


def test_host_pattern_computes_first_keeps_every_group():
    pattern = d.host_pattern(GROUPS, 'computes_first').split(':')
    assert pattern[0] == 'nova_compute' and sorted(pattern) == sorted(GROUPS.values())


def test_host_pattern_refuses_unknown_sets_and_types():
    with pytest.raises(ValueError, match="unknown host set 'cells'"):
        d.host_pattern(GROUPS, 'cells')
    with pytest.raises(ValueError, match='no inventory group for the node types compute'):
        d.host_pattern({'api': 'nova_api'}, ['api', 'compute'])


def test_cells_plan_files_expected_computes_and_refusals():
    model = d.urls(settings('nova_api', nova_cells=ISOLATED, nova_api_mq_shared_cell=''))
    plan = d.cells_plan(model, [], '/etc/nova/manage', 'ctl')
    paths = [f['path'] for f in plan['files']]
    assert paths == ['/etc/nova/manage/api.conf', '/etc/nova/manage/cell-cell1.conf', '/etc/nova/manage/cell-cell2.conf']
    assert plan['problems'] == []
    assert [m['name'] for m in plan['mappings']] == ['cell1', 'cell2']
    assert plan['mappings'][0] == {'name': 'cell1', 'database_connection': model['cells']['cell1']['mapping_database'],
                                   'transport_url': model['cells']['cell1']['mapping_transport'], 'disabled': None}
    assert [m['name'] for m in d.cells_plan(model, ['cell2', 'nosuch'], '/m', 'ctl')['mappings']] == ['cell2']
    assert 'Unknown cell(s) nosuch' in d.cells_plan(model, ['nosuch'], '/m', 'ctl')['problems'][0]
    cell1 = plan['files'][1]
    assert cell1['content'] == (
        '# Managed by Ansible (nova.cells.cells): nova-manage config for cell cell1.\n'
        '# Use: nova-manage --config-file /etc/nova/manage/cell-cell1.conf ...\n\n'
        f"[DEFAULT]\ntransport_url = {model['cells']['cell1']['transport']}\n\n"
        f"[api_database]\nconnection = {model['api_database']}\n\n"
        f"[database]\nconnection = {model['cells']['cell1']['database']}\n")
    assert f"[database]\nconnection = {model['cell0_database']}\n" in plan['files'][0]['content']
    hostvars = {'c1': {'nova_cell_name': 'cell2', 'nova_host': 'c1.example'}, 'c2': {}}
    assert d.expected_computes(['c1', 'c2', 'c3'], hostvars, ['cell1', 'cell2']) == {'cell1': ['c2', 'c3'], 'cell2': ['c1.example']}


def test_db_syncs_api_cell0_then_each_cell_with_its_own_config():
    conf = {'api': '/m/api.conf', 'cell1': '/m/cell-cell1.conf', 'cell2': '/m/cell-cell2.conf'}
    assert d.db_syncs(conf, ['cell1', 'cell2'], True) == [
        {'database': 'api'},
        {'database': 'cell', 'local_cell': True, 'config_files': ['/m/api.conf']},
        {'database': 'cell', 'local_cell': True, 'config_files': ['/m/cell-cell1.conf']},
        {'database': 'cell', 'local_cell': True, 'config_files': ['/m/cell-cell2.conf']}]
    # add_cell: no API sync, cell0 and the new cell only
    assert d.db_syncs(conf, ['cell2'], False) == [
        {'database': 'cell', 'local_cell': True, 'config_files': ['/m/api.conf']},
        {'database': 'cell', 'local_cell': True, 'config_files': ['/m/cell-cell2.conf']}]


def test_refresh_jobs():
    groups = {'nova_scheduler': ['s1'], 'nova_api': ['a1'], 'nova_metadata': ['m1'], 'nova_super_conductor': ['sc1']}
    # A SIGHUP does not refresh Nova 34's scheduler cell cache: scheduler_sighup restarts the scheduler and the API.
    assert d.refresh_jobs(['scheduler_sighup'], groups, GROUPS, UNITS) == [
        {'host': 's1', 'unit': 'nova-scheduler', 'action': 'restart'}, {'host': 'a1', 'unit': 'nova-api', 'action': 'restart'}]
    jobs = d.refresh_jobs(['scheduler', 'scheduler_sighup', 'conductor', 'api'], groups, GROUPS, UNITS)
    assert [(j['host'], j['action']) for j in jobs] == [('s1', 'restart'), ('a1', 'restart'), ('m1', 'restart'), ('sc1', 'restart')]


# -- which database server holds which database (infrastructure.database_servers, lab_databases) ----------------

def test_database_servers_follow_each_cells_host_and_port():
    cells = {'cell1': {}, 'cell2': {'database_port': 3307}, 'cell3': {'database_host': 'db3', 'database_name': 'c3'}}
    model = d.urls(settings('nova_api', nova_cells=cells, nova_api_mq_shared_cell=''))
    assert model['infrastructure']['database_servers'] == [
        {'host': 'db', 'port': 3306, 'databases': ['nova_api', 'nova_cell0', 'nova_cell1']},
        {'host': 'db', 'port': 3307, 'databases': ['nova_cell2']},
        {'host': 'db3', 'port': 3306, 'databases': ['c3']},
    ]
    assert model['cells']['cell2']['database'] == 'mysql+pymysql://nova:Db%2Bpw%2F1@db:3307/nova_cell2'
    # The flat list stays as it was (every database once).
    assert model['infrastructure']['databases'] == ['nova_api', 'nova_cell0', 'nova_cell1', 'nova_cell2', 'c3']


def test_template_mode_keeps_a_cells_own_database_port_in_the_mapping():
    model = d.urls(settings('nova_api', nova_cell_url_templates=True, nova_api_mq_shared_cell='',
                            nova_cells={'cell1': {}, 'cell2': {'database_port': 3307}}))
    assert model['cells']['cell2']['mapping_database'] == 'mysql+pymysql://{username}:{password}@db:3307/nova_cell2'
    assert model['problems'] == []


def test_lab_databases_put_a_cell_on_its_own_instance():
    model = d.urls(settings('nova_api', nova_cells={'cell1': {}, 'cell2': {'database_port': 3307}}))
    plan = d.lab_databases(model, [{'name': 'cell2', 'port': '3307'}], 3306, ['nova_placement', 'keystone'])
    assert plan == {'main': ['nova_api', 'nova_cell0', 'nova_cell1', 'nova_placement', 'keystone'],
                    'instances': [{'name': 'cell2', 'port': 3307, 'databases': ['nova_cell2'], 'datadir': '/var/lib/mysql-cell2',
                                   'config': '/etc/mysql/nova-lab-cell2.cnf', 'unit': 'mariadb-lab-cell2',
                                   'socket': '/run/mysqld-cell2/mysqld.sock'}], 'problems': []}


def test_lab_databases_without_instances_is_the_one_server():
    model = d.urls(settings('nova_api', nova_cells={'cell1': {}, 'cell2': {}}))
    plan = d.lab_databases(model, [], 3306, ['nova_placement'])
    assert plan == {'main': ['nova_api', 'nova_cell0', 'nova_cell1', 'nova_cell2', 'nova_placement'], 'instances': [],
                    'problems': []}


@pytest.mark.parametrize('instances, needle', [
    ([], 'nova_cell2 are on port 3307, which no MariaDB of the lab serves'),
    ([{'name': 'cell2', 'port': 3306}], 'port 3306 of cell2 is already taken by the main MariaDB'),
    ([{'name': 'cell2', 'port': 3307}, {'name': 'other', 'port': 3307}], 'port 3307 of other is already taken by cell2'),
    ([{'name': 'cell2', 'port': 3307}, {'name': 'cell2', 'port': 3308}], 'the name cell2 is given twice'),
    ([{'name': 'Cell 2', 'port': 3307}], "the name 'Cell 2' must be"),
    ([{'name': 'cell2'}], "'cell2' needs a port"),
    ([{'name': 'cell2', 'port': 70000}], 'port 70000 of cell2 is not a TCP port'),
])
def test_lab_databases_refuses_what_the_lab_cannot_serve(instances, needle):
    model = d.urls(settings('nova_api', nova_cells={'cell1': {}, 'cell2': {'database_port': 3307}}))
    problems = d.lab_databases(model, instances)['problems']
    assert any(needle in problem for problem in problems), problems
