#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: discover_hosts
short_description: Map new compute hosts to their cells
version_added: 0.1.0
description:
  - Maps compute hosts that registered in a cell database but have no host mapping yet, per cell.
  - First reads the unmapped compute nodes of each cell database with PyMySQL (the same predicate Nova uses). When
    there are none it returns C(changed=false) without running C(nova-manage) (which costs several seconds per call).
  - Otherwise runs C(nova-manage cell_v2 discover_hosts --cell_uuid U --strict --verbose) for each cell that has
    candidates, retries the collision with a concurrent discovery (rc 2), and returns the newly mapped hosts per cell.
  - With O(engine=direct), the same rows are written with set-based SQL instead of C(nova-manage) (see O(engine)).
  - Disabled cells are included, as Nova does.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.action
options:
  cell:
    description:
      - Only discover hosts in this cell (exact name). Default is every cell except cell0.
    type: str
  cells:
    description:
      - Only discover hosts in these cells (exact names), in one module run. Default is every cell except cell0.
      - Mutually exclusive with O(cell). An empty list discovers nothing.
    type: list
    elements: str
    version_added: 0.2.0
  by_service:
    description:
      - Look for C(nova-compute) services instead of compute nodes (C(--by-service)), for example for ironic.
      - Nova never marks compute nodes as mapped in this mode, so later plain runs re-check them (cheaply).
    type: bool
    default: false
  retries:
    description:
      - How many times to retry when another discovery ran at the same moment (nova-manage rc 2).
    type: int
    default: 5
  retry_delay:
    description:
      - Upper bound in seconds of the random delay before a retry.
    type: float
    default: 3
  engine:
    description:
      - How the host mappings are created.
      - V(nova_manage) runs C(nova-manage cell_v2 discover_hosts) for each cell that has candidates. Each run pays
        3-7 seconds of start-up and about 11 SQL statements per host (1,000 hosts take about 20 seconds, 5,000 about
        65 seconds).
      - V(direct) writes the same rows itself, set-based, with PyMySQL. Per cell it reads the unmapped compute nodes
        with Nova's predicate (C(mapped < 1 AND deleted = 0)) in one query, inserts the missing host mappings with
        multi-row C(INSERT IGNORE) in chunks of 1,000, and marks C(mapped = 1) with one C(UPDATE) per chunk on
        exactly the nodes nova-manage marks (the first node of each host this run mapped; nodes whose host was
        already mapped, to any cell, stay at 0). It also writes the allocation-ratio defaults nova-manage writes
        when it loads nodes whose ratios are NULL or 0.0. With O(by_service), nothing is written to the cell
        database, as with nova-manage. The API and cell databases end up exactly as nova-manage leaves them.
      - V(direct) is safe against concurrent discoveries (another run of this module, a real C(nova-manage cell_v2
        discover_hosts), the scheduler's periodic task). The unique key on the host decides which writer wins, every
        host is mapped exactly once, and a run reports only the hosts it inserted itself.
      - Choose V(direct) for large clouds (thousands of computes) and for frequent converges. It is written for the
        schema and behaviour of the Nova release this collection targets (34); use V(nova_manage) for other
        releases. The trade-off is that it bypasses nova-manage and Nova's object layer, so it does not pick up
        changes that a later Nova makes to discovery. For a cell whose state it does not reproduce exactly (compute
        nodes with a pre-Stein C(numa_topology), non-ASCII host names), it runs nova-manage for that cell with a warning.
      - Check mode and C(changed) are the same for both engines.
    type: str
    choices: [nova_manage, direct]
    default: nova_manage
'''

EXAMPLES = r'''
- name: Map every new compute host
  nova.cells.discover_hosts:
    config_files: [/etc/nova/nova.conf]
  run_once: true

- name: Map new hosts of cell2 only
  nova.cells.discover_hosts:
    cell: cell2

- name: Map new hosts of the cells this play manages, in one run
  nova.cells.discover_hosts:
    cells: [cell2, cell3]

- name: Map thousands of new hosts in seconds (set-based SQL, same rows as nova-manage)
  nova.cells.discover_hosts:
    engine: direct
  run_once: true
'''

RETURN = r'''
mapped_hosts:
  description: Hosts this run mapped, per cell name (in check mode, the hosts that would be mapped). Hosts that a
    parallel discovery mapped are not included, with either engine.
  returned: always
  type: dict
  sample: {cell1: [cmp1, cmp2]}
unmapped_hosts:
  description: Candidates found per cell before the run.
  returned: always
  type: dict
  sample: {cell1: [cmp1, cmp2], cell2: []}
commands:
  description: The nova-manage command lines that ran, or would run in check mode (empty with O(engine=direct), unless
    a cell fell back to nova-manage).
  returned: always
  type: list
  elements: str
'''

import random
import re
import time

from ansible_collections.nova.cells.plugins.module_utils import _direct
from ansible_collections.nova.cells.plugins.module_utils._cells import find_cell, regular_cells, require_cell
from ansible_collections.nova.cells.plugins.module_utils._databases import host_key
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import RETRY

# discover_hosts --verbose prints one of these per host it maps (nova/objects/host_mapping.py).
_MAPPED_LINE = re.compile(r"^Creating host mapping for (?:compute host '(?P<node_host>[^']*)'|service (?P<service_host>\S+))")


def hosts_created_by_run(stdout, collided):
    """The hosts one ``discover_hosts --verbose`` run created mappings for.

    nova-manage prints "Creating host mapping for ..." and then inserts the mapping; when another run
    inserted it first, the insert fails (rc 2) and the run stops: the last host it named is not its own.
    """
    hosts = parse_mapped_hosts(stdout)
    return hosts[:-1] if collided and hosts else hosts


def parse_mapped_hosts(stdout):
    hosts = []
    for line in stdout.splitlines():
        match = _MAPPED_LINE.match(line.strip())
        if match:
            host = match.group('node_host') or match.group('service_host')
            if host not in hosts:
                hosts.append(host)
    return hosts


class DiscoverHostsModule(NovaCellsModule):
    argument_spec = dict(
        cell=dict(type='str'),
        cells=dict(type='list', elements='str'),
        by_service=dict(type='bool', default=False),
        retries=dict(type='int', default=5),
        retry_delay=dict(type='float', default=3),
        engine=dict(type='str', default='nova_manage', choices=['nova_manage', 'direct']),
    )
    module_kwargs = dict(supports_check_mode=True, mutually_exclusive=[('cell', 'cells')])

    def run(self):
        if self.params['retries'] < 0 or self.params['retry_delay'] < 0:
            raise NovaCellsError('retries and retry_delay must not be negative')
        api_db = self.api_db()
        cells = api_db.cells()
        if self.params['cells'] is not None:
            names = list(dict.fromkeys(self.params['cells']))
            targets = [require_cell(cells, name) for name in names]
        elif self.params['cell']:
            targets = [require_cell(cells, self.params['cell'])]
        else:
            targets = regular_cells(cells)
        for cell in targets:
            find_cell(cells, name=cell['name'])  # duplicate names are an error here too

        if self.params['engine'] == 'direct':
            return self.run_direct(api_db, targets)
        candidates = {cell['name']: self.candidates(api_db, cell) for cell in targets}
        mapped = {}
        for cell in targets:
            if not candidates[cell['name']]:
                continue
            if self.check_mode:
                self.nova_manage.run(('cell_v2', 'discover_hosts'), self.arguments(cell))
                mapped[cell['name']] = candidates[cell['name']]
            else:
                hosts = self.discover(api_db, cell, candidates[cell['name']])
                if hosts:
                    mapped[cell['name']] = hosts
        return dict(changed=bool(mapped), mapped_hosts=mapped, unmapped_hosts=candidates)

    def run_direct(self, api_db, targets):
        """engine=direct: plan every cell first (reads only), then write cell by cell."""
        plans = {cell['name']: _direct.plan_discovery(api_db, self.cell_db(cell), self.params['by_service']) for cell in targets}
        # Reported like the nova_manage engine reports them: sorted host names.
        candidates = {name: sorted(plan.hosts) for name, plan in plans.items()}
        ratios = None
        mapped = {}
        # Kept in the result as it grows: a failure in a later cell still reports what earlier cells mapped.
        self.result.update(mapped_hosts=mapped, unmapped_hosts=candidates)
        for cell in targets:
            plan = plans[cell['name']]
            if not plan.hosts:
                continue
            if plan.unsupported:
                self.ansible.warn('discover_hosts engine=direct: cell {!r} has {}; nova-manage maps its hosts instead'.format(cell['name'], plan.unsupported))
            if self.check_mode:
                if plan.unsupported:
                    self.nova_manage.run(('cell_v2', 'discover_hosts'), self.arguments(cell))
                mapped[cell['name']] = sorted(plan.hosts)
                continue
            if plan.unsupported:
                hosts = self.discover(api_db, cell, plan.hosts)
            else:
                if ratios is None and not plan.by_service:
                    try:
                        ratios = _direct.allocation_ratios(self.config.get)
                    except _direct.DirectUnsupported as exc:
                        raise NovaCellsError(str(exc)) from None
                hosts = _direct.discover(api_db, self.cell_db(cell), cell['id'], plan, ratios)
            if hosts:
                mapped[cell['name']] = sorted(hosts)
                self.result['changed'] = True
        return dict(changed=bool(mapped), mapped_hosts=mapped, unmapped_hosts=candidates)

    def candidates(self, api_db, cell):
        cell_db = self.cell_db(cell)
        hosts = cell_db.compute_service_hosts() if self.params['by_service'] else cell_db.unmapped_compute_hosts()
        return api_db.unmapped_hosts(hosts)

    def arguments(self, cell):
        args = ['--cell_uuid', cell['uuid'], '--strict', '--verbose']
        if self.params['by_service']:
            args.append('--by-service')
        return args

    def discover(self, api_db, cell, candidates):
        """Run discovery for one cell; returns the candidates that this run (not a parallel one) mapped."""
        context = dict(cell=cell['name'], uuid=cell['uuid'])
        created = []
        for attempt in range(self.params['retries'] + 1):
            result = self.nova_manage.run(('cell_v2', 'discover_hosts'), self.arguments(cell), context=context)
            # Only the hosts this run inserted: a parallel run may have mapped the other candidates.
            created.extend(hosts_created_by_run(result.stdout, collided=result.status == RETRY))
            if result.status != RETRY:
                break
            if attempt == self.params['retries']:
                raise NovaCellsError(f"discover_hosts for cell {cell['name']!r} collided with another discovery {attempt + 1} times; "
                                     'run discovery from one place at a time (run_once) and leave '
                                     '[scheduler]/discover_hosts_in_cells_interval off')
            # Jitter so that parallel runs do not collide again in lock-step.
            time.sleep(random.uniform(0.2, max(0.2, self.params['retry_delay'])))
        if not created:
            return []
        # Read back as well: a host counts once its mapping is in this cell.
        now_mapped = {host_key(row['host']) for row in api_db.host_mappings(cell['id'])}
        created = {host_key(host) for host in created}
        return [host for host in candidates if host_key(host) in created and host_key(host) in now_mapped]


def main():
    DiscoverHostsModule()()


if __name__ == '__main__':
    main()
