# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The nova.cells.deployment filter: its views and its errors (the model itself: module_utils/test_deployment.py)."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.deployment import deployment
from ansible_collections.nova.cells.tests.unit.plugins.deployment_settings import settings


def test_filter_views_and_errors():
    assert deployment(settings('nova_compute'), 'node_types') == ['compute']
    assert deployment(settings('nova_compute'), 'start_units') == ['nova-compute']
    plan = deployment(settings('nova_api', nova_servicegroup_driver='mc', nova_memcache_servers=['m:11211']), 'cells',
                      manage_dir='/m', computes=['c'], hostvars={})
    assert plan['servicegroup']['driver'] == 'mc' and plan['expected_computes'] == {'cell1': ['c']}
    with pytest.raises(AnsibleFilterError, match='unknown view'):
        deployment(settings(), 'nope')


def test_servicegroup_problems_are_refusals_not_exceptions():
    result = deployment(settings('nova_api', nova_servicegroup_driver='zk'), 'nova_conf')
    assert any('zk' in problem for problem in result['problems'])


def test_refresh_view():
    jobs = deployment(settings(), 'refresh', restart_required=['api'], groups={'nova_api': ['a1']})
    assert jobs == [{'host': 'a1', 'unit': 'nova-api', 'action': 'restart'}]


def test_db_syncs_view():
    syncs = deployment(settings(), 'db_syncs', conf={'api': '/m/api.conf', 'cell1': '/m/c1.conf'}, selected=['cell1'], sync_api=False)
    assert [sync['config_files'] for sync in syncs] == [['/m/api.conf'], ['/m/c1.conf']]
