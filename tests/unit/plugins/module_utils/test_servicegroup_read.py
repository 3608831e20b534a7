# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""read_settings is the inverse of render: what a nova.conf configures, read with the same per-release rules;
and the one ``states(...)`` interface of the three liveness backends."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.nova.cells.plugins.module_utils._cells import LOCAL_CELL_NAME, select_service_cells
from ansible_collections.nova.cells.plugins.module_utils._liveness_db import DOWN, UNKNOWN, UP, DbBackend
from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import MemcachedBackend, heartbeat_key
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import ZooKeeperBackend
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError
from ansible_collections.nova.cells.plugins.module_utils._nova_conf import IniDocument, NovaConfig
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import (
    ServiceGroupError,
    legacy_memcached,
    read_settings,
    render,
)


def written(rendered, text=''):
    """A nova.conf as the servicegroup module writes it from ``render``."""
    document = IniDocument(text)
    for section, options in rendered['options'].items():
        for option, value in options.items():
            document.set(section, option, value)
    for section, option in rendered['remove']:
        document.remove(section, option)
    return NovaConfig.from_text(document.text())


@pytest.mark.parametrize('release', ['kilo', 'liberty', 'mitaka', 'newton', 'wallaby', '34'])
def test_what_render_writes_reads_back_with_the_same_key_rule(release):
    rendered = render('mc', release, memcache_servers=['10.0.0.1:11211', '10.0.0.2:11211'], report_interval=5, service_down_time=20,
                      cache_backend='dogpile.cache.memcached')
    stale = '[DEFAULT]\nmemcached_servers = 10.9.9.9:11211\n[cache]\nenabled = true\nmemcache_servers = 10.9.9.9:11211\n'
    settings = read_settings(written(rendered, stale).get, release)
    assert (settings['driver'], settings['report_interval'], settings['service_down_time']) == ('mc', 5, 20)
    assert settings['memcache_servers'] == '10.0.0.1:11211,10.0.0.2:11211'
    legacy = 'memcached_servers' in rendered['options']['DEFAULT']
    assert settings['legacy_memcached'] is legacy and settings['hashed_keys'] is not legacy
    assert legacy is (release in ('kilo', 'liberty', 'mitaka'))


def test_legacy_memcached_per_release():
    assert legacy_memcached('liberty') is True                                   # memorycache only
    assert legacy_memcached('mitaka', legacy_servers=True, cache_enabled=True) is True
    assert legacy_memcached('mitaka', legacy_servers=False) is False            # the [cache] region
    assert legacy_memcached('newton', legacy_servers=True) is False             # ignored since Newton
    assert legacy_memcached(None, legacy_servers=True) is True                  # unknown release: the file decides
    assert legacy_memcached(None, legacy_servers=True, cache_enabled=True) is False


def test_given_settings_win_and_bad_values_are_named():
    conf = NovaConfig.from_text('[DEFAULT]\nservicegroup_driver = redis\nreport_interval = soon\n')
    assert read_settings(conf.get, driver='db', report_interval=3)['driver'] == 'db'
    with pytest.raises(ServiceGroupError, match=r'servicegroup_driver = redis in x\.conf is not a driver Nova knows'):
        read_settings(conf.get, source='x.conf')
    with pytest.raises(ServiceGroupError, match=r"\[DEFAULT\] report_interval = 'soon' in x.conf is not an integer"):
        read_settings(conf.get, source='x.conf', driver='db')
    defaults = read_settings(NovaConfig.from_text('').get)
    assert (defaults['driver'], defaults['report_interval'], defaults['service_down_time'], defaults['cache_backend']) == (
        'db', 10, 60, 'dogpile.cache.null')


# -- backends: one states(cell_rows, service_down_time) ----------------------------------------------

NOW = datetime.datetime(2026, 1, 1, 12, 0, 0)
CELL = {'uuid': 'c1', 'name': 'cell1'}


def row(row_id, host, seen_ago=None, topic='compute', forced_down=False):
    seen = None if seen_ago is None else NOW - datetime.timedelta(seconds=seen_ago)
    return {'id': row_id, 'host': host, 'topic': topic, 'forced_down': forced_down, 'last_seen_up': seen, 'created_at': seen,
            'updated_at': None, 'db_now': NOW}


def test_db_backend_keys_by_cell_and_row():
    states = DbBackend().states([(CELL, [row(1, 'a', 5), row(2, 'b', 90)])], 60)
    assert states[('c1', 1)][0] == UP and states[('c1', 2)][0] == DOWN


class Reader:
    def __init__(self, found=None, errors=None):
        self.found, self.errors, self.asked = found or {}, errors or {}, []

    def get_many(self, keys):
        self.asked = list(keys)
        return self.found


def test_memcached_backend_asks_the_keys_of_the_release_and_warns_about_silent_servers():
    reader = Reader(errors={'m1:11211': 'timed out'})
    backend = MemcachedBackend(reader, hashed_keys=False)
    states = backend.states([(CELL, [row(1, 'a'), row(2, 'bad host')])], 60)
    assert reader.asked == ['compute:a', 'compute:bad host']
    assert states[('c1', 1)][0] == UNKNOWN and 'did not answer' in states[('c1', 1)][3]
    assert states[('c1', 2)][0] == UNKNOWN and 'not a valid memcached key' in states[('c1', 2)][3]
    assert len(backend.warnings) == 1 and 'm1:11211' in backend.warnings[0]
    MemcachedBackend(reader).states([(CELL, [row(1, 'a')])], 60)
    assert reader.asked == [heartbeat_key('compute', 'a')]


def test_zookeeper_backend_reports_unknown_when_the_ensemble_is_down():
    class Client:
        def __init__(self, **_kwargs):
            pass

        def start(self, timeout):
            raise TimeoutError

        def stop(self):
            pass

        close = stop

    backend = ZooKeeperBackend([('zk1', 2181)], '/servicegroups', timeout=1, client_factory=Client)
    states = backend.states([(CELL, [row(1, 'a')])], 60)
    assert states[('c1', 1)][0] == UNKNOWN and 'did not answer' in backend.warnings[0]
    backend.close()


# -- which cells service_status reads ---------------------------------------------------------------

CELLS = [{'uuid': '00000000-0000-0000-0000-000000000000', 'name': 'cell0'}, {'uuid': 'c1', 'name': 'cell1'}]


def test_service_cells_without_an_api_database_are_the_local_database():
    assert select_service_cells(lambda: pytest.fail('no API database'), None, 'mysql://db/nova', api_database=False)[0]['name'] == LOCAL_CELL_NAME
    assert select_service_cells(lambda: CELLS[:1], None, 'mysql://db/nova')[0]['name'] == LOCAL_CELL_NAME   # no regular cell yet
    assert [cell['name'] for cell in select_service_cells(lambda: CELLS, None, 'mysql://db/nova')] == ['cell1']
    assert [cell['name'] for cell in select_service_cells(lambda: CELLS, ['cell0', 'cell1'])] == ['cell0', 'cell1']
    with pytest.raises(NovaCellsError, match="there is no cell named 'x'"):
        select_service_cells(lambda: CELLS, ['x'])
