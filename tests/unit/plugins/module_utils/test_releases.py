# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.nova.cells.plugins.module_utils._releases import (
    FEATURES,
    NovaRelease,
    ReleaseError,
    detect_release,
    parse_release,
    parse_version_output,
    require,
    supports,
)


@pytest.mark.parametrize('value, major, version', [
    ('34.0.0', 34, '34.0.0'),
    ('34', 34, None),
    (34, 34, None),
    ('34.1.0.dev12', 34, '34.1.0.dev12'),
    ('13.0.0.0b3', 13, '13.0.0.0b3'),
    ('mitaka', 13, None),
    ('Mitaka', 13, None),
    ('liberty', 12, None),
    ('kilo', 11, None),
    ('2015.1.2', 11, '2015.1.2'),     # Kilo's own version number
    ('2014.2', 10, None),             # Juno
    ('2023.1', 27, None),
    ('antelope', 27, None),
    ('2025.1', 31, None),
    (2025.1, 31, None),               # unquoted in YAML
    ('epoxy', 31, None),
    ('stable/2025.1', 31, None),
    ('stable/mitaka', 13, None),
    ('mitaka-eol', 13, None),
    ('2026.1', 33, None),
    ('gazpacho', 33, None),
    ('2026.2', 34, None),
    ('hibiscus', 34, None),
    ('2027.1', 35, None),             # newer than the names known: still ordered
])
def test_parse_release(value, major, version):
    release = parse_release(value)
    assert release.major == major
    assert release.version == version


@pytest.mark.parametrize('value, message', [
    ('2025.3', 'YEAR.1 and YEAR.2'),
    ('2025', 'not a Nova major version'),
    ('11', 'ambiguous'),
    ('2025.1.0', 'give the series alone'),
    ('foo', 'cannot parse'),
    ('', 'cannot parse'),
    (None, 'must be a Nova version'),
    (True, 'must be a Nova version'),
    ('2016.1', 'not a Nova release'),
])
def test_parse_release_errors(value, message):
    with pytest.raises(ReleaseError, match=message):
        parse_release(value)


def test_labels_and_series():
    assert parse_release('34.0.0').label == 'Nova 34.0.0 (2026.2 Hibiscus)'
    assert parse_release('mitaka').label == 'Nova 13 (Mitaka)'
    assert parse_release('kilo').label == 'Nova 2015.1 (Kilo)'
    assert parse_release('2025.1').series == '2025.1'
    assert parse_release('train').series is None
    assert parse_release('2027.2').name is None
    assert parse_release('34').as_dict() == {'major': 34, 'version': None, 'name': 'hibiscus', 'series': '2026.2',
                                             'source': 'nova_release'}


@pytest.mark.parametrize('feature, yes, no', [
    ('zk_servicegroup', ['liberty', 'kilo', 'juno'], ['mitaka', '34']),
    ('legacy_memcached_servers', ['liberty', 'mitaka'], ['newton', '34']),
    ('cache_block_servicegroup', ['mitaka', '34'], ['liberty']),
    ('create_cell_disabled', ['rocky', '34'], ['queens']),
    ('cell_url_templates', ['rocky'], ['queens']),
    ('discover_by_service', ['rocky'], ['queens']),
    ('discover_hosts_rc2', ['train', '34'], ['stein']),
    ('crash_rc_255', ['train'], ['stein']),
    ('discover_hosts_strict', ['pike'], ['ocata']),
    ('pymemcache_backend', ['wallaby', '34'], ['victoria', 'train']),
    ('backend_expiration_time', ['2025.1', '34'], ['2024.2', 'caracal']),
    ('heartbeat_without_updated_at', ['ocata'], ['newton']),
])
def test_feature_gates(feature, yes, no):
    for release in yes:
        assert supports(release, feature), (release, feature)
    for release in no:
        assert not supports(release, feature), (release, feature)


def test_unknown_release_means_newest():
    assert supports(None, 'backend_expiration_time')
    assert not supports(None, 'zk_servicegroup')


def test_oslo_cache_version_decides_when_known():
    # pymemcache: 2.7.0 on master, backported as 2.6.2 (victoria) and 2.3.1 (ussuri)
    assert supports('ussuri', 'pymemcache_backend', oslo_cache_version='2.3.1')
    assert not supports('ussuri', 'pymemcache_backend', oslo_cache_version='2.3.0')
    assert supports('victoria', 'pymemcache_backend', oslo_cache_version='2.6.2')
    assert not supports('34', 'backend_expiration_time', oslo_cache_version='3.8.0')
    assert supports('2024.2', 'backend_expiration_time', oslo_cache_version='3.9.0')
    assert supports('34', 'backend_expiration_time', oslo_cache_version='garbage')  # unparseable: the release decides


def test_require_messages():
    with pytest.raises(ReleaseError, match=r'needs Nova 18 \(Rocky\) or later; the target is Nova 17 \(Queens\)'):
        require('queens', 'create_cell_disabled')
    with pytest.raises(ReleaseError, match=r'exists only up to Nova 12 \(Liberty\)'):
        require('34.0.0', 'zk_servicegroup')
    require('34', 'discover_hosts_rc2')


def test_every_feature_has_a_description():
    for name, feature in FEATURES.items():
        assert feature.description, name
        assert feature.minimum is not None or feature.maximum is not None, name


@pytest.mark.parametrize('text, major', [
    ('34.0.0\n', 34),
    ('34.0.0.0rc1\n', 34),
    ('some warning\n27.1.0\n', 27),
    ('2015.1.2\n', 11),
    ('no version\n', None),
])
def test_parse_version_output(text, major):
    release = parse_version_output(text, 'nova-manage --version')
    assert (release.major if release else None) == major


class FakeRunner:
    """Stands in for AnsibleModule.run_command: maps argv[0] (and the last argument) to (rc, out, err)."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = []

    def __call__(self, argv):
        self.calls.append(list(argv))
        for matcher, answer in self.answers:
            if matcher(argv):
                return answer
        raise FileNotFoundError(2, 'No such file or directory', argv[0])


def _probe_answer(nova, oslo_cache=None):
    return 0, 'noise\n' + json.dumps({'nova': nova, 'oslo.cache': oslo_cache}) + '\n', ''


def test_detect_with_nova_python():
    runner = FakeRunner([(lambda argv: argv[0] == '/opt/nova/bin/python', _probe_answer('34.0.0', '4.3.0'))])
    detected = detect_release(runner, ['nova-manage-not-there'], python='/opt/nova/bin/python')
    assert detected.release.major == 34
    assert detected.oslo_cache_version == '4.3.0'
    assert 'importlib.metadata in /opt/nova/bin/python' in detected.release.source
    assert len(runner.calls) == 1


def test_detect_through_the_nova_manage_shebang(tmp_path):
    script = tmp_path / 'nova-manage'
    script.write_text('#!/opt/venv/bin/python3\nimport sys\n', encoding='utf-8')
    runner = FakeRunner([(lambda argv: argv[0] == '/opt/venv/bin/python3', _probe_answer('31.1.0', '3.10.1'))])
    detected = detect_release(runner, [str(script)])
    assert detected.release.version == '31.1.0'
    assert detected.oslo_cache_version == '3.10.1'


def test_detect_env_shebang(tmp_path):
    script = tmp_path / 'nova-manage'
    script.write_text('#!/usr/bin/env python3\n', encoding='utf-8')
    runner = FakeRunner([(lambda argv: argv[:2] == ['/usr/bin/env', 'python3'], _probe_answer('29.0.0'))])
    assert detect_release(runner, [str(script)]).release.major == 29


def test_detect_falls_back_to_version_option(tmp_path):
    script = tmp_path / 'nova-manage'
    script.write_text('#!/bin/sh\nexec podman exec nova nova-manage "$@"\n', encoding='utf-8')
    os.chmod(script, 0o755)
    runner = FakeRunner([(lambda argv: argv[-1] == '--version', (0, '', '12.0.4\n'))])  # Python 2 printed it to stderr
    detected = detect_release(runner, [str(script)])
    assert detected.release.major == 12
    assert detected.oslo_cache_version is None


def test_detect_container_command_uses_version_option():
    runner = FakeRunner([(lambda argv: argv[-1] == '--version', (0, '33.0.1\n', ''))])
    detected = detect_release(runner, ['podman', 'exec', 'nova_api', 'nova-manage'])
    assert detected.release.major == 33
    assert runner.calls == [['podman', 'exec', 'nova_api', 'nova-manage', '--version']]


def test_detect_failure_says_what_was_tried():
    runner = FakeRunner([])
    with pytest.raises(ReleaseError) as info:
        detect_release(runner, ['/nonexistent/nova-manage'], python='/nonexistent/python')
    message = str(info.value)
    assert 'importlib.metadata in /nonexistent/python' in message
    assert '/nonexistent/nova-manage --version (rc 127)' in message
    assert 'set nova_release' in message


def test_release_is_a_tuple_with_helpers():
    release = NovaRelease(34, '34.0.0', 'test')
    assert release.supports('backend_expiration_time')
    assert parse_release(release) is release


def test_nova_python_is_found_one_way(tmp_path):
    from ansible_collections.nova.cells.plugins.module_utils._releases import nova_python

    env = tmp_path / 'env-nova-manage'
    env.write_text('#!/usr/bin/env python3\n', encoding='utf-8')
    venv = tmp_path / 'venv-nova-manage'
    venv.write_text('#!/opt/nova/bin/python3 -s\n', encoding='utf-8')
    shell = tmp_path / 'sh-nova-manage'
    shell.write_text('#!/bin/sh\n', encoding='utf-8')
    assert nova_python([str(env)]) == ['/usr/bin/env', 'python3']   # not just /usr/bin/env
    assert nova_python([str(venv)]) == ['/opt/nova/bin/python3', '-s']
    assert nova_python([str(venv)], python='/usr/bin/python3') == ['/usr/bin/python3']
    assert nova_python([str(shell)]) is None
    assert nova_python(['podman', 'exec', 'nova_api', 'nova-manage']) is None
    assert nova_python([str(tmp_path / 'missing')]) is None
