# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Set-based engines (``engine: direct``) for discover_hosts and map_instances: the writes.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
The reads they plan with (unmapped nodes, unmapped instances, instance rows) are queries of _databases.

They write exactly the rows nova-manage 34 writes, with a few statements per thousand rows instead of
about eleven (discover_hosts) or four (map_instances) per row plus seconds of process start-up.

What nova-manage does, and what is reproduced here:

``cell_v2 discover_hosts`` (``nova/objects/host_mapping.py``), per cell:

1. loads ``compute_nodes WHERE mapped < 1 AND deleted = 0 ORDER BY id``. Loading a node
   (``ComputeNode._from_db_object``) writes ``[DEFAULT] cpu/ram/disk_allocation_ratio`` (else
   ``initial_*_allocation_ratio``: 4.0, 1.0, 1.0) into every ratio column that is NULL or 0.0, with
   ``updated_at = utcnow()``;
2. node by node, in id order: when no host mapping exists for ``node.host`` (in any cell), inserts
   ``host_mappings (created_at = utcnow(), cell_id, host)`` and sets ``mapped = 1, updated_at = utcnow()`` on
   that node. The other nodes of the same host, and nodes whose host was already mapped (to any cell),
   stay at ``mapped = 0``;
3. with ``--by-service``: ``services WHERE binary = 'nova-compute' AND deleted = 0`` (disabled included),
   host mappings only; nothing is written to the cell database.

``cell_v2 map_instances`` (``nova/cmd/manage.py``): the cell's instances, deleted ones included, hidden ones
not (``instance_get_all_by_filters_sort``), oldest first (``created_at``, ``id``), each inserted as
``instance_mappings (created_at = utcnow(), instance_uuid, cell_id, project_id, user_id,
queued_for_delete = 0)`` unless a mapping of that uuid exists (in any cell; existing mappings are never
updated). A run to completion leaves no ``INSTANCE_MIGRATION_MARKER`` row behind.

Concurrency: host mappings are inserted with ``INSERT IGNORE`` inside a ``REPEATABLE READ`` transaction that
started ``WITH CONSISTENT SNAPSHOT``. The unique key on ``host_mappings.host`` decides which writer wins; the
transaction's own snapshot then shows exactly the rows *this* run inserted (rows committed by a concurrent
nova-manage, scheduler periodic task or another direct run after the snapshot are invisible to it), so only
those hosts are reported and only their nodes are marked ``mapped = 1``, as nova-manage marks only its own.
``INSERT IGNORE`` warnings other than "duplicate entry" fail the run.
"""

from __future__ import annotations

import datetime
import time
from collections import namedtuple

from ansible_collections.nova.cells.plugins.module_utils._databases import (
    MARKER_PROJECT_ID,
    DatabaseError,
    chunks,
    host_key,
    placeholders,
)

try:
    import pymysql
except ImportError:  # pragma: no cover - _databases reports the missing library
    pymysql = None

# nova/conf/compute.py: ``initial_*_allocation_ratio`` defaults, used when ``*_allocation_ratio`` is unset or 0.0.
ALLOCATION_RATIOS = (('cpu_allocation_ratio', 4.0), ('ram_allocation_ratio', 1.0), ('disk_allocation_ratio', 1.0))
ER_DUP_ENTRY = 1062
ER_BAD_FIELD = 1054
RETRYABLE_ERRORS = (1205, 1213)  # lock wait timeout, deadlock (also a Galera certification failure)
TRANSACTION_RETRIES = 5


class DirectUnsupported(Exception):
    """State the direct engine does not reproduce exactly; the caller uses nova-manage for that cell."""


class _Retry(Exception):
    pass


def utcnow():
    """Naive UTC, as ``oslo_utils.timeutils.utcnow()`` gives Nova's ORM."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


# -- configuration -------------------------------------------------------------------------------

def allocation_ratios(get):
    """The values nova-manage writes into NULL / 0.0 ratio columns; ``get(section, option)`` reads nova.conf."""
    ratios = {}
    for option, initial in ALLOCATION_RATIOS:
        configured = _float_option(get, option)
        if configured:
            ratios[option] = configured
        else:
            value = _float_option(get, 'initial_' + option)
            ratios[option] = initial if value is None else value
    return ratios


def _float_option(get, option):
    value = get('DEFAULT', option)
    if value is None or str(value).strip() == '':
        return None
    try:
        return float(value)
    except ValueError:
        raise DirectUnsupported(f'[DEFAULT] {option} = {value!r} is not a number; nova-manage would refuse to start') from None


# -- low-level statements ------------------------------------------------------------------------

def _execute(database, sql, args=None, fetch=False):
    """One statement on ``database``'s connection; deadlocks and lock time-outs raise _Retry."""
    try:
        with database.connection().cursor() as cursor:
            count = cursor.execute(sql, args)
            if fetch:
                return list(cursor.fetchall())
            return count, _warning_count(cursor)
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else None
        if code in RETRYABLE_ERRORS:
            raise _Retry(str(exc)) from None
        text = exc.args[1] if len(exc.args) > 1 else str(exc)
        hint = ''
        if code == ER_BAD_FIELD:
            hint = (' - the direct engine needs the schema of the Nova release it was written for (34); '
                    'use engine nova_manage with other releases')
        raise DatabaseError(f'statement on the {database.label} failed: ({code}) {text}{hint}') from None


def _warning_count(cursor):
    count = getattr(cursor, 'warning_count', None)  # PyMySQL 1.1+
    if count is None:
        count = getattr(getattr(cursor, '_result', None), 'warning_count', None)
    return 1 if count is None else count  # unknown: let SHOW WARNINGS tell


def _check_warnings(database, warnings, what):
    """After INSERT IGNORE: duplicates are expected, anything else (truncation, foreign key) is an error."""
    if not warnings:
        return
    rows = _execute(database, 'SHOW WARNINGS', fetch=True)
    other = [row for row in rows if int(row.get('Code', 0)) != ER_DUP_ENTRY]
    if other:
        raise DatabaseError('{} on the {}: {}'.format(what, database.label, '; '.join(
            '({}) {}'.format(row.get('Code'), row.get('Message')) for row in other[:5])))


def _in_transaction(database, work, retries=TRANSACTION_RETRIES):
    """Run ``work()`` in a REPEATABLE READ transaction with a consistent snapshot; retried on deadlock."""
    database.prepare_bulk_session()
    for attempt in range(retries + 1):
        try:
            _execute(database, 'SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
            _execute(database, 'START TRANSACTION WITH CONSISTENT SNAPSHOT')
            try:
                result = work()
            except BaseException:
                _rollback(database)
                raise
            _execute(database, 'COMMIT')
            return result
        except _Retry as exc:
            if attempt == retries:
                raise DatabaseError(f'the {database.label} kept reporting lock conflicts ({exc}); run again') from None
            time.sleep(0.05 * (attempt + 1))
    return None  # pragma: no cover


def _rollback(database):
    try:
        _execute(database, 'ROLLBACK')
    except (DatabaseError, _Retry):
        pass


# -- discover_hosts ------------------------------------------------------------------------------

Plan = namedtuple('Plan', 'by_service nodes hosts unsupported')


def plan_discovery(api_db, cell_db, by_service=False):
    """What one cell's discovery would do: candidate hosts in Nova's order, the nodes it loads, or why not direct.

    ``hosts`` are the hosts without a host mapping now (in node id order, one entry per host).
    """
    rows = cell_db.discovery_rows(by_service)
    nodes = [] if by_service else rows
    unsupported = None
    if any(row.get('legacy_numa') for row in nodes):
        unsupported = 'compute nodes with a pre-Stein numa_topology, which nova-manage converts when it loads them'
    ordered = {}
    for row in rows:
        host = row['host']
        if host is None:
            continue
        if not host.isascii():
            unsupported = unsupported or 'non-ASCII host names (compared by the database collation)'
        ordered.setdefault(host_key(host), host)
    hosts = api_db.unmapped_hosts(ordered.values())
    return Plan(by_service, nodes, hosts, unsupported)


def discover(api_db, cell_db, cell_id, plan, ratios, now=None):
    """Map ``plan.hosts`` to cell ``cell_id``; returns the hosts this run mapped, in Nova's order."""
    if plan.unsupported:
        raise DirectUnsupported(plan.unsupported)
    now = now or utcnow()
    if not plan.by_service:
        migrate_allocation_ratios(cell_db, plan.nodes, ratios, now)
    mapped = []
    for chunk in chunks(plan.hosts):
        mapped.extend(_insert_host_mappings(api_db, cell_id, chunk, now))
    if not plan.by_service and mapped:
        first_node = {}
        for node in plan.nodes:
            if node['host'] is not None:
                first_node.setdefault(host_key(node['host']), node['id'])
        ids = [first_node[host_key(host)] for host in mapped]
        for chunk in chunks(ids):
            _execute(cell_db, f'UPDATE compute_nodes SET mapped = 1, updated_at = %s WHERE id IN ({placeholders(len(chunk))})', [now] + chunk)
    return mapped


def _needs_ratio(value):
    return value is None or float(value) == 0.0


def migrate_allocation_ratios(cell_db, nodes, ratios, now):
    """The allocation-ratio defaults nova-manage writes into every node it loads (one UPDATE per 1000 nodes)."""
    ids = [node['id'] for node in nodes if any(_needs_ratio(node.get(option)) for option, _initial in ALLOCATION_RATIOS)]
    if not ids:
        return 0
    assignments = ', '.join(f'{option} = IF({option} IS NULL OR {option} = 0, %s, {option})' for option, _initial in ALLOCATION_RATIOS)
    values = [ratios[option] for option, _initial in ALLOCATION_RATIOS]
    for chunk in chunks(ids):
        _execute(cell_db, f'UPDATE compute_nodes SET {assignments}, updated_at = %s WHERE id IN ({placeholders(len(chunk))})',
                 values + [now] + chunk)
    return len(ids)


def _insert_host_mappings(api_db, cell_id, hosts, now):
    """One transaction: insert what is missing, then read back (own snapshot) which rows this run created."""

    def work():
        existing = api_db.mapped_host_keys(hosts, query=lambda sql, args: _execute(api_db, sql, args, fetch=True))
        wanted = [host for host in hosts if host_key(host) not in existing]
        if not wanted:
            return []
        _count, warnings = _execute(api_db, f'INSERT IGNORE INTO host_mappings (created_at, cell_id, host) VALUES {placeholders(len(wanted), 3)}',
                                    [value for host in wanted for value in (now, cell_id, host)])
        _check_warnings(api_db, warnings, 'inserting host mappings')
        rows = _execute(api_db, f'SELECT host FROM host_mappings WHERE cell_id = %s AND host IN ({placeholders(len(wanted))})',
                        [cell_id] + wanted, fetch=True)
        mine = {host_key(row['host']) for row in rows}
        return [host for host in wanted if host_key(host) in mine]

    return _in_transaction(api_db, work)


# -- map_instances -------------------------------------------------------------------------------

def map_instances(api_db, cell_db, cell_id, instances, now=None):
    """Insert the mappings of ``instances`` (rows of instance_rows), in their order.

    Returns (created, statements). Fails before any write when an instance lacks project_id or user_id,
    which nova-manage cannot map either (it stops with an error at that instance).
    """
    broken = [row['uuid'] for row in instances if not row.get('project_id') or row.get('user_id') is None]
    if broken:
        listed = ', '.join(broken[:10]) + (' ...' if len(broken) > 10 else '')
        raise DatabaseError(f'{len(broken)} instance(s) of the cell have no project_id or user_id, so nova-manage cannot map them '
                            f'either: {listed}')
    now = now or utcnow()
    api_db.prepare_bulk_session()
    created = statements = 0
    for chunk in chunks(instances):
        values = [value for row in chunk for value in (now, row['uuid'], cell_id, row['project_id'], row['user_id'], 0)]
        count, warnings = _retrying(lambda chunk=chunk, values=values: _execute(
            api_db, 'INSERT IGNORE INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, '
                    f'queued_for_delete) VALUES {placeholders(len(chunk), 6)}', values))
        _check_warnings(api_db, warnings, 'inserting instance mappings')
        created += count
        statements += 1
    remove_markers(api_db, cell_db)
    return created, statements


def remove_markers(api_db, cell_db):
    """Delete map_instances marker rows that point into this cell: a run to completion consumes them."""
    markers = api_db.marker_rows()
    if not markers:
        return 0
    uuids = {row['instance_uuid'].replace(' ', '-'): row['id'] for row in markers}
    ids = sorted(uuids[uuid] for uuid in cell_db.existing_instance_uuids(uuids) if uuid in uuids)
    if ids:
        _execute(api_db, f'DELETE FROM instance_mappings WHERE project_id = %s AND id IN ({placeholders(len(ids))})',
                 [MARKER_PROJECT_ID] + ids)
    return len(ids)


def _retrying(action, retries=TRANSACTION_RETRIES):
    for attempt in range(retries + 1):
        try:
            return action()
        except _Retry as exc:
            if attempt == retries:
                raise DatabaseError(f'lock conflicts persisted ({exc}); run again') from None
            time.sleep(0.05 * (attempt + 1))
    return None  # pragma: no cover
