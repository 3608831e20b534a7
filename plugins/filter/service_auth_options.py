# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: service_auth_options
short_description: The service authentication sections of nova.conf for a host's node types
version_added: 0.2.0
description:
  - Returns the C([keystone_authtoken]), C([service_user]), C([placement]), C([glance]), C([neutron]) and
    C([vnc]) options a Nova host needs for the node types it runs, for templates (the C(nova_conf) role).
  - Each node type gets only what it uses. Only the API services (V(api), V(metadata), V(cell_metadata))
    validate tokens (C([keystone_authtoken])); a compute never gets that section.
    C([service_user]) carries C(send_service_user_token = true).
  - C([vnc]) only where the cell has console proxies (O(novncproxy_base_url) given).
  - Nothing but C([vnc]) when O(auth_url) is empty.
  - Never writes C([api] auth_strategy) nor C([service_user] region_name), which Nova 34 refuses.
author: nova.cells contributors (@nova-cells)
positional: _input
options:
  _input:
    description: The node types of the host (V(api), V(metadata), V(scheduler), V(super_conductor),
      V(cell_conductor), V(compute), V(console_proxy), V(cell_metadata)).
    type: list
    elements: str
    required: true
  auth_url:
    description: Keystone's identity URL (for example V(http://keystone:5000/v3)); empty turns Keystone off.
    type: str
  www_authenticate_uri:
    description: The public Keystone URL that C([keystone_authtoken]) sends to clients; default O(auth_url).
    type: str
  region_name:
    description: The region of the service catalog.
    type: str
    default: RegionOne
  username:
    description: Nova's service user.
    type: str
    default: nova
  password:
    description: Its password (a secret).
    type: str
  project_name:
    description: The service project.
    type: str
    default: service
  user_domain_name:
    description: The user's domain.
    type: str
    default: Default
  project_domain_name:
    description: The project's domain.
    type: str
    default: Default
  memcached_servers:
    description: Token cache of C([keystone_authtoken]) (C(host:port)).
    type: list
    elements: str
  send_service_user_token:
    description: Write C([service_user]) with C(send_service_user_token = true).
    type: bool
    default: true
  placement:
    description: Write C([placement]) with password authentication.
    type: bool
    default: true
  glance:
    description: Write C([glance]).
    type: bool
    default: true
  neutron:
    description: Write C([neutron]).
    type: bool
    default: true
  credentials:
    description: "Another account for one section, C({section: {option: value}}), for example
      C({'neutron': {'username': 'neutron', 'password': '...'}})."
    type: dict
  novncproxy_base_url:
    description: The console proxy URL of the host's cell; empty when the cell has no console proxy.
    type: str
  novncproxy_port:
    description: The port a console proxy listens on.
    type: int
    default: 6080
  vnc_server_address:
    description: The address a console proxy reaches a compute's consoles at.
    type: str
  metadata_proxy_shared_secret:
    description: The secret shared with Neutron's metadata proxy (metadata API only).
    type: str
seealso:
  - module: nova.cells.servicegroup
'''

EXAMPLES = r'''
- name: The sections of a compute
  ansible.builtin.set_fact:
    auth: "{{ ['compute'] | nova.cells.service_auth_options(auth_url='http://keystone:5000/v3', password=nova_pw) }}"
  no_log: true
'''

RETURN = r'''
_value:
  description: The sections and the problems found.
  type: dict
  contains:
    sections:
      description: "C({section: {option: value}})."
      type: dict
    problems:
      description: What cannot be rendered (a missing password, a URL that is not http(s)).
      type: list
      elements: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils._service_auth import ServiceAuthError, render


def service_auth_options(types, auth_url='', **settings):
    try:
        return render(types or [], auth_url or '', **settings)
    except ServiceAuthError as exc:
        raise AnsibleFilterError(f'nova.cells.service_auth_options: {exc}') from None


class FilterModule:
    def filters(self):
        return {'service_auth_options': service_auth_options}
