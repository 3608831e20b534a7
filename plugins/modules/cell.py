#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cell
short_description: Manage Nova cells v2 cell mappings by exact name
version_added: 0.1.0
description:
  - Creates, updates, enables, disables and deletes one cell mapping through the real C(nova-manage cell_v2) commands
    (C(map_cell0), C(create_cell), C(update_cell), C(delete_cell)).
  - With O(cells), creates or updates several cell mappings in one module run (one process and one read of
    C(cell_mappings) when nothing is to do, instead of one task per cell); every cell is handled as with O(name).
  - The cell is addressed by its exact O(name). Nova does not keep cell names unique; this module does, and fails when
    the name is already used by more than one cell mapping, listing their uuids.
  - State is read directly from the API database (C(cell_mappings)), so template URLs are compared as templates,
    exactly as stored, and C(changed) is true only when something was really different.
  - Creation holds a MySQL named lock on the API database, so several runs creating the same cell at once yield one
    mapping.
  - URLs may be L(templates,https://docs.openstack.org/nova/latest/admin/cells.html#template-urls-in-cell-mappings)
    (C({scheme}), C({username}), C({password}), C({hostname}), C({port}), C({path}), C({query}), C({fragment}), and the
    numbered C({hostname1}), C({port1}), ... of multi-host URLs). Every Nova host renders them against its own
    C([database]/connection) and C([DEFAULT]/transport_url); the module validates a template by rendering it the same way
    against O(config_files).
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.state
options:
  name:
    description:
      - The exact name of the cell. V(cell0) manages cell0 (uuid C(00000000-0000-0000-0000-000000000000)) through
        C(map_cell0).
      - With O(uuid), the cell with that uuid is renamed to O(name) if needed.
      - Exactly one of O(name) and O(cells) is required.
    type: str
  cells:
    description:
      - Several cells to create or update (O(state=present) only), in this order, each as with O(name), O(uuid),
        O(database_connection), O(transport_url) and O(disabled). The other options apply to every cell.
      - Every entry is validated before anything changes. The mappings are read once; only cells that need a change
        take the named lock, read their mapping again under it and run C(nova-manage).
      - The result lists every cell in RV(cells), in this order; a failure stops at that cell and reports the cells
        handled before it.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      name:
        description: The exact name of the cell (V(cell0) maps cell0).
        type: str
        required: true
      uuid:
        description: Address the cell by uuid, as O(uuid).
        type: str
      database_connection:
        description: As O(database_connection).
        type: str
      transport_url:
        description: As O(transport_url).
        type: str
      disabled:
        description: As O(disabled); omitted or V(null) keeps the current flag.
        type: bool
  uuid:
    description:
      - Address the cell by uuid instead of by name, for example to rename it or to remove one of several cells that
        share a name.
    type: str
  state:
    description:
      - V(present) creates the cell or updates drifted URLs, name or disabled flag.
      - V(absent) deletes it with C(nova-manage cell_v2 delete_cell). Not with O(cells), which only creates and updates;
        cells are deleted one at a time.
    type: str
    choices: [present, absent]
    default: present
  database_connection:
    description:
      - The cell database URL, for example C(mysql+pymysql://nova:PASSWORD@db1/nova_cell1), or a template.
      - Required to create a cell. When omitted for an existing cell, its stored value is kept (and passed to
        C(update_cell) explicitly, because C(update_cell) would otherwise replace it with the local config's value).
    type: str
  transport_url:
    description:
      - The cell message queue URL, for example C(rabbit://nova:PASSWORD@mq1:5672/cell1), or a template.
      - Required to create a regular cell. cell0 always uses C(none:///); any other value for cell0 is an error.
    type: str
  disabled:
    description:
      - V(true) disables the cell for scheduling (maintenance), V(false) enables it. Omit to keep the current flag;
        new cells are created enabled unless V(true).
      - Disabling cell0 is an error. nova-scheduler sees the change after a SIGHUP or restart.
    type: bool
  force:
    description:
      - With O(state=absent), also delete the cell's host mappings and the mappings of deleted instances
        (C(delete_cell --force)). Cells with live instances are never deleted.
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for the named lock that serialises concurrent runs on the same cell.
    type: int
    default: 60
notes:
  - After a cell is created, renamed, disabled or enabled, send nova-scheduler a SIGHUP; after URL changes restart the
    API, conductor and scheduler services (the returned RV(restart_required) says which).
seealso:
  - module: nova.cells.cell_info
  - module: nova.cells.discover_hosts
'''

EXAMPLES = r'''
- name: Map cell0
  nova.cells.cell:
    name: cell0
    database_connection: "mysql+pymysql://nova:{{ nova_db_password }}@db1/nova_cell0"

- name: Create or update cell1
  nova.cells.cell:
    name: cell1
    database_connection: "mysql+pymysql://nova:{{ nova_db_password }}@db1/nova_cell1"
    transport_url: "rabbit://nova:{{ nova_mq_password }}@mq1:5672/cell1"
    config_files: [/etc/nova/nova.conf]
    nova_manage: [/opt/nova/bin/nova-manage]

- name: Cell whose credentials live only in each host's nova.conf (template URLs)
  nova.cells.cell:
    name: cell2
    database_connection: "{scheme}://{username}:{password}@db2/nova_cell2?{query}"
    transport_url: "{scheme}://{username}:{password}@mq2:{port}/cell2"

- name: Create or update every cell in one run (one process; nothing runs when all of them are converged)
  nova.cells.cell:
    cells:
      - name: cell1
        database_connection: "mysql+pymysql://nova:{{ nova_db_password }}@db1/nova_cell1"
        transport_url: "rabbit://nova:{{ nova_mq_password }}@mq1:5672/cell1"
      - name: cell2
        database_connection: "mysql+pymysql://nova:{{ nova_db_password }}@db2/nova_cell2"
        transport_url: "rabbit://nova:{{ nova_mq_password }}@mq2:5672/cell2"
        disabled: false

- name: Put cell2 in maintenance
  nova.cells.cell:
    name: cell2
    disabled: true

- name: Delete cell3 with its host mappings
  nova.cells.cell:
    name: cell3
    state: absent
    force: true
'''

RETURN = r'''
cell:
  description: The cell after the run (before, when O(state=absent) deleted it); passwords masked.
  returned: with O(name)
  type: dict
  contains:
    uuid:
      description: Cell uuid.
      type: str
      sample: 7d8e1d0a-0b9d-4d7b-8a8a-4b0f6a3c2d11
    name:
      description: Cell name.
      type: str
      sample: cell1
    transport_url:
      description: Stored transport URL (raw template if it is one), password masked.
      type: str
      sample: rabbit://nova:****@mq1:5672/cell1
    database_connection:
      description: Stored database URL (raw template if it is one), password masked.
      type: str
      sample: mysql+pymysql://nova:****@db1/nova_cell1
    disabled:
      description: Whether the cell is disabled for scheduling.
      type: bool
      sample: false
commands:
  description: The nova-manage command lines that ran, or would run in check mode, passwords masked.
  returned: always
  type: list
  elements: str
  sample:
    - >-
      nova-manage --config-file /etc/nova/nova.conf cell_v2 create_cell --name cell1
      --database_connection mysql+pymysql://nova:****@db1/nova_cell1
      --transport-url rabbit://nova:****@mq1:5672/cell1 --verbose
restart_required:
  description:
    - Nova services that must be told about the change, per L(Nova's cells guide,https://docs.openstack.org/nova/latest/admin/cells.html).
    - V(scheduler_sighup) after a new, renamed, enabled or disabled cell; V(api), V(conductor), V(scheduler) restarts after URL changes.
    - With O(cells), the union over all cells.
    - The role C(nova.cells.cells) restarts nova-scheduler and nova-api for V(scheduler_sighup), because Nova 34's scheduler keeps
      its cached cells after a SIGHUP.
  returned: always
  type: list
  elements: str
  sample: [scheduler_sighup]
diff:
  description:
    - The cell before and after, passwords masked.
    - With O(cells), the cells that changed, by name (C(before) and C(after) are dicts of cells).
  returned: when diff mode is on
  type: dict
cells:
  description: With O(cells), one entry per cell in the order given (up to the failing one when the run fails).
  returned: with O(cells)
  type: list
  elements: dict
  contains:
    name:
      description: The name given.
      type: str
      sample: cell1
    changed:
      description: Whether this cell's mapping changed (would change in check mode).
      type: bool
      sample: false
    cell:
      description: As RV(cell) for this cell.
      type: dict
    restart_required:
      description: As RV(restart_required) for this cell.
      type: list
      elements: str
      sample: []
    commands:
      description: The nova-manage command lines run for this cell, passwords masked.
      type: list
      elements: str
      sample: []
instances:
  description: Up to 10 of the live instances (uuids) that made O(state=absent) refuse to delete the cell; the message names them.
  returned: on that failure
  type: list
  elements: str
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import (
    CELL0_NAME,
    find_cell,
    public_cell,
    validate_name,
    validate_uuid,
)
from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID
from ansible_collections.nova.cells.plugins.module_utils._module import DiffTracker, NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import ABSENT
from ansible_collections.nova.cells.plugins.module_utils._urls import (
    CELL0_TRANSPORT_URL,
    UrlError,
    expand_template,
    is_template,
    mask_url,
    urls_equal,
    validate_db_url,
    validate_transport_url,
)

_UUID_LINE_LENGTH = 36
_URL_FIELDS = ('transport_url', 'database_connection')
_FIELDS = ('name', 'transport_url', 'database_connection', 'disabled')


class CellModule(NovaCellsModule):
    argument_spec = dict(
        name=dict(type='str'),
        cells=dict(type='list', elements='dict', options=dict(
            name=dict(type='str', required=True),
            uuid=dict(type='str'),
            database_connection=dict(type='str', no_log=False),
            transport_url=dict(type='str', no_log=False),
            disabled=dict(type='bool'),
        )),
        uuid=dict(type='str'),
        state=dict(type='str', choices=['present', 'absent'], default='present'),
        database_connection=dict(type='str', no_log=False),
        transport_url=dict(type='str', no_log=False),
        disabled=dict(type='bool'),
        force=dict(type='bool', default=False),
        lock_timeout=dict(type='int', default=60),
    )
    module_kwargs = dict(supports_check_mode=True, required_one_of=[('name', 'cells')],
                         mutually_exclusive=[('name', 'cells'), ('cells', 'uuid'), ('cells', 'database_connection'),
                                             ('cells', 'transport_url'), ('cells', 'disabled')])

    def run(self):
        if self.params['cells'] is not None:
            return self.run_many()
        params = self.params
        self.register_url_secrets(params['database_connection'], params['transport_url'])
        uuid = self.select_cell()

        if params['state'] == 'absent':
            return self.ensure_absent(self.api_db(), uuid)
        self.validate_present_input()
        api_db = self.api_db()
        if self.check_mode:
            return self.ensure_present(api_db, uuid)
        with api_db.named_lock('cell:%s' % (uuid or params['name']), params['lock_timeout']):
            return self.ensure_present(api_db, uuid)

    def select_cell(self):
        """Validate name and uuid of the cell in ``self.params``; set ``is_cell0`` and a fresh ``restart_required``."""
        params = self.params
        validate_name(params['name'])
        uuid = validate_uuid(params['uuid']) if params['uuid'] else None
        self.is_cell0 = params['name'] == CELL0_NAME or uuid == CELL0_UUID
        if self.is_cell0 and uuid is None:
            uuid = CELL0_UUID
        self.restart_required = set()
        return uuid

    # -- several cells -----------------------------------------------------------------------
    def run_many(self):
        """``cells``: every entry as with ``name``, in one process.

        All entries are validated first (bad input changes nothing). The mappings are read once; a cell that is
        converged in that read is reported unchanged without a lock. A cell that needs a change goes the way of a
        single ``name`` run: named lock, read again under it, compare, nova-manage, read back.
        """
        common = self.params
        if common['state'] != 'present':
            raise NovaCellsError('cells creates or updates cell mappings (state=present); delete cells one at a time with name and state=absent')
        items = []
        for index, entry in enumerate(common['cells']):
            self.register_url_secrets(entry.get('database_connection'), entry.get('transport_url'))
            params = dict(common, name=entry['name'], uuid=entry.get('uuid'), cells=None,
                          database_connection=entry.get('database_connection'), transport_url=entry.get('transport_url'),
                          disabled=entry.get('disabled'))
            self.params = params
            try:
                uuid = self.select_cell()
                self.validate_present_input()
            except NovaCellsError as exc:
                raise NovaCellsError(f'cells[{index}] ({entry["name"]!r}): {exc}', **exc.extra) from None
            finally:
                self.params = common
            items.append((params, uuid, self.is_cell0))
        names = [params['name'] for params, _uuid, _is_cell0 in items]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise NovaCellsError('cells names {} more than once; give each cell once'.format(', '.join(repr(name) for name in repeated)))

        api_db = self.api_db()
        cells = api_db.cells()
        results, before, after, restart_required = [], {}, {}, set()
        self.result['cells'] = results   # kept as it grows: a failure reports the cells handled before it
        for params, uuid, is_cell0 in items:
            self.params, self.is_cell0, self.restart_required = params, is_cell0, set()
            first_command = len(self._commands())
            try:
                result = self.ensure_present_many(api_db, cells, uuid)
            finally:
                self.params = common
            if result['changed']:
                cells = api_db.cells()
                before[params['name']] = result['diff']['before'] if 'diff' in result else None
                after[params['name']] = result['diff']['after'] if 'diff' in result else None
            restart_required.update(result['restart_required'])
            results.append(dict(name=params['name'], changed=result['changed'], cell=result['cell'],
                                restart_required=result['restart_required'], commands=self._commands()[first_command:]))
        outcome = dict(changed=any(entry['changed'] for entry in results), cells=results, restart_required=sorted(restart_required))
        if self.diff_mode:
            outcome['diff'] = {'before': before, 'after': after}
        return outcome

    def ensure_present_many(self, api_db, cells, uuid):
        current = find_cell(cells, name=self.params['name'], uuid=uuid)
        if current is not None and not (self.is_cell0 and self.params['disabled'] is False and current['disabled']):
            tracker = self.tracker(current, self.desired_cell(current))
            if not tracker.changed:
                return self.report(tracker, current, current, changed=False)
        if self.check_mode:
            return self.ensure_present(api_db, uuid)
        with api_db.named_lock('cell:%s' % (uuid or self.params['name']), self.params['lock_timeout']):
            return self.ensure_present(api_db, uuid)

    # -- input -----------------------------------------------------------------------------
    def validate_present_input(self):
        params = self.params
        if self.is_cell0:
            if params['name'] != CELL0_NAME:
                raise NovaCellsError('cell0 (uuid {}) must be named {!r}, not {!r}'.format(CELL0_UUID, CELL0_NAME, params['name']))
            if params['transport_url'] not in (None, CELL0_TRANSPORT_URL):
                raise NovaCellsError(f"cell0 has no message queue: its transport_url is always {CELL0_TRANSPORT_URL}, not "
                                     f"{mask_url(params['transport_url'])}; omit transport_url")
            if params['disabled']:
                raise NovaCellsError('cell0 cannot be disabled: it only stores instances that failed to schedule; '
                                     'disable a regular cell instead')
        self.check_url('database_connection', params['database_connection'])
        self.check_url('transport_url', params['transport_url'])

    def check_url(self, option, url):
        """Validate a URL as the services will see it: templates are rendered against the config files first."""
        if url is None:
            return
        base = self.config.database_connection if option == 'database_connection' else self.config.transport_url
        # Nova formats every stored URL (CellMapping.format_*_url), not only those with a brace.
        rendered, error = expand_template(url, base)
        if error and is_template(url):
            raise NovaCellsError('{} {}: {} (rendered against {} of {})'.format(
                option, mask_url(url), error, '[database]/connection' if option == 'database_connection' else '[DEFAULT]/transport_url',
                ', '.join(self.params['config_files'])))
        self.register_url_secrets(rendered)
        try:
            if option == 'database_connection':
                validate_db_url(rendered, option)
            else:
                validate_transport_url(rendered, option, allow_none=self.is_cell0)
        except UrlError as exc:
            raise NovaCellsError('{}{}'.format(exc, f' (after rendering the template {mask_url(url)})' if rendered != url else '')) from None

    # -- present ---------------------------------------------------------------------------
    def ensure_present(self, api_db, uuid):
        cells = api_db.cells()
        current = find_cell(cells, name=self.params['name'], uuid=uuid)
        if uuid is not None and current is None and not self.is_cell0:
            raise NovaCellsError(f'there is no cell with uuid {uuid}; to create a cell, give only its name')
        if current is None:
            return self.create(api_db, cells)
        return self.update(api_db, cells, current)

    def desired_cell(self, current):
        params = self.params
        desired = dict(current or {})
        desired['name'] = params['name']
        if params['database_connection'] is not None:
            desired['database_connection'] = params['database_connection']
        if self.is_cell0:
            desired['transport_url'] = CELL0_TRANSPORT_URL
        elif params['transport_url'] is not None:
            desired['transport_url'] = params['transport_url']
        if params['disabled'] is not None:
            desired['disabled'] = params['disabled']
        desired.setdefault('disabled', False)
        return desired

    def check_url_conflicts(self, cells, desired):
        """Nova's rule (no two cells share a transport URL or a database), applied to what services really use.

        nova-manage compares the raw input with rendered stored values, so it misses templates; compare the
        rendered forms here and fail before any write.
        """
        transport, database = self.rendered_cell_urls(desired)
        for other in cells:
            if other['uuid'] == desired.get('uuid'):
                continue
            other_transport, other_database = self.rendered_cell_urls(other)
            shared = []
            if not self.is_cell0 and other['uuid'] != CELL0_UUID and urls_equal(transport, other_transport):
                shared.append(f'transport URL {mask_url(transport)}')
            if urls_equal(database, other_database):
                shared.append(f'database {mask_url(database)}')
            if shared:
                raise NovaCellsError('cell {!r} would share its {} with cell {!r} ({}); every cell needs its own message-queue '
                                     'vhost and database'.format(desired['name'], ' and '.join(shared), other['name'], other['uuid']),
                                     conflicting_cell=public_cell(other))

    def create(self, api_db, cells):
        params = self.params
        desired = self.desired_cell(None)
        desired.setdefault('uuid', CELL0_UUID if self.is_cell0 else None)
        missing = [opt for opt in ('database_connection', 'transport_url')
                   if desired.get(opt) is None and not (self.is_cell0 and opt == 'transport_url')]
        if missing:
            raise NovaCellsError('cell {!r} does not exist yet; creating it needs {}'.format(params['name'], ' and '.join(missing)))
        self.check_url_conflicts(cells, desired)
        tracker = self.tracker(None, desired)

        def apply():
            if self.is_cell0:
                self.nova_manage.run(('cell_v2', 'map_cell0'), ['--database_connection', desired['database_connection']],
                                     context=dict(cell=CELL0_NAME, uuid=CELL0_UUID))
                return
            args = ['--name', params['name'], '--database_connection', desired['database_connection'],
                    '--transport-url', desired['transport_url'], '--verbose']
            if desired['disabled']:
                args.append('--disabled')
            result = self.nova_manage.run(('cell_v2', 'create_cell'), args, context=dict(cell=params['name'], uuid=None))
            if result is not None:
                self.check_uuid_output(result)
            self.restart_required.add('scheduler_sighup')

        _changed, after = self.converge(tracker, apply, reread=lambda: self.reread(api_db, desired), desired=desired)
        return self.report(tracker, None, after, changed=True)

    def check_uuid_output(self, result):
        """create_cell --verbose prints the new uuid on its last line (after any fallback notices)."""
        last = result.lines[-1].strip() if result.lines else ''
        if len(last) != _UUID_LINE_LENGTH:
            raise NovaCellsError('nova-manage create_cell returned rc 0 but did not print the new cell uuid: %s'
                                 % (result.stdout or '(no output)'), commands=self.nova_manage.commands)

    def update(self, api_db, cells, current):
        params = self.params
        if self.is_cell0 and params['disabled'] is False and current['disabled']:
            raise NovaCellsError('cell0 is marked disabled in the API database, which Nova never does; '
                                 'fix the row by hand, nova-manage refuses to enable cell0')
        desired = self.desired_cell(current)
        tracker = self.tracker(current, desired)
        changed = tracker.changed_fields
        if not changed:
            return self.report(tracker, current, current, changed=False)
        if 'name' in changed:
            clashes = [cell['uuid'] for cell in cells if cell['name'] == desired['name'] and cell['uuid'] != current['uuid']]
            if clashes:
                raise NovaCellsError(f"cannot rename cell {current['uuid']} to {desired['name']!r}: that name is already used by {', '.join(clashes)}")
        self.check_url_conflicts(cells, desired)
        if desired['transport_url'] is None or desired['database_connection'] is None:
            missing = 'transport URL' if desired['transport_url'] is None else 'database URL'
            raise NovaCellsError(f"cell {current['name']!r} has no stored {missing}; give both transport_url and database_connection")

        def apply():
            # Both URLs always: update_cell replaces an omitted one with this host's config value.
            args = ['--cell_uuid', current['uuid'], '--name', desired['name'],
                    '--transport-url', desired['transport_url'], '--database_connection', desired['database_connection']]
            if 'disabled' in changed:
                args.append('--disable' if desired['disabled'] else '--enable')
            result = self.nova_manage.run(('cell_v2', 'update_cell'), args,
                                          context=dict(cell=current['name'], uuid=current['uuid']))
            if result is not None and 'Invalid transport URL' in result.stdout:
                raise NovaCellsError('nova-manage ignored the transport URL of cell {!r}: {}'.format(current['name'], result.stdout.strip()))
            if 'name' in changed or 'disabled' in changed:
                self.restart_required.add('scheduler_sighup')
            if 'transport_url' in changed or 'database_connection' in changed:
                self.restart_required.update(('api', 'conductor', 'scheduler'))

        _changed, after = self.converge(tracker, apply, reread=lambda: self.reread(api_db, desired), desired=desired)
        return self.report(tracker, current, after, changed=True)

    @staticmethod
    def tracker(current, desired):
        """The fields nova-manage manages, URLs compared as the services read them (urls_equal)."""
        tracker = DiffTracker()
        for field in _FIELDS:
            tracker.add(field, (current or {}).get(field), desired.get(field), equal=urls_equal if field in _URL_FIELDS else None)
        return tracker

    def reread(self, api_db, desired):
        """Read the cell back: the result reports what is stored, not what was asked."""
        cells = api_db.cells()
        after = find_cell(cells, name=desired['name'], uuid=desired.get('uuid'))
        if after is None:
            raise NovaCellsError(f"nova-manage reported success but cell {desired['name']!r} is not in the API database; check that "
                                 f'config_files point nova-manage at the same API database ({mask_url(api_db.url)})', commands=self.nova_manage.commands)
        for field in ('name', 'disabled'):
            if after[field] != desired[field]:
                raise NovaCellsError(f"after nova-manage ran, cell {desired['name']!r} has {field}={after[field]!r} instead of {desired[field]!r}")
        for field in ('transport_url', 'database_connection'):
            if not urls_equal(after[field], desired[field]):
                raise NovaCellsError(f"after nova-manage ran, cell {desired['name']!r} stores {field} {mask_url(after[field])} instead of "
                                     f'{mask_url(desired[field])}')
        return after

    # -- absent ----------------------------------------------------------------------------
    def ensure_absent(self, api_db, uuid):
        params = self.params
        current = find_cell(api_db.cells(), name=params['name'], uuid=uuid)
        tracker = DiffTracker()
        tracker.add('cell', public_cell(current), {})
        if current is None:
            return self.report(tracker, None, None, changed=False)
        if current['uuid'] == CELL0_UUID:
            # nova-manage deletes cell0 without a question, and every instance that fails to schedule
            # then has nowhere to go: nova-api and the conductors fail until cell0 is mapped again.
            raise NovaCellsError('cell0 cannot be deleted: Nova stores the instances that fail to schedule there. To tear '
                                 'down a whole deployment, drop the API database; to move cell0, map it again '
                                 '(name=cell0 database_connection=...)')
        self.precheck_delete(api_db, current)
        outcome = {}

        def apply():
            args = ['--cell_uuid', current['uuid']]
            if params['force']:
                args.insert(0, '--force')
            result = self.nova_manage.run(('cell_v2', 'delete_cell'), args,
                                          context=dict(cell=current['name'], uuid=current['uuid']))
            outcome['already_absent'] = result is not None and result.status == ABSENT
            self.restart_required.add('scheduler_sighup')

        changed, _after = self.converge(tracker, apply, reread=lambda: None, desired=None)
        return self.report(tracker, current, None, changed=changed and not outcome.get('already_absent'))

    def precheck_delete(self, api_db, cell):
        """Refuse what nova-manage would refuse, before spending a nova-manage run (and in check mode)."""
        hosts = [row['host'] for row in api_db.host_mappings(cell['id'])]
        mappings = api_db.instance_mapping_counts().get(cell['id'], 0)
        label = '{!r} ({})'.format(cell['name'], cell['uuid'])
        if hosts and not self.params['force']:
            listed = ', '.join(hosts[:10]) + (' ...' if len(hosts) > 10 else '')
            raise NovaCellsError(f'cell {label} still has {len(hosts)} mapped host(s): {listed}. Remove them first (nova.cells.host '
                                 'state=absent) or set force=true to delete their host mappings with the cell.',
                                 hosts=hosts)
        if mappings:
            cell_db = self.cell_db(cell)
            live = cell_db.live_instance_count()
            if live:
                named = cell_db.live_instances(limit=10)
                names = ', '.join(f'{uuid} ({name})' if name else uuid for uuid, name in named)
                more = ' ...' if live > len(named) else ''
                raise NovaCellsError(f'cell {label} still has {live} live instance(s): {names}{more}; delete or migrate them first. '
                                     'force does not delete cells with live instances.',
                                     instances=[uuid for uuid, _name in named])
            if not self.params['force']:
                raise NovaCellsError(f'cell {label} has {mappings} mapping(s) of deleted instances. Run "nova-manage db archive_deleted_rows" '
                                     'to purge them, or set force=true to delete them with the cell.')

    # -- result ----------------------------------------------------------------------------
    def report(self, tracker, before, after, changed):
        return self.changed_result(tracker, changed, public_cell(before), public_cell(after),
                                   cell=public_cell(after if after is not None else before),
                                   restart_required=sorted(self.restart_required))


def main():
    CellModule()()


if __name__ == '__main__':
    main()
