# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""The base class of every nova.cells module.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

A module subclasses NovaCellsModule, declares ``argument_spec`` (merged with the common options)
and ``module_kwargs``, and implements ``run()``, which returns the result (a dict for ``exit_json``):
find the current state (SQL), build the desired one, compare them (DiffTracker), apply the difference
through nova-manage unless in check mode, read the state back, report. ``converge()`` carries the
compare -> apply -> re-read steps and ``changed_result()`` the report, with the diff, for every state
module.
"""

from __future__ import annotations

import operator
import traceback

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.nova.cells.plugins.module_utils._databases import ApiDatabase, CellDatabase, DatabaseError
from ansible_collections.nova.cells.plugins.module_utils._nova_conf import ConfigError, NovaConfig
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import NovaManage, NovaManageError
from ansible_collections.nova.cells.plugins.module_utils._releases import nova_python
from ansible_collections.nova.cells.plugins.module_utils._urls import (
    UrlError,
    expand_template,
    global_secrets,
    mask_structure,
    mask_text,
    mask_url,
    ordinary_words,
    structure_secrets,
    url_secrets,
    validate_db_url,
)

# PyMySQL refuses connect_timeout outside (0, 31536000].
MAX_CONNECT_TIMEOUT = 31536000


def common_argument_spec(database=True):
    """The options every module shares; ``database=False`` leaves out those only database readers use."""
    spec = dict(
        config_files=dict(type='list', elements='path', default=['/etc/nova/nova.conf']),
        nova_manage=dict(type='list', elements='str', default=['nova-manage']),
    )
    if database:
        spec.update(
            api_database_connection=dict(type='str', no_log=True),
            database_connect_timeout=dict(type='int', default=10),
            fail_fast=dict(type='bool', default=True),
        )
    return spec


class NovaCellsError(Exception):
    """A failure the module reports with fail_json; ``extra`` is added to the result."""

    def __init__(self, msg, **extra):
        super().__init__(msg)
        self.extra = extra


class _Union:
    """A live view of several secret sets (they grow while the module runs)."""

    def __init__(self, *sets):
        self._sets = sets

    def __iter__(self):
        seen = set()
        for secrets in self._sets:
            for secret in list(secrets):
                if secret not in seen:
                    seen.add(secret)
                    yield secret


class DiffTracker:
    """Compares (field, before, after) and builds the changed flag and the diff, in one place.

    A field may bring its own comparison (``equal``, e.g. _urls.urls_equal for URLs written differently).
    ``diff(before, after)`` is what Ansible shows: the tracked fields, or the whole objects given (already in
    the form a module may show: masked).
    """

    def __init__(self):
        self.before = {}
        self.after = {}
        self._equal = {}

    def add(self, field, before, after, equal=None):
        self.before[field] = before
        self.after[field] = after
        self._equal[field] = equal or operator.eq

    @property
    def changed_fields(self):
        return [field for field in self.after if not self._equal[field](self.before.get(field), self.after[field])]

    @property
    def changed(self):
        return bool(self.changed_fields)

    def diff(self, before=None, after=None, **headers):
        result = {'before': dict(self.before) if before is None else before,
                  'after': dict(self.after) if after is None else after}
        result.update(headers)
        return result


class _MaskingAnsibleModule(AnsibleModule):
    """AnsibleModule that never shows a URL password, also when Ansible itself rejects the arguments.

    AnsibleModule validates the arguments in its constructor and, on an invalid value or an unknown
    (misspelt) option, fails with ``invocation.module_args`` = the raw arguments, shown at -vvv. The
    URL secrets in every argument (whatever its name) are registered as soon as the arguments are
    loaded, before validation, and the invocation and the syslog line show every URL-shaped string
    masked (kolla-ansible overrides ``_log_invocation`` for the same reason).
    """

    collected_secrets = frozenset()

    def _load_params(self):
        super()._load_params()
        secrets = structure_secrets(self.params)
        ordinary = {word.lower() for word in _ordinary_words(self.params)}
        self.collected_secrets = {secret for secret in secrets if secret.lower() not in ordinary}
        self.no_log_values.update(global_secrets(secrets, ordinary))

    def _return_formatted(self, kwargs):
        if 'invocation' not in kwargs:
            kwargs['invocation'] = {'module_args': self._masked_params()}
        return super()._return_formatted(kwargs)

    def _masked_params(self):
        return mask_structure(self.params)

    def _log_invocation(self):
        params = self.params
        self.params = self._masked_params()
        try:
            super()._log_invocation()
        finally:
            self.params = params


def _ordinary_words(value):
    words = set()
    if isinstance(value, str):
        words.update(ordinary_words(value))
    elif isinstance(value, dict):
        for item in value.values():
            words.update(_ordinary_words(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            words.update(_ordinary_words(item))
    return words


class NovaCellsModule:
    argument_spec = {}
    module_kwargs = {}
    # Info modules and config-only modules do not need nova.conf to exist.
    config_required = True
    # Modules that run nova-manage always return ``commands`` (empty when nothing ran).
    uses_nova_manage = True
    # Modules that read no database leave out api_database_connection, database_connect_timeout and fail_fast.
    database_options = True

    def __init__(self):
        spec = common_argument_spec(database=self.database_options)
        spec.update(self.argument_spec)
        kwargs = dict(supports_check_mode=True)
        kwargs.update(self.module_kwargs)
        self.ansible = _MaskingAnsibleModule(argument_spec=spec, **kwargs)
        self.params = self.ansible.params
        self.check_mode = self.ansible.check_mode
        self.diff_mode = self.ansible._diff
        self.result = dict(changed=False)
        self._config = None
        self._api_db = None
        self._cell_dbs = {}
        self._nova_manage = None

    # -- secrets -------------------------------------------------------------------------
    def register_url_secrets(self, *urls):
        """Remember every password inside ``urls``; long ones also become Ansible no_log values.

        Ansible replaces a no_log value wherever it occurs, even inside other words, so only secrets of
        GLOBAL_SECRET_MIN_LENGTH characters or more that are not also a user, host or database name are
        registered with it; every secret is masked structurally in URLs, and by ``mask`` in free text
        (see _urls.mask_text) unless it equals such a name.
        """
        for url in urls:
            if isinstance(url, str):
                secrets = url_secrets(url)
                ordinary = {word.lower() for word in ordinary_words(url)}
                # A password equal to a user, host or database name is masked inside URLs only: in free text
                # it cannot be told from the name it equals.
                self.secrets.update(secret for secret in secrets if secret.lower() not in ordinary)
                self.ansible.no_log_values.update(global_secrets(secrets, ordinary))

    @property
    def secrets(self):
        return self.ansible.collected_secrets

    def mask(self, text):
        return mask_text(text, self.secrets | self.ansible.no_log_values)

    @staticmethod
    def mask_url(url):
        return mask_url(url)

    # -- configuration and connections ---------------------------------------------------
    @property
    def config(self):
        if self._config is None:
            self._config = NovaConfig.load(self.params['config_files'], required=self.config_required)
            conf = self._config
            self.register_url_secrets(conf.api_database_connection, conf.database_connection, conf.transport_url)
        return self._config

    def api_database_url(self):
        url = self.params['api_database_connection'] or self.config.api_database_connection
        if not url:
            raise NovaCellsError('no API database URL: set [api_database]/connection in one of {} or the '
                                 'api_database_connection option'.format(', '.join(self.params['config_files'])))
        self.register_url_secrets(url)
        try:
            validate_db_url(url, 'the API database URL')
        except UrlError as exc:
            raise NovaCellsError(str(exc)) from None
        return url

    def api_db(self):
        if self._api_db is None:
            self._api_db = ApiDatabase(self.api_database_url(), self.params['database_connect_timeout'])
        return self._api_db

    def rendered_cell_urls(self, cell):
        """A cell's URLs as every Nova service on this host sees them (templates rendered locally)."""
        transport, _error = expand_template(cell['transport_url'], self.config.transport_url)
        database, _error = expand_template(cell['database_connection'], self.config.database_connection)
        self.register_url_secrets(transport, database)
        return transport, database

    def cell_db(self, cell):
        """A connection to a cell's database, keyed by cell uuid."""
        if cell['uuid'] not in self._cell_dbs:
            url = self.rendered_cell_urls(cell)[1]
            label = 'database of cell {!r} ({}) at {}'.format(cell['name'], cell['uuid'], mask_url(url))
            try:
                validate_db_url(url, 'the database URL of cell {!r}'.format(cell['name']))
            except UrlError as exc:
                raise NovaCellsError(str(exc)) from None
            self._cell_dbs[cell['uuid']] = CellDatabase(url, self.params['database_connect_timeout'], label=label)
        return self._cell_dbs[cell['uuid']]

    def cell_databases(self, all_cells, verb):
        """[(label, CellDatabase)]: every mapped cell's database (labelled by cell name), or with ``all_cells`` false the
        one of [database]/connection (labelled DB); ``verb`` says what the module does to it, for the refusal."""
        if all_cells:
            return [(cell['name'] or cell['uuid'], self.cell_db(cell)) for cell in self.api_db().cells()]
        url = self.config.database_connection
        if not url:
            raise NovaCellsError(f"all_cells=false {verb} [database]/connection of {', '.join(self.params['config_files'])}, which is not set")
        return [('DB', CellDatabase(url, self.params['database_connect_timeout']))]

    @property
    def nova_manage(self):
        if self._nova_manage is None:
            # Load the config first so its passwords are registered before anything runs.
            self.config  # noqa: B018
            self._nova_manage = NovaManage(
                self.ansible.run_command, self.params['nova_manage'], self.params['config_files'],
                fail_fast=self.params.get('fail_fast', True), secrets=_Union(self.secrets, self.ansible.no_log_values),
                check_mode=self.check_mode)
        return self._nova_manage

    def nova_python(self):
        """The argv of the Python Nova is installed in (the module's ``nova_python`` option when it has one, else the
        shebang of ``nova_manage``), or None: _releases.nova_python, the one finder."""
        return nova_python(self.params.get('nova_manage'), self.params.get('nova_python'))

    # -- running -------------------------------------------------------------------------
    def run(self):
        """The module's work; returns the result for ``exit_json`` (or exits itself through ``exit``)."""
        raise NotImplementedError

    def converge(self, tracker, apply, reread, desired):
        """compare -> apply -> re-read: ``(changed, after)``.

        Nothing is applied when ``tracker`` sees no change (``after`` is then None). Otherwise ``apply()`` makes the
        change (nova-manage only records its commands in check mode; other writes must check ``check_mode``) and the
        state is read back with ``reread()``, so the result reports what is stored, not what was asked; in check mode
        ``desired`` (or what it returns, when it is callable) stands for what would be read back.
        """
        if not tracker.changed:
            return False, None
        apply()
        if self.check_mode:
            return True, desired() if callable(desired) else desired
        return True, reread()

    def changed_result(self, tracker, changed, before, after, headers=None, **result):
        """The result of a state module: ``changed``, the diff when diff mode is on (``before``/``after`` as shown,
        ``headers`` such as before_header), and ``result``."""
        result['changed'] = changed
        if self.diff_mode:
            result['diff'] = tracker.diff(before, after, **(headers or {}))
        return result

    def _commands(self):
        return list(self._nova_manage.commands) if self._nova_manage is not None else []

    def exit(self, **result):
        self.result.update(result)
        if self.uses_nova_manage:
            self.result.setdefault('commands', self._commands())
        self.ansible.exit_json(**self.result)

    def fail(self, msg, **extra):
        result = dict(self.result)
        result.update(extra)
        if self.uses_nova_manage:
            result.setdefault('commands', self._commands())
        self.ansible.fail_json(msg=self.mask(msg), **result)

    def close(self):
        for database in [self._api_db] + list(self._cell_dbs.values()):
            if database is not None:
                database.close()

    def check_common(self):
        timeout = self.params.get('database_connect_timeout', 1)
        if not 1 <= timeout <= MAX_CONNECT_TIMEOUT:
            raise NovaCellsError(f'database_connect_timeout is {timeout}; give the seconds to wait for a database connection, '
                                 f'between 1 and {MAX_CONNECT_TIMEOUT} (PyMySQL refuses other values)')

    def __call__(self):
        try:
            self.check_common()
            result = self.run()
            if result is not None:
                self.exit(**result)
        except NovaCellsError as exc:
            self.fail(str(exc), **exc.extra)
        except NovaManageError as exc:
            extra = {}
            if exc.result is not None:
                extra = dict(rc=exc.result.rc, stdout=exc.result.stdout, stderr=exc.result.stderr)
            self.fail(str(exc), **extra)
        except (DatabaseError, ConfigError, UrlError) as exc:
            self.fail(str(exc))
        except Exception as exc:  # pylint: disable=broad-except
            self.fail(f'unexpected error: {exc}', exception=self.mask(traceback.format_exc()))
        finally:
            self.close()
