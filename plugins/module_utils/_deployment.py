# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The deployment model of the roles: inventory variables in, URLs, node types and nova.conf options out.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Pure functions, no I/O and no Ansible imports: the filters in plugins/filter/deployment.py expose them to
the roles (nova.cells.nova_conf, nova.cells.cells), and the unit tests call them directly.

``settings`` is a dict of the roles' inventory variables (the ``nova_*`` names of docs/inventory.md, as
roles/nova_conf/vars/main.yml collects them) plus ``inventory_hostname`` and ``group_names``. Every URL is
built by plugins/module_utils/_urls.py. Problems that make an inventory impossible to deploy are returned
as messages (the roles refuse with them), never raised, so that a role can name them all at once.
"""

from __future__ import annotations

import re

from ansible_collections.nova.cells.plugins.module_utils._servicegroup import ServiceGroupError
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import render as render_servicegroup
from ansible_collections.nova.cells.plugins.module_utils._urls import build_db_url, build_transport_url

API_LEVEL_TYPES = ('api', 'metadata', 'scheduler', 'super_conductor')
CELL_LEVEL_TYPES = ('cell_conductor', 'compute', 'console_proxy', 'cell_metadata')
# Node types whose services talk to Placement (not the metadata APIs or the console proxies).
PLACEMENT_TYPES = ('api', 'scheduler', 'super_conductor', 'cell_conductor', 'compute')
DB_SECTIONS = ('api_database', 'database')
_CELL_CREDENTIAL_KEYS = ('database_connection', 'transport_url', 'database_user', 'database_password', 'rabbit_user',
                         'rabbit_password')


def _bool(value):
    """Ansible's ``| bool``."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ('1', 'true', 'yes', 'on', 'y', 't')


def _unique(items):
    seen = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def node_types(settings):
    """The node types of the host: nova_node_types, else the groups of nova_node_type_groups it is in."""
    if settings.get('nova_node_types') is not None:
        return list(settings['nova_node_types'])
    group_names = settings.get('group_names') or []
    return [kind for kind, group in settings['nova_node_type_groups'].items() if group in group_names]


# The host sets of the playbooks, as node types (host_pattern). The API-level hosts that can run the cells bootstrap
# hold the API database credentials: super conductors, APIs, schedulers.
HOST_SETS = {
    'all': None,
    'api_level': ('super_conductor', 'api', 'scheduler'),
    'cell_level': ('cell_conductor', 'compute', 'console_proxy', 'cell_metadata'),
}
LAB_INFRA_GROUP = 'nova_lab_infra'


def host_pattern(node_type_groups, selection):
    """The Ansible host pattern of a set of Nova hosts, from nova_node_type_groups ({node type: inventory group}).

    ``selection``: ``all`` (every node type's group), ``api_level``, ``cell_level``, ``computes_first`` (every group,
    the computes' first: rotate_credentials rolls the computes before the conductors they report to), ``lab_infra``
    (the lab's infrastructure group), or a list of node types (their groups, in that order).
    """
    groups = dict(node_type_groups)
    if selection == 'lab_infra':
        return LAB_INFRA_GROUP
    if selection == 'computes_first':
        kinds = ['compute'] + [kind for kind in groups if kind != 'compute']
    elif isinstance(selection, str):
        if selection not in HOST_SETS:
            raise ValueError(f'unknown host set {selection!r} (known: {", ".join([*HOST_SETS, "computes_first", "lab_infra"])})')
        kinds = list(groups) if HOST_SETS[selection] is None else list(HOST_SETS[selection])
    else:
        kinds = list(selection)
    unknown = [kind for kind in kinds if kind not in groups]
    if unknown:
        raise ValueError(f'no inventory group for the node types {", ".join(map(str, unknown))} in nova_node_type_groups')
    return ':'.join(groups[kind] for kind in kinds)


def urls(settings):
    """The database and message-queue URLs of the deployment as this host uses them, and the cell mapping values.

    Returns the dict the roles keep in the fact ``_nova_conf_urls`` (no_log: it holds passwords): api_database,
    cell0_database, api_transport, cell0_mapping, cells {name: {database, transport, mapping_database,
    mapping_transport, shares_api_mq, disabled}}, shared_cell, isolated, templates, problems, infrastructure
    {databases, vhosts, database_accounts, rabbit_accounts, database_servers [{host, port, databases}]} and
    host {types, api_level, cell_level, cell, api_database, database, transport_url, db_in_environment}.
    """
    s = settings
    hostname = s['inventory_hostname']
    templates = _bool(s['nova_cell_url_templates'])
    problems = []
    db_scheme, db_host, db_port = s['nova_database_scheme'], s['nova_database_host'], s['nova_database_port']
    db_user, db_password, db_query = s['nova_database_user'], s['nova_database_password'], s['nova_database_query']
    mq_scheme, mq_hosts, mq_port = s['nova_rabbit_scheme'], s['nova_rabbit_hosts'], s['nova_rabbit_port']
    mq_user, mq_password, mq_vhost, mq_query = s['nova_rabbit_user'], s['nova_rabbit_password'], s['nova_rabbit_vhost'], s['nova_rabbit_query']

    # API level: this host's own URLs.
    api_database = s['nova_api_database_connection'] or build_db_url(
        db_scheme, db_user, db_password, db_host, db_port, s['nova_api_database_name'], db_query)
    cell0_database = s['nova_cell0_database_connection'] or build_db_url(
        db_scheme, db_user, db_password, db_host, db_port, s['nova_cell0_database_name'], db_query)
    api_transport = s['nova_transport_url'] or build_transport_url(
        mq_scheme, mq_user, mq_password, mq_hosts, mq_port, mq_vhost, mq_query)
    # The readers of the mappings (API-level hosts) render them against their own API transport URL. With several
    # hosts in it, Nova's plain {username}/{password} come from the whole netloc and are wrong, but the numbered
    # {username1}/{password1} exist (nova/objects/cell_mapping.py _format_url).
    mq_template = False
    if templates:
        mq_template = 'numbered' if ',' in (api_transport.split('/') + ['', '', ''])[2] else 'plain'
    cell0_mapping = cell0_database
    if templates:
        cell0_mapping = build_db_url(db_scheme, '', '', db_host, db_port, s['nova_cell0_database_name'], db_query, template=True)

    # Cells.
    cells = {}
    database_names = [s['nova_api_database_name'], s['nova_cell0_database_name']]
    # {(host, port): [database, ...]} in order: which database server each database is on.
    database_servers = {(db_host, db_port): list(database_names)}
    vhosts = [mq_vhost]
    database_accounts = [{'user': db_user, 'password': db_password}]
    rabbit_accounts = [{'user': mq_user, 'password': mq_password}]
    for name, given in (s['nova_cells'] or {'cell1': {}}).items():
        spec = given if isinstance(given, dict) else {}
        if name == 'cell0':
            problems.append('nova_cells: cell0 is not a regular cell; configure it with nova_cell0_database_name or '
                            'nova_cell0_database_connection')
        if templates:
            for key in _CELL_CREDENTIAL_KEYS:
                if key in spec:
                    problems.append(f'nova_cells.{name}.{key} cannot be used with nova_cell_url_templates: each host supplies its own '
                                    'credentials (nova_database_user/password, nova_rabbit_user/password) and the mapping stores '
                                    'a template built from the host, port and name parts')
        db_parts = (spec.get('database_scheme', db_scheme), spec.get('database_host', db_host), spec.get('database_port', db_port),
                    spec.get('database_name', 'nova_' + name), spec.get('database_query', db_query))
        mq_parts_given = [key for key in spec if key.startswith('rabbit_')]
        shares_default = name == s['nova_api_mq_shared_cell'] and not mq_parts_given and not spec.get('transport_url', '')
        mq_parts = (spec.get('rabbit_scheme', mq_scheme), spec.get('rabbit_hosts', mq_hosts), spec.get('rabbit_port', mq_port),
                    spec.get('rabbit_vhost', mq_vhost if shares_default else name), spec.get('rabbit_query', mq_query))
        if templates:
            database = build_db_url(db_parts[0], db_user, db_password, *db_parts[1:])
            transport = api_transport if shares_default else build_transport_url(mq_parts[0], mq_user, mq_password, *mq_parts[1:])
            mapping_database = build_db_url(db_parts[0], '', '', *db_parts[1:], template=True)
            mapping_transport = build_transport_url(mq_parts[0], '', '', *mq_parts[1:], template=mq_template)
        else:
            database = spec.get('database_connection', '') or build_db_url(
                db_parts[0], spec.get('database_user', db_user), spec.get('database_password', db_password), *db_parts[1:])
            transport = spec.get('transport_url', '') or (api_transport if shares_default else build_transport_url(
                mq_parts[0], spec.get('rabbit_user', mq_user), spec.get('rabbit_password', mq_password), *mq_parts[1:]))
            mapping_database, mapping_transport = database, transport
        database_names.append(db_parts[3])
        database_servers.setdefault((db_parts[1], db_parts[2]), []).append(db_parts[3])
        vhosts.append(mq_parts[3])
        if not templates:
            database_accounts.append({'user': spec.get('database_user', db_user), 'password': spec.get('database_password', db_password)})
            rabbit_accounts.append({'user': spec.get('rabbit_user', mq_user), 'password': spec.get('rabbit_password', mq_password)})
        cells[name] = {'database': database, 'transport': transport, 'mapping_database': mapping_database,
                       'mapping_transport': mapping_transport, 'shares_api_mq': transport == api_transport,
                       'disabled': spec.get('disabled')}
    shared = [name for name, cell in cells.items() if cell['shares_api_mq']]
    if len(shared) > 1:
        problems.append('cells {} all use the API message queue; two cells cannot share a transport URL (give each its own '
                        'rabbit_vhost)'.format(', '.join(shared)))
    # oslo.messaging (18.x) decodes the password of transport_url and quotes it again for kombu with "/" left as it is,
    # so every service fails at start-up ("Port could not be cast to integer value"); no encoding avoids it. Refuse it
    # here rather than deploy services that cannot start.
    for account in rabbit_accounts:
        if '/' in str(account['password'] or ''):
            problems.append('the RabbitMQ password of user {} contains "/", which oslo.messaging cannot pass to the broker '
                            '(every Nova service would fail at start-up): choose a RabbitMQ password without "/" '
                            "(nova_rabbit_password or the cell's rabbit_password)".format(account['user']))
    isolated = any(not cell['shares_api_mq'] for cell in cells.values())

    # This host: its node types, and which URLs its nova.conf needs.
    groups_of = s['nova_node_type_groups']
    types = node_types(s)
    unknown_types = [kind for kind in types if kind not in groups_of]
    if unknown_types:
        problems.append('unknown node type(s) {}; known: {}'.format(', '.join(unknown_types), ', '.join(groups_of)))
    api_level = [kind for kind in types if kind in API_LEVEL_TYPES]
    cell_level = [kind for kind in types if kind in CELL_LEVEL_TYPES]
    cell_services = [kind for kind in cell_level if kind != 'compute']
    cell_name = s['nova_cell_name']
    cell = cells.get(cell_name) if cell_level else None
    if cell_level and cell is None:
        problems.append('host {} is in cell {} (nova_cell_name), which nova_cells does not define; defined: {}'.format(hostname, cell_name, ', '.join(cells)))
    needs_api_database = (bool(api_level) or ('cell_metadata' in types and _bool(s['nova_cell_metadata_api_database']))
                          or ('cell_conductor' in types and cell is not None and cell['shares_api_mq']))
    if cell_services and cell is not None:
        database = cell['database']
    elif api_level:
        database = cells[shared[0]]['database'] if shared else cell0_database
    else:
        database = None
    transports = ([api_transport] if api_level else []) + ([cell['transport']] if cell is not None else [])
    if len(_unique(transports)) > 1:
        problems.append(f"host {hostname} runs API-level services ({', '.join(api_level)}) on the API message queue and services of "
                        f"cell {cell_name} ({', '.join(cell_level)}) on that cell's own message queue; one nova.conf has one "
                        'transport_url: put them on different hosts, or let the cell share the API message queue (nova_api_mq_shared_cell)')
    host_urls = [('[api_database] connection', api_database if needs_api_database else ''), ('[database] connection', database or ''),
                 ('transport_url', transports[0] if transports else '')]
    for label, url in host_urls:
        if url and ':@' in url:
            variable = 'nova_rabbit_password' if label == 'transport_url' else 'nova_database_password'
            problems.append(f"the {label} of {hostname} has an empty password: set {variable} (or the cell's own password in nova_cells, "
                            'or a full URL)')
    if 'metadata' in types and 'cell_metadata' in types:
        problems.append(f'host {hostname} is in nova_metadata (global, local_metadata_per_cell = false) and nova_cell_metadata (per cell, '
                        'true); choose one')
    return {
        'api_database': api_database,
        'cell0_database': cell0_database,
        'api_transport': api_transport,
        'cell0_mapping': cell0_mapping,
        'cells': cells,
        'shared_cell': shared[0] if shared else '',
        'isolated': isolated,
        'templates': templates,
        'problems': problems,
        'infrastructure': {
            'databases': _unique(database_names), 'vhosts': _unique(vhosts),
            'database_accounts': _unique(database_accounts), 'rabbit_accounts': _unique(rabbit_accounts),
            'database_servers': [{'host': host, 'port': port, 'databases': _unique(names)}
                                 for (host, port), names in database_servers.items()],
        },
        'host': {
            'types': types,
            'api_level': api_level,
            'cell_level': cell_level,
            'cell': cell_name if cell_level else None,
            'api_database': api_database if needs_api_database else None,
            'database': database,
            'transport_url': transports[0] if transports else api_transport,
            'db_in_environment': 'compute' in types and (needs_api_database or database is not None),
        },
    }


def servicegroup(settings):
    """The ServiceGroup options of every host (raises _servicegroup.ServiceGroupError on what Nova rejects)."""
    s = settings
    return render_servicegroup(
        s['nova_servicegroup_driver'], s['nova_release'], report_interval=s['nova_servicegroup_report_interval'],
        service_down_time=s['nova_servicegroup_service_down_time'], memcache_servers=s['nova_memcache_servers'],
        cache_backend=s['nova_cache_backend'], backend_expiration_time=s['nova_cache_backend_expiration_time'])


def upgrade_levels_compute(settings):
    pin = settings.get('nova_upgrade_levels_compute')
    return pin if pin is not None else str(settings['nova_release']).lower()


def _int(value):
    return int(value)


def sections(settings, model, sg_options):
    """This host's nova.conf options, {section: {option: value}} (None: not written), for its node types (the
    per-node-type matrix of docs/inventory.md), then the per-node-type and the host overrides."""
    s = settings
    host = model['host']
    types = host['types']
    upcall = model['isolated'] if s['nova_upcall_workarounds'] is None else _bool(s['nova_upcall_workarounds'])
    release = str(s['nova_release']).lower()
    if s['nova_scheduler_max_attempts'] is not None:
        max_attempts = _int(s['nova_scheduler_max_attempts'])
    else:
        max_attempts = 1 if upcall and (release in ('pike', '16') or release.startswith('16.')) else 3
    ops = []

    def put(section, name, value):
        ops.append((section, name, value))

    # Every node.
    put('DEFAULT', 'host', s['nova_host'])
    put('DEFAULT', 'transport_url', host['transport_url'])
    put('DEFAULT', 'state_path', s['nova_state_path'])
    if s['nova_my_ip']:
        put('DEFAULT', 'my_ip', s['nova_my_ip'])
    put('oslo_concurrency', 'lock_path', s['nova_lock_path'])
    put('upgrade_levels', 'compute', upgrade_levels_compute(s))
    for section, options in sg_options['options'].items():
        for name, value in options.items():
            put(section, name, value)
    if s['nova_notifications_transport_url']:
        put('oslo_messaging_notifications', 'transport_url', s['nova_notifications_transport_url'])
        if s['nova_notifications_driver']:
            put('oslo_messaging_notifications', 'driver', s['nova_notifications_driver'])

    # Databases: [api_database] only where the API database is read; never on a compute-only host.
    if host['api_database'] is not None:
        put('api_database', 'connection', host['api_database'])
    if host['database'] is not None:
        put('database', 'connection', host['database'])
        if s['nova_database_max_retries'] is not None:
            put('database', 'max_retries', _int(s['nova_database_max_retries']))
        if s['nova_database_retry_interval'] is not None:
            put('database', 'retry_interval', _int(s['nova_database_retry_interval']))

    if any(kind in PLACEMENT_TYPES for kind in types):
        for name, value in (s['nova_placement_options'] or {}).items():
            put('placement', name, value)

    # Per node type.
    if 'api' in types:
        put('api', 'list_records_by_skipping_down_cells', _bool(s['nova_api_list_records_by_skipping_down_cells']))
    if 'metadata' in types:
        put('api', 'local_metadata_per_cell', False)
    if 'cell_metadata' in types:
        put('api', 'local_metadata_per_cell', True)
    if 'scheduler' in types:
        put('scheduler', 'discover_hosts_in_cells_interval', _int(s['nova_scheduler_discover_hosts_in_cells_interval']))
        put('scheduler', 'max_attempts', max_attempts)
        if upcall:
            put('filter_scheduler', 'track_instance_changes', False)
        if s['nova_scheduler_workers'] is not None:
            put('scheduler', 'workers', _int(s['nova_scheduler_workers']))
    if 'super_conductor' in types:
        put('scheduler', 'max_attempts', max_attempts)
    if ('super_conductor' in types or 'cell_conductor' in types) and s['nova_conductor_workers'] is not None:
        put('conductor', 'workers', _int(s['nova_conductor_workers']))
    if 'compute' in types:
        put('DEFAULT', 'compute_driver', s['nova_compute_driver'])
        cell = model['cells'].get(host['cell']) if host['cell'] is not None else None
        if (s['nova_upcall_workarounds'] is not None and upcall) or (upcall and cell is not None and not cell['shares_api_mq']):
            put('workarounds', 'disable_group_policy_check_upcall', True)
        if upcall:
            put('filter_scheduler', 'track_instance_changes', False)

    # Overrides: per node type (in nova_node_type_groups order), then the host's; None removes.
    type_overrides = s['nova_conf_node_type_overrides'] or {}
    for kind in s['nova_node_type_groups']:
        if kind in types:
            for section, options in (type_overrides.get(kind) or {}).items():
                for name, value in options.items():
                    put(section, name, value)
    for section, options in (s['nova_conf_overrides'] or {}).items():
        for name, value in options.items():
            put(section, name, value)

    # What the ServiceGroup driver forbids, whatever the overrides say.
    for section, name in sg_options['remove']:
        put(section, name, None)
    result = {'DEFAULT': {}}
    for section, name, value in ops:
        key = 'DEFAULT' if section.upper() == 'DEFAULT' else section.lower()
        result.setdefault(key, {})[name] = value
    return result


def merge_sections(base, extra):
    """``extra`` ({section: {option: value}}) over ``base``; the one place where other filters' sections join nova.conf."""
    merged = {section: dict(options) for section, options in base.items()}
    for section, options in (extra or {}).items():
        key = 'DEFAULT' if section.upper() == 'DEFAULT' else section.lower()
        merged.setdefault(key, {}).update(options)
    return merged


def ini_value(value):
    """An option value as nova.conf holds it: true/false, lists joined with commas."""
    if value is True:
        return 'true'
    if value is False:
        return 'false'
    if isinstance(value, (list, tuple)):
        return ','.join(str(item) for item in value)
    return str(value)


def ini_sections(options):
    """[[section, [[option, value], ...]], ...] for the template: DEFAULT first (always), then the others sorted;
    options sorted, None left out (that removes an option), empty sections left out."""
    result = []
    for section in ['DEFAULT'] + sorted(name for name in options if name != 'DEFAULT'):
        values = sorted((name, ini_value(value)) for name, value in (options.get(section) or {}).items() if value is not None)
        if values or section == 'DEFAULT':
            result.append([section, [list(item) for item in values]])
    return result


def conf_text(nova_host, description, ini):
    """The text of nova.conf: a header, then each section of ``ini`` (ini_sections). No inline comments: oslo.config
    would keep them in the value."""
    lines = [f'# Managed by Ansible (nova.cells.nova_conf) for {nova_host}: {description}.',
             '# Local changes are overwritten; use nova_conf_overrides.']
    for section, options in ini:
        lines += ['', f'[{section}]'] + [f'{name} = {value}' for name, value in options]
    return '\n'.join(lines) + '\n'


def env_lines(options):
    """OS_<SECTION>__<OPTION>="value" lines of an environment file (systemd EnvironmentFile quoting)."""
    lines = []
    for section in sorted(options):
        for name, value in sorted((options[section] or {}).items()):
            if value is None:
                continue
            text = str(value).replace('\\', '\\\\').replace('"', '\\"').replace('$', '\\$').replace('`', '\\`')
            lines.append(f'OS_{section.upper()}__{name.upper()}="{text}"')
    return lines


def units(service_units, types, exclude=()):
    """The systemd units of the node types, in order, without duplicates and without ``exclude``."""
    found = []
    for kind in types:
        for unit in service_units.get(kind) or []:
            if unit not in found and unit not in exclude:
                found.append(unit)
    return found


def _mode_octal(mode):
    """nova_conf_mode as octal digits; a YAML 0640 arrives as the integer 416."""
    return f'{mode:04o}' if isinstance(mode, int) and not isinstance(mode, bool) else str(mode)


def refusals(settings, model):
    """Every reason not to render this host's nova.conf, in the order the role used to check them."""
    s = settings
    found = list(model['problems'])
    if not model['host']['types']:
        found.append(f"{s['inventory_hostname']} is in none of the groups {', '.join(s['nova_node_type_groups'].values())} and "
                     'nova_node_types is not set: there is no nova.conf to render for it.')
    pin = str(upgrade_levels_compute(s))
    if pin == 'auto' or not re.match(r'^([a-z]+|[0-9]+\.[0-9]+)$', pin):
        found.append(f"[upgrade_levels] compute must be a release name (such as hibiscus) or an RPC version, not '{pin}': with "
                     'auto, nova-api hangs at start-up while a cell is down (LP#1815697). Set nova_upgrade_levels_compute, or '
                     'nova_release to a release name.')
    if not re.match(r'^0?[0-7]?[0-7][0-7]0$', _mode_octal(s['nova_conf_mode'])):
        found.append(f"nova_conf_mode {s['nova_conf_mode']} lets other users read {s['nova_conf_file']}, which holds the database and "
                     'message-queue passwords: give an octal mode without permissions for others, such as 0640 (the group is '
                     f"nova_conf_group, {s['nova_conf_group']}).")
    return found


def nova_conf(settings, extra_sections=None):
    """Everything the nova_conf role renders for this host, from its inventory variables.

    ``extra_sections`` ({section: {option: value}}, such as the service authentication sections of
    ``nova.cells.service_auth_options``) are laid under the computed options (the role's own options,
    ``nova_placement_options`` and the overrides win) before the host's refusals are checked and the database sections
    are split off: the one place where other concerns add sections.
    Returns {problems, warnings, types, cell, description, file_sections, file_ini, text (the file), db_env_sections, db_in_environment, units, db_units,
    db_dropins}; ``problems`` empty means the file can be written.
    """
    s = settings
    model = urls(s)
    host = model['host']
    problems = refusals(s, model)
    try:
        sg_options = servicegroup(s)
    except ServiceGroupError as exc:
        problems.append(f'nova.cells.servicegroup_options: {exc}')
        sg_options = {'options': {}, 'remove': [], 'warnings': []}
    options = merge_sections(merge_sections({}, extra_sections), sections(s, model, sg_options))
    bad = [f'{section}/{name}' for section, values in options.items() for name, value in values.items()
           if isinstance(value, str) and ('\n' in value or '\r' in value)]
    if bad:
        problems.append('These options have a value with a line break, which nova.conf cannot hold: {}'.format(', '.join(bad)))
    in_env = host['db_in_environment']
    service_units = s['nova_service_units'] or {}
    db_units = units(service_units, [kind for kind in host['types'] if kind != 'compute'], exclude=service_units.get('compute') or [])
    if in_env:
        file_sections = {name: values for name, values in options.items() if name not in DB_SECTIONS}
        env_sections = {name: values for name, values in options.items() if name in DB_SECTIONS}
    else:
        file_sections, env_sections = options, {}
    # For the header line of nova.conf.
    description = (', '.join(host['types']) or 'no node type') + (' in {}'.format(host['cell']) if host['cell'] else '')
    return {
        'problems': problems,
        'warnings': sg_options['warnings'],
        'types': host['types'],
        'cell': host['cell'],
        'description': description,
        'file_sections': file_sections,
        'file_ini': ini_sections(file_sections),
        'text': conf_text(s['nova_host'], description, ini_sections(file_sections)),
        'db_env_sections': env_sections,
        'db_env_lines': env_lines(env_sections),
        'db_in_environment': in_env,
        'units': units(service_units, host['types']),
        'db_units': db_units if in_env else [],
        # The database environment file and drop-ins this host keeps (tasks/main.yml removes other ones).
        'db_files': ([s['nova_conf_db_env_file']] + ['{}/{}.service.d/nova-cells-db.conf'.format(s['nova_systemd_dir'], unit)
                                                     for unit in db_units]) if in_env else [],
        # What a database environment file or drop-in of an earlier run looks like (tasks/main.yml removes the unwanted).
        'db_files_pattern': '^({}|{}/[^/]+[.]service[.]d/nova-cells-db[.]conf)$'.format(
            re.escape(s['nova_conf_db_env_file']), re.escape(s['nova_systemd_dir'].rstrip('/'))),
    }


def start_units(service_units, host_types, start_types=None):
    """The units to enable and start: those of ``start_types`` (in that order; None: all of the host's) the host has."""
    wanted = host_types if start_types is None else [kind for kind in start_types if kind in host_types]
    return units(service_units or {}, wanted)


def expected_computes(compute_hosts, hostvars, cell_names):
    """The computes each cell should have, {cell: [[DEFAULT] host, ...]}, from the inventory.

    ``hostvars`` maps each compute's inventory name to its inventory variables (nova_cell_name, default cell1;
    nova_host, default the inventory name): the same inventory variables the nova_conf role reads there.
    """
    expected = {name: [] for name in cell_names}
    for inventory_name in compute_hosts:
        variables = hostvars.get(inventory_name) or {}
        cell = variables.get('nova_cell_name') or 'cell1'
        if cell in expected:
            expected[cell].append(variables.get('nova_host') or inventory_name)
    return expected


def manage_conf(entry, api_database):
    """The text of one nova-manage config of the cells role: [api_database] plus the [database] and message queue of
    ``entry`` (a ``files`` entry of cells_plan). No inline comments: oslo.config would read them as part of the value."""
    return (f"# Managed by Ansible (nova.cells.cells): nova-manage config for {entry['label']}.\n"
            f"# Use: nova-manage --config-file {entry['path']} ...\n"
            '\n'
            '[DEFAULT]\n'
            f"transport_url = {entry['transport_url']}\n"
            '\n'
            '[api_database]\n'
            f'connection = {api_database}\n'
            '\n'
            '[database]\n'
            f"connection = {entry['database']}\n")


def cells_plan(model, selected, manage_dir, hostname):
    """What the cells role handles: the cells, their nova-manage configs and the refusals.

    Returns {names, problems, files: [{name, path, label, database, transport_url, content}], mappings} where files holds
    the API-level config (cell0, the cell mappings) and one per selected cell, with its text (manage_conf), and mappings the selected cells as the
    ``cells`` option of nova.cells.cell takes them ({name, database_connection, transport_url, disabled}; disabled None
    keeps the stored flag).
    """
    cells = model['cells']
    names = list(selected) if selected else list(cells)
    problems = []
    unknown = [name for name in names if name not in cells]
    if unknown:
        problems.append('Unknown cell(s) {}: nova_cells defines {}. Add the cell to nova_cells first.'.format(', '.join(unknown), ', '.join(cells)))
    empty = [label for label, url in (('the API database URL', model['api_database']), ('the cell0 database URL', model['cell0_database']),
                                      ('the API transport URL', model['api_transport'])) if ':@' in url]
    for name in names:
        if name in cells:
            if ':@' in cells[name]['database']:
                empty.append('the database URL of ' + name)
            if ':@' in cells[name]['transport']:
                empty.append('the transport URL of ' + name)
    if empty:
        problems.append("{} of {} have an empty password: set nova_database_password / nova_rabbit_password (or the cell's "
                        'own, or full URLs).'.format(', '.join(empty), hostname))
    files = [{'name': 'api', 'path': manage_dir + '/api.conf', 'label': 'the API level (cell0, cell mappings)',
              'database': model['cell0_database'], 'transport_url': model['api_transport']}]
    for name in names:
        if name in cells:
            files.append({'name': name, 'path': f'{manage_dir}/cell-{name}.conf', 'label': 'cell ' + name,
                          'database': cells[name]['database'], 'transport_url': cells[name]['transport']})
    for entry in files:
        entry['content'] = manage_conf(entry, model['api_database'])
    mappings = [{'name': name, 'database_connection': cells[name]['mapping_database'], 'transport_url': cells[name]['mapping_transport'],
                 'disabled': cells[name]['disabled']}
                for name in names if name in cells]
    return {'names': names, 'problems': problems, 'files': files, 'mappings': mappings}


def db_syncs(conf, names, sync_api):
    """The ``databases`` of the cells role's one nova.cells.db_sync run, in the order of Nova's cells guide: the API
    database (with the module's config files, the API-level config), cell0, then each cell in ``names``.

    ``conf`` maps 'api' and each cell name to its nova-manage config. cell0 is synced through the API-level config,
    whose [database] is cell0's database, and every cell through its own, all with --local_cell: no sync depends on
    the cell0 mapping, which the same run creates after the schemas (nova.cells.cell with cell0 among the cells).
    """
    syncs = [{'database': 'api'}] if sync_api else []
    syncs.append({'database': 'cell', 'local_cell': True, 'config_files': [conf['api']]})
    syncs.extend({'database': 'cell', 'local_cell': True, 'config_files': [conf[name]]} for name in names)
    return syncs


def servicegroup_reader(settings):
    """The ServiceGroup settings nova.cells.service_status reads liveness with: those every service writes with."""
    s = settings
    return {
        'driver': s['nova_servicegroup_driver'],
        'report_interval': _int(s['nova_servicegroup_report_interval']),
        'service_down_time': _int(s['nova_servicegroup_service_down_time']),
        'memcache_servers': list(s['nova_memcache_servers'] or []) or None,
        'nova_release': str(s['nova_release']),
    }


def refresh_jobs(wanted, groups, node_type_groups, service_units):
    """The (host, unit, action) jobs that make the running services see cell changes (roles/cells/tasks/refresh.yml).

    Nova caches cell mappings: nova-api workers re-read them only when they restart; URL changes need the conductor
    and scheduler restarted too. ``wanted`` holds what the cell changes concern: scheduler, scheduler_sighup, api,
    conductor. The modules ask for scheduler_sighup after a new, enabled, disabled or removed cell, but a SIGHUP does
    not refresh the cell cache of Nova 34's scheduler (its worker is forked from a master whose HostManager cached the
    enabled cells at start: a disabled cell kept getting servers in the lab), so scheduler_sighup restarts
    nova-scheduler and nova-api. Returns [{host, unit, action: restart}] without duplicates.
    """
    wanted = _unique(wanted or [])
    if 'scheduler_sighup' in wanted:
        wanted = _unique(wanted + ['scheduler', 'api'])
    jobs = []

    def add(kind, action):
        for host in groups.get(node_type_groups.get(kind), None) or []:
            for unit in service_units.get(kind) or []:
                job = {'host': host, 'unit': unit, 'action': action}
                if job not in jobs:
                    jobs.append(job)

    for need, kinds in (('scheduler', ['scheduler']), ('api', ['api'] + (['metadata'] if 'conductor' in wanted else [])),
                        ('conductor', ['super_conductor'])):
        if need in wanted:
            for kind in kinds:
                add(kind, 'restart')
    return jobs


_LAB_INSTANCE_NAME = re.compile(r'^[a-z0-9][a-z0-9_-]{0,31}$')


def lab_databases(model, instances, main_port=3306, extra_databases=()):
    """Which MariaDB server of a lab (nova.cells.lab_infra) holds which database.

    The lab's main MariaDB listens on main_port; each of ``instances`` ([{name, port}], the role's
    lab_infra_extra_mariadb_instances) is a further mariadbd on the same host with its own port, data
    directory and systemd unit, so that one cell's database server can be stopped alone. A database of the
    URL model goes to the server on its port (the host part is not compared: the lab has one host); the
    databases of extra_databases (Placement, Keystone, ... and lab_infra_extra_databases) go to the main one.
    Returns {main: [database, ...], instances: [{name, port, databases, datadir, config, unit, socket}],
    problems: [message, ...]}.
    """
    problems = []
    by_port = {}
    out = []
    main_port = _int(main_port)
    for given in instances or []:
        spec = given if isinstance(given, dict) else {}
        name = str(spec.get('name', ''))
        try:
            port = _int(spec.get('port'))
        except (TypeError, ValueError):
            problems.append('lab_infra_extra_mariadb_instances: %r needs a port (a number), got %r' % (name, spec.get('port')))
            continue
        if not _LAB_INSTANCE_NAME.match(name):
            problems.append('lab_infra_extra_mariadb_instances: the name %r must be 1-32 lower-case letters, digits, _ or - '
                            '(it names a data directory and a systemd unit)' % name)
            continue
        if not 0 < port < 65536:
            problems.append('lab_infra_extra_mariadb_instances: port %s of %s is not a TCP port' % (port, name))
            continue
        if port == main_port or port in by_port:
            problems.append('lab_infra_extra_mariadb_instances: port %s of %s is already taken by %s'
                            % (port, name, 'the main MariaDB' if port == main_port else by_port[port]['name']))
            continue
        if name in [inst['name'] for inst in out]:
            problems.append('lab_infra_extra_mariadb_instances: the name %s is given twice' % name)
            continue
        by_port[port] = {'name': name, 'port': port, 'databases': [], 'datadir': '/var/lib/mysql-' + name,
                         'config': '/etc/mysql/nova-lab-%s.cnf' % name, 'unit': 'mariadb-lab-' + name,
                         'socket': '/run/mysqld-%s/mysqld.sock' % name}
        out.append(by_port[port])
    main = []
    for server in model['infrastructure']['database_servers']:
        port = _int(server['port'])
        if port == main_port:
            main.extend(server['databases'])
        elif port in by_port:
            by_port[port]['databases'].extend(server['databases'])
        else:
            problems.append('the database(s) %s are on port %s, which no MariaDB of the lab serves: add {name, port: %s} to '
                            'lab_infra_extra_mariadb_instances' % (', '.join(server['databases']), port, port))
    main.extend(extra_databases or ())
    for inst in out:
        inst['databases'] = _unique(inst['databases'])
    return {'main': _unique(main), 'instances': out, 'problems': problems}
