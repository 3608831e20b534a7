"""A roles deployment on the lab: the inventory and the first playbook shared by the playbook tests.

Template-URL mode on 127.0.0.1, every database and vhost the test's own, configs under ``root``
(there is no systemd here: nothing is restarted, and the tests start the services they need).
"""

from __future__ import annotations

from pathlib import Path

from .lab import NOVA_DB_PASSWORD, RABBIT_PASSWORD, Lab

# nova_conf on every host, then the cells role's schema step on the API-level host "ctl".
SCHEMA_PLAYBOOK = """\
- name: Configure every Nova host
  hosts: all
  gather_facts: false
  roles:
    - role: nova.cells.nova_conf
- name: Build the schema and the cell mappings
  hosts: ctl
  gather_facts: false
  tasks:
    - name: Cells bootstrap, schema step
      ansible.builtin.include_role:
        name: nova.cells.cells
        tasks_from: schema
"""


def deployment_inventory(lab: Lab, root: Path, *, api_database: str, cell0_database: str, api_vhost: str,
                         cells: dict, cell_conductor: str, compute: str, **extra) -> dict:
    """The inventory: "ctl" (API, scheduler, super conductor), one cell conductor and one compute.

    ``cells`` maps each cell name to its ``database_name`` and ``rabbit_vhost``; ``extra`` adds or overrides variables.
    """
    variables = {
        "ansible_connection": "local",
        "nova_conf_dir": f"{root}/{{{{ inventory_hostname }}}}",
        "nova_systemd_dir": f"{root}/{{{{ inventory_hostname }}}}/systemd",
        "nova_conf_group": "daemon",
        "nova_conf_restart_services": False,
        "nova_conf_validate": False,
        "nova_manage": [str(lab.nova_bin / "nova-manage")],
        "nova_database_host": "127.0.0.1",
        "nova_database_port": lab.mariadb.port,
        "nova_database_password": NOVA_DB_PASSWORD,
        "nova_api_database_name": api_database,
        "nova_cell0_database_name": cell0_database,
        "nova_rabbit_hosts": ["127.0.0.1"],
        "nova_rabbit_port": lab.rabbitmq.port,
        "nova_rabbit_password": RABBIT_PASSWORD,
        "nova_rabbit_vhost": api_vhost,
        "nova_cells": cells,
        "nova_api_mq_shared_cell": "",
        "nova_cell_url_templates": True,
        "nova_state_path": f"{lab.dir}/state/{{{{ inventory_hostname }}}}",
        "nova_lock_path": f"{lab.dir}/lock/{{{{ inventory_hostname }}}}",
        "nova_my_ip": "127.0.0.1",
        "nova_compute_driver": "fake.FakeDriverWithoutFakeNodes",
        "nova_conductor_workers": 1,
        "nova_placement_options": {"auth_type": "admin_token", "endpoint": lab.placement.url, "token": "admin"},
        "nova_cells_wait_timeout": 120,
    }
    variables.update(extra)
    return {
        "all": {
            "vars": variables,
            "children": {
                "nova_api": {"hosts": {"ctl": {}}},
                "nova_scheduler": {"hosts": {"ctl": {}}},
                "nova_super_conductor": {"hosts": {"ctl": {}}},
                "nova_cell_conductor": {"hosts": {cell_conductor: {}}},
                "nova_compute": {"hosts": {compute: {}}},
            },
        }
    }
