# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

import pytest

from ansible_collections.nova.cells.plugins.module_utils._urls import (
    UrlError,
    expand_template,
    mask_url,
    normalise_url,
    pymysql_connect_args,
    url_secrets,
    urls_equal,
    validate_db_url,
    validate_transport_url,
    with_database,
)

BASE_DB = 'mysql+pymysql://nova:N0va%2Bp%40ss@db1.example:3307/nova_cell1?charset=utf8&ssl_ca=/etc/ca.pem'
BASE_MQ = 'rabbit://nova:mq1pw@mq1:5672,nova2:mq2pw@mq2:5673/cell1?ssl=1'


def test_mask_hides_every_password_of_a_multi_host_url():
    assert mask_url(BASE_MQ) == 'rabbit://nova:****@mq1:5672,nova2:****@mq2:5673/cell1?ssl=1'


def test_mask_keeps_template_placeholders_readable():
    assert mask_url('{scheme}://{username}:{password}@db2/nova') == '{scheme}://{username}:{password}@db2/nova'
    assert mask_url('rabbit://u:{password1}@{hostname1}/x') == 'rabbit://u:{password1}@{hostname1}/x'


def test_mask_hides_literal_password_inside_a_template():
    assert mask_url('rabbit://nova:secret@{hostname}:{port}/cell2') == 'rabbit://nova:****@{hostname}:{port}/cell2'


def test_mask_hides_password_query_options():
    assert 'hunter2' not in mask_url('mysql://u@h/db?password=hunter2')


def test_mask_leaves_url_without_credentials_alone():
    assert mask_url('none:///') == 'none:///'
    assert mask_url('rabbit://mq1:5672/') == 'rabbit://mq1:5672/'


def test_secrets_include_raw_and_decoded_password():
    assert url_secrets(BASE_DB) == {'N0va%2Bp%40ss', 'N0va+p@ss'}
    assert url_secrets(BASE_MQ) == {'mq1pw', 'mq2pw'}
    assert url_secrets('{scheme}://{username}:{password}@h/db') == set()
    assert url_secrets(None) == set()


def test_template_expansion_matches_nova_format_url():
    template = '{scheme}://{username}:{password}@{hostname}:{port}/nova_cell2?{query}'
    rendered, error = expand_template(template, BASE_DB)
    assert error is None
    # Nova uses urlparse attributes: the password stays percent-encoded as in the base URL.
    assert rendered == 'mysql+pymysql://nova:N0va%2Bp%40ss@db1.example:3307/nova_cell2?charset=utf8&ssl_ca=/etc/ca.pem'


def test_template_path_and_fragment_variables():
    rendered, error = expand_template('rabbit://h/{path}#{fragment}', 'rabbit://u:p@q:1/vhost#frag')
    assert (rendered, error) == ('rabbit://h/vhost#frag', None)


def test_template_numbered_variables_of_multi_host_url():
    rendered, error = expand_template('rabbit://{username2}:{password2}@{hostname2}:{port2},{username1}@{hostname1}/x', BASE_MQ)
    assert error is None
    assert rendered == 'rabbit://nova2:mq2pw@mq2:5673,nova@mq1/x'


def test_template_missing_port_renders_none_like_nova():
    rendered, _error = expand_template('mysql://{hostname}:{port}/db', 'mysql://u:p@db/x')
    assert rendered == 'mysql://db:None/db'


def test_template_numbered_variable_without_multi_host_base_is_an_error():
    rendered, error = expand_template('rabbit://{hostname1}/x', 'rabbit://u:p@mq/x')
    assert rendered == 'rabbit://{hostname1}/x'
    assert 'hostname1' in error


def test_template_without_base_option_is_reported():
    rendered, error = expand_template('{scheme}://h/db', None)
    assert rendered == '{scheme}://h/db'
    assert 'not set' in error


def test_non_template_is_returned_unchanged():
    assert expand_template('mysql://u:p@h/db', None) == ('mysql://u:p@h/db', None)


def test_doubled_braces_are_literal():
    assert expand_template('mysql://h/db?x={{y}}', BASE_DB) == ('mysql://h/db?x={y}', None)


@pytest.mark.parametrize('left,right', [
    ('mysql://u:p@h/db?a=1&b=2', 'mysql://u:p@h/db?b=2&a=1'),
    ('MYSQL+PyMySQL://u:p@h/db', 'mysql+pymysql://u:p@h/db'),
    ('mysql://u:p@h/db?', 'mysql://u:p@h/db'),
])
def test_equivalent_urls_compare_equal(left, right):
    assert urls_equal(left, right)


@pytest.mark.parametrize('left,right', [
    ('mysql://u:p@h/db', 'mysql://u:p@h/db/'),
    ('mysql://u:p@localhost/db', 'mysql://u:p@127.0.0.1/db'),
    ('mysql://u:p@h/db', 'mysql://u:p@h:3306/db'),
    ('mysql://u:p@h/db', 'mysql://u:q@h/db'),
    ('mysql://u:p@h/db?charset=utf8', 'mysql://u:p@h/db'),
])
def test_different_urls_compare_different(left, right):
    assert not urls_equal(left, right)


def test_normalise_keeps_templates_intact():
    template = '{scheme}://{username}:{password}@h/db?{query}'
    assert normalise_url(template) == template


@pytest.mark.parametrize('url,fragment', [
    ('', 'empty'),
    ('db1/nova', 'no scheme'),
    ('postgresql://u:p@h/db', "unsupported scheme 'postgresql'"),
    ('sqlite:///nova.db', "unsupported scheme 'sqlite'"),
    ('mysql://u:p@h', 'names no database'),
    ('mysql://u:p@h/a/b', 'more than a database name'),
    ('mysql://u:p@h:70000/db', 'invalid port'),
    ('mysql:///db', 'no host'),
])
def test_invalid_db_urls_are_refused_with_a_reason(url, fragment):
    with pytest.raises(UrlError, match=fragment):
        validate_db_url(url)


def test_invalid_db_url_message_never_contains_the_password():
    with pytest.raises(UrlError) as info:
        validate_db_url('mysql://u:topsecret@h')
    assert 'topsecret' not in str(info.value)


def test_unix_socket_db_url_is_valid():
    validate_db_url('mysql+pymysql://nova:pw@/nova_api?unix_socket=/run/mysqld/mysqld.sock')


@pytest.mark.parametrize('url,fragment', [
    ('notaurl', 'no scheme'),
    ('http://mq1/', "unknown transport scheme 'http'"),
    ('none:///', 'only valid for cell0'),
    ('rabbit://u:p@h:port/', 'invalid host or port'),
])
def test_invalid_transport_urls_are_refused(url, fragment):
    with pytest.raises(UrlError, match=fragment):
        validate_transport_url(url)


def test_transport_urls_that_oslo_messaging_accepts():
    validate_transport_url('rabbit://')
    validate_transport_url(BASE_MQ)
    validate_transport_url('kombu+memory:////')
    validate_transport_url('none:///', allow_none=True)


def test_pymysql_arguments_decode_credentials_and_tls_options():
    args = pymysql_connect_args(BASE_DB)
    assert args == {
        'host': 'db1.example', 'port': 3307, 'user': 'nova', 'password': 'N0va+p@ss', 'database': 'nova_cell1',
        'charset': 'utf8', 'ssl': {'ca': '/etc/ca.pem'},
    }


def test_pymysql_arguments_for_unix_socket_and_verify_flags():
    args = pymysql_connect_args('mysql://root@/nova_api?unix_socket=/tmp/s.sock&ssl_verify_cert=true&ssl_verify_identity=0')
    assert args['unix_socket'] == '/tmp/s.sock'
    assert args['ssl_verify_cert'] is True
    assert args['ssl_verify_identity'] is False
    assert args['password'] == ''


def test_with_database_swaps_only_the_database():
    assert with_database(BASE_DB, 'nova_cell0') == (
        'mysql+pymysql://nova:N0va%2Bp%40ss@db1.example:3307/nova_cell0?charset=utf8&ssl_ca=/etc/ca.pem')
