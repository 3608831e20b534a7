# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import hashlib

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.lab_infra_state import FilterModule

FILTERS = FilterModule().filters()
READ = [
    'unit mariadb active enabled',
    'unit rabbitmq-server inactive disabled',
    'unit placement-api unknown unknown',
    'file /etc/mysql/mariadb.conf.d/99-nova-lab.cnf 0123456789abcdef0123456789abcdef01234567 root root 644',
    'file /etc/openstack dir root root 755',
    'listen 0.0.0.0',
    "mysql main db nova_api",
    "mysql main user nova",
    "mysql main grant 'nova'@'%' nova_api",
    'mysql main up',
    'mysql cell2 up',
    'seed_rows 89abcdef0123456789abcdef0123456789abcdef',
    '',
    'some noise',
]
RABBIT = ['rabbit user nova', 'rabbit user guest', 'rabbit vhost nova_api', 'rabbit vhost cell1',
          'rabbit perm nova_api nova', 'rabbit perm / guest', 'rabbit ok', 'rabbit up']


def test_state_parses_each_kind_of_line():
    state = FILTERS['lab_infra_state'](READ + RABBIT)
    assert state['units'] == {'mariadb': {'active': True, 'enabled': True},
                              'rabbitmq-server': {'active': False, 'enabled': False},
                              'placement-api': {'active': False, 'enabled': False}}
    assert state['files']['/etc/mysql/mariadb.conf.d/99-nova-lab.cnf'] == {
        'sha1': '0123456789abcdef0123456789abcdef01234567', 'owner': 'root', 'group': 'root', 'mode': '644'}
    assert state['files']['/etc/openstack']['sha1'] == 'dir'
    assert state['memcached_listen'] == ['0.0.0.0']
    assert state['mysql'] == {'main': {'databases': ['nova_api'], 'users': ['nova'], 'grants': ["'nova'@'%' nova_api"]},
                              'cell2': {'databases': [], 'users': [], 'grants': []}}
    assert state['rabbit'] == {'users': ['nova', 'guest'], 'vhosts': ['nova_api', 'cell1'],
                               'permissions': ['nova_api nova', '/ guest']}
    assert state['seed_rows'] == '89abcdef0123456789abcdef0123456789abcdef'


def test_rabbit_without_up_line_did_not_answer():
    assert FILTERS['lab_infra_state'](READ + RABBIT[:-1])['rabbit'] is None
    assert FILTERS['lab_infra_state']('unit a active enabled\n')['units'] == {'a': {'active': True, 'enabled': True}}
    # Not read (no Keystone in the lab, or the line is missing): never equal to a recorded checksum.
    assert FILTERS['lab_infra_state']('unit a active enabled\n')['seed_rows'] == ''


def test_state_refuses_other_input():
    with pytest.raises(AnsibleFilterError, match=r'^nova\.cells\.lab_infra_state: expects the lines'):
        FILTERS['lab_infra_state']({'stdout': ''})


def test_mysql_missing():
    f = FILTERS['lab_infra_state']
    servers = [{'name': 'main', 'databases': ['nova_api']}, {'name': 'cell2', 'databases': ['nova_cell2']},
               {'name': 'cell9', 'databases': []}]
    assert f(READ, servers, ['nova'])['mysql_missing'] == {
        'main': [], 'cell2': ['database nova_cell2', 'account nova', 'grant nova nova_cell2'],
        'cell9': ['MariaDB cell9 did not answer']}
    assert f(READ, [{'name': 'main', 'databases': ['nova_api', 'nova_cell1']}], ['nova', 'other'])['mysql_missing'] == {
        'main': ['database nova_cell1', 'account other', 'grant nova nova_cell1', 'grant other nova_api', 'grant other nova_cell1']}
    assert f(READ)['mysql_missing'] == {}
    with pytest.raises(AnsibleFilterError, match=r'^nova\.cells\.lab_infra_state: mysql_servers must be'):
        f(READ, [{'databases': []}])


def test_rabbit_missing():
    f = FILTERS['lab_infra_state']
    assert f(READ + RABBIT, [], [], ['nova'], ['nova_api'])['rabbit_missing'] == []
    assert f(READ + RABBIT, [], [], ['nova', 'x'], ['nova_api', 'cell1', 'cell2'])['rabbit_missing'] == [
        'user x', 'vhost cell2', 'permission nova cell1', 'permission nova cell2', 'permission x nova_api',
        'permission x cell1', 'permission x cell2']
    assert f(READ, [], [], ['nova'], [])['rabbit_missing'] == ['RabbitMQ did not answer']


def test_in_place_compares_files_units_present_memcached_and_the_seeding_stamp():
    f = FILTERS['lab_infra_state']
    digest = 'd' * 64
    rows = '89abcdef0123456789abcdef0123456789abcdef'
    stamp = hashlib.sha1(f'{digest} {rows}\n'.encode()).hexdigest()
    read = ['unit mariadb active enabled', 'unit memcached active enabled',
            'file /etc/a.cnf 0123456789abcdef0123456789abcdef01234567 root root 644', 'file /etc/d dir root nova 750',
            'file /var/lib/marker da39a3ee5e6b4b0d3255bfef95601890afd80709 root root 644',
            f'file /var/lib/keystone/seeded {stamp} root root 600', f'seed_rows {rows}', 'listen 0.0.0.0',
            'mysql main up', 'rabbit up']
    wanted = {'/etc/a.cnf': {'sha1': '0123456789abcdef0123456789abcdef01234567', 'owner': 'root', 'group': 'root', 'mode': '0644'},
              '/etc/d': {'sha1': 'dir', 'owner': 'root', 'group': 'nova', 'mode': '0750'}}
    args = dict(files=wanted, units=['mariadb', 'memcached'], present=['/var/lib/marker'], memcached_listen=['0.0.0.0'],
                seed={'path': '/var/lib/keystone/seeded', 'digest': digest})
    state = f(read, [{'name': 'main', 'databases': []}], [], [], [], **args)
    assert state['in_place'] and state['files_differ'] == [] and state['units_down'] == [] and state['seed_ok']

    # Each difference alone is enough to converge.
    def variant(**changes):
        return f(read, **{**args, **changes})

    assert variant(files=dict(wanted, **{'/etc/a.cnf': dict(wanted['/etc/a.cnf'], mode='0600')}))['files_differ'] == ['/etc/a.cnf']
    assert variant(units=['mariadb', 'rabbitmq-server'])['units_down'] == ['rabbitmq-server']
    assert variant(present=['/var/lib/marker', '/var/lib/mysql-cell2/mysql'])['in_place'] is False
    assert variant(memcached_listen=['127.0.0.1'])['in_place'] is False
    assert variant(seed={'path': '/var/lib/keystone/seeded', 'digest': 'e' * 64})['seed_ok'] is False
    assert f([line for line in read if not line.startswith('seed_rows')], **args)['seed_ok'] is False
    assert f(read + ['mysql main db x'], [{'name': 'main', 'databases': ['nova_api']}], **args)['in_place'] is False
    assert f(read[:-1], [], [], ['nova'], ['nova_api'], **args)['in_place'] is False   # RabbitMQ did not answer
    # Without the lab's expectations, nothing differs (the other keys as before).
    assert f(read)['in_place'] is True


def test_in_place_refuses_malformed_expectations():
    with pytest.raises(AnsibleFilterError, match='files must be'):
        FILTERS['lab_infra_state'](READ, files={'/etc/openstack': {'sha1': 'dir'}})
