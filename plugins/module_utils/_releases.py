# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Nova releases: parse a release given by the user, detect the one on the managed host, feature gates.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

A release is identified by its Nova major version. Liberty is 12.0.0 because it is the twelfth
OpenStack release, so the releases before it (versioned ``2010.1`` .. ``2015.1``) get the ordinal
numbers 1 .. 11 here and every release compares as an integer. The gates below come from comparing
``nova/cmd/manage.py`` and ``nova/servicegroup`` across Nova's release tags (the commit is named where known).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections import namedtuple

# Index + 1 is the Nova major version (Liberty = 12.0.0; 2023.1 Antelope = 27.0.0; 2026.2 Hibiscus = 34.0.0).
RELEASE_NAMES = (
    'austin', 'bexar', 'cactus', 'diablo', 'essex', 'folsom', 'grizzly', 'havana', 'icehouse', 'juno', 'kilo',
    'liberty', 'mitaka', 'newton', 'ocata', 'pike', 'queens', 'rocky', 'stein', 'train', 'ussuri', 'victoria',
    'wallaby', 'xena', 'yoga', 'zed', 'antelope', 'bobcat', 'caracal', 'dalmatian', 'epoxy', 'flamingo',
    'gazpacho', 'hibiscus',
)
# Nova's own version numbers before Liberty (year.N), by ordinal.
DATE_VERSIONS = {
    (2010, 1): 1, (2011, 1): 2, (2011, 2): 3, (2011, 3): 4, (2012, 1): 5, (2012, 2): 6,
    (2013, 1): 7, (2013, 2): 8, (2014, 1): 9, (2014, 2): 10, (2015, 1): 11,
}
FIRST_SERIES_MAJOR = 27  # 2023.1 is the first release identified by year.N
FIRST_SERIES_YEAR = 2023
LATEST_KNOWN_MAJOR = len(RELEASE_NAMES)

Feature = namedtuple('Feature', 'minimum maximum description')

# Gates by Nova major version (inclusive bounds; None = open). Keep the descriptions usable in messages.
FEATURES = {
    # ServiceGroup
    'zk_servicegroup': Feature(None, 12, 'the zk (ZooKeeper) ServiceGroup driver, removed in Mitaka 13.0.0 '
                                         '(commit 337a1b029a "servicegroup: remove the zookeeper driver")'),
    'legacy_memcached_servers': Feature(None, 13, '[DEFAULT] memcached_servers, removed in Newton 14.0.0 (commit 505bc44615)'),
    'cache_block_servicegroup': Feature(13, None, 'the mc ServiceGroup driver configured through the oslo.cache [cache] block'),
    'heartbeat_last_seen_up': Feature(12, None, 'services.last_seen_up as the db driver heartbeat (commit b9bae02af2)'),
    'heartbeat_without_updated_at': Feature(15, None, 'the db driver heartbeat "last_seen_up or created_at" (commit 594b1b1520)'),
    # oslo.cache, by the release that first shipped it in upper-constraints (the installed oslo.cache decides when known)
    'pymemcache_backend': Feature(23, None, 'the dogpile.cache.pymemcache backend (oslo.cache 2.7.0, Wallaby)'),
    'backend_expiration_time': Feature(31, None, '[cache] backend_expiration_time (oslo.cache 3.9.0, 2025.1)'),
    # nova-manage cell_v2
    'cells_v2': Feature(14, None, 'nova-manage cell_v2 map_cell0 and the cell0 database'),
    'create_cell': Feature(15, None, 'nova-manage cell_v2 create_cell'),
    'update_cell': Feature(15, None, 'nova-manage cell_v2 update_cell'),
    'discover_hosts_verbose': Feature(15, None, 'discover_hosts --verbose'),
    'discover_hosts_strict': Feature(16, None, 'discover_hosts --strict (rc 1 when nothing was mapped)'),
    'compute_nodes_mapped': Feature(16, None, 'the compute_nodes.mapped column'),
    'delete_host': Feature(17, None, 'nova-manage cell_v2 delete_host (also backported to stable/ocata and stable/pike)'),
    'list_hosts': Feature(17, None, 'nova-manage cell_v2 list_hosts'),
    'delete_cell_force': Feature(17, None, 'delete_cell --force'),
    'create_cell_disabled': Feature(18, None, 'create_cell --disabled'),
    'update_cell_disable': Feature(18, None, 'update_cell --disable/--enable'),
    'cell_url_templates': Feature(18, None, 'template URLs in cell mappings (commit 50658eee4f)'),
    'discover_by_service': Feature(18, None, 'discover_hosts --by-service'),
    'map_instances_reset': Feature(18, None, 'map_instances --reset'),
    'create_cell_validates_transport_url': Feature(19, None, 'transport URL validation in create_cell'),
    'online_data_migrations_rc2': Feature(19, None, 'online_data_migrations rc 2 for errors without progress'),
    'discover_hosts_rc2': Feature(20, None, 'discover_hosts rc 2 on a duplicate host mapping (commit 5c544c7e2a)'),
    'crash_rc_255': Feature(20, None, 'rc 255 for unhandled nova-manage errors (rc 1 before Train)'),
    'db_sync_cell0_rc1': Feature(20, None, 'db sync rc 1 when cell0 cannot be accessed'),
    'validate_database_connection': Feature(21, None, 'database URL validation and fallback notices in cell_v2 commands'),
    'alembic': Feature(24, None, 'alembic schema migrations (integer db sync versions rejected)'),
}

# oslo.cache versions that shipped a feature, for when the installed oslo.cache is known: (low, high_exclusive)
OSLO_CACHE_FEATURES = {
    # 2.7.0 on master (Wallaby), backported as 2.6.2 (stable/victoria) and 2.3.1 (stable/ussuri)
    'pymemcache_backend': (((2, 7, 0), None), ((2, 6, 2), (2, 7, 0)), ((2, 3, 1), (2, 4, 0))),
    'backend_expiration_time': (((3, 9, 0), None),),
}

_VERSION = re.compile(r'^(\d+)\.(\d+)(?:\.(\d+))?')
_VERSION_IN_TEXT = re.compile(r'(?<![\w.])(\d+\.\d+\.\d+[\w.+-]*)')


class ReleaseError(ValueError):
    """A release that cannot be parsed or detected, or a feature the release does not have."""


class NovaRelease(namedtuple('NovaRelease', 'major version source')):
    """A Nova release: ``major`` (int), ``version`` (the full version when known) and where it came from."""

    @property
    def name(self):
        if 1 <= self.major <= len(RELEASE_NAMES):
            return RELEASE_NAMES[self.major - 1]
        return None

    @property
    def series(self):
        """``2025.1`` style identifier (2023.1 and later), ``2015.1`` style for Kilo and older, else None."""
        if self.major >= FIRST_SERIES_MAJOR:
            offset = self.major - FIRST_SERIES_MAJOR
            return f'{FIRST_SERIES_YEAR + offset // 2}.{offset % 2 + 1}'
        for (year, number), major in DATE_VERSIONS.items():
            if major == self.major:
                return f'{year}.{number}'
        return None

    @property
    def label(self):
        """Human form for messages, e.g. ``Nova 34.0.0 (2026.2 Hibiscus)`` or ``Nova 13 (Mitaka)``."""
        version = self.version or (str(self.major) if self.major > 11 else self.series)
        words = [word for word in ((self.series if self.major >= FIRST_SERIES_MAJOR else None),
                                   (self.name or '').capitalize() or None) if word]
        return 'Nova {}{}'.format(version, ' ({})'.format(' '.join(words)) if words else '')

    def supports(self, feature):
        return supports(self, feature)

    def as_dict(self):
        return {'major': self.major, 'version': self.version, 'name': self.name, 'series': self.series, 'source': self.source}


def _major_from_series(year, number):
    if year >= FIRST_SERIES_YEAR:
        if number not in (1, 2):
            raise ReleaseError(f'{year}.{number} is not an OpenStack release; releases are numbered YEAR.1 and YEAR.2')
        return FIRST_SERIES_MAJOR + (year - FIRST_SERIES_YEAR) * 2 + number - 1
    if (year, number) in DATE_VERSIONS:
        return DATE_VERSIONS[(year, number)]
    raise ReleaseError(f'{year}.{number} is not a Nova release')


def parse_release(value, source='nova_release'):
    """Parse ``34.0.0``, ``34``, ``mitaka``, ``2025.1``, ``stable/2025.1``, ``2015.1.2`` (Kilo) into a NovaRelease."""
    if isinstance(value, NovaRelease):
        return value
    if isinstance(value, bool) or value is None:
        raise ReleaseError(f'{source} must be a Nova version (34.0.0 or 34), a release name (mitaka) or a series (2025.1), not {value!r}')
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        # YAML turns an unquoted 2025.1 into a float.
        text = repr(value)
    else:
        text = str(value).strip()
    original = text
    lowered = text.lower()
    for prefix in ('stable/', 'unmaintained/'):
        if lowered.startswith(prefix):
            lowered = lowered[len(prefix):]
    if lowered.endswith('-eol'):
        lowered = lowered[:-len('-eol')]
    if lowered in RELEASE_NAMES:
        return NovaRelease(RELEASE_NAMES.index(lowered) + 1, None, source)
    if lowered.isdigit():
        major = int(lowered)
        if 12 <= major < 1000:
            return NovaRelease(major, None, source)
        if major in (1, 11):
            raise ReleaseError(f'{source} {original!r} is ambiguous: Nova used year.N versions before Liberty (12); give a name such as kilo')
        raise ReleaseError(f'{source} {original!r} is not a Nova major version: give 12 (Liberty) or later, a name (mitaka) or a series (2025.1)')
    match = _VERSION.match(lowered)
    if match:
        first, second = int(match.group(1)), int(match.group(2))
        if first >= 2010:
            if match.group(3) is not None and first >= FIRST_SERIES_YEAR:
                raise ReleaseError(f'{source} {original!r} is not a Nova version: Nova {first} releases are versioned by their '
                                   f'major number; give the series alone ({first}.{second}) or the Nova version (e.g. 31.0.0)')
            major = _major_from_series(first, second)
            return NovaRelease(major, original if match.group(3) is not None else None, source)
        if 12 <= first < 1000:
            return NovaRelease(first, original, source)
    raise ReleaseError(f'cannot parse {source} {original!r}: give a Nova version (34.0.0 or 34), a release name (e.g. mitaka, epoxy) '
                       'or a series (e.g. 2025.1)')


def parse_version_output(text, source):
    """The release in the output of ``nova-manage --version`` (pbr version, e.g. ``34.0.0`` or ``2015.1.2``)."""
    for line in (text or '').splitlines():
        match = _VERSION_IN_TEXT.search(line.strip())
        if match:
            try:
                return parse_release(match.group(1), source=source)
            except ReleaseError:
                continue
    return None


def version_tuple(text):
    """``4.3.0`` -> (4, 3, 0); None when unparseable."""
    if not text:
        return None
    match = _VERSION.match(str(text))
    if not match:
        return None
    return int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)


def supports(release, feature, oslo_cache_version=None):
    """Whether ``release`` has ``feature``; an unknown release (None) is treated as the newest one known."""
    if feature in OSLO_CACHE_FEATURES and oslo_cache_version:
        installed = version_tuple(oslo_cache_version)
        if installed is not None:
            return any(installed >= low and (high is None or installed < high)
                       for low, high in OSLO_CACHE_FEATURES[feature])
    gate = FEATURES[feature]
    major = LATEST_KNOWN_MAJOR if release is None else parse_release(release).major
    if gate.minimum is not None and major < gate.minimum:
        return False
    return not (gate.maximum is not None and major > gate.maximum)


def require(release, feature, what=None):
    """Raise ReleaseError unless ``release`` has ``feature``."""
    if supports(release, feature):
        return
    gate = FEATURES[feature]
    release = parse_release(release)
    if gate.minimum is not None and release.major < gate.minimum:
        bound = 'needs {} or later'.format(NovaRelease(gate.minimum, None, '').label)
    else:
        bound = 'exists only up to {}'.format(NovaRelease(gate.maximum, None, '').label)
    raise ReleaseError(f'{what or gate.description} {bound}; the target is {release.label}')


# A script for any Python (2.7 included) that prints the installed nova and oslo.cache versions as JSON.
_PROBE = r'''
import json
def version(name):
    try:
        from importlib.metadata import version as get
    except ImportError:
        from pkg_resources import get_distribution
        get = lambda n: get_distribution(n).version
    try:
        return get(name)
    except Exception:
        return None
print(json.dumps({"nova": version("nova"), "oslo.cache": version("oslo.cache")}))
'''


def nova_python(nova_manage=('nova-manage',), python=None):
    """The argv that runs the Python Nova is installed in, or None when it cannot be told: the one way to find it.

    ``python`` when given; else the interpreter in the shebang of ``nova_manage`` when that is a single Python script
    (a path, or a name looked up in PATH). ``#!/usr/bin/env python3`` gives ``['/usr/bin/env', 'python3']``, which runs
    the same interpreter the script runs with.
    """
    if python:
        return [python]
    nova_manage = list(nova_manage or ['nova-manage'])
    if len(nova_manage) != 1:
        return None
    script = nova_manage[0] if os.path.sep in nova_manage[0] else shutil.which(nova_manage[0])
    return _shebang(script) if script else None


def _shebang(path):
    """The interpreter argv of a Python script, or None."""
    try:
        with open(path, 'rb') as handle:
            first = handle.readline(512)
    except OSError:
        return None
    if not first.startswith(b'#!'):
        return None
    argv = first[2:].decode('utf-8', 'replace').split()
    if not argv or 'python' not in os.path.basename(argv[-1] if os.path.basename(argv[0]) == 'env' else argv[0]):
        return None
    return argv


def _probe_python(run_command, python_argv):
    try:
        rc, out, _err = run_command([*list(python_argv), '-c', _PROBE])
    except OSError:
        return None
    if rc != 0:
        return None
    for line in reversed((out or '').splitlines()):
        line = line.strip()
        if line.startswith('{'):
            try:
                return json.loads(line)
            except ValueError:
                return None
    return None


Detected = namedtuple('Detected', 'release oslo_cache_version')


def detect_release(run_command, nova_manage=('nova-manage',), python=None):
    """Find the Nova release on the managed host.

    ``run_command(argv)`` returns ``(rc, stdout, stderr)`` and raises OSError for a missing executable
    (``AnsibleModule.run_command`` with ``handle_exceptions=False``). Tried in order: ``python`` (the interpreter Nova is
    installed in: importlib.metadata, also gives the oslo.cache version), the interpreter in the shebang of
    ``nova_manage`` when it is a single Python script (same, fast), then ``nova_manage --version`` (3-6 s).
    """
    tried = []
    candidates = []
    if python:
        candidates.append(([python], f'importlib.metadata in {python}'))
    nova_manage = list(nova_manage or ['nova-manage'])
    argv = nova_python(nova_manage)
    if argv:
        candidates.append((argv, 'importlib.metadata in {} (the interpreter of {})'.format(' '.join(argv), nova_manage[0])))
    for argv, how in candidates:
        probe = _probe_python(run_command, argv)
        if probe and probe.get('nova'):
            try:
                return Detected(parse_release(probe['nova'], source=how), probe.get('oslo.cache'))
            except ReleaseError:
                pass
        tried.append(how)
    command = [*nova_manage, '--version']
    try:
        rc, out, err = run_command(command)
    except OSError as exc:
        rc, out, err = 127, '', str(exc)
    if rc == 0:
        # Python 2 argparse printed --version to stderr.
        release = parse_version_output(out, ' '.join(command)) or parse_version_output(err, ' '.join(command))
        if release is not None:
            return Detected(release, None)
    tried.append('{} (rc {})'.format(' '.join(command), rc))
    raise ReleaseError('cannot detect the Nova release on the managed host (tried: {}); set nova_release '
                       '(e.g. 34.0.0, 34, mitaka or 2025.1), nova_python (the Python Nova is installed in) '
                       'or nova_manage'.format('; '.join(tried)))
