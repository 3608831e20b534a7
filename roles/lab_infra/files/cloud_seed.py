# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Seed the lab's Keystone, Glance and Neutron in one process (nova.cells.lab_infra, lab only).

Reads one JSON document on stdin (it holds the passwords, so never on the command line)::

    {"auth": {"auth_url", "username", "password", "project_name", "user_domain_name", "project_domain_name"},
     "region": "RegionOne", "service_project": "service", "roles": ["admin", "service"],
     "users": [{"name", "password"}],                      # service users, each gets every role in service
     "services": [{"name", "type", "description", "url"}], # one public and one internal endpoint each
     "image": {"name", "size_mib"} | null, "network": {"name", "subnet", "cidr"} | null,
     "wait_seconds": 300}   # for each service to answer

and creates what is missing: the service project, the roles, the users (a password that differs is
reset), their role assignments, the services and endpoints, a tiny raw image in Glance and a
network with a subnet in Neutron. Idempotent. Prints ``{"changed": [...], "seconds": {...}}``;
exits 1 with a message on stderr when something fails. One process instead of one ``openstack``
command per object: the CLI's start-up (about 1.5 s each) made seeding the slowest part of the lab.
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import openstack


def wait_for(what, probe, seconds):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            return probe()
        except Exception as exc:  # pylint: disable=broad-except  # the service is still starting
            last = exc
            time.sleep(1)
    raise RuntimeError(f'{what} did not answer in time: {last}')


def password_ok(session, auth_url, name, password, project):
    """One POST /v3/auth/tokens: does this password open this user's project?"""
    body = {'auth': {'identity': {'methods': ['password'], 'password': {'user': {
        'name': name, 'domain': {'name': 'Default'}, 'password': password}}},
        'scope': {'project': {'name': project, 'domain': {'name': 'Default'}}}}}
    resp = session.post(auth_url.rstrip('/') + '/auth/tokens', json=body, authenticated=False, raise_exc=False,
                        log=False)
    return resp.status_code == 201


def main():
    spec = json.load(sys.stdin)
    auth = spec['auth']
    region = spec.get('region', 'RegionOne')
    changed = []
    seconds = {}
    start = time.monotonic()
    wait = float(spec.get('wait_seconds', 300))
    conn = openstack.connect(auth=auth, region_name=region, identity_api_version='3', interface='public')
    wait_for('Keystone', conn.authorize, wait)
    seconds['keystone_up'] = round(time.monotonic() - start, 1)
    idn = conn.identity

    domain = idn.find_domain('default') or idn.find_domain('Default')
    # The independent reads at once (about 0.3 s each on a busy machine).
    with ThreadPoolExecutor(max_workers=5) as pool:
        reads = [pool.submit(idn.find_project, spec.get('service_project', 'service'), domain_id=domain.id),
                 pool.submit(lambda: list(idn.roles())), pool.submit(lambda: list(idn.users(domain_id=domain.id))),
                 pool.submit(lambda: list(idn.endpoints())), pool.submit(lambda: list(idn.services()))]
        project, all_roles, all_users, endpoints, services = (read.result() for read in reads)
    if project is None:
        project = idn.create_project(name=spec.get('service_project', 'service'), domain_id=domain.id,
                                     description='Service users of the nova.cells lab')
        changed.append(f'project {project.name}')
    roles = {}
    existing_roles = {r.name: r for r in all_roles}
    for name in spec.get('roles', ['admin', 'service']):
        role = existing_roles.get(name)
        if role is None:
            role = idn.create_role(name=name)
            changed.append(f'role {name}')
        roles[name] = role
    # One listing each of users and role assignments, then one token request per user: each
    # request costs (Keystone's policy checks), and the machine may be busy.
    users = {u.name: u for u in all_users}
    assigned = {(a.user['id'], a.role['id']) for a in idn.role_assignments(scope_project_id=project.id)
                if getattr(a, 'user', None)}
    # The passwords of the existing users, checked at once (one token request each, in parallel).
    existing = [u for u in spec.get('users', []) if u['name'] in users]
    with ThreadPoolExecutor(max_workers=max(1, len(existing))) as pool:
        passwords_ok = dict(zip([u['name'] for u in existing], pool.map(
            lambda u: password_ok(conn.session, auth['auth_url'], u['name'], u['password'], project.name), existing),
            strict=True))
    for user_spec in spec.get('users', []):
        user = users.get(user_spec['name'])
        if user is None:
            user = idn.create_user(name=user_spec['name'], password=user_spec['password'], domain_id=domain.id,
                                   default_project_id=project.id)
            changed.append(f'user {user.name}')
            users[user.name] = None  # new: its password is right
        for role in roles.values():
            if (user.id, role.id) not in assigned:
                idn.assign_project_role_to_user(project, user, role)
                changed.append(f'role {role.name} for {user.name}')
        if users[user.name] is not None and not passwords_ok[user.name]:
            idn.update_user(user, password=user_spec['password'])
            changed.append(f'password of {user.name}')
    # The region comes from keystone-manage bootstrap --bootstrap-region-id.
    for service_spec in spec.get('services', []):
        service = next((s for s in services if s.name == service_spec['name'] and s.type == service_spec['type']),
                       None)
        if service is None:
            service = idn.create_service(name=service_spec['name'], type=service_spec['type'],
                                         description=service_spec.get('description', ''), is_enabled=True)
            changed.append(f'service {service.name}')
        for interface in ('public', 'internal'):
            have = [e for e in endpoints if e.service_id == service.id and e.interface == interface]
            if have and have[0].url == service_spec['url']:
                continue
            for endpoint in have:
                idn.delete_endpoint(endpoint)
            idn.create_endpoint(service_id=service.id, interface=interface, url=service_spec['url'],
                                region_id=region)
            changed.append(f'endpoint {service.name} {interface}')
    seconds['keystone'] = round(time.monotonic() - start, 1)

    if changed:  # a fresh connection: the catalog may have changed
        conn = openstack.connect(auth=auth, region_name=region, identity_api_version='3', interface='public')
    # Glance and Neutron at once (each waits for its service and creates what is missing).
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = [pool.submit(seed_image, conn, spec.get('image'), wait, start),
                   pool.submit(seed_network, conn, spec.get('network'), wait, start)]
        for future in futures:
            done, took = future.result()
            changed.extend(done)
            seconds.update(took)
    print(json.dumps({'changed': changed, 'seconds': seconds}))


def seed_image(conn, image, wait, start):
    changed, seconds = [], {}
    if image:
        found = wait_for('Glance', lambda: conn.image.find_image(image['name']), wait)
        if found is None:
            conn.image.create_image(name=image['name'], data=b'\0' * (int(image.get('size_mib', 1)) << 20),
                                    disk_format='raw', container_format='bare', visibility='public', wait=True)
            changed.append(f'image {image["name"]}')
        seconds['glance'] = round(time.monotonic() - start, 1)
    return changed, seconds


def seed_network(conn, network, wait, start):
    changed, seconds = [], {}
    if network:
        net = wait_for('Neutron', lambda: conn.network.find_network(network['name']), wait)
        if net is None:
            net = conn.network.create_network(name=network['name'], is_shared=True)
            changed.append(f'network {network["name"]}')
        if conn.network.find_subnet(network['subnet'], network_id=net.id) is None:
            conn.network.create_subnet(name=network['subnet'], network_id=net.id, ip_version=4, cidr=network['cidr'],
                                       is_dhcp_enabled=False)
            changed.append(f'subnet {network["subnet"]}')
        seconds['neutron'] = round(time.monotonic() - start, 1)
    return changed, seconds


if __name__ == '__main__':
    try:
        main()
    except Exception as exc:  # pylint: disable=broad-except
        sys.stderr.write(f'cloud_seed: {type(exc).__name__}: {exc}\n')
        sys.exit(1)
