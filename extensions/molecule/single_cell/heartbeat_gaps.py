"""Lab-only: the heartbeat gaps of Nova's services, from samples of the cell database (standard input).

Each input line, as the side effect's sampling loop on the infrastructure host writes it about twice a second:
`<now epoch> <host> <binary> <last_seen_up epoch>` (`SELECT UNIX_TIMESTAMP(NOW(6)), host, binary,
UNIX_TIMESTAMP(last_seen_up) FROM services`). Prints one JSON object: per service (`binary@host`), the longest time
between two heartbeats (consecutive distinct last_seen_up values, or from the last one to the end of the samples),
which is what decides "down" with the db driver (a gap longer than service_down_time), and the samples read.
"""

import json
import sys


def main():
    previous, gaps, samples, last_t = {}, {}, 0, None
    for line in sys.stdin:
        fields = line.split()
        if len(fields) != 4 or 'NULL' in fields:
            continue
        try:
            now, beat = float(fields[0]), float(fields[3])
        except ValueError:
            continue
        samples += 1
        name = f'{fields[2]}@{fields[1]}'
        if name in previous and beat > previous[name]:
            gaps[name] = max(gaps.get(name, 0.0), beat - previous[name])
        previous[name] = max(beat, previous.get(name, beat))
        last_t = now
    for name, beat in previous.items():
        gaps[name] = max(gaps.get(name, 0.0), last_t - beat)
    result = {'samples': samples, 'gaps': {name: round(gap, 1) for name, gap in sorted(gaps.items())}}
    result['longest'] = max(result['gaps'].values() or [0.0])
    print(json.dumps(result))


if __name__ == '__main__':
    main()
