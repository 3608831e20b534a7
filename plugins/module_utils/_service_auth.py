# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Service authentication sections of nova.conf per node type: the single source of truth.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

``render(types, **settings)`` returns ``{'sections': {section: {option: value}}, 'problems': [...]}``
for a host that runs the Nova node types ``types``. Each node type gets only what it uses:

==================== ===== ======== ========= ========= ========= ======= ============= =============
section              api   metadata scheduler super_    cell_     compute console_proxy cell_metadata
                                              conductor conductor
==================== ===== ======== ========= ========= ========= ======= ============= =============
keystone_authtoken   x     x                                                            x
service_user         x     x                  x         x         x                     x
placement            x              x         x         x         x
glance               x                        x         x         x
neutron              x     x                  x         x         x                     x
vnc                                                               x (1)   x (1)
==================== ===== ======== ========= ========= ========= ======= ============= =============

(1) only where the cell has console proxies (``novncproxy_base_url`` given): the compute gets
``enabled = true`` and the cell's console proxy URL, the proxy its listen address and port. [vnc]
does not depend on Keystone; the other sections only exist when ``auth_url`` is given.

Only the API services validate tokens ([keystone_authtoken]); every service that calls another
service on a user's behalf sends its own token with the user's ([service_user],
``send_service_user_token``). Passwords stay in the sections of the types that need them: a compute
never gets [keystone_authtoken]. Nova 34 refuses ``[api] auth_strategy`` and
``[service_user] region_name`` (unknown options), so neither is written. Pure functions, no I/O.
"""

from __future__ import annotations

from urllib.parse import urlsplit

NODE_TYPES = ('api', 'metadata', 'scheduler', 'super_conductor', 'cell_conductor', 'compute', 'console_proxy',
              'cell_metadata')

# section -> the node types that get it
MATRIX = {
    'keystone_authtoken': ('api', 'metadata', 'cell_metadata'),
    'service_user': ('api', 'metadata', 'super_conductor', 'cell_conductor', 'compute', 'cell_metadata'),
    'placement': ('api', 'scheduler', 'super_conductor', 'cell_conductor', 'compute'),
    'glance': ('api', 'super_conductor', 'cell_conductor', 'compute'),
    'neutron': ('api', 'metadata', 'super_conductor', 'cell_conductor', 'compute', 'cell_metadata'),
}
# The sections that carry a password (for masking and for the "needs a password" check).
SECRET_OPTIONS = ('password', 'metadata_proxy_shared_secret')
CREDENTIAL_SECTIONS = ('keystone_authtoken', 'service_user', 'placement', 'neutron')
DEFAULTS = {
    'www_authenticate_uri': '',
    'region_name': 'RegionOne',
    'username': 'nova',
    'password': '',
    'project_name': 'service',
    'user_domain_name': 'Default',
    'project_domain_name': 'Default',
    'memcached_servers': (),
    'send_service_user_token': True,
    'glance': True,
    'neutron': True,
    'placement': True,
    'credentials': None,
    'novncproxy_base_url': '',
    'novncproxy_port': 6080,
    'vnc_server_address': '',
    'metadata_proxy_shared_secret': '',
}


class ServiceAuthError(ValueError):
    """An argument that the filter cannot turn into nova.conf options."""


def _url_problem(name, url):
    parts = urlsplit(url)
    if parts.scheme not in ('http', 'https') or not parts.hostname:
        return f'{name} must be an http(s) URL with a host, not {url!r}'
    return None


def sections_for(types):
    """The service sections a host with these node types gets (without [vnc])."""
    return [section for section, owners in MATRIX.items() if set(owners) & set(types)]


def render(types, auth_url='', **settings):
    """The service authentication sections for a host with node types ``types``.

    ``auth_url`` empty: no section at all (the feature is off; raw overrides still work).
    ``credentials``: optional ``{section: {option: value}}`` for one section's own account, for
    example ``{'neutron': {'username': 'neutron', 'password': '...'}}``.
    """
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ServiceAuthError(f'unknown settings: {", ".join(unknown)}')
    bad_types = sorted(set(types) - set(NODE_TYPES))
    if bad_types:
        raise ServiceAuthError(f'unknown node types: {", ".join(bad_types)} (known: {", ".join(NODE_TYPES)})')
    s = dict(DEFAULTS, **{k: v for k, v in settings.items() if v is not None})
    credentials = s['credentials'] or {}
    if not isinstance(credentials, dict) or any(not isinstance(v, dict) for v in credentials.values()):
        raise ServiceAuthError('credentials must be a dict of sections, each a dict of options')
    bad_sections = sorted(set(credentials) - set(CREDENTIAL_SECTIONS))
    if bad_sections:
        raise ServiceAuthError(f'credentials for unknown sections: {", ".join(bad_sections)} '
                               f'(known: {", ".join(CREDENTIAL_SECTIONS)})')
    sections = {}
    problems = []
    types = list(types)
    # Consoles: a compute's [vnc] depends on whether its cell has console proxies.
    vnc = {}
    if 'compute' in types:
        if s['novncproxy_base_url']:
            problem = _url_problem('the console proxy URL (novncproxy_base_url)', s['novncproxy_base_url'])
            if problem:
                problems.append(problem)
            vnc.update(enabled=True, novncproxy_base_url=s['novncproxy_base_url'], server_listen='0.0.0.0')
            if s['vnc_server_address']:
                vnc['server_proxyclient_address'] = s['vnc_server_address']
    if 'console_proxy' in types and s['novncproxy_base_url']:
        vnc.update(enabled=True, novncproxy_host='0.0.0.0', novncproxy_port=int(s['novncproxy_port']))
    if vnc:
        sections['vnc'] = vnc
    if not auth_url:
        return {'sections': sections, 'problems': problems}

    problem = _url_problem('the Keystone URL (auth_url)', auth_url)
    if problem:
        problems.append(problem)
    www = s['www_authenticate_uri'] or auth_url
    if s['www_authenticate_uri']:
        problem = _url_problem('www_authenticate_uri', www)
        if problem:
            problems.append(problem)

    def account(section):
        base = {
            'auth_type': 'password',
            'auth_url': auth_url,
            'user_domain_name': s['user_domain_name'],
            'project_domain_name': s['project_domain_name'],
            'project_name': s['project_name'],
            'username': s['username'],
            'password': s['password'],
        }
        base.update(credentials.get(section, {}))
        if not base.get('password'):
            problems.append(f'[{section}] needs a password: set the service password (nova_keystone_service_password)'
                            f' or {section} credentials with one')
        return base

    wanted = sections_for(types)
    if 'keystone_authtoken' in wanted:
        opts = dict(account('keystone_authtoken'), www_authenticate_uri=www, region_name=s['region_name'],
                    service_token_roles_required=True)
        if s['memcached_servers']:
            opts['memcached_servers'] = ','.join(s['memcached_servers'])
        sections['keystone_authtoken'] = opts
    if 'service_user' in wanted and s['send_service_user_token']:
        # No region_name: Nova 34 does not know [service_user] region_name.
        sections['service_user'] = dict(account('service_user'), send_service_user_token=True)
    if 'placement' in wanted and s['placement']:
        sections['placement'] = dict(account('placement'), region_name=s['region_name'])
    if 'glance' in wanted and s['glance']:
        # Nova calls Glance with the user's token; the endpoint comes from the catalog.
        sections['glance'] = {'region_name': s['region_name']}
    if 'neutron' in wanted and s['neutron']:
        opts = dict(account('neutron'), region_name=s['region_name'])
        if 'metadata' in types or 'cell_metadata' in types:
            if s['metadata_proxy_shared_secret']:
                opts['service_metadata_proxy'] = True
                opts['metadata_proxy_shared_secret'] = s['metadata_proxy_shared_secret']
        sections['neutron'] = opts

    return {'sections': sections, 'problems': problems}


def secrets_of(result):
    """Every secret value in a render() result (to mask them)."""
    return sorted({str(v) for options in result['sections'].values() for k, v in options.items()
                   if k in SECRET_OPTIONS and v})
