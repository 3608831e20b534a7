# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: day2
short_description: The decisions of the day-2 playbooks on what the compute API and the modules return
version_added: 0.3.0
description:
  - V(names) turns a request (a list, or one string of names separated by commas or blanks) into exact names; a
    pattern (C(*), C(?), C([)) is an error.
  - V(compute_removal) reads C(openstack compute service list -f json) (O(services)) and one C(openstack server list
    --long --all-projects --host HOST -f json) per host (O(servers)) for the hosts of the input and returns the
    nova-compute services to delete, the servers in the way (with a message listing uuid and name per host), the
    hosts already gone, and the hosts whose service is up while no inventory host runs it (O(inventory_hosts)).
  - V(provider_names) gives the resource provider names to look for in Placement (the host names and the hypervisor
    hostnames of their compute nodes, from C(openstack hypervisor list --long -f json) in O(hypervisors)).
  - V(catalog_url) gives the O(interface) endpoint of one C(openstack catalog show SERVICE -f json) answer.
  - V(move_check) gives the refusal of a cell move whose new database is not ready ('' when it is), from what
    M(nova.cells.db_sync) read in check mode (O(versions), O(head)) or why it could not read (O(error)).
  - V(move_queue_check) gives the refusal of a cell move that would leave the cell's computes without a conductor
    on their message queue ('' when there is one); it refuses when the cell (the input) does not share the API
    message queue (O(shares_api_mq)) and no host runs a cell conductor of it (O(cell_conductors)).
  - Host and cell names are compared exactly, never as substrings.
author: nova.cells contributors (@nova-cells)
positional: view
options:
  _input:
    description:
      - V(names), V(compute_removal), V(provider_names) the host names (a list or a string); V(catalog_url) the catalog
        entry; V(move_check) and V(move_queue_check) the cell name.
    type: raw
    required: true
  view:
    description: What to return.
    type: str
    choices: [names, compute_removal, provider_names, catalog_url, move_check, move_queue_check]
    default: names
  services:
    description: With V(compute_removal), the rows of C(openstack compute service list -f json); with V(provider_names), the C(services) of V(compute_removal).
    type: list
    elements: dict
  servers:
    description: With V(compute_removal), one C(openstack server list -f json) result (a list) per host.
    type: list
  inventory_hosts:
    description: "With V(compute_removal), C({[DEFAULT] host: inventory name}) of the inventory's computes."
    type: dict
  hypervisors:
    description: With V(provider_names), the rows of C(openstack hypervisor list --long -f json).
    type: list
    elements: dict
  interface:
    description: With V(catalog_url), the endpoint interface.
    type: str
    default: public
  region:
    description: With V(catalog_url), the region (any when omitted).
    type: str
  versions:
    description: With V(move_check), the C(versions) of M(nova.cells.db_sync).
    type: dict
  head:
    description: With V(move_check), the C(head) of M(nova.cells.db_sync).
    type: str
  error:
    description: With V(move_check), why the new database could not be read.
    type: str
  database:
    description: With V(move_check), the new database as the message names it (host and name, no password).
    type: str
  shares_api_mq:
    description: With V(move_queue_check), whether the cell's new transport URL is the API level's.
    type: bool
    default: true
  cell_conductors:
    description: With V(move_queue_check), the hosts that run a cell conductor of the cell.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Plan the removal of cmp17
  ansible.builtin.set_fact:
    plan: "{{ ['cmp17'] | nova.cells.day2('compute_removal', services=services, servers=servers) }}"
'''

RETURN = r'''
_value:
  description: The value asked for (see the description).
  type: raw
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils import _day2


def day2(value, view='names', services=None, servers=None, inventory_hosts=None, hypervisors=None, interface='public',
         region=None, versions=None, head=None, error=None, database='', shares_api_mq=True, cell_conductors=None):
    try:
        if view == 'names':
            return _day2.names(value)
        if view == 'compute_removal':
            return _day2.compute_removal(value, services, servers, inventory_hosts)
        if view == 'provider_names':
            return _day2.provider_names(value, hypervisors, services)
        if view == 'catalog_url':
            return _day2.catalog_url(value, interface, region)
        if view == 'move_check':
            return _day2.move_check(value, versions, head, error, database)
        if view == 'move_queue_check':
            return _day2.move_queue_check(value, bool(shares_api_mq), list(cell_conductors or []))
    except _day2.Day2Error as exc:
        raise AnsibleFilterError(f'nova.cells.day2: {exc}') from None
    raise AnsibleFilterError(f'nova.cells.day2: unknown view {view!r}; known: names, compute_removal, provider_names, '
                             'catalog_url, move_check, move_queue_check')


class FilterModule:
    def filters(self):
        return {'day2': day2}
