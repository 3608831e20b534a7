# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.lab_databases import FilterModule


def test_filter_plans_and_wraps_errors():
    f = FilterModule().filters()['lab_databases']
    model = {'infrastructure': {'database_servers': [{'host': 'db', 'port': 3306, 'databases': ['nova_api']},
                                                     {'host': 'db', 'port': 3307, 'databases': ['nova_cell2']}]}}
    plan = f(model, [{'name': 'cell2', 'port': 3307}], 3306, ['keystone'])
    assert plan['main'] == ['nova_api', 'keystone'] and plan['instances'][0]['databases'] == ['nova_cell2']
    with pytest.raises(AnsibleFilterError, match=r'^nova.cells.lab_databases: .*URL model'):
        f({'cells': {}})
