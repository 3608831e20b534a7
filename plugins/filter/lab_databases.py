# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: lab_databases
short_description: Which MariaDB of a nova.cells test lab holds which database
version_added: 0.2.0
description:
  - For the C(lab_infra) role (test labs only). A lab has one main MariaDB on O(main_port) and may have further
    MariaDB instances on the same host, each with its own port, data directory and systemd unit, so that one cell's
    database server can be stopped alone (a down cell).
  - Each database of the URL model goes to the MariaDB on its port (C(nova_cells.<cell>.database_port), default
    C(nova_database_port)); the host part is not compared, a lab has one database host. O(extra) all go to the
    main MariaDB.
  - "Returns C(main) (the main MariaDB's databases), C(instances) (C([{name, port, databases, datadir, config, unit, socket}])) and C(problems)
    (why the lab cannot serve the model: a port no instance listens on, a name or port given twice, a bad name)."
author: nova.cells contributors (@nova-cells)
positional: instances, main_port, extra
options:
  _input:
    description: The URL model (C(_nova_conf_urls), from C(nova.cells.deployment('urls'))).
    type: dict
    required: true
  instances:
    description: "The further MariaDB instances, C([{name, port}]) (C(lab_infra_extra_mariadb_instances))."
    type: list
    elements: dict
  main_port:
    description: The port of the main MariaDB.
    type: int
    default: 3306
  extra:
    description: Databases outside the URL model (Placement, Keystone, ...), all on the main MariaDB.
    type: list
    elements: str
'''

EXAMPLES = r'''
- name: Which MariaDB holds which database
  ansible.builtin.set_fact:
    _lab_infra_db_plan: "{{ _nova_conf_urls | nova.cells.lab_databases([{'name': 'cell2', 'port': 3307}], 3306, ['nova_placement']) }}"
'''

RETURN = r'''
_value:
  description: "C({main, instances, problems})."
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.module_utils import _deployment


def lab_databases(model, instances=None, main_port=3306, extra=None):
    try:
        return _deployment.lab_databases(model, instances or [], main_port, extra or [])
    except (KeyError, TypeError, ValueError) as exc:
        raise AnsibleFilterError(f'nova.cells.lab_databases: {exc!r} (the input must be the URL model of nova.cells.deployment)') from None


class FilterModule:
    def filters(self):
        return {'lab_databases': lab_databases}
