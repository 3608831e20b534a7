# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._nova_conf import (
    ConfigError,
    IniDocument,
    NovaConfig,
    ini_secret_values,
    mask_ini_text,
    parse_ini,
)
from ansible_collections.nova.cells.plugins.module_utils._urls import mask_url


def test_later_files_win(tmp_path):
    first = tmp_path / 'nova.conf'
    second = tmp_path / 'override.conf'
    first.write_text('[DEFAULT]\ntransport_url = rabbit://a\n[database]\nconnection = mysql://u:p@h/one\n')
    second.write_text('[database]\nconnection = mysql://u:p@h/two\n')
    conf = NovaConfig.load([str(first), str(second)])
    assert conf.database_connection == 'mysql://u:p@h/two'
    assert conf.transport_url == 'rabbit://a'
    assert conf.api_database_connection is None


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match='does not exist'):
        NovaConfig.load([str(tmp_path / 'nope.conf')])


def test_missing_file_is_skipped_when_not_required(tmp_path):
    assert NovaConfig.load([str(tmp_path / 'nope.conf')], required=False).transport_url is None


def test_inline_comments_are_part_of_the_value_as_in_oslo_config():
    conf = NovaConfig.from_text('[DEFAULT]\nhost = cmp1   # note\n')
    assert conf.get('DEFAULT', 'host') == 'cmp1   # note'


def test_section_names_are_case_insensitive_except_default():
    conf = NovaConfig.from_text('[API_DATABASE]\nconnection = mysql://x/y\n[default]\nfoo = 1\n')
    assert conf.api_database_connection == 'mysql://x/y'
    assert conf.get('DEFAULT', 'foo') is None


def test_quotes_colon_assignments_and_continuations():
    conf = NovaConfig.from_text('[a]\nx = "quoted"\ny: colon\nz = first\n  second\n')
    assert conf.get('a', 'x') == 'quoted'
    assert conf.get('a', 'y') == 'colon'
    assert conf.get('a', 'z') == 'first\nsecond'


def test_last_assignment_wins_within_a_file():
    assert NovaConfig.from_text('[a]\nx = 1\nx = 2\n').get('a', 'x') == '2'


def test_dollar_substitution_like_oslo_config():
    conf = NovaConfig.from_text('[DEFAULT]\nmy_ip = 10.0.0.5\n[database]\n'
                                'connection = mysql://nova:pa$$word@$my_ip/nova\n[x]\ny = ${database.connection}\n')
    assert conf.database_connection == 'mysql://nova:pa$word@10.0.0.5/nova'
    assert conf.get('x', 'y') == 'mysql://nova:pa$word@10.0.0.5/nova'


@pytest.mark.parametrize('text,fragment', [
    ('x = 1\n', 'before any'),
    ('[a]\n  continued\n', 'continuation'),
    ('[a\nx=1\n', 'section header'),
    ('[a]\njustaword\n', "no '='"),
])
def test_parse_errors_name_the_line(text, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_ini(text, 'nova.conf')


def test_ini_document_sets_existing_option_in_place():
    doc = IniDocument('# head\n[DEFAULT]\n# keep me\nreport_interval = 10\ndebug = true\n')
    assert doc.set('DEFAULT', 'report_interval', '5') is True
    assert doc.text() == '# head\n[DEFAULT]\n# keep me\nreport_interval = 5\ndebug = true\n'
    assert doc.set('DEFAULT', 'report_interval', '5') is False


def test_ini_document_appends_to_section_before_blank_lines():
    doc = IniDocument('[DEFAULT]\ndebug = true\n\n[cache]\nenabled = false\n')
    doc.set('DEFAULT', 'servicegroup_driver', 'mc')
    assert doc.text() == '[DEFAULT]\ndebug = true\nservicegroup_driver = mc\n\n[cache]\nenabled = false\n'


def test_ini_document_creates_missing_section_and_removes_options():
    doc = IniDocument('[DEFAULT]\nmemcached_servers = a:1\n')
    doc.set('cache', 'enabled', 'true')
    assert doc.remove('DEFAULT', 'memcached_servers') is True
    assert doc.remove('DEFAULT', 'memcached_servers') is False
    assert doc.text() == '[DEFAULT]\n\n[cache]\nenabled = true\n'
    assert doc.get('cache', 'enabled') == 'true'


# -- secrets in a whole file ----------------------------------------------------------------------

CONF = '''[DEFAULT]
transport_url = rabbit://nova:R@bb1t%2Bpw@mq1:5672,nova:R@bb1t%2Bpw@mq2:5672/
# transport_url = rabbit://old:0ldSecret@mq:5672/
[database]
connection = mysql+pymysql://nova:Db%2Fpass@db/nova
[keystone_authtoken]
password = Keyst0ne!
memcache_secret_key = S3cretKey
auth_type = password
[cache]
backend_argument = url:127.0.0.1
'''


def test_ini_secret_values_and_masking():
    urls, plain = ini_secret_values(parse_ini(CONF))
    assert 'mysql+pymysql://nova:Db%2Fpass@db/nova' in urls
    assert {'Keyst0ne!', 'S3cretKey', 'url:127.0.0.1'} <= plain
    assert 'password' not in plain  # auth_type = password is not a secret
    masked = mask_ini_text(CONF, mask_url)
    for secret in ('R@bb1t', 'Db%2Fpass', 'Keyst0ne!', 'S3cretKey', '0ldSecret'):
        assert secret not in masked, secret
    assert 'connection = mysql+pymysql://nova:****@db/nova' in masked
    assert 'password = ****' in masked
    assert 'auth_type = password' in masked
    assert masked.count('\n') == CONF.count('\n')
