# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""PyMySQL access to Nova's API and cell databases: state queries and named locks.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Reads are plain SELECTs on Nova's own tables; writes happen only in the opt-in ``direct`` engines.
"""

from __future__ import annotations

import contextlib
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
                            'install python3-pymysql (Debian/Ubuntu) or "pip install PyMySQL" for %s'
                            % 'the Python that runs the module')


class Database:
    """One connection to one Nova database, opened on first use."""

    role = 'database'

    def __init__(self, url, connect_timeout=10, label=None):
        self.url = url
        self.connect_timeout = connect_timeout
        self.label = label or '%s %s' % (self.role, mask_url(url))
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
                raise DatabaseError('cannot connect to the %s: %s' % (self.label, _describe(exc))) from None
            except pymysql.err.MySQLError as exc:
                raise DatabaseError('cannot connect to the %s: %s' % (self.label, exc)) from None
        return self._connection

    def query(self, sql, args=None):
        try:
            with self.connection().cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        except pymysql.err.MySQLError as exc:
            raise DatabaseError('query on the %s failed: %s' % (self.label, _describe(exc))) from None

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
            raise DatabaseError('write on the %s failed: %s' % (self.label, _describe(exc))) from None

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
            raise DatabaseError('timed out after %ss waiting for the lock on %s held by another run' % (timeout, name))
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
    return '(%s) %s%s' % (code, text, ' - %s' % hint if hint else '')


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

    def _existing(self, table, column, values, chunk_size=1000):
        """The subset of ``values`` present in ``table.column`` (chunked IN queries, index-backed)."""
        values = list(values)
        found = set()
        for start in range(0, len(values), chunk_size):
            chunk = values[start:start + chunk_size]
            placeholders = ', '.join(['%s'] * len(chunk))
            found.update(row[column] for row in self.query(
                'SELECT %s FROM %s WHERE %s IN (%s)' % (column, table, column, placeholders), chunk))
        return found

    def mapped_hosts(self, hosts):
        """The subset of ``hosts`` that already have a host mapping (in any cell)."""
        return self._existing('host_mappings', 'host', hosts)

    def mapped_instances(self, instance_uuids):
        """The subset of ``instance_uuids`` that already have an instance mapping (in any cell)."""
        return self._existing('instance_mappings', 'instance_uuid', instance_uuids)

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

    def instance_uuids(self):
        """Every instance uuid, deleted ones included (map_instances maps those too)."""
        return {row['uuid'] for row in self.query('SELECT uuid FROM instances')}
