"""Lab-only: what each restart of this host's Nova units cost, from the journal since a time (run by
side_effect_rotate_credentials.yml on every Nova host after the rotations).

Per unit: restarts; stop_max, the longest stop (systemd's "Stopping <unit>" to "Stopped <unit>": Nova's graceful
shutdown); start_max, the longest start (systemd's "Started <unit>" to Nova's "Starting <topic> node": the service
has imported its code and read nova.conf); lost_heartbeat_calls, the times nova-compute logged "Lost connection to
nova-conductor for reporting service status" (a heartbeat call that got no answer within rpc_response_timeout).
Usage: python3 restart_figures.py SINCE_EPOCH  (prints one JSON object, {unit: {...}})
"""

import json
import re
import subprocess
import sys

_STARTING = re.compile(r'Starting [a-z-]+ node')


def main(since):
    lines = subprocess.run(['journalctl', '--no-pager', '-o', 'json', '--since', f'@{since}', '-u', 'nova-*'],
                           check=True, capture_output=True, text=True).stdout.splitlines()
    units, stopping, started = {}, {}, {}
    for line in lines:
        entry = json.loads(line)
        message = entry.get('MESSAGE')
        if not isinstance(message, str):
            continue
        unit = (entry.get('UNIT') or entry.get('_SYSTEMD_UNIT') or '').removesuffix('.service')
        if not unit.startswith('nova-'):
            continue
        moment = int(entry['__REALTIME_TIMESTAMP']) / 1e6
        figures = units.setdefault(unit, {'restarts': 0, 'stop_max': 0.0, 'start_max': 0.0, 'lost_heartbeat_calls': 0})
        if 'UNIT' in entry and message.startswith('Stopping '):
            stopping[unit] = moment
        elif 'UNIT' in entry and message.startswith('Stopped ') and unit in stopping:
            figures['stop_max'] = round(max(figures['stop_max'], moment - stopping.pop(unit)), 1)
        elif 'UNIT' in entry and message.startswith('Started '):
            figures['restarts'] += 1
            started[unit] = moment
        elif _STARTING.search(message) and unit in started:
            figures['start_max'] = round(max(figures['start_max'], moment - started.pop(unit)), 1)
        elif 'Lost connection to nova-conductor for reporting service status' in message:
            figures['lost_heartbeat_calls'] += 1
    print(json.dumps({unit: figures for unit, figures in sorted(units.items()) if figures['restarts'] or figures['lost_heartbeat_calls']}))


if __name__ == '__main__':
    main(sys.argv[1])
