# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Cell lookup and presentation shared by the cell modules.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
"""

from __future__ import annotations

import re

from ansible_collections.nova.cells.plugins.module_utils._databases import CELL0_UUID
from ansible_collections.nova.cells.plugins.module_utils._module import NovaCellsError
from ansible_collections.nova.cells.plugins.module_utils._urls import mask_url

CELL0_NAME = 'cell0'
# service_status's pseudo-cell for the services of [database]/connection when there are no cell mappings to read.
LOCAL_CELL_NAME = '(database)'
UUID_PATTERN = re.compile(r'^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')
NAME_MAX_LENGTH = 255  # cell_mappings.name and host_mappings.host are VARCHAR(255)
# Characters that shells, globs and templates interpret. Nova stores any string, but a name with them is a
# typo or an injection attempt, and it would break every script that reads cell and host names back.
UNSAFE_NAME_CHARACTERS = frozenset('`$;&|<>()\\\'"*?[]{}!')


def validate_name(value, what='cell name'):
    if not isinstance(value, str) or not value.strip():
        raise NovaCellsError(f'the {what} is empty; give a name such as cell1')
    if value != value.strip():
        raise NovaCellsError(f'the {what} {value!r} has leading or trailing white space; Nova would store it verbatim')
    if len(value) > NAME_MAX_LENGTH:
        raise NovaCellsError(f'the {what} is {len(value)} characters long; Nova stores at most {NAME_MAX_LENGTH}')
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise NovaCellsError(f'the {what} {value!r} contains control characters')
    unsafe = sorted(set(value) & UNSAFE_NAME_CHARACTERS)
    if unsafe:
        raise NovaCellsError('the {} {!r} contains {}, which shells and scripts interpret; use letters, digits, '
                             "'.', '-' and '_'".format(what, value, ' '.join(unsafe)))


def validate_uuid(value, what='cell uuid'):
    if not isinstance(value, str) or not UUID_PATTERN.match(value.lower()):
        raise NovaCellsError(f'{value!r} is not a valid {what}; expected the form 8-4-4-4-12 hexadecimal digits')
    return value.lower()


def public_cell(cell):
    """What a module may return about a cell: URLs masked, templates kept as templates."""
    if cell is None:
        return {}
    return {
        'uuid': cell['uuid'],
        'name': cell['name'],
        'transport_url': mask_url(cell['transport_url']),
        'database_connection': mask_url(cell['database_connection']),
        'disabled': bool(cell['disabled']),
    }


def find_cell(cells, name=None, uuid=None):
    """The one cell with this uuid, or with exactly this name; fails on duplicate names."""
    if uuid is not None:
        matches = [cell for cell in cells if cell['uuid'] == uuid]
        return matches[0] if matches else None
    matches = [cell for cell in cells if cell['name'] == name]
    if len(matches) > 1:
        uuids = [cell['uuid'] for cell in matches]
        raise NovaCellsError(
            f'cell name {name!r} is used by {len(matches)} cell mappings ({", ".join(uuids)}); Nova does not keep names unique, '
            'this collection does. Delete the duplicates you do not want (nova.cells.cell with uuid=... state=absent) or rename '
            'them (nova.cells.cell uuid=... name=...), then run again.',
            duplicates=uuids)
    return matches[0] if matches else None


def require_cell(cells, name):
    """A cell by exact name for modules that act inside a cell; clear error when it is unknown."""
    if name == CELL0_NAME:
        raise NovaCellsError('cell0 holds no hosts and no schedulable instances; name a regular cell')
    cell = find_cell(cells, name=name)
    if cell is None:
        known = ', '.join(repr(c['name']) for c in cells if c['uuid'] != CELL0_UUID) or 'none'
        raise NovaCellsError(f'there is no cell named {name!r} (known cells: {known}); create it with nova.cells.cell first')
    return cell


def regular_cells(cells):
    return [cell for cell in cells if cell['uuid'] != CELL0_UUID]


def select_by_name(cells, names):
    """The cells named ``names`` (exact names, in that order); fails on an unknown or duplicated name."""
    selected = []
    for name in names:
        cell = find_cell(cells, name=name)
        if cell is None:
            raise NovaCellsError('there is no cell named {!r} (known cells: {})'.format(name, ', '.join(repr(c['name']) for c in cells) or 'none'))
        selected.append(cell)
    return selected


def local_cell(database_url):
    """A pseudo-cell for the services in ``database_url`` (no cell mapping: before cells v2, or no API database)."""
    return {'id': None, 'uuid': None, 'name': LOCAL_CELL_NAME, 'transport_url': None, 'database_connection': database_url,
            'disabled': False}


def select_service_cells(load_cells, names=None, local_url=None, api_database=True):
    """The cells whose services to read: the named ones, else every regular cell.

    Without an API database (``api_database`` false) and without names, or when the API database maps no
    regular cell yet (cells v2 was optional before Ocata), the services of ``local_url`` ([database]/connection)
    are read as the pseudo-cell LOCAL_CELL_NAME. ``load_cells()`` returns the cell mappings.
    """
    if not api_database and local_url and not names:
        return [local_cell(local_url)]
    cells = load_cells()
    if names:
        return select_by_name(cells, names)
    real = regular_cells(cells)
    if not real and local_url:
        return [local_cell(local_url)]
    return real
