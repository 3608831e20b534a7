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
  - Disabled cells are included, as Nova does.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes
  - nova.cells._attributes.actiongroup_cells
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  idempotent:
    support: full
options:
  cell:
    description:
      - Only discover hosts in this cell (exact name). Default is every cell except cell0.
    type: str
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
'''

EXAMPLES = r'''
- name: Map every new compute host
  nova.cells.discover_hosts:
    config_files: [/etc/nova/nova.conf]
  run_once: true

- name: Map new hosts of cell2 only
  nova.cells.discover_hosts:
    cell: cell2
'''

RETURN = r'''
mapped_hosts:
  description: Newly mapped hosts per cell name (in check mode, the hosts that would be mapped).
  returned: always
  type: dict
  sample: {cell1: [cmp1, cmp2]}
unmapped_hosts:
  description: Candidates found per cell before the run.
  returned: always
  type: dict
  sample: {cell1: [cmp1, cmp2], cell2: []}
commands:
  description: The nova-manage command lines that ran, or would run in check mode.
  returned: always
  type: list
  elements: str
'''

import random
import re
import time

from ansible_collections.nova.cells.plugins.module_utils._cells import find_cell, regular_cells, require_cell
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import NOOP, RETRY

# discover_hosts --verbose prints one of these per host it maps (nova/objects/host_mapping.py).
_MAPPED_LINE = re.compile(r"^Creating host mapping for (?:compute host '(?P<node_host>[^']*)'|service (?P<service_host>\S+))")


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
        by_service=dict(type='bool', default=False),
        retries=dict(type='int', default=5),
        retry_delay=dict(type='float', default=3),
    )
    module_kwargs = dict(supports_check_mode=True)

    def run(self):
        if self.params['retries'] < 0 or self.params['retry_delay'] < 0:
            raise NovaCellsError('retries and retry_delay must not be negative')
        api_db = self.api_db()
        cells = api_db.cells()
        targets = [require_cell(cells, self.params['cell'])] if self.params['cell'] else regular_cells(cells)
        for cell in targets:
            find_cell(cells, name=cell['name'])  # duplicate names are an error here too

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
        self.exit(changed=bool(mapped), mapped_hosts=mapped, unmapped_hosts=candidates)

    def candidates(self, api_db, cell):
        cell_db = self.cell_db(cell)
        hosts = cell_db.compute_service_hosts() if self.params['by_service'] else cell_db.unmapped_compute_hosts()
        already = api_db.mapped_hosts(hosts)
        return [host for host in hosts if host not in already]

    def arguments(self, cell):
        args = ['--cell_uuid', cell['uuid'], '--strict', '--verbose']
        if self.params['by_service']:
            args.append('--by-service')
        return args

    def discover(self, api_db, cell, candidates):
        """Run discovery for one cell; returns the candidates that this run mapped."""
        context = dict(cell=cell['name'], uuid=cell['uuid'])
        mapped_something = False
        for attempt in range(self.params['retries'] + 1):
            result = self.nova_manage.run(('cell_v2', 'discover_hosts'), self.arguments(cell), context=context)
            if result.status != RETRY:
                mapped_something = mapped_something or result.status != NOOP
                break
            # A collision aborts the run part-way; what it mapped before that still counts.
            mapped_something = mapped_something or bool(parse_mapped_hosts(result.stdout))
            if attempt == self.params['retries']:
                raise NovaCellsError('discover_hosts for cell %r collided with another discovery %d times; '
                                     'run discovery from one place at a time (run_once) and leave '
                                     '[scheduler]/discover_hosts_in_cells_interval off' % (cell['name'], attempt + 1))
            # Jitter so that parallel runs do not collide again in lock-step.
            time.sleep(random.uniform(0.2, max(0.2, self.params['retry_delay'])))
        if not mapped_something:
            return []
        # Read back rather than trust the verbose output: it names a host before its mapping is written.
        now_mapped = {row['host'] for row in api_db.host_mappings(cell['id'])}
        return [host for host in candidates if host in now_mapped]


def main():
    DiscoverHostsModule()()


if __name__ == '__main__':
    main()
