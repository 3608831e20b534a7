# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import struct

import pytest

from ansible_collections.nova.cells.plugins.filter.health_report import FilterModule
from ansible_collections.nova.cells.plugins.module_utils import _health as health
from ansible_collections.nova.cells.plugins.module_utils._nova_conf import NovaConfig


# -- AMQP probe on a scripted socket -------------------------------------------------------------------------------
def frame(class_id, method_id, arguments=b''):
    payload = struct.pack('>HH', class_id, method_id) + arguments
    return struct.pack('>BHI', 1, 0, len(payload)) + payload + b'\xce'


def close(code, text):
    return frame(10, 50, struct.pack('>H', code) + bytes([len(text)]) + text.encode() + struct.pack('>HH', 0, 0))


class ScriptedSocket:
    def __init__(self, replies):
        self.incoming = b''.join(replies)
        self.sent = []
        self.closed = False

    def settimeout(self, timeout):
        pass

    def sendall(self, data):
        self.sent.append(data)

    def recv(self, size):
        chunk, self.incoming = self.incoming[:size], self.incoming[size:]
        return chunk

    def close(self):
        self.closed = True


def probe(replies, **kwargs):
    sock = ScriptedSocket(replies)
    error = health.amqp_login('mq', 5672, 'nova', 'secret', kwargs.get('vhost', 'cell1'), connect=lambda address, timeout: sock)
    return error, sock


START = frame(10, 10, b'\x00\x09' + b'\x00' * 12)
TUNE = frame(10, 30, struct.pack('>HIH', 2047, 131072, 60))


def test_amqp_login_opens_the_vhost():
    error, sock = probe([START, TUNE, frame(10, 41, b'\x00')])
    assert error is None and sock.closed
    assert sock.sent[0] == b'AMQP\x00\x00\x09\x01'
    start_ok = sock.sent[1]
    assert b'PLAIN' in start_ok and b'\x00nova\x00secret' in start_ok
    assert sock.sent[3].endswith(b'\x05cell1\x00\x00\xce')  # Connection.Open: vhost, reserved, no-wait bit


def test_amqp_login_refused_names_the_reason():
    error, _sock = probe([START, close(403, 'ACCESS_REFUSED - Login was refused')])
    assert error == 'login refused by mq:5672 (403 ACCESS_REFUSED - Login was refused)'


def test_amqp_vhost_refused():
    error, _sock = probe([START, TUNE, close(530, "NOT_ALLOWED - vhost cell9 not found")], vhost='cell9')
    assert error.startswith("virtual host 'cell9' refused by mq:5672 (530 NOT_ALLOWED")


def test_amqp_server_hangs_up():
    error, _sock = probe([START])
    assert 'closed the connection' in error


def test_amqp_connection_refused():
    def refuse(address, timeout):
        raise ConnectionRefusedError(111, 'Connection refused')
    assert health.amqp_login('mq', 5672, 'u', 'p', '/', connect=refuse) == 'cannot connect to mq:5672: Connection refused'


def test_queue_targets_take_oslo_defaults():
    parsed = {'hosts': [{'hostname': 'a', 'port': None, 'username': 'u', 'password': 'p'},
                        {'hostname': 'b', 'port': 5673, 'username': 'v', 'password': 'q'}], 'virtual_host': ''}
    assert health.queue_targets(parsed) == [('a', 5672, 'u', 'p', '/'), ('b', 5673, 'v', 'q', '/')]


# -- ServiceGroup settings and audit ---------------------------------------------------------------------------------
def test_settings_with_novas_defaults():
    assert health.servicegroup_settings(NovaConfig.from_text('[DEFAULT]\ndebug = true\n')) == {
        'driver': 'db', 'report_interval': 10, 'service_down_time': 60, 'effective_service_down_time': 60}


def test_settings_mc_and_a_too_small_down_time():
    config = NovaConfig.from_text('[DEFAULT]\nservicegroup_driver = mc\nreport_interval = 20\nservice_down_time = 20\n'
                                  '[cache]\nenabled = True\nbackend = dogpile.cache.pymemcache\nmemcache_servers = b:11211, a:11211\n')
    assert health.servicegroup_settings(config) == {
        'driver': 'mc', 'report_interval': 20, 'service_down_time': 20, 'effective_service_down_time': 50,
        'cache_enabled': True, 'cache_backend': 'dogpile.cache.pymemcache', 'memcache_servers': ['a:11211', 'b:11211']}


SAME = {'driver': 'db', 'report_interval': 10, 'service_down_time': 60, 'effective_service_down_time': 60}


def test_audit_accepts_identical_nodes():
    assert health.audit_servicegroup({'ctl': dict(SAME), 'cmp1': dict(SAME)}) == []


def test_audit_names_the_odd_node():
    odd = dict(SAME, report_interval=20)
    problems = health.audit_servicegroup({'ctl': dict(SAME), 'cmp1': dict(SAME), 'cmp2': odd})
    assert problems == ['report_interval differs between nodes: 10 on cmp1, ctl; 20 on cmp2']


def test_audit_mc_without_cache_and_a_mixed_driver():
    mc = {'driver': 'mc', 'report_interval': 10, 'service_down_time': 60, 'effective_service_down_time': 60,
          'cache_enabled': False, 'cache_backend': None, 'memcache_servers': []}
    problems = health.audit_servicegroup({'ctl': dict(SAME), 'cmp1': mc})
    assert problems[0] == "driver differs between nodes: 'db' on ctl; 'mc' on cmp1"
    assert 'cmp1 uses the mc driver without [cache] enabled = true: its services cannot report' in problems
    assert 'cmp1 uses the mc driver without [cache] memcache_servers' in problems


def test_audit_zk_and_down_time():
    problems = health.audit_servicegroup({'old': {'driver': 'zk', 'report_interval': 10, 'service_down_time': 5,
                                                  'effective_service_down_time': 25}})
    assert "old uses servicegroup_driver 'zk'; Nova since Mitaka has only db and mc" in problems
    assert 'old has service_down_time 5 <= report_interval 10: Nova uses 25 instead' in problems


# -- orphans ---------------------------------------------------------------------------------------------------------
def test_stale_host_mappings_exact_name_case_insensitive():
    assert health.stale_host_mappings(['cmp1', 'CMP2', 'cmp10', 'gone'], ['cmp1', 'cmp2'], ['cmp10']) == ['gone']
    assert health.stale_host_mappings(['cmp1'], ['cmp10'], []) == ['cmp1']


# -- the report ----------------------------------------------------------------------------------------------------
STATUS = {'checks': [{'check': 'Cells v2', 'result': 'success', 'details': None},
                     {'check': 'Service User Token Configuration', 'result': 'failure', 'details': 'not set'}]}
REACH = {'cells': [{'name': 'cell0', 'database': {'reachable': True}, 'queue': {'reachable': None}},
                   {'name': 'cell1', 'database': {'reachable': True}, 'queue': {'reachable': False, 'error': 'login refused'}}]}
ORPHANS = {'cells': [{'name': 'cell1', 'unmapped_instances': 2, 'unmapped_computes': ['cmp9'], 'stale_host_mappings': ['gone'],
                      'error': None}]}
SERVICES = {'driver': 'db', 'services': [
    {'cell': 'cell1', 'host': 'cmp1', 'binary': 'nova-compute', 'state': 'up', 'reason': None, 'disabled': False},
    {'cell': 'cell1', 'host': 'cmp2', 'binary': 'nova-compute', 'state': 'down', 'reason': 'last heartbeat 300 s ago',
     'disabled': False},
    {'cell': 'cell1', 'host': 'cmp3', 'binary': 'nova-compute', 'state': 'down', 'reason': 'x', 'disabled': True}]}


def test_report_names_every_problem():
    slower = dict(SAME, service_down_time=90, effective_service_down_time=90)
    report = health.health_report(STATUS, REACH, ORPHANS, SERVICES,
                                  {'ctl': {'settings': dict(SAME)}, 'cmp1': {'settings': slower}, 'cmp2': {}})
    assert report['healthy'] is False
    assert report['problems'] == [
        'nova-status: Service User Token Configuration is failure (not set)',
        'cell cell1: message queue unreachable: login refused',
        'service nova-compute on cmp2 (cell cell1) is down: last heartbeat 300 s ago',
        'cell cell1: 2 instance(s) without an instance mapping (nova.cells.map_instances maps them)',
        'cell cell1: compute host(s) cmp9 not mapped (nova.cells.discover_hosts maps them)',
        'cell cell1: host mapping(s) gone point at no compute of the cell (nova.cells.host state=absent removes them)',
        'ServiceGroup: service_down_time differs between nodes: 60 on ctl; 90 on cmp1',
        'ServiceGroup: effective_service_down_time differs between nodes: 60 on ctl; 90 on cmp1',
        'node cmp2: its ServiceGroup settings could not be read',
    ]
    assert report['lines'][-len(report['problems']) - 1] == 'PROBLEMS: 9'


def test_report_healthy_with_ignored_checks():
    status = dict(STATUS, ignored=['Service User Token Configuration'])
    report = health.health_report(status, {'cells': []}, {'cells': []}, {'driver': 'db', 'services': []},
                                  {'ctl': {'settings': dict(SAME)}})
    assert report['healthy'] and report['problems'] == [] and report['lines'][-1] == 'PROBLEMS: 0'


def test_report_when_nova_status_crashed():
    report = health.health_report({'failed': True, 'msg': 'rc 255'}, None, None, None, {})
    assert report['problems'] == ['nova-status upgrade check could not run: rc 255']


@pytest.mark.parametrize('name', ['health_report'])
def test_filter_is_registered(name):
    assert FilterModule().filters()[name]({'checks': []})['healthy']


# -- cell_database: which URLs name the same database ----------------------------------------------------------------
@pytest.mark.parametrize('left,right,same', [
    ('mysql+pymysql://a:x@db/nova_cell2', 'mysql+pymysql://b:y@DB:3306/nova_cell2', True),
    ('mysql+pymysql://a:x@db/nova_cell2', 'mysql+pymysql://a:x@db/nova_cell20', False),
    ('mysql+pymysql://a:x@db/nova_cell2', 'mysql+pymysql://a:x@db2/nova_cell2', False),
    ('mysql+pymysql://a:x@db:3307/nova_cell2', 'mysql+pymysql://a:x@db/nova_cell2', False),
])
def test_same_database(left, right, same):
    from ansible_collections.nova.cells.plugins.modules.cell_database import same_database
    assert same_database(left, right) is same
