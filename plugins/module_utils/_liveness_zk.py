# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Service liveness by the legacy zk ServiceGroup driver's layout, read from ZooKeeper with kazoo.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

Layout written by the driver (Kilo/Liberty, through evzookeeper's Membership)::

    {sg_prefix}/{topic}/{host}          persistent, data "ZKMembers"
    {sg_prefix}/{topic}/{host}/{pid}    EPHEMERAL, one per live process

Juno and older made ``{sg_prefix}/{topic}/{host}`` itself the ephemeral node. A host is up while it has
at least one child (``numChildren > 0``; the host node stays after its session ends) or while the host
node itself is ephemeral. Reads are pipelined: one ``get_children_async`` per topic, then one
``exists_async`` per host present, all in flight together.
"""

from __future__ import annotations

import logging
from collections import namedtuple

from ansible_collections.nova.cells.plugins.module_utils._addresses import ZOOKEEPER_PORT, parse_server
from ansible_collections.nova.cells.plugins.module_utils._liveness_db import DOWN, UNKNOWN, UP, state_key

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoNodeError
    KAZOO_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - depends on the managed host
    KazooClient = None
    NoNodeError = None
    KAZOO_IMPORT_ERROR = exc

# kazoo's default reconnect backoff grows to an hour after a restart of the ensemble; this one retries every
# 0.1-1 s for ever, and connect() bounds the first connection by backend_timeout.
CONNECTION_RETRY = dict(max_tries=-1, delay=0.1, backoff=1.5, max_delay=1.0)
COMMAND_RETRY = dict(max_tries=3, delay=0.1, backoff=1.5, max_delay=1.0)
SESSION_TIMEOUT = 10.0
PIPELINE_CHUNK = 2000

Member = namedtuple('Member', 'state members reason')


class ZooKeeperUnavailable(Exception):
    """kazoo is missing or the ensemble cannot be reached."""


def _quiet_logger():
    logger = logging.getLogger('nova.cells.zookeeper')
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def parse_address(address):
    """``[(host, port)]`` from ``[zookeeper] address`` (a comma string or a list)."""
    if isinstance(address, str):
        address = address.split(',')
    return [parse_server(item, style='any', what='ZooKeeper server', default_port=ZOOKEEPER_PORT)
            for item in (address or []) if item and item.strip()]


def hosts_string(addresses):
    return ','.join(f'[{host}]:{port}' if ':' in host else f'{host}:{port}' for host, port in addresses)


def _require_kazoo():
    if KazooClient is None:
        raise ZooKeeperUnavailable('kazoo is required on the managed host to read ZooKeeper: install python3-kazoo '
                                   '(Debian/Ubuntu) or "pip install kazoo"')


def connect(addresses, timeout=5.0, client_factory=None):
    """A started client (read-only connections allowed); raises ZooKeeperUnavailable."""
    if client_factory is None:
        _require_kazoo()
    factory = client_factory or KazooClient
    client = factory(hosts=hosts_string(addresses), timeout=SESSION_TIMEOUT, connection_retry=dict(CONNECTION_RETRY),
                     command_retry=dict(COMMAND_RETRY), read_only=True, logger=_quiet_logger())
    try:
        client.start(timeout=timeout)
    except Exception as exc:
        close(client)
        raise ZooKeeperUnavailable(f'ZooKeeper {hosts_string(addresses)} did not answer within {timeout} s ({type(exc).__name__})') from None
    return client


def close(client):
    for step in ('stop', 'close'):
        try:
            getattr(client, step)()
        except Exception:
            pass


def probe(addresses, timeout=5.0, client_factory=None):
    """Ask every server on its own: ``({server: 'connected'}, {server: error})``.

    A session plus one read of ``/`` proves the server serves clients; kazoo's ``server_version()``
    would need the ``envi`` four-letter word, which ZooKeeper 3.5+ disables unless whitelisted.
    """
    if client_factory is None:
        _require_kazoo()
    versions, errors = {}, {}
    for address in addresses:
        label = hosts_string([address])
        try:
            client = connect([address], timeout=timeout, client_factory=client_factory)
        except ZooKeeperUnavailable as exc:
            errors[label] = str(exc)
            continue
        try:
            client.exists('/')
            versions[label] = 'connected'
        except Exception as exc:
            errors[label] = f'{type(exc).__name__}: {exc}'
        finally:
            close(client)
    return versions, errors


def read_members(client, prefix, wanted, timeout=10.0):
    """Membership of ``wanted`` (``{topic: iterable of hosts}``): ``{(topic, host): Member}``."""
    prefix = prefix.rstrip('/')
    results = {}
    listings = {}
    pending = [(topic, client.get_children_async(f'{prefix}/{topic}')) for topic in wanted if topic]
    for topic, result in pending:
        try:
            listings[topic] = set(result.get(timeout=timeout))
        except Exception as exc:
            if NoNodeError is not None and isinstance(exc, NoNodeError):
                listings[topic] = set()
            else:
                for host in wanted[topic]:
                    results[(topic, host)] = Member(UNKNOWN, None, f'cannot list {prefix}/{topic}: {_describe(exc)}')
    present = []
    for topic, hosts in wanted.items():
        if not topic:
            for host in hosts:
                results[(topic, host)] = Member(DOWN, None, 'the service has no topic, so it has no znode')
            continue
        if topic not in listings:
            continue
        for host in hosts:
            if host in listings[topic]:
                present.append((topic, host))
            else:
                results[(topic, host)] = Member(DOWN, 0, f'no znode {prefix}/{topic}/{host}')
    for start in range(0, len(present), PIPELINE_CHUNK):
        chunk = present[start:start + PIPELINE_CHUNK]
        requests = []
        for topic, host in chunk:
            try:
                requests.append(((topic, host), client.exists_async(f'{prefix}/{topic}/{host}')))
            except Exception as exc:  # e.g. a host name that is not a valid znode name
                results[(topic, host)] = Member(UNKNOWN, None, _describe(exc))
        for key, result in requests:
            try:
                stat = result.get(timeout=timeout)
            except Exception as exc:
                results[key] = Member(UNKNOWN, None, _describe(exc))
                continue
            results[key] = _member(stat, '{}/{}/{}'.format(prefix, *key))
    return results


def _member(stat, path):
    if stat is None:
        return Member(DOWN, 0, f'znode {path} vanished')
    if stat.numChildren > 0:
        return Member(UP, stat.numChildren, None)
    if getattr(stat, 'ephemeralOwner', 0):
        return Member(UP, 1, None)  # Juno and older: the host node itself is the ephemeral member
    return Member(DOWN, 0, f'znode {path} has no live member (the session that joined has ended)')


def _describe(exc):
    text = str(exc)
    return '{}{}'.format(type(exc).__name__, f': {text}' if text else '')


def evaluate(member, forced_down=False):
    """(state, last_seen, age_seconds, reason): ZooKeeper keeps no heartbeat time, only membership."""
    if member is None:
        return UNKNOWN, None, None, 'not read from ZooKeeper'
    if forced_down:
        return DOWN, None, None, 'forced_down is set'
    return member.state, None, None, member.reason


class ZooKeeperBackend:
    """The legacy zk driver: membership of every (topic, host) read in one pipelined pass; a down ensemble makes
    every service unknown (with a warning), not a failure."""

    def __init__(self, addresses, prefix, timeout=5.0, client_factory=None):
        self.addresses = addresses
        self.prefix = prefix
        self.timeout = timeout
        self.client_factory = client_factory
        self.client = None
        self.warnings = []

    def states(self, cell_rows, service_down_time=None):
        wanted = {}
        for _cell, rows in cell_rows:
            for row in rows:
                wanted.setdefault(row['topic'], set()).add(row['host'])
        members = {}
        try:
            if self.client is None:
                self.client = connect(self.addresses, timeout=self.timeout, client_factory=self.client_factory)
            members = read_members(self.client, self.prefix, wanted, timeout=self.timeout)
        except ZooKeeperUnavailable as exc:
            self.warnings.append(f'{exc}: services are reported unknown')
        return {state_key(cell, row): evaluate(members.get((row['topic'], row['host'])), forced_down=row['forced_down'])
                for cell, rows in cell_rows for row in rows}

    def close(self):
        if self.client is not None:
            close(self.client)
            self.client = None
