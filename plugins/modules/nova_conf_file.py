#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r'''
module: nova_conf_file
short_description: Write a rendered nova.conf and its directory in one step, and list stale files
version_added: 0.2.0
description:
  - The write step of the role C(nova.cells.nova_conf) as one module run per host, where it took a C(file), a C(find)
    and a C(copy) task (four module processes per host in a run that changes nothing).
  - Ensures O(directory) (created, or owner, group and mode corrected), writes O(content) to O(path) when the file
    differs (atomically, through a temporary file in the same directory) and sets the file's owner, group and mode.
  - Lists the files under O(stale.paths) whose full path matches O(stale.pattern) and that are not in O(stale.keep),
    so that the role removes them with a task of its own (which notifies the handlers of that change).
  - With O(files), writes several files in the same directory in one run (the nova-manage configs of the role
    C(nova.cells.cells), one module process where it took a C(file) task and a C(template) task per file); every file
    is handled as with O(path), with the same O(owner), O(group) and O(mode).
  - With O(units), also reports which of those systemd units are not enabled, not running or not installed
    (RV(units_down), from one C(systemctl show); read only), so that a playbook can skip its start step on a host
    where everything runs, in the same module process.
  - The content is never shown, logged or put in the diff (it holds passwords); the diff names what changes.
  - Imports nothing but Ansible's module basics (no database driver), so that a run that changes nothing costs one short
    module process per host.
author: nova.cells contributors (@nova-cells)
extends_documentation_fragment:
  - nova.cells._attributes
  - nova.cells._attributes.actiongroup_cells
  - nova.cells.common.unused_group_options
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
    details: The diff lists the paths and attributes that change, and the file's SHA-1 before and after, never the content.
  idempotent:
    support: full
options:
  path:
    description:
      - The file to write, for example C(/etc/nova/nova.conf).
      - Exactly one of O(path) (with O(content)) and O(files) is required.
    type: path
  content:
    description: The complete file content of O(path) (secret; never returned or logged). Required with O(path).
    type: str
  files:
    description:
      - Several files to write, each as with O(path) and O(content), in this order. O(owner), O(group) and O(mode) apply
        to every file. Every entry is checked (no path twice, none that exists and is not a regular file) before
        anything is written.
    type: list
    elements: dict
    version_added: 0.2.0
    suboptions:
      path:
        description: The file to write.
        type: path
        required: true
      content:
        description: Its complete content (secret; never returned or logged).
        type: str
        required: true
  owner:
    description: Owner of the file.
    type: str
  group:
    description: Group of the file.
    type: str
  mode:
    description: Mode of the file, as an octal string such as V('0640').
    type: raw
  directory:
    description:
      - A directory to ensure before the file is written (usually the parent of O(path)), with its owner, group and mode.
    type: dict
    suboptions:
      path:
        description: The directory.
        type: path
        required: true
      owner:
        description: Owner of the directory.
        type: str
      group:
        description: Group of the directory.
        type: str
      mode:
        description: Mode of the directory, as an octal string such as V('0750').
        type: raw
  stale:
    description:
      - Where to look for files that earlier runs wrote and this host no longer needs. Only listed in RV(stale), never
        removed by this module.
    type: dict
    suboptions:
      paths:
        description: Directories searched, to a depth of two (their files and the files of their subdirectories).
        type: list
        elements: path
        required: true
      pattern:
        description: A regular expression the full path of a stale file matches (Python C(re.match)).
        type: str
        required: true
      keep:
        description: Paths that match O(stale.pattern) but are still needed.
        type: list
        elements: path
        default: []
  units:
    description:
      - systemd units whose state to report in RV(units_down), read with one C(systemctl show) after the files are
        written (in check mode too). Nothing is done to them.
      - Where systemd cannot be asked (no C(systemctl), or systemd is not the init system), every one of them is
        reported down, so that a caller skipping its start step when none is down starts them as before.
    type: list
    elements: str
    default: []
    version_added: 0.3.0
notes:
  - The role C(nova.cells.nova_conf) validates a nova.conf that would change against Nova's option definitions before
    this module writes it.
seealso:
  - module: nova.cells.servicegroup
    description: Writes the ServiceGroup options into a nova.conf that something else manages.
'''

EXAMPLES = r'''
- name: Write nova.conf and list the database files of earlier runs
  nova.cells.nova_conf_file:
    path: /etc/nova/nova.conf
    content: "{{ rendered_nova_conf }}"
    owner: root
    group: nova
    mode: "0640"
    directory:
      path: /etc/nova
      owner: root
      group: nova
      mode: "0750"
    stale:
      paths: [/etc/nova, /etc/systemd/system]
      pattern: '^(/etc/nova/nova-db[.]env|/etc/systemd/system/[^/]+[.]service[.]d/nova-cells-db[.]conf)$'
      keep: []
  register: written

- name: Write the nova-manage configs of the cells role in one run
  nova.cells.nova_conf_file:
    files:
      - path: /etc/nova/manage/api.conf
        content: "{{ api_manage_conf }}"
      - path: /etc/nova/manage/cell-cell1.conf
        content: "{{ cell1_manage_conf }}"
    owner: root
    group: root
    mode: "0600"
    directory:
      path: /etc/nova/manage
      owner: root
      group: root
      mode: "0700"
'''

RETURN = r'''
existed:
  description: Whether the file existed before this run.
  returned: with O(path)
  type: bool
  sample: true
checksum:
  description: SHA-1 of the content (what the file holds after the run, or would hold in check mode).
  returned: with O(path)
  type: str
  sample: 8843d7f92416211de9ebb963ff4ce28125932878
content_changed:
  description: Whether the file's content was (or in check mode would be) replaced.
  returned: with O(path)
  type: bool
  sample: false
files:
  description: With O(files), one entry per file in the order given, with the keys of RV(existed), RV(checksum) and
    RV(content_changed), and its C(path).
  returned: with O(files)
  type: list
  elements: dict
  version_added: 0.2.0
  sample: [{path: /etc/nova/manage/api.conf, existed: true, checksum: 8843d7f92416211de9ebb963ff4ce28125932878, content_changed: false}]
units_down:
  description: The units of O(units) that are not enabled, not running or not installed (as M(nova.cells.systemd_units)
    would enable or start them), in the order given.
  returned: when O(units) is given
  type: list
  elements: str
  version_added: 0.3.0
  sample: [nova-compute]
stale:
  description: Files found under O(stale.paths) that match O(stale.pattern) and are not in O(stale.keep), sorted.
  returned: always
  type: list
  elements: str
  sample: [/etc/nova/nova-db.env]
'''

import hashlib
import os
import re
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nova.cells.plugins.module_utils._units import PROPERTIES, parse_show, units_down


def _sha1(data):
    return hashlib.sha1(data).hexdigest()  # a checksum, as Ansible computes them (copy, stat, find)


def _file_args(path, owner, group, mode):
    # No SELinux context and no attributes asked for: what the system gives a new file in that directory stays.
    return dict(path=path, owner=owner, group=group, mode=mode, secontext=[None, None, None, None], attributes=None)


def find_stale(paths, pattern, keep):
    """Regular files at depth 1 or 2 under ``paths`` whose path matches ``pattern``, minus ``keep`` (like find depth=2)."""
    regex = re.compile(pattern)
    keep = {os.path.normpath(path) for path in keep}
    found = set()
    for root in dict.fromkeys(os.path.normpath(path) for path in paths):
        if not os.path.isdir(root):
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            depth = 0 if dirpath == root else os.path.relpath(dirpath, root).count(os.sep) + 1
            if depth >= 1:
                dirnames[:] = []
            for name in filenames:
                path = os.path.join(dirpath, name)
                try:
                    if not stat.S_ISREG(os.lstat(path).st_mode):
                        continue
                except OSError:
                    continue
                if regex.match(path) and path not in keep:
                    found.add(path)
    return sorted(found)


def write(module, path, data, existed):
    """Replace ``path`` with ``data`` atomically: a private temporary file in the same directory, renamed into place.

    The temporary file is created 0600; it takes the owner, group and mode of the file it replaces, and a new file
    keeps 0600 until the caller sets the wanted attributes (so the content is never readable by others meanwhile).
    """
    parent = os.path.dirname(path) or '.'
    try:
        handle, temporary = tempfile.mkstemp(prefix='.nova-cells.', dir=parent)
    except OSError as exc:
        module.fail_json(msg=f'cannot write into {parent}: {exc}; nothing was written')
    try:
        with os.fdopen(handle, 'wb') as stream:
            stream.write(data)
            stream.flush()
            os.fsync(stream.fileno())
        if existed:
            current = os.stat(path)
            os.chmod(temporary, stat.S_IMODE(current.st_mode))
            try:
                os.chown(temporary, current.st_uid, current.st_gid)
            except OSError:
                pass  # not root: the caller's owner/group settings report what cannot be set
        os.replace(temporary, path)
    except OSError as exc:
        module.fail_json(msg=f'cannot write {path}: {exc}')
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


def ensure_file(module, path, data, attributes, before, after):
    """Write ``data`` to ``path`` when it differs and set its attributes; record the diff. Returns (changed, existed, content_changed)."""
    changed = False
    existed = os.path.lexists(path)
    current = None
    if existed:
        try:
            with open(path, 'rb') as handle:
                current = _sha1(handle.read())
        except OSError as exc:
            module.fail_json(msg=f'cannot read {path}: {exc}; nothing was written')
    wanted = _sha1(data)
    content_changed = current != wanted
    if content_changed:
        before[path] = {'checksum': current} if existed else 'absent'
        after[path] = {'checksum': wanted}
        changed = True
        if not module.check_mode:
            write(module, path, data, existed)
    if os.path.exists(path):
        file_diff = {'before': {'path': path}, 'after': {'path': path}}
        changed = module.set_fs_attributes_if_different(_file_args(path, *attributes), changed, file_diff)
        if file_diff['before'] != file_diff['after']:
            if isinstance(before.get(path, {}), dict):   # not for a new file: its "before" is absent
                before.setdefault(path, {}).update({k: v for k, v in file_diff['before'].items() if k != 'path'})
            after.setdefault(path, {}).update({k: v for k, v in file_diff['after'].items() if k != 'path'})
    elif module.check_mode:
        after[path].update({k: v for k, v in zip(('owner', 'group', 'mode'), attributes, strict=True) if v is not None})
    return changed, existed, content_changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            # Accepted for module_defaults of group/nova.cells.cells (see DOCUMENTATION); not used.
            config_files=dict(type='list', elements='path', default=['/etc/nova/nova.conf']),
            nova_manage=dict(type='list', elements='str', default=['nova-manage']),
            path=dict(type='path'),
            content=dict(type='str', no_log=True),
            files=dict(type='list', elements='dict', options=dict(
                path=dict(type='path', required=True),
                content=dict(type='str', required=True, no_log=True),
            )),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='raw'),
            directory=dict(type='dict', options=dict(
                path=dict(type='path', required=True),
                owner=dict(type='str'),
                group=dict(type='str'),
                mode=dict(type='raw'),
            )),
            stale=dict(type='dict', options=dict(
                paths=dict(type='list', elements='path', required=True),
                pattern=dict(type='str', required=True),
                keep=dict(type='list', elements='path', default=[]),
            )),
            units=dict(type='list', elements='str', default=[]),
        ),
        required_one_of=[('path', 'files')],
        mutually_exclusive=[('path', 'files'), ('content', 'files')],
        required_together=[('path', 'content')],
        supports_check_mode=True,
    )
    params = module.params
    several = params['files'] is not None
    files = params['files'] if several else [dict(path=params['path'], content=params['content'])]
    before, after = {}, {}
    changed = False

    # Every refusal before anything is written.
    if params['stale']:
        try:
            re.compile(params['stale']['pattern'])
        except re.error as exc:
            module.fail_json(msg=f"stale.pattern is not a valid regular expression: {exc}; nothing was written")
    paths = [os.path.normpath(entry['path']) for entry in files]
    repeated = sorted({path for path in paths if paths.count(path) > 1})
    if repeated:
        module.fail_json(msg=f"files names {', '.join(repeated)} more than once; give each file once, nothing was written")
    for entry in files:
        if os.path.lexists(entry['path']) and not os.path.isfile(entry['path']):
            module.fail_json(msg=f"{entry['path']} exists and is not a regular file; move it away, nothing was written")

    directory = params['directory']
    if directory:
        dir_path = directory['path']
        if os.path.lexists(dir_path) and not os.path.isdir(dir_path):
            module.fail_json(msg=f'{dir_path} exists and is not a directory; move it away, nothing was written')
        if not os.path.exists(dir_path):
            before[dir_path] = 'absent'
            after[dir_path] = 'directory'
            changed = True
            if not module.check_mode:
                try:
                    os.makedirs(dir_path)
                except OSError as exc:
                    module.fail_json(msg=f'cannot create the directory {dir_path}: {exc}; nothing was written')
        if os.path.exists(dir_path):
            dir_diff = {'before': {'path': dir_path}, 'after': {'path': dir_path}}
            changed = module.set_fs_attributes_if_different(
                _file_args(dir_path, directory['owner'], directory['group'], directory['mode']), changed, dir_diff)
            if dir_diff['before'] != dir_diff['after']:
                if before.get(dir_path) != 'absent':   # a new directory stays "absent" before
                    before[dir_path] = {k: v for k, v in dir_diff['before'].items() if k != 'path'}
                after[dir_path] = {k: v for k, v in dir_diff['after'].items() if k != 'path'}

    attributes = (params['owner'], params['group'], params['mode'])
    written = []
    for entry in files:
        data = entry['content'].encode('utf-8')
        file_changed, existed, content_changed = ensure_file(module, entry['path'], data, attributes, before, after)
        changed = changed or file_changed
        written.append(dict(path=entry['path'], existed=existed, checksum=_sha1(data), content_changed=content_changed))

    stale = find_stale(params['stale']['paths'], params['stale']['pattern'], params['stale']['keep']) if params['stale'] else []
    result = dict(changed=changed, stale=stale)
    if several:
        result['files'] = written
        header = directory['path'] if directory else ', '.join(entry['path'] for entry in files)
    else:
        result.update({k: v for k, v in written[0].items() if k != 'path'})
        header = params['path']
    if params['units']:
        result['units_down'] = read_units_down(module, params['units'])
    if module._diff:
        result['diff'] = {'before': before, 'after': after, 'before_header': header, 'after_header': header}
    module.exit_json(**result)


def read_units_down(module, names):
    """The units of ``names`` that are not enabled, not running or not installed (one systemctl show).

    All of them when systemd cannot be asked (no systemctl, or not the init system: a container, a local test run):
    a caller that skips starting units when none is down then starts them as it would without this report.
    """
    names = list(dict.fromkeys(names))
    systemctl = module.get_bin_path('systemctl')
    if not systemctl:
        return names
    rc, out, _err = module.run_command([systemctl, 'show', '--property=' + ','.join(PROPERTIES), '--', *names])
    try:
        return units_down(names, parse_show(out, len(names))) if rc == 0 else names
    except ValueError:
        return names


if __name__ == '__main__':
    main()
