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
  - nova.cells._attributes.info
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

from ansible_collections.nova.cells.plugins.module_utils._addresses import AddressError
from ansible_collections.nova.cells.plugins.module_utils._cells import select_service_cells
from ansible_collections.nova.cells.plugins.module_utils._databases import DatabaseError
from ansible_collections.nova.cells.plugins.module_utils._liveness_db import DbBackend, fetch_services, service_entry, state_key
from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import MemcachedBackend, MemcachedReader, MemcachedUnavailable
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import ZooKeeperBackend, parse_address
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._releases import ReleaseError, parse_release, supports
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import (
    DRIVERS,
    ServiceGroupError,
    effective_service_down_time,
    read_settings,
)

MAX_LISTED = 20
DEFAULT_MEMCACHED = 'localhost:11211'  # oslo.cache's default [cache] memcache_servers


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
    argument_spec = dict(
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
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[('binary', 'topic')])

    def __init__(self):
        super().__init__()
        self._warnings = []
        self._backend = None
        self.release = None
        self.settings = None

    def warn(self, text):
        text = self.mask(text)
        if text not in self._warnings:
            self._warnings.append(text)

    # -- settings: the options, else what nova.conf configures (_servicegroup.read_settings) ---------
    def resolve_settings(self):
        params = self.params
        files = ', '.join(self.config.files)
        if params['nova_release']:
            try:
                self.release = parse_release(params['nova_release'])
            except ReleaseError as exc:
                raise NovaCellsError(str(exc)) from None
        given = {name: params[name] for name in ('driver', 'report_interval', 'service_down_time') if params[name] is not None}
        try:
            self.settings = settings = read_settings(self.config.get, self.release, source=files, **given)
        except ServiceGroupError as exc:
            hint = '; set the driver option' if str(exc).startswith('servicegroup_driver') else ''
            raise NovaCellsError(f'{exc}{hint}') from None
        report_interval, service_down_time = settings['report_interval'], settings['service_down_time']
        effective = effective_service_down_time(report_interval, service_down_time)
        if effective != service_down_time:
            self.warn(f'service_down_time {service_down_time} is not greater than report_interval {report_interval}: Nova uses '
                      f'int(2.5 x report_interval) = {effective} instead, and so does this check')
        return settings['driver'], report_interval, effective

    # -- backends: one states(cell_rows, service_down_time) per driver --------------------------------
    def backend(self, driver):
        if self._backend is None:
            self._backend = {'db': self.db_backend, 'mc': self.memcached_backend, 'zk': self.zookeeper_backend}[driver]()
        return self._backend

    def db_backend(self):
        return DbBackend(self.release)

    def memcached_backend(self):
        params, settings = self.params, self.settings
        legacy = settings['legacy_memcached']
        servers = params['memcache_servers']
        if not servers:
            servers = settings['memcache_servers']
            if not legacy:
                self.check_cache_config()
        if not servers:
            if legacy:
                raise NovaCellsError('no memcached servers: set memcache_servers or [DEFAULT] memcached_servers in '
                                     + ', '.join(params['config_files']))
            servers = DEFAULT_MEMCACHED
            files = ', '.join(params['config_files'])
            self.warn(f'no [cache] memcache_servers in {files}: reading {DEFAULT_MEMCACHED}, the oslo.cache default Nova uses too')
        try:
            reader = MemcachedReader(servers, timeout=params['backend_timeout'], batch_size=params['batch_size'])
        except AddressError as exc:
            raise NovaCellsError(str(exc)) from None
        return MemcachedBackend(reader, hashed_keys=settings['hashed_keys'])

    def check_cache_config(self):
        files, settings = ', '.join(self.config.files), self.settings
        if not self.config.files:
            return
        if not settings['cache_enabled']:
            self.warn(f'[cache] enabled is not true in {files}: Nova services using these files get no memcached client and '
                      'cannot report through the mc driver')
        if settings['cache_backend'] == 'dogpile.cache.null':
            self.warn(f'[cache] backend is dogpile.cache.null in {files}: such services store no heartbeat')
        for option in settings['cache_security']:
            raise NovaCellsError(f'[cache] {option} is set in {files}: service_status cannot read memcached over TLS or with SASL')

    def zookeeper_backend(self):
        params, settings = self.params, self.settings
        address = params['zookeeper_address'] or settings['zookeeper_address']
        if not address:
            raise NovaCellsError('no ZooKeeper servers: set zookeeper_address or [zookeeper] address in {}'.format(', '.join(params['config_files'])))
        try:
            addresses = parse_address(address)
        except AddressError as exc:
            raise NovaCellsError(str(exc)) from None
        prefix = params['zookeeper_sg_prefix'] or settings['zookeeper_sg_prefix']
        if self.release is not None and not supports(self.release, 'zk_servicegroup'):
            self.warn(f'{self.release.label} has no zk ServiceGroup driver (removed in Mitaka 13.0.0); reading ZooKeeper membership in the '
                      'legacy layout anyway')
        return ZooKeeperBackend(addresses, prefix, timeout=params['backend_timeout'])

    # -- cells ---------------------------------------------------------------------------------------
    def select_cells(self):
        params = self.params
        local = self.config.database_connection
        if local:
            self.register_url_secrets(local)
        api_url = params['api_database_connection'] or self.config.api_database_connection
        return select_service_cells(lambda: self.api_db().cells(), params['cells'], local, api_database=bool(api_url))

    # -- reading -------------------------------------------------------------------------------------
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
        backend = self.backend(driver)
        try:
            states = backend.states(cell_rows, service_down_time)
        except MemcachedUnavailable as exc:
            raise NovaCellsError(str(exc)) from None
        for text in backend.warnings:
            self.warn(text)
        backend.warnings = []
        return states

    def collect(self, cells, driver, service_down_time):
        summary = {}
        cell_rows = self.read_rows(cells, summary)
        states = self.states(driver, service_down_time, cell_rows)
        services = []
        for cell, rows in cell_rows:
            counts = summary[cell['name']]
            for row in rows:
                state, last_seen, age, reason = states[state_key(cell, row)]
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
        return result

    def emit_warnings(self):
        for text in self._warnings:
            self.ansible.warn(text)
        self._warnings = []

    def close(self):
        if self._backend is not None:
            self._backend.close()
            self._backend = None
        super().close()


def main():
    ServiceStatusModule()()


if __name__ == '__main__':
    main()
