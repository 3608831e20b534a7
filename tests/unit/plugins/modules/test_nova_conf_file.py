# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""nova_conf_file: the directory, the file (written only when it differs), check mode, diff without content, stale files."""

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.modules import nova_conf_file

SECRET = 'S3cret+Pw/1'
CONTENT = f'[database]\nconnection = mysql+pymysql://nova:{SECRET}@db/nova\n'


@pytest.fixture
def run(capsys):
    def run_module(**args):
        with patch_module_args(args), pytest.raises(SystemExit):
            nova_conf_file.main()
        out = capsys.readouterr().out
        assert SECRET not in out
        return json.loads(out)

    return run_module


def args(tmp_path, content=CONTENT, **extra):
    base = dict(path=str(tmp_path / 'etc' / 'nova.conf'), content=content, mode='0640',
                directory=dict(path=str(tmp_path / 'etc'), mode='0750'))
    base.update(extra)
    return base


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_first_run_creates_directory_and_file_then_nothing_changes(tmp_path, run):
    first = run(**args(tmp_path), _ansible_diff=True)
    conf = tmp_path / 'etc' / 'nova.conf'
    assert first['changed'] and first['existed'] is False and first['content_changed'] is True
    assert conf.read_text() == CONTENT and mode(conf) == 0o640 and mode(tmp_path / 'etc') == 0o750
    assert first['diff']['before'][str(conf)] == 'absent' and first['diff']['after'][str(conf)]['checksum'] == first['checksum']
    second = run(**args(tmp_path), _ansible_diff=True)
    assert second['changed'] is False and second['existed'] is True and second['content_changed'] is False
    assert second['diff']['before'] == {} and second['diff']['after'] == {}
    assert os.listdir(tmp_path / 'etc') == ['nova.conf']   # no temporary file left


def test_check_mode_writes_nothing_and_reports_the_change(tmp_path, run):
    result = run(**args(tmp_path), _ansible_check_mode=True)
    assert result['changed'] and not (tmp_path / 'etc').exists()
    (tmp_path / 'etc').mkdir(mode=0o750)
    (tmp_path / 'etc' / 'nova.conf').write_text('old\n')
    result = run(**args(tmp_path), _ansible_check_mode=True, _ansible_diff=True)
    assert result['changed'] and result['content_changed'] and (tmp_path / 'etc' / 'nova.conf').read_text() == 'old\n'


def test_new_content_replaces_the_file_and_keeps_no_content_in_the_result(tmp_path, run):
    run(**args(tmp_path))
    conf = tmp_path / 'etc' / 'nova.conf'
    before = conf.stat().st_ino
    result = run(**args(tmp_path, content=CONTENT + '[DEFAULT]\ndebug = true\n'), _ansible_diff=True)
    assert result['changed'] and result['content_changed'] and conf.read_text().endswith('debug = true\n')
    assert conf.stat().st_ino != before and mode(conf) == 0o640       # replaced by rename, attributes kept
    assert 'connection' not in json.dumps(result)


def test_attribute_drift_is_corrected_and_shown(tmp_path, run):
    run(**args(tmp_path))
    conf = tmp_path / 'etc' / 'nova.conf'
    os.chmod(conf, 0o644)
    os.chmod(tmp_path / 'etc', 0o755)
    result = run(**args(tmp_path), _ansible_diff=True)
    assert result['changed'] and not result['content_changed']
    assert mode(conf) == 0o640 and mode(tmp_path / 'etc') == 0o750
    assert result['diff']['before'][str(conf)] == {'mode': '0644'} and result['diff']['after'][str(conf)] == {'mode': '0640'}


def test_stale_files_are_listed_not_removed(tmp_path, run):
    etc = tmp_path / 'etc'
    systemd = tmp_path / 'systemd'
    (systemd / 'nova-api.service.d').mkdir(parents=True)
    (systemd / 'nova-api.service.d' / 'nova-cells-db.conf').write_text('x')
    (systemd / 'nova-conductor.service.d').mkdir(parents=True)
    (systemd / 'nova-conductor.service.d' / 'nova-cells-db.conf').write_text('x')
    (systemd / 'nova-conductor.service.d' / 'deep').mkdir()
    (systemd / 'nova-conductor.service.d' / 'deep' / 'nova-cells-db.conf').write_text('x')   # depth 3: not searched
    etc.mkdir()
    (etc / 'nova-db.env').write_text('x')
    pattern = f'^({etc}/nova-db[.]env|{systemd}/[^/]+[.]service[.]d/nova-cells-db[.]conf)$'
    keep = [str(systemd / 'nova-api.service.d' / 'nova-cells-db.conf')]
    result = run(**args(tmp_path, stale=dict(paths=[str(etc), str(systemd), str(tmp_path / 'missing')], pattern=pattern, keep=keep)))
    assert result['stale'] == [str(etc / 'nova-db.env'), str(systemd / 'nova-conductor.service.d' / 'nova-cells-db.conf')]
    assert (etc / 'nova-db.env').exists()


def test_bad_input_changes_nothing(tmp_path, run):
    (tmp_path / 'etc').write_text('a file where the directory should be')
    result = run(**args(tmp_path))
    assert result['failed'] and 'is not a directory' in result['msg']
    result = run(**args(tmp_path / 'x', stale=dict(paths=[str(tmp_path)], pattern='(')))
    assert result['failed'] and 'not a valid regular expression' in result['msg'] and not (tmp_path / 'x').exists()


def files_args(tmp_path, contents, **extra):
    base = dict(files=[dict(path=str(tmp_path / 'manage' / name), content=content) for name, content in contents.items()],
                mode='0600', directory=dict(path=str(tmp_path / 'manage'), mode='0700'))
    base.update(extra)
    return base


def test_several_files_in_one_run_then_nothing_changes(tmp_path, run):
    contents = {'api.conf': CONTENT, 'cell-cell1.conf': CONTENT.replace('/nova', '/nova_cell1')}
    first = run(**files_args(tmp_path, contents), _ansible_diff=True)
    assert first['changed'] and [entry['content_changed'] for entry in first['files']] == [True, True]
    assert [entry['path'] for entry in first['files']] == [str(tmp_path / 'manage' / name) for name in contents]
    assert 'existed' not in first and all('content' not in entry for entry in first['files'])
    for name, content in contents.items():
        assert (tmp_path / 'manage' / name).read_text() == content and mode(tmp_path / 'manage' / name) == 0o600
    assert mode(tmp_path / 'manage') == 0o700 and first['diff']['before'][str(tmp_path / 'manage')] == 'absent'
    second = run(**files_args(tmp_path, contents), _ansible_diff=True)
    assert second['changed'] is False and [entry['existed'] for entry in second['files']] == [True, True]
    assert second['diff']['before'] == {} and second['diff']['after'] == {}


def test_several_files_only_the_changed_one_is_written_check_mode_writes_nothing(tmp_path, run):
    contents = {'api.conf': CONTENT, 'cell-cell1.conf': CONTENT.replace('/nova', '/nova_cell1')}
    run(**files_args(tmp_path, contents))
    stamp = os.stat(tmp_path / 'manage' / 'api.conf').st_mtime_ns
    contents['cell-cell1.conf'] = CONTENT.replace('/nova', '/nova_cell9')
    checked = run(**files_args(tmp_path, contents), _ansible_check_mode=True, _ansible_diff=True)
    assert checked['changed'] and [entry['content_changed'] for entry in checked['files']] == [False, True]
    assert list(checked['diff']['after']) == [str(tmp_path / 'manage' / 'cell-cell1.conf')]
    assert 'nova_cell1' in (tmp_path / 'manage' / 'cell-cell1.conf').read_text()
    result = run(**files_args(tmp_path, contents))
    assert result['changed'] and 'nova_cell9' in (tmp_path / 'manage' / 'cell-cell1.conf').read_text()
    assert os.stat(tmp_path / 'manage' / 'api.conf').st_mtime_ns == stamp


def test_several_files_bad_input_changes_nothing(tmp_path, capsys):
    def failed(**arguments):
        with patch_module_args(arguments), pytest.raises(SystemExit):
            nova_conf_file.main()
        out = capsys.readouterr().out
        assert SECRET not in out
        return json.loads(out)

    twice = files_args(tmp_path, {'api.conf': CONTENT})
    twice['files'].append(dict(twice['files'][0]))
    assert 'more than once' in failed(**twice)['msg'] and not (tmp_path / 'manage').exists()
    (tmp_path / 'manage').mkdir()
    (tmp_path / 'manage' / 'cell-cell1.conf').mkdir()
    result = failed(**files_args(tmp_path, {'api.conf': CONTENT, 'cell-cell1.conf': CONTENT}))
    assert 'is not a regular file' in result['msg'] and not (tmp_path / 'manage' / 'api.conf').exists()
    both = dict(files_args(tmp_path, {'api.conf': CONTENT}), path=str(tmp_path / 'x'), content=CONTENT)
    assert 'mutually exclusive' in failed(**both)['msg']


def test_units_down_is_read_with_one_systemctl_call_and_changes_nothing(tmp_path, run, monkeypatch):
    calls = []

    def systemctl(_module, argv, **_kwargs):
        calls.append(argv)
        state = {'nova-api': ('enabled', 'active'), 'nova-scheduler': ('enabled', 'failed'), 'nova-conductor': ('disabled', 'active')}
        blocks = [f'Id={name}.service\nLoadState={"loaded" if name in state else "not-found"}\n'
                  f'UnitFileState={state.get(name, ("", ""))[0]}\nActiveState={state.get(name, ("", "inactive"))[1]}\n'
                  for name in argv[argv.index('--') + 1:]]
        return 0, '\n'.join(blocks), ''

    monkeypatch.setattr(AnsibleModule, 'run_command', systemctl)
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda _module, name, required=False, opt_dirs=None: '/usr/bin/systemctl')
    first = run(**args(tmp_path, units=['nova-api', 'nova-scheduler', 'nova-conductor', 'nova-novncproxy']))
    # Not running, not enabled, not installed; the running enabled one is not listed. Only "show" ran.
    assert first['units_down'] == ['nova-scheduler', 'nova-conductor', 'nova-novncproxy']
    assert len(calls) == 1 and calls[0][1] == 'show'
    check = run(**args(tmp_path, units=['nova-api']), _ansible_check_mode=True)
    assert check['units_down'] == [] and check['changed'] is False
    assert 'units_down' not in run(**args(tmp_path))


def test_units_down_is_every_unit_where_systemd_cannot_be_asked(tmp_path, run, monkeypatch):
    names = ['nova-api', 'nova-scheduler']
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda _module, name, required=False, opt_dirs=None: None)
    assert run(**args(tmp_path, units=names))['units_down'] == names
    monkeypatch.setattr(AnsibleModule, 'get_bin_path', lambda _module, name, required=False, opt_dirs=None: '/usr/bin/systemctl')
    monkeypatch.setattr(AnsibleModule, 'run_command',
                        lambda _module, argv, **_kwargs: (1, '', 'System has not been booted with systemd as init system (PID 1).'))
    result = run(**args(tmp_path, units=names))
    assert result['units_down'] == names and result['changed'] is False
