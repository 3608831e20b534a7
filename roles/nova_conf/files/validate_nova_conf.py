# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Check a nova.conf against the option definitions of the Nova installed with this Python.

Usage: <nova's python> validate_nova_conf.py FILE [--ignore-section=NAME ...]
FILE ``-`` reads the file from standard input (the role passes it so, and this script as ``-c``): it is
kept in a private temporary directory only while oslo.config reads it.

Registers the options of every namespace Nova's own sample config is generated from (Nova's
etc/nova/nova-config-generator.conf), plus the options of the keystoneauth plugin named by
``auth_type`` in any section, then parses FILE with oslo.config and reads every option the file
sets, so both unknown options and values of the wrong type are found. Values are never printed
(the file holds passwords). Prints one JSON document and exits 0; ``status`` is ``ok``,
``invalid`` (see ``errors``) or ``skipped`` (no Nova here).
"""

import json
import os
import shutil
import sys
import tempfile
import warnings

NAMESPACES = (
    'nova.conf', 'keystonemiddleware.auth_token', 'os_vif', 'oslo.cache', 'oslo.concurrency', 'oslo.db',
    'oslo.limit', 'oslo.log', 'oslo.messaging', 'oslo.middleware', 'oslo.policy', 'oslo.privsep', 'oslo.reports',
    'oslo.service.periodic_task', 'oslo.service.service', 'oslo.service.sslutils', 'oslo.versionedobjects',
    'osprofiler',
)


def emit(**document):
    print(json.dumps(document, sort_keys=True))
    sys.exit(0)


def file_options(path, iniparser):
    """(section, option) pairs in file order, as oslo.config's own parser reads them, and auth_type per section."""
    found, auth_types = [], {}

    class Collector(iniparser.BaseParser):
        section = 'DEFAULT'

        def new_section(self, section):
            self.section = section

        def assignment(self, key, value):
            found.append((self.section, key))
            if key == 'auth_type':
                auth_types[self.section] = ''.join(value).strip()

        def parse_exc(self, msg, lineno, line=None):
            return iniparser.ParseError(msg, lineno, line)

    with open(path, encoding='utf-8') as handle:
        Collector().parse(handle)
    return found, auth_types


def register(conf, cfg, group, opts):
    if getattr(group, 'name', group) == 'DEFAULT':
        group = None
    for opt in opts:
        try:
            conf.register_opt(opt, group=group)
        except cfg.DuplicateOptError:
            pass


def main(argv):
    path = argv[0]
    ignored = {arg.split('=', 1)[1] for arg in argv[1:] if arg.startswith('--ignore-section=')}
    warnings.simplefilter('ignore')
    try:
        import nova.version
        from oslo_config import cfg, generator, iniparser
    except ImportError as exc:
        emit(status='skipped', reason='Nova is not installed for this Python (%s)' % exc)
    try:
        items, auth_types = file_options(path, iniparser)
    except iniparser.ParseError as exc:
        emit(status='invalid', errors=['%s: line %s: %s' % (path, exc.lineno, exc.msg)], warnings=[])

    conf = cfg.ConfigOpts()
    errors, notes = [], []
    for _namespace, groups in generator._list_opts(NAMESPACES):  # pylint: disable=protected-access
        for group, opts in groups:
            register(conf, cfg, group, opts)
    # Auth plugin options are dynamic (keystoneauth): register those of the plugin each section names.
    if auth_types:
        from keystoneauth1 import loading as ks_loading
        for section, plugin in sorted(auth_types.items()):
            register(conf, cfg, section, ks_loading.get_auth_common_conf_options())
            try:
                register(conf, cfg, section, ks_loading.get_auth_plugin_conf_options(plugin))
            except Exception:  # pylint: disable=broad-except  # keystoneauth raises its own NoMatchingPlugin
                errors.append('[%s] auth_type: there is no keystoneauth plugin named %r' % (section, plugin))
    # Options a library marks required are the business of the service that uses that library.
    conf._check_required_opts = lambda namespace=None: None  # pylint: disable=protected-access
    conf(['--config-file', path], project='nova', default_config_files=[], use_env=False)

    deprecated = {}
    for group_name, group in [(None, None)] + [(name, conf._groups[name]) for name in conf._groups]:  # pylint: disable=protected-access
        opts = conf._opts if group is None else group._opts  # pylint: disable=protected-access
        for info in opts.values():
            for old in info['opt'].deprecated_opts:
                deprecated[(old.group or group_name or 'DEFAULT', old.name or info['opt'].name)] = (group_name or 'DEFAULT', info['opt'].dest)

    for section, option in items:
        if section in ignored:
            continue
        group = None if section == 'DEFAULT' else section
        known = option in conf if group is None else (group in conf and option in conf[group])
        if not known:
            new = deprecated.get((section, option))
            if new is not None:
                notes.append('[%s] %s is deprecated; Nova reads it as [%s] %s' % (section, option, new[0], new[1]))
                continue
            if group is not None and group not in conf:
                errors.append('[%s] is not a section Nova %s knows' % (section, nova.version.version_string()))
            else:
                errors.append('[%s] %s is not an option Nova %s knows' % (section, option, nova.version.version_string()))
            continue
        try:
            conf[option] if group is None else conf[group][option]  # pylint: disable=expression-not-assigned
        except (cfg.ConfigFileValueError, ValueError) as exc:
            kind = type(exc).__name__
            errors.append('[%s] %s has a value Nova cannot use (%s)' % (section, option, kind))
    emit(status='invalid' if errors else 'ok', errors=sorted(set(errors)), warnings=sorted(set(notes)),
         nova_version=nova.version.version_string())


def run(argv):
    if argv[0] != '-':
        main(argv)
    directory = tempfile.mkdtemp(prefix='nova-cells-conf.')
    try:
        path = os.path.join(directory, 'nova.conf')
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), 'w', encoding='utf-8') as handle:
            handle.write(sys.stdin.read())
        main([path] + argv[1:])
    finally:
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    run(sys.argv[1:])
