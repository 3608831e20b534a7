"""Lab-only: the figures of service_sampler.py's output (JSON lines on standard input) as one JSON object.

max_down: the most services reported down in one sample; down_seconds: per service, the longest run of consecutive
samples that reported it down (first to last such sample, plus one sampling interval); errors: requests that failed
(nova-api restarting); samples; span (seconds from the first to the last sample).
"""

import itertools
import json
import sys


def main():
    records = [json.loads(line) for line in sys.stdin if line.strip()]
    samples = [record for record in records if 'error' not in record]
    longest, since, last_t = {}, {}, None
    for record in samples:
        down = set(record['down'])
        for name in list(since):
            if name not in down:
                longest[name] = max(longest.get(name, 0.0), (last_t - since.pop(name)) + 1.0)
        for name in down:
            since.setdefault(name, record['t'])
        last_t = record['t']
    for name, start in since.items():
        longest[name] = max(longest.get(name, 0.0), (last_t - start) + 1.0)
    result = {
        'samples': len(samples),
        'errors': len(records) - len(samples),
        'span': round(records[-1]['t'] - records[0]['t'], 1) if records else 0,
        'max_down': max([len(record['down']) for record in samples] or [0]),
        'down_seconds': {name: round(value, 1) for name, value in sorted(longest.items())},
        'longest_down': round(max(longest.values() or [0.0]), 1),
        'max_gap': round(max([b['t'] - a['t'] for a, b in itertools.pairwise(samples)] or [0.0]), 1),
    }
    print(json.dumps(result))


if __name__ == '__main__':
    main()
