# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: health_report
short_description: The problems and a readable table of a Nova cells deployment's health
version_added: 0.2.0
description:
  - Combines the results of M(nova.cells.status_check), M(nova.cells.reachability_info), M(nova.cells.orphans_info),
    M(nova.cells.service_status) and M(nova.cells.servicegroup_info) (per node) into a list of problems and the lines
    of a table, as the C(nova.cells.health) playbook prints them.
  - A problem is a nova-status check that is not a success (unless ignored), an unreachable cell database or message
    queue, an enabled service that is not up, an unmapped instance or compute, a stale host mapping, a node whose
    nova.conf could not be read, and ServiceGroup settings that differ between nodes (driver, C(report_interval),
    C(service_down_time), memcached servers) or that Nova would not honour.
author: nova.cells contributors (@nova-cells)
positional: _input
options:
  _input:
    description: The result of M(nova.cells.status_check), with C(ignored) (check names) added; may be empty.
    type: dict
    required: true
  reachability:
    description: The result of M(nova.cells.reachability_info).
    type: dict
  orphans:
    description: The result of M(nova.cells.orphans_info).
    type: dict
  services:
    description: The result of M(nova.cells.service_status).
    type: dict
  servicegroup:
    description:
      - "C({host: result}) of M(nova.cells.servicegroup_info) on every node (or C({host: settings})); a node with an
        empty or failed result is a problem (its settings could not be read)."
    type: dict
'''

EXAMPLES = r'''
- name: Build the report
  ansible.builtin.set_fact:
    health: "{{ status | nova.cells.health_report(reachability=reach, orphans=orphans, services=services, servicegroup=sg) }}"
'''

RETURN = r'''
_value:
  description: The report.
  type: dict
  contains:
    problems:
      description: One sentence per problem, naming what is wrong and where.
      type: list
      elements: str
    lines:
      description: The table, one line per element.
      type: list
      elements: str
    healthy:
      description: Whether there is no problem.
      type: bool
'''

from ansible_collections.nova.cells.plugins.module_utils._health import health_report as _health_report


def health_report(status, reachability=None, orphans=None, services=None, servicegroup=None):
    return _health_report(status=status, reachability=reachability, orphans=orphans, services=services,
                          servicegroup=servicegroup)


class FilterModule:
    def filters(self):
        return {'health_report': health_report}
