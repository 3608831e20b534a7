# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Upgrade and housekeeping commands: online data migrations, nova-status, archive and purge.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

Exit-code tables (Nova 34, nova/cmd/manage.py and nova/cmd/status.py), the parsers of the tables these
commands print, the argument builders and the decisions the modules take from them (pure, unit-tested).
"""

from __future__ import annotations

import copy
import datetime
import re

from ansible_collections.nova.cells.plugins.module_utils._nova_manage import (
    ERROR,
    EXIT_CODES,
    MORE,
    NOOP,
    OK,
    NovaManage,
)
from ansible_collections.nova.cells.plugins.module_utils._urls import mask_url

# nova-status results (oslo.upgradecheck Code): its exit code is the worst result of all checks.
WARNING = 'warning'
FAILURE = 'failure'

HOUSEKEEPING_EXIT_CODES = {
    # rc 1 only with --max-count: this batch migrated rows, run again. rc 2: migrations raised and nothing
    # progressed (with --max-count) or the loop ended with errors (without). 127: bad --max-count.
    ('db', 'online_data_migrations'): {
        0: (OK, ''),
        1: (MORE, ''),
        2: (ERROR, 'some online data migrations of {target} failed and none made progress: {output} The exception is '
                   'in the nova-manage log (stderr); fix its cause and run the task again.'),
        127: (ERROR, 'nova-manage rejected max_count for {target}: {output}'),
    },
    # 0 nothing archived, 1 something archived; the others are refusals before any write.
    ('db', 'archive_deleted_rows'): {
        0: (NOOP, ''),
        1: (OK, ''),
        2: (ERROR, 'nova-manage rejected max_rows: {output}'),
        3: (ERROR, 'nova-manage could not reach the API database, so nothing was archived: {output} '
                   'Check [api_database]/connection in config_files.'),
        4: (ERROR, 'nova-manage rejected the date of before: {output}'),
    },
    # 0 rows purged, 3 nothing to purge; 1, 2, 4 are refusals before any write.
    ('db', 'purge'): {
        0: (OK, ''),
        1: (ERROR, 'nova-manage db purge needs --before or --all (internal error): {output}'),
        2: (ERROR, 'nova-manage rejected the date of before: {output}'),
        3: (NOOP, ''),
        4: (ERROR, 'nova-manage could not read the cell list from the API database: {output} '
                   'Check [api_database]/connection in config_files.'),
    },
    # nova-status upgrade check: the worst result of every check; 255 is a crash.
    ('upgrade', 'check'): {
        0: (OK, ''),
        1: (WARNING, ''),
        2: (FAILURE, ''),
    },
}


def register_exit_codes(table=None):
    """Add the housekeeping tables to the shared nova-manage exit-code table (idempotent)."""
    from ansible_collections.nova.cells.plugins.module_utils._nova_manage import Outcome

    for command, codes in (table or HOUSEKEEPING_EXIT_CODES).items():
        EXIT_CODES[command] = {rc: Outcome(status, message) for rc, (status, message) in codes.items()}


register_exit_codes()


class CellNovaManage(NovaManage):
    """NovaManage that points ``[database]/connection`` at one cell through the environment.

    oslo.config prefers ``OS_DATABASE__CONNECTION`` to the config files, so one API-level config serves every
    cell and the password never appears on the command line. The recorded command shows the URL masked.
    """

    def __init__(self, *args, database_connection=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.database_connection = database_connection

    def environment(self):
        env = super().environment()
        if self.database_connection:
            env['OS_DATABASE__CONNECTION'] = self.database_connection
        return env

    def masked(self, argv):
        line = super().masked(argv)
        if self.database_connection:
            line = f'OS_DATABASE__CONNECTION={mask_url(self.database_connection)} {line}'
        return line


# -- dates -------------------------------------------------------------------------------------------------
_DATE = re.compile(r'^\d{4}-\d{2}-\d{2}([ T]\d{2}:\d{2}(:\d{2})?)?$')


def parse_before(value):
    """A ``before`` option (``YYYY-MM-DD [HH:MM[:SS]]``) as a datetime, or ValueError with a clear message.

    nova-manage parses dates fuzzily (``dateutil``); the modules accept only the unambiguous ISO forms so
    that a typo is refused before anything runs instead of being read as some other date.
    """
    text = (value or '').strip()
    if not _DATE.match(text):
        raise ValueError(f'before must be a date as YYYY-MM-DD or YYYY-MM-DD HH:MM[:SS], not {value!r}')
    try:
        return datetime.datetime.fromisoformat(text.replace('T', ' '))
    except ValueError as exc:
        raise ValueError(f'before {value!r} is not a valid date: {exc}') from None


# -- tables ------------------------------------------------------------------------------------------------
def _table_rows(text):
    """The data rows of a PrettyTable (lines starting with '|'), header excluded, as lists of stripped cells."""
    rows = []
    for line in (text or '').splitlines():
        line = line.strip()
        if line.startswith('|') and line.endswith('|'):
            rows.append([cell.strip() for cell in line[1:-1].split('|')])
    return rows[1:]


def _int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def parse_migrations(stdout):
    """``Migration | Total Needed | Completed`` → {name: {'found': n, 'done': m}}.

    Both numbers are of this run; ``found`` counts candidate rows (up to --max-count), ``done`` migrated rows.
    """
    return {row[0]: dict(found=_int(row[1]), done=_int(row[2])) for row in _table_rows(stdout) if len(row) == 3 and row[0]}


_MIGRATION_ERROR = re.compile(r'^Error attempting to run (.+)$')


def migration_errors(stdout):
    """The migrations that raised (``Error attempting to run <function name at 0x...>``), by name."""
    errors = []
    for line in (stdout or '').splitlines():
        match = _MIGRATION_ERROR.match(line.strip())
        if match:
            words = match.group(1).split()
            if words[:2] == ['<bound', 'method'] and len(words) > 2:
                name = words[2]
            elif words[0] == '<function' and len(words) > 1:
                name = words[1]
            else:
                name = match.group(1)
            errors.append(name.split('.')[-1])
    return errors


def add_batch(totals, batch):
    """Accumulate one batch of parse_migrations into totals ({name: {'done': n, 'remaining': m}})."""
    for name, counts in batch.items():
        entry = totals.setdefault(name, dict(done=0, remaining=0))
        entry['done'] += counts['done']
        entry['remaining'] = max(counts['found'] - counts['done'], 0)
    return totals


def parse_archive(stdout):
    """``Table | Number of Rows Archived`` → {table: rows}; table is ``cell.table`` with --all-cells, ``API_DB.x``
    for the API database rows of deleted instances."""
    return {row[0]: _int(row[1]) for row in _table_rows(stdout) if len(row) == 2 and row[0]}


_PURGED = re.compile(r'^(?P<who>.+?): Deleted (?P<rows>\d+) rows from (?P<table>\S+) based on timestamp column')


def parse_purge(stdout):
    """The ``--verbose`` lines of ``db purge`` → {'<cell or DB>.<shadow table>': rows}."""
    purged = {}
    for line in (stdout or '').splitlines():
        match = _PURGED.match(line.strip())
        if match:
            who = match.group('who')
            who = who[len('Cell '):] if who.startswith('Cell ') else who
            purged['{}.{}'.format(who, match.group('table'))] = int(match.group('rows'))
    return purged


_STATUS_FIELD = re.compile(r'^(Check|Result|Details):\s?(.*)$')
RESULTS = {'Success': 'success', 'Warning': 'warning', 'Failure': 'failure'}
SEVERITY = {'success': 0, 'warning': 1, 'failure': 2}


def parse_status(stdout):
    """The ``nova-status upgrade check`` table → [{'check', 'result', 'details'}] in Nova's order.

    Each check is a block of ``Check: <name>`` / ``Result: Success|Warning|Failure`` / ``Details: <text>``
    (wrapped at 60 characters with indented continuation lines; ``None`` for no details).
    """
    checks, current, field = [], None, None
    for line in (stdout or '').splitlines():
        line = line.strip()
        if not (line.startswith('|') and line.endswith('|')):
            continue
        cell = line[1:-1].strip()
        match = _STATUS_FIELD.match(cell)
        if match:
            field, value = match.group(1).lower(), match.group(2).strip()
            if field == 'check':
                current = dict(check=value, result=None, details=None)
                checks.append(current)
            elif current is not None and field == 'result':
                current['result'] = RESULTS.get(value, value.lower())
            elif current is not None and field == 'details':
                current['details'] = None if value == 'None' else value
        elif current is not None and field == 'details' and cell:
            current['details'] = ('{} {}'.format(current['details'] or '', cell)).strip()
    return checks


def status_problems(checks, fail_on):
    """The checks that make the module fail: fail_on ``failure`` (failures), ``warning`` (both), ``never``."""
    if fail_on == 'never':
        return []
    threshold = SEVERITY['warning'] if fail_on == 'warning' else SEVERITY['failure']
    return [check for check in checks if SEVERITY.get(check['result'], SEVERITY['failure']) >= threshold]


def summarize_status(checks):
    counts = dict(success=0, warning=0, failure=0)
    for check in checks:
        counts[check['result'] if check['result'] in counts else 'failure'] += 1
    return counts


# -- arguments ---------------------------------------------------------------------------------------------
def migration_args(max_count):
    return ['--max-count', str(max_count)]


def archive_args(all_cells=True, until_complete=True, before=None, max_rows=1000, purge=False, task_log=False):
    args = ['--verbose', '--max_rows', str(max_rows)]
    if all_cells:
        args.append('--all-cells')
    if until_complete:
        args.append('--until-complete')
    if before:
        args.extend(['--before', before])
    if task_log:
        args.append('--task-log')
    if purge:
        args.append('--purge')
    return args


def purge_args(purge_all=False, before=None, all_cells=True):
    args = ['--verbose']
    if purge_all:
        args.append('--all')
    if before:
        args.extend(['--before', before])
    if all_cells:
        args.append('--all-cells')
    return args


# -- what would change (check mode), from the database -------------------------------------------------------
# Shadow tables whose purge age is not deleted_at (nova/db/main/api.py purge_shadow_tables).
PURGE_AGE_COLUMNS = {
    'shadow_instance_actions': 'created_at',
    'shadow_instance_actions_events': 'created_at',
    'shadow_task_log': 'updated_at',
}


def _columns(database, table):
    rows = database.query('SELECT column_name AS c FROM information_schema.columns '
                          'WHERE table_schema = DATABASE() AND table_name = %s', (table,))
    return {str(row['c']).lower() for row in rows}


def _shadow_tables(database):
    rows = database.query("SELECT table_name AS t FROM information_schema.tables "
                          "WHERE table_schema = DATABASE() AND table_name LIKE 'shadow\\_%'")
    return sorted(str(row['t']) for row in rows)


def archivable_rows(database, before=None, task_log=False):
    """Soft-deleted rows archive_deleted_rows would move, per table (an estimate for check mode).

    A row is archivable when its table has a shadow table and ``deleted != 0`` (with ``before``:
    ``deleted_at < before``); ``task_log`` rows only with ``task_log`` (by ``updated_at``), as Nova does.
    """
    counts = {}
    for shadow in _shadow_tables(database):
        table = shadow[len('shadow_'):]
        columns = _columns(database, table)
        if not columns:
            continue
        if table == 'task_log':
            if not task_log:
                continue
            where, args = ('updated_at < %s', (before,)) if before else ('1 = 1', ())
        elif 'deleted' not in columns:
            continue
        else:
            where, args = 'deleted != 0', ()
            if before and 'deleted_at' in columns:
                where, args = 'deleted != 0 AND deleted_at < %s', (before,)
        count = database.scalar(f'SELECT COUNT(*) FROM `{table}` WHERE {where}', args or None)
        if count:
            counts[table] = int(count)
    return counts


def purgeable_rows(database, before=None):
    """Rows db purge would delete from the shadow tables (check mode), by Nova's age column per table."""
    counts = {}
    for shadow in _shadow_tables(database):
        if before is None:
            where, args = '1 = 1', ()
        else:
            columns = _columns(database, shadow)
            column = PURGE_AGE_COLUMNS.get(shadow) or next(
                (name for name in ('deleted_at', 'updated_at', 'created_at') if name in columns), None)
            if column is None:
                continue
            where, args = f'`{column}` < %s', (before,)
        count = database.scalar(f'SELECT COUNT(*) FROM `{shadow}` WHERE {where}', args or None)
        if count:
            counts[shadow] = int(count)
    return counts


def with_database(runner, database_connection):
    """A runner like ``runner`` (same program, configs, secrets, check mode and command record) whose nova-manage
    works on ``database_connection`` as its ``[database]/connection``."""
    cell_runner = copy.copy(runner)
    cell_runner.__class__ = CellNovaManage
    cell_runner.database_connection = database_connection
    return cell_runner


def select_cells(cells, names):
    """The cells to work on, by exact name, in the API database's order; every cell when ``names`` is None.

    Unknown and duplicate names are refused (ValueError) with the known names, before anything runs.
    """
    if names is None:
        return list(cells)
    known = [cell['name'] for cell in cells]
    unknown = [name for name in names if name not in known]
    if unknown:
        unknown_names = ', '.join(repr(name) for name in unknown)
        known_names = ', '.join(repr(name) for name in known) or 'none'
        raise ValueError(f'no cell named {unknown_names} (known cells: {known_names}); cells are matched by exact name')
    duplicates = sorted({name for name in names if known.count(name) > 1})
    if duplicates:
        duplicate_names = ', '.join(repr(name) for name in duplicates)
        raise ValueError(f'cell name(s) {duplicate_names} are used by more than one cell mapping; rename or delete the duplicates first')
    wanted = set(names)
    return [cell for cell in cells if cell['name'] in wanted]
