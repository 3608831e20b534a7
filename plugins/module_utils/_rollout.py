# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Decisions of the day-2 playbooks that roll a nova.conf change through running services.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Pure functions, no I/O and no Ansible imports: the ``nova.cells.rollout`` filter exposes them to
``playbooks/switch_servicegroup.yml`` and ``playbooks/rotate_credentials.yml``; the unit tests call them directly.

- ``stale_units``: which running units still run on an older nova.conf (they started before it was last written),
  so that a run interrupted between writing the file and restarting the service restarts it the next time, and a
  second run restarts nothing.
- ``switch_plan``: the order in which a ServiceGroup driver change (db <-> mc) reaches the services (see the
  docstring of ``switch_plan`` for the reasoning from Nova 34's code).
- ``conf_changes``: what changes between two nova.conf texts, every secret masked (the nova_conf role writes the file
  with no_log, so ``--check --diff`` shows these lines instead).
- ``stalled_heartbeats``: the services that were alive when a conductor restarted and have not reported a heartbeat
  since (see its docstring: a heartbeat call lost in the old conductor's shutdown blocks the caller's report loop for
  rpc_response_timeout).
"""

from __future__ import annotations

import configparser
import datetime
import re

from ansible_collections.nova.cells.plugins.module_utils._units import parse_systemctl_show
from ansible_collections.nova.cells.plugins.module_utils._urls import MASK, mask_url

DRIVERS = ('db', 'mc')
# Option names whose values are secrets (nova.conf: [keystone_authtoken] password, [service_user] password,
# [placement] password, metadata_proxy_shared_secret, [placement] token, ...).
_SECRET_OPTION = re.compile(r'(password|secret|token|passwd|_key$)', re.I)

# The phases of a ServiceGroup driver switch, in order (node types of docs/inventory.md).
#   widen      the readers of liveness (scheduler, API) restart on the driver they have, with a longer
#              service_down_time (the grace), so that the heartbeats the writers stop sending to the old backend
#              are still read as up while the writers move;
#   writers    computes and conductors restart on the new driver: they write their heartbeat to the new backend
#              (and no longer to the old one); each batch is waited for until it is up in the new backend;
#   schedulers the schedulers restart on the new driver (they read the computes from the new backend, where
#              every compute is already up) and are waited for until up in the new backend;
#   readers    nova-api (the reader of the os-services API) and the services that report no liveness (metadata
#              APIs, console proxies) restart on the new driver, with the normal service_down_time.
SWITCH_PHASES = (
    {'name': 'widen', 'types': ['scheduler', 'api'], 'binaries': []},
    {'name': 'writers', 'types': ['compute', 'cell_conductor', 'super_conductor'], 'binaries': ['nova-compute', 'nova-conductor']},
    {'name': 'schedulers', 'types': ['scheduler'], 'binaries': ['nova-scheduler']},
    {'name': 'readers', 'types': ['api', 'metadata', 'cell_metadata', 'console_proxy'], 'binaries': []},
)
WRITER_TYPES = ('compute', 'cell_conductor', 'super_conductor', 'scheduler')


def _timestamp(value):
    """Seconds since the epoch from systemctl's ``--timestamp=us+utc`` form (``Sun 2026-12-06 20:07:00.123456 UTC``),
    the ``unix`` form (``@1765051620``) or a number; None for an empty value (a unit that never started)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    if not text or text in ('n/a', '0'):
        return None
    if text.startswith('@'):
        return float(text[1:])
    match = re.match(r'^(?:[A-Za-z]{3} )?(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(\.\d+)? UTC$', text)
    if not match:
        raise ValueError(f'cannot read the timestamp {text!r} (expected systemctl --timestamp=us+utc)')
    moment = datetime.datetime.strptime(match.group(1), '%Y-%m-%d %H:%M:%S').replace(tzinfo=datetime.UTC)
    return moment.timestamp() + float(match.group(2) or 0)


def stale_units(units, file_mtimes, wanted, changed=False):
    """The running units of ``wanted`` that must restart to read their configuration.

    ``units``: the output of ``systemctl show -p Id -p ActiveState -p ActiveEnterTimestamp --timestamp=us+utc``
    (text, or the parsed list); ``file_mtimes``: the modification times of the files the units read (nova.conf and,
    where it exists, the database environment file); ``changed``: the files change in this run (check mode: would
    change), so every running unit restarts. A unit restarts when it runs and entered that state before the newest
    file was written. Stopped units stay stopped. Returns the unit names (without ``.service``) in ``wanted`` order.
    """
    parsed = parse_systemctl_show(units) if isinstance(units, str) else list(units or [])
    by_name = {}
    for unit in parsed:
        name = str(unit.get('Id', '')).rsplit('.service', 1)[0]
        by_name[name] = unit
    newest = max([float(mtime) for mtime in (file_mtimes or []) if mtime is not None] or [None], key=lambda x: x or 0)
    result = []
    for name in wanted or []:
        unit = by_name.get(name)
        if unit is None or unit.get('ActiveState') != 'active' or name in result:
            continue
        started = _timestamp(unit.get('ActiveEnterTimestamp'))
        if changed or (newest is not None and (started is None or started < newest)):
            result.append(name)
    return result


def _epoch(value):
    """Seconds since the epoch of an ISO 8601 time (naive means UTC), as nova.cells.service_status gives last_seen."""
    if value is None or value == '':
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    moment = datetime.datetime.fromisoformat(str(value).replace('Z', '+00:00'))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.timestamp()


def stalled_heartbeats(services, since, service_down_time, binaries=('nova-compute',)):
    """The services of ``binaries`` that were alive at ``since`` and have reported no heartbeat after it.

    ``services``: the ``services`` of nova.cells.service_status (``binary``, ``host``, ``last_seen`` ISO 8601);
    ``since``: when the restarted conductor started (seconds since the epoch, the conductor host's clock, which is
    the clock that writes last_seen_up). With the db driver a compute's heartbeat is a ``service_update`` RPC call to
    the conductor; a call that reaches the old conductor while it shuts down gets no answer (Nova 34, oslo.messaging
    18.3: the stopped listener's connection still takes and acknowledges deliveries until it closes), so the
    compute's report loop waits ``rpc_response_timeout`` (60 s) before its next heartbeat. A service whose last
    heartbeat is older than ``since`` while the restarted conductor runs is in that wait (or cannot reach the
    conductor). Services that were already down at ``since`` (last heartbeat more than ``service_down_time`` before)
    and services without a heartbeat time are not counted. Returns ``binary@host`` names, sorted.
    """
    start = _epoch(since)
    if start is None:
        raise ValueError('stalled_heartbeats needs since, the start time of the restarted conductor')
    wanted = set(binaries or ())
    stalled = []
    for service in services or []:
        if wanted and service.get('binary') not in wanted:
            continue
        beat = _epoch(service.get('last_seen'))
        if beat is None or beat >= start or beat < start - float(service_down_time):
            continue
        stalled.append(f"{service.get('binary')}@{service.get('host')}")
    return sorted(set(stalled))


def switch_plan(target, current, writer_hosts, service_down_time, grace, report_interval=10):
    """How to switch every node to the ServiceGroup driver ``target`` without a live service looking down.

    ``current``: {host: the driver its nova.conf has now (None: no nova.conf)}; ``writer_hosts``: the hosts that run
    a service which reports liveness (computes, conductors, schedulers).

    Why this order (Nova 34, nova/servicegroup/drivers): a service has one driver, used both to write its own
    heartbeat and to read other services' liveness. The db driver writes ``services.last_seen_up`` and reads it
    (up while younger than service_down_time); the mc driver writes only a memcached key ``topic:host`` (no database
    update) and reads only that key (up while its dogpile item is younger than the reader's service_down_time). So a
    service that moves to the new driver stops refreshing the old backend, and readers still on the old driver see it
    go down service_down_time after its last old heartbeat; a reader on the new driver sees every service that has
    not yet written to the new backend as down at once. Hence: writers first (computes, conductors), waited for
    until up in the new backend, then the schedulers (readers of compute liveness, and writers), waited for, then
    nova-api (the reader behind ``openstack compute service list``). The writers' move must finish within the
    readers' service_down_time: on a busy or large deployment it does not, so the readers first restart on their
    current driver with ``service_down_time = grace`` (phase widen), and get the normal value when they move. The
    same order holds for mc -> db (the mc readers keep reading a moved writer's last key until it is older than the
    grace).

    Returns {target, widen, phases, problems, moving}: ``widen`` false when no writer has to move (a second run, or
    a run that resumes after the writers moved), ``moving`` the hosts whose nova.conf is not on ``target`` yet.
    """
    problems = []
    if target not in DRIVERS:
        problems.append(f"nova_servicegroup_switch_to must be one of {', '.join(DRIVERS)}, not {target!r} (the zk driver is gone since "
                        'Nova 13)')
    missing = sorted(host for host, driver in (current or {}).items() if not driver)
    if missing:
        problems.append(f"no nova.conf with a ServiceGroup driver on {', '.join(missing)}: deploy these hosts first (nova.cells.deploy)")
    unknown = sorted(host for host, driver in (current or {}).items() if driver and driver not in DRIVERS)
    if unknown:
        drivers = ', '.join(sorted({current[host] for host in unknown}))
        problems.append(f"{', '.join(unknown)} run the {drivers} driver, which this playbook does not switch from (only db and mc)")
    try:
        grace, down = int(grace), int(service_down_time)
    except (TypeError, ValueError):
        problems.append('nova_servicegroup_switch_grace and service_down_time must be integers (seconds)')
        grace, down = 0, 0
    if grace and grace <= down + int(report_interval or 0):
        problems.append(f'nova_servicegroup_switch_grace ({grace} s) must be longer than service_down_time + report_interval '
                        f'({down + int(report_interval or 0)} s); 0 switches off the widening (only safe when the writers move '
                        'within service_down_time)')
    moving = sorted(host for host, driver in (current or {}).items() if driver != target)
    widen = bool(grace) and any(host in moving for host in writer_hosts or [])
    return {'target': target, 'widen': widen, 'moving': moving, 'problems': problems,
            'phases': [dict(phase) for phase in SWITCH_PHASES if phase['name'] != 'widen' or widen]}


def _read_ini(text):
    parser = configparser.RawConfigParser(strict=False, interpolation=None, default_section='\x00none')
    parser.optionxform = str
    parser.read_string(text or '')
    values = {}
    for section in parser.sections():
        for option, value in parser.items(section):
            values[(section, option)] = value
    return values


def mask_value(option, value):
    """A nova.conf value as it may be shown: URLs with their passwords masked, secret-named options masked whole."""
    if _SECRET_OPTION.search(option or ''):
        return MASK if value else value
    if value and '://' in value:
        return mask_url(value)
    return value


def conf_changes(before, after):
    """The options that differ between two nova.conf texts, as lines ``[section] option: old -> new`` (secrets
    masked; a changed password shows as ``**** -> ****`` with the note that it changes)."""
    old, new = _read_ini(before), _read_ini(after)
    lines = []
    for key in sorted(set(old) | set(new)):
        section, option = key
        if old.get(key) == new.get(key):
            continue
        if key not in old:
            lines.append(f'+ [{section}] {option} = {mask_value(option, new[key])}')
        elif key not in new:
            lines.append(f'- [{section}] {option} = {mask_value(option, old[key])}')
        else:
            shown_old, shown_new = mask_value(option, old[key]), mask_value(option, new[key])
            note = ' (the secret changes)' if shown_old == shown_new else ''
            lines.append(f'~ [{section}] {option}: {shown_old} -> {shown_new}{note}')
    return lines


# -- credential rotation (playbooks/rotate_credentials.yml) ------------------------------------------------------------

def mysql_native_hash(password):
    """The mysql_native_password hash of ``password`` (``*`` + SHA1(SHA1(password)), upper-case hex), as MariaDB's
    PASSWORD() gives it: computed here so that the password itself never reaches a SQL command line."""
    import hashlib  # pylint: disable=import-outside-toplevel

    return '*' + hashlib.sha1(hashlib.sha1(str(password).encode('utf-8')).digest()).hexdigest().upper()


_USING = re.compile(r"\b(?:VIA|WITH|OR)\s+mysql_native_password\s+(?:USING|AS)\s+'(\*[0-9A-F]{40})'"
                    r"|\bIDENTIFIED\s+BY\s+PASSWORD\s+'(\*[0-9A-F]{40})'", re.I)


def account_hashes(show_create_user):
    """The mysql_native_password hashes an account accepts, from ``SHOW CREATE USER`` (MariaDB 10.4+ accepts several:
    ``IDENTIFIED VIA mysql_native_password USING '*A' OR mysql_native_password USING '*B'``)."""
    hashes = []
    for via, by in _USING.findall(show_create_user or ''):
        value = (via or by).upper()
        if value not in hashes:
            hashes.append(value)
    return hashes


def db_account_step(show_create_user, new_hash, phase):
    """What one database account needs in ``phase`` (``add``: before the roll; ``retire``: after it).

    MariaDB (10.4 and later; Debian 12 has 10.11) has no ``RETAIN CURRENT PASSWORD``, but an account may accept
    several authentications (``IDENTIFIED VIA ... OR ...``): before the roll the account accepts its current
    password(s) and the new one, so that a service still on the old nova.conf opens new pool connections while the
    hosts restart one by one; after the roll it accepts only the new one. Returns {action: none | alter, sql_auth:
    the IDENTIFIED clause (hashes only, never a password), accepted: the hashes accepted now, state: current |
    dual | old}.
    """
    accepted = account_hashes(show_create_user)
    new_hash = new_hash.upper()
    if accepted == [new_hash]:
        state = 'current'
    elif new_hash in accepted:
        state = 'dual'
    else:
        state = 'old'
    if phase == 'add':
        wanted = accepted if new_hash in accepted else accepted + [new_hash]
    elif phase == 'retire':
        wanted = [new_hash]
    else:
        raise ValueError(f'unknown phase {phase!r} (add, retire)')
    if wanted == accepted:
        return {'action': 'none', 'sql_auth': '', 'accepted': accepted, 'state': state}
    clause = 'IDENTIFIED VIA ' + ' OR '.join(f"mysql_native_password USING '{value}'" for value in wanted)
    return {'action': 'alter', 'sql_auth': clause, 'accepted': accepted, 'state': state}


def rotation_plan(hosts, selected, cell=None):
    """The accounts a credential rotation changes, and the refusals.

    ``hosts``: {host: {templates: bool, cell: the host's cell or None (API level), db: {user, password} or None,
    mq: {user, password} or None}} for every Nova host of the inventory (the new credentials, from the inventory);
    ``selected``: the hosts to roll (every host, or those of one cell). Refused: a deployment without template URLs
    (the cell mappings hold the passwords and would have to be written), a cell no host is in, one account with two
    different new passwords, and an account that hosts outside the selection use too (they would keep the old
    password, which the rotation retires). Returns {problems, hosts, database_accounts, rabbit_accounts}.
    """
    problems = []
    no_templates = sorted(host for host, spec in hosts.items() if not spec.get('templates'))
    if no_templates:
        named = ', '.join(no_templates[:5]) + (f' and {len(no_templates) - 5} more' if len(no_templates) > 5 else '')
        problems.append(f'the cell mappings hold full URLs with the passwords (nova_cell_url_templates is not true for {named}): '
                        'rotating would have to write them. Switch to template URLs first: set nova_cell_url_templates: true '
                        'and run nova.cells.deploy (it rewrites each cell mapping once, as a template), then rotate')
    if cell is not None and not selected:
        problems.append(f'no host is in cell {cell} (exact name; the per-cell hosts whose nova_cell_name is {cell})')
    accounts = {'db': {}, 'mq': {}}
    for host in sorted(hosts):
        for kind in ('db', 'mq'):
            account = hosts[host].get(kind)
            if account:
                accounts[kind].setdefault(account['user'], []).append((host, account['password']))
    labels = {'db': 'database', 'mq': 'RabbitMQ'}
    result = {'db': [], 'mq': []}
    for kind in ('db', 'mq'):
        for user, users in accounts[kind].items():
            names = [entry[0] for entry in users]
            in_selection = [host for host in names if host in selected]
            if not in_selection:
                continue
            passwords = {entry[1] for entry in users}
            if len(passwords) > 1:
                problems.append(f'the {labels[kind]} account {user} gets different passwords on '
                                f"{', '.join(names)}: one account has one password; give every host "
                                'that shares it the same new one, or give hosts their own account')
            outside = [host for host in names if host not in selected]
            if outside:
                problems.append(f"the {labels[kind]} account {user} is also used by {', '.join(outside)}, outside the hosts "
                                'being rotated: they would keep the old password, which the rotation retires. Rotate it '
                                "for every host (no nova_rotate_cell), or give the cell's hosts their own account")
            result[kind].append({'user': user, 'password': users[0][1], 'hosts': in_selection})
    return {'problems': problems, 'hosts': sorted(selected), 'database_accounts': result['db'], 'rabbit_accounts': result['mq']}
