# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: servicegroup_options
short_description: The nova.conf options of a Nova ServiceGroup driver for a release
version_added: 0.1.0
description:
  - Returns what M(nova.cells.servicegroup) would write into a nova.conf, for templates (for example the C(nova_conf)
    role), that is the options to set, the options to remove and the warnings.
  - Fails with the same messages as the module, for example for V(zk) on Mitaka and later, or a
    O(service_down_time) that is not greater than O(report_interval).
author: nova.cells contributors (@nova-cells)
positional: _input
options:
  _input:
    description: The driver, V(db), V(mc) or V(zk).
    type: str
    required: true
  release:
    description:
      - The Nova release (V(34.0.0), V(34), V(mitaka), V('2025.1')). When omitted, the newest release known is assumed.
    type: raw
  report_interval:
    description: Seconds between heartbeats.
    type: int
    default: 10
  service_down_time:
    description: Seconds without heartbeat before a service is down; must be greater than O(report_interval).
    type: int
    default: 60
  memcache_servers:
    description: With V(mc), the memcached servers as C(host:port).
    type: list
    elements: str
  cache_backend:
    description: With V(mc), the C([cache] backend), see M(nova.cells.servicegroup).
    type: str
  backend_expiration_time:
    description: With V(mc), see M(nova.cells.servicegroup). V(0) means remove it.
    type: int
  zookeeper_address:
    description: With V(zk), the ZooKeeper servers as C(host:port).
    type: list
    elements: str
  zookeeper_recv_timeout:
    description: With V(zk), the session timeout in milliseconds.
    type: int
  zookeeper_sg_prefix:
    description: With V(zk), the root znode.
    type: str
  zookeeper_sg_retry_interval:
    description: With V(zk), seconds between join attempts.
    type: int
  oslo_cache_version:
    description: The installed oslo.cache version when known (it decides which backends and options exist).
    type: str
seealso:
  - module: nova.cells.servicegroup
'''

EXAMPLES = r'''
- name: Options for memcached heartbeats on 2025.1
  ansible.builtin.set_fact:
    sg: "{{ 'mc' | nova.cells.servicegroup_options(release='2025.1', memcache_servers=['10.0.0.11:11211']) }}"

# In a nova.conf template:
#   {% for section, options in sg.options.items() %}
#   [{{ section }}]
#   {% for name, value in options.items() %}
#   {{ name }} = {{ value }}
#   {% endfor %}
#   {% endfor %}
'''

RETURN = r'''
_value:
  description: The options to set, the options to remove and the warnings.
  type: dict
  contains:
    options:
      description: "C({section: {option: value}}), every value a string ready for the file."
      type: dict
    remove:
      description: C([[section, option], ...]) that must not be in the file.
      type: list
      elements: list
    warnings:
      description: Things the caller should tell the user.
      type: list
      elements: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils._servicegroup import ServiceGroupError, render


def servicegroup_options(driver, release=None, **settings):
    try:
        return render(driver, release, **settings)
    except ServiceGroupError as exc:
        raise AnsibleFilterError(f'nova.cells.servicegroup_options: {exc}') from None


class FilterModule:
    def filters(self):
        return {'servicegroup_options': servicegroup_options}
