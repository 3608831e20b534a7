# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.nova.cells.plugins.filter.service_auth_options import FilterModule

URL = 'http://keystone:5000/v3'
PW = 'Nova+ks/pw!'


def test_filter_wraps_errors():
    f = FilterModule().filters()['service_auth_options']
    assert set(f(['scheduler'], auth_url=URL, password=PW)['sections']) == {'placement'}
    with pytest.raises(AnsibleFilterError, match=r'^nova.cells.service_auth_options: unknown node types'):
        f(['x'], auth_url=URL)
