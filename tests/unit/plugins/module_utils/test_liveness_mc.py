# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import datetime
import os
import pickle
import subprocess
import sys
import types
import zlib
from typing import Any, NamedTuple

import pytest

from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import (
    MAX_VALUE_BYTES,
    CachedValue,
    MemcachedReader,
    UnsafeValue,
    decode_value,
    evaluate,
    heartbeat_key,
    parse_servers,
    valid_key,
)

# Real items, as stored by dogpile.cache 1.5.0 for CachedValue(datetime(2026, 11, 21, 16, 44, 31, 662613),
# {'ct': 1795279471.66, 'v': 2}): python-memcached 1.62 (dogpile.cache.memcached, oslo_cache.memcache_pool),
# protocol 0, and pymemcache 4.0.0 (dogpile.cache.pymemcache), protocol 5. Both with memcached flags 1.
PROTOCOL_0 = (b'ccopy_reg\n_reconstructor\np0\n(cdogpile.cache.api\nCachedValue\np1\nc__builtin__\ntuple\np2\n(cdatetime\n'
              b'datetime\np3\n(c_codecs\nencode\np4\n(V\x07\xea\x0b\x15\x10,\x1f\\u000a\x1cU\np5\nVlatin1\np6\ntp7\nRp8\ntp9\n'
              b'Rp10\n(dp11\nVct\np12\nF1795279471.66\nsVv\np13\nI2\nstp14\ntp15\nRp16\n.')
PROTOCOL_5 = (b'\x80\x05\x95j\x00\x00\x00\x00\x00\x00\x00\x8c\x11dogpile.cache.api\x94\x8c\x0bCachedValue\x94\x93\x94\x8c\x08'
              b'datetime\x94\x8c\x08datetime\x94\x93\x94C\n\x07\xea\x0b\x15\x10,\x1f\n\x1cU\x94\x85\x94R\x94}\x94(\x8c\x02ct\x94'
              b'GA\xda\xc0r\x9b\xea=q\x8c\x01v\x94K\x02u\x86\x94\x81\x94.')
# Liberty's memorycache: python-memcached stored the bare utcnow() (here under Python 3, protocol 0).
LEGACY_DATETIME = (b'cdatetime\ndatetime\np0\n(c_codecs\nencode\np1\n(V\x07\xdf\\u000a\x01\x0c\\u0000\\u0000\\u0000\\u0000\x05\n'
                   b'p2\nVlatin1\np3\ntp4\nRp5\ntp6\nRp7\n.')
# The same under Python 2 (str opcodes).
PYTHON2_DATETIME = b"cdatetime\ndatetime\np1\n(S'\\x07\\xdf\\n\\x01\\x0c\\x00\\x00\\x00\\x00\\x05'\ntRp2\n."
WRITTEN = datetime.datetime(2026, 11, 21, 16, 44, 31, 662613)
CT = 1795279471.66


class DogpileCachedValue(NamedTuple):
    """What dogpile.cache 1.x defines; pickled under its real name through a stand-in module."""

    payload: Any
    metadata: Any


DogpileCachedValue.__module__ = 'dogpile.cache.api'
DogpileCachedValue.__qualname__ = DogpileCachedValue.__name__ = 'CachedValue'


def dogpile_dumps(value, protocol=5):
    """Pickle ``value`` with ``dogpile.cache.api.CachedValue`` resolvable, as a real writer does."""
    modules = {name: types.ModuleType(name) for name in ('dogpile', 'dogpile.cache', 'dogpile.cache.api')}
    modules['dogpile.cache.api'].CachedValue = DogpileCachedValue
    saved = {name: sys.modules.get(name) for name in modules}
    sys.modules.update(modules)
    try:
        return pickle.dumps(value, protocol=protocol)
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def test_keys_match_the_observed_nova_keys():
    # The keys nova 34 wrote into memcached for compute:cmp1 and conductor:cmp1 (read back in the lab).
    assert heartbeat_key('compute', 'cmp1') == '0da90a5188ea3a244fe60664a0bd7925c8a15fa9'
    assert heartbeat_key('conductor', 'cmp1') == '7b0bc381928105a72262d0d57cc6defdc79b1f79'
    assert heartbeat_key('compute', 'cmp1', hashed=False) == 'compute:cmp1'
    assert heartbeat_key(None, 'h', hashed=False) == 'None:h'  # Nova formats the topic with %s too


def test_valid_key():
    assert valid_key('compute:cmp1')
    assert not valid_key('compute:cmp 1')
    assert not valid_key('compute:cmpé')
    assert not valid_key('x' * 251)
    assert not valid_key('')


@pytest.mark.parametrize('data', [PROTOCOL_0, PROTOCOL_5])
def test_decode_real_heartbeats(data):
    beat = decode_value(data, 1)
    assert beat.kind == 'cachedvalue'
    assert beat.written_at == WRITTEN
    assert beat.created == CT
    assert beat.version == 2


@pytest.mark.parametrize('data', [LEGACY_DATETIME, PYTHON2_DATETIME])
def test_decode_legacy_datetime(data):
    beat = decode_value(data, 1)
    assert beat.kind == 'datetime'
    assert beat.written_at == datetime.datetime(2015, 10, 1, 12, 0, 0, 5)
    assert beat.created is None


def test_decode_compressed_and_unflagged():
    assert decode_value(zlib.compress(PROTOCOL_5), 1 | 8).created == CT
    assert decode_value(PROTOCOL_5, 0).created == CT  # a serde that sets no flags: still recognised as a pickle
    aware = dogpile_dumps(DogpileCachedValue(datetime.datetime(2026, 1, 1, 1, tzinfo=datetime.timezone(datetime.timedelta(hours=1))),
                                             {'ct': 1.0, 'v': 2}))
    assert decode_value(aware, 1).written_at == datetime.datetime(2026, 1, 1, 0, 0)


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f'touch {self.marker}',))


class EvilSubprocess:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (subprocess.call, (['touch', self.marker],))


@pytest.mark.parametrize('protocol', [0, 1, 2, 3, 4, 5])
@pytest.mark.parametrize('payload', [Evil, EvilSubprocess])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, protocol, payload):
    marker = tmp_path / 'pwned'
    data = pickle.dumps(payload(str(marker)), protocol=protocol)
    with pytest.raises(UnsafeValue, match='refused to load'):
        decode_value(data, 1)
    # Nested inside a genuine CachedValue too.
    nested = dogpile_dumps(DogpileCachedValue(payload(str(marker)), {'ct': 1.0, 'v': 2}), protocol=protocol)
    assert b'dogpile.cache.api' in nested
    with pytest.raises(UnsafeValue, match='refused to load'):
        decode_value(nested, 1)
    assert not marker.exists()


def test_malicious_evaluate_reports_unknown_without_running(tmp_path):
    marker = tmp_path / 'pwned'
    state, _last, _age, reason = evaluate([('m1', pickle.dumps(Evil(str(marker))), 1)], 60, now=CT)
    assert state == 'unknown'
    assert 'refused' in reason and 'posix.system' in reason
    assert not marker.exists()


@pytest.mark.parametrize('data, message', [
    (b'cbuiltins\neval\n(Vprint(1)\ntR.', 'refused to load builtins.eval'),
    (b'c__builtin__\ngetattr\n.', 'refused to load __builtin__.getattr'),
    (b'ccopy_reg\n_reconstructor\n(cdatetime\ndatetime\nc__builtin__\ntuple\n(I1\nttR.', 'only to rebuild a dogpile CachedValue'),
    (b'c_codecs\nencode\n(Vx\nVrot13\ntR.', 'only on text with latin-1'),
    (b'c_codecs\nencode\n(Vx\nVidna\ntR.', 'only on text with latin-1'),
    (b'(I1\nI2\nl.', 'holds a list'),
    (b'\x80\x05K\x01.', 'holds a int'),
    (dogpile_dumps(DogpileCachedValue('not a date', {'ct': 1.0, 'v': 2})), 'payload is a str'),
    (dogpile_dumps(DogpileCachedValue(WRITTEN, {'v': 2})), 'no numeric creation time'),
    (dogpile_dumps(DogpileCachedValue(WRITTEN, [1])), 'metadata is a list'),
    (pickle.dumps(CachedValue(WRITTEN, {'ct': 1.0, 'v': 2})), 'refused to load ansible_collections'),
    (b'P1\n.', 'persistent id'),
])
def test_other_refusals(data, message):
    with pytest.raises(UnsafeValue, match=message):
        decode_value(data, 1)


def test_refused_without_pickle_flag_or_oversized():
    with pytest.raises(UnsafeValue, match='not a pickled heartbeat'):
        decode_value(b'2026-01-01', 16)
    with pytest.raises(UnsafeValue, match='far larger'):
        decode_value(b'\x80' + b'x' * MAX_VALUE_BYTES, 1)
    with pytest.raises(UnsafeValue, match='inflates beyond'):
        decode_value(zlib.compress(b'\0' * (50 * MAX_VALUE_BYTES)), 9)
    with pytest.raises(UnsafeValue, match='cannot be inflated'):
        decode_value(b'not zlib', 9)


def _item(payload, ct, version=2, protocol=5):
    return dogpile_dumps(DogpileCachedValue(payload, {'ct': ct, 'v': version}), protocol=protocol)


@pytest.mark.parametrize('protocol', [0, 2, 5])
def test_stand_in_pickles_like_dogpile(protocol):
    assert decode_value(_item(WRITTEN, CT, protocol=protocol), 1).created == CT
    if protocol == 0:
        # byte for byte what python-memcached stored for the real dogpile value
        assert _item(WRITTEN, CT, protocol=0) == PROTOCOL_0


def test_evaluate_the_dogpile_rule():
    now = CT + 30
    state, last_seen, age, reason = evaluate([('m1', _item(WRITTEN, CT), 1)], 60, now=now)
    assert (state, age, reason) == ('up', 30.0, None)
    assert last_seen == '2026-11-21T16:44:31.662613+00:00'
    assert evaluate([('m1', _item(WRITTEN, CT), 1)], 30, now=now)[0] == 'up'            # ct exactly at the limit
    assert evaluate([('m1', _item(WRITTEN, CT), 1)], 29, now=now)[0] == 'down'          # older than service_down_time
    assert evaluate([('m1', _item(WRITTEN, CT + 100), 1)], 60, now=now)[0] == 'up'       # writer ahead: dogpile does not mind
    assert evaluate([('m1', _item(WRITTEN, CT, version=1), 1)], 60, now=now)[0] == 'down'
    assert evaluate([('m1', _item(WRITTEN, CT), 1)], 60, now=now, forced_down=True)[0] == 'down'
    assert evaluate([], 60, now=now)[:3] == ('down', None, None)
    assert evaluate([], 60, now=now, forced_down=True)[3] == 'forced_down is set'


def test_evaluate_with_servers_that_did_not_answer():
    errors = {'10.0.0.2:11211': 'ConnectionRefusedError'}
    now = CT + 30
    assert evaluate([], 60, now=now, server_errors=errors)[0] == 'unknown'
    assert evaluate([('m1', _item(WRITTEN, CT), 1)], 60, now=now, server_errors=errors)[0] == 'up'      # found fresh elsewhere
    assert evaluate([('m1', _item(WRITTEN, CT - 100), 1)], 60, now=now, server_errors=errors)[0] == 'unknown'


def test_evaluate_freshest_copy_wins_and_legacy_is_up_while_present():
    now = CT + 30
    entries = [('m1', _item(WRITTEN, CT - 500), 1), ('m2', _item(WRITTEN, CT), 1), ('m3', b'garbage', 1)]
    assert evaluate(entries, 60, now=now)[0] == 'up'
    assert evaluate([('m1', LEGACY_DATETIME, 1)], 60, now=now)[0] == 'up'


class FakeClient:
    def __init__(self, store, fail=None):
        self.store = store
        self.fail = fail
        self.batches = []
        self.closed = False

    def get_many(self, keys):
        if self.fail:
            raise self.fail
        self.batches.append(list(keys))
        return {key: self.store[key] for key in keys if key in self.store}

    def version(self):
        if self.fail:
            raise self.fail
        return b'1.6.18'

    def close(self):
        self.closed = True


def test_reader_batches_asks_every_server_and_reports_failures():
    stores = {('10.0.0.1', 11211): {'k1': (b'a', 1)}, ('10.0.0.2', 11211): {'k1': (b'b', 1), 'k3': (b'c', 1)}}
    clients = {}

    def factory(address, timeout):
        if address == ('10.0.0.3', 11211):
            clients[address] = FakeClient({}, fail=ConnectionRefusedError(111, 'Connection refused'))
        else:
            clients[address] = FakeClient(stores[address])
        return clients[address]

    reader = MemcachedReader('10.0.0.1:11211, inet6:[::1]:1,10.0.0.2:11211,10.0.0.3:11211', batch_size=2, client_factory=factory)
    reader.addresses.remove(('::1', 1))
    found = reader.get_many(['k1', 'k2', 'k3', 'k1', 'bad key'])
    assert found == {'k1': [('10.0.0.1:11211', b'a', 1), ('10.0.0.2:11211', b'b', 1)], 'k3': [('10.0.0.2:11211', b'c', 1)]}
    assert clients[('10.0.0.1', 11211)].batches == [['k1', 'k2'], ['k3']]
    assert set(reader.errors) == {'10.0.0.3:11211'}
    assert all(client.closed for client in clients.values())
    versions, errors = reader.probe()
    assert versions == {'10.0.0.1:11211': '1.6.18', '10.0.0.2:11211': '1.6.18'}
    assert 'Connection refused' in errors['10.0.0.3:11211']


def test_parse_servers_accepts_every_oslo_form():
    assert parse_servers('a:1,[::1]:2, inet6:[::2]:3,inet:b:4,c') == [('a', 1), ('::1', 2), ('::2', 3), ('b', 4), ('c', 11211)]
