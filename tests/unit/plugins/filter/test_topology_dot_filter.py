# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.topology_dot import FilterModule


def test_filter_is_registered_and_renders_dot():
    topology_dot = FilterModule().filters()['topology_dot']
    dot = topology_dot({'cells': [{'uuid': 'u1', 'name': 'cell1', 'disabled': True}]}, None, title='lab')
    assert dot.startswith('digraph') and 'label="lab\\n1 cell(s)' in dot and 'DISABLED' in dot


def test_filter_turns_wrong_input_into_a_filter_error():
    topology_dot = FilterModule().filters()['topology_dot']
    with pytest.raises(AnsibleFilterError, match=r'^nova.cells.topology_dot: expected the result of nova.cells.cell_info'):
        topology_dot('cell1')
