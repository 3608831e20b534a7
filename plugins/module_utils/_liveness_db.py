# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Service liveness by the db ServiceGroup driver's rule, read from the ``services`` table of a cell.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

Nova (nova/servicegroup/drivers/db.py, ``is_up``)::

    last_heartbeat = service_ref.get('last_seen_up') or service_ref['created_at']
    is_up = abs(utcnow() - last_heartbeat) <= service_down_time

and ``ServiceGroup.service_is_up`` answers False first when the row is ``forced_down``. The services
rows are also the list of services for the other drivers, so every reader starts here: one query per
cell, with the DB server's ``UTC_TIMESTAMP(6)`` in the same statement as "now".

Every backend (``DbBackend`` here, ``MemcachedBackend`` in _liveness_mc, ``ZooKeeperBackend`` in
_liveness_zk) answers ``states(cell_rows, service_down_time)`` for the rows read here: ``{(cell uuid, row
id): (state, last_seen ISO, age_seconds, reason)}``, keeps what the reader should be told in ``warnings``
and releases its connections in ``close()``.
"""

from __future__ import annotations

import datetime

from ansible_collections.nova.cells.plugins.module_utils._releases import supports

# WSGI services have rows but never heartbeat; Nova's os-services API leaves them out too.
API_BINARIES = ('nova-osapi_compute', 'nova-metadata')

UP = 'up'
DOWN = 'down'
UNKNOWN = 'unknown'
STATES = (UP, DOWN, UNKNOWN)

_COLUMNS = ('id, uuid, host, `binary`, topic, disabled, disabled_reason, forced_down, last_seen_up, created_at, '
            'updated_at, report_count, UTC_TIMESTAMP(6) AS db_now')


def services_query(binary=None, topic=None, hosts=None):
    """The one SELECT per cell: live (deleted = 0) rows, WSGI services left out, filters applied in SQL."""
    where = ['deleted = 0', '`binary` NOT IN ({})'.format(', '.join(['%s'] * len(API_BINARIES)))]
    args = list(API_BINARIES)
    if binary:
        where.append('`binary` = %s')
        args.append(binary)
    if topic:
        where.append('topic = %s')
        args.append(topic)
    if hosts:
        where.append('host IN ({})'.format(', '.join(['%s'] * len(hosts))))
        args.extend(hosts)
    sql = 'SELECT {} FROM services WHERE {} ORDER BY host, `binary`'.format(_COLUMNS, ' AND '.join(where))
    return sql, args


def fetch_services(database, binary=None, topic=None, hosts=None):
    """Rows of a cell's services table (``database`` is a _databases.Database)."""
    sql, args = services_query(binary=binary, topic=topic, hosts=hosts)
    rows = database.query(sql, args)
    for row in rows:
        row['disabled'] = bool(row.get('disabled'))
        row['forced_down'] = bool(row.get('forced_down'))
    return rows


def _naive_utc(value):
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def heartbeat(row, release=None):
    """The timestamp the db driver of ``release`` compares (None: the current rule)."""
    if release is not None and not supports(release, 'heartbeat_last_seen_up'):
        return row.get('updated_at') or row.get('created_at')          # Kilo and older
    if release is not None and not supports(release, 'heartbeat_without_updated_at'):
        return row.get('last_seen_up') or row.get('updated_at') or row.get('created_at')   # Liberty-Newton
    return row.get('last_seen_up') or row.get('created_at')           # Ocata and later


def iso(value):
    """ISO 8601 with an explicit UTC offset for a naive-UTC or aware datetime."""
    if value is None:
        return None
    return _naive_utc(value).replace(tzinfo=datetime.UTC).isoformat()


def evaluate(row, now, service_down_time, release=None):
    """(state, last_seen ISO, age_seconds, reason) of one row under the db driver."""
    beat = _naive_utc(heartbeat(row, release))
    now = _naive_utc(now)
    if beat is None or now is None:
        return DOWN, None, None, 'the row has no heartbeat timestamp'
    age = (now - beat).total_seconds()
    if row.get('forced_down'):
        return DOWN, iso(beat), round(age, 3), 'forced_down is set'
    if abs(age) <= service_down_time:
        return UP, iso(beat), round(age, 3), None
    return DOWN, iso(beat), round(age, 3), f'last heartbeat {age:.0f} s ago (service_down_time {service_down_time})'


def service_entry(cell, row):
    """The part of a result entry that comes from the services row."""
    return {
        'cell': cell['name'],
        'cell_uuid': cell['uuid'],
        'host': row['host'],
        'binary': row['binary'],
        'topic': row['topic'],
        'forced_down': bool(row.get('forced_down')),
        'disabled': bool(row.get('disabled')),
        'disabled_reason': row.get('disabled_reason'),
    }


def state_key(cell, row):
    """The key of one service in the ``states`` of every backend."""
    return cell['uuid'], row['id']


class DbBackend:
    """The db driver: the heartbeat is in the row itself, compared with the database server's clock."""

    def __init__(self, release=None):
        self.release = release
        self.warnings = []

    def states(self, cell_rows, service_down_time):
        return {state_key(cell, row): evaluate(row, row['db_now'], service_down_time, self.release)
                for cell, rows in cell_rows for row in rows}

    def close(self):
        pass
