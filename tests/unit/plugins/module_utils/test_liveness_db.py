# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import datetime

import pytest

from ansible_collections.nova.cells.plugins.module_utils._liveness_db import (
    API_BINARIES,
    evaluate,
    fetch_services,
    heartbeat,
    iso,
    service_entry,
    services_query,
)

NOW = datetime.datetime(2026, 11, 21, 12, 0, 0)


def row(**values):
    base = dict(id=1, host='cmp1', binary='nova-compute', topic='compute', disabled=False, disabled_reason=None,
                forced_down=False, last_seen_up=None, created_at=NOW - datetime.timedelta(days=1), updated_at=None)
    base.update(values)
    return base


def test_query_is_one_statement_with_filters_in_sql():
    sql, args = services_query()
    assert sql.startswith('SELECT ') and 'UTC_TIMESTAMP(6) AS db_now' in sql
    assert 'deleted = 0' in sql and '`binary` NOT IN (%s, %s)' in sql
    assert args == list(API_BINARIES)
    sql, args = services_query(binary='nova-compute', hosts=['a', 'b'])
    assert '`binary` = %s' in sql and 'host IN (%s, %s)' in sql
    assert args == [*API_BINARIES, 'nova-compute', 'a', 'b']
    sql, args = services_query(topic='compute')
    assert 'topic = %s' in sql and args[-1] == 'compute'


def test_fetch_services_normalises_flags():
    class Database:
        def query(self, sql, args):
            self.seen = (sql, args)
            return [row(disabled=1, forced_down=None)]

    database = Database()
    rows = fetch_services(database, binary='nova-compute')
    assert rows[0]['disabled'] is True and rows[0]['forced_down'] is False
    assert database.seen[1][-1] == 'nova-compute'


@pytest.mark.parametrize('seconds_ago, down_time, state', [(0, 60, 'up'), (60, 60, 'up'), (61, 60, 'down'), (-60, 60, 'up'), (-61, 60, 'down')])
def test_rule_is_symmetric_within_service_down_time(seconds_ago, down_time, state):
    beat = NOW - datetime.timedelta(seconds=seconds_ago)
    assert evaluate(row(last_seen_up=beat), NOW, down_time)[0] == state


def test_created_at_when_never_reported_and_forced_down():
    state, last_seen, age, _reason = evaluate(row(created_at=NOW - datetime.timedelta(seconds=5)), NOW, 60)
    assert (state, last_seen, age) == ('up', '2026-11-21T11:59:55+00:00', 5.0)
    state, _last, _age, reason = evaluate(row(last_seen_up=NOW), NOW, 60)
    assert state == 'up' and reason is None
    state, _last, _age, reason = evaluate(row(last_seen_up=NOW, forced_down=True), NOW, 60)
    assert state == 'down' and reason == 'forced_down is set'
    assert evaluate(row(created_at=None), NOW, 60)[0] == 'down'


def test_heartbeat_column_per_release():
    updated = NOW - datetime.timedelta(seconds=1)
    seen = NOW - datetime.timedelta(seconds=500)
    service = row(last_seen_up=seen, updated_at=updated)
    assert heartbeat(service) == seen                   # Ocata and later
    assert heartbeat(service, 'ocata') == seen
    assert heartbeat(row(updated_at=updated), 'newton') == updated      # Liberty-Newton fall back to updated_at
    assert heartbeat(row(updated_at=updated), 'ocata') == NOW - datetime.timedelta(days=1)
    assert heartbeat(service, 'kilo') == updated        # before last_seen_up existed
    # an enable/disable bumps updated_at: Newton says up, Ocata says down (commit 594b1b1520)
    assert evaluate(row(updated_at=updated), NOW, 60, 'newton')[0] == 'up'
    assert evaluate(row(updated_at=updated), NOW, 60, 'ocata')[0] == 'down'


def test_aware_times_and_iso():
    aware_now = NOW.replace(tzinfo=datetime.UTC)
    assert evaluate(row(last_seen_up=NOW), aware_now, 60)[0] == 'up'
    assert iso(None) is None
    assert iso(datetime.datetime(2026, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))) == '2026-01-01T00:00:00+00:00'


def test_service_entry():
    entry = service_entry({'name': 'cell1', 'uuid': 'u'}, row(disabled=True, disabled_reason='maintenance'))
    assert entry == {'cell': 'cell1', 'cell_uuid': 'u', 'host': 'cmp1', 'binary': 'nova-compute', 'topic': 'compute',
                     'forced_down': False, 'disabled': True, 'disabled_reason': 'maintenance'}
