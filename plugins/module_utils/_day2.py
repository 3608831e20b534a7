# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Decisions of the day-2 playbooks that roll a nova.conf change through running services.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Pure functions, no I/O and no Ansible imports: the ``nova.cells.day2`` filter exposes them to
``playbooks/switch_servicegroup.yml`` and ``playbooks/rotate_credentials.yml``; the unit tests call them directly.

- ``stale_units``: which running units still run on an older nova.conf (they started before it was last written),
  so that a run interrupted between writing the file and restarting the service restarts it the next time, and a
  second run restarts nothing.
- ``switch_plan``: the order in which a ServiceGroup driver change (db <-> mc) reaches the services (see the
  docstring of ``switch_plan`` for the reasoning from Nova 34's code).
- ``conf_changes``: what changes between two nova.conf texts, every secret masked (the nova_conf role writes the file
  with no_log, so ``--check --diff`` shows these lines instead).
"""

from __future__ import annotations

import configparser
import datetime
import re

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


def parse_systemctl_show(text):
    """``systemctl show -p Id -p ActiveState -p ActiveEnterTimestamp UNIT...`` output as [{Id, ActiveState, ...}]."""
    units, current = [], {}
    for line in (text or '').splitlines():
        line = line.strip()
        if not line:
            if current:
                units.append(current)
            current = {}
            continue
        key, _, value = line.partition('=')
        current[key] = value
    if current:
        units.append(current)
    return units


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
