"""Lab-only sampler of the compute API's service list (run by side_effect_switch_servicegroup.yml on the controller).

Asks nova-api for `openstack compute service list` (openstacksdk, cloud "lab" of /etc/openstack/clouds.yaml, one
session) about once a second until the stop file exists, and writes one JSON line per sample: the time, the number of
services, and those reported down; a request that fails (nova-api restarting) is written as an error, not as a sample.
Usage: python service_sampler.py OUTPUT STOPFILE
"""

import json
import os
import sys
import time

import openstack


def main(output, stop):
    conn = openstack.connect(cloud='lab')
    with open(output, 'a', encoding='utf-8') as out:
        while not os.path.exists(stop):
            started = time.time()
            try:
                services = list(conn.compute.services())
                record = {'t': started, 'services': len(services),
                          'down': sorted(f'{service.binary}@{service.host}' for service in services if service.state == 'down')}
            except Exception as exc:  # nova-api restarting: record it and go on
                record = {'t': started, 'error': type(exc).__name__}
            out.write(json.dumps(record) + '\n')
            out.flush()
            time.sleep(max(0.0, 1.0 - (time.time() - started)))


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
