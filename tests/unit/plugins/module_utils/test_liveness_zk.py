# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

from collections import namedtuple

import pytest

from ansible_collections.nova.cells.plugins.module_utils import _liveness_zk
from ansible_collections.nova.cells.plugins.module_utils._addresses import AddressError
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import (
    CONNECTION_RETRY,
    Member,
    ZooKeeperUnavailable,
    connect,
    evaluate,
    hosts_string,
    parse_address,
    probe,
    read_members,
)

Stat = namedtuple('Stat', 'numChildren ephemeralOwner')


class Result:
    def __init__(self, value=None, error=None):
        self.value, self.error = value, error

    def get(self, timeout=None):
        if self.error is not None:
            raise self.error
        return self.value


class NoNode(Exception):
    pass


class FakeKazoo:
    """Just the async calls read_members uses, over a dict {path: (children, stat)}."""

    def __init__(self, tree, fail_paths=()):
        self.tree = tree
        self.fail_paths = fail_paths
        self.calls = []

    def get_children_async(self, path):
        self.calls.append(('get_children_async', path))
        if path in self.fail_paths:
            return Result(error=RuntimeError('ConnectionLoss'))
        if path not in self.tree:
            return Result(error=NoNode(path))
        return Result(self.tree[path][0])

    def exists_async(self, path):
        self.calls.append(('exists_async', path))
        if path not in self.tree:
            return Result(None)
        return Result(self.tree[path][1])


@pytest.fixture(autouse=True)
def _no_node(monkeypatch):
    monkeypatch.setattr(_liveness_zk, 'NoNodeError', NoNode)


def test_membership_rule():
    tree = {
        '/sg/compute': (['up1', 'gone', 'juno'], Stat(3, 0)),
        '/sg/compute/up1': (['4242'], Stat(1, 0)),
        '/sg/compute/gone': ([], Stat(0, 0)),          # the host node stays after its session ended
        '/sg/compute/juno': ([], Stat(0, 0x1234)),     # Juno and older: the host node itself is ephemeral
    }
    client = FakeKazoo(tree)
    members = read_members(client, '/sg/', {'compute': {'up1', 'gone', 'juno', 'never'}, 'conductor': {'c1'}, None: {'api'}})
    assert members[('compute', 'up1')] == Member('up', 1, None)
    assert members[('compute', 'juno')].state == 'up'
    assert members[('compute', 'gone')].state == 'down' and 'no live member' in members[('compute', 'gone')].reason
    assert members[('compute', 'never')].state == 'down' and 'no znode /sg/compute/never' in members[('compute', 'never')].reason
    assert members[('conductor', 'c1')].state == 'down'           # /sg/conductor does not exist
    assert members[(None, 'api')].state == 'down'
    # one listing per topic, then one exists per host present; no exists for hosts not listed
    assert ('exists_async', '/sg/compute/never') not in client.calls
    assert sum(1 for call in client.calls if call[0] == 'get_children_async') == 2


def test_listing_errors_make_services_unknown():
    client = FakeKazoo({}, fail_paths=('/servicegroups/compute',))
    members = read_members(client, '/servicegroups', {'compute': {'h1'}})
    assert members[('compute', 'h1')].state == 'unknown'
    assert 'ConnectionLoss' in members[('compute', 'h1')].reason


def test_evaluate():
    assert evaluate(Member('up', 1, None)) == ('up', None, None, None)
    assert evaluate(Member('up', 1, None), forced_down=True)[0] == 'down'
    assert evaluate(None)[0] == 'unknown'


def test_addresses():
    assert parse_address('zk1:2181, zk2, [::1]:2182') == [('zk1', 2181), ('zk2', 2181), ('::1', 2182)]
    assert hosts_string(parse_address(['zk1:1', '[::1]:2'])) == 'zk1:1,[::1]:2'
    with pytest.raises(AddressError):
        parse_address('zk1:99999')


class FakeClientFactory:
    def __init__(self, answering):
        self.answering = answering
        self.created = []

    def __call__(self, **kwargs):
        client = FakeClient(kwargs, kwargs['hosts'] in self.answering)
        self.created.append(client)
        return client


class FakeClient:
    def __init__(self, kwargs, answers):
        self.kwargs, self.answers = kwargs, answers
        self.stopped = self.closed = False

    def start(self, timeout):
        if not self.answers:
            raise TimeoutError('Connection time-out')

    def exists(self, path):
        return Stat(1, 0)

    def stop(self):
        self.stopped = True

    def close(self):
        self.closed = True


def test_connect_retries_quickly_and_fails_clearly():
    factory = FakeClientFactory({'zk1:2181'})
    client = connect([('zk1', 2181)], timeout=1, client_factory=factory)
    assert client.kwargs['connection_retry'] == CONNECTION_RETRY
    assert client.kwargs['read_only'] is True
    with pytest.raises(ZooKeeperUnavailable, match='zk2:2181 did not answer within 1 s'):
        connect([('zk2', 2181)], timeout=1, client_factory=factory)
    assert factory.created[-1].stopped and factory.created[-1].closed


def test_probe_names_each_server():
    factory = FakeClientFactory({'zk1:2181'})
    versions, errors = probe([('zk1', 2181), ('zk2', 2181)], timeout=1, client_factory=factory)
    assert versions == {'zk1:2181': 'connected'}
    assert list(errors) == ['zk2:2181']
