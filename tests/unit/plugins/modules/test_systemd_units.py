# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""systemd_units: one systemctl read for every unit, actions only for the units that differ, check mode, refusals."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.modules import systemd_units

SYSTEMCTL = '/usr/bin/systemctl'


class FakeSystemd:
    """Units by name: {'UnitFileState': ..., 'ActiveState': ...}; LoadState not-found for unknown names."""

    def __init__(self, units):
        self.units = units
        self.calls = []
        self.fail = set()

    def run_command(self, argv, **_kwargs):
        self.calls.append(argv)
        verb, names = argv[1], argv[argv.index('--') + 1:]
        if verb == 'show':
            blocks = []
            for name in names:
                unit = self.units.get(name)
                if unit is None:
                    blocks.append(f'Id={name}.service\nLoadState=not-found\nUnitFileState=\nActiveState=inactive\n')
                else:
                    blocks.append(f"Id={name}.service\nLoadState=loaded\nUnitFileState={unit['UnitFileState']}\n"
                                  f"ActiveState={unit['ActiveState']}\n")
            return 0, '\n'.join(blocks), ''
        name = names[0]
        if (verb, name) in self.fail:
            return 1, '', f'Failed to {verb} {name}.service: Unit is masked.'
        if verb == 'enable':
            self.units[name]['UnitFileState'] = 'enabled'
        elif verb == 'start':
            self.units[name]['ActiveState'] = 'active'
        return 0, '', ''


@pytest.fixture(name='systemd')
def systemd_fixture(monkeypatch):
    fake = FakeSystemd({'nova-api': {'UnitFileState': 'enabled', 'ActiveState': 'active'},
                        'nova-scheduler': {'UnitFileState': 'disabled', 'ActiveState': 'inactive'},
                        'nova-conductor': {'UnitFileState': 'static', 'ActiveState': 'failed'}})
    monkeypatch.setattr(AnsibleModule, 'run_command', lambda self, argv, **kwargs: fake.run_command(argv, **kwargs))
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda self, name, required=False, opt_dirs=None: SYSTEMCTL)
    return fake


def run(capsys, **args):
    with patch_module_args(args), pytest.raises(SystemExit):
        systemd_units.main()
    return json.loads(capsys.readouterr().out)


def test_converged_units_cost_one_systemctl_call(systemd, capsys):
    result = run(capsys, names=['nova-api'], _ansible_diff=True)
    assert result['changed'] is False and result['commands'] == [] and result['diff'] == {'before': {}, 'after': {}}
    assert len(systemd.calls) == 1 and systemd.calls[0][:2] == [SYSTEMCTL, 'show']
    assert result['units'] == [{'name': 'nova-api', 'enabled': 'enabled', 'active': 'active', 'changed': False}]


def test_only_what_differs_is_done_in_order_then_nothing(systemd, capsys):
    result = run(capsys, names=['nova-conductor', 'nova-scheduler', 'nova-api'], _ansible_diff=True)
    assert result['changed'] is True
    # static counts as enabled (systemctl is-enabled exits 0); a failed unit is started
    assert result['commands'] == [f'{SYSTEMCTL} start -- nova-conductor', f'{SYSTEMCTL} enable -- nova-scheduler',
                                  f'{SYSTEMCTL} start -- nova-scheduler']
    assert [unit['changed'] for unit in result['units']] == [True, True, False]
    assert result['diff']['before'] == {'nova-conductor': {'enabled': 'static', 'active': 'failed'},
                                        'nova-scheduler': {'enabled': 'disabled', 'active': 'inactive'}}
    assert result['diff']['after'] == {'nova-conductor': {'enabled': 'static', 'active': 'active'},
                                       'nova-scheduler': {'enabled': 'enabled', 'active': 'active'}}
    again = run(capsys, names=['nova-conductor', 'nova-scheduler', 'nova-api'])
    assert again['changed'] is False and again['commands'] == []


def test_check_mode_changes_nothing_and_says_what_would_run(systemd, capsys):
    result = run(capsys, names=['nova-scheduler'], _ansible_check_mode=True)
    assert result['changed'] is True and len(result['commands']) == 2
    assert [call[1] for call in systemd.calls] == ['show']
    assert systemd.units['nova-scheduler'] == {'UnitFileState': 'disabled', 'ActiveState': 'inactive'}


def test_enabled_false_leaves_the_enablement(systemd, capsys):
    result = run(capsys, names=['nova-scheduler'], enabled=False)
    assert result['commands'] == [f'{SYSTEMCTL} start -- nova-scheduler']
    assert systemd.units['nova-scheduler']['UnitFileState'] == 'disabled'


def test_missing_units_fail_before_anything_changes(systemd, capsys):
    result = run(capsys, names=['nova-scheduler', 'nova-novncproxy', 'nova-spicehtml5proxy'])
    assert result['failed'] and result['msg'].startswith('Could not find the requested service nova-novncproxy, nova-spicehtml5proxy')
    assert result['missing'] == ['nova-novncproxy', 'nova-spicehtml5proxy']
    assert [call[1] for call in systemd.calls] == ['show']


def test_a_failing_action_is_reported_with_what_ran(systemd, capsys):
    systemd.fail.add(('start', 'nova-scheduler'))
    result = run(capsys, names=['nova-scheduler'])
    assert result['failed'] and result['msg'].startswith('Unable to start service nova-scheduler: Failed to start')
    assert result['commands'] == [f'{SYSTEMCTL} enable -- nova-scheduler', f'{SYSTEMCTL} start -- nova-scheduler']


def test_bad_input(systemd, capsys):
    assert 'more than once' in run(capsys, names=['nova-api', 'nova-api'])['msg']
    assert systemd.calls == []
    empty = run(capsys, names=[])
    assert empty['changed'] is False and empty['units'] == [] and systemd.calls == []


def test_parse_show_counts_the_blocks():
    text = 'Id=a.service\nLoadState=loaded\n\nId=b.service\nLoadState=not-found\n'
    assert [block['Id'] for block in systemd_units.parse_show(text, 2)] == ['a.service', 'b.service']
    with pytest.raises(ValueError, match='gave 2 unit'):
        systemd_units.parse_show(text, 3)
