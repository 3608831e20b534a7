# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The decisions of the day-2 rolling playbooks (plugins/module_utils/_rollout.py)."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.nova.cells.plugins.module_utils import _rollout

T0 = datetime.datetime(2026, 12, 6, 20, 0, 0, tzinfo=datetime.UTC).timestamp()
SHOW = """Id=nova-api.service
ActiveState=active
ActiveEnterTimestamp=Sun 2026-12-06 20:00:00.500000 UTC

Id=nova-scheduler.service
ActiveState=active
ActiveEnterTimestamp=Sun 2026-12-06 20:05:00.000000 UTC

Id=nova-conductor.service
ActiveState=inactive
ActiveEnterTimestamp=
"""


def test_timestamps_in_every_form_systemctl_gives():
    assert _rollout._timestamp('Sun 2026-12-06 20:00:00.500000 UTC') == T0 + 0.5
    assert _rollout._timestamp('2026-12-06 20:00:00 UTC') == T0
    assert _rollout._timestamp('@%d' % T0) == T0
    assert _rollout._timestamp('') is None
    assert _rollout._timestamp('n/a') is None
    with pytest.raises(ValueError, match='cannot read the timestamp'):
        _rollout._timestamp('Sun 2026-12-06 20:00:00 CET')


def test_a_unit_that_started_before_the_file_was_written_restarts():
    # nova.conf written at 20:02: nova-api (20:00:00.5) runs on the old file, nova-scheduler (20:05) on the new one.
    assert _rollout.stale_units(SHOW, [T0 + 120], ['nova-api', 'nova-scheduler', 'nova-conductor']) == ['nova-api']


def test_the_newest_of_the_files_counts():
    assert _rollout.stale_units(SHOW, [T0 - 60, T0 + 400], ['nova-scheduler', 'nova-api']) == ['nova-scheduler', 'nova-api']


def test_a_second_run_restarts_nothing_and_stopped_units_stay_stopped():
    assert _rollout.stale_units(SHOW, [T0 - 10], ['nova-api', 'nova-scheduler', 'nova-conductor']) == []
    assert _rollout.stale_units(SHOW, [T0 + 10_000], ['nova-conductor']) == []


def test_check_mode_restarts_every_running_unit_of_a_host_whose_file_would_change():
    assert _rollout.stale_units(SHOW, [T0 - 10], ['nova-scheduler', 'nova-api', 'nova-conductor'], changed=True) == [
        'nova-scheduler', 'nova-api']


def test_units_not_asked_for_or_unknown_are_left_alone():
    assert _rollout.stale_units(SHOW, [T0 + 10_000], ['nova-compute']) == []
    assert _rollout.stale_units(SHOW, [T0 + 10_000], []) == []


WRITERS = ['cmp1', 'cmp2', 'ctl']


def test_switch_plan_widens_the_readers_while_writers_move():
    plan = _rollout.switch_plan('mc', {'ctl': 'db', 'cmp1': 'db', 'cmp2': 'db'}, WRITERS, 60, 300)
    assert plan['problems'] == []
    assert plan['widen'] is True
    assert plan['moving'] == ['cmp1', 'cmp2', 'ctl']
    assert [phase['name'] for phase in plan['phases']] == ['widen', 'writers', 'schedulers', 'readers']
    writers = plan['phases'][1]
    assert writers['types'] == ['compute', 'cell_conductor', 'super_conductor']
    assert writers['binaries'] == ['nova-compute', 'nova-conductor']


def test_switch_plan_of_a_second_run_or_a_resumed_one_does_not_widen():
    done = _rollout.switch_plan('db', {'ctl': 'db', 'cmp1': 'db'}, WRITERS, 60, 300)
    assert (done['widen'], done['moving'], done['problems']) == (False, [], [])
    assert [phase['name'] for phase in done['phases']] == ['writers', 'schedulers', 'readers']
    # Interrupted after the writers moved: only the API host's file is behind; its restart needs no grace.
    resumed = _rollout.switch_plan('mc', {'ctl': 'mc', 'cmp1': 'mc', 'api2': 'db'}, WRITERS, 60, 300)
    assert (resumed['widen'], resumed['moving']) == (False, ['api2'])


def test_switch_plan_without_grace_does_not_widen():
    assert _rollout.switch_plan('mc', {'cmp1': 'db'}, WRITERS, 60, 0)['widen'] is False


@pytest.mark.parametrize(('target', 'current', 'grace', 'message'), [
    ('zk', {'ctl': 'db'}, 300, 'must be one of db, mc'),
    ('mc', {'ctl': 'db', 'cmp9': None}, 300, 'no nova.conf with a ServiceGroup driver on cmp9'),
    ('db', {'ctl': 'zk'}, 300, 'ctl run the zk driver'),
    ('mc', {'ctl': 'db'}, 65, 'must be longer than service_down_time \\+ report_interval \\(70 s\\)'),
    ('mc', {'ctl': 'db'}, 'soon', 'must be integers'),
])
def test_switch_plan_refusals(target, current, grace, message):
    problems = _rollout.switch_plan(target, current, WRITERS, 60, grace)['problems']
    assert any(__import__('re').search(message, problem) for problem in problems), problems


BEFORE = """[DEFAULT]
transport_url = rabbit://nova:Old+mq@mq:5672/nova
servicegroup_driver = db

[database]
connection = mysql+pymysql://nova:Old%2Fdb@db/nova_cell1

[service_user]
password = Svc-secret
"""
AFTER = """[DEFAULT]
transport_url = rabbit://nova:New+mq@mq:5672/nova
servicegroup_driver = mc

[cache]
memcache_servers = mc1:11211

[database]
connection = mysql+pymysql://nova:New%2Fdb@db/nova_cell1

[service_user]
password = Svc-secret2
"""


def test_conf_changes_show_what_changes_and_never_a_secret():
    lines = _rollout.conf_changes(BEFORE, AFTER)
    text = '\n'.join(lines)
    for secret in ('Old+mq', 'New+mq', 'Old%2Fdb', 'New%2Fdb', 'Svc-secret'):
        assert secret not in text
    assert '~ [DEFAULT] servicegroup_driver: db -> mc' in lines
    assert '+ [cache] memcache_servers = mc1:11211' in lines
    assert '~ [DEFAULT] transport_url: rabbit://nova:****@mq:5672/nova -> rabbit://nova:****@mq:5672/nova (the secret changes)' in lines
    assert '~ [service_user] password: **** -> **** (the secret changes)' in lines
    assert _rollout.conf_changes(AFTER, AFTER) == []
    assert '- [cache] memcache_servers = mc1:11211' in _rollout.conf_changes(AFTER, BEFORE)


def test_mysql_native_hash_is_mariadbs_password_function():
    # SELECT PASSWORD('old1') on MariaDB 10.11 (the lab's infrastructure container).
    assert _rollout.mysql_native_hash('old1') == '*C906F44266002275A899856CB61A48A34B3A14DF'
    assert _rollout.mysql_native_hash('new1') == '*15BAAFE0AF03EC9F23DD0462E0D10864B6CC30D0'


OLD, NEW = '*C906F44266002275A899856CB61A48A34B3A14DF', '*15BAAFE0AF03EC9F23DD0462E0D10864B6CC30D0'
SINGLE = f"CREATE USER `nova`@`%` IDENTIFIED BY PASSWORD '{OLD}'"
DUAL = f"CREATE USER `nova`@`%` IDENTIFIED VIA mysql_native_password USING '{OLD}' OR mysql_native_password USING '{NEW}'"
ONLY_NEW = f"CREATE USER `nova`@`%` IDENTIFIED VIA mysql_native_password USING '{NEW}'"


def test_account_hashes_from_show_create_user():
    assert _rollout.account_hashes(SINGLE) == [OLD]
    assert _rollout.account_hashes(DUAL) == [OLD, NEW]
    assert _rollout.account_hashes('CREATE USER `x`@`%`') == []


def test_the_account_accepts_old_and_new_during_the_roll_then_only_the_new_one():
    add = _rollout.db_account_step(SINGLE, NEW, 'add')
    assert add['action'] == 'alter' and add['state'] == 'old'
    assert add['sql_auth'] == f"IDENTIFIED VIA mysql_native_password USING '{OLD}' OR mysql_native_password USING '{NEW}'"
    # Resumed or second run: nothing to add; the retirement leaves only the new password.
    assert _rollout.db_account_step(DUAL, NEW, 'add')['action'] == 'none'
    retire = _rollout.db_account_step(DUAL, NEW, 'retire')
    assert (retire['action'], retire['state']) == ('alter', 'dual')
    assert retire['sql_auth'] == f"IDENTIFIED VIA mysql_native_password USING '{NEW}'"
    for phase in ('add', 'retire'):
        assert _rollout.db_account_step(ONLY_NEW, NEW, phase) == {'action': 'none', 'sql_auth': '', 'accepted': [NEW], 'state': 'current'}
    with pytest.raises(ValueError, match='unknown phase'):
        _rollout.db_account_step(SINGLE, NEW, 'later')


def _host(cell, db_user='nova', db_pw='D2', mq_user='nova', mq_pw='M2', templates=True, compute=False):
    return {'templates': templates, 'cell': cell, 'db': None if compute else {'user': db_user, 'password': db_pw},
            'mq': {'user': mq_user, 'password': mq_pw}}


def test_rotation_plan_for_every_host_and_for_one_cell():
    hosts = {'ctl': _host(None), 'c1a': _host('cell1', db_user='c1', mq_user='c1'), 'c1b': _host('cell1', db_user='c1', mq_user='c1', compute=True)}
    every = _rollout.rotation_plan(hosts, sorted(hosts))
    assert every['problems'] == []
    assert [account['user'] for account in every['database_accounts']] == ['c1', 'nova']
    assert [account['hosts'] for account in every['rabbit_accounts']] == [['c1a', 'c1b'], ['ctl']]
    one = _rollout.rotation_plan(hosts, ['c1a', 'c1b'], cell='cell1')
    assert one['problems'] == []
    assert [account['user'] for account in one['database_accounts'] + one['rabbit_accounts']] == ['c1', 'c1']


@pytest.mark.parametrize(('hosts', 'selected', 'cell', 'message'), [
    ({'ctl': _host(None, templates=False)}, ['ctl'], None, 'nova_cell_url_templates is not true for ctl.*run nova.cells.deploy'),
    ({'ctl': _host(None)}, [], 'cell10', 'no host is in cell cell10'),
    ({'a': _host(None), 'b': _host('cell1', db_pw='other')}, ['a', 'b'], None, 'database account nova gets different passwords on a, b'),
    ({'ctl': _host(None), 'c1': _host('cell1')}, ['c1'], 'cell1', 'RabbitMQ account nova is also used by ctl'),
])
def test_rotation_plan_refusals(hosts, selected, cell, message):
    problems = _rollout.rotation_plan(hosts, selected, cell=cell)['problems']
    assert any(__import__('re').search(message, problem) for problem in problems), problems


def _service(binary, host, seconds_after_t0):
    beat = datetime.datetime.fromtimestamp(T0 + seconds_after_t0, tz=datetime.UTC).isoformat()
    return {'binary': binary, 'host': host, 'last_seen': beat, 'state': 'up'}


def test_stalled_heartbeats_are_the_alive_computes_without_a_heartbeat_since_the_conductor_started():
    # The conductor started again at T0 + 100: cmp1 reported after it; cmp2's last heartbeat (T0 + 95) went to the old
    # conductor, whose answer to the next one is lost; cmp3 was down long before; the scheduler does not report
    # through the conductor.
    services = [_service('nova-compute', 'cmp1', 104), _service('nova-compute', 'cmp2', 95),
                _service('nova-compute', 'cmp3', -500), _service('nova-scheduler', 'ctl', 50),
                {'binary': 'nova-compute', 'host': 'zk1', 'last_seen': None}]
    assert _rollout.stalled_heartbeats(services, T0 + 100, 60) == ['nova-compute@cmp2']
    assert _rollout.stalled_heartbeats(services, '2026-12-06T20:01:40+00:00', 60) == ['nova-compute@cmp2']
    assert _rollout.stalled_heartbeats(services, '2026-12-06T20:01:40', 60) == ['nova-compute@cmp2']
    assert _rollout.stalled_heartbeats(services, T0 + 100, 60, binaries=['nova-scheduler']) == ['nova-scheduler@ctl']
    assert _rollout.stalled_heartbeats(services, T0 + 90, 60) == []
    assert _rollout.stalled_heartbeats([], T0, 60) == []
    with pytest.raises(ValueError, match='needs since'):
        _rollout.stalled_heartbeats(services, None, 60)
