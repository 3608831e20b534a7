# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Health of a cells deployment: message-queue login probe, ServiceGroup settings of a nova.conf and their
audit across nodes, orphan rules, and the health report (problems + a readable table).

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""

from __future__ import annotations

import socket
import struct

from ansible_collections.nova.cells.plugins.module_utils._servicegroup import effective_service_down_time

# Nova's defaults (nova/conf/service.py, nova/conf/servicegroup.py).
DEFAULT_DRIVER = 'db'
DEFAULT_REPORT_INTERVAL = 10
DEFAULT_SERVICE_DOWN_TIME = 60

# -- AMQP 0-9-1 login probe ----------------------------------------------------------------------------------
_FRAME_END = 0xCE
_METHOD = 1


class ProbeError(Exception):
    pass


def _shortstr(text):
    data = text.encode('utf-8')
    if len(data) > 255:
        raise ProbeError('value longer than 255 bytes')
    return struct.pack('B', len(data)) + data


def _longstr(data):
    return struct.pack('>I', len(data)) + data


def _method_frame(class_id, method_id, arguments):
    payload = struct.pack('>HH', class_id, method_id) + arguments
    return struct.pack('>BHI', _METHOD, 0, len(payload)) + payload + bytes([_FRAME_END])


def _read_exact(sock, size):
    data = b''
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ProbeError('the server closed the connection')
        data += chunk
    return data


def _read_method(sock):
    """(class_id, method_id, arguments) of the next method frame (heartbeats skipped)."""
    while True:
        frame_type, _channel, size = struct.unpack('>BHI', _read_exact(sock, 7))
        payload = _read_exact(sock, size)
        if _read_exact(sock, 1)[0] != _FRAME_END:
            raise ProbeError('malformed AMQP frame')
        if frame_type == _METHOD:
            class_id, method_id = struct.unpack('>HH', payload[:4])
            return class_id, method_id, payload[4:]


def _close_reason(arguments):
    code = struct.unpack('>H', arguments[:2])[0]
    length = arguments[2]
    return code, arguments[3:3 + length].decode('utf-8', 'replace')


def amqp_login(host, port, username, password, vhost, timeout=5.0, connect=socket.create_connection):
    """Log in to an AMQP 0-9-1 broker (RabbitMQ) and open ``vhost``, as oslo.messaging's first step does.

    Returns None when the vhost opened, else why not (connection refused, wrong credentials: 403, no access
    to the vhost: 530, ...). Only PLAIN authentication; nothing is declared or published.
    """
    try:
        sock = connect((host, port), timeout)
    except OSError as exc:
        return f'cannot connect to {host}:{port}: {exc.strerror or exc}'
    try:
        sock.settimeout(timeout)
        sock.sendall(b'AMQP\x00\x00\x09\x01')
        if _read_method(sock)[:2] != (10, 10):
            return f'not an AMQP 0-9-1 server at {host}:{port}'
        # Connection.Start-Ok: client properties (with the capability that makes RabbitMQ explain a refused login),
        # mechanism PLAIN, response "\0user\0password", locale.
        capabilities = _shortstr('authentication_failure_close') + b't\x01'
        properties = _shortstr('capabilities') + b'F' + _longstr(capabilities)
        response = b'\x00' + (username or '').encode('utf-8') + b'\x00' + (password or '').encode('utf-8')
        sock.sendall(_method_frame(10, 11, _longstr(properties) + _shortstr('PLAIN') + _longstr(response) + _shortstr('en_US')))
        class_id, method_id, arguments = _read_method(sock)
        if (class_id, method_id) == (10, 50):
            code, text = _close_reason(arguments)
            return f'login refused by {host}:{port} ({code} {text})'
        if (class_id, method_id) != (10, 30):
            return f'unexpected AMQP method {class_id}.{method_id} from {host}:{port} after login'
        channel_max, frame_max, _heartbeat = struct.unpack('>HIH', arguments[:8])
        sock.sendall(_method_frame(10, 31, struct.pack('>HIH', channel_max, frame_max, 0)))
        sock.sendall(_method_frame(10, 40, _shortstr(vhost) + _shortstr('') + b'\x00'))
        class_id, method_id, arguments = _read_method(sock)
        if (class_id, method_id) == (10, 50):
            code, text = _close_reason(arguments)
            return f'virtual host {vhost!r} refused by {host}:{port} ({code} {text})'
        if (class_id, method_id) != (10, 41):
            return f'unexpected AMQP method {class_id}.{method_id} from {host}:{port} opening {vhost!r}'
        sock.sendall(_method_frame(10, 50, struct.pack('>H', 200) + _shortstr('probe done') + struct.pack('>HH', 0, 0)))
        return None
    except ProbeError as exc:
        return f'login to {host}:{port} failed: {exc}'
    except OSError as exc:
        return f'login to {host}:{port} failed: {exc.strerror or exc}'
    finally:
        sock.close()


def queue_targets(parsed):
    """(host, port, username, password, vhost) per broker of a parsed transport URL (oslo.messaging's rabbit driver
    defaults: port 5672, vhost '/')."""
    vhost = parsed['virtual_host'] or '/'
    return [(entry['hostname'] or 'localhost', entry['port'] or 5672, entry['username'], entry['password'], vhost)
            for entry in parsed['hosts']]


# -- ServiceGroup settings -------------------------------------------------------------------------------------
def _int_option(value, default):
    try:
        return int(value) if value not in (None, '') else default
    except (TypeError, ValueError):
        return value


def servicegroup_settings(config):
    """The ServiceGroup settings a nova.conf (a NovaConfig) gives Nova, defaults applied as Nova applies them."""
    driver = (config.get('DEFAULT', 'servicegroup_driver') or DEFAULT_DRIVER).strip()
    report_interval = _int_option(config.get('DEFAULT', 'report_interval'), DEFAULT_REPORT_INTERVAL)
    service_down_time = _int_option(config.get('DEFAULT', 'service_down_time'), DEFAULT_SERVICE_DOWN_TIME)
    effective = service_down_time
    if isinstance(report_interval, int) and isinstance(service_down_time, int):
        effective = effective_service_down_time(report_interval, service_down_time)
    settings = dict(driver=driver, report_interval=report_interval, service_down_time=service_down_time,
                    effective_service_down_time=effective)
    if driver == 'mc':
        servers = config.get('cache', 'memcache_servers') or ''
        settings.update(cache_enabled=(config.get('cache', 'enabled') or 'false').strip().lower() in ('true', '1', 'yes', 'on'),
                        cache_backend=config.get('cache', 'backend'),
                        memcache_servers=sorted(s.strip() for s in servers.split(',') if s.strip()))
    return settings


AUDITED = ('driver', 'report_interval', 'service_down_time', 'effective_service_down_time', 'memcache_servers')


def audit_servicegroup(settings_by_host):
    """Problems of the ServiceGroup settings across nodes: every node must use the same driver, report_interval and
    service_down_time (and, with mc, the same memcached servers and an enabled cache), as the ServiceGroup guide asks.

    Returns a list of messages naming the hosts on each side.
    """
    problems = []
    hosts = sorted(settings_by_host)
    for field in AUDITED:
        values = {}
        for host in hosts:
            if field in settings_by_host[host]:
                values.setdefault(repr(settings_by_host[host][field]), []).append(host)
        if len(values) > 1:
            problems.append('{} differs between nodes: {}'.format(field, '; '.join(
                '{} on {}'.format(value, ', '.join(names)) for value, names in sorted(values.items(), key=lambda item: (-len(item[1]), item[0])))))
    for host in hosts:
        settings = settings_by_host[host]
        if settings.get('driver') not in ('db', 'mc'):
            problems.append('{} uses servicegroup_driver {!r}; Nova since Mitaka has only db and mc'.format(host, settings.get('driver')))
        if settings.get('driver') == 'mc' and not settings.get('cache_enabled'):
            problems.append(f'{host} uses the mc driver without [cache] enabled = true: its services cannot report')
        if settings.get('driver') == 'mc' and not settings.get('memcache_servers'):
            problems.append(f'{host} uses the mc driver without [cache] memcache_servers')
        interval, down = settings.get('report_interval'), settings.get('service_down_time')
        if isinstance(interval, int) and isinstance(down, int) and down <= interval:
            effective = settings.get('effective_service_down_time')
            problems.append(f'{host} has service_down_time {down} <= report_interval {interval}: Nova uses {effective} instead')
    return problems


# -- orphans -------------------------------------------------------------------------------------------------
def stale_host_mappings(mapped_hosts, compute_hosts, service_hosts):
    """Host mappings of a cell whose host has neither a compute node nor a nova-compute service in that cell.

    Matching is exact (Nova compares host names with the database's collation, which ignores case: so does this).
    """
    known = {host.lower() for host in list(compute_hosts) + list(service_hosts)}
    return sorted(host for host in mapped_hosts if host.lower() not in known)


# -- the health report -----------------------------------------------------------------------------------------
def node_settings(results):
    """{host: servicegroup_info result} → ({host: settings}, {host: why they are missing})."""
    settings, missing = {}, {}
    for host, result in sorted((results or {}).items()):
        if isinstance(result, dict) and isinstance(result.get('settings'), dict) and not result.get('failed'):
            settings[host] = result['settings']
        elif isinstance(result, dict) and ('driver' in result):
            settings[host] = result
        else:
            missing[host] = (result or {}).get('msg') if isinstance(result, dict) else None
    return settings, missing


def health_report(status=None, reachability=None, orphans=None, services=None, servicegroup=None):
    """Problems and a readable table from the results of the health playbook's modules (any may be missing).

    ``servicegroup`` is {host: the servicegroup_info result (or its settings)}; a host without settings is a problem.
    """
    problems, lines = [], []
    servicegroup, missing_nodes = node_settings(servicegroup)
    status = status or {}
    checks = status.get('checks') or []
    lines.append('NOVA-STATUS UPGRADE CHECK')
    for check in checks:
        lines.append(f"  {check['check']:<40} {check['result']:<8} {check.get('details') or ''}")
        if check['result'] != 'success' and check['check'] not in (status.get('ignored') or []):
            details = f" ({check['details']})" if check.get('details') else ''
            problems.append(f"nova-status: {check['check']} is {check['result']}{details}")
    if status.get('failed'):
        lines.append('  nova-status could not run: {}'.format(status.get('msg')))
        problems.append('nova-status upgrade check could not run: {}'.format(status.get('msg')))
    elif not checks:
        lines.append('  (not run)')
    lines.append('CELLS: DATABASE AND MESSAGE QUEUE')
    for cell in (reachability or {}).get('cells', []):
        database, queue = cell['database'], cell['queue']
        database_state = 'reachable' if database['reachable'] else 'UNREACHABLE'
        queue_state = 'n/a' if queue['reachable'] is None else ('reachable' if queue['reachable'] else 'UNREACHABLE')
        lines.append(f"  {cell['name']:<16} database {database_state:<12} queue {queue_state}")
        if not database['reachable']:
            problems.append('cell {}: database unreachable: {}'.format(cell['name'], database.get('error')))
        if queue['reachable'] is False:
            problems.append('cell {}: message queue unreachable: {}'.format(cell['name'], queue.get('error')))
    lines.append(f"SERVICES (ServiceGroup backend: {(services or {}).get('driver') or '?'})")
    for service in (services or {}).get('services', []):
        reason = f" ({service['reason']})" if service.get('reason') else ''
        lines.append(f"  {service['cell']:<16} {service['host']:<24} {service['binary']:<16} {service['state']:<7}{reason}")
        if service['state'] != 'up' and not service.get('disabled'):
            why = f": {service['reason']}" if service.get('reason') else ''
            problems.append(f"service {service['binary']} on {service['host']} (cell {service['cell']}) is {service['state']}{why}")
    lines.append('ORPHANS')
    for cell in (orphans or {}).get('cells', []):
        lines.append(f"  {cell['name']:<16} unmapped instances {cell['unmapped_instances']}, unmapped computes {len(cell['unmapped_computes'])}, "
                     f"stale host mappings {len(cell['stale_host_mappings'])}")
        if cell['unmapped_instances']:
            problems.append(f"cell {cell['name']}: {cell['unmapped_instances']} instance(s) without an instance mapping "
                            '(nova.cells.map_instances maps them)')
        if cell['unmapped_computes']:
            problems.append(f"cell {cell['name']}: compute host(s) {', '.join(cell['unmapped_computes'])} not mapped "
                            '(nova.cells.discover_hosts maps them)')
        if cell['stale_host_mappings']:
            problems.append('cell {}: host mapping(s) {} point at no compute of the cell (nova.cells.host state=absent '
                            'removes them)'.format(cell['name'], ', '.join(cell['stale_host_mappings'])))
        if cell.get('error'):
            problems.append('cell {}: {}'.format(cell['name'], cell['error']))
    lines.append('SERVICEGROUP SETTINGS PER NODE')
    for host, settings in sorted((servicegroup or {}).items()):
        servers = f" memcache_servers {','.join(settings['memcache_servers'])}" if settings.get('memcache_servers') else ''
        lines.append(f"  {host:<24} driver {settings.get('driver')!s:<3} report_interval {settings.get('report_interval')!s:<4} "
                     f"service_down_time {settings.get('service_down_time')}{servers}")
    problems.extend(f'ServiceGroup: {problem}' for problem in audit_servicegroup(servicegroup or {}))
    for host, why in missing_nodes.items():
        problems.append('node {}: its ServiceGroup settings could not be read{}'.format(host, f': {why}' if why else ''))
    lines.append(f'PROBLEMS: {len(problems)}')
    lines.extend(f'  - {problem}' for problem in problems)
    return dict(problems=problems, lines=lines, healthy=not problems)
