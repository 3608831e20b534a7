"""Run one nova.cells module as its own process, the way Ansible runs it on the managed host, and time its parts.

Usage (by benchmarks/scale.py): python module_process.py MODULE ARGS_JSON TIMINGS_JSON
with PYTHONPATH containing a directory ``ansible_collections/nova/cells`` (the collection).

The module reads its arguments from ARGS_JSON (``{"ANSIBLE_MODULE_ARGS": {...}}``), exactly as from AnsiballZ,
and prints its result on stdout. TIMINGS_JSON receives ``imports`` (Python, ansible.module_utils and the
module's imports) and ``work`` (from AnsibleModule's argument parsing to exit_json, output included).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import importlib
import json
import os
import sys


def main():
    module_name, args_path, timings_path = sys.argv[1:4]
    module = importlib.import_module('ansible_collections.nova.cells.plugins.modules.' + module_name)
    imported = time.perf_counter()
    sys.argv = [module.__file__, args_path]
    code = 0
    profile_path = os.environ.get('NOVA_CELLS_BENCH_PROFILE')   # a cProfile dump of the module's work, for digging
    profiler = None
    if profile_path:
        import cProfile
        profiler = cProfile.Profile()
        profiler.enable()
    try:
        module.main()
    except SystemExit as exc:
        code = exc.code or 0
    finished = time.perf_counter()
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile_path)
    with open(timings_path, 'w', encoding='utf-8') as handle:
        json.dump({'imports': imported - STARTED, 'work': finished - imported}, handle)
    sys.stdout.flush()
    return code


if __name__ == '__main__':
    sys.exit(main())
