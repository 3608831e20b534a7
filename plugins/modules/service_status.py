#!/usr/bin/python
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: service_status
short_description: Report whether Nova services are up, read from the ServiceGroup backend
version_added: 0.1.0
description:
  - Tells for each Nova service whether it is up, down or unknown, by the rule Nova's own ServiceGroup driver applies,
    reading the backend directly (no Nova API, no nova-manage, no Nova libraries).
  - The services are the live rows of the C(services) table of every cell database (one query per cell; cells come from
    the API database's cell mappings, cell0 is left out unless named in O(cells)). The WSGI services
    (C(nova-osapi_compute), C(nova-metadata)) are left out, as the os-services API does, because they never report.
  - "V(db): up when C(|now - (last_seen_up or created_at)| <= service_down_time), with now the database server's
    C(UTC_TIMESTAMP()); before Ocata the release's own heartbeat column is used when O(nova_release) says so."
  - "V(mc): up when memcached holds the service's heartbeat (key C(sha1('topic:host'))), its dogpile creation time is at
    most C(service_down_time) seconds old by this host's clock, and its version is dogpile's. Values are decoded with an
    allow-listed unpickler: a value that is not a heartbeat is reported V(unknown) and nothing in it runs. Keys are read
    with batched C(get_many) from every listed server; the freshest copy wins."
  - "V(zk): up while the legacy layout C({sg_prefix}/{topic}/{host}) has at least one ephemeral child; read with pipelined
    kazoo calls. Nova 13 (Mitaka) and later have no zk driver; this reads ZooKeeper for deployments that do."
  - A C(forced_down) service is down whatever the backend says. Disabled services keep their state and are flagged
    with RV(services[].disabled) and RV(services[].disabled_reason).
  - When the backend cannot be read (a memcached or ZooKeeper server does not answer), the services it would decide are
    reported V(unknown) with a warning; the module does not fail.
  - With O(wait_for), the module polls until the condition holds and fails after O(wait_for.timeout) seconds, listing
    what is not in the wanted state.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes
  - nova.cells._attributes.info_module
  - nova.cells._attributes.actiongroup_cells
options:
  driver:
    description:
      - The ServiceGroup driver whose backend to read.
      - Defaults to C([DEFAULT] servicegroup_driver) in O(config_files), else V(db). Read with the driver the services
        write with; under V(mc), Nova stops updating the database heartbeat.
    type: str
    choices: [db, mc, zk]
  report_interval:
    description:
      - Defaults to C([DEFAULT] report_interval) in O(config_files), else 10. Only used to apply Nova's rule when
        C(service_down_time <= report_interval).
    type: int
  service_down_time:
    description:
      - Seconds after the last heartbeat when a service counts as down.
      - Defaults to C([DEFAULT] service_down_time) in O(config_files), else 60. When it is not greater than
        O(report_interval), C(int(2.5 * report_interval)) is used, as Nova does, with a warning.
    type: int
  memcache_servers:
    description:
      - With V(mc), the memcached servers (C(host:port), C([v6]:port), C(inet6:[v6]:port)).
      - Defaults to C([cache] memcache_servers) in O(config_files) (or C([DEFAULT] memcached_servers) on Mitaka and older).
    type: list
    elements: str
  zookeeper_address:
    description:
      - With V(zk), the ZooKeeper servers as C(host:port). Defaults to C([zookeeper] address) in O(config_files).
    type: list
    elements: str
  zookeeper_sg_prefix:
    description:
      - With V(zk), the root znode. Defaults to C([zookeeper] sg_prefix) in O(config_files), else V(/servicegroups).
    type: str
  nova_release:
    description:
      - The Nova release of the services (V(34.0.0), V(34), V(mitaka), V(2025.1)). Only needed for releases before Ocata
        (the db heartbeat column) and Mitaka or older with memcached (plain keys); when omitted the current rules
        apply, and a C([DEFAULT] memcached_servers) without C([cache] enabled = true) in O(config_files) selects plain keys.
    type: str
  cells:
    description:
      - Only these cells (exact names). V(cell0) is included only when named.
    type: list
    elements: str
  binary:
    description:
      - Only services of this binary, e.g. V(nova-compute).
    type: str
  topic:
    description:
      - Only services of this topic, e.g. V(compute).
    type: str
  hosts:
    description:
      - Only services on these hosts.
    type: list
    elements: str
  wait_for:
    description:
      - Poll until this holds. Without O(wait_for.hosts) and O(wait_for.count_per_cell), every selected service (and at
        least one) must be in O(wait_for.state).
      - Cells whose database cannot be read and services in state V(unknown) never satisfy it.
    type: dict
    suboptions:
      state:
        description:
          - The wanted state.
        type: str
        choices: [up, down]
        default: up
      hosts:
        description:
          - These hosts' services must all be in O(wait_for.state); for V(up) each host must have at least one.
        type: list
        elements: str
      binary:
        description:
          - Only services of this binary count.
        type: str
      count_per_cell:
        description:
          - At least this many services (of O(wait_for.binary)) in O(wait_for.state) in every selected cell.
        type: int
      timeout:
        description:
          - Seconds to wait before failing.
        type: int
        default: 120
      interval:
        description:
          - Seconds between two reads.
        type: float
        default: 2
  backend_timeout:
    description:
      - Seconds to wait for each memcached or ZooKeeper server.
    type: float
    default: 5
  batch_size:
    description:
      - Keys per memcached C(get_many) request.
    type: int
    default: 500
requirements:
  - pymemcache on the managed host for V(mc) (python3-pymemcache)
  - kazoo on the managed host for V(zk) (python3-kazoo)
notes:
  - V(mc) compares the writer's clock (the heartbeat's creation time) with this host's clock, and V(db) the conductor's
    clock with the database server's; keep clocks in sync, as Nova needs too.
  - "Deployments without cell mappings (before Ocata) are read from C([database] connection) and reported as one cell
    named C((database))."
  - memcached over TLS or with SASL is not supported.
seealso:
  - module: nova.cells.servicegroup
'''

EXAMPLES = r'''
- name: Is everything up?
  nova.cells.service_status:
  register: status

- name: Show the computes that are not up
  ansible.builtin.debug:
    msg: "{{ status.services | selectattr('binary', 'eq', 'nova-compute') | rejectattr('state', 'eq', 'up') | list }}"

- name: Wait until two computes per cell report through memcached
  nova.cells.service_status:
    driver: mc
    wait_for:
      binary: nova-compute
      count_per_cell: 2
      timeout: 180

- name: Wait until a stopped compute is seen as down
  nova.cells.service_status:
    hosts: [cmp07]
    wait_for:
      hosts: [cmp07]
      state: down
'''

RETURN = r'''
services:
  description: One entry per service, in cell order, then by host and binary.
  returned: always
  type: list
  elements: dict
  contains:
    cell:
      description: Cell name.
      type: str
    cell_uuid:
      description: Cell uuid (null for the C((database)) pseudo-cell).
      type: str
    host:
      description: Service host.
      type: str
    binary:
      description: Service binary, e.g. C(nova-compute).
      type: str
    topic:
      description: Service topic, e.g. C(compute).
      type: str
    state:
      description: V(up), V(down) or V(unknown) (the backend could not tell).
      type: str
    reason:
      description: Why the service is down or unknown (null when up).
      type: str
    forced_down:
      description: The C(forced_down) flag of the row.
      type: bool
    disabled:
      description: Disabled for scheduling (reported apart from the state).
      type: bool
    disabled_reason:
      description: Why it was disabled.
      type: str
    last_seen:
      description: Time of the last heartbeat (ISO 8601, UTC); null with V(zk), which keeps no time.
      type: str
    age_seconds:
      description: Seconds since the last heartbeat (negative when the writer's clock is ahead); null with V(zk).
      type: float
summary:
  description: Counts per cell name.
  returned: always
  type: dict
  sample: {cell1: {up: 3, down: 1, unknown: 0, disabled: 1, total: 4, reachable: true}}
driver:
  description: The driver whose backend was read.
  returned: always
  type: str
service_down_time:
  description: The service_down_time applied (after Nova's rule).
  returned: always
  type: int
report_interval:
  description: The report_interval used.
  returned: always
  type: int
waited:
  description: Seconds spent waiting.
  returned: when O(wait_for) is set
  type: float
'''

import time
from typing import ClassVar

from ansible_collections.nova.cells.plugins.module_utils._cells import find_cell
from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID, DatabaseError
from ansible_collections.nova.cells.plugins.module_utils._liveness_db import UNKNOWN, evaluate, fetch_services, service_entry
from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import (
    MemcachedReader,
    MemcachedUnavailable,
    heartbeat_key,
    valid_key,
)
from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import evaluate as evaluate_mc
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import (
    ZooKeeperUnavailable,
    parse_address,
    read_members,
)
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import close as close_zookeeper
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import connect as connect_zookeeper
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import evaluate as evaluate_zk
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._releases import ReleaseError, parse_release, supports
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import (
    DEFAULT_REPORT_INTERVAL,
    DEFAULT_SERVICE_DOWN_TIME,
    DRIVERS,
    ZOOKEEPER_DEFAULTS,
    ServiceGroupError,
    effective_service_down_time,
)

LOCAL_CELL_NAME = '(database)'
_TRUE = ('1', 'true', 'yes', 'on')
MAX_LISTED = 20


def wait_problems(services, summary, spec):
    """What keeps ``wait_for`` from being satisfied (empty list: satisfied)."""
    state = spec['state']
    binary, hosts, count = spec.get('binary'), spec.get('hosts'), spec.get('count_per_cell')
    problems = ['cell {}: its database could not be read ({})'.format(name, entry.get('error'))
                for name, entry in summary.items() if not entry['reachable']]
    candidates = [s for s in services if (not binary or s['binary'] == binary) and (not hosts or s['host'] in hosts)]
    what = binary or 'service'
    if count is not None:
        for name, entry in summary.items():
            if entry['reachable']:
                found = sum(1 for s in candidates if s['cell'] == name and s['state'] == state)
                if found < count:
                    problems.append(f'cell {name}: {found} {what} {state}, {count} wanted')
        return problems
    for service in candidates:
        if service['state'] != state:
            why = f" ({service['reason']})" if service.get('reason') else ''
            problems.append(f"{service['cell']}/{service['host']} {service['binary']} is {service['state']}{why}")
    if state == 'up':
        if hosts:
            seen = {service['host'] for service in candidates}
            problems.extend(f'host {host} has no {what} row' for host in hosts if host not in seen)
        elif not candidates:
            problems.append(f'no {what} matches')
    return problems


class ServiceStatusModule(NovaCellsModule):
    argument_spec: ClassVar[dict] = dict(
        driver=dict(type='str', choices=list(DRIVERS)),
        report_interval=dict(type='int'),
        service_down_time=dict(type='int'),
        memcache_servers=dict(type='list', elements='str'),
        zookeeper_address=dict(type='list', elements='str'),
        zookeeper_sg_prefix=dict(type='str'),
        nova_release=dict(type='str'),
        cells=dict(type='list', elements='str'),
        binary=dict(type='str'),
        topic=dict(type='str'),
        hosts=dict(type='list', elements='str'),
        wait_for=dict(type='dict', options=dict(
            state=dict(type='str', choices=['up', 'down'], default='up'),
            hosts=dict(type='list', elements='str'),
            binary=dict(type='str'),
            count_per_cell=dict(type='int'),
            timeout=dict(type='int', default=120),
            interval=dict(type='float', default=2.0),
        )),
        backend_timeout=dict(type='float', default=5.0),
        batch_size=dict(type='int', default=500),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True, mutually_exclusive=[('binary', 'topic')])

    def __init__(self):
        super().__init__()
        self._warnings = []
        self._zookeeper = None
        self._memcached = None
        self._hashed_keys = True
        self.release = None

    def warn(self, text):
        text = self.mask(text)
        if text not in self._warnings:
            self._warnings.append(text)

    # -- settings ------------------------------------------------------------------------------
    def conf_int(self, section, option, default):
        value = self.config.get(section, option)
        if value in (None, ''):
            return default
        try:
            return int(value)
        except ValueError:
            raise NovaCellsError('[{}] {} = {!r} in {} is not an integer'.format(section, option, value, ', '.join(self.config.files))) from None

    def resolve_settings(self):
        params = self.params
        conf = self.config
        driver = params['driver'] or (conf.get('DEFAULT', 'servicegroup_driver') or 'db').strip()
        if driver not in DRIVERS:
            raise NovaCellsError('servicegroup_driver = {} in {} is not a driver Nova knows (db, mc; zk before Mitaka); '
                                 'set the driver option'.format(driver, ', '.join(conf.files)))
        report_interval = params['report_interval']
        if report_interval is None:
            report_interval = self.conf_int('DEFAULT', 'report_interval', DEFAULT_REPORT_INTERVAL)
        service_down_time = params['service_down_time']
        if service_down_time is None:
            service_down_time = self.conf_int('DEFAULT', 'service_down_time', DEFAULT_SERVICE_DOWN_TIME)
        effective = effective_service_down_time(report_interval, service_down_time)
        if effective != service_down_time:
            self.warn(f'service_down_time {service_down_time} is not greater than report_interval {report_interval}: Nova uses '
                      f'int(2.5 x report_interval) = {effective} instead, and so does this check')
        if params['nova_release']:
            try:
                self.release = parse_release(params['nova_release'])
            except ReleaseError as exc:
                raise NovaCellsError(str(exc)) from None
        return driver, report_interval, effective

    def memcached(self):
        if self._memcached is not None:
            return self._memcached
        params, conf = self.params, self.config
        legacy_servers = conf.get('DEFAULT', 'memcached_servers')
        cache_enabled = (conf.get('cache', 'enabled') or '').strip().lower() in _TRUE
        if self.release is not None:
            if not supports(self.release, 'cache_block_servicegroup'):
                legacy = True                      # Liberty and older: memorycache, [DEFAULT] memcached_servers only
            elif supports(self.release, 'legacy_memcached_servers'):
                legacy = bool(legacy_servers)      # Mitaka: [DEFAULT] memcached_servers wins when set
            else:
                legacy = False
        else:
            legacy = bool(legacy_servers) and not cache_enabled
        self._hashed_keys = not legacy
        servers = params['memcache_servers']
        if not servers:
            servers = legacy_servers if legacy else conf.get('cache', 'memcache_servers')
            if not legacy:
                self.check_cache_config(cache_enabled)
        if not servers:
            if legacy:
                raise NovaCellsError('no memcached servers: set memcache_servers or [DEFAULT] memcached_servers in '
                                     + ', '.join(params['config_files']))
            servers = 'localhost:11211'
            files = ', '.join(params['config_files'])
            self.warn(f'no [cache] memcache_servers in {files}: reading localhost:11211, the oslo.cache default Nova uses too')
        try:
            self._memcached = MemcachedReader(servers, timeout=params['backend_timeout'], batch_size=params['batch_size'])
        except ServiceGroupError as exc:
            raise NovaCellsError(str(exc)) from None
        return self._memcached

    def check_cache_config(self, cache_enabled):
        conf = self.config
        if not conf.files:
            return
        if not cache_enabled:
            self.warn('[cache] enabled is not true in {}: Nova services using these files get no memcached client and '
                      'cannot report through the mc driver'.format(', '.join(conf.files)))
        backend = conf.get('cache', 'backend') or 'dogpile.cache.null'
        if backend == 'dogpile.cache.null':
            self.warn('[cache] backend is dogpile.cache.null in {}: such services store no heartbeat'.format(', '.join(conf.files)))
        for option in ('tls_enabled', 'memcache_sasl_enabled'):
            if (conf.get('cache', option) or '').strip().lower() in _TRUE:
                files = ', '.join(conf.files)
                raise NovaCellsError(f'[cache] {option} is set in {files}: service_status cannot read memcached over TLS or with SASL')

    def zookeeper_settings(self):
        params, conf = self.params, self.config
        address = params['zookeeper_address'] or conf.get('zookeeper', 'address')
        if not address:
            raise NovaCellsError('no ZooKeeper servers: set zookeeper_address or [zookeeper] address in {}'.format(', '.join(params['config_files'])))
        try:
            addresses = parse_address(address)
        except ServiceGroupError as exc:
            raise NovaCellsError(str(exc)) from None
        prefix = params['zookeeper_sg_prefix'] or conf.get('zookeeper', 'sg_prefix') or ZOOKEEPER_DEFAULTS['sg_prefix']
        if self.release is not None and not supports(self.release, 'zk_servicegroup'):
            self.warn(f'{self.release.label} has no zk ServiceGroup driver (removed in Mitaka 13.0.0); reading ZooKeeper membership in the '
                      'legacy layout anyway')
        return addresses, prefix

    # -- cells ---------------------------------------------------------------------------------
    def select_cells(self):
        params = self.params
        local = self.config.database_connection
        api_url = params['api_database_connection'] or self.config.api_database_connection
        if not api_url and local and not params['cells']:
            return [self.local_cell(local)]
        cells = self.api_db().cells()
        real = [cell for cell in cells if cell['uuid'] != CELL0_UUID]
        if params['cells']:
            selected = []
            for name in params['cells']:
                cell = find_cell(cells, name=name)
                if cell is None:
                    raise NovaCellsError('there is no cell named {!r} (known cells: {})'.format(name, ', '.join(repr(c['name']) for c in cells) or 'none'))
                selected.append(cell)
            return selected
        if not real and local:
            # No cell mappings yet (before Ocata, cells v2 was optional): the services live in [database].
            return [self.local_cell(local)]
        return real

    def local_cell(self, url):
        self.register_url_secrets(url)
        return {'id': None, 'uuid': None, 'name': LOCAL_CELL_NAME, 'transport_url': None, 'database_connection': url,
                'disabled': False}

    # -- reading -------------------------------------------------------------------------------
    def read_rows(self, cells, summary):
        params = self.params
        found = []
        for cell in cells:
            entry = summary[cell['name']] = dict(up=0, down=0, unknown=0, disabled=0, total=0, reachable=True)
            try:
                rows = fetch_services(self.cell_db(cell), binary=params['binary'], topic=params['topic'], hosts=params['hosts'])
            except (DatabaseError, NovaCellsError) as exc:
                entry.update(reachable=False, error=self.mask(str(exc)))
                self.warn('cell {}: {}'.format(cell['name'], exc))
                continue
            found.append((cell, rows))
        return found

    def states(self, driver, service_down_time, cell_rows):
        """{(cell uuid, row id): (state, last_seen, age, reason)} by the driver's rule."""
        result = {}
        if driver == 'db':
            for cell, rows in cell_rows:
                for row in rows:
                    result[(cell['uuid'], row['id'])] = evaluate(row, row['db_now'], service_down_time, self.release)
            return result
        if driver == 'mc':
            return self.states_mc(service_down_time, cell_rows)
        return self.states_zk(cell_rows)

    def states_mc(self, service_down_time, cell_rows):
        reader = self.memcached()
        keys = {}
        for cell, rows in cell_rows:
            for row in rows:
                keys[(cell['uuid'], row['id'])] = heartbeat_key(row['topic'], row['host'], hashed=self._hashed_keys)
        try:
            found = reader.get_many(keys.values())
        except MemcachedUnavailable as exc:
            raise NovaCellsError(str(exc)) from None
        errors = reader.errors
        if errors:
            servers = ', '.join(sorted(errors))
            details = '; '.join(f'{server}: {error}' for server, error in sorted(errors.items()))
            self.warn(f'memcached {servers} did not answer ({details}): services whose heartbeat was not found elsewhere are '
                      'reported unknown')
        now = time.time()
        result = {}
        for cell, rows in cell_rows:
            for row in rows:
                key = keys[(cell['uuid'], row['id'])]
                if not valid_key(key):
                    result[(cell['uuid'], row['id'])] = (UNKNOWN, None, None, f'the key {key!r} is not a valid memcached key')
                    continue
                result[(cell['uuid'], row['id'])] = evaluate_mc(found.get(key, []), service_down_time, now=now,
                                                                server_errors=errors, forced_down=row['forced_down'])
        return result

    def states_zk(self, cell_rows):
        addresses, prefix = self.zookeeper_settings()
        wanted = {}
        for _cell, rows in cell_rows:
            for row in rows:
                wanted.setdefault(row['topic'], set()).add(row['host'])
        members = {}
        try:
            if self._zookeeper is None:
                self._zookeeper = connect_zookeeper(addresses, timeout=self.params['backend_timeout'])
            members = read_members(self._zookeeper, prefix, wanted, timeout=self.params['backend_timeout'])
        except ZooKeeperUnavailable as exc:
            self.warn(f'{exc}: services are reported unknown')
        result = {}
        for cell, rows in cell_rows:
            for row in rows:
                member = members.get((row['topic'], row['host']))
                result[(cell['uuid'], row['id'])] = evaluate_zk(member, forced_down=row['forced_down'])
        return result

    def collect(self, cells, driver, service_down_time):
        summary = {}
        cell_rows = self.read_rows(cells, summary)
        states = self.states(driver, service_down_time, cell_rows)
        services = []
        for cell, rows in cell_rows:
            counts = summary[cell['name']]
            for row in rows:
                state, last_seen, age, reason = states[(cell['uuid'], row['id'])]
                entry = service_entry(cell, row)
                entry.update(state=state, reason=reason, last_seen=last_seen, age_seconds=age)
                services.append(entry)
                counts[state] += 1
                counts['total'] += 1
                counts['disabled'] += int(entry['disabled'])
        return services, summary

    def run(self):
        driver, report_interval, service_down_time = self.resolve_settings()
        cells = self.select_cells()
        spec = self.params['wait_for']
        started = time.monotonic()
        while True:
            services, summary = self.collect(cells, driver, service_down_time)
            if spec is None:
                break
            problems = wait_problems(services, summary, spec)
            waited = time.monotonic() - started
            if not problems:
                break
            if waited + spec['interval'] > spec['timeout']:
                self.emit_warnings()
                listed = problems[:MAX_LISTED] + ([f'and {len(problems) - MAX_LISTED} more'] if len(problems) > MAX_LISTED else [])
                raise NovaCellsError('timed out after {:.0f} s waiting for services to be {}: {}'.format(waited, spec['state'], '; '.join(listed)),
                                     services=services, summary=summary, driver=driver, waited=round(waited, 1),
                                     service_down_time=service_down_time, report_interval=report_interval)
            time.sleep(max(0.0, spec['interval']))
        result = dict(changed=False, services=services, summary=summary, driver=driver,
                      service_down_time=service_down_time, report_interval=report_interval)
        if spec is not None:
            result['waited'] = round(time.monotonic() - started, 1)
        self.emit_warnings()
        self.exit(**result)

    def emit_warnings(self):
        for text in self._warnings:
            self.ansible.warn(text)
        self._warnings = []

    def close(self):
        if self._zookeeper is not None:
            close_zookeeper(self._zookeeper)
            self._zookeeper = None
        super().close()


def main():
    ServiceStatusModule()()


if __name__ == '__main__':
    main()
