#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: orphans_info
short_description: Find instances, computes and host mappings that the cell mappings do not tie together
version_added: 0.2.0
description:
  - For each regular cell (cell0 holds no hosts), reads with PyMySQL
  - instances of the cell database without an instance mapping (the "404 after an upgrade" of Nova's cells FAQ;
    deleted instances included and hidden ones not, as C(nova-manage cell_v2 map_instances) counts them; the marker
    row that the online data migration C(fill_virtual_interface_list) leaves, uuid C(00000000-0000-0000-0000-000000000000),
    is not counted);
  - compute hosts that registered in the cell database but have no host mapping (what C(discover_hosts) would map);
  - host mappings to the cell whose host has neither a compute node nor a nova-compute service in the cell database
    (stale mappings left after a compute was removed).
  - Also the instance mappings that have no cell yet (instances never scheduled), and per cell its mapped hosts and
    its live instances (count, and the first O(max_uuids) as C(uuid (host))), which a cell removal must refuse.
  - Changes nothing. M(nova.cells.map_instances) maps the instances, M(nova.cells.discover_hosts) the computes, and
    M(nova.cells.host) with O(nova.cells.host#module:state=absent) removes a stale host mapping.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.info
options:
  cells:
    description:
      - Only these cells (exact names). Unknown names are an error. Default every regular cell.
    type: list
    elements: str
  max_uuids:
    description:
      - How many uuids of unmapped (and of live) instances to return per cell (the counts are always complete).
    type: int
    default: 20
'''

EXAMPLES = r'''
- name: Find orphans
  nova.cells.orphans_info:
    config_files: [/etc/nova/manage/api.conf]
  register: orphans
'''

RETURN = r'''
cells:
  description: One entry per regular cell.
  returned: always
  type: list
  elements: dict
  sample:
    - name: cell1
      unmapped_instances: 2
      unmapped_instance_uuids: [3f0c..., 9a11...]
      unmapped_computes: [cmp7]
      stale_host_mappings: [cmp3]
      hosts: [cmp1, cmp3]
      live_instances: 1
      live_instance_uuids: ["0b7c... (cmp1)"]
      error: null
unscheduled_instance_mappings:
  description: Instance mappings with no cell (not scheduled yet), the map_instances marker row excluded.
  returned: always
  type: int
total:
  description: Unmapped instances, unmapped computes and stale host mappings over every cell.
  returned: always
  type: int
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import regular_cells
from ansible_collections.nova.cells.plugins.module_utils._databases import MARKER_PROJECT_ID, DatabaseError, unmapped_instance_uuids
from ansible_collections.nova.cells.plugins.module_utils._health import stale_host_mappings
from ansible_collections.nova.cells.plugins.module_utils._housekeeping import select_cells
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule

# The deleted instance row Nova's fill_virtual_interface_list online migration creates as its marker
# (nova/objects/virtual_interface.py FAKE_UUID); it never gets an instance mapping and is not an orphan.
VIF_MARKER_UUID = '00000000-0000-0000-0000-000000000000'


class OrphansInfoModule(NovaCellsModule):
    argument_spec = dict(
        cells=dict(type='list', elements='str'),
        max_uuids=dict(type='int', default=20),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_nova_manage = False

    def cell_report(self, api_db, cell):
        entry = dict(name=cell['name'], uuid=cell['uuid'], unmapped_instances=0, unmapped_instance_uuids=[],
                     unmapped_computes=[], stale_host_mappings=[], live_instances=0, live_instance_uuids=[],
                     hosts=[], error=None)
        try:
            cell_db = self.cell_db(cell)
            uuids = sorted(unmapped_instance_uuids(api_db, cell_db, cell['id'],
                                                   hidden_column=cell_db.has_hidden_column()) - {VIF_MARKER_UUID})
            entry['unmapped_instances'] = len(uuids)
            entry['unmapped_instance_uuids'] = uuids[:self.params['max_uuids']]
            computes = cell_db.unmapped_compute_hosts()
            mapped = {row['host'].lower() for row in api_db.query('SELECT host FROM host_mappings')}
            entry['unmapped_computes'] = [host for host in computes if host.lower() not in mapped]
            all_computes = [row['host'] for row in cell_db.query(
                'SELECT DISTINCT host FROM compute_nodes WHERE deleted = 0 AND host IS NOT NULL')]
            hosts = [row['host'] for row in api_db.host_mappings(cell['id'])]
            entry['hosts'] = hosts
            entry['stale_host_mappings'] = stale_host_mappings(hosts, all_computes, cell_db.compute_service_hosts())
            live = cell_db.query('SELECT uuid, host FROM instances WHERE deleted = 0 ORDER BY created_at, id LIMIT %s',
                                 (self.params['max_uuids'],))
            entry['live_instances'] = int(cell_db.live_instance_count() or 0)
            entry['live_instance_uuids'] = ['{} ({})'.format(row['uuid'], row['host']) for row in live]
        except (DatabaseError, NovaCellsError) as exc:
            entry['error'] = self.mask(str(exc))
        return entry

    def run(self):
        if self.params['max_uuids'] < 0:
            raise NovaCellsError(f"max_uuids must be 0 or more, not {self.params['max_uuids']}")
        api_db = self.api_db()
        try:
            cells = select_cells(regular_cells(api_db.cells()), self.params['cells'])
        except ValueError as exc:
            raise NovaCellsError(str(exc)) from None
        report = [self.cell_report(api_db, cell) for cell in cells]
        unscheduled = api_db.scalar('SELECT COUNT(*) AS n FROM instance_mappings WHERE cell_id IS NULL AND project_id != %s',
                                    (MARKER_PROJECT_ID,))
        total = sum(entry['unmapped_instances'] + len(entry['unmapped_computes']) + len(entry['stale_host_mappings'])
                    for entry in report)
        self.exit(changed=False, cells=report, unscheduled_instance_mappings=unscheduled, total=total)


def main():
    OrphansInfoModule()()


if __name__ == '__main__':
    main()
