# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The decisions of the day-2 playbooks (docs/day2.md) that read what the compute API and the modules return.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Pure functions, no I/O and no Ansible imports: plugins/filter/day2.py exposes them to the playbooks, the unit tests
call them directly. Host and cell names are compared exactly, never as substrings or patterns.
"""

from __future__ import annotations


class Day2Error(ValueError):
    """A request the playbook must refuse (the message says what to do)."""


def names(value):
    """The exact names of a request: a list, or one string of names separated by commas or blanks; duplicates once."""
    if value is None:
        return []
    items = value.replace(',', ' ').split() if isinstance(value, str) else list(value)
    out = []
    for item in items:
        if not isinstance(item, str):
            raise Day2Error(f'names must be strings, got {item!r}')
        name = item.strip()
        if not name:
            continue
        if any(char in name for char in '*?[]'):
            raise Day2Error(f'{name!r} is a pattern; name each host or cell exactly')
        if name not in out:
            out.append(name)
    return out


def _field(row, *keys):
    """The first of ``keys`` in ``row`` (openstackclient's JSON columns vary with the microversion: "Host", "host")."""
    for key in keys:
        if key in row:
            return row[key]
    return None


def compute_removal(hosts, services, servers, inventory_hosts=None):
    """What removing the compute hosts ``hosts`` (exact [DEFAULT] host names) means, and what is in the way.

    ``services``: ``openstack compute service list -f json`` rows; ``servers``: one ``openstack server list --long
    --all-projects --host HOST -f json`` result per host (a list of lists, or one flat list); ``inventory_hosts``:
    {[DEFAULT] host: inventory name} of the inventory's computes, or None not to check that.
    Returns {services: [{id, host, status, state}], servers: [{id, name, host}], servers_message, gone,
    unreachable, unreachable_message}: the nova-compute services to delete, the servers that block the removal, the
    hosts that have no service any more, and the hosts whose service is up but that no inventory host runs.
    """
    wanted = names(hosts)
    found = []
    for row in services or []:
        if _field(row, 'Binary', 'binary') != 'nova-compute' or _field(row, 'Host', 'host') not in wanted:
            continue
        found.append({'id': str(_field(row, 'ID', 'Id', 'id')), 'host': _field(row, 'Host', 'host'),
                      'status': _field(row, 'Status', 'status'), 'state': _field(row, 'State', 'state')})
    rows = []
    for item in servers or []:
        rows.extend(item if isinstance(item, list) else [item])
    blocking = []
    for row in rows:
        host = _field(row, 'Host', 'OS-EXT-SRV-ATTR:host', 'host', 'compute_host')
        server = {'id': _field(row, 'ID', 'id'), 'name': _field(row, 'Name', 'name'), 'host': host}
        if host in wanted and server not in blocking:
            blocking.append(server)
    message = ''
    if blocking:
        per_host = []
        for host in wanted:
            on_host = [server for server in blocking if server['host'] == host]
            if on_host:
                listed = ', '.join(f"{server['id']} {server['name']}" for server in on_host)
                per_host.append(f'{host} has {len(on_host)} instance(s): {listed}')
        message = f"{'; '.join(per_host)}. Migrate or delete them (openstack server migrate / delete), then run again. Nothing was changed."
    with_service = [service['host'] for service in found]
    unreachable = []
    if inventory_hosts is not None:
        # Each host once, in the order the API listed them.
        unreachable = list(dict.fromkeys(service['host'] for service in found
                                         if service['state'] == 'up' and service['host'] not in inventory_hosts))
    unreachable_message = ''
    if unreachable:
        unreachable_message = (f"nova-compute on {', '.join(unreachable)} is up, but no host of the inventory's compute "
                               'group runs it (nova_host), so it cannot be stopped, and a running compute re-creates its service: '
                               'add the host to the inventory or stop nova-compute there, then run again. Nothing was changed.')
    return {'services': found, 'servers': blocking, 'servers_message': message,
            'gone': [host for host in wanted if host not in with_service],
            'unreachable': unreachable, 'unreachable_message': unreachable_message}


def provider_names(hosts, hypervisors, services=None):
    """The resource provider names to look for in Placement after the hosts ``hosts`` are removed.

    Placement names a compute node's provider after its hypervisor hostname. ``hypervisors``: ``openstack hypervisor
    list --long -f json`` rows (at microversion 2.53 and later; "Service Host" where openstackclient shows it);
    ``services``: the services of :func:`compute_removal` (their ids are the ``service_id`` of their nodes).
    The host names themselves are always looked for (the usual hypervisor hostname, and all that is left to look for
    once the service and its nodes are gone).
    """
    wanted = names(hosts)
    service_ids = [str(service['id']) for service in services or []]
    out = list(wanted)
    for row in hypervisors or []:
        host = _field(row, 'Service Host', 'service_host', 'Host')
        service = _field(row, 'Service ID', 'service_id', 'service', 'Service')
        if isinstance(service, dict):
            host = service.get('host', host)
            service = service.get('id')
        if host in wanted or (service is not None and str(service) in service_ids):
            name = _field(row, 'Hypervisor Hostname', 'hypervisor_hostname')
            if name and name not in out:
                out.append(name)
    return out


def catalog_url(catalog, interface='public', region=None):
    """The endpoint URL of one ``openstack catalog show SERVICE -f json`` answer, for ``interface`` (and ``region``).

    openstackclient gives the endpoints as a list of {interface, url, region/region_id} or, in older releases, as
    text lines "REGION\\n  INTERFACE: URL".
    """
    endpoints = catalog.get('endpoints') if isinstance(catalog, dict) else None
    name = catalog.get('name', catalog.get('type', '?')) if isinstance(catalog, dict) else '?'
    found = []
    if isinstance(endpoints, list):
        for endpoint in endpoints:
            if endpoint.get('interface') != interface:
                continue
            if region and region not in (endpoint.get('region'), endpoint.get('region_id')):
                continue
            found.append(endpoint.get('url'))
    elif isinstance(endpoints, str):
        current = None
        for line in endpoints.splitlines():
            text = line.strip()
            if not text:
                continue
            if ':' not in text or text.split(':', 1)[0] not in ('public', 'internal', 'admin'):
                current = text
                continue
            kind, url = text.split(':', 1)
            if kind == interface and (not region or current == region):
                found.append(url.strip())
    found = [url for url in found if url]
    if not found:
        raise Day2Error(f"the catalog entry {name} has no {interface} endpoint{' in ' + region if region else ''}")
    return found[0].rstrip('/')


def move_queue_check(cell, shares_api_mq, cell_conductors):
    """The refusal of a cell move that would leave the cell's computes without a conductor on their queue, or ''.

    A cell that shares the API message queue (``nova_api_mq_shared_cell``) is served by the super conductors there;
    when the inventory gives it ``rabbit_*`` keys or a ``transport_url`` of its own, it stops sharing, and its computes
    then call a conductor on the new queue: only the cell's own conductors (``cell_conductors``, the hosts of the cell
    conductor group in that cell) listen there. ``shares_api_mq``: whether the cell's new URL is the API level's.
    """
    if shares_api_mq or cell_conductors:
        return ''
    return (f'{cell} would get a message queue of its own (nova_cells.{cell} gives rabbit_* keys or a transport_url), but no '
            f'host runs a cell conductor of {cell}: its computes would call a conductor that listens nowhere. A cell that '
            'shares the API message queue (nova_api_mq_shared_cell) moves with it: change nova_rabbit_hosts, nova_rabbit_port '
            f'or nova_rabbit_vhost (or nova_transport_url) instead, or add cell conductors of {cell} (nova_cell_conductor) first. '
            'Nothing was changed.')


def move_check(cell, versions, head, error=None, database=''):
    """The refusal of a cell move whose new database is not ready, or '' when it is.

    ``versions``/``head``: what nova.cells.db_sync (check mode, the cell's new URL) read: the schema revision of the
    new database (None: never synced) and the installed Nova's head; ``error``: why it could not be read at all.
    """
    where = database or 'the new database'
    if error:
        return (f"The new database of {cell} ({where}) does not answer: {error}. Create it and copy the cell's data there (or "
                f'fix nova_cells.{cell}), then run again. Nothing was changed.')
    revisions = [(versions or {}).get(key, {}).get('before') for key in (versions or {})]
    if not revisions or any(revision is None for revision in revisions):
        return (f"The new database of {cell} ({where}) holds no Nova schema: copy the cell's database there first (for example "
                'mysqldump | mysql), then run again. Nothing was changed.')
    if head and any(revision != head for revision in revisions):
        found = ', '.join(sorted({str(revision) for revision in revisions}))
        return (f'The new database of {cell} ({where}) is at schema revision {found}, not at {head} as the installed Nova: '
                'copy the current data of the cell, or run the upgrade first. Nothing was changed.')
    return ''
