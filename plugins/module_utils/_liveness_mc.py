# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Service liveness by the mc (memcached) ServiceGroup driver's rule, read from memcached.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

What Nova writes (nova 34; nova/servicegroup/drivers/mc.py through oslo.cache and dogpile.cache):

- key ``sha1("<topic>:<host>").hexdigest()``: oslo.cache installs dogpile's sha1 key mangler because
  the memcached backends have none. Mitaka's ``[DEFAULT] memcached_servers`` region and Liberty's
  memorycache did not hash: the key is ``"<topic>:<host>"`` itself.
- value: ``dogpile.cache.api.CachedValue(payload=utcnow(), metadata={'ct': time.time(), 'v': 2})``,
  pickled with protocol 0 by python-memcached (dogpile.cache.memcached, oslo_cache.memcache_pool) and
  with the highest protocol (5) by pymemcache; memcached flags 1 (pickle) for both clients. Liberty
  stored the bare ``datetime`` with a real memcached TTL.
- up: dogpile's ``region.get`` returns the value when ``metadata['v'] == 2`` and
  ``time.time() - metadata['ct'] <= expiration_time``, where Nova sets ``expiration_time`` to
  ``service_down_time``; and ``ServiceGroup.service_is_up`` says down first for ``forced_down`` rows.

memcached is unauthenticated: anyone who reaches it can store any pickle under these keys. Values are
decoded by ``RestrictedUnpickler``, which resolves only the few globals real heartbeats reference (to
local stand-ins where a callable would otherwise be reachable) and refuses everything else, so a
crafted value is reported as ``unknown`` and nothing in it runs.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import pickle
import time
import zlib
from collections import namedtuple

from ansible_collections.nova.cells.plugins.module_utils._addresses import MEMCACHED_PORT, parse_server
from ansible_collections.nova.cells.plugins.module_utils._liveness_db import DOWN, UNKNOWN, UP, iso, state_key

try:
    from pymemcache.client.base import Client as _PymemcacheClient
    PYMEMCACHE_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    _PymemcacheClient = None
    PYMEMCACHE_IMPORT_ERROR = exc

# memcached item flags; python-memcached and pymemcache's serde use the same bits.
FLAG_PICKLE = 1 << 0
FLAG_INTEGER = 1 << 1
FLAG_LONG = 1 << 2
FLAG_COMPRESSED = 1 << 3
FLAG_TEXT = 1 << 4

DOGPILE_VALUE_VERSION = 2
# A heartbeat is about 117 (pymemcache) to 240 (python-memcached) bytes; refuse to decode far larger values.
MAX_VALUE_BYTES = 16 * 1024
DEFAULT_BATCH_SIZE = 500
MAX_KEY_BYTES = 250


class MemcachedUnavailable(Exception):
    """pymemcache is missing or no server could be asked."""


class UnsafeValue(Exception):
    """A value that is not a heartbeat Nova could have written; the message says why."""


# -- keys --------------------------------------------------------------------------------------

def heartbeat_key(topic, host, hashed=True):
    """The memcached key of a service: sha1 of ``"topic:host"`` (oslo.cache), or the plain text (legacy)."""
    key = f'{topic}:{host}'
    if not hashed:
        return key
    # oslo_cache.core._sha1_mangle_key: utf-8 with xmlcharrefreplace, then dogpile's sha1_mangle_key.
    return hashlib.sha1(key.encode('utf-8', 'xmlcharrefreplace')).hexdigest()


def valid_key(key):
    """memcached's text protocol: at most 250 bytes, no spaces or control characters (ASCII for pymemcache)."""
    try:
        raw = key.encode('ascii')
    except UnicodeEncodeError:
        return False
    return 0 < len(raw) <= MAX_KEY_BYTES and all(32 < byte < 127 for byte in raw)


# -- values ------------------------------------------------------------------------------------

class CachedValue(tuple):
    """Stand-in for ``dogpile.cache.api.CachedValue`` (a ``(payload, metadata)`` tuple) so dogpile need not be installed."""

    __slots__ = ()

    def __new__(cls, payload, metadata):
        return tuple.__new__(cls, (payload, metadata))

    @property
    def payload(self):
        return self[0]

    @property
    def metadata(self):
        return self[1]


def _reconstructor(cls, base, state):
    """Safe ``copyreg._reconstructor`` (protocol 0/1 pickles of tuple subclasses): only CachedValue from a 2-tuple."""
    if cls is CachedValue and base is tuple and isinstance(state, tuple) and len(state) == 2:
        return CachedValue(*state)
    raise pickle.UnpicklingError('copyreg._reconstructor is allowed only to rebuild a dogpile CachedValue')


_SAFE_ENCODINGS = ('latin1', 'latin-1', 'iso-8859-1', 'iso8859-1', 'utf-8', 'utf8')


def _encode(text, encoding='utf-8'):
    """Safe ``_codecs.encode``: protocol 0-2 pickles store bytes as ``_codecs.encode(str, 'latin1')``.

    The encoding name is compared with a fixed list before use, so no codec module gets imported.
    """
    if not isinstance(text, str) or not isinstance(encoding, str) or encoding.lower() not in _SAFE_ENCODINGS:
        raise pickle.UnpicklingError('_codecs.encode is allowed only on text with latin-1 or utf-8')
    return text.encode('latin-1' if encoding.lower() not in ('utf-8', 'utf8') else 'utf-8')


# Every global a real heartbeat pickle references (inspected: protocol 0 from python-memcached, protocol 5
# from pymemcache, Liberty's bare datetime), and what it resolves to. Nothing else can be loaded.
ALLOWED_GLOBALS = {
    ('dogpile.cache.api', 'CachedValue'): CachedValue,
    ('datetime', 'datetime'): datetime.datetime,
    ('datetime', 'timezone'): datetime.timezone,
    ('datetime', 'timedelta'): datetime.timedelta,
    ('copyreg', '_reconstructor'): _reconstructor,
    ('copy_reg', '_reconstructor'): _reconstructor,
    ('builtins', 'tuple'): tuple,
    ('__builtin__', 'tuple'): tuple,
    ('_codecs', 'encode'): _encode,
}


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler that can only build heartbeats (see ALLOWED_GLOBALS)."""

    def find_class(self, module, name):
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f'refused to load {module}.{name}: not part of a Nova heartbeat') from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError('refused a persistent id: not part of a Nova heartbeat')


def restricted_loads(data):
    # latin-1 keeps Python 2 str opcodes (Liberty-era pickles) readable as the datetime state they are.
    return RestrictedUnpickler(io.BytesIO(data), encoding='latin1').load()


Heartbeat = namedtuple('Heartbeat', 'written_at created version kind')


def _naive_utc(value):
    if value.tzinfo is not None:
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
    return value


def decode_value(data, flags):
    """Decode one memcached item into a Heartbeat; raises UnsafeValue for anything else."""
    if not isinstance(data, (bytes, bytearray)):
        raise UnsafeValue(f'unexpected item type {type(data).__name__}')
    if len(data) > MAX_VALUE_BYTES:
        raise UnsafeValue(f'item of {len(data)} bytes is far larger than a heartbeat')
    flags = flags or 0
    if flags & FLAG_COMPRESSED:
        inflater = zlib.decompressobj()
        try:
            data = inflater.decompress(bytes(data), MAX_VALUE_BYTES + 1)
        except zlib.error as exc:
            raise UnsafeValue(f'compressed item cannot be inflated: {exc}') from None
        if len(data) > MAX_VALUE_BYTES or inflater.unconsumed_tail:
            raise UnsafeValue(f'compressed item inflates beyond {MAX_VALUE_BYTES} bytes')
    looks_pickled = bytes(data[:1]) in (b'\x80', b'(', b'c')
    if not (flags & FLAG_PICKLE or (flags == 0 and looks_pickled)):
        raise UnsafeValue(f'item is not a pickled heartbeat (memcached flags {flags})')
    try:
        value = restricted_loads(bytes(data))
    except Exception as exc:  # any failure of a crafted or corrupt pickle is just "not a heartbeat"
        raise UnsafeValue(f'item is not a Nova heartbeat: {type(exc).__name__}: {exc}') from None
    if isinstance(value, datetime.datetime):
        return Heartbeat(_naive_utc(value), None, None, 'datetime')
    if not isinstance(value, CachedValue):
        raise UnsafeValue(f'item holds a {type(value).__name__}, not a dogpile CachedValue')
    payload, metadata = value.payload, value.metadata
    if not isinstance(payload, datetime.datetime):
        raise UnsafeValue(f'CachedValue payload is a {type(payload).__name__}, not a datetime')
    if not isinstance(metadata, dict):
        raise UnsafeValue(f'CachedValue metadata is a {type(metadata).__name__}, not a dict')
    created = metadata.get('ct')
    if isinstance(created, bool) or not isinstance(created, (int, float)):
        raise UnsafeValue('CachedValue metadata has no numeric creation time (ct)')
    return Heartbeat(_naive_utc(payload), float(created), metadata.get('v'), 'cachedvalue')


# -- reading -----------------------------------------------------------------------------------

def _raw(_key, value, flags):
    return value, flags


def _default_client(address, timeout):
    if _PymemcacheClient is None:
        raise MemcachedUnavailable('pymemcache is required on the managed host to read mc heartbeats: install '
                                   'python3-pymemcache (Debian/Ubuntu) or "pip install pymemcache"')
    return _PymemcacheClient(address, connect_timeout=timeout, timeout=timeout, deserializer=_raw, no_delay=True)


def server_label(address):
    host, port = address
    return f'[{host}]:{port}' if ':' in host else f'{host}:{port}'


def parse_servers(servers):
    """Addresses from ``[cache] memcache_servers`` (or ``[DEFAULT] memcached_servers``) in any form oslo.cache knows."""
    if isinstance(servers, str):
        servers = servers.split(',')
    return [parse_server(item, style='any', default_port=MEMCACHED_PORT) for item in servers if item and item.strip()]


class MemcachedReader:
    """Batched ``get_many`` against every server: the freshest copy of a key wins, wherever it is.

    Every server is asked for every key: python-memcached and pymemcache spread keys with different hash
    functions, and after a server failure a key may live on another server, so no single hash is right.
    """

    def __init__(self, servers, timeout=5.0, batch_size=DEFAULT_BATCH_SIZE, client_factory=None):
        self.addresses = parse_servers(servers)
        self.timeout = timeout
        self.batch_size = max(1, int(batch_size))
        self._factory = client_factory or _default_client
        self.errors = {}

    def _client(self, address):
        return self._factory(address, self.timeout)

    def probe(self):
        """``{server: version string or None}`` and the errors of the servers that did not answer."""
        versions = {}
        errors = {}
        for address in self.addresses:
            label = server_label(address)
            client = None
            try:
                client = self._client(address)
                versions[label] = _text(client.version())
            except MemcachedUnavailable:
                raise
            except Exception as exc:  # socket errors, timeouts, protocol errors: the server did not answer
                errors[label] = _describe(exc)
            finally:
                _close(client)
        return versions, errors

    def get_many(self, keys):
        """``{key: [(server, data, flags), ...]}`` for the keys found; ``self.errors`` lists servers that failed."""
        keys = [key for key in dict.fromkeys(keys) if valid_key(key)]
        found = {}
        self.errors = {}
        for address in self.addresses:
            label = server_label(address)
            client = None
            try:
                client = self._client(address)
                for start in range(0, len(keys), self.batch_size):
                    batch = keys[start:start + self.batch_size]
                    for key, (data, flags) in client.get_many(batch).items():
                        key = key.decode('ascii') if isinstance(key, bytes) else key
                        found.setdefault(key, []).append((label, data, flags))
            except MemcachedUnavailable:
                raise
            except Exception as exc:
                self.errors[label] = _describe(exc)
            finally:
                _close(client)
        return found


def _text(value):
    return value.decode('utf-8', 'replace') if isinstance(value, bytes) else (None if value is None else str(value))


def _close(client):
    if client is not None:
        try:
            client.close()
        except Exception:
            pass


def _describe(exc):
    text = str(exc) or type(exc).__name__
    return f'{type(exc).__name__}: {text}' if text != type(exc).__name__ else text


# -- the rule ------------------------------------------------------------------------------------

def evaluate(entries, service_down_time, now=None, server_errors=None, forced_down=False):
    """(state, last_seen ISO, age_seconds, reason) of one service from the copies of its key.

    ``entries`` is ``[(server, data, flags), ...]`` (empty when no server had the key); ``now`` is the
    reader's ``time.time()``, as dogpile compares ``ct`` with it.
    """
    now = time.time() if now is None else now
    server_errors = server_errors or {}
    best, problems = None, []
    for server, data, flags in entries:
        try:
            beat = decode_value(data, flags)
        except UnsafeValue as exc:
            problems.append(f'{server}: {exc}')
            continue
        stamp = beat.created if beat.created is not None else _epoch(beat.written_at)
        if best is None or stamp > best[0]:
            best = (stamp, beat)
    if best is None:
        if problems:
            return UNKNOWN, None, None, 'refused the heartbeat item ({})'.format('; '.join(problems))
        if forced_down:
            return DOWN, None, None, 'forced_down is set'
        if server_errors:
            servers = ', '.join(sorted(server_errors))
            details = '; '.join(f'{server}: {error}' for server, error in sorted(server_errors.items()))
            return UNKNOWN, None, None, f'no heartbeat found, but memcached {servers} did not answer ({details})'
        return DOWN, None, None, 'no heartbeat in memcached (never reported, or evicted)'
    stamp, beat = best
    age = round(now - stamp, 3)
    last_seen = iso(beat.written_at)
    if forced_down:
        return DOWN, last_seen, age, 'forced_down is set'
    if beat.kind == 'datetime':
        # Liberty's memorycache: memcached's own TTL (service_down_time) removed stale items.
        return UP, last_seen, age, None
    if beat.version != DOGPILE_VALUE_VERSION:
        return DOWN, last_seen, age, f'dogpile value version {beat.version!r} is not {DOGPILE_VALUE_VERSION}, so Nova treats it as a miss'
    if now - stamp <= service_down_time:
        return UP, last_seen, age, None
    if server_errors:
        return UNKNOWN, last_seen, age, 'heartbeat {:.0f} s old, and memcached {} did not answer (a newer one may be there)'.format(
            now - stamp, ', '.join(sorted(server_errors)))
    return DOWN, last_seen, age, f'last heartbeat {now - stamp:.0f} s ago (service_down_time {service_down_time})'


def _epoch(naive_utc):
    return naive_utc.replace(tzinfo=datetime.UTC).timestamp()


class MemcachedBackend:
    """The mc driver: one batched read of every service's key from every server, then ``evaluate`` per service.

    ``hashed_keys`` comes from _servicegroup.legacy_memcached (oslo.cache regions hash, the legacy option does not).
    Raises MemcachedUnavailable when pymemcache is missing.
    """

    def __init__(self, reader, hashed_keys=True):
        self.reader = reader
        self.hashed_keys = hashed_keys
        self.warnings = []

    def states(self, cell_rows, service_down_time):
        keys = {state_key(cell, row): heartbeat_key(row['topic'], row['host'], hashed=self.hashed_keys)
                for cell, rows in cell_rows for row in rows}
        found = self.reader.get_many(keys.values())
        errors = self.reader.errors
        if errors:
            servers = ', '.join(sorted(errors))
            details = '; '.join(f'{server}: {error}' for server, error in sorted(errors.items()))
            self.warnings.append(f'memcached {servers} did not answer ({details}): services whose heartbeat was not found '
                                 'elsewhere are reported unknown')
        now = time.time()
        result = {}
        for cell, rows in cell_rows:
            for row in rows:
                key = keys[state_key(cell, row)]
                if not valid_key(key):
                    result[state_key(cell, row)] = (UNKNOWN, None, None, f'the key {key!r} is not a valid memcached key')
                    continue
                result[state_key(cell, row)] = evaluate(found.get(key, []), service_down_time, now=now,
                                                        server_errors=errors, forced_down=row['forced_down'])
        return result

    def close(self):
        pass
