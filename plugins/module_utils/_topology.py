# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

"""The deployment as a Graphviz DOT picture, from the results of cell_info and service_status.

Private to the collection. Pure functions, no I/O: the ``nova.cells.topology_dot`` filter calls
``topology_dot``; the cells role's status entry point renders its text to SVG with Graphviz.

The picture has one cluster per cell (its database, its message queue, its conductors and its
computes) and one for the API level (cell0 and the services that report there under the
superconductor layout: schedulers and super conductors). Services are coloured by liveness; a
disabled cell is drawn dashed and grey, a cell whose database did not answer in red.

No password is ever drawn: database and queue URLs are reduced to scheme, user, hosts and path;
the password, and any query string (where drivers may carry credentials), are dropped, whether or
not the caller already masked them.
"""

from __future__ import annotations

import re

CELL0_UUID = '00000000-0000-0000-0000-000000000000'

# Fill colours by service state (and the legend's order).
STATE_COLOURS = {'up': '#b7e4c7', 'down': '#f4a3a3', 'unknown': '#ffe08a'}
UNMAPPED_COLOUR = '#e9ecef'
DISABLED_CELL_COLOUR = '#dee2e6'
UNREACHABLE_COLOUR = '#c92a2a'
INFRA_COLOUR = '#d0ebff'
MAX_REASON = 60
_AGE = re.compile(r'heartbeat -?\d+(?:\.\d+)? s (?:ago|old)')
API_DATABASE_LABEL = 'API database\ncell mappings'


class TopologyError(ValueError):
    """The input is not what cell_info / service_status return."""


def safe_url(url):
    """``url`` without password and query: scheme://user@host:port,.../path. Never echoes a secret.

    >>> safe_url('mysql+pymysql://nova:s3cret@db1:3306/nova_cell1?charset=utf8')
    'mysql+pymysql://nova@db1:3306/nova_cell1'
    """
    if not url:
        return ''
    text = str(url)
    scheme, sep, rest = text.partition('://')
    if not sep:
        # Not a URL (e.g. "none:///" has one): show only what precedes any credentials.
        return text.rsplit('@', maxsplit=1)[-1].split('?', maxsplit=1)[0]
    # A password that is not percent-encoded may hold "/", "?", "#" or "@" (not ","): the query and
    # fragment start after the first "@", and each host entry's user information ends at its last "@".
    first_at = rest.find('@')
    for mark in ('?', '#'):
        cut = rest.find(mark, first_at + 1)
        if cut >= 0:
            rest = rest[:cut]
    entries = []
    for entry in rest.split(','):
        userinfo, at, tail = entry.rpartition('@')
        user = userinfo.split(':', 1)[0] if at else ''
        entries.append(f'{user}@{tail}' if user else tail)
    return '{}://{}'.format(scheme, ','.join(entries))


def _quote(text):
    """A DOT double-quoted string; newlines become DOT's centred line breaks."""
    escaped = str(text).replace('\\', '\\\\').replace('"', '\\"')
    return '"{}"'.format(escaped.replace('\r', '').replace('\n', '\\n'))


def _attrs(**attributes):
    items = [f'{key}={_quote(value)}' for key, value in attributes.items() if value is not None]
    return '[{}]'.format(', '.join(items))


def _short(text, limit=MAX_REASON):
    text = ' '.join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + '...'


def _cells_of(cell_info):
    if isinstance(cell_info, dict):
        cells = cell_info.get('cells')
    else:
        cells = cell_info
    if not isinstance(cells, list) or not all(isinstance(cell, dict) for cell in cells):
        raise TopologyError(f'expected the result of nova.cells.cell_info (a dict with a list "cells") or that list, got {type(cell_info).__name__}')
    return cells


def _services_of(service_status):
    if service_status is None:
        return [], {}
    if not isinstance(service_status, dict) or not isinstance(service_status.get('services', []), list):
        raise TopologyError(f'expected the result of nova.cells.service_status (a dict with a list "services"), got {type(service_status).__name__}')
    return service_status.get('services', []), service_status


def _is_cell0(cell):
    return cell.get('uuid') == CELL0_UUID


class _Writer:
    """Collects DOT statements with generated node ids (names in labels never need to be ids)."""

    def __init__(self):
        self.lines = []
        self.count = 0

    def node(self, indent, **attributes):
        self.count += 1
        node_id = f'n{self.count}'
        self.lines.append(f'{indent}{node_id} {_attrs(**attributes)};')
        return node_id

    def edge(self, tail, head, **attributes):
        self.lines.append(f'  {tail} -> {head} {_attrs(**attributes)};')

    def add(self, line):
        self.lines.append(line)


def stable_reason(reason, last_seen):
    """``reason`` with "heartbeat N s ago/old" turned into the time of that heartbeat, so that the
    picture of an unchanged deployment does not change from run to run."""
    if not last_seen:
        return reason
    stamp = '{} UTC'.format(str(last_seen)[:19].replace('T', ' '))
    return _AGE.sub(f'heartbeat at {stamp}', reason)


def _service_node(writer, indent, service, unmapped=False):
    state = service.get('state') or 'unknown'
    label = [service.get('host') or '?', service.get('binary') or '?', state.upper()]
    if unmapped:
        label.append('NOT MAPPED')
    style = 'filled,rounded'
    if service.get('forced_down'):
        label.append('forced down')
    if service.get('disabled'):
        label.append(_short('disabled: {}'.format(service['disabled_reason'])) if service.get('disabled_reason') else 'disabled')
        style = 'filled,rounded,dashed'
    if state != 'up' and service.get('reason'):
        label.append(_short(stable_reason(service['reason'], service.get('last_seen'))))
    return writer.node(indent, label='\n'.join(label), shape='box', style=style,
                       fillcolor=STATE_COLOURS.get(state, STATE_COLOURS['unknown']))


def _cell_cluster(writer, index, cell, services):
    """One cluster for a cell (cell0's holds the API database too).

    Returns (database node, API database node or None, the nodes of its hosts and services).
    """
    name = cell.get('name') or '(no name)'
    indent = '    '
    cell0 = _is_cell0(cell)
    title = [f'API level: {name}' if cell0 else f'cell {name}', cell.get('uuid') or '']
    cluster = dict(style='rounded', color='#495057', bgcolor='#f8f9fa', penwidth='1.5')
    reachable = cell.get('reachable')
    if cell.get('disabled'):
        title.append('DISABLED')
        cluster.update(style='rounded,dashed', bgcolor=DISABLED_CELL_COLOUR)
    if reachable is False:
        title.append('DATABASE UNREACHABLE')
        cluster.update(color=UNREACHABLE_COLOUR, penwidth='3', fontcolor=UNREACHABLE_COLOUR)
    writer.add(f'  subgraph cluster_{index} {{')
    writer.add('{}label={};'.format(indent, _quote('\n'.join(title))))
    for key, value in cluster.items():
        writer.add(f'{indent}{key}={_quote(value)};')

    database_label = ['database', safe_url(cell.get('database_connection'))]
    if reachable is False:
        database_label.append('UNREACHABLE')
        if cell.get('error'):
            database_label.append(_short(safe_url_text(cell['error'])))
    database = writer.node(indent, label='\n'.join(database_label), shape='cylinder', style='filled',
                           fillcolor='#ffc9c9' if reachable is False else INFRA_COLOUR)
    api_database = None
    if cell0:
        api_database = writer.node(indent, label=API_DATABASE_LABEL, shape='cylinder', style='filled', fillcolor=INFRA_COLOUR)
    transport = safe_url(cell.get('transport_url'))
    queue = None
    if transport and not transport.startswith('none:'):
        queue = writer.node(indent, label=f'message queue\n{transport}', shape='box3d', style='filled', fillcolor=INFRA_COLOUR)

    seen_hosts = set()
    nodes = []
    hosts = []
    unmapped = set(cell.get('unmapped_hosts') or [])
    for service in services:
        node = _service_node(writer, indent, service,
                             unmapped=service.get('binary') == 'nova-compute' and service.get('host') in unmapped)
        nodes.append((service, node))
        seen_hosts.add(service.get('host'))
    # Mapped hosts without a service row, and computes not mapped yet.
    for host in cell.get('hosts') or []:
        if host not in seen_hosts:
            hosts.append(writer.node(indent, label=f'{host}\nmapped, no service row', shape='box',
                                     style='filled,rounded', fillcolor=UNMAPPED_COLOUR))
    for host in cell.get('unmapped_hosts') or []:
        if host in seen_hosts:
            continue
        hosts.append(writer.node(indent, label=f'{host}\nNOT MAPPED\n(discover_hosts)', shape='box',
                                 style='filled,rounded,dotted', fillcolor=UNMAPPED_COLOUR))
    writer.add('  }')

    for service, node in nodes:
        if service.get('binary') == 'nova-compute':
            if queue:
                writer.edge(node, queue, color='#868e96')
        else:
            writer.edge(node, database, color='#868e96')
            if queue:
                writer.edge(node, queue, color='#868e96')
        if api_database:
            writer.edge(node, api_database, color='#868e96')
    return database, api_database, [node for _service, node in nodes] + hosts


def safe_url_text(text):
    """Free text (an error message) with every URL in it reduced by ``safe_url``."""
    words = []
    for word in str(text).split():
        words.append(safe_url(word) if '://' in word or '@' in word else word)
    return ' '.join(words)


def _legend(writer):
    writer.add('  subgraph cluster_legend {')
    writer.add('    label="legend"; style="rounded"; color="#adb5bd"; fontsize="10"; rank="same";')
    previous = None
    for state, colour in STATE_COLOURS.items():
        node = writer.node('    ', label=state, shape='box', style='filled,rounded', fillcolor=colour, fontsize='9')
        if previous:
            writer.edge(previous, node, style='invis')
        previous = node
    node = writer.node('    ', label='disabled\n(dashed)', shape='box', style='rounded,dashed', fontsize='9')
    writer.edge(previous, node, style='invis')
    writer.add('  }')


def topology_dot(cell_info, service_status=None, title=None):
    """The Graphviz DOT text of the deployment.

    ``cell_info``: the result of nova.cells.cell_info (or its ``cells`` list); ``service_status``:
    the result of nova.cells.service_status, optional. Services are matched to cells by cell uuid,
    else by name; services of an unknown cell get a cluster of their own.
    """
    cells = _cells_of(cell_info)
    services, status = _services_of(service_status)
    by_cell = {}
    order = []
    for service in services:
        if not isinstance(service, dict):
            raise TopologyError(f'every entry of "services" must be a dict, got {type(service).__name__}')
        key = service.get('cell_uuid') or service.get('cell')
        if key not in by_cell:
            by_cell[key] = []
            order.append(key)
        by_cell[key].append(service)
    for key in by_cell:
        by_cell[key].sort(key=lambda s: (s.get('binary') == 'nova-compute', s.get('binary') or '', s.get('host') or ''))

    up = sum(1 for s in services if s.get('state') == 'up')
    down = sum(1 for s in services if s.get('state') == 'down')
    unknown = len(services) - up - down
    heading = [title or 'nova.cells deployment']
    heading.append(f'{len(cells)} cell(s), {len(services)} service(s): {up} up, {down} down, {unknown} unknown')
    if status.get('driver'):
        heading.append('ServiceGroup driver {}, service_down_time {} s'.format(status['driver'], status.get('service_down_time', '?')))

    writer = _Writer()
    writer.add('digraph nova_cells {')
    writer.add('  graph [label={}, labelloc="t", fontname="Helvetica", fontsize="14", compound="true", '
               'rankdir="TB", newrank="true", nodesep="0.3", ranksep="0.6"];'.format(_quote('\n'.join(heading))))
    writer.add('  node [fontname="Helvetica", fontsize="10"];')
    writer.add('  edge [arrowsize="0.6"];')

    # cell0 first: its cluster holds the API database, whose cell mappings point at every other
    # cell's database (dashed lines).
    ordered = sorted(cells, key=lambda cell: not _is_cell0(cell))
    summary = status.get('summary') or {}
    used = set()
    databases = []
    tops = []
    api_database = None
    for index, cell in enumerate(ordered, start=1):
        entry = summary.get(cell.get('name'))
        if isinstance(entry, dict) and entry.get('reachable') is False and cell.get('reachable') is not False:
            cell = dict(cell, reachable=False)
        own = []
        for key in (cell.get('uuid'), cell.get('name')):
            if key in by_cell and key not in used:
                own.extend(by_cell[key])
                used.add(key)
        database, api, nodes = _cell_cluster(writer, index, cell, own)
        api_database = api_database or api
        if not _is_cell0(cell):
            databases.append(database)
            tops.extend(nodes or [database])
    index = len(ordered)
    for key in order:
        if key in used:
            continue
        index += 1
        first = by_cell[key][0]
        _cell_cluster(writer, index, {'name': first.get('cell') or key, 'uuid': first.get('cell_uuid')}, by_cell[key])
    if databases and api_database is None:
        api_database = writer.node('  ', label=API_DATABASE_LABEL, shape='cylinder', style='filled', fillcolor=INFRA_COLOUR)
    for database in databases:
        writer.edge(api_database, database, style='dashed', color='#adb5bd', arrowhead='none')
    # The cells below the API level (invisible edges only place them).
    for node in tops:
        writer.edge(api_database, node, style='invis')
    _legend(writer)
    writer.add('}')
    return '\n'.join(writer.lines) + '\n'
