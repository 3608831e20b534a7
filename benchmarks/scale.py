"""Scale benchmark: nova.cells modules against nova-manage (and against raw round trips), side by side.

Run:  $NOVA_CELLS_HOME/venv-ctl/bin/python benchmarks/scale.py [--small] [--json PATH] [--only 1,2,3,4]

It brings up a private lab (MariaDB, memcached, ZooKeeper; real nova-manage 34.0.0 from
$NOVA_CELLS_HOME/venv-nova), syncs a real API database and one real cell database, clones that cell schema
into N cell databases (CREATE TABLE ... LIKE), fills them with synthetic rows, and measures every pair in
the same run, back to back, so that load on the machine affects both sides alike:

1. A no-op converge of the cell bootstrap for N cells: our modules (``cell`` x N converged, ``discover_hosts``
   with nothing new, ``map_instances`` with nothing to map; each module as its own process, as Ansible runs it
   on the managed host; the same N+2 tasks as one ``ansible-playbook`` run; and one ``ansible-playbook`` run
   as the cells role runs it since issue 16: ``cell`` with ``cells`` (all N in one process), ``discover_hosts``
   with ``cells``, ``map_instances``) against the nova-manage sequence other tools run per cell
   (``list_cells``, ``update_cell`` that changes nothing, ``discover_hosts``).
2. ``discover_hosts`` of H unmapped computes across N cells: ``engine: direct`` against one
   ``nova-manage cell_v2 discover_hosts``; then the two resulting databases are compared.
3. ``map_instances`` of I instances: ``engine: direct`` against ``nova-manage cell_v2 map_instances``
   (databases compared), and the no-op run of both.
4. ``service_status`` over S services per backend (db, mc, zk) against the same reads done raw in this
   process (one query per cell, memcached ``get_many`` batches, pipelined ZooKeeper reads): "work" is the
   module's time from argument parsing to its printed result, without the interpreter start-up.
5. Peak memory: max RSS of every module process (and of nova-manage), from wait4().

Speed targets are printed next to the figures; nothing here asserts them.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import logging
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
import uuid as uuidlib
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests' / 'integration'))

import pymysql
from harness import AnsibleRunner, Lab
from kazoo.client import KazooClient
from pymemcache.client.base import Client as MemcacheClient

SIZES = {
    'full': dict(cells=10, hosts=(5000, 10000), instances=10000, services=10000),
    'small': dict(cells=3, hosts=(300, 600), instances=1000, services=1000),
}
ZK_PREFIX = '/nova-cells-bench/servicegroups'
RUNNER = REPO / 'benchmarks' / 'module_process.py'
CHUNK = 1000

Run = namedtuple('Run', 'seconds rc stdout stderr rss_mb timings')


def log(text):
    print(f'[{time.strftime("%H:%M:%S")}] {text}', file=sys.stderr, flush=True)


def measure(argv, env, timings_path=None, timeout=1800):
    """Run a process; wall seconds, rc, output, its own max RSS (wait4), and the runner's timings if any."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        proc = subprocess.Popen(argv, env=env, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _pid, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        timings = None
        if timings_path and Path(timings_path).exists():
            timings = json.loads(Path(timings_path).read_text(encoding='utf-8'))
        return Run(seconds, proc.returncode, out.read().decode('utf-8', 'replace'), err.read().decode('utf-8', 'replace'),
                   usage.ru_maxrss / 1024.0, timings)


class Row(NamedTuple):
    item: str
    label: str
    baseline_label: str
    baseline: float
    ours: float
    kind: str            # 'faster': baseline / ours >= target;  'floor': ours / baseline <= target
    target: float | None
    rss_ours: float | None = None
    rss_base: float | None = None
    note: str = ''

    @property
    def ratio(self):
        if self.kind == 'faster':
            return self.baseline / self.ours if self.ours else float('inf')
        return self.ours / self.baseline if self.baseline else float('inf')

    @property
    def met(self):
        if self.target is None:
            return None
        return self.ratio >= self.target if self.kind == 'faster' else self.ratio <= self.target

    def as_dict(self):
        data = self._asdict()
        data.update(ratio=round(self.ratio, 2), met=self.met)
        return data


class Bench:
    def __init__(self, lab: Lab, size: dict[str, Any]):
        self.lab = lab
        self.size = size
        self.cells = [f'cell{index:02d}' for index in range(1, size['cells'] + 1)]
        self.dbs = {cell: f'bn_{cell}' for cell in self.cells}
        self.uuids = {cell: str(uuidlib.uuid5(uuidlib.NAMESPACE_URL, f'nova-cells-bench/{cell}')) for cell in self.cells}
        self.rows: list[Row] = []
        self.runner = AnsibleRunner(lab.dir / 'ansible')
        self.collections = lab.dir / 'ansible' / 'collections'
        self.module_env = {**lab.base_env, 'PYTHONPATH': str(self.collections)}
        self.work = lab.dir / 'bench'
        self.work.mkdir(exist_ok=True)
        self._count = 0
        self.memory = {}   # label -> max RSS MB of the processes measured under it
        self.conf = None
        self.cell_ids = {}

    # -- processes ---------------------------------------------------------------------------------
    def remember(self, label, run):
        self.memory[label] = max(self.memory.get(label, 0.0), run.rss_mb)

    def module(self, name, args, check=False, label=None):
        self._count += 1
        args_path = self.work / f'{self._count}-{name}.json'
        timings_path = self.work / f'{self._count}-{name}.timings'
        payload = {'config_files': [str(self.conf)], 'nova_manage': self.lab.nova_manage_command, **args, '_ansible_check_mode': check}
        args_path.write_text(json.dumps({'ANSIBLE_MODULE_ARGS': payload}), encoding='utf-8')
        run = measure([self.runner.tools.python, str(RUNNER), name, str(args_path), str(timings_path)], self.module_env, timings_path)
        try:
            result = json.loads(run.stdout.strip().splitlines()[-1])
        except (IndexError, ValueError):
            raise RuntimeError(f'module {name} printed no result (rc {run.rc}):\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}') from None
        if result.get('failed'):
            raise RuntimeError(f'module {name} failed: {result.get("msg")}')
        self.remember(f'module {label or name}', run)
        return run, result

    def nova_manage(self, *args, ok=(0,), label=None):
        argv = [*self.lab.nova_manage_command, '--config-file', str(self.conf), '--config-file', str(self.lab.fail_fast_conf), *args]
        run = measure(argv, self.lab.nova_env)
        self.remember(f'nova-manage {label or " ".join(args[:2])}', run)
        if run.rc not in ok:
            raise RuntimeError(f'nova-manage {" ".join(args)} rc {run.rc}:\n{run.stdout[-3000:]}\n{run.stderr[-1500:]}')
        return run

    # -- databases ---------------------------------------------------------------------------------
    def connect(self, database):
        return self.lab.db_connect(database, admin=True)

    def sql(self, database, statement, args=None):
        return self.lab.query(database, statement, args)

    def insert_many(self, database, head, row_sql, rows):
        connection = self.connect(database)
        try:
            with connection.cursor() as cursor:
                for start in range(0, len(rows), CHUNK):
                    part = rows[start:start + CHUNK]
                    cursor.execute(head + ', '.join([row_sql] * len(part)), [value for row in part for value in row])
        finally:
            connection.close()

    def setup(self):
        lab = self.lab
        started = time.monotonic()
        lab.create_database('bn_api')
        lab.create_database('bn_template')
        self.conf = lab.write_config('bench-api', {
            'DEFAULT': {'transport_url': lab.transport_url('bench')},
            'api_database': {'connection': lab.db_url('bn_api')},
            'database': {'connection': lab.db_url('bn_template')},
        })
        log('syncing the API database and a template cell database with real nova-manage (in parallel)')
        with ThreadPoolExecutor(max_workers=2) as pool:
            api = pool.submit(lab.nova_manage, 'api_db', 'sync', config_files=[self.conf])
            cell = pool.submit(lab.nova_manage, 'db', 'sync', '--local_cell', config_files=[self.conf])
            api.result().check()
            cell.result().check()
        tables = [next(iter(row.values())) for row in self.sql('bn_template', 'SHOW TABLES')]
        log(f'cloning {len(tables)} tables into {len(self.cells)} cell databases')

        def clone(cell):
            lab.create_database(self.dbs[cell])
            connection = self.connect(self.dbs[cell])
            try:
                with connection.cursor() as cursor:
                    for table in tables:
                        cursor.execute(f'CREATE TABLE IF NOT EXISTS `{table}` LIKE `bn_template`.`{table}`')
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=3) as pool:
            list(pool.map(clone, self.cells))
        for cell in self.cells:
            self.sql('bn_api', 'INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) '
                               'VALUES (UTC_TIMESTAMP(), %s, %s, %s, %s, 0)',
                     (self.uuids[cell], cell, lab.transport_url(cell), lab.db_url(self.dbs[cell])))
        self.cell_ids = {row['name']: row['id'] for row in self.sql('bn_api', 'SELECT id, name FROM cell_mappings')}
        log(f'setup done in {time.monotonic() - started:.0f} s')

    # -- 2. discover_hosts -------------------------------------------------------------------------
    def add_compute_nodes(self):
        per_cell = self.size['hosts'][-1] // len(self.cells)
        first = self.size['hosts'][0] // len(self.cells)
        for cell in self.cells:
            rows = [(f'{cell}-h{i:05d}', f'{cell}-h{i:05d}', str(uuidlib.uuid4()), 0 if i < first else None) for i in range(per_cell)]
            self.insert_many(self.dbs[cell],
                             'INSERT INTO compute_nodes (created_at, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, vcpus_used, '
                             'memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, supported_instances, stats, '
                             'cpu_allocation_ratio, ram_allocation_ratio, disk_allocation_ratio, deleted, mapped) VALUES ',
                             '(UTC_TIMESTAMP(), %s, %s, %s, 1000, 800000, 600000, 0, 512, 0, "fake", 1000, "{}", '
                             '\'[["x86_64", "fake", "hvm"]]\', \'{"failed_builds": "0"}\', 4.0, 1.0, 1.0, 0, %s)', rows)

    def reset_discovery(self):
        self.sql('bn_api', 'DELETE FROM host_mappings')
        for cell in self.cells:
            self.sql(self.dbs[cell], 'UPDATE compute_nodes SET mapped = 0, updated_at = NULL WHERE mapped = 1')

    def discovery_state(self):
        hosts = sorted((row['host'], row['cell_id']) for row in self.sql('bn_api', 'SELECT host, cell_id FROM host_mappings'))
        nodes = []
        for cell in self.cells:
            nodes += [(cell, row['id'], row['mapped'], row['updated_at'] is None) for row in self.sql(
                self.dbs[cell], 'SELECT id, mapped, updated_at FROM compute_nodes ORDER BY id')]
        return hosts, nodes

    def bench_discover(self):
        self.add_compute_nodes()
        for stage, total in enumerate(self.size['hosts']):
            if stage:
                for cell in self.cells:
                    self.sql(self.dbs[cell], 'UPDATE compute_nodes SET mapped = 0 WHERE mapped IS NULL')
            self.reset_discovery()
            log(f'discover_hosts, {total} unmapped computes in {len(self.cells)} cells: engine direct')
            ours, result = self.module('discover_hosts', {'engine': 'direct'}, label=f'discover_hosts engine=direct, {total:,} new hosts')
            mapped = sum(len(hosts) for hosts in result['mapped_hosts'].values())
            assert mapped == total, (mapped, total)
            direct_state = self.discovery_state()
            self.reset_discovery()
            log(f'discover_hosts, {total} unmapped computes: nova-manage cell_v2 discover_hosts')
            manage = self.nova_manage('cell_v2', 'discover_hosts', label=f'cell_v2 discover_hosts, {total:,} new hosts')
            same = direct_state == self.discovery_state()
            self.rows.append(Row('2', f'discover_hosts, {total:,} new computes in {len(self.cells)} cells', 'nova-manage', manage.seconds,
                                 ours.seconds, 'faster', 20, ours.rss_mb, manage.rss_mb,
                                 f'same rows: {"yes" if same else "NO"}; work {ours.timings["work"]:.2f} s'))

    # -- 3. map_instances --------------------------------------------------------------------------
    def bench_map_instances(self):
        cell = self.cells[0]
        count = self.size['instances']
        base = datetime.datetime(2024, 1, 1)
        rows = [(base + datetime.timedelta(seconds=i), str(uuidlib.uuid4()), f'u{i % 50}', f'p{i % 20}', f'vm{i}', f'vm{i}', f'{cell}-h{i % 100:05d}')
                for i in range(count)]
        self.insert_many(self.dbs[cell],
                         'INSERT INTO instances (created_at, deleted, uuid, user_id, project_id, display_name, hostname, host, node, vm_state, '
                         'power_state, memory_mb, vcpus, root_gb, ephemeral_gb, instance_type_id, launched_at, locked, cleaned, hidden) VALUES ',
                         '(%s, 0, %s, %s, %s, %s, %s, %s, NULL, "active", 1, 512, 1, 1, 0, 1, NULL, 0, 0, 0)', rows)
        self.sql(self.dbs[cell], 'UPDATE instances SET deleted = id, deleted_at = UTC_TIMESTAMP() WHERE id % 20 = 0')

        def state():
            return [tuple(row.values()) for row in self.sql('bn_api', 'SELECT instance_uuid, cell_id, project_id, user_id, queued_for_delete, '
                                                                      'created_at IS NULL, updated_at IS NULL FROM instance_mappings ORDER BY id')]

        log(f'map_instances, {count} instances: engine direct')
        ours, result = self.module('map_instances', {'cell': cell, 'engine': 'direct'}, label=f'map_instances engine=direct, {count:,} instances')
        assert result['mapped'] == count, result
        direct_state = state()
        self.sql('bn_api', 'DELETE FROM instance_mappings')
        log(f'map_instances, {count} instances: nova-manage cell_v2 map_instances')
        manage = self.nova_manage('cell_v2', 'map_instances', '--cell_uuid', self.uuids[cell], label=f'cell_v2 map_instances, {count:,} instances')
        same = direct_state == state()
        self.rows.append(Row('3', f'map_instances, {count:,} instances', 'nova-manage', manage.seconds, ours.seconds, 'faster', 20,
                             ours.rss_mb, manage.rss_mb, f'same rows: {"yes" if same else "NO"}; work {ours.timings["work"]:.2f} s'))

        log('map_instances, all mapped: nova-manage again, then the module (3 runs, median)')
        manage = self.nova_manage('cell_v2', 'map_instances', '--cell_uuid', self.uuids[cell], label=f'cell_v2 map_instances, {count:,} mapped')
        noops = []
        for _round in range(3):
            run, result = self.module('map_instances', {'cell': cell}, label=f'map_instances no-op, {count:,} mapped')
            assert not result['changed'] and result['commands'] == [], result
            noops.append(run)
        median = statistics.median(run.seconds for run in noops)
        self.rows.append(Row('3', f'map_instances, {count:,} instances, all mapped (no-op)', 'nova-manage', manage.seconds, median, 'faster',
                             100, max(run.rss_mb for run in noops), manage.rss_mb,
                             f'work {statistics.median(run.timings["work"] for run in noops):.2f} s'))

    # -- 1. no-op converge -------------------------------------------------------------------------
    def bench_converge(self):
        lab = self.lab
        n = len(self.cells)
        log(f'no-op converge of {n} cells: modules')
        ours = []
        for cell in self.cells:
            args = {'name': cell, 'database_connection': lab.db_url(self.dbs[cell]), 'transport_url': lab.transport_url(cell)}
            run, result = self.module('cell', args, label='cell, converged')
            assert not result['changed'] and result['commands'] == [], result
            ours.append(run)
        run, result = self.module('discover_hosts', {}, label=f'discover_hosts no-op, {n} cells')
        assert not result['changed'] and result['commands'] == [], result
        ours.append(run)
        run, result = self.module('map_instances', {'cell': self.cells[0]}, label=f'map_instances no-op, {self.size["instances"]:,} mapped')
        assert not result['changed'] and result['commands'] == [], result
        ours.append(run)
        ours_seconds = sum(run.seconds for run in ours)

        log(f'no-op converge of {n} cells: the same {n + 2} tasks as one ansible-playbook run')
        defaults = {'config_files': [str(self.conf)], 'nova_manage': lab.nova_manage_command}
        tasks = [{'name': f'cell {cell}', 'nova.cells.cell': {'name': cell, 'database_connection': lab.db_url(self.dbs[cell]),
                                                              'transport_url': lab.transport_url(cell)}} for cell in self.cells]
        tasks.append({'name': 'discover', 'nova.cells.discover_hosts': {}})
        tasks.append({'name': 'map', 'nova.cells.map_instances': {'cell': self.cells[0]}})
        play = {'hosts': 'localhost', 'gather_facts': False, 'module_defaults': {'group/nova.cells.cells': defaults}, 'tasks': tasks}
        playbook_runs = []
        for _round in range(3):
            started = time.monotonic()
            playbook = self.runner.run_playbook([play])
            playbook_runs.append(time.monotonic() - started)
            assert not playbook.failed and not playbook.changed, playbook.stdout[-2000:]
        playbook_seconds = statistics.median(playbook_runs)

        log(f'no-op converge of {n} cells: the cells role\'s form as one ansible-playbook run (cell with cells, discover_hosts with cells, map_instances)')
        mappings = [{'name': cell, 'database_connection': lab.db_url(self.dbs[cell]), 'transport_url': lab.transport_url(cell)} for cell in self.cells]
        role_tasks = [{'name': f'cells ({n})', 'nova.cells.cell': {'cells': mappings}, 'register': 'mappings'},
                      {'name': 'discover', 'nova.cells.discover_hosts': {'cells': list(self.cells)}},
                      {'name': 'map', 'nova.cells.map_instances': {'cell': self.cells[0]}},
                      {'name': 'every cell reported converged', 'ansible.builtin.assert': {
                          'that': [f"mappings.cells | rejectattr('changed') | list | length == {n}"], 'quiet': True}}]
        role_play = {'hosts': 'localhost', 'gather_facts': False, 'module_defaults': {'group/nova.cells.cells': defaults}, 'tasks': role_tasks}
        role_runs = []
        for _round in range(3):
            started = time.monotonic()
            role_playbook = self.runner.run_playbook([role_play])
            role_runs.append(time.monotonic() - started)
            assert not role_playbook.failed and not role_playbook.changed, role_playbook.stdout[-2000:]
        role_seconds = statistics.median(role_runs)
        empty_runs = []
        for _round in range(3):
            started = time.monotonic()
            empty = self.runner.run_playbook([{'hosts': 'localhost', 'gather_facts': False, 'tasks': [{'name': 'nothing', 'ansible.builtin.meta': 'noop'}]}])
            empty_runs.append(time.monotonic() - started)
            assert not empty.failed, empty.stdout[-2000:]
        empty_seconds = statistics.median(empty_runs)
        run, result = self.module('cell', {'cells': mappings}, label=f'cell with cells, {n} converged')
        assert not result['changed'] and result['commands'] == [] and len(result['cells']) == n, result
        one_cell_process = run

        log(f'no-op converge of {n} cells: nova-manage list_cells, update_cell, discover_hosts per cell ({3 * n} calls)')
        manage = []
        for cell in self.cells:
            manage.append(self.nova_manage('cell_v2', 'list_cells'))
            manage.append(self.nova_manage('cell_v2', 'update_cell', '--cell_uuid', self.uuids[cell], '--name', cell,
                                           '--transport-url', lab.transport_url(cell), '--database_connection', lab.db_url(self.dbs[cell])))
            manage.append(self.nova_manage('cell_v2', 'discover_hosts', '--cell_uuid', self.uuids[cell], label='cell_v2 discover_hosts, nothing new'))
        manage_seconds = sum(run.seconds for run in manage)
        work = sum(run.timings['work'] for run in ours)
        self.rows.append(Row('1', f'no-op converge, {n} cells: {len(ours)} module processes vs {len(manage)} nova-manage', 'nova-manage',
                             manage_seconds, ours_seconds, 'faster', 30, max(run.rss_mb for run in ours), max(run.rss_mb for run in manage),
                             f'mean module process {ours_seconds / len(ours):.2f} s (work {work / len(ours):.2f} s); '
                             f'mean nova-manage call {manage_seconds / len(manage):.1f} s'))
        self.rows.append(Row('1', f'  the same as one ansible-playbook run, one task per cell ({len(tasks)} tasks)', 'nova-manage',
                             manage_seconds, playbook_seconds, 'faster', None,
                             note=f'median of 3 runs ({", ".join(f"{value:.1f}" for value in playbook_runs)} s); the cells role before issue 16'))
        self.rows.append(Row('1', f'  one ansible-playbook run as the cells role runs it ({len(role_tasks) - 1} modules)', 'nova-manage',
                             manage_seconds, role_seconds, 'faster', 30,
                             note=f'median of 3 runs ({", ".join(f"{value:.1f}" for value in role_runs)} s); `cell` with {n} cells as one '
                                  f'process {one_cell_process.seconds:.2f} s (work {one_cell_process.timings["work"]:.2f} s)'))
        self.rows.append(Row('1', '  ceiling: an ansible-playbook run with no module (meta: noop)', 'nova-manage', manage_seconds, empty_seconds,
                             'faster', None, note=f'median of 3 runs ({", ".join(f"{value:.1f}" for value in empty_runs)} s): '
                                                  'ansible-playbook start-up alone, what no role can go below'))

    # -- 4. service_status -------------------------------------------------------------------------
    def bench_service_status(self):
        lab = self.lab
        per_cell = self.size['services'] // len(self.cells)
        now = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        stale = now - datetime.timedelta(days=1)
        hosts = {cell: [f'{cell}-h{i:05d}' for i in range(per_cell)] for cell in self.cells}
        for cell in self.cells:
            self.insert_many(self.dbs[cell], 'INSERT INTO services (created_at, host, `binary`, topic, report_count, disabled, deleted, uuid, '
                                             'forced_down, version, last_seen_up, updated_at) VALUES ',
                             '(%s, %s, "nova-compute", "compute", 1, 0, 0, %s, 0, 74, %s, %s)',
                             [(stale, host, str(uuidlib.uuid4()), stale if i % 10 == 9 else now, now) for i, host in enumerate(hosts[cell])])
        all_hosts = [host for cell in self.cells for host in hosts[cell]]
        total = len(all_hosts)
        common = {'service_down_time': 60, 'report_interval': 10}

        sys.path.insert(0, str(self.collections))
        from ansible_collections.nova.cells.plugins.module_utils._liveness_db import services_query

        def db_floor():
            started = time.monotonic()
            for cell in self.cells:
                connection = pymysql.connect(host='127.0.0.1', port=lab.mariadb.port, user='nova', password=_nova_password(),
                                             database=self.dbs[cell], cursorclass=pymysql.cursors.DictCursor)
                try:
                    with connection.cursor() as cursor:
                        sql, args = services_query()
                        cursor.execute(sql, args)
                        assert len(cursor.fetchall()) == per_cell
                finally:
                    connection.close()
            return time.monotonic() - started

        # memcached: the keys and values Nova's mc driver writes (dogpile CachedValue, pymemcache pickle protocol 5, flags 1)
        memcached = lab.memcached
        client = MemcacheClient(('127.0.0.1', memcached.port))
        keys = []
        try:
            values = {}
            for i, host in enumerate(all_hosts):
                key = hashlib.sha1(f'compute:{host}'.encode()).hexdigest()
                created = time.time() - (86400 if i % 10 == 9 else 1)
                values[key] = dogpile_dumps(CachedValue(now, {'ct': created, 'v': 2}))
                keys.append(key)
            for start in range(0, len(keys), 500):
                client.set_many({key: values[key] for key in keys[start:start + 500]}, flags=1)
        finally:
            client.close()

        def mc_floor():
            started = time.monotonic()
            reader = MemcacheClient(('127.0.0.1', memcached.port), deserializer=lambda _k, value, flags: (value, flags))
            try:
                found = 0
                for start in range(0, len(keys), 500):
                    found += len(reader.get_many(keys[start:start + 500]))
                assert found == total
            finally:
                reader.close()
            return time.monotonic() - started

        # ZooKeeper, legacy layout: {prefix}/compute/{host} persistent "ZKMembers", one ephemeral child per live process
        zookeeper = lab.zookeeper
        quiet = logging.getLogger('nova-cells-bench.kazoo')
        quiet.addHandler(logging.NullHandler())
        quiet.propagate = False
        writer = KazooClient(hosts=zookeeper.hosts, timeout=30.0, logger=quiet)
        writer.start(timeout=30)
        writer.ensure_path(f'{ZK_PREFIX}/compute')
        pending = [writer.create_async(f'{ZK_PREFIX}/compute/{host}', b'ZKMembers') for host in all_hosts]
        for result in pending:
            result.get(timeout=60)
        pending = [writer.create_async(f'{ZK_PREFIX}/compute/{host}/4242', b'0.5', ephemeral=True)
                   for i, host in enumerate(all_hosts) if i % 10 != 9]
        for result in pending:
            result.get(timeout=60)

        def zk_floor():
            started = time.monotonic()
            reader = KazooClient(hosts=zookeeper.hosts, timeout=10.0, read_only=True, logger=quiet)
            reader.start(timeout=30)
            try:
                listed = set(reader.get_children_async(f'{ZK_PREFIX}/compute').get(timeout=30))
                stats = []
                for start in range(0, total, 2000):
                    requests = [reader.exists_async(f'{ZK_PREFIX}/compute/{host}') for host in all_hosts[start:start + 2000] if host in listed]
                    stats += [request.get(timeout=30) for request in requests]
                assert sum(1 for stat in stats if stat.numChildren) == total - total // 10
            finally:
                reader.stop()
                reader.close()
            return time.monotonic() - started

        try:
            backends = {
                'db': ({'driver': 'db'}, db_floor),
                'mc': ({'driver': 'mc', 'memcache_servers': [memcached.servers]}, lambda: db_floor() + mc_floor()),
                'zk': ({'driver': 'zk', 'zookeeper_address': [zookeeper.hosts], 'zookeeper_sg_prefix': ZK_PREFIX},
                       lambda: db_floor() + zk_floor()),
            }
            for name, (args, floor) in backends.items():
                log(f'service_status over {total} services, driver {name}: module, then the raw round trips (3 rounds each, median)')
                runs, floors = [], []
                for _round in range(3):
                    run, result = self.module('service_status', {**common, **args}, label=f'service_status driver={name}, {total:,} services')
                    summary = {state: sum(entry[state] for entry in result['summary'].values()) for state in ('up', 'down', 'unknown')}
                    assert summary == {'up': total - total // 10, 'down': total // 10, 'unknown': 0}, (name, summary, result.get('warnings'))
                    runs.append(run)
                    floors.append(floor())
                work = statistics.median(run.timings['work'] for run in runs)
                wall = statistics.median(run.seconds for run in runs)
                rounds = {'db': f'{len(self.cells)} queries', 'mc': f'{len(self.cells)} queries + {-(-total // 500)} get_many',
                          'zk': f'{len(self.cells)} queries + 1 listing + {total} pipelined exists'}[name]
                self.rows.append(Row('4', f'service_status, {total:,} services, driver {name} (module work)', f'raw: {rounds}',
                                     statistics.median(floors), work, 'floor', 2, max(run.rss_mb for run in runs), None,
                                     f'module process wall {wall:.2f} s'))

        finally:
            writer.stop()
            writer.close()

    # -- output ------------------------------------------------------------------------------------
    def table(self):
        header = (f'{"#":<2} {"measurement":<66} {"baseline":<34} {"base s":>8} {"ours s":>8} {"ratio":>9} {"target":>8} {"met":>4} '
                  f'{"RSS MB ours/base":>17}  note')
        lines = [header, '-' * len(header)]
        for row in self.rows:
            if row.kind == 'faster':
                ratio = f'{row.ratio:8.1f}x'
                target = f'>={row.target:g}x' if row.target else ''
            else:
                ratio = f'{row.ratio:8.2f}x'
                target = f'<={row.target:g}x' if row.target else ''
            met = '' if row.met is None else ('yes' if row.met else 'NO')
            rss = '' if row.rss_ours is None else f'{row.rss_ours:.0f}' + ('' if row.rss_base is None else f' / {row.rss_base:.0f}')
            lines.append(f'{row.item:<2} {row.label:<66} {row.baseline_label:<34} {row.baseline:8.2f} {row.ours:8.2f} {ratio:>9} {target:>8} '
                         f'{met:>4} {rss:>17}  {row.note}')
        lines.append('')
        lines.append('5  peak memory (max RSS of the process, MB):')
        for label, rss in self.memory.items():
            lines.append(f'     {label:<66} {rss:8.0f}')
        return '\n'.join(lines)


def _nova_password():
    from harness import NOVA_DB_PASSWORD
    return NOVA_DB_PASSWORD


class CachedValue(NamedTuple):
    """dogpile.cache.api.CachedValue as dogpile 1.x defines it; pickled under its real name."""

    payload: Any
    metadata: Any


CachedValue.__module__ = 'dogpile.cache.api'
CachedValue.__qualname__ = CachedValue.__name__ = 'CachedValue'
_DOGPILE = {name: types.ModuleType(name) for name in ('dogpile', 'dogpile.cache', 'dogpile.cache.api')}
_DOGPILE['dogpile.cache.api'].CachedValue = CachedValue


def dogpile_dumps(value):
    saved = {name: sys.modules.get(name) for name in _DOGPILE}
    sys.modules.update(_DOGPILE)
    try:
        return pickle.dumps(value, protocol=5)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--small', action='store_true', help='3 cells, 300/600 hosts, 1,000 instances, 1,000 services (about 5 minutes)')
    parser.add_argument('--json', metavar='PATH', help='also write the figures as JSON')
    parser.add_argument('--only', default='1,2,3,4', help='comma-separated items to run (1 converge, 2 discover, 3 map, 4 status)')
    options = parser.parse_args()
    size = SIZES['small' if options.small else 'full']
    only = set(options.only.split(','))
    started = time.monotonic()
    load_before = os.getloadavg()
    lab = Lab.create()
    bench = Bench(lab, size)
    try:
        bench.setup()
        if '2' in only or '1' in only:
            bench.bench_discover() if '2' in only else (bench.add_compute_nodes(), bench.nova_manage('cell_v2', 'discover_hosts'))
        if '3' in only:
            bench.bench_map_instances()
        if '1' in only:
            bench.bench_converge()
        if '4' in only:
            bench.bench_service_status()
    finally:
        total = time.monotonic() - started
        load_after = os.getloadavg()
        if bench.rows:
            rows = sorted(bench.rows, key=lambda row: row.item)
            bench.rows = rows
            print(bench.table())
            print(f'\nsizes: {size}; wall time {total:.0f} s; {os.cpu_count()} CPUs; load average {load_before[0]:.1f} at start, '
                  f'{load_after[0]:.1f} at end. Module figures are whole processes (Python start-up, imports, work, output), '
                  'as Ansible runs them on the managed host; "work" excludes the interpreter start-up and imports.')
            if options.json:
                Path(options.json).write_text(json.dumps({
                    'sizes': size, 'wall_seconds': round(total, 1), 'cpus': os.cpu_count(),
                    'load_average': {'start': load_before, 'end': load_after},
                    'rows': [row.as_dict() for row in rows], 'peak_rss_mb': bench.memory}, indent=2), encoding='utf-8')
        lab.close()


if __name__ == '__main__':
    main()
