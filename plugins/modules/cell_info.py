#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: cell_info
short_description: Report Nova cells v2 state as structured data
version_added: 0.1.0
description:
  - Reads cell mappings, host mappings and instance mappings from the API database and unmapped compute nodes from
    each cell database, with PyMySQL. Runs no C(nova-manage) and changes nothing.
  - URLs are returned with passwords masked; template URLs are returned as stored.
  - A cell whose database cannot be reached is reported with RV(cells[].reachable=false) and the reason, not as a
    failure of the module.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common
  - nova.cells._attributes.info
options:
  cells:
    description:
      - Only report these cells (exact names). Unknown names are an error.
    type: list
    elements: str
  hosts:
    description:
      - Include the mapped hosts of each cell.
    type: bool
    default: true
  unmapped:
    description:
      - Include compute hosts in each cell database that C(discover_hosts) would map (one query per cell database).
    type: bool
    default: true
'''

EXAMPLES = r'''
- name: Read the cells
  nova.cells.cell_info:
    config_files: [/etc/nova/nova.conf]
  register: cells

- name: Show cell names and their host counts
  ansible.builtin.debug:
    msg: "{{ cells.cells | items2dict(key_name='name', value_name='host_count') }}"
'''

RETURN = r'''
cells:
  description: One entry per cell mapping, in creation order.
  returned: always
  type: list
  elements: dict
  contains:
    uuid:
      description: Cell uuid.
      type: str
    name:
      description: Cell name (may be null for a nameless cell made by C(simple_cell_setup)).
      type: str
    transport_url:
      description: Stored transport URL, password masked.
      type: str
    database_connection:
      description: Stored database URL, password masked.
      type: str
    disabled:
      description: Disabled for scheduling.
      type: bool
    template:
      description: Whether either URL is a template rendered by each host from its own nova.conf.
      type: bool
    hosts:
      description: Mapped hosts (when O(hosts=true)).
      type: list
      elements: str
    host_count:
      description: Number of mapped hosts.
      type: int
    unmapped_hosts:
      description: Compute hosts of the cell that are not mapped yet (when O(unmapped=true)).
      type: list
      elements: str
    instance_mappings:
      description: Number of instance mappings that point at the cell.
      type: int
    reachable:
      description: Whether the cell database answered (when O(unmapped=true)); cell0 is not queried.
      type: bool
    error:
      description: Why the cell database could not be read.
      type: str
      returned: when the cell database could not be read
unmapped_instance_mappings:
  description: Instance mappings with no cell yet (not scheduled), the map_instances marker row excluded.
  returned: always
  type: int
'''

from ansible_collections.nova.cells.plugins.module_utils._cells import public_cell, select_by_name
from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID, DatabaseError
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._urls import is_template


class CellInfoModule(NovaCellsModule):
    argument_spec = dict(
        cells=dict(type='list', elements='str'),
        hosts=dict(type='bool', default=True),
        unmapped=dict(type='bool', default=True),
    )
    module_kwargs = dict(supports_check_mode=True)
    uses_nova_manage = False

    def run(self):
        api_db = self.api_db()
        cells = api_db.cells()
        if self.params['cells'] is not None:
            cells = select_by_name(cells, self.params['cells'])
        host_mappings = api_db.host_mappings()
        instance_counts = api_db.instance_mapping_counts()
        report = []
        for cell in cells:
            entry = public_cell(cell)
            entry['template'] = is_template(cell['transport_url']) or is_template(cell['database_connection'])
            hosts = [row['host'] for row in host_mappings if row['cell_id'] == cell['id']]
            entry['host_count'] = len(hosts)
            if self.params['hosts']:
                entry['hosts'] = hosts
            entry['instance_mappings'] = instance_counts.get(cell['id'], 0)
            if self.params['unmapped'] and cell['uuid'] != CELL0_UUID:
                entry.update(self.unmapped_hosts(api_db, cell))
            report.append(entry)
        return dict(changed=False, cells=report, unmapped_instance_mappings=instance_counts.get(None, 0))

    def unmapped_hosts(self, api_db, cell):
        try:
            candidates = self.cell_db(cell).unmapped_compute_hosts()
        except (DatabaseError, NovaCellsError) as exc:
            self.ansible.warn(self.mask('cell {!r}: {}'.format(cell['name'], exc)))
            return dict(reachable=False, error=self.mask(str(exc)), unmapped_hosts=[])
        return dict(reachable=True, unmapped_hosts=api_db.unmapped_hosts(candidates))


def main():
    CellInfoModule()()


if __name__ == '__main__':
    main()
