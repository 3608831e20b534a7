#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: reachability_info
short_description: Check that every cell's database and message queue answer, with the credentials Nova uses
version_added: 0.2.0
description:
  - For each cell mapping, renders its URLs with O(config_files) as Nova does (templates included) and
    logs in to the database (C(SELECT 1)) and to every message-queue broker of the transport URL (AMQP 0-9-1 login
    with PLAIN, then opening the cell's virtual host, as oslo.messaging starts). Nothing is declared or written.
  - cell0 has no message queue (C(none:///)); its queue is reported as not applicable (C(null)).
  - Changes nothing; an unreachable cell is reported, not a failure of the module.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.info
options:
  cells:
    description:
      - Only these cells (exact names). Unknown names are an error. Default every cell mapping.
    type: list
    elements: str
  queue_timeout:
    description:
      - Seconds to wait for each broker.
    type: float
    default: 5
'''

EXAMPLES = r'''
- name: Are the cells' databases and queues reachable?
  nova.cells.reachability_info:
    config_files: [/etc/nova/manage/api.conf]
  register: reach
'''

RETURN = r'''
cells:
  description: One entry per cell, in the API database's order.
  returned: always
  type: list
  elements: dict
  sample:
    - name: cell1
      uuid: 6c1f...
      database: {reachable: true, error: null}
      queue: {reachable: false, error: "login refused by 127.0.0.1:5672 (403 ACCESS_REFUSED ...)"}
reachable:
  description: Whether every database and every queue answered.
  returned: always
  type: bool
'''

from ansible_collections.nova.cells.plugins.module_utils._databases import DatabaseError
from ansible_collections.nova.cells.plugins.module_utils._health import amqp_login, queue_targets
from ansible_collections.nova.cells.plugins.module_utils._housekeeping import select_cells
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._urls import UrlError, parse_transport_url


class ReachabilityInfoModule(NovaCellsModule):
    argument_spec = dict(
        cells=dict(type='list', elements='str'),
        queue_timeout=dict(type='float', default=5),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_nova_manage = False

    def database(self, cell):
        try:
            self.cell_db(cell).scalar('SELECT 1 AS ok')
        except (DatabaseError, NovaCellsError) as exc:
            return dict(reachable=False, error=self.mask(str(exc)))
        return dict(reachable=True, error=None)

    def queue(self, cell):
        url = self.rendered_cell_urls(cell)[0]
        if (url or '').startswith('none:'):
            return dict(reachable=None, error=None)
        try:
            targets = queue_targets(parse_transport_url(url, 'transport URL of cell {!r}'.format(cell['name'])))
        except UrlError as exc:
            return dict(reachable=False, error=self.mask(str(exc)))
        if not targets:
            return dict(reachable=False, error='the transport URL of cell {!r} names no broker'.format(cell['name']))
        errors = [error for error in (amqp_login(*target, timeout=self.params['queue_timeout']) for target in targets) if error]
        # oslo.messaging fails over between brokers: one that answers is enough; report the others.
        return dict(reachable=len(errors) < len(targets), error=self.mask('; '.join(errors)) if errors else None)

    def run(self):
        try:
            cells = select_cells(self.api_db().cells(), self.params['cells'])
        except ValueError as exc:
            raise NovaCellsError(str(exc)) from None
        report = []
        for cell in cells:
            report.append(dict(name=cell['name'], uuid=cell['uuid'], database=self.database(cell), queue=self.queue(cell)))
        reachable = all(entry['database']['reachable'] and entry['queue']['reachable'] is not False for entry in report)
        self.exit(changed=False, cells=report, reachable=reachable)


def main():
    ReachabilityInfoModule()()


if __name__ == '__main__':
    main()
