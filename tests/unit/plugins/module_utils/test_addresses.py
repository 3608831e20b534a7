# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Server addresses in the forms the memcached and ZooKeeper clients read (_addresses)."""

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._addresses import AddressError, parse_server, validate_servers


@pytest.mark.parametrize('server, style, expected', [
    ('10.0.0.1:11211', 'pymemcache', ('10.0.0.1', 11211)),
    ('mc-1.example.org:11211', 'pymemcache', ('mc-1.example.org', 11211)),
    ('[fd00::1]:11211', 'pymemcache', ('fd00::1', 11211)),
    ('[controller-0.internalapi]:11211', 'pymemcache', ('controller-0.internalapi', 11211)),
    ('inet6:[fd00::1]:11211', 'python-memcached', ('fd00::1', 11211)),
    ('inet6:[controller-0.internalapi]:11211', 'python-memcached', ('controller-0.internalapi', 11211)),
    ('inet:10.0.0.1:11211', 'python-memcached', ('10.0.0.1', 11211)),
    (' 10.0.0.1:1 ', 'python-memcached', ('10.0.0.1', 1)),
    ('inet6:[::1]:11211', 'any', ('::1', 11211)),
    ('[::1]:11211', 'any', ('::1', 11211)),
])
def test_parse_server_valid(server, style, expected):
    assert parse_server(server, style=style) == expected


@pytest.mark.parametrize('server, style, message', [
    ('inet6:[fd00::1]:11211', 'pymemcache', 'only python-memcached understands'),
    ('inet:10.0.0.1:11211', 'pymemcache', 'only python-memcached understands'),
    ('[fd00::1]:11211', 'python-memcached', 'inet6:'),
    ('fd00::1:11211', 'pymemcache', 'without brackets'),
    ('10.0.0.1', 'pymemcache', 'has no port'),
    ('10.0.0.1:0', 'pymemcache', 'invalid port'),
    ('10.0.0.1:65536', 'pymemcache', 'invalid port'),
    ('10.0.0.1:abc', 'pymemcache', 'invalid port'),
    ('unix:/run/memcached.sock', 'any', 'unix socket'),
    ('/run/memcached.sock', 'any', 'unix socket'),
    ('bad host:1', 'pymemcache', 'not a valid host'),
    ('[fd00::1:11211', 'pymemcache', 'unclosed'),
    ('[fd00::1]11211', 'pymemcache', 'expected :PORT'),
    ('inet6:fd00::1:11211', 'python-memcached', 'brackets'),
    ('inet:[fd00::1]:11211', 'python-memcached', 'without brackets'),
    ('[not an address]:1', 'pymemcache', 'neither an IPv6'),
    ('', 'pymemcache', 'empty'),
    ('999.1.1.1:11211', 'pymemcache', 'not a valid host'),
])
def test_parse_server_invalid(server, style, message):
    with pytest.raises(AddressError, match=message):
        parse_server(server, style=style)


def test_server_list_rules():
    assert validate_servers('a:1, b:2', 'pymemcache') == ['a:1', 'b:2']
    with pytest.raises(AddressError, match='twice'):
        validate_servers(['a:1', 'a:1'], 'pymemcache')
    with pytest.raises(AddressError, match='list of host:port'):
        validate_servers(42, 'pymemcache')
    assert parse_server('zk1', style='any', what='ZooKeeper server', default_port=2181) == ('zk1', 2181)
    with pytest.raises(AddressError, match='zk1:2181'):
        parse_server('zk1', what='ZooKeeper server')
