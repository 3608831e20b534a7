#!/usr/bin/python
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: servicegroup
short_description: Configure Nova's ServiceGroup driver (db, mc, or the legacy zk) in a nova.conf
version_added: 0.1.0
description:
  - Ensures the options the chosen ServiceGroup driver needs on the target Nova release in one nova.conf, and removes
    options that would contradict it. Everything else in the file (comments, order, other options) is kept.
  - The same values must be used on every Nova node, services and readers alike (nova-api, schedulers, conductors,
    computes, and monitoring such as M(nova.cells.service_status)); apply this module to every nova.conf.
  - "O(driver=db): C([DEFAULT] servicegroup_driver), C(report_interval), C(service_down_time)."
  - "O(driver=mc) on Newton (14) and later: the same plus the whole C([cache]) block: C(enabled = true), a memcached
    C(backend) and C(memcache_servers) (and C(backend_expiration_time) when asked for). On Mitaka (13) and older: the
    legacy C([DEFAULT] memcached_servers) instead, which those releases read first."
  - "O(driver=zk): only Liberty (12) and older had this driver; for Mitaka and later the module refuses it and explains why."
  - Options that only served another driver are removed (C([zookeeper]) options; C([DEFAULT] memcached_servers) on
    Newton and later, where Nova ignores it). The C([cache]) block is kept when leaving mc, because other Nova
    features use it too.
  - The Nova release is detected on the managed host unless O(nova_release) is given; the file is written atomically.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells.common.without_database
  - nova.cells._attributes.state
  - ansible.builtin.files
attributes:
  diff_mode:
    details:
      - The diff is the whole file before and after, with every password masked (passwords inside URLs and the values
        of password/secret options).
options:
  path:
    description:
      - The nova.conf to edit. It is created (mode V(0640) unless O(mode) is given) when missing; its directory must exist.
    type: path
    default: /etc/nova/nova.conf
    aliases: [dest]
  driver:
    description:
      - The ServiceGroup driver.
      - V(zk) is accepted only for Nova 12 (Liberty) and older.
    type: str
    required: true
    choices: [db, mc, zk]
  report_interval:
    description:
      - Seconds between two heartbeats of every service.
    type: int
    default: 10
  service_down_time:
    description:
      - Seconds after the last heartbeat when a service counts as down. Must be greater than O(report_interval); Nova
        would otherwise silently use C(int(2.5 * report_interval)), so the module refuses it.
    type: int
    default: 60
  memcache_servers:
    description:
      - "With O(driver=mc): the memcached servers, as C(host:port). IPv6: C([address]:port) for
        V(dogpile.cache.pymemcache), C(inet6:[address]:port) for the python-memcached backends (V(dogpile.cache.memcached),
        V(oslo_cache.memcache_pool), and Mitaka and older). Unix sockets are refused."
    type: list
    elements: str
  cache_backend:
    description:
      - With O(driver=mc) on Newton and later, the C([cache] backend), one of V(dogpile.cache.pymemcache),
        V(dogpile.cache.memcached) or V(oslo_cache.memcache_pool).
      - Defaults to V(dogpile.cache.pymemcache) where oslo.cache has it (Wallaby, Nova 23, and later), else
        V(dogpile.cache.memcached).
      - V(dogpile.cache.null) (oslo.cache's default) is refused because it stores nothing and every service would look
        down; other backends are refused because their heartbeats cannot be read by M(nova.cells.service_status).
      - The chosen client library must be installed wherever Nova runs (python3-pymemcache or python3-memcache).
    type: str
  backend_expiration_time:
    description:
      - With O(driver=mc), the C([cache] backend_expiration_time), the lifetime memcached itself enforces on items.
      - Not set by default. Nova reads heartbeats older than O(service_down_time) as down whatever this is; without it
        heartbeats of deleted services stay in memcached until memcached evicts them.
      - Must be at least 604800 (and at least O(service_down_time)). Nova builds all its caches from the C([cache])
        section and oslo.cache refuses to create one whose own lifetime is longer (availability zones 3600 s, EC2 ids
        604800 s), which would break nova-api, the conductors, the metadata API and config drives.
      - V(0) removes the option from the file.
      - Only rendered for releases whose oslo.cache knows it (oslo.cache 3.9.0, Nova 2025.1 and later); for older ones
        a warning says it was left out.
    type: int
  zookeeper_address:
    description:
      - With O(driver=zk), the ZooKeeper servers as C(host:port).
    type: list
    elements: str
  zookeeper_recv_timeout:
    description:
      - With O(driver=zk), the ZooKeeper session timeout in milliseconds (Nova's default is 4000).
    type: int
  zookeeper_sg_prefix:
    description:
      - With O(driver=zk), the root znode of the service groups (Nova's default is V(/servicegroups)).
    type: str
  zookeeper_sg_retry_interval:
    description:
      - With O(driver=zk), seconds between two attempts to join (Nova's default is 5).
    type: int
  nova_release:
    description:
      - The Nova release the file is for, as a version (V(34.0.0), V(34)), a name (V(mitaka), V(epoxy)) or a series
        (V(2025.1)). Quote series in YAML (V('2025.1')).
      - When omitted, the release is detected on the managed host, see O(nova_python).
    type: str
  nova_python:
    description:
      - The Python interpreter Nova is installed in, to detect the release (and the oslo.cache version) fast.
      - When omitted, the interpreter of the O(nova_manage) script is used if it is a Python script, else
        C(nova-manage --version) is run (3-6 seconds).
    type: path
  check_backend:
    description:
      - Before writing, make sure every memcached server (O(driver=mc)) or every ZooKeeper server (O(driver=zk))
        answers, and fail naming the ones that did not. Nothing is written then.
      - Needs pymemcache or kazoo on the managed host. There is nothing to check for O(driver=db).
    type: bool
    default: false
  backend_timeout:
    description:
      - Seconds to wait for each server when O(check_backend=true).
    type: float
    default: 5
notes:
  - Restart every Nova service after a change; services read these options only at start.
  - "Mitaka (13) and older use C([DEFAULT] memcached_servers) with python-memcached and store heartbeats under the plain
    key C(topic:host); Newton and later use C([cache]) and a sha1 of that key. Services on both sides of that upgrade
    cannot see each other's heartbeats: upgrade them together, or use the db driver during the upgrade."
seealso:
  - module: nova.cells.service_status
  - plugin: nova.cells.servicegroup_options
    plugin_type: filter
'''

EXAMPLES = r'''
- name: Heartbeats through memcached (pymemcache backend), the same on every node
  nova.cells.servicegroup:
    path: /etc/nova/nova.conf
    driver: mc
    memcache_servers: [10.0.0.11:11211, 10.0.0.12:11211]
    report_interval: 10
    service_down_time: 60
    check_backend: true
  notify: Restart Nova services

- name: Back to the database driver
  nova.cells.servicegroup:
    driver: db

- name: An old Liberty cloud with ZooKeeper
  nova.cells.servicegroup:
    driver: zk
    nova_release: liberty
    zookeeper_address: [zk1:2181, zk2:2181, zk3:2181]
'''

RETURN = r'''
path:
  description: The file.
  returned: always
  type: str
driver:
  description: The driver configured.
  returned: always
  type: str
nova_release:
  description: The release the options were rendered for and where it came from.
  returned: always
  type: dict
  contains:
    major:
      description: Nova major version (Liberty is 12; older releases count from Austin = 1).
      type: int
    version:
      description: Full version when known.
      type: str
    name:
      description: Release name.
      type: str
    series:
      description: C(YYYY.N) identifier (2023.1 and later, and Kilo and older).
      type: str
    source:
      description: V(nova_release) or how it was detected.
      type: str
oslo_cache_version:
  description: The oslo.cache version found next to Nova, when the release was detected through Python.
  returned: always
  type: str
options:
  description: "The options the file must contain, C({section: {option: value}})."
  returned: always
  type: dict
  sample: {DEFAULT: {servicegroup_driver: mc, report_interval: '10', service_down_time: '60'},
           cache: {enabled: 'true', backend: dogpile.cache.pymemcache, memcache_servers: '10.0.0.11:11211'}}
removed_options:
  description: Options that must not be in the file, as C(section/option), whether or not they were there.
  returned: always
  type: list
  elements: str
changes:
  description: What changed (or would change in check mode), as C(section/option) with C(set) or C(removed).
  returned: always
  type: list
  elements: str
  sample: [DEFAULT/servicegroup_driver set, cache/enabled set, DEFAULT/memcached_servers removed]
backend:
  description: The version each memcached server reported, or V(connected) for each ZooKeeper server, when O(check_backend=true).
  returned: when O(check_backend=true) and O(driver) is V(mc) or V(zk)
  type: dict
  sample: {'127.0.0.1:11211': 1.6.18}
'''

import os
import tempfile

from ansible_collections.nova.cells.plugins.module_utils._liveness_mc import MemcachedReader, MemcachedUnavailable
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import ZooKeeperUnavailable, parse_address
from ansible_collections.nova.cells.plugins.module_utils._liveness_zk import probe as probe_zookeeper
from ansible_collections.nova.cells.plugins.module_utils._module import DiffTracker, NovaCellsError, NovaCellsModule
from ansible_collections.nova.cells.plugins.module_utils._nova_conf import IniDocument, ini_secret_values, mask_ini_text, parse_ini
from ansible_collections.nova.cells.plugins.module_utils._releases import ReleaseError, detect_release, parse_release
from ansible_collections.nova.cells.plugins.module_utils._servicegroup import ServiceGroupError, render
from ansible_collections.nova.cells.plugins.module_utils._urls import global_secrets, mask_url

NEW_FILE_MODE = '0640'


class ServiceGroupModule(NovaCellsModule):
    argument_spec = dict(
        path=dict(type='path', default='/etc/nova/nova.conf', aliases=['dest']),
        driver=dict(type='str', required=True, choices=['db', 'mc', 'zk']),
        report_interval=dict(type='int', default=10),
        service_down_time=dict(type='int', default=60),
        memcache_servers=dict(type='list', elements='str'),
        cache_backend=dict(type='str'),
        backend_expiration_time=dict(type='int'),
        zookeeper_address=dict(type='list', elements='str'),
        zookeeper_recv_timeout=dict(type='int'),
        zookeeper_sg_prefix=dict(type='str'),
        zookeeper_sg_retry_interval=dict(type='int'),
        nova_release=dict(type='str'),
        nova_python=dict(type='path'),
        check_backend=dict(type='bool', default=False),
        backend_timeout=dict(type='float', default=5.0),
    )
    module_kwargs = dict(supports_check_mode=True, add_file_common_args=True)
    config_required = False
    database_options = False

    def run(self):
        params = self.params
        release, oslo_cache = self.target_release()
        try:
            rendered = render(
                params['driver'], release,
                report_interval=params['report_interval'], service_down_time=params['service_down_time'],
                memcache_servers=params['memcache_servers'], cache_backend=params['cache_backend'],
                backend_expiration_time=params['backend_expiration_time'],
                zookeeper_address=params['zookeeper_address'], zookeeper_recv_timeout=params['zookeeper_recv_timeout'],
                zookeeper_sg_prefix=params['zookeeper_sg_prefix'], zookeeper_sg_retry_interval=params['zookeeper_sg_retry_interval'],
                oslo_cache_version=oslo_cache)
        except ServiceGroupError as exc:
            raise NovaCellsError(f"{exc}; nothing was written to {params['path']}") from None
        for warning in rendered['warnings']:
            self.ansible.warn(warning)
        self.result.update(
            path=params['path'], driver=params['driver'], nova_release=release.as_dict(), oslo_cache_version=oslo_cache,
            options=rendered['options'], removed_options=[f'{section}/{option}' for section, option in rendered['remove']], changes=[])
        if params['check_backend']:
            self.result['backend'] = self.check_backend(rendered)

        path = params['path']
        before, exists = self.read(path)
        document = IniDocument(before)
        tracker = DiffTracker()
        for section, options in rendered['options'].items():
            for option, value in options.items():
                tracker.add(f'{section}/{option}', document.get(section, option), value)
        for section, option in rendered['remove']:
            tracker.add(f'{section}/{option}', document.get(section, option), None)
        changes = [f'{field} {"removed" if tracker.after[field] is None else "set"}' for field in tracker.changed_fields]

        def apply():
            for field in tracker.changed_fields:
                section, option = field.split('/', 1)
                if tracker.after[field] is None:
                    document.remove(section, option)
                else:
                    document.set(section, option, tracker.after[field])
            if not self.check_mode:
                self.write(path, document.text())

        changed, after = self.converge(tracker, apply, reread=lambda: self.read(path)[0], desired=document.text)
        after = before if after is None else after
        changed = self.file_attributes(path, exists, changed and after != before)
        self.result['changes'] = changes
        return self.changed_result(tracker, changed, self.masked(before), self.masked(after),
                                   headers=dict(before_header=path, after_header=path))

    def target_release(self):
        params = self.params
        try:
            if params['nova_release']:
                return parse_release(params['nova_release']), None
            detected = detect_release(self.run_command, params['nova_manage'], params['nova_python'])
        except ReleaseError as exc:
            raise NovaCellsError(str(exc)) from None
        return detected.release, detected.oslo_cache_version

    def run_command(self, argv):
        # A missing executable raises OSError (AnsibleModule would fail the whole module instead).
        return self.ansible.run_command(argv, handle_exceptions=False)

    def check_backend(self, rendered):
        params = self.params
        try:
            if params['driver'] == 'mc':
                servers = rendered['options'].get('cache', {}).get('memcache_servers') or rendered['options']['DEFAULT']['memcached_servers']
                versions, errors = MemcachedReader(servers, timeout=params['backend_timeout']).probe()
                what = 'memcached'
            elif params['driver'] == 'zk':
                versions, errors = probe_zookeeper(parse_address(rendered['options']['zookeeper']['address']),
                                                   timeout=params['backend_timeout'])
                what = 'ZooKeeper'
            else:
                return {}
        except (MemcachedUnavailable, ZooKeeperUnavailable) as exc:
            raise NovaCellsError(f'check_backend: {exc}') from None
        if errors:
            servers = ', '.join(sorted(errors))
            details = '; '.join(f'{server}: {error}' for server, error in sorted(errors.items()))
            raise NovaCellsError(f"check_backend: {what} {servers} did not answer within {params['backend_timeout']} s ({details}); "
                                 f"nothing was written to {params['path']}. Start the server(s) or correct the address list.",
                                 backend=versions)
        return versions

    def read(self, path):
        if os.path.isdir(path):
            raise NovaCellsError(f'path {path} is a directory; give the nova.conf file')
        if not os.path.exists(path):
            directory = os.path.dirname(os.path.abspath(path))
            if not os.path.isdir(directory):
                raise NovaCellsError(f'cannot create {path}: the directory {directory} does not exist (install Nova or create it first)')
            return '', False
        try:
            with open(path, encoding='utf-8') as handle:
                text = handle.read()
        except OSError as exc:
            raise NovaCellsError(f'cannot read {path}: {exc.strerror}') from None
        except UnicodeDecodeError as exc:
            raise NovaCellsError(f'cannot read {path}: it is not UTF-8 text ({exc.reason})') from None
        # Register every secret of the file before anything that could show it.
        urls, plain = ini_secret_values(parse_ini(text, path))
        self.register_url_secrets(*urls)
        plain = {value for value in plain if value}
        self.secrets.update(plain)
        self.ansible.no_log_values.update(global_secrets(plain))
        return text, True

    def masked(self, text):
        return self.mask(mask_ini_text(text, mask_url))

    def write(self, path, text):
        directory = os.path.dirname(os.path.abspath(path))
        fd, temporary = tempfile.mkstemp(dir=directory, prefix=f'.{os.path.basename(path)}.', suffix='.tmp')
        try:
            with os.fdopen(fd, 'w', encoding='utf-8') as handle:
                handle.write(text)
            self.ansible.atomic_move(temporary, path, unsafe_writes=self.params['unsafe_writes'])
        except OSError as exc:
            raise NovaCellsError(f'cannot write {path}: {exc.strerror}') from None
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    def file_attributes(self, path, existed, changed):
        file_args = self.ansible.load_file_common_arguments(self.params, path=path)
        if not existed and file_args.get('mode') is None:
            file_args['mode'] = NEW_FILE_MODE
        if self.check_mode and not os.path.exists(path):
            return True  # the file would be created, with these attributes
        return self.ansible.set_fs_attributes_if_different(file_args, changed)


def main():
    ServiceGroupModule()()


if __name__ == '__main__':
    main()
