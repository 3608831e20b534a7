# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The nova.cells.rollout filter: its views and its errors (the decisions themselves: module_utils/test_rollout.py)."""

from __future__ import annotations

import datetime

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.rollout import rollout

T0 = datetime.datetime(2026, 12, 6, 20, 0, 0, tzinfo=datetime.UTC).timestamp()
SHOW = """Id=nova-api.service
ActiveState=active
ActiveEnterTimestamp=Sun 2026-12-06 20:00:00.500000 UTC
"""
BEFORE = """[DEFAULT]
servicegroup_driver = db
"""
SINGLE = "CREATE USER `nova`@`%` IDENTIFIED BY PASSWORD '*C906F44266002275A899856CB61A48A34B3A14DF'"


def test_the_filter_views_and_errors():
    assert rollout(SHOW, 'stale_units', mtimes=[T0 + 120], wanted=['nova-api']) == ['nova-api']
    assert rollout({'ctl': 'db'}, 'switch_plan', target='mc', writer_hosts=['ctl'], grace=300)['widen'] is True
    assert rollout(BEFORE, 'conf_changes', after=BEFORE) == []
    beats = [{'binary': 'nova-compute', 'host': 'cmp1', 'last_seen': '2026-12-06T19:59:55+00:00'}]
    assert rollout(beats, 'stalled_heartbeats', since=T0) == ['nova-compute@cmp1']
    assert rollout(beats, 'stalled_heartbeats', since=T0 - 10) == []
    with pytest.raises(AnsibleFilterError, match='needs since'):
        rollout(beats, 'stalled_heartbeats')
    with pytest.raises(AnsibleFilterError, match='unknown view'):
        rollout('', 'nothing')
    with pytest.raises(AnsibleFilterError, match='cannot read the timestamp'):
        rollout('Id=a.service\nActiveState=active\nActiveEnterTimestamp=yesterday\n', 'stale_units', mtimes=[1.0], wanted=['a'])
    assert rollout(SINGLE, 'db_account_step', password='new1', phase='add')['action'] == 'alter'
    hosts = {'ctl': {'templates': True, 'cell': None, 'db': {'user': 'nova', 'password': 'x'}, 'mq': None}}
    assert rollout(hosts, 'rotation_plan', selected=['ctl'])['database_accounts'][0]['user'] == 'nova'
