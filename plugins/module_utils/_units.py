# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""systemd units as the collection reads them: `systemctl show` output, and whether a unit is enabled and running.

Used by nova.cells.systemd_units (which enables and starts what is not) and nova.cells.nova_conf_file (which reports
it, so that a playbook can skip the start step where everything runs). Standard library only.
"""

from __future__ import annotations

# The UnitFileState values for which `systemctl is-enabled` exits 0 (systemctl(1)), and the ActiveState values that
# ansible.builtin.systemd_service takes as running.
ENABLED = frozenset({'enabled', 'enabled-runtime', 'static', 'indirect', 'alias', 'generated', 'transient'})
RUNNING = frozenset({'active', 'activating', 'reloading'})
PROPERTIES = ('Id', 'LoadState', 'UnitFileState', 'ActiveState')


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
        key, sep, value = line.partition('=')
        current[key] = value if sep else ''
    if current:
        units.append(current)
    return units


def parse_show(text, count):
    """The property blocks of `systemctl show -p ... UNIT...`, one per unit in order; fails unless there are count."""
    blocks = parse_systemctl_show(text)
    if len(blocks) != count:
        raise ValueError(f'systemctl show gave {len(blocks)} unit(s) for {count}')
    return blocks


def plan(names, blocks, enabled, state):
    """(missing units, [(name, properties, actions)]): what to do per unit; actions are 'enable' and 'start', in that order."""
    missing, steps = [], []
    for name, props in zip(names, blocks, strict=True):
        if props.get('LoadState') == 'not-found':
            missing.append(name)
            continue
        actions = []
        if enabled and props.get('UnitFileState') not in ENABLED:
            actions.append('enable')
        if state == 'started' and props.get('ActiveState') not in RUNNING:
            actions.append('start')
        steps.append((name, props, actions))
    return missing, steps


def units_down(names, blocks):
    """The units of ``names`` that nova.cells.systemd_units would enable or start, or that are not installed."""
    missing, steps = plan(names, blocks, True, 'started')
    return [name for name in names if name in missing or any(step[0] == name and step[2] for step in steps)]
