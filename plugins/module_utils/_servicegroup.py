# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Nova ServiceGroup options per driver and release: the single source of truth.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

``render(driver, release, **settings)`` returns what a nova.conf must contain for the driver
(``options``: ``{section: {option: value}}``, values as the strings to write), what it must not
contain (``remove``: ``[[section, option], ...]``) and ``warnings``. The ``servicegroup`` module
writes it into one file, the ``servicegroup_options`` filter hands it to templates (the nova_conf
role). ``read_settings(get, release)`` is its inverse: what a nova.conf configures, as the services
of a release read it (``service_status`` reads heartbeats where it says). Both take the memcached
layout of a release (``legacy_memcached``: which option names the servers, and whether keys are
hashed) from one rule. Pure functions, no I/O.
"""

from __future__ import annotations

import re

from ansible_collections.nova.cells.plugins.module_utils._addresses import AddressError, validate_servers
from ansible_collections.nova.cells.plugins.module_utils._releases import (
    LATEST_KNOWN_MAJOR,
    NovaRelease,
    ReleaseError,
    parse_release,
    supports,
)

DRIVERS = ('db', 'mc', 'zk')
DEFAULT_REPORT_INTERVAL = 10
DEFAULT_SERVICE_DOWN_TIME = 60

# Memcached backends whose data service_status can read, and the client library each one uses.
MEMCACHED_BACKENDS = {
    'dogpile.cache.pymemcache': 'pymemcache',
    'dogpile.cache.memcached': 'python-memcached',
    'oslo_cache.memcache_pool': 'python-memcached',
}
# The library the pre-Newton [DEFAULT] memcached_servers path always uses.
LEGACY_MEMCACHED_CLIENT = 'python-memcached'
# Nova asks the shared [cache] region for items that live this long (nova/objects/ec2.py _CACHE_TIME;
# availability zones: 3600 s). oslo.cache raises ConfigurationError when backend_expiration_time is smaller.
NOVA_LONGEST_CACHE_SECONDS = 7 * 24 * 3600

ZOOKEEPER_DEFAULTS = {'recv_timeout': 4000, 'sg_prefix': '/servicegroups', 'sg_retry_interval': 5}
ZOOKEEPER_OPTIONS = ('address', 'recv_timeout', 'sg_prefix', 'sg_retry_interval')

# Which settings belong to which driver (to warn about settings that a driver ignores).
DRIVER_SETTINGS = {
    'mc': ('memcache_servers', 'cache_backend', 'backend_expiration_time'),
    'zk': ('zookeeper_address', 'zookeeper_recv_timeout', 'zookeeper_sg_prefix', 'zookeeper_sg_retry_interval'),
}
SETTINGS = ('report_interval', 'service_down_time') + DRIVER_SETTINGS['mc'] + DRIVER_SETTINGS['zk'] + ('oslo_cache_version',)

_ZNODE_SEGMENT = re.compile(r'^[^/\x00-\x1f\x7f]+$')


class ServiceGroupError(ValueError):
    """Settings Nova would reject or silently change; the message says what Nova would do."""


# -- timing ----------------------------------------------------------------------------------

def effective_service_down_time(report_interval, service_down_time):
    """What Nova uses (nova/servicegroup/api.py): ``int(2.5 * report_interval)`` when the value is too small."""
    if report_interval and service_down_time <= report_interval:
        return int(report_interval * 2.5)
    return service_down_time


def _int(name, value, minimum=1, maximum=None):
    if isinstance(value, bool):
        raise ServiceGroupError(f'{name} must be an integer, not {value!r}')
    if isinstance(value, str) and re.match(r'^\s*-?\d+\s*$', value):
        value = int(value)
    if not isinstance(value, int):
        raise ServiceGroupError(f'{name} must be an integer, not {value!r}')
    if value < minimum or (maximum is not None and value > maximum):
        bound = f'at least {minimum}' if maximum is None else f'between {minimum} and {maximum}'
        raise ServiceGroupError(f'{name} must be {bound}, not {value}')
    return value


def check_timing(report_interval, service_down_time):
    """Validate the two timers; returns warnings. Refuses what Nova would silently override."""
    report_interval = _int('report_interval', report_interval)
    service_down_time = _int('service_down_time', service_down_time)
    if service_down_time <= report_interval:
        nova_uses = effective_service_down_time(report_interval, service_down_time)
        raise ServiceGroupError(
            f'service_down_time ({service_down_time}) must be greater than report_interval ({report_interval}): Nova would '
            f'ignore it, log "Report interval must be less than service down time" and use int(2.5 x report_interval) = '
            f'{nova_uses} seconds instead (nova/servicegroup/api.py). Set service_down_time above {report_interval} (Nova\'s '
            'defaults are report_interval 10, service_down_time 60) and use the same values on every node.')
    warnings = []
    if service_down_time < 2 * report_interval:
        warnings.append(f'service_down_time ({service_down_time}) is less than twice report_interval ({report_interval}): a '
                        'single late heartbeat makes a service look down; Nova\'s defaults are 60 and 10')
    return report_interval, service_down_time, warnings


def _znode_path(value, name):
    if not isinstance(value, str) or not value.startswith('/') or value == '/' or value.endswith('/'):
        raise ServiceGroupError(f'{name} must be an absolute ZooKeeper path such as /servicegroups (no trailing /), not {value!r}')
    for segment in value[1:].split('/'):
        if not _ZNODE_SEGMENT.match(segment) or segment in ('.', '..') or segment == 'zookeeper':
            raise ServiceGroupError(f'{name} {value!r} has an invalid path element {segment!r}')
    return value


def _servers(servers, style, **names):
    try:
        return validate_servers(servers, style, **names)
    except AddressError as exc:
        raise ServiceGroupError(str(exc)) from None


# -- the memcached layout of a release ---------------------------------------------------------

def legacy_memcached(release, legacy_servers=False, cache_enabled=False):
    """Whether the mc driver of ``release`` uses ``[DEFAULT] memcached_servers`` with plain ``topic:host`` keys
    (True) or the oslo.cache ``[cache]`` region with sha1-hashed keys (False).

    Liberty and older know only the legacy option (nova's memorycache). Mitaka reads it first when it is set
    (``legacy_servers``), else the ``[cache]`` block. Newton and later ignore it. For an unknown release
    (None), the file decides: the legacy option without an enabled ``[cache]`` block.
    """
    if release is None:
        return bool(legacy_servers) and not cache_enabled
    if not supports(release, 'cache_block_servicegroup'):
        return True
    if supports(release, 'legacy_memcached_servers'):
        return bool(legacy_servers)
    return False


# -- rendering -------------------------------------------------------------------------------

def _release(release):
    if release is None:
        return None
    try:
        return parse_release(release)
    except ReleaseError as exc:
        raise ServiceGroupError(str(exc)) from None


def _label(release):
    return release.label if release is not None else 'the newest Nova release ({})'.format(NovaRelease(LATEST_KNOWN_MAJOR, None, '').label)


def render(driver, release=None, **settings):
    """Options for ``driver`` on ``release`` (None: the newest release known).

    Settings: report_interval, service_down_time, memcache_servers, cache_backend, backend_expiration_time
    (None: not managed, 0: removed), zookeeper_address, zookeeper_recv_timeout, zookeeper_sg_prefix,
    zookeeper_sg_retry_interval, oslo_cache_version (the installed oslo.cache, when known).

    Returns ``{'options': {section: {option: str}}, 'remove': [[section, option]], 'warnings': [str]}``.
    Raises ServiceGroupError for anything Nova would reject or silently change.
    """
    unknown = sorted(set(settings) - set(SETTINGS))
    if unknown:
        raise ServiceGroupError('unknown ServiceGroup setting(s) {}; known: {}'.format(', '.join(unknown), ', '.join(SETTINGS)))
    if driver not in DRIVERS:
        raise ServiceGroupError(f'unknown ServiceGroup driver {driver!r}: Nova accepts db (the default) and mc; zk only up to Liberty (12)')
    release = _release(release)
    major = release.major if release is not None else LATEST_KNOWN_MAJOR
    report_interval = settings.get('report_interval')
    service_down_time = settings.get('service_down_time')
    report_interval, service_down_time, warnings = check_timing(
        DEFAULT_REPORT_INTERVAL if report_interval is None else report_interval,
        DEFAULT_SERVICE_DOWN_TIME if service_down_time is None else service_down_time)
    for other, names in DRIVER_SETTINGS.items():
        if other != driver:
            given = [name for name in names if settings.get(name) not in (None, [], '')]
            if given:
                warnings.append('{} {} ignored with driver {}'.format(', '.join(given), 'is' if len(given) == 1 else 'are', driver))

    options = {'DEFAULT': {'servicegroup_driver': driver,
                           'report_interval': str(report_interval),
                           'service_down_time': str(service_down_time)}}
    remove = []
    if driver != 'zk':
        # [zookeeper] only ever served the zk ServiceGroup driver.
        remove.extend(['zookeeper', option] for option in ZOOKEEPER_OPTIONS)
    if not supports(release, 'legacy_memcached_servers'):
        # Newton and later ignore it; the upstream guide still shows it, so it survives in many files.
        remove.append(['DEFAULT', 'memcached_servers'])

    if driver == 'mc':
        _render_mc(release, major, service_down_time, settings, options, remove, warnings)
    elif driver == 'zk':
        _render_zk(release, major, settings, options, warnings)
    return {'options': options, 'remove': remove, 'warnings': warnings}


def _render_mc(release, major, service_down_time, settings, options, remove, warnings):
    backend = settings.get('cache_backend')
    expiration = settings.get('backend_expiration_time')
    oslo_cache = settings.get('oslo_cache_version')
    if legacy_memcached(release or NovaRelease(LATEST_KNOWN_MAJOR, None, ''), legacy_servers=True):
        # Liberty and older: nova's memorycache (python-memcached) reads only [DEFAULT] memcached_servers.
        # Mitaka: [DEFAULT] memcached_servers, when set, wins over [cache] and builds a dogpile.cache.memcached
        # region (python-memcached, keys not hashed); nothing else is needed (nova/cache_utils.py of Mitaka).
        servers = _servers(settings.get('memcache_servers'), LEGACY_MEMCACHED_CLIENT)
        options['DEFAULT']['memcached_servers'] = ','.join(servers)
        if backend not in (None, 'dogpile.cache.memcached'):
            warnings.append(f'cache_backend {backend} is ignored on {_label(release)}: with [DEFAULT] memcached_servers the mc driver always uses '
                            'python-memcached (python3-memcache must be installed on every node)')
        if expiration:
            warnings.append(f'backend_expiration_time is not rendered: {_label(release)} has no [cache] backend_expiration_time '
                            '(oslo.cache 3.9.0, 2025.1)')
        if expiration is not None:
            remove.append(['cache', 'backend_expiration_time'])
        return

    pymemcache_ok = supports(release, 'pymemcache_backend', oslo_cache)
    if backend is None:
        backend = 'dogpile.cache.pymemcache' if pymemcache_ok else 'dogpile.cache.memcached'
    if backend == 'dogpile.cache.null':
        raise ServiceGroupError('cache_backend dogpile.cache.null stores nothing: every mc heartbeat would be lost and every '
                                'service reported down. Use dogpile.cache.pymemcache, dogpile.cache.memcached or '
                                'oslo_cache.memcache_pool.')
    if backend not in MEMCACHED_BACKENDS:
        choices = ', '.join(sorted(MEMCACHED_BACKENDS))
        raise ServiceGroupError(f'cache_backend {backend!r} is not supported for the mc ServiceGroup driver: use one of {choices} '
                                '(memcached backends whose heartbeats nova.cells.service_status can read)')
    installed = f' with oslo.cache {oslo_cache}' if oslo_cache else ''
    if backend == 'dogpile.cache.pymemcache' and not pymemcache_ok:
        raise ServiceGroupError('cache_backend dogpile.cache.pymemcache needs oslo.cache 2.7.0 (Wallaby, Nova 23) or the '
                                f'backports 2.6.2/2.3.1; {_label(release)}{installed} does not have it. Use dogpile.cache.memcached '
                                'or oslo_cache.memcache_pool.')
    servers = _servers(settings.get('memcache_servers'), MEMCACHED_BACKENDS[backend])
    options['cache'] = {'enabled': 'true', 'backend': backend, 'memcache_servers': ','.join(servers)}
    if expiration is None:
        return
    expiration = _int('backend_expiration_time', expiration, minimum=0)
    if expiration == 0:
        remove.append(['cache', 'backend_expiration_time'])
        return
    if not supports(release, 'backend_expiration_time', oslo_cache):
        warnings.append(f'backend_expiration_time is not rendered: {_label(release)}{installed} has no [cache] '
                        'backend_expiration_time (it came with oslo.cache 3.9.0, 2025.1); memcached keeps heartbeat items until '
                        'it evicts them, and service_status still reads them as down after service_down_time')
        remove.append(['cache', 'backend_expiration_time'])
        return
    minimum = max(NOVA_LONGEST_CACHE_SECONDS, service_down_time)
    if expiration < minimum:
        raise ServiceGroupError(
            f'backend_expiration_time {expiration} is too small: it must be at least {minimum}. Nova configures all its caches '
            'from the same [cache] section and oslo.cache raises ConfigurationError ("backend_expiration_time should not be '
            'smaller than expiration_time") when a cache asks for a longer lifetime: the mc driver asks for service_down_time '
            f'({service_down_time} s), the availability-zone cache for 3600 s and the EC2 id cache for '
            f'{NOVA_LONGEST_CACHE_SECONDS} s, so nova-api, the conductors, the metadata API and config-drive builds would fail. '
            f'Leave it unset (stale heartbeats then read as down and stay until memcached evicts them) or set it to {minimum} '
            'or more.')
    options['cache']['backend_expiration_time'] = str(expiration)


def _render_zk(release, major, settings, options, warnings):
    if not supports(release, 'zk_servicegroup'):
        raise ServiceGroupError(
            f'driver zk is not available on {_label(release)}: the ZooKeeper ServiceGroup driver was removed in Mitaka 13.0.0 (commit '
            '337a1b029a "servicegroup: remove the zookeeper driver"; evzookeeper was unmaintained and broken with '
            'eventlet >= 0.17), and servicegroup_driver now accepts only db and mc, so Nova services would refuse to start '
            'with servicegroup_driver = zk. Use driver db (the default) or mc (memcached, [cache] block).')
    address = _servers(settings.get('zookeeper_address'), 'any', name='zookeeper_address', what='ZooKeeper server')
    recv_timeout = settings.get('zookeeper_recv_timeout')
    retry = settings.get('zookeeper_sg_retry_interval')
    prefix = settings.get('zookeeper_sg_prefix')
    options['zookeeper'] = {
        'address': ','.join(address),
        'recv_timeout': str(_int('zookeeper_recv_timeout', ZOOKEEPER_DEFAULTS['recv_timeout'] if recv_timeout is None else recv_timeout)),
        'sg_prefix': _znode_path(ZOOKEEPER_DEFAULTS['sg_prefix'] if prefix is None else prefix, 'zookeeper_sg_prefix'),
        'sg_retry_interval': str(_int('zookeeper_sg_retry_interval', ZOOKEEPER_DEFAULTS['sg_retry_interval'] if retry is None else retry)),
    }
    if major in (11, 12):
        warnings.append(f'the zk driver of {_label(release)} registers every member under host "None" (commit 7c387637, LP#1414517), so '
                        'Nova itself reports zk services down; prefer driver db or mc')


# -- reading: the inverse of render --------------------------------------------------------------

_TRUE = ('1', 'true', 'yes', 'on')


def _flag(value):
    return (value or '').strip().lower() in _TRUE


def _conf_int(get, section, option, default, source):
    value = get(section, option)
    if value in (None, ''):
        return default
    try:
        return int(value)
    except ValueError:
        raise ServiceGroupError(f'[{section}] {option} = {value!r} in {source} is not an integer') from None


def read_settings(get, release=None, source='nova.conf', **given):
    """The ServiceGroup settings a nova.conf holds, as the services of ``release`` (None: unknown) read them.

    ``get(section, option)`` reads the merged config files (``NovaConfig.get``); ``source`` names them in messages.
    ``given`` settings (``driver``, ``report_interval``, ``service_down_time``) are taken as they are, not read.
    Returns a dict: ``driver``, ``report_interval``, ``service_down_time`` (as configured; see
    effective_service_down_time), ``legacy_memcached`` and ``hashed_keys`` (see legacy_memcached),
    ``memcache_servers`` (the option those services read; None when unset), ``cache_enabled``, ``cache_backend``,
    ``cache_security`` (TLS and SASL options set to true), ``zookeeper_address``, ``zookeeper_sg_prefix``.
    Raises ServiceGroupError for a driver or a number Nova would not accept.
    """
    release = _release(release)
    driver = given.get('driver') or (get('DEFAULT', 'servicegroup_driver') or 'db').strip()
    if driver not in DRIVERS:
        raise ServiceGroupError(f'servicegroup_driver = {driver} in {source} is not a driver Nova knows (db, mc; zk before Mitaka)')
    report_interval = given.get('report_interval')
    if report_interval is None:
        report_interval = _conf_int(get, 'DEFAULT', 'report_interval', DEFAULT_REPORT_INTERVAL, source)
    service_down_time = given.get('service_down_time')
    if service_down_time is None:
        service_down_time = _conf_int(get, 'DEFAULT', 'service_down_time', DEFAULT_SERVICE_DOWN_TIME, source)
    legacy_servers = get('DEFAULT', 'memcached_servers')
    cache_enabled = _flag(get('cache', 'enabled'))
    legacy = legacy_memcached(release, legacy_servers=bool(legacy_servers), cache_enabled=cache_enabled)
    return {
        'driver': driver,
        'report_interval': report_interval,
        'service_down_time': service_down_time,
        'legacy_memcached': legacy,
        'hashed_keys': not legacy,
        'memcache_servers': legacy_servers if legacy else get('cache', 'memcache_servers'),
        'cache_enabled': cache_enabled,
        'cache_backend': get('cache', 'backend') or 'dogpile.cache.null',
        'cache_security': [option for option in ('tls_enabled', 'memcache_sasl_enabled') if _flag(get('cache', option))],
        'zookeeper_address': get('zookeeper', 'address'),
        'zookeeper_sg_prefix': get('zookeeper', 'sg_prefix') or ZOOKEEPER_DEFAULTS['sg_prefix'],
    }
