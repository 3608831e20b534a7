"""A converged `nova.cells.cell` run against one `nova-manage cell_v2 list_cells`, side by side.

Run: $NOVA_CELLS_HOME/venv-ctl/bin/python benchmarks/cell_noop.py [--rounds N]

It starts a private lab (MariaDB only, real nova-manage 34.0.0 from $NOVA_CELLS_HOME/venv-nova),
syncs an API database, creates cell1 once, then alternates the two measurements so that load on
the machine affects both alike, and prints medians and the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / 'tests' / 'integration'))

from harness import AnsibleRunner, Lab  # the test lab lives with the tests


def timed(action):
    started = time.monotonic()
    result = action()
    return time.monotonic() - started, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rounds', type=int, default=5)
    options = parser.parse_args()

    lab = Lab.create()
    try:
        lab.create_database('nova_api')
        lab.create_database('nova_cell1')
        conf = lab.write_config('bench-api', {
            'DEFAULT': {'transport_url': lab.transport_url('cell1')},
            'api_database': {'connection': lab.db_url('nova_api')},
            'database': {'connection': lab.db_url('nova_cell1')},
        })
        lab.nova_manage('api_db', 'sync', config_files=[conf]).check()
        runner = AnsibleRunner(lab.dir / 'ansible')
        args = {'name': 'cell1', 'database_connection': lab.db_url('nova_cell1'), 'transport_url': lab.transport_url('cell1'),
                'config_files': [str(conf)], 'nova_manage': lab.nova_manage_command}
        created = runner.run_module('cell', args)
        assert created.changed, created.result

        module_times, manage_times = [], []
        for _round in range(options.rounds):
            seconds, result = timed(lambda: runner.run_module('cell', args))
            assert not result.changed and result['commands'] == [], result.result
            module_times.append(seconds)
            seconds, listing = timed(lambda: lab.nova_manage('cell_v2', 'list_cells', config_files=[conf]))
            listing.check()
            manage_times.append(seconds)

        module_median = statistics.median(module_times)
        manage_median = statistics.median(manage_times)
        print(f'{"measurement":<58} {"median s":>9} {"min s":>7} {"max s":>7}')
        print(f'{"nova.cells.cell, converged (ansible ad-hoc, whole run)":<58} {module_median:9.2f} '
              f'{min(module_times):7.2f} {max(module_times):7.2f}')
        print(f'{"nova-manage cell_v2 list_cells (one call)":<58} {manage_median:9.2f} '
              f'{min(manage_times):7.2f} {max(manage_times):7.2f}')
        print(f'{"ratio list_cells / converged cell run":<58} {manage_median / module_median:9.2f}x')
        print(f'rounds: {options.rounds}')
    finally:
        lab.close()


if __name__ == '__main__':
    main()
