# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Run the real nova-manage: argv building, fail-fast settings, exit-code tables, masked commands.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
from collections import namedtuple

from ansible_collections.nova.cells.plugins.module_utils._urls import mask_text, mask_url

# What an exit code means for the caller.
OK = 'ok'            # the command did what was asked
NOOP = 'noop'        # nothing to do (e.g. discover_hosts --strict found no new host)
MORE = 'more'        # a batch finished and more remain (map_instances --max-count)
RETRY = 'retry'      # a collision that is safe to retry (parallel discover_hosts)
ABSENT = 'absent'    # the object is already gone (idempotent absent)
ERROR = 'error'

Outcome = namedtuple('Outcome', 'status message')

# One table per command (nova 34: the return codes in nova/cmd/manage.py). Messages are format strings over the
# context the caller passes (cell, uuid, host) plus {output}; they say what to do next.
EXIT_CODES = {
    ('cell_v2', 'map_cell0'): {
        0: Outcome(OK, ''),
    },
    ('cell_v2', 'create_cell'): {
        0: Outcome(OK, ''),
        1: Outcome(ERROR, 'nova-manage rejected a URL of cell {cell!r}: {output}. Check transport_url and database_connection.'),
        2: Outcome(ERROR, 'cannot create cell {cell!r}: {output} Two cells may not share a transport URL or a database; '
                          'give this cell its own message-queue vhost and database, or manage the other cell by its name.'),
    },
    ('cell_v2', 'update_cell'): {
        0: Outcome(OK, ''),
        1: Outcome(ERROR, 'cell {cell!r} ({uuid}) was not found by nova-manage: {output}'),
        2: Outcome(ERROR, 'nova-manage could not save cell {cell!r} ({uuid}): {output}'),
        3: Outcome(ERROR, 'cannot update cell {cell!r} ({uuid}): {output} Two cells may not share a transport URL or a database.'),
        4: Outcome(ERROR, 'nova-manage was asked to enable and disable cell {cell!r} at once (internal error): {output}'),
        5: Outcome(ERROR, 'cell0 cannot be enabled or disabled: {output}'),
    },
    ('cell_v2', 'delete_cell'): {
        0: Outcome(OK, ''),
        1: Outcome(ABSENT, ''),
        2: Outcome(ERROR, 'cell {cell!r} ({uuid}) still has hosts mapped: {output} Move or remove the hosts '
                          '(nova.cells.host state=absent), or set force=true to delete their host mappings with the cell.'),
        3: Outcome(ERROR, 'cell {cell!r} ({uuid}) still has live instances: {output} Delete or migrate them first; '
                          'force does not override this.'),
        4: Outcome(ERROR, 'cell {cell!r} ({uuid}) has mappings of deleted instances only: {output} Run '
                          "'nova-manage db archive_deleted_rows' or set force=true to delete those mappings with the cell."),
    },
    ('cell_v2', 'discover_hosts'): {  # always called with --strict
        0: Outcome(OK, ''),
        1: Outcome(NOOP, ''),
        2: Outcome(RETRY, 'another discover_hosts ran at the same time: {output}'),
    },
    ('cell_v2', 'delete_host'): {
        0: Outcome(OK, ''),
        1: Outcome(ERROR, 'cell {cell!r} ({uuid}) was not found by nova-manage: {output}'),
        2: Outcome(ABSENT, ''),
        3: Outcome(ERROR, 'host {host!r} is mapped to another cell, not to {cell!r}: {output} Name the cell it is mapped to.'),
        4: Outcome(ERROR, 'host {host!r} still has instances: {output} Migrate or delete them, then remove the host.'),
    },
    ('cell_v2', 'map_instances'): {
        0: Outcome(OK, ''),
        1: Outcome(MORE, ''),
        127: Outcome(ERROR, 'nova-manage rejected max_count: {output}'),
    },
    ('cell_v2', 'list_cells'): {
        0: Outcome(OK, ''),
    },
    ('api_db', 'sync'): {
        0: Outcome(OK, ''),
    },
    ('db', 'sync'): {
        0: Outcome(OK, ''),
        1: Outcome(ERROR, 'nova-manage db sync could not access cell0: {output} Map cell0 (nova.cells.cell name=cell0) '
                          'with a reachable database first.'),
    },
    ('api_db', 'version'): {0: Outcome(OK, '')},
    ('db', 'version'): {0: Outcome(OK, '')},
}

CRASH_RC = 255
# oslo.config reads OS_<GROUP>__<OPTION> from the environment and prefers it to config files,
# so no temporary overlay file is needed (and none that a containerised nova-manage cannot see).
FAIL_FAST_ENVIRONMENT = {'OS_DATABASE__MAX_RETRIES': '0', 'OS_API_DATABASE__MAX_RETRIES': '0'}
# Log records must not mix with the command's own output on stdout.
BASE_ENVIRONMENT = {'OS_DEFAULT__USE_STDERR': 'true'}


class NovaManageError(Exception):
    """nova-manage failed; the message is already masked."""

    def __init__(self, message, result=None):
        super().__init__(message)
        self.result = result


class Result(namedtuple('Result', 'command rc stdout stderr outcome')):
    @property
    def status(self):
        return self.outcome.status

    @property
    def lines(self):
        return [line for line in self.stdout.splitlines() if line.strip()]


def interpret(command, rc, output, context=None):
    """Map an exit code to an Outcome with a filled-in message (pure, unit-tested)."""
    table = EXIT_CODES[command]
    context = dict(context or {})
    context['output'] = _summary(output)
    if rc in table:
        outcome = table[rc]
        return Outcome(outcome.status, outcome.message.format(**context) if outcome.message else '')
    if rc == CRASH_RC:
        exception = _final_exception(output)
        if exception is None:
            return Outcome(ERROR, 'nova-manage {} failed with an unhandled error (rc 255): {}'.format(' '.join(command), context['output']))
        hint = ' The database went away during the command: check the database server, then run the task again.' if (
            'DBConnectionError' in exception) else ''
        return Outcome(ERROR, f'nova-manage {" ".join(command)} failed with an unhandled error (rc 255): {exception}{hint} '
                              '(the whole traceback is in stdout)')
    return Outcome(ERROR, f'nova-manage {" ".join(command)} exited with unexpected rc {rc}: {context["output"]}')


def _final_exception(output):
    """The line naming the exception that ended a Python traceback in ``output``, or None without a traceback.

    Tail summaries of a crash were traceback frames and, for database errors, a whole SQL statement; the
    exception line (``oslo_db.exception.DBConnectionError: (pymysql.err.OperationalError) (2013, ...)``) is
    the first unindented line after the last frame.
    """
    lines = (output or '').splitlines()
    frames = [index for index, line in enumerate(lines) if line.startswith('  File "')]
    if not frames or not any(line.startswith('Traceback (most recent call last):') for line in lines):
        return None
    for line in lines[frames[-1] + 1:]:
        if line.strip() and not line[0].isspace():
            return line.strip()
    return None


def _summary(output, max_lines=12):
    """The informative tail of nova-manage's stdout (tracebacks end with the exception)."""
    lines = [line.rstrip() for line in (output or '').splitlines() if line.strip()]
    if not lines:
        return '(no output)'
    if len(lines) > max_lines:
        lines = ['...'] + lines[-max_lines:]
    return ' '.join(lines) if len(lines) <= 2 else '\n'.join(lines)


_SHELL_SAFE = re.compile(r'[\w@%+=:,./*-]+')


def _quote(part):
    """shlex.quote, except that a mask ('****') alone does not force quotes (the line is for reading)."""
    return part if _SHELL_SAFE.fullmatch(part) else shlex.quote(part)


def missing_command_message(program):
    """Why ``program`` (nova_manage[0]) cannot run, naming the option and what to do."""
    if os.sep in program and os.path.isdir(program):
        return ('nova_manage {} is a directory, not a command; set nova_manage to the nova-manage program, '
                'e.g. [{}]'.format(program, os.path.join(program, 'nova-manage')))
    if os.sep in program and os.path.exists(program):
        return (f'nova_manage {program} is not executable; make it executable (chmod +x) or set nova_manage to the '
                'nova-manage command on this host')
    return (f'nova_manage {program}: command not found; set nova_manage to the nova-manage command on this host, '
            'e.g. [/opt/nova/bin/nova-manage]')


class NovaManage:
    """Builds and runs nova-manage command lines for one module run and records them (masked)."""

    def __init__(self, run_command, prefix, config_files, fail_fast=True, secrets=None, check_mode=False):
        self._run_command = run_command
        self.prefix = list(prefix)
        self.config_files = list(config_files)
        self.fail_fast = fail_fast
        self._secrets = secrets if secrets is not None else set()
        self.check_mode = check_mode
        self.commands = []

    def argv(self, command, args=()):
        argv = list(self.prefix)
        for path in self.config_files:
            argv.extend(['--config-file', path])
        argv.extend(command)
        argv.extend(args)
        return argv

    def masked(self, argv):
        # Mask each argument BEFORE quoting: quoting a password with an apostrophe splits it.
        return ' '.join(_quote(mask_text(mask_url(part), self._secrets)) for part in argv)

    def environment(self):
        env = dict(BASE_ENVIRONMENT)
        if self.fail_fast:
            env.update(FAIL_FAST_ENVIRONMENT)
        return env

    def run(self, command, args=(), context=None, changes_state=True):
        """Run (or, in check mode, only record) one command and interpret its exit code.

        Returns a Result; returns None in check mode for state-changing commands. Raises
        NovaManageError for outcomes with status ERROR.
        """
        command = tuple(command)
        argv = self.argv(command, args)
        masked = self.masked(argv)
        self.commands.append(masked)
        if self.check_mode and changes_state:
            return None
        if shutil.which(self.prefix[0]) is None:
            raise NovaManageError(missing_command_message(self.prefix[0]))
        rc, stdout, stderr = self._run_command(argv, environ_update=self.environment())
        stdout = mask_text(stdout, self._secrets)
        stderr = mask_text(stderr, self._secrets)
        outcome = interpret(command, rc, stdout, context)
        result = Result(masked, rc, stdout, stderr, outcome)
        if outcome.status == ERROR:
            raise NovaManageError(f'{outcome.message}\ncommand: {masked}', result)
        return result
