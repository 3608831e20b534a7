#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: db_sync
short_description: Upgrade Nova's API or cell database schema with a true changed
version_added: 0.1.0
description:
  - Runs C(nova-manage api_db sync) (O(database=api)) or C(nova-manage db sync) (O(database=cell)) with O(config_files).
  - C(changed) comes from the schema revision (C(alembic_version)) of each affected database, read before and after.
  - When every affected database is already at the head revision of the Nova installation behind O(nova_manage) (read
    from its installed migrations, without running it), C(nova-manage) does not run at all and C(commands) is empty.
    It runs when a database is behind, has never been synced, or the installed head cannot be read (O(nova_manage) is
    not a local Python script, for example a C(podman exec) command line).
  - C(db sync) migrates the database in C([database]/connection) of O(config_files); without O(local_cell) it first
    migrates cell0 (found through the API database), as nova-manage does. Run it once per cell, each time with config
    files whose C([database]/connection) points at that cell.
  - Map cell0 (M(nova.cells.cell) with O(nova.cells.cell#module:name=cell0)) before the first C(db sync) without
    O(local_cell).
  - With O(databases), syncs several databases in one module run (one process instead of one task per database), the
    API database and every cell database, each with its own config files. Every entry is checked and every revision
    read before anything runs; then C(nova-manage) runs, in the order given, only for the entries whose databases are
    behind.
  - In check mode C(commands) lists the command a real run would run (none when the databases are current). The
    target revision is read from the Nova installation that runs C(nova-manage) when it is a local file;
    otherwise any database that has never been synced is reported as changing and a warning says that the others
    could not be checked.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.state
options:
  database:
    description:
      - V(api) syncs the API database, V(cell) the cell database of O(config_files).
      - Exactly one of O(database) and O(databases) is required.
    type: str
    choices: [api, cell]
  local_cell:
    description:
      - With O(database=cell), do not sync cell0 first (C(--local_cell)).
    type: bool
    default: false
  databases:
    description:
      - Several syncs in one run, in this order, each as with O(database), O(local_cell) and O(config_files). The other
        options apply to every entry.
      - To sync cell0 without looking it up in the API database, give an entry with O(databases[].local_cell=true) and
        config files whose C([database]/connection) is cell0's database.
      - The result's RV(versions) holds every database of every entry; RV(databases) holds each entry's own.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      database:
        description: As O(database).
        type: str
        choices: [api, cell]
        required: true
      local_cell:
        description: As O(local_cell).
        type: bool
        default: false
      config_files:
        description: The config files of this entry (its C([database]/connection)); not set, O(config_files).
        type: list
        elements: path
'''

EXAMPLES = r'''
- name: Sync the API database
  nova.cells.db_sync:
    database: api

- name: Sync cell0 and cell1 (nova.conf points [database] at cell1)
  nova.cells.db_sync:
    database: cell

- name: Sync cell2 with its own config
  nova.cells.db_sync:
    database: cell
    local_cell: true
    config_files: [/etc/nova/nova.conf, /etc/nova/cell2-manage.conf]

- name: Sync the API database, cell0 and two cells in one run (nothing runs when they are current)
  nova.cells.db_sync:
    config_files: [/etc/nova/manage/api.conf]   # [api_database] and, as [database], cell0
    databases:
      - database: api
      - database: cell
        local_cell: true
      - database: cell
        local_cell: true
        config_files: [/etc/nova/manage/cell-cell1.conf]
      - database: cell
        local_cell: true
        config_files: [/etc/nova/manage/cell-cell2.conf]
'''

RETURN = r'''
versions:
  description: Schema revision per database before and after (C(null) means never synced).
  returned: always
  type: dict
  sample: {nova_cell1: {before: null, after: 1acf2c98e646}}
head:
  description: The head revision of the installed Nova's migrations, C(null) when it could not be read.
  returned: with O(database)
  type: str
  sample: 1acf2c98e646
heads:
  description: With O(databases), the head revision of the installed Nova's migrations per kind of database.
  returned: with O(databases)
  type: dict
  version_added: 0.2.0
  sample: {api: b30f573d3377, cell: 13863f4e1612}
databases:
  description:
    - With O(databases), one entry per sync in the order given (up to the failing one when the run fails), with its
      C(database), C(local_cell), C(changed), C(versions) (as RV(versions), this entry's databases) and C(commands).
  returned: with O(databases)
  type: list
  elements: dict
  version_added: 0.2.0
  sample: [{database: api, local_cell: false, changed: false, versions: {nova_api: {before: b30f573d3377, after: b30f573d3377}},
            commands: []}]
commands:
  description: The nova-manage command lines that ran, or would run in check mode; empty when the databases are current.
  returned: always
  type: list
  elements: str
'''

import ast
import functools
import os

from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID, CellDatabase
from ansible_collections.nova.cells.plugins.module_utils._module import DiffTracker, NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._urls import UrlError, validate_db_url

_MIGRATIONS = {'api': ('db', 'api', 'migrations', 'versions'), 'cell': ('db', 'main', 'migrations', 'versions')}


def head_revision(versions_dir):
    """The alembic head of a migrations/versions directory: the revision nobody names as down_revision."""
    revisions, parents = set(), set()
    for filename in os.listdir(versions_dir):
        if not filename.endswith('.py'):
            continue
        with open(os.path.join(versions_dir, filename), encoding='utf-8') as handle:
            tree = ast.parse(handle.read())
        for node in tree.body:
            if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                name = node.targets[0].id
                if name == 'revision' and isinstance(node.value, ast.Constant):
                    revisions.add(node.value.value)
                elif name == 'down_revision' and isinstance(node.value, ast.Constant) and node.value.value:
                    parents.add(node.value.value)
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


# What decide() returns.
CURRENT = 'current'   # every database is at the installed head: nothing to run
BEHIND = 'behind'     # some database is not at the installed head: nova-manage runs
UNKNOWN = 'unknown'   # the installed head is unknown: nova-manage runs (it is the one that knows)


def decide(versions, head):
    """Whether the databases (name: alembic revision or None) need nova-manage, given the installed head."""
    if head is None:
        return UNKNOWN
    return CURRENT if all(version == head for version in versions.values()) else BEHIND


# Prints the directory of the installed nova package without importing it (importing nova runs its
# start-up code).
_NOVA_DIR = 'import importlib.util as u; s = u.find_spec("nova"); print(list(s.submodule_search_locations)[0] if s else "")'


def installed_migrations(run_command, python_argv, database):
    """The alembic versions directory of the Nova installed in ``python_argv`` (the base class's ``nova_python()``), or None."""
    if not python_argv:
        return None
    try:
        rc, stdout, _stderr = run_command([*python_argv, '-c', _NOVA_DIR])
    except OSError:
        return None
    package = (stdout or '').strip().splitlines()[-1:] if rc == 0 else []
    if not package or not package[0]:
        return None
    versions_dir = os.path.join(package[0], *_MIGRATIONS[database])
    return versions_dir if os.path.isdir(versions_dir) else None


class DbSyncModule(NovaCellsModule):
    argument_spec = dict(
        database=dict(type='str', choices=['api', 'cell']),
        local_cell=dict(type='bool', default=False),
        databases=dict(type='list', elements='dict', options=dict(
            database=dict(type='str', choices=['api', 'cell'], required=True),
            local_cell=dict(type='bool', default=False),
            config_files=dict(type='list', elements='path'),
        )),
    )
    module_kwargs = dict(supports_check_mode=True, required_one_of=[('database', 'databases')],
                         mutually_exclusive=[('database', 'databases')])

    def targets(self):
        """The databases this sync touches, in the order nova-manage migrates them."""
        if self.params['database'] == 'api':
            return [self.api_db()]
        url = self.config.database_connection
        if not url:
            raise NovaCellsError(f"[database]/connection is not set in {', '.join(self.params['config_files'])}; db sync migrates that database")
        try:
            validate_db_url(url, '[database]/connection')
        except UrlError as exc:
            raise NovaCellsError(str(exc)) from None
        targets = []
        if not self.params['local_cell']:
            cell0 = [cell for cell in self.api_db().cells() if cell['uuid'] == CELL0_UUID]
            if not cell0:
                self.ansible.warn(f'cell0 is not mapped, so db sync migrates only {CellDatabase(url).name}; '
                                  'map cell0 first (nova.cells.cell name=cell0)')
            else:
                targets.append(self.cell_db(cell0[0]))
        cell_db = CellDatabase(url, self.params['database_connect_timeout'])
        if not any(t.url == cell_db.url for t in targets):
            targets.append(cell_db)
        return targets

    def run(self):
        if self.params['databases'] is not None:
            return self.run_many()
        targets = self.targets()
        before = {db.name: db.schema_version() for db in targets}
        head = self.expected_head()
        result, _tracker = self.sync(targets, before, head)
        return result

    def sync(self, targets, before, head):
        """compare -> nova-manage (only for a database that is behind, or when the head is unknown) -> re-read, for the
        databases ``targets`` of ``self.params``; returns (result, tracker)."""
        command = ('api_db', 'sync') if self.params['database'] == 'api' else ('db', 'sync')
        args = ['--local_cell'] if self.params['database'] == 'cell' and self.params['local_cell'] else []
        decision = decide(before, head)
        tracker = DiffTracker()
        for name, version in before.items():
            # Behind or unknown: nova-manage runs (with the head unknown, it is the one that knows).
            tracker.add(name, version, head, equal=lambda _before, _after: decision == CURRENT)
        ran, after = self.converge(tracker, apply=lambda: self.nova_manage.run(command, args),
                                   reread=lambda: {db.name: db.schema_version() for db in targets},
                                   desired={name: head or version for name, version in before.items()})
        after = after if ran else dict(before)
        changed = after != before
        if self.check_mode and decision == UNKNOWN:
            changed = any(version is None for version in before.values())
            if not changed:
                self.ansible.warn(f"could not find the Nova installation behind {' '.join(self.params['nova_manage'])} to read its "
                                  'schema head; only never-synced databases are reported as changing')
        versions = {name: dict(before=before[name], after=after[name]) for name in before}
        return self.changed_result(tracker, changed, before, after, versions=versions, head=head), tracker

    # -- several databases -------------------------------------------------------------------
    def use_entry(self, params):
        """Make ``params`` (one entry of ``databases`` over the common options) the module's: its own config and
        nova-manage; the connections of earlier entries are kept for close()."""
        if self._api_db is not None:
            self._done_dbs.append(self._api_db)
        if self._nova_manage is not None:
            self._done_commands.extend(self._nova_manage.commands)
        self.params, self._config, self._api_db, self._nova_manage = params, None, None, None

    def run_many(self):
        """``databases``: every entry as with ``database``, in one process.

        Every entry is checked and every revision read first (bad input or an unreachable database changes nothing);
        then each entry syncs in order, running nova-manage only when its databases are behind.
        """
        common = self.params
        self._done_dbs, self._done_commands = [], []
        entries = []
        for index, entry in enumerate(common['databases']):
            params = dict(common, database=entry['database'], local_cell=entry['local_cell'],
                          config_files=entry['config_files'] or common['config_files'], databases=None)
            self.use_entry(params)
            try:
                targets = self.targets()
                before = {db.name: db.schema_version() for db in targets}
            except NovaCellsError as exc:
                raise NovaCellsError(f"databases[{index}] ({entry['database']}): {exc}", **exc.extra) from None
            entries.append((params, targets, before))
        heads = {}
        for database in dict.fromkeys(params['database'] for params, _targets, _before in entries):
            self.use_entry(dict(common, database=database, databases=None))
            heads[database] = self.expected_head()
        results, versions, before_all, after_all = [], {}, {}, {}
        self.result['databases'] = results   # kept as it grows: a failure reports the entries handled before it
        for params, targets, before in entries:
            self.use_entry(params)
            result, tracker = self.sync(targets, before, heads[params['database']])
            commands = list(self._nova_manage.commands) if self._nova_manage is not None else []
            results.append(dict(database=params['database'], local_cell=params['local_cell'], changed=result['changed'],
                                versions=result['versions'], commands=commands))
            versions.update(result['versions'])
            before_all.update(tracker.before)
            after_all.update({name: value['after'] for name, value in result['versions'].items()})
        self.params = common
        outcome = dict(changed=any(entry['changed'] for entry in results), versions=versions, heads=heads, databases=results)
        if self.diff_mode:
            outcome['diff'] = {'before': before_all, 'after': after_all}
        return outcome

    def _commands(self):
        return list(getattr(self, '_done_commands', [])) + super()._commands()

    def close(self):
        for database in getattr(self, '_done_dbs', []):
            database.close()
        super().close()

    def expected_head(self):
        """The head revision of the Nova installation behind nova-manage (found by the base class's ``nova_python()``)."""
        run_command = functools.partial(self.ansible.run_command, handle_exceptions=False)
        versions_dir = installed_migrations(run_command, self.nova_python(), self.params['database'])
        return head_revision(versions_dir) if versions_dir else None


def main():
    DbSyncModule()()


if __name__ == '__main__':
    main()
