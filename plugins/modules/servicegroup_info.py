#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: servicegroup_info
short_description: Read the ServiceGroup settings a node's nova.conf gives Nova
version_added: 0.2.0
description:
  - "Reads C([DEFAULT] servicegroup_driver), C(report_interval), C(service_down_time) and, with the mc driver, the
    C([cache]) options from O(config_files) (later files win), with Nova's defaults (V(db), 10, 60) for unset options
    and the C(service_down_time) Nova really uses (C(2.5 * report_interval) when the value is too small)."
  - Run it on every Nova node and compare the results (the health playbook does, with the C(nova.cells.health_report)
    filter); every node must use the same values.
  - Reads files only; changes nothing. Never returns a password.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells._attributes.info
options:
  config_files:
    description:
      - The nova.conf files the node's services read, in order.
    type: list
    elements: path
    default: [/etc/nova/nova.conf]
'''

EXAMPLES = r'''
- name: ServiceGroup settings of this node
  nova.cells.servicegroup_info:
  register: servicegroup
'''

RETURN = r'''
settings:
  description: The settings Nova uses on this node.
  returned: always
  type: dict
  sample: {driver: db, report_interval: 10, service_down_time: 60, effective_service_down_time: 60}
files:
  description: The files read (missing ones are skipped).
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nova.cells.plugins.module_utils._health import servicegroup_settings
from ansible_collections.nova.cells.plugins.module_utils._nova_conf import ConfigError, NovaConfig


def main():
    module = AnsibleModule(argument_spec=dict(config_files=dict(type='list', elements='path', default=['/etc/nova/nova.conf'])),
                           supports_check_mode=True)
    try:
        config = NovaConfig.load(module.params['config_files'], required=False)
    except ConfigError as exc:
        module.fail_json(msg=str(exc))
    if not config.files:
        module.fail_json(msg='none of {} exists; set config_files to the nova.conf of this node'.format(', '.join(module.params['config_files'])))
    module.exit_json(changed=False, settings=servicegroup_settings(config), files=config.files)


if __name__ == '__main__':
    main()
