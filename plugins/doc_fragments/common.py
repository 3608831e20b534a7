# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations


class ModuleDocFragment:
    # Options every nova.cells module shares (plugins/module_utils/_module.py common_argument_spec).
    _FILES = r'''
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
'''
    _DATABASE = r'''
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
'''
    _DATABASE_NOTES = r'''
requirements:
  - PyMySQL on the managed host (python3-pymysql)
notes:
  - Database passwords are never part of the module's results, diffs, warnings or errors; URLs are shown with C(****) in place of the password.
'''

    DOCUMENTATION = 'options:' + _FILES + _DATABASE + _DATABASE_NOTES

    # Modules that read no database (database_options = False in the base class): the files and nova-manage only.
    WITHOUT_DATABASE = 'options:' + _FILES
