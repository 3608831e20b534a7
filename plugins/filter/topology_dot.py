# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: topology_dot
short_description: A picture of the deployment, as Graphviz DOT, from cell_info and service_status results
version_added: 0.1.0
description:
  - Turns the results of M(nova.cells.cell_info) and M(nova.cells.service_status) into a Graphviz DOT graph
    that C(dot -Tsvg) renders, for example through the C(status) entry point of the R(nova.cells.cells role,
    ansible_collections.nova.cells.cells_role) with C(nova_cells_status_picture) set.
  - One cluster per cell with its database, its message queue, its conductors and its computes; one for the API
    level (cell0, with the schedulers and super conductors that report there under the superconductor layout).
  - Services are filled by liveness (V(up) green, V(down) red, V(unknown) yellow); disabled services are dashed.
    A disabled cell is drawn dashed and grey, a cell whose database did not answer with a red frame.
    Mapped hosts without a service row and computes not mapped yet are drawn grey.
  - No password is drawn. Database and message-queue URLs are reduced to scheme, user, hosts and path; their
    password and query string are dropped, even if the input was not masked.
author: nova.cells contributors (@nova-cells)
positional: _input, service_status
options:
  _input:
    description: The registered result of M(nova.cells.cell_info), or its RV(nova.cells.cell_info#module:cells) list.
    type: raw
    required: true
  service_status:
    description: The registered result of M(nova.cells.service_status). Without it only the cells and their hosts are drawn.
    type: dict
  title:
    description: The first line of the picture's heading.
    type: str
    default: nova.cells deployment
seealso:
  - module: nova.cells.cell_info
  - module: nova.cells.service_status
  - name: Graphviz
    description: The dot layout program and the DOT language.
    link: https://graphviz.org/
'''

EXAMPLES = r'''
- name: Read the cells
  nova.cells.cell_info:
  register: cells

- name: Read the liveness of their services
  nova.cells.service_status:
    cells: "{{ cells.cells | map(attribute='name') | select | list }}"
  register: services

- name: Write the DOT text on the controller
  ansible.builtin.copy:
    content: "{{ cells | nova.cells.topology_dot(services, title='production') }}"
    dest: /tmp/nova-topology.dot
    mode: "0644"
  delegate_to: localhost

# Then: dot -Tsvg -o /tmp/nova-topology.svg /tmp/nova-topology.dot
'''

RETURN = r'''
_value:
  description: The Graphviz DOT text (a C(digraph)).
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils._topology import TopologyError
from ansible_collections.nova.cells.plugins.module_utils._topology import topology_dot as _topology_dot


def topology_dot(cell_info, service_status=None, title=None):
    try:
        return _topology_dot(cell_info, service_status, title=title)
    except TopologyError as exc:
        raise AnsibleFilterError(f'nova.cells.topology_dot: {exc}') from None


class FilterModule:
    def filters(self):
        return {'topology_dot': topology_dot}
