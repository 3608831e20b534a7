# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Issue 13: the classes of URL handling, each tested as a class (many passwords, schemes, shapes).

Masking is structural and total (it does not depend on the URL being valid or its scheme known);
parsing follows SQLAlchemy's make_url (database URLs) and oslo.messaging's TransportURL.parse
(transport URLs); template rendering follows Nova's CellMapping._format_url. The parity of parsing and
rendering with the real libraries is proven in tests/integration/test_url_parity.py.
"""

from __future__ import annotations

import itertools
from urllib.parse import quote

import pytest

from ansible_collections.nova.cells.plugins.module_utils._nova_conf import mask_ini_text
from ansible_collections.nova.cells.plugins.module_utils._nova_manage import NovaManage, missing_command_message
from ansible_collections.nova.cells.plugins.module_utils._urls import (
    UrlError,
    expand_template,
    global_secrets,
    mask_structure,
    mask_text,
    mask_url,
    parse_db_url,
    pymysql_connect_args,
    url_secrets,
    validate_db_url,
    validate_transport_url,
)

# Passwords of several spellings: URL-special characters raw, an apostrophe, quotes, backslashes, commas,
# braces, a password equal to the user name and one character long.
PASSWORDS = [
    'S3cr3tPa55', "it's-a'secret", 'p/ss#wd?x', 'p@ss@word', 'we,ird:pw', 'back\\slash"q', '%41%zz%',
    'br{ace}s}}', 'nova', 'x', 'pw with space',
]
SCHEMES = ['mysql+pymysql', 'mysql', 'rabbit', 'postgresql', 'nosuch', '{scheme}', 'kombu+memory', '']
SHAPES = [
    '{scheme}://nova:{password}@db1.example:3306/nova_cell1?charset=utf8',
    '{scheme}://nova:{password}@db1.example/nova_cell1',
    '{scheme}://nova:{password}@db1.example:0/nova_cell1',          # bad port
    '{scheme}://nova:{password}@db1.example:65536/nova_cell1',      # bad port
    '{scheme}://nova:{password}@db1.example:port/nova_cell1',       # bad port
    '{scheme}://nova:{password}@/nova_cell1',                       # no host
    '{scheme}://nova:{password}@',                                  # nothing after
    '{scheme}://nova:{password}@[::1]:5672/vhost',
    '{scheme}://nova:{password}@{{hostname}}:{{port}}/{{path}}',
    '{scheme}://nova:{password}@mq1:5672,nova:{password}@mq2:5672/vhost',
    '{scheme}://nova:{password}@mq1:5672,mq2:5672/vhost',
    '{scheme}://db1.example/nova?password={password}',
]


def spellings(password):
    return {password, quote(password, safe=''), quote(password, safe='/')}


def case_urls():
    for password, scheme, shape in itertools.product(PASSWORDS, SCHEMES, SHAPES):
        for spelled in spellings(password):
            url = shape.replace('{scheme}', scheme) if scheme != '{scheme}' else shape
            yield password, spelled, url.replace('{password}', spelled), url.replace('{password}', '****')


def leaked(text, spelled, expected):
    """Does ``text`` show the password more often than the masked URL ``expected`` shows that string?

    (A password equal to the user name or one character long also occurs in the parts that are not secret.)
    """
    return text.count(spelled) > expected.count(spelled)


@pytest.mark.parametrize('password', PASSWORDS)
def test_mask_url_is_total_whatever_the_scheme_shape_or_validity(password):
    cases = [case for case in case_urls() if case[0] == password]
    assert len(cases) >= len(SCHEMES) * len(SHAPES)
    leaks = [url for _password, spelled, url, expected in cases if leaked(mask_url(url), spelled, expected)]
    assert leaks == []


@pytest.mark.parametrize('password', PASSWORDS)
def test_mask_text_masks_urls_inside_messages(password):
    for _password, spelled, url, expected in case_urls():
        if _password != password or ' ' in spelled:
            continue  # a password with a space ends the URL token in free text; such URLs are refused anyway
        message = "cell 'cell1' refused: the URL %s is invalid (port)"
        assert not leaked(mask_text(message % url), spelled, message % expected), url


def test_mask_keeps_user_host_and_placeholders_readable():
    assert mask_url('{scheme}://nova:L1teral@db2/nova') == '{scheme}://nova:****@db2/nova'
    assert mask_url('mysql+pymysql://nova:p@ss@db1:3306/nova') == 'mysql+pymysql://nova:****@db1:3306/nova'
    assert mask_url('mysql+pymysql://nova:p/ss#x@db1:0/nova') == 'mysql+pymysql://nova:****@db1:0/nova'
    assert mask_url('rabbit://a:p1@h1:5672,b:p2@h2:5672/v') == 'rabbit://a:****@h1:5672,b:****@h2:5672/v'
    assert mask_url('rabbit://{username}:{password}@{hostname}:{port:d}/v') == 'rabbit://{username}:{password}@{hostname}:{port:d}/v'
    assert mask_url('mysql://u@h/db?charset=utf8&password=x') == 'mysql://u@h/db?charset=utf8&password=****'


def test_secrets_cover_every_parsers_reading():
    # SQLAlchemy reads password 'p' (first '@'); urlsplit and oslo.messaging read 'p@ss'.
    assert {'p', 'p@ss'} <= url_secrets('mysql://nova:p@ss@db1/nova')
    assert url_secrets('{scheme}://nova:L1teral@db2/nova') == {'L1teral'}
    assert url_secrets('{scheme}://{username}:{password}@db2/nova') == set()


def test_only_long_unusual_secrets_become_global_no_log_values():
    # Ansible replaces no_log values inside any word: short or ordinary secrets would mangle messages.
    assert global_secrets({'x', 'nova', 'S3cr3tPa55', 'nova_cell1'}, ordinary=['nova_cell1']) == {'S3cr3tPa55'}


def test_short_secrets_do_not_mangle_other_words():
    text = "cell 'nova' (cell1): DBConnectionError at nova-manage; user x, exception x"
    assert mask_text(text, {'x', 'nova'}) == "cell '****' (cell1): DBConnectionError at nova-manage; user x, exception x"
    assert mask_text('password S3cr3tPa55 and S3cr3tPa55x', {'S3cr3tPa55'}) == 'password **** and ****x'


def test_invocation_arguments_are_masked_in_every_option_also_misspelt():
    params = {'transport_ur': 'rabbit://nova:x@mq1/v', 'disabled': 'maybe', 'list': ['mysql://u:it\'s@h/d'],
              'nested': {'url': '{scheme}://u:L1t@h/db'}, 'name': 'cell1'}
    assert mask_structure(params) == {'transport_ur': 'rabbit://nova:****@mq1/v', 'disabled': 'maybe',
                                      'list': ['mysql://u:****@h/d'], 'nested': {'url': '{scheme}://u:****@h/db'}, 'name': 'cell1'}


@pytest.mark.parametrize('password', PASSWORDS)
def test_commands_are_masked_before_quoting(password):
    nova_manage = NovaManage(None, ['nova-manage'], ['/etc/nova/nova.conf'], secrets=url_secrets('rabbit://nova:%s@mq1/v' % password))
    line = nova_manage.masked(['cell_v2', 'create_cell', '--transport-url', 'rabbit://nova:%s@mq1/v' % password])
    assert 'rabbit://nova:****@mq1/v' in line
    assert ':%s@' % password not in line and "it'\"'\"'s" not in line
    if len(password) > 1 and password != 'nova':
        assert password not in line


@pytest.mark.parametrize('line', [
    '#password = Keyst0nePw\n', '# password=Keyst0nePw\n', ';password : Keyst0nePw\n', '  ## secret = Keyst0nePw\n',
    '#connection = mysql+pymysql://nova:Keyst0nePw@db/nova\n', '# transport_url=rabbit://nova:Keyst0nePw@mq/\n',
    '# see rabbit://nova:Keyst0nePw@mq/ for the old one\n',
])
def test_commented_secrets_are_masked_in_nova_conf_diffs(line):
    masked = mask_ini_text('[DEFAULT]\n' + line, mask_url)
    assert 'Keyst0nePw' not in masked and '****' in masked


# -- parsing as Nova's libraries do ------------------------------------------------------------

def test_database_urls_are_read_as_sqlalchemy_reads_them():
    # A raw '/' or '#' in the password: SQLAlchemy accepts it, so does the collection.
    validate_db_url('mysql+pymysql://nova:p/ss#wd@db1/nova')
    assert pymysql_connect_args('mysql+pymysql://nova:p/ss#wd@db1/nova')['password'] == 'p/ss#wd'
    assert parse_db_url('mysql+pymysql://nova:p@ss@db1/nova')['host'] == 'ss@db1'


@pytest.mark.parametrize('url,fragment', [
    ('mysql+pymysql://nova:p@ss@db1/nova', "raw '@' in its password"),
    ('mysql+pymysql://nova:pw@db1:0/nova', 'invalid port 0'),
    ('mysql+pymysql://nova:pw@db1:65536/nova', 'invalid port 65536'),
    ('mysql+pymysql://nova:pw@db1:x1/nova', 'invalid port'),
    ('mysql+pymysql://nova:pw@/nova', 'no host'),
])
def test_database_urls_that_nova_could_not_use_are_refused_masked(url, fragment):
    with pytest.raises(UrlError, match=fragment) as info:
        validate_db_url(url, 'api_database_connection')
    assert 'pw@' not in str(info.value) and 'p@ss' not in str(info.value)


@pytest.mark.parametrize('url,fragment', [
    ('rabbit://nova:pw@mq1:0/', 'invalid port 0'),
    ('rabbit://nova:pw@mq1:65536/', 'invalid port 65536'),
    ('rabbit://nova:pw@mq1:5672,nova:pw@mq2:99999/', 'invalid port 99999'),
    ('rabbit://nova:p/ss@mq1/', 'percent-encode'),
    ('rabbit://nova:p#ss@mq1/', 'percent-encode'),
])
def test_transport_urls_that_oslo_messaging_cannot_use_are_refused_masked(url, fragment):
    with pytest.raises(UrlError, match=fragment) as info:
        validate_transport_url(url)
    assert ':pw@' not in str(info.value) and 'p/ss' not in str(info.value) and 'p#ss' not in str(info.value)


def test_transport_url_with_raw_at_in_password_is_accepted_as_oslo_does():
    validate_transport_url('rabbit://nova:p@ss@mq1:5672/v')  # oslo.messaging splits at the last '@'


@pytest.mark.parametrize('url,base,expected', [
    ('mysql://u:p}}x@h/db', 'mysql://a:b@c/d', 'mysql://u:p}x@h/db'),          # every URL is formatted
    ('mysql://u:p}x@h/db', 'mysql://a:b@c/d', 'mysql://u:p}x@h/db'),           # ValueError: stored string
    ('mysql://u:p@h:{port:d}/db', 'mysql://a:b@c/d', 'mysql://u:p@h:{port:d}/db'),  # TypeError: stored string
    ('rabbit://{username1}@h/', 'rabbit://a:b@c:1,d:e@[f/', 'rabbit://{username1}@h/'),  # malformed base
    ('rabbit://{hostname2}/', 'rabbit://a:b@c:1,d:e@f:2/', 'rabbit://f/'),
    ('mysql://u:p}}x@h/db', None, 'mysql://u:p}}x@h/db'),                      # base unset: stored string
])
def test_templates_render_as_nova_renders_them_and_never_raise(url, base, expected):
    assert expand_template(url, base)[0] == expected


# -- clear messages --------------------------------------------------------------------------

def test_nova_manage_that_is_not_executable_is_named(tmp_path):
    script = tmp_path / 'nova-manage'
    script.write_text('#!/bin/sh\n')
    assert 'is not executable' in missing_command_message(str(script))
    assert 'is a directory' in missing_command_message(str(tmp_path))
    assert 'command not found' in missing_command_message('no-such-nova-manage')
