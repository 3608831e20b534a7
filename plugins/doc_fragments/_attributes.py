# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)

# Private to this collection: it may change at any time. Do not use it from other collections.

"""Attribute documentation shared by the nova.cells modules.

Every module uses one fragment with the attribute descriptions, its support levels and the action group:
``nova.cells._attributes.state`` (check mode, diff and idempotence, full), ``nova.cells._attributes.action``
(no diff) or ``nova.cells._attributes.info`` (read-only). A module with other levels or details overrides
them in its own ``attributes:``. ``nova.cells._attributes`` (the descriptions), ``.info_module`` and
``.actiongroup_cells`` are the older pieces, for modules that still combine them.
(The fragments are plain strings: ansible-test's yamllint reads them without running this file.)
"""

from __future__ import annotations


class ModuleDocFragment:

    # The attribute descriptions; each module states its support.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
"""

    # Modules that change state and show it as a diff; members of the action group.
    STATE = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: full
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
  action_group:
    description: Use C(group/nova.cells.cells) in C(module_defaults) to set defaults for this module.
    support: full
    membership: [nova.cells.cells]
"""

    # Modules that change state without a diff; members of the action group.
    ACTION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: none
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
  action_group:
    description: Use C(group/nova.cells.cells) in C(module_defaults) to set defaults for this module.
    support: full
    membership: [nova.cells.cells]
"""

    # Modules that only read; members of the action group.
    INFO = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return changed status prediction without modifying target.
    support: full
    details: [This action does not modify state.]
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in C(check_mode)), when in diff mode.
    support: N/A
    details: [This action does not modify state.]
  idempotent:
    description:
      - When run twice in a row outside check mode, with the same arguments, the second invocation indicates no change.
      - This assumes that the system controlled/queried by the module has not changed in a relevant way.
    support: full
    details: [This action does not modify state.]
  action_group:
    description: Use C(group/nova.cells.cells) in C(module_defaults) to set defaults for this module.
    support: full
    membership: [nova.cells.cells]
"""

    # Support levels of modules that only read (use together with DOCUMENTATION).
    INFO_MODULE = r"""
options: {}
attributes:
  check_mode: {support: full, details: [This action does not modify state.]}
  diff_mode: {support: N/A, details: [This action does not modify state.]}
  idempotent: {support: full, details: [This action does not modify state.]}
"""

    # Membership of the action group set in meta/runtime.yml.
    ACTIONGROUP_CELLS = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/nova.cells.cells) in C(module_defaults) to set defaults for this module.
    support: full
    membership: [nova.cells.cells]
"""
