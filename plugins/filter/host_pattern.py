# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: host_pattern
short_description: The host pattern of a set of Nova hosts, from the node type groups
version_added: 0.3.0
description:
  - "The host patterns of the nova.cells playbooks (C(hosts) of each play), from C(nova_node_type_groups)
    (C({node type: inventory group}))."
  - "O(selection): C(all) (the group of every node type), C(api_level) (super conductors, APIs, schedulers: the hosts
    with the API database credentials), C(cell_level) (cell conductors, computes, console proxies, cell metadata APIs),
    C(computes_first) (every group, the computes' first), C(lab_infra) (C(nova_lab_infra), the infrastructure of a test
    lab), or a list of node types (their groups, in that order)."
  - The playbooks template their host patterns in the controller's main process, before any host runs a task; this
    filter being the first of the collection used there also loads the collection's filters once, for every worker
    process that follows (each would otherwise load them again).
author: nova.cells contributors (@nova-cells)
positional: selection
options:
  _input:
    description: C(nova_node_type_groups).
    type: dict
    required: true
  selection:
    description: The set of hosts.
    type: raw
    required: true
'''

EXAMPLES = r'''
- name: Every Nova host
  hosts: "{{ nova_node_type_groups | nova.cells.host_pattern('all') }}"
  tasks: []

- name: The schedulers and APIs
  hosts: "{{ nova_node_type_groups | nova.cells.host_pattern(['scheduler', 'api']) }}"
  tasks: []
'''

RETURN = r'''
_value:
  description: The groups joined with C(:).
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils import _deployment


def host_pattern(node_type_groups, selection):
    try:
        return _deployment.host_pattern(node_type_groups, selection)
    except (TypeError, ValueError) as exc:
        raise AnsibleFilterError(f'nova.cells.host_pattern: {exc}') from None


class FilterModule:
    def filters(self):
        return {'host_pattern': host_pattern}
