# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import json
import os
import stat

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.nova.cells.plugins.modules import servicegroup

DB_PASSWORD = 'N0va+p@ss/w:rd%!'
DB_PASSWORD_QUOTED = 'N0va%2Bp%40ss%2Fw%3Ard%25%21'
EXISTING = '''# nova.conf kept by hand
[DEFAULT]
transport_url = rabbit://nova:R%40bbit%2Bpw@127.0.0.1:5672/
servicegroup_driver=mc
memcached_servers = 10.0.0.9:11211
debug = true

[database]
connection = mysql+pymysql://nova:DBPASSWORD@127.0.0.1/nova

[keystone_authtoken]
password = Keyst0nePw

[cache]
enabled = true
backend = dogpile.cache.pymemcache
memcache_servers = 10.0.0.9:11211

[zookeeper]
address = zk:2181
'''.replace('DBPASSWORD', DB_PASSWORD_QUOTED)


def run(capsys, **args):
    args.setdefault('nova_release', '34.0.0')
    with patch_module_args(args), pytest.raises(SystemExit):
        servicegroup.main()
    return json.loads(capsys.readouterr().out)


def test_creates_the_file_with_mode_0640(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    result = run(capsys, path=str(path), driver='db', report_interval=2, service_down_time=6)
    assert result['changed'] is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert path.read_text() == '[DEFAULT]\nservicegroup_driver = db\nreport_interval = 2\nservice_down_time = 6\n'
    assert result['nova_release']['major'] == 34
    again = run(capsys, path=str(path), driver='db', report_interval=2, service_down_time=6)
    assert again['changed'] is False and again['changes'] == []


def test_explicit_mode_wins(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    run(capsys, path=str(path), driver='db', mode='0600')
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    result = run(capsys, path=str(path), driver='db', mode='0644')
    assert result['changed'] is True and stat.S_IMODE(os.stat(path).st_mode) == 0o644


def test_check_mode_creates_nothing(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    result = run(capsys, path=str(path), driver='db', _ansible_check_mode=True, _ansible_diff=True)
    assert result['changed'] is True and not path.exists()
    assert result['diff']['before'] == '' and 'servicegroup_driver = db' in result['diff']['after']


def test_switch_mc_to_db_keeps_the_rest_and_masks_the_diff(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    path.write_text(EXISTING)
    os.chmod(path, 0o600)
    checked = run(capsys, path=str(path), driver='db', _ansible_check_mode=True, _ansible_diff=True)
    assert checked['changed'] is True and path.read_text() == EXISTING
    result = run(capsys, path=str(path), driver='db', _ansible_diff=True)
    text = path.read_text()
    assert result['changed'] is True
    assert 'servicegroup_driver = db' in text and 'servicegroup_driver=mc' not in text
    assert 'memcached_servers' not in text                  # ignored since Newton: removed
    assert '[zookeeper]\n' in text and 'address = zk:2181' not in text
    assert 'backend = dogpile.cache.pymemcache' in text       # [cache] stays: other features use it
    assert '# nova.conf kept by hand' in text and 'debug = true' in text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600       # attributes of an existing file are kept
    assert set(result['changes']) == {'DEFAULT/servicegroup_driver set', 'DEFAULT/report_interval set',
                                      'DEFAULT/service_down_time set', 'DEFAULT/memcached_servers removed',
                                      'zookeeper/address removed'}
    raw = json.dumps(result) + json.dumps(checked)
    for secret in (DB_PASSWORD, DB_PASSWORD_QUOTED, 'R%40bbit%2Bpw', 'R@bbit+pw', 'Keyst0nePw'):
        assert secret not in raw, secret
    assert 'connection = mysql+pymysql://nova:****@127.0.0.1/nova' in result['diff']['before']
    assert run(capsys, path=str(path), driver='db')['changed'] is False


def test_equal_values_written_differently_are_not_changes(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    path.write_text('[DEFAULT]\nservicegroup_driver=db\nreport_interval: 10\nservice_down_time = "60"\n')
    result = run(capsys, path=str(path), driver='db')
    assert result['changed'] is False


def test_mc_block(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    result = run(capsys, path=str(path), driver='mc', memcache_servers=['127.0.0.1:11211'], report_interval=2, service_down_time=6)
    assert result['options']['cache'] == {'enabled': 'true', 'backend': 'dogpile.cache.pymemcache', 'memcache_servers': '127.0.0.1:11211'}
    assert '[cache]\nenabled = true\nbackend = dogpile.cache.pymemcache\nmemcache_servers = 127.0.0.1:11211\n' in path.read_text()


def test_mitaka_mc_uses_the_legacy_option(tmp_path, capsys):
    path = tmp_path / 'nova.conf'
    result = run(capsys, path=str(path), driver='mc', nova_release='mitaka', memcache_servers=['127.0.0.1:11211'])
    assert result['options'] == {'DEFAULT': {'servicegroup_driver': 'mc', 'report_interval': '10', 'service_down_time': '60',
                                             'memcached_servers': '127.0.0.1:11211'}}
    assert '[cache]' not in path.read_text()


@pytest.mark.parametrize('args, message', [
    (dict(driver='zk', zookeeper_address=['127.0.0.1:2181']), 'removed in Mitaka 13.0.0'),
    (dict(driver='db', report_interval=10, service_down_time=10), 'int(2.5 x report_interval) = 25 seconds'),
    (dict(driver='mc', memcache_servers=['127.0.0.1:11211'], cache_backend='dogpile.cache.null'), 'stores nothing'),
    (dict(driver='mc'), 'memcache_servers is empty'),
    (dict(driver='db', nova_release='bogus'), 'cannot parse nova_release'),
])
def test_refusals_write_nothing(tmp_path, capsys, args, message):
    path = tmp_path / 'nova.conf'
    result = run(capsys, path=str(path), **args)
    assert result['failed'] is True
    assert message in result['msg']
    assert not path.exists()


def test_missing_directory(tmp_path, capsys):
    result = run(capsys, path=str(tmp_path / 'missing' / 'nova.conf'), driver='db')
    assert result['failed'] is True and 'does not exist' in result['msg']


def test_check_backend_names_the_server_that_did_not_answer(tmp_path, capsys):
    pytest.importorskip('pymemcache')
    path = tmp_path / 'nova.conf'
    # port 1 on loopback: nothing listens there, the connection is refused at once
    result = run(capsys, path=str(path), driver='mc', memcache_servers=['127.0.0.1:1'], check_backend=True, backend_timeout=1)
    assert result['failed'] is True
    assert 'memcached 127.0.0.1:1 did not answer' in result['msg'] and 'nothing was written' in result['msg']
    assert not path.exists()
