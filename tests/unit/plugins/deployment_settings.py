# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The settings the roles hand to the deployment model (role defaults plus groups), shared by the tests of
module_utils/_deployment.py and of the nova.cells.deployment filter."""

from __future__ import annotations

import copy

GROUPS = {'api': 'nova_api', 'metadata': 'nova_metadata', 'scheduler': 'nova_scheduler', 'super_conductor': 'nova_super_conductor',
          'cell_conductor': 'nova_cell_conductor', 'compute': 'nova_compute', 'console_proxy': 'nova_console_proxy',
          'cell_metadata': 'nova_cell_metadata'}
UNITS = {'api': ['nova-api'], 'metadata': ['nova-metadata'], 'scheduler': ['nova-scheduler'], 'super_conductor': ['nova-conductor'],
         'cell_conductor': ['nova-conductor'], 'compute': ['nova-compute'], 'console_proxy': ['nova-novncproxy'],
         'cell_metadata': ['nova-metadata']}
# The role defaults (roles/nova_conf/defaults/main.yml), as the role hands them to the filter.
DEFAULTS = {
    'inventory_hostname': 'h1', 'group_names': [], 'nova_node_types': None, 'nova_node_type_groups': GROUPS, 'nova_cell_name': 'cell1',
    'nova_cells': {'cell1': {}}, 'nova_api_mq_shared_cell': 'cell1', 'nova_cell_url_templates': False, 'nova_release': 'hibiscus',
    'nova_database_scheme': 'mysql+pymysql', 'nova_database_host': 'db', 'nova_database_port': 3306, 'nova_database_user': 'nova',
    'nova_database_password': 'Db+pw/1', 'nova_database_query': '', 'nova_api_database_name': 'nova_api',
    'nova_cell0_database_name': 'nova_cell0', 'nova_api_database_connection': '', 'nova_cell0_database_connection': '',
    'nova_rabbit_scheme': 'rabbit', 'nova_rabbit_hosts': ['mq'], 'nova_rabbit_port': 5672, 'nova_rabbit_user': 'nova',
    'nova_rabbit_password': 'Mq+pw:1', 'nova_rabbit_vhost': '/', 'nova_rabbit_query': '', 'nova_transport_url': '',
    'nova_notifications_transport_url': '', 'nova_notifications_driver': 'messagingv2', 'nova_servicegroup_driver': 'db',
    'nova_servicegroup_report_interval': 10, 'nova_servicegroup_service_down_time': 60, 'nova_memcache_servers': [],
    'nova_cache_backend': None, 'nova_cache_backend_expiration_time': None, 'nova_upcall_workarounds': None,
    'nova_scheduler_max_attempts': None, 'nova_scheduler_discover_hosts_in_cells_interval': -1, 'nova_database_max_retries': 3,
    'nova_database_retry_interval': 5, 'nova_api_list_records_by_skipping_down_cells': True, 'nova_upgrade_levels_compute': None,
    'nova_cell_metadata_api_database': False, 'nova_host': 'h1', 'nova_my_ip': None, 'nova_state_path': '/var/lib/nova',
    'nova_lock_path': '/var/lib/nova/tmp', 'nova_compute_driver': 'libvirt.LibvirtDriver', 'nova_conductor_workers': None,
    'nova_scheduler_workers': None, 'nova_placement_options': {}, 'nova_conf_file': '/etc/nova/nova.conf', 'nova_conf_group': 'nova',
    'nova_conf_mode': '0640', 'nova_conf_db_env_file': '/etc/nova/nova-db.env', 'nova_systemd_dir': '/etc/systemd/system',
    'nova_conf_node_type_overrides': {}, 'nova_conf_overrides': {}, 'nova_service_units': UNITS, 'nova_conf_start_types': None,
}


def settings(*groups, **changes):
    result = copy.deepcopy(DEFAULTS)
    result['group_names'] = list(groups)
    result.update(changes)
    return result
