# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The per-node-type matrix of nova.conf's service authentication sections (issue 12)."""

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._service_auth import (
    MATRIX,
    NODE_TYPES,
    ServiceAuthError,
    render,
    secrets_of,
)

URL = 'http://keystone:5000/v3'
PW = 'Nova+ks/pw!'


def sections(types, **kw):
    kw.setdefault('password', PW)
    result = render(types, URL, **kw)
    assert result['problems'] == []
    return result['sections']


@pytest.mark.parametrize('node_type', NODE_TYPES)
def test_each_node_type_gets_exactly_its_sections(node_type):
    expected = {section for section, owners in MATRIX.items() if node_type in owners}
    assert set(sections([node_type])) == expected


def test_a_compute_gets_no_keystone_authtoken_and_the_api_does():
    compute = sections(['compute'])
    assert 'keystone_authtoken' not in compute
    assert set(compute) == {'service_user', 'placement', 'glance', 'neutron'}
    api = sections(['api'])
    assert api['keystone_authtoken']['www_authenticate_uri'] == URL
    assert api['keystone_authtoken']['password'] == PW
    assert api['keystone_authtoken']['service_token_roles_required'] is True


def test_scheduler_only_talks_to_placement():
    assert set(sections(['scheduler'])) == {'placement'}


def test_service_user_sends_its_token_and_has_no_region_name():
    su = sections(['api'])['service_user']
    assert su['send_service_user_token'] is True
    assert 'region_name' not in su
    assert su['auth_type'] == 'password' and su['username'] == 'nova' and su['project_name'] == 'service'


def test_no_auth_strategy_anywhere():
    every = sections(list(NODE_TYPES))
    assert 'api' not in every
    assert all('auth_strategy' not in options for options in every.values())


def test_union_of_node_types():
    assert set(sections(['api', 'scheduler', 'super_conductor'])) == {
        'keystone_authtoken', 'service_user', 'placement', 'glance', 'neutron'}


def test_no_auth_url_no_sections():
    assert render(['api', 'compute'], '') == {'sections': {}, 'problems': []}


def test_own_credentials_for_one_section():
    got = sections(['compute'], credentials={'neutron': {'username': 'neutron', 'password': 'np'}})
    assert got['neutron']['username'] == 'neutron' and got['neutron']['password'] == 'np'
    assert got['placement']['username'] == 'nova'


def test_missing_password_is_a_problem_naming_the_variable():
    result = render(['compute'], URL)
    assert any('nova_keystone_service_password' in p for p in result['problems'])


def test_bad_url_is_a_problem():
    result = render(['api'], 'keystone:5000', password=PW)
    assert any('http(s) URL' in p for p in result['problems'])


def test_memcached_servers_joined():
    got = sections(['api'], memcached_servers=['a:11211', 'b:11211'])
    assert got['keystone_authtoken']['memcached_servers'] == 'a:11211,b:11211'


def test_switching_sections_off():
    got = sections(['api'], send_service_user_token=False, glance=False, neutron=False, placement=False)
    assert set(got) == {'keystone_authtoken'}


def test_metadata_proxy_secret_only_on_metadata():
    got = sections(['metadata', 'compute'], metadata_proxy_shared_secret='s3')
    assert got['neutron']['service_metadata_proxy'] is True
    assert 'metadata_proxy_shared_secret' not in sections(['compute'], metadata_proxy_shared_secret='s3')['neutron']
    assert secrets_of({'sections': got}) == sorted({PW, 's3'})


def test_vnc_only_where_the_cell_has_console_proxies():
    assert 'vnc' not in sections(['compute'])
    compute = sections(['compute'], novncproxy_base_url='http://c1proxy:6080/vnc_auto.html', vnc_server_address='c1cmp1')
    assert compute['vnc'] == {'enabled': True, 'novncproxy_base_url': 'http://c1proxy:6080/vnc_auto.html',
                              'server_listen': '0.0.0.0', 'server_proxyclient_address': 'c1cmp1'}
    proxy = sections(['console_proxy'], novncproxy_base_url='http://c1proxy:6080/vnc_auto.html')
    assert proxy == {'vnc': {'enabled': True, 'novncproxy_host': '0.0.0.0', 'novncproxy_port': 6080}}
    # without Keystone too
    assert render(['console_proxy'], '', novncproxy_base_url='http://p:6080/')['sections'] == proxy


@pytest.mark.parametrize('kwargs, message', [
    ({'bogus': 1}, 'unknown settings: bogus'),
    ({'credentials': {'cinder': {}}}, 'credentials for unknown sections: cinder'),
    ({'credentials': ['x']}, 'credentials must be a dict'),
])
def test_bad_arguments_raise(kwargs, message):
    with pytest.raises(ServiceAuthError, match=message):
        render(['api'], URL, **kwargs)


def test_unknown_node_type_raises():
    with pytest.raises(ServiceAuthError, match='unknown node types: cells_v1'):
        render(['cells_v1'], URL)
