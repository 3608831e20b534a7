"""The lab's compute API client for the verification (openstacksdk, one process per step).

Run on an API host with the openstackclient venv: /opt/osc/bin/python lab_cloud.py < request.json
(cloud "lab" of /etc/openstack/clouds.yaml). The request is {"action": ..., ...}:

  setup   {"flavor": {"name", "vcpus", "ram", "disk", "ephemeral"}, "zones": {"az": ["host", ...]}}
          a flavor, unlimited compute quotas for the admin project, and one host aggregate per
          availability zone (operators steer servers into a cell this way: one zone per cell);
          idempotent.
  boot    {"servers": [{"name", "az"}], "flavor", "image", "timeout"}
          POSTs every server first, then polls them together (0.5 s) until ACTIVE or ERROR.
  delete  {"prefix"}  deletes the servers whose name starts with prefix and waits until they are gone.
  servers {"microversion", "query"}  GET /servers/detail at that microversion, raw (openstackclient
          always sends deleted=False, a filter, so Nova never returns its down-cell records to it).
  show    {"ids": [...]}  GET /servers/{id} for each; the status code and the server's status.
  get     {"requests": [{"name", "path", "microversion"}]}  raw GETs in one process (a down cell's partial
          records): per name the status code and the servers ({id, name, status}), services ({binary, host,
          status, state}) or server ({id, name, status}) of the answer.

Prints one JSON document; times are measured here (time.monotonic()).
"""

import json
import sys
import time

import openstack


def conn_():
    return openstack.connect(cloud='lab')


def setup(conn, req):
    out = {'created': []}
    f = req['flavor']
    flavor = conn.compute.find_flavor(f['name'])
    if flavor is None:
        conn.compute.create_flavor(name=f['name'], vcpus=f.get('vcpus', 1), ram=f.get('ram', 64),
                                   disk=f.get('disk', 1), ephemeral=f.get('ephemeral', 0))
        out['created'].append(f'flavor {f["name"]}')
    # No quota in the way of the checks (Nova's default is 10 instances per project).
    quotas = conn.get_compute_quotas(conn.current_project_id)
    if quotas.instances != -1 or quotas.cores != -1 or quotas.ram != -1:
        conn.set_compute_quotas(conn.current_project_id, instances=-1, cores=-1, ram=-1)
        out['created'].append('unlimited compute quotas')
    aggregates = {a.name: a for a in conn.compute.aggregates()}
    for zone, hosts in req.get('zones', {}).items():
        agg = aggregates.get(zone)
        if agg is None:
            agg = conn.compute.create_aggregate(name=zone, availability_zone=zone)
            out['created'].append(f'aggregate {zone}')
        for host in hosts:
            if host not in (agg.hosts or []):
                agg = conn.compute.add_host_to_aggregate(agg, host)
                out['created'].append(f'{host} in {zone}')
    out['zones'] = {a.name: sorted(a.hosts or []) for a in conn.compute.aggregates()}
    return out


def boot(conn, req):
    flavor = conn.compute.find_flavor(req['flavor'], ignore_missing=False)
    image = conn.image.find_image(req['image'], ignore_missing=False)
    start = time.monotonic()
    pending = {}
    for spec in req['servers']:
        kwargs = {'name': spec['name'], 'flavor_id': flavor.id, 'image_id': image.id, 'networks': 'none'}
        if spec.get('az'):
            kwargs['availability_zone'] = spec['az']
        server = conn.compute.create_server(**kwargs)
        pending[server.id] = spec
    posted = time.monotonic() - start
    results = {}
    deadline = start + float(req.get('timeout', 180))
    while pending and time.monotonic() < deadline:
        for sid in list(pending):
            server = conn.compute.get_server(sid)
            if server.status in ('ACTIVE', 'ERROR'):
                results[sid] = {'name': server.name, 'id': sid, 'status': server.status,
                                'host': server.compute_host, 'az': server.availability_zone,
                                'fault': (server.fault or {}).get('message', ''),
                                'seconds': round(time.monotonic() - start, 2)}
                del pending[sid]
        if pending:
            time.sleep(0.5)
    for sid, spec in pending.items():
        results[sid] = {'name': spec['name'], 'id': sid, 'status': 'TIMEOUT', 'host': None, 'az': spec.get('az'),
                        'fault': '', 'seconds': None}
    return {'servers': sorted(results.values(), key=lambda r: r['name']), 'post_seconds': round(posted, 2),
            'seconds': round(time.monotonic() - start, 2)}


def delete(conn, req):
    start = time.monotonic()
    victims = [s for s in conn.compute.servers() if s.name.startswith(req['prefix'])]
    for server in victims:
        conn.compute.delete_server(server)
    for server in victims:
        conn.compute.wait_for_delete(server, interval=0.5, wait=120)
    return {'deleted': sorted(s.name for s in victims), 'seconds': round(time.monotonic() - start, 2)}


def servers(conn, req):
    headers = {'OpenStack-API-Version': f'compute {req["microversion"]}'} if req.get('microversion') else {}
    resp = conn.compute.get('/servers/detail' + req.get('query', ''), headers=headers, raise_exc=False)
    body = {}
    try:
        body = resp.json()
    except ValueError:
        pass
    found = [{'id': s['id'], 'name': s.get('name'), 'status': s.get('status')} for s in body.get('servers', [])]
    return {'code': resp.status_code, 'servers': found,
            'error': '' if resp.ok else json.dumps(body)[:300]}


def show(conn, req):
    out = []
    for sid in req['ids']:
        resp = conn.compute.get(f'/servers/{sid}', raise_exc=False)
        status = resp.json().get('server', {}).get('status') if resp.ok else None
        out.append({'id': sid, 'code': resp.status_code, 'status': status})
    return {'servers': out}


def get(conn, req):
    out = {}
    for item in req['requests']:
        headers = {'OpenStack-API-Version': f'compute {item["microversion"]}'} if item.get('microversion') else {}
        resp = conn.compute.get(item['path'], headers=headers, raise_exc=False)
        try:
            body = resp.json()
        except ValueError:
            body = {}
        result = {'code': resp.status_code, 'error': '' if resp.ok else json.dumps(body)[:300]}
        if 'servers' in body:
            result['servers'] = [{'id': s['id'], 'name': s.get('name'), 'status': s.get('status')} for s in body['servers']]
        if 'services' in body:
            result['services'] = [{'binary': s.get('binary'), 'host': s.get('host'), 'status': s.get('status'),
                                   'state': s.get('state')} for s in body['services']]
        if 'server' in body:
            result['server'] = {'id': body['server'].get('id'), 'name': body['server'].get('name'),
                                'status': body['server'].get('status')}
        out[item['name']] = result
    return out


ACTIONS = {'setup': setup, 'boot': boot, 'delete': delete, 'servers': servers, 'show': show, 'get': get}


def wait_for_api(conn, seconds=180):
    """nova-api may be restarting (the cells refresh restarts it): wait until it answers."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            conn.compute.get('/', raise_exc=False)
            return
        except Exception:  # pylint: disable=broad-except  # keystoneauth's ConnectFailure and the like
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def main():
    req = json.load(sys.stdin)
    conn = conn_()
    wait_for_api(conn)
    print(json.dumps(ACTIONS[req['action']](conn, req)))


if __name__ == '__main__':
    main()
