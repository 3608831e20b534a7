# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Options every nova.cells module shares (plugins/module_utils/_module.py common_argument_spec).
    DOCUMENTATION = r'''
options:
  config_files:
    description:
      - The nova.conf files to read, in order; a later file wins, as with repeated C(--config-file).
      - The same files are passed to C(nova-manage), so templates in cell mappings render exactly as nova-manage renders them.
      - Passwords found in these files are masked in every output of the module.
    type: list
    elements: path
    default: [/etc/nova/nova.conf]
  nova_manage:
    description:
      - The command that runs C(nova-manage), as a list; for a containerised Nova use for example
        V([podman, exec, nova_api, nova-manage]).
      - The module sets C(OS_DEFAULT__USE_STDERR=true) (and the fail-fast settings) in the environment of this command.
        A container runtime does not pass them on by itself; use for example
        V([podman, exec, -e, OS_DEFAULT__USE_STDERR, -e, OS_DATABASE__MAX_RETRIES, -e, OS_API_DATABASE__MAX_RETRIES, nova_api, nova-manage]).
    type: list
    elements: str
    default: [nova-manage]
  api_database_connection:
    description:
      - The API database URL (C(mysql+pymysql://user:password@host/nova_api)) used to read cell, host and instance mappings.
      - Defaults to C([api_database]/connection) from O(config_files).
    type: str
  database_connect_timeout:
    description:
      - Seconds to wait for a database connection before failing.
    type: int
    default: 10
  fail_fast:
    description:
      - Run C(nova-manage) with C([database]/max_retries=0) and C([api_database]/max_retries=0) so a database outage
        fails within seconds instead of after about 100 seconds of retries.
    type: bool
    default: true
requirements:
  - PyMySQL on the managed host (python3-pymysql)
notes:
  - Database passwords are never part of the module's results, diffs, warnings or errors; URLs are shown with C(****) in place of the password.
'''

    # Modules that read no database (database_options = False in the base class), e.g. nova.cells.servicegroup.
    WITHOUT_DATABASE = r'''
options:
  config_files:
    description:
      - Accepted so that C(module_defaults) for the action group C(group/nova.cells.cells) can set it for every module; a
        module that reads no database does not read these files.
    type: list
    elements: path
    default: [/etc/nova/nova.conf]
  nova_manage:
    description:
      - The command that runs C(nova-manage), as a list. Its Python interpreter (the shebang of a single script) tells
        which Nova release is installed; a command such as V([podman, exec, nova_api, nova-manage]) is asked for
        C(--version) instead.
    type: list
    elements: str
    default: [nova-manage]
'''

    # Modules that use neither option (nova_conf_file, systemd_units) but are in the action group.
    UNUSED_GROUP_OPTIONS = r'''
options:
  config_files:
    description:
      - Not used. Accepted, as by every member of the action group, so that C(module_defaults) for
        C(group/nova.cells.cells) can set it for every module.
    type: list
    elements: path
    default: [/etc/nova/nova.conf]
  nova_manage:
    description:
      - Not used. Accepted, as by every member of the action group, so that C(module_defaults) for
        C(group/nova.cells.cells) can set it for every module.
    type: list
    elements: str
    default: [nova-manage]
'''
