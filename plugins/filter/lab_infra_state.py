# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
name: lab_infra_state
short_description: What a nova.cells test lab's infrastructure host already has, from one read
version_added: 0.2.0
description:
  - For the C(lab_infra) role (test labs only). The role reads the state of the infrastructure host in one process
    (systemd units, the files it manages, memcached's listen lines, each MariaDB's databases, accounts and grants,
    RabbitMQ's users, vhosts and permissions) and skips what is already in place; this filter parses that read.
  - "Input lines: C(unit NAME ACTIVE ENABLED), C(file PATH SHA1 OWNER GROUP MODE) (C(-) for each field of a missing
    file, C(dir) as the checksum of a directory), C(listen ADDRESS) (memcached), C(mysql SERVER db NAME),
    C(mysql SERVER user NAME), C(mysql SERVER grant GRANTEE SCHEMA), C(mysql SERVER up),
    C(rabbit user NAME), C(rabbit vhost NAME), C(rabbit perm VHOST USER ...), C(rabbit up), C(seed_rows SHA1) (the
    checksum of the rows the Keystone, Glance and Neutron seeding writes). Other lines are ignored."
  - "Returns C(units) (C({name: {active, enabled}})), C(files) (C({path: {sha1, owner, group, mode}}), only the files that
    exist), C(memcached_listen), C(mysql) (C({server: {databases, users, grants}}), only the servers that answered)
    and C(rabbit) (C({users, vhosts, permissions}), C(none) when RabbitMQ did not answer), C(seed_rows) (empty when
    not read). A grant is
    C('USER'@'%' SCHEMA), a permission C(VHOST USER)."
  - "With O(files), O(units), O(present), O(memcached_listen) and O(seed), also C(files_differ) (the paths of O(files)
    that are missing or differ, and the paths of O(present) that are missing), C(units_down) (the units of O(units) that
    are not active and enabled), C(memcached_ok), C(seed_ok), and C(in_place): true when nothing differs and nothing is
    missing, so that the role skips all its other tasks."
  - "And what is missing of what the lab needs: C(mysql_missing) (C({server: [what]}) for each of O(mysql_servers), empty
    when its databases, O(database_users) and their grants on those databases are in place) and C(rabbit_missing)
    (the missing O(rabbit_users), O(vhosts) and permissions of each of those users on each of those vhosts)."
author: nova.cells contributors (@nova-cells)
positional: mysql_servers, database_users, rabbit_users, vhosts
options:
  _input:
    description: The lines of the read (C(stdout_lines)).
    type: list
    elements: str
    required: true
  mysql_servers:
    description: "The MariaDB servers of the lab, C([{name, databases}])."
    type: list
    elements: dict
  database_users:
    description: The database accounts every lab database needs (names).
    type: list
    elements: str
  rabbit_users:
    description: The RabbitMQ users every vhost needs (names).
    type: list
    elements: str
  vhosts:
    description: The RabbitMQ vhosts of the lab.
    type: list
    elements: str
  files:
    description: "The files the role manages, C({path: {sha1, owner, group, mode}}) (C(sha1) V(dir) for a directory)."
    type: dict
  units:
    description: The systemd units that must be active and enabled.
    type: list
    elements: str
  present:
    description: Paths that must exist (their content is not compared).
    type: list
    elements: str
  memcached_listen:
    description: The listen addresses memcached must have (C(none) when the lab has no memcached).
    type: list
    elements: str
  seed:
    description: "The seeding stamp, C({path, digest}): it must hold the digest and the checksum of the seeded rows
      (line C(seed_rows) of the read)."
    type: dict
'''

EXAMPLES = r'''
- name: Parse what the infrastructure host has
  ansible.builtin.set_fact:
    _lab_infra_state: >-
      {{ _lab_infra_probe.stdout_lines
         | nova.cells.lab_infra_state([{'name': 'main', 'databases': ['nova_api']}], ['nova'], ['nova'], ['nova_api']) }}
'''

RETURN = r'''
_value:
  description: "C({units, files, memcached_listen, mysql, rabbit, seed_rows, mysql_missing, rabbit_missing, files_differ,
    units_down, memcached_ok, seed_ok, in_place})."
  type: dict
'''

import hashlib

from ansible.errors import AnsibleFilterError


def lab_infra_state(lines, mysql_servers=None, database_users=None, rabbit_users=None, vhosts=None, files=None, units=None,
                    present=None, memcached_listen=None, seed=None):
    if isinstance(lines, str):
        lines = lines.splitlines()
    if not isinstance(lines, (list, tuple)):
        raise AnsibleFilterError(f'nova.cells.lab_infra_state: expects the lines of the read, got {type(lines).__name__}')
    state = {'units': {}, 'files': {}, 'memcached_listen': [], 'mysql': {}, 'rabbit': None, 'seed_rows': ''}
    rabbit = {'users': [], 'vhosts': [], 'permissions': []}
    rabbit_up = False
    for line in lines:
        fields = str(line).split()
        if not fields:
            continue
        kind, rest = fields[0], fields[1:]
        if kind == 'unit' and len(rest) == 3:
            state['units'][rest[0]] = {'active': rest[1] == 'active', 'enabled': rest[2] == 'enabled'}
        elif kind == 'file' and len(rest) == 5 and rest[1] != '-':
            state['files'][rest[0]] = {'sha1': rest[1], 'owner': rest[2], 'group': rest[3], 'mode': rest[4].lstrip('0') or '0'}
        elif kind == 'seed_rows' and len(rest) == 1:
            state['seed_rows'] = rest[0]
        elif kind == 'listen' and len(rest) == 1:
            state['memcached_listen'].append(rest[0])
        elif kind == 'mysql' and len(rest) >= 2:
            server = state['mysql'].setdefault(rest[0], {'databases': [], 'users': [], 'grants': []})
            what, args = rest[1], rest[2:]
            if what == 'db' and len(args) == 1:
                server['databases'].append(args[0])
            elif what == 'user' and len(args) == 1:
                server['users'].append(args[0])
            elif what == 'grant' and len(args) == 2:
                server['grants'].append(' '.join(args))
        elif kind == 'rabbit' and rest:
            if rest[0] == 'up':
                rabbit_up = True
            elif rest[0] == 'user' and len(rest) == 2:
                rabbit['users'].append(rest[1])
            elif rest[0] == 'vhost' and len(rest) == 2:
                rabbit['vhosts'].append(rest[1])
            elif rest[0] == 'perm' and len(rest) >= 3:
                rabbit['permissions'].append(f'{rest[1]} {rest[2]}')
    if rabbit_up:
        state['rabbit'] = rabbit
    try:
        state['mysql_missing'] = {server['name']: _mysql_missing(state, server['name'], server.get('databases') or [],
                                                                 database_users or [])
                                  for server in mysql_servers or []}
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f'nova.cells.lab_infra_state: mysql_servers must be [{{name, databases}}]: {exc!r}') from None
    state['rabbit_missing'] = _rabbit_missing(state, rabbit_users or [], vhosts or [])
    try:
        state['files_differ'] = [path for path, wanted in (files or {}).items() if not _file_ok(state['files'].get(path), wanted)]
        state['files_differ'] += [path for path in present or [] if path not in state['files']]
        state['units_down'] = [name for name in units or [] if state['units'].get(name) != {'active': True, 'enabled': True}]
        state['memcached_ok'] = memcached_listen is None or state['memcached_listen'] == list(memcached_listen)
        state['seed_ok'] = seed is None or _seed_ok(state, seed['path'], seed['digest'])
    except (KeyError, TypeError, AttributeError) as exc:
        raise AnsibleFilterError(f'nova.cells.lab_infra_state: files must be {{path: {{sha1, owner, group, mode}}}}, '
                                 f'seed {{path, digest}}: {exc!r}') from None
    state['in_place'] = (not state['files_differ'] and not state['units_down'] and state['memcached_ok'] and state['seed_ok']
                         and not state['rabbit_missing'] and not any(state['mysql_missing'].values()))
    return state


def _file_ok(have, wanted):
    """Whether a file of the read is as wanted ({sha1, owner, group, mode}; sha1 "dir" for a directory)."""
    return have is not None and have == {'sha1': wanted['sha1'], 'owner': wanted['owner'], 'group': wanted['group'],
                                         'mode': str(wanted['mode']).lstrip('0') or '0'}


def _seed_ok(state, path, digest):
    """Whether the seeding stamp holds ``digest`` and the checksum of the seeded rows that the read found."""
    have = state['files'].get(path)
    wanted = hashlib.sha1(f"{digest} {state['seed_rows']}\n".encode()).hexdigest()  # a checksum, as the read's sha1sum
    return have is not None and bool(state['seed_rows']) and have['sha1'] == wanted


def _mysql_missing(state, server, databases, users):
    """What MariaDB ``server`` lacks of ``databases``, ``users`` and their grants; [] when all is in place."""
    have = (state or {}).get('mysql', {}).get(server)
    if have is None:
        return [f'MariaDB {server} did not answer']
    missing = [f'database {name}' for name in databases if name not in have['databases']]
    missing += [f'account {user}' for user in users if user not in have['users']]
    missing += [f'grant {user} {name}' for user in users for name in databases
                if f"'{user}'@'%' {name}" not in have['grants']]
    return missing


def _rabbit_missing(state, users, vhosts):
    """What RabbitMQ lacks of ``users``, ``vhosts`` and each user's permission on each vhost; [] when all is in place."""
    have = (state or {}).get('rabbit')
    if have is None:
        return ['RabbitMQ did not answer']
    missing = [f'user {user}' for user in users if user not in have['users']]
    missing += [f'vhost {vhost}' for vhost in vhosts if vhost not in have['vhosts']]
    missing += [f'permission {user} {vhost}' for user in users for vhost in vhosts
                if f'{vhost} {user}' not in have['permissions']]
    return missing


class FilterModule:
    def filters(self):
        return {'lab_infra_state': lab_infra_state}
