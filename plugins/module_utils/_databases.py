# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""PyMySQL access to Nova's API and cell databases: every read query, and named locks.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Reads are plain SELECTs on Nova's own tables, all of them here; the set-based writes of the opt-in
``direct`` engines live in _direct.

Host names are compared as the database compares them (``host_key``): ``host_mappings.host`` has the
``utf8mb3_general_ci`` collation, so ``CMP1`` and ``cmp1`` are the same host to Nova and to this collection.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib

from ansible_collections.nova.cells.plugins.module_utils._urls import db_name, mask_url, pymysql_connect_args

try:
    import pymysql
    import pymysql.cursors
    PYMYSQL_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    pymysql = None
    PYMYSQL_IMPORT_ERROR = exc

CELL0_UUID = '00000000-0000-0000-0000-000000000000'
# map_instances leaves this row in instance_mappings between --max-count batches.
MARKER_PROJECT_ID = 'INSTANCE_MIGRATION_MARKER'
# Rows per IN (...) list or multi-row INSERT.
CHUNK_SIZE = 1000
# GROUP_CONCAT may return a whole cell's uuids in one value.
GROUP_CONCAT_MAX_LEN = 256 * 1024 * 1024


def host_key(host):
    """How MySQL's ``utf8mb3_general_ci`` (PAD SPACE) compares two ASCII host names: the one rule for host names."""
    return host.rstrip(' ').lower()


def chunks(items, size=CHUNK_SIZE):
    items = list(items)
    for start in range(0, len(items), size):
        yield items[start:start + size]


def placeholders(count, width=1):
    """``%s, %s`` for an IN list, or ``(%s, %s), (%s, %s)`` for a multi-row VALUES list of rows ``width`` wide."""
    row = '({})'.format(', '.join(['%s'] * width)) if width > 1 else '%s'
    return ', '.join([row] * count)


class DatabaseError(Exception):
    """A database problem, described without secrets and with what to do next."""


if pymysql is not None:
    class _Connection(pymysql.connections.Connection):
        """PyMySQL's connection, with one TLS context per process for its default PREFERRED mode.

        PyMySQL 1.2 builds a new ``ssl.create_default_context()`` for every connection without TLS options, which loads
        the system CA bundle each time (20-50 ms; a module that reads ten cell databases paid half a second). That context
        never verifies anything (CERT_NONE, no host name check), so one shared context behaves the same.
        """

        _preferred_context = None

        def connect(self, sock=None):
            """Bound the whole handshake by ``connect_timeout``, not only the TCP connect.

            PyMySQL reads the server greeting and the authentication reply with ``read_timeout`` (None: wait forever),
            so a server that accepts connections but does not answer (a frozen or overloaded mariadbd, a dead backend
            behind a proxy) hung the module until Ansible was killed. Queries keep no timeout afterwards: GET_LOCK and
            large reads may legitimately take longer than the connect timeout.
            """
            query_timeouts = (self._read_timeout, self._write_timeout)
            self._read_timeout = self._write_timeout = self.connect_timeout
            try:
                super().connect(sock)
            finally:
                self._read_timeout, self._write_timeout = query_timeouts

        def _create_ssl_ctx(self, sslp):
            if isinstance(sslp, dict) and not sslp:
                if _Connection._preferred_context is None:
                    _Connection._preferred_context = super()._create_ssl_ctx(sslp)
                return _Connection._preferred_context
            return super()._create_ssl_ctx(sslp)


def _require_pymysql():
    if pymysql is None:
        raise DatabaseError('PyMySQL is required on the managed host to read Nova databases: '
                            'install python3-pymysql (Debian/Ubuntu) or "pip install PyMySQL" for the Python that runs the module')


class Database:
    """One connection to one Nova database, opened on first use."""

    role = 'database'

    def __init__(self, url, connect_timeout=10, label=None):
        self.url = url
        self.connect_timeout = connect_timeout
        self.label = label or f'{self.role} {mask_url(url)}'
        self._connection = None

    @property
    def name(self):
        return db_name(self.url)

    def connection(self):
        if self._connection is None:
            _require_pymysql()
            args = pymysql_connect_args(self.url)
            args.update(connect_timeout=self.connect_timeout, autocommit=True,
                        cursorclass=pymysql.cursors.DictCursor)
            try:
                self._connection = _Connection(**args)
            except pymysql.err.OperationalError as exc:
                raise DatabaseError(f'cannot connect to the {self.label}: {_describe(exc)}') from None
            except pymysql.err.MySQLError as exc:
                raise DatabaseError(f'cannot connect to the {self.label}: {exc}') from None
        return self._connection

    def query(self, sql, args=None):
        try:
            with self.connection().cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            raise DatabaseError(f'query on the {self.label} failed: {_describe(exc)}') from None

    def scalar(self, sql, args=None):
        rows = self.query(sql, args)
        if not rows:
            return None
        return next(iter(rows[0].values()))

    def execute(self, sql, args=None, many=False):
        try:
            with self.connection().cursor() as cursor:
                if many:
                    return cursor.executemany(sql, args)
                return cursor.execute(sql, args)
        except pymysql.err.MySQLError as exc:
            raise DatabaseError(f'write on the {self.label} failed: {_describe(exc)}') from None

    def prepare_bulk_session(self):
        """Session settings for bulk statements, once per connection: every warning of a 1,000-row INSERT IGNORE is
        kept (the default keeps 64), and GROUP_CONCAT may return a whole cell's uuids."""
        connection = self.connection()
        if getattr(self, '_bulk_session', None) is not connection:
            self.execute('SET SESSION max_error_count = 65535, group_concat_max_len = %s', (GROUP_CONCAT_MAX_LEN,))
            self._bulk_session = connection

    def value_set(self, table, column, where, args=None):
        """Lower-cased values of ``column``, fetched as one GROUP_CONCAT value when possible.

        PyMySQL decodes rows in pure Python, so 10,000 one-column rows cost more than the query itself; one
        concatenated value does not. If the value comes back cut short (group_concat_max_len, max_allowed_packet),
        the count says so and the rows are read one by one instead.
        """
        self.prepare_bulk_session()
        row = self.query(f'SELECT COUNT(*) AS n, GROUP_CONCAT({column} SEPARATOR \',\') AS v FROM {table} WHERE {where}', args)[0]
        values = row['v'].split(',') if row['v'] else []
        if len(values) != row['n']:
            values = [item[column] for item in self.query(f'SELECT {column} FROM {table} WHERE {where}', args)]
        return {value.lower() for value in values}

    def has_table(self, table):
        return bool(self.query('SHOW TABLES LIKE %s', (table,)))

    def schema_version(self):
        """The alembic revision, or None before the first sync."""
        if not self.has_table('alembic_version'):
            return None
        return self.scalar('SELECT version_num FROM alembic_version')

    def close(self):
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    @contextlib.contextmanager
    def named_lock(self, name, timeout=60):
        """A MySQL named lock held for the block: serialises check-then-create across hosts."""
        lock = 'nova.cells/' + hashlib.sha1(name.encode('utf-8')).hexdigest()[:40]
        if self.scalar('SELECT GET_LOCK(%s, %s) AS got', (lock, timeout)) != 1:
            raise DatabaseError(f'timed out after {timeout}s waiting for the lock on {name} held by another run')
        try:
            yield
        finally:
            with contextlib.suppress(DatabaseError):
                self.scalar('SELECT RELEASE_LOCK(%s) AS released', (lock,))


def _describe(exc):
    code = exc.args[0] if exc.args else None
    text = exc.args[1] if len(exc.args) > 1 else str(exc)
    hints = {
        # MariaDB answers 1044 (not 1049) for a database the user has no grant on, whether it exists or not.
        1044: 'the database does not exist or the user has no privileges on it (GRANT ALL ON <database>.* TO the user)',
        1045: 'wrong user name or password',
        1049: 'the database does not exist',
        2003: 'the server is unreachable',
        2005: 'the host name does not resolve',
        2013: 'the server did not answer in time or dropped the connection',
    }
    hint = hints.get(code)
    return '({}) {}{}'.format(code, text, f' - {hint}' if hint else '')


class ApiDatabase(Database):
    role = 'API database'

    def cells(self):
        rows = self.query('SELECT id, uuid, name, transport_url, database_connection, disabled '
                          'FROM cell_mappings ORDER BY id')
        for row in rows:
            row['disabled'] = bool(row['disabled'])
        return rows

    def host_mappings(self, cell_id=None):
        if cell_id is None:
            return self.query('SELECT host, cell_id FROM host_mappings ORDER BY host')
        return self.query('SELECT host, cell_id FROM host_mappings WHERE cell_id = %s ORDER BY host', (cell_id,))

    def host_mapping(self, host):
        rows = self.query('SELECT h.host, h.cell_id, c.uuid AS cell_uuid, c.name AS cell_name FROM host_mappings h '
                          'JOIN cell_mappings c ON c.id = h.cell_id WHERE h.host = %s', (host,))
        return rows[0] if rows else None

    def mapped_host_keys(self, hosts, query=None):
        """``host_key`` of each of ``hosts`` that has a host mapping, in any cell (chunked, index-backed IN queries).

        ``query(sql, args)`` defaults to this database's ``query``; the direct engine passes its own to read inside
        its transaction.
        """
        run = query or self.query
        found = set()
        for chunk in chunks(hosts):
            rows = run(f'SELECT host FROM host_mappings WHERE host IN ({placeholders(len(chunk))})', chunk)
            found.update(host_key(row['host']) for row in rows)
        return found

    def unmapped_hosts(self, hosts):
        """The ``hosts`` without a host mapping in any cell, in their order, compared as the database compares them."""
        hosts = list(hosts)
        mapped = self.mapped_host_keys(hosts)
        return [host for host in hosts if host_key(host) not in mapped]

    def mapped_instance_uuids(self, instance_uuids):
        """The lower-cased subset of ``instance_uuids`` that have an instance mapping, in any cell."""
        found = set()
        for chunk in chunks(instance_uuids):
            found.update(row['instance_uuid'].lower() for row in self.query(
                f'SELECT instance_uuid FROM instance_mappings WHERE instance_uuid IN ({placeholders(len(chunk))})', chunk))
        return found

    def instance_uuids_of_cell(self, cell_id):
        """Lower-cased uuids of the instance mappings that point at cell ``cell_id``."""
        return self.value_set('instance_mappings', 'instance_uuid', 'cell_id = %s', (cell_id,))

    def marker_rows(self):
        """The map_instances marker rows (``id``, ``instance_uuid``: the uuid of the next instance, dashes as spaces)."""
        return self.query('SELECT id, instance_uuid FROM instance_mappings WHERE project_id = %s', (MARKER_PROJECT_ID,))

    def instance_mapping_counts(self):
        """{cell_id: count} of instance mappings; the map_instances marker row is not counted."""
        rows = self.query('SELECT cell_id, COUNT(*) AS n FROM instance_mappings '
                          'WHERE project_id != %s GROUP BY cell_id', (MARKER_PROJECT_ID,))
        return {row['cell_id']: row['n'] for row in rows}


class CellDatabase(Database):
    role = 'cell database'

    def unmapped_compute_hosts(self):
        """Hosts with compute nodes that discover_hosts would look at (Nova's own predicate)."""
        return sorted(row['host'] for row in self.query(
            'SELECT DISTINCT host FROM compute_nodes WHERE deleted = 0 AND mapped < 1 AND host IS NOT NULL'))

    def compute_service_hosts(self):
        """Hosts of nova-compute services (the by_service view; disabled services included, as Nova does)."""
        return sorted(row['host'] for row in self.query(
            "SELECT DISTINCT host FROM services WHERE `binary` = 'nova-compute' AND deleted = 0 AND host IS NOT NULL"))

    def live_instance_count(self, host=None):
        if host is None:
            return self.scalar('SELECT COUNT(*) AS n FROM instances WHERE deleted = 0')
        return self.scalar('SELECT COUNT(*) AS n FROM instances WHERE deleted = 0 AND host = %s', (host,))

    def live_instances(self, limit=20):
        """Up to ``limit`` live instances as (uuid, display_name), oldest first."""
        return [(row['uuid'], row['display_name']) for row in self.query(
            'SELECT uuid, display_name FROM instances WHERE deleted = 0 ORDER BY id LIMIT %s', (int(limit),))]

    def discovery_rows(self, by_service=False):
        """What ``discover_hosts`` loads, in its order: unmapped compute nodes (with the columns the direct engine
        needs), or with ``by_service`` the nova-compute services."""
        if by_service:
            return self.query("SELECT id, host FROM services WHERE `binary` = 'nova-compute' AND deleted = 0 "
                              "AND host IS NOT NULL ORDER BY id")
        return self.query(
            "SELECT id, host, cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, "
            "(numa_topology IS NOT NULL AND numa_topology != '' AND numa_topology NOT LIKE %s) AS legacy_numa "
            "FROM compute_nodes WHERE mapped < 1 AND deleted = 0 ORDER BY id", ('%nova_object.name%',))

    def has_hidden_column(self):
        """Whether ``instances.hidden`` exists (cross-cell resize copies, Train and later)."""
        return bool(self.query("SHOW COLUMNS FROM instances LIKE 'hidden'"))

    def mappable_instance_uuids(self, hidden_column=True):
        """Lower-cased uuids of the instances nova-manage maps: deleted ones included, hidden ones not."""
        return self.value_set('instances', 'uuid', _visible(hidden_column))

    def instance_rows(self, uuids, hidden_column=True):
        """The rows (INSTANCE_COLUMNS) of ``uuids``, oldest first as nova-manage walks them (created_at, then id).

        A large share of the cell is read with one ordered scan; a few instances by chunked IN queries.
        """
        where = _visible(hidden_column)
        total = self.query(f'SELECT COUNT(*) AS n FROM instances WHERE {where}')[0]['n']
        if len(uuids) * 4 >= total:
            return [row for row in self.query(f'SELECT {INSTANCE_COLUMNS} FROM instances WHERE {where} ORDER BY created_at, id')
                    if row['uuid'].lower() in uuids]
        rows = []
        for chunk in chunks(sorted(uuids)):
            rows.extend(self.query(f'SELECT {INSTANCE_COLUMNS} FROM instances WHERE uuid IN ({placeholders(len(chunk))})', chunk))
        # MySQL sorts NULL first in ascending order.
        rows.sort(key=lambda row: (row['created_at'] is not None, row['created_at'] or datetime.datetime.min, row['id']))
        return rows

    def existing_instance_uuids(self, uuids):
        """The subset of ``uuids`` (as stored) that are instances of this cell."""
        uuids = list(uuids)
        if not uuids:
            return set()
        return {row['uuid'] for row in self.query(f'SELECT uuid FROM instances WHERE uuid IN ({placeholders(len(uuids))})', uuids)}


INSTANCE_COLUMNS = 'id, uuid, project_id, user_id, created_at'


def _visible(hidden_column):
    return '(hidden = 0 OR hidden IS NULL)' if hidden_column else '1 = 1'


def unmapped_instance_uuids(api_db, cell_db, cell_id, hidden_column=True):
    """Uuids of the cell's instances nova-manage would map (deleted included, hidden not) that have no mapping in any cell.

    Any mapping counts, whatever its cell: nova-manage skips those too (it never updates a mapping). Two queries when
    every instance is mapped to this cell (the usual case): the cell's uuids and the uuids mapped to this cell; the
    rest is looked up by chunked, index-backed IN queries.
    """
    instances = cell_db.mappable_instance_uuids(hidden_column)
    if not instances:
        return set()
    rest = instances - api_db.instance_uuids_of_cell(cell_id)
    return rest - api_db.mapped_instance_uuids(sorted(rest))
