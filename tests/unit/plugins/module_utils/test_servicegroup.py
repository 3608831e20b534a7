# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._servicegroup import (
    NOVA_LONGEST_CACHE_SECONDS,
    ServiceGroupError,
    check_timing,
    effective_service_down_time,
    render,
)

ZK_OPTIONS = [['zookeeper', 'address'], ['zookeeper', 'recv_timeout'], ['zookeeper', 'sg_prefix'], ['zookeeper', 'sg_retry_interval']]


# -- timing --------------------------------------------------------------------------------------

def test_effective_service_down_time_is_novas_rule():
    assert effective_service_down_time(10, 60) == 60
    assert effective_service_down_time(10, 10) == 25
    assert effective_service_down_time(3, 2) == 7  # int(7.5)


@pytest.mark.parametrize('report_interval, service_down_time, effective', [(10, 10, 25), (10, 5, 25), (2, 2, 5), (3, 1, 7)])
def test_timing_refusal_says_what_nova_would_do(report_interval, service_down_time, effective):
    with pytest.raises(ServiceGroupError) as info:
        render('db', '34', report_interval=report_interval, service_down_time=service_down_time)
    message = str(info.value)
    assert f'int(2.5 x report_interval) = {effective} seconds' in message
    assert f'service_down_time ({service_down_time}) must be greater than report_interval ({report_interval})' in message
    assert 'every node' in message


def test_timing_warns_when_a_single_late_heartbeat_is_fatal():
    assert check_timing(10, 15)[2] and 'less than twice' in check_timing(10, 15)[2][0]
    assert check_timing(10, 60)[2] == []
    assert check_timing('2', '6')[:2] == (2, 6)  # numeric strings from templates


@pytest.mark.parametrize('value', [0, -1, True, 'x', 1.5])
def test_timing_types(value):
    with pytest.raises(ServiceGroupError):
        render('db', '34', report_interval=value)


# -- per driver and release -----------------------------------------------------------------------

def test_db_modern():
    result = render('db', '34.0.0')
    assert result['options'] == {'DEFAULT': {'servicegroup_driver': 'db', 'report_interval': '10', 'service_down_time': '60'}}
    assert result['remove'] == [*ZK_OPTIONS, ['DEFAULT', 'memcached_servers']]
    assert result['warnings'] == []


def test_db_on_mitaka_keeps_memcached_servers():
    # Mitaka and older also use [DEFAULT] memcached_servers for other caches.
    assert ['DEFAULT', 'memcached_servers'] not in render('db', 'mitaka')['remove']


def test_mc_modern_defaults_to_pymemcache():
    options = render('mc', '34', memcache_servers=['10.0.0.1:11211', '10.0.0.2:11211'], report_interval=2, service_down_time=6)['options']
    assert options == {
        'DEFAULT': {'servicegroup_driver': 'mc', 'report_interval': '2', 'service_down_time': '6'},
        'cache': {'enabled': 'true', 'backend': 'dogpile.cache.pymemcache', 'memcache_servers': '10.0.0.1:11211,10.0.0.2:11211'},
    }
    assert ['DEFAULT', 'memcached_servers'] in render('mc', '34', memcache_servers=['a:1'])['remove']


def test_mc_before_wallaby_defaults_to_python_memcached():
    assert render('mc', 'victoria', memcache_servers=['a:1'])['options']['cache']['backend'] == 'dogpile.cache.memcached'
    # ... unless the installed oslo.cache has the backport
    assert render('mc', 'victoria', memcache_servers=['a:1'], oslo_cache_version='2.6.2')['options']['cache']['backend'] == 'dogpile.cache.pymemcache'
    with pytest.raises(ServiceGroupError, match=r'oslo\.cache 2\.7\.0'):
        render('mc', 'train', memcache_servers=['a:1'], cache_backend='dogpile.cache.pymemcache')


@pytest.mark.parametrize('release', ['newton', '14.0.0', 'ocata', '20'])
def test_mc_newton_and_later_use_the_cache_block(release):
    options = render('mc', release, memcache_servers=['a:11211'])['options']
    assert 'memcached_servers' not in options['DEFAULT']
    assert options['cache']['enabled'] == 'true'


@pytest.mark.parametrize('release', ['mitaka', '13.1.4', 'liberty', 'kilo'])
def test_mc_mitaka_and_older_use_legacy_memcached_servers(release):
    result = render('mc', release, memcache_servers=['10.0.0.1:11211', 'inet6:[fd00::1]:11211'])
    assert result['options'] == {'DEFAULT': {'servicegroup_driver': 'mc', 'report_interval': '10', 'service_down_time': '60',
                                             'memcached_servers': '10.0.0.1:11211,inet6:[fd00::1]:11211'}}
    assert 'cache' not in result['options']
    assert ['DEFAULT', 'memcached_servers'] not in result['remove']


def test_mc_mitaka_warns_about_ignored_settings():
    result = render('mc', 'mitaka', memcache_servers=['a:1'], cache_backend='dogpile.cache.pymemcache', backend_expiration_time=604800)
    assert any('always uses python-memcached' in warning for warning in result['warnings'])
    assert any('backend_expiration_time is not rendered' in warning for warning in result['warnings'])
    with pytest.raises(ServiceGroupError, match='cannot parse'):
        render('mc', 'mitaka', memcache_servers=['[fd00::1]:11211'])  # python-memcached syntax there


def test_mc_refuses_null_and_unknown_backends():
    with pytest.raises(ServiceGroupError, match='stores nothing'):
        render('mc', '34', memcache_servers=['a:1'], cache_backend='dogpile.cache.null')
    with pytest.raises(ServiceGroupError, match='not supported for the mc ServiceGroup driver'):
        render('mc', '34', memcache_servers=['a:1'], cache_backend='dogpile.cache.redis')


def test_mc_requires_servers():
    for servers in (None, [], ['', ' ']):
        with pytest.raises(ServiceGroupError, match='memcache_servers is empty'):
            render('mc', '34', memcache_servers=servers)


def test_backend_expiration_time():
    servers = ['a:11211']
    # None: not managed at all
    result = render('mc', '34', memcache_servers=servers)
    assert 'backend_expiration_time' not in result['options']['cache']
    assert ['cache', 'backend_expiration_time'] not in result['remove']
    # 0: removed
    assert ['cache', 'backend_expiration_time'] in render('mc', '34', memcache_servers=servers, backend_expiration_time=0)['remove']
    # a safe value on a release that knows it
    assert render('mc', '2025.1', memcache_servers=servers, backend_expiration_time=NOVA_LONGEST_CACHE_SECONDS)['options']['cache'][
        'backend_expiration_time'] == str(NOVA_LONGEST_CACHE_SECONDS)
    # a release without it: warned, not rendered, removed
    result = render('mc', '2024.2', memcache_servers=servers, backend_expiration_time=NOVA_LONGEST_CACHE_SECONDS)
    assert 'backend_expiration_time' not in result['options']['cache']
    assert ['cache', 'backend_expiration_time'] in result['remove']
    assert 'oslo.cache 3.9.0' in result['warnings'][0]
    # the installed oslo.cache wins over the release
    result = render('mc', '34', memcache_servers=servers, backend_expiration_time=NOVA_LONGEST_CACHE_SECONDS, oslo_cache_version='3.8.2')
    assert 'backend_expiration_time' not in result['options']['cache']


@pytest.mark.parametrize('value', [1, 59, 120, 3600, NOVA_LONGEST_CACHE_SECONDS - 1])
def test_backend_expiration_time_too_small_breaks_novas_other_caches(value):
    with pytest.raises(ServiceGroupError) as info:
        render('mc', '34', memcache_servers=['a:1'], backend_expiration_time=value)
    assert 'ConfigurationError' in str(info.value)
    assert f'at least {NOVA_LONGEST_CACHE_SECONDS}' in str(info.value)


def test_zk_on_liberty():
    result = render('zk', 'liberty', zookeeper_address=['zk1:2181', 'zk2:2181'], zookeeper_sg_prefix='/nova/sg')
    assert result['options']['DEFAULT']['servicegroup_driver'] == 'zk'
    assert result['options']['zookeeper'] == {'address': 'zk1:2181,zk2:2181', 'recv_timeout': '4000', 'sg_prefix': '/nova/sg',
                                              'sg_retry_interval': '5'}
    assert result['remove'] == []
    assert 'LP#1414517' in result['warnings'][0]   # the Kilo/Liberty membership bug
    assert render('zk', 'juno', zookeeper_address='zk1:2181')['warnings'] == []


@pytest.mark.parametrize('release', ['mitaka', '13.0.0', '34.0.0', '2025.1', None])
def test_zk_refused_from_mitaka_on(release):
    with pytest.raises(ServiceGroupError) as info:
        render('zk', release, zookeeper_address=['zk1:2181'])
    message = str(info.value)
    assert 'removed in Mitaka 13.0.0' in message
    assert '337a1b029a' in message
    assert 'Use driver db' in message and 'mc' in message


def test_zk_refusal_comes_before_address_checks():
    with pytest.raises(ServiceGroupError, match='removed in Mitaka'):
        render('zk', '34')


@pytest.mark.parametrize('prefix', ['servicegroups', '/', '/a/', '/a//b', '/zookeeper', '/a/../b'])
def test_zk_prefix_validation(prefix):
    with pytest.raises(ServiceGroupError):
        render('zk', 'liberty', zookeeper_address=['zk1:2181'], zookeeper_sg_prefix=prefix)


def test_settings_of_other_drivers_are_reported():
    result = render('db', '34', memcache_servers=['a:1'], zookeeper_address=['b:2'])
    assert result['warnings'] == ['memcache_servers is ignored with driver db', 'zookeeper_address is ignored with driver db']


def test_unknown_driver_and_setting():
    with pytest.raises(ServiceGroupError, match='unknown ServiceGroup driver'):
        render('redis', '34')
    with pytest.raises(ServiceGroupError, match='unknown ServiceGroup setting'):
        render('db', '34', memcached='x')
    with pytest.raises(ServiceGroupError, match='cannot parse'):
        render('db', 'not-a-release')
