# -*- coding: utf-8 -*-
# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""URL handling for database and transport URLs: parse, validate, mask, expand, normalise.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
Pure functions only: no I/O, no Ansible imports, so unit tests exercise it directly.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, quote, unquote, urlparse, urlsplit, urlunsplit

MASK = '****'

DB_SCHEMES = ('mysql', 'mysql+pymysql')
TRANSPORT_SCHEMES = ('rabbit', 'amqp', 'kafka')
CELL0_TRANSPORT_URL = 'none:///'
# Query options of a DB URL that PyMySQL understands; everything else is oslo.db's business.
_PYMYSQL_QUERY_OPTIONS = ('charset', 'unix_socket', 'ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_verify_cert', 'ssl_verify_identity')
_TRUE = ('1', 'true', 'yes', 'on')


class UrlError(ValueError):
    """A URL that cannot be used; the message never contains a password."""


def is_template(url):
    """A URL with a brace is a template for the user; Nova runs str.format on every URL anyway."""
    return url is not None and '{' in url


# -- masking ----------------------------------------------------------------------------------
#
# The rule (one place, whatever the scheme, whether the URL is valid or not):
# in a string shaped like a URL (``anything://...`` or ``//...``), everything between the first ':' after
# '://' and the LAST '@' is a password, unless the netloc is a well-formed oslo.messaging host list
# (``u:p@h1,u2:p2@h2``: every entry has exactly one '@' and a ':' before it), which is masked entry by
# entry. Splitting at the last '@' covers every parser's reading (SQLAlchemy splits at the first '@'
# after the password starts, urlsplit and oslo.messaging at the last one): a raw '@', '/', '#', '?' or
# ',' in a password is masked too, at worst with a little of the host. Template placeholders
# (``{password}``, ``{password1}``) are not secrets and stay readable. Query options named like a
# secret (password, passwd, secret, token) are masked as well.

# Names Nova offers a template (nova/objects/cell_mapping.py), optionally numbered, with format spec.
_PLACEHOLDER = re.compile(r'^\{(?:username|password|hostname|port|scheme|query|fragment|path)[0-9]*(?:![rsa])?(?::[^{}]*)?\}$')
_SECRET_KEY = re.compile(r'(password|passwd|secret|token)', re.IGNORECASE)
# A URL-shaped token inside free text (a message, nova-manage output, a nova.conf line).
_URL_IN_TEXT = re.compile(r'[^\s\'"(\[<=,]*//\S+')
_URL_IN_TEXT_SPLIT = re.compile(r'([^\s\'"(\[<=,]*//\S+)')


def _url_start(url):
    """Index where the authority starts (after '://' or a leading '//'), or -1."""
    index = url.find('://')
    if index >= 0:
        return index + 3
    return 2 if url.startswith('//') else -1


def _mask_userinfo(userinfo):
    if ':' not in userinfo:
        return userinfo
    username, password = userinfo.split(':', 1)
    if not password or _PLACEHOLDER.match(password):
        return userinfo
    return f'{username}:{MASK}'


def _split_authority(rest):
    """(credential region or None, remainder) of the text after '://', by the last '@'."""
    at = rest.rfind('@')
    if at < 0:
        return None, rest
    return rest[:at], rest[at + 1:]


_SECRET_QUERY_VALUE = re.compile(r'([?&;][^=&#?]*(?:password|passwd|secret|token)[^=&#?]*=)([^&#]*)', re.IGNORECASE)


def _mask_query(text):
    """Mask the values of secret-named query options in ``text``."""
    return _SECRET_QUERY_VALUE.sub(lambda match: match.group(1) + MASK, text)


def mask_url(url):
    """``url`` with every password replaced by ``****`` (see the rule above); all else stays verbatim."""
    if not url or not isinstance(url, str):
        return url
    start = _url_start(url)
    if start < 0:
        return url
    head, rest = url[:start], _mask_query(url[start:])
    region, remainder = _split_authority(rest)
    if region is None:
        return head + rest
    netloc_end = min([i for i in (remainder.find('/'), remainder.find('?'), remainder.find('#')) if i >= 0] or [len(remainder)])
    entries = (region + '@' + remainder[:netloc_end]).split(',')
    if len(entries) > 1 and all(entry.count('@') == 1 and ':' in entry.split('@')[0] for entry in entries):
        masked = ','.join('{}@{}'.format(_mask_userinfo(entry.split('@')[0]), entry.split('@')[1]) for entry in entries)
        return head + masked + remainder[netloc_end:]
    return head + _mask_userinfo(region) + '@' + remainder


def _password_spans(url):
    """Every password the masking rule hides in ``url`` (raw), for the secrets list."""
    start = _url_start(url)
    if start < 0:
        return set()
    spans = set()
    rest = url[start:]
    for match in _SECRET_QUERY_VALUE.finditer(rest):
        spans.add(match.group(2))
    region, remainder = _split_authority(_mask_query(rest))
    if region is not None:
        netloc_end = min([i for i in (remainder.find('/'), remainder.find('?'), remainder.find('#')) if i >= 0] or [len(remainder)])
        entries = (region + '@' + remainder[:netloc_end]).split(',')
        if len(entries) > 1 and all(entry.count('@') == 1 and ':' in entry.split('@')[0] for entry in entries):
            candidates = [entry.split('@')[0] for entry in entries]
        else:
            candidates = [region]
        for userinfo in candidates:
            if ':' in userinfo:
                spans.add(userinfo.split(':', 1)[1])
    return spans


def url_secrets(url):
    """Every clear-text password inside ``url``, raw and percent-decoded, as any of Nova's parsers would read it."""
    if not url or not isinstance(url, str):
        return set()
    secrets = set()
    for span in _password_spans(url):
        secrets.add(span)
    try:
        parsed = parse_db_url(url)
        if parsed['password'] is not None:
            secrets.add(parsed['password'])
    except UrlError:
        pass
    try:
        for host in parse_transport_url(url)['hosts']:
            if host['password'] is not None:
                secrets.add(host['password'])
    except UrlError:
        pass
    secrets.update({unquote(secret) for secret in secrets})
    return {secret for secret in secrets if secret and not _PLACEHOLDER.match(secret)}


# Secrets registered with Ansible's no_log_values are replaced everywhere, even inside other words, so
# only long ones are registered (a 1-character password would mangle every message); shorter ones are
# masked structurally in every URL and, in free text, as whole words (see mask_text).
GLOBAL_SECRET_MIN_LENGTH = 8
WORD_SECRET_MIN_LENGTH = 4


def global_secrets(secrets, ordinary=()):
    """The secrets safe to register as Ansible no_log values (long, and not an ordinary part of a URL)."""
    ordinary = {word.lower() for word in ordinary if word}
    return {secret for secret in secrets if len(secret) >= GLOBAL_SECRET_MIN_LENGTH and secret.lower() not in ordinary}


def ordinary_words(url):
    """The non-secret parts of ``url`` (user names, hosts, database): a secret equal to one is not registered globally."""
    words = set()
    if not url or not isinstance(url, str):
        return words
    try:
        parsed = parse_db_url(url)
        words.update({parsed['username'], parsed['host'], parsed['database']})
    except UrlError:
        pass
    try:
        parsed = parse_transport_url(url)
        words.add(parsed['virtual_host'])
        for host in parsed['hosts']:
            words.update({host['username'], host['hostname']})
    except UrlError:
        pass
    return {word for word in words if word}


def mask_text(text, secrets=()):
    """Mask passwords in free text: every URL-shaped token structurally, then the known ``secrets``.

    A secret of GLOBAL_SECRET_MIN_LENGTH characters or more is replaced wherever it occurs; a shorter one
    (at least WORD_SECRET_MIN_LENGTH) only as a whole word, so that it cannot mangle other words; shorter
    still, only inside URLs.
    """
    if not text or not isinstance(text, str):
        return text
    secrets = sorted((secret for secret in (secrets or ()) if isinstance(secret, str) and secret and secret != MASK),
                     key=len, reverse=True)
    pieces = []
    # Odd pieces are URL-shaped tokens: masked structurally (their user names stay readable).
    for index, piece in enumerate(_URL_IN_TEXT_SPLIT.split(text)):
        if index % 2:
            piece = mask_url(piece)
        for secret in secrets:
            if len(secret) >= GLOBAL_SECRET_MIN_LENGTH:
                piece = piece.replace(secret, MASK)
            elif len(secret) >= WORD_SECRET_MIN_LENGTH and not index % 2:
                piece = re.sub(rf'(?<![\w.-]){re.escape(secret)}(?![\w.-])', MASK, piece)
        pieces.append(piece)
    return ''.join(pieces)


def mask_structure(value):
    """``value`` (module arguments: str, list, dict) with every URL-shaped string masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_structure(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask_structure(item) for item in value)
    return value


def structure_secrets(value):
    """Every URL secret inside module arguments (any option, also misspelt ones)."""
    secrets = set()
    if isinstance(value, str):
        for match in _URL_IN_TEXT.finditer(value):
            secrets.update(url_secrets(match.group(0)))
        if _url_start(value) >= 0:
            secrets.update(url_secrets(value))
    elif isinstance(value, dict):
        for item in value.values():
            secrets.update(structure_secrets(item))
    elif isinstance(value, (list, tuple)):
        for item in value:
            secrets.update(structure_secrets(item))
    return secrets


# -- parsing as Nova's libraries do -------------------------------------------------------------

# sqlalchemy.engine.url._parse_url (SQLAlchemy 2.x), which oslo.db and so Nova use for [database]/connection.
_SQLALCHEMY_URL = re.compile(
    r"""
        (?P<name>[\w\+]+)://
        (?:
            (?P<username>[^:/]*)
            (?::(?P<password>[^@]*))?
        @)?
        (?:
            (?:
                \[(?P<ipv6host>[^/\?]+)\] |
                (?P<ipv4host>[^/:\?]+)
            )?
            (?::(?P<port>[^/\?]*))?
        )?
        (?:/(?P<database>[^\?]*))?
        (?:\?(?P<query>.*))?
        """,
    re.X,
)


def parse_db_url(url, option='database_connection'):
    """Components of a database URL exactly as SQLAlchemy's make_url reads them; UrlError where it fails."""
    match = _SQLALCHEMY_URL.match(url) if isinstance(url, str) else None
    if match is None:
        raise UrlError(f'{option} {mask_url(url)} cannot be parsed as an SQLAlchemy URL; expected {DB_SCHEMES[1]}://user:password@host/dbname')
    parts = match.groupdict()
    query = {}
    if parts['query'] is not None:
        for key, value in parse_qsl(parts['query']):
            query.setdefault(key, value)  # PyMySQL takes the first of repeated options
    port = parts['port']
    if port is not None:
        # SQLAlchemy: int() of a non-empty port; an empty one ('host:/db') is refused by URL.create.
        try:
            port = int(port)
        except ValueError:
            why = 'empty' if port == '' else 'not a number'
            raise UrlError(f'{option} {mask_url(url)} has an invalid port ({why}); give a number between 1 and 65535 or leave out the ":"') from None
    return {
        'scheme': parts['name'],
        'username': unquote(parts['username']) if parts['username'] is not None else None,
        'password': unquote(parts['password']) if parts['password'] is not None else None,
        'host': parts['ipv4host'] or parts['ipv6host'],
        'port': port,
        'database': unquote(parts['database']) if parts['database'] is not None else None,
        'query': query,
    }


def parse_transport_url(url, option='transport_url'):
    """oslo_messaging.TransportURL.parse: hosts, credentials and virtual host; UrlError where it fails."""
    if not isinstance(url, str):
        raise UrlError(f'{option} is not a string')
    try:
        parts = urlparse(url)
    except ValueError as exc:
        raise UrlError(f'{option} {mask_url(url)} cannot be parsed ({mask_text(str(exc))})') from None
    if not parts.scheme:
        raise UrlError(f'{option} {mask_url(url)} has no scheme; expected rabbit://user:password@host:5672/vhost')
    hosts = []
    for entry in parts.netloc.split(','):
        if not entry:
            continue
        hostname, username, password = entry, None, None
        if '@' in entry:
            username, hostname = entry.rsplit('@', 1)
            if ':' in username:
                username, password = username.split(':', 1)
                password = unquote(password)
            username = unquote(username)
        try:
            hostname, port = _parse_host_port(hostname)
        except ValueError:
            raise UrlError(f'{option} {mask_url(url)} has an invalid host or port; percent-encode any of / # ? @ , in a password '
                           '(%2F %23 %3F %40 %2C)') from None
        hosts.append({'hostname': hostname, 'port': port, 'username': username, 'password': password})
    virtual_host = unquote(parts.path[1:]) if parts.path.startswith('/') else None
    return {'scheme': parts.scheme, 'hosts': hosts, 'virtual_host': virtual_host, 'query': parts.query}


def _parse_host_port(address):
    """oslo_utils.netutils.parse_host_port, verbatim in behaviour (ValueError where it raises)."""
    if not address:
        return None, None
    if address[0] == '[':
        host, rest = address[1:].split(']')
        port = rest.split(':')[1] if ':' in rest else None
    elif address.count(':') == 1:
        host, port = address.split(':')
    else:
        host, port = address, None
    return host, (None if port is None else int(port))


def _parse_netloc(netloc):
    """nova.objects.cell_mapping._parse_netloc: note it splits userinfo at the *first* '@'."""
    if '@' in netloc:
        userpass, hostport = netloc.split('@', 1)
    else:
        userpass, hostport = '', netloc
    hostname, port = _parse_host_port(hostport)
    username, password = (userpass.split(':', 1) if ':' in userpass else (userpass, None))
    return {'username': username, 'password': password, 'hostname': hostname, 'port': port}


def template_variables(base_url):
    """The substitutions Nova offers a template (CellMapping._format_url); raises where Nova's code raises."""
    base = urlparse(base_url)  # Nova uses urlparse (not urlsplit): keep the same semantics
    subs = {
        'username': base.username,
        'password': base.password,
        'hostname': base.hostname,
        'port': base.port,
        'scheme': base.scheme,
        'query': base.query,
        'fragment': base.fragment,
        'path': base.path.lstrip('/'),
    }
    if ',' in base.netloc:
        for index, netloc in enumerate(base.netloc.split(','), start=1):
            for key, value in _parse_netloc(netloc).items():
                subs[f'{key}{index}'] = value
    return subs


def expand_template(url, base_url):
    """Render ``url`` exactly as ``CellMapping.format_db_url``/``format_mq_url`` do against ``base_url``.

    Nova runs str.format on EVERY stored URL (so '}}' becomes '}' in a URL without placeholders) and
    falls back to the stored string on ANY exception; with the base option unset it uses the stored
    string as it is. Returns ``(rendered, error)``: ``error`` says why Nova would fall back, so that
    callers can refuse a template that would not render; it never raises.
    """
    if url is None:
        return None, None
    if base_url is None:
        if is_template(url):
            return url, 'the URL is a template but the option it is rendered from is not set in the config files'
        return url, None
    try:
        return url.format(**template_variables(base_url)), None
    # Nova catches every exception here.
    except Exception as exc:  # pylint: disable=broad-except
        return url, f'the template cannot be rendered ({type(exc).__name__}: {mask_text(str(exc))}); Nova would use it unrendered'


def normalise_url(url):
    """A form for comparison that differs only where two URLs are truly equivalent.

    Scheme case and the order of query parameters do not change what Nova connects to; an empty
    query ('?') is the same as none. Host names, ports, paths, credentials and the encoding of each
    query parameter are kept verbatim (the stable sort keeps repeated keys in their order).
    """
    if url is None:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    segments = sorted((segment for segment in parts.query.split('&') if segment),
                      key=lambda segment: segment.split('=', 1)[0])
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, '&'.join(segments), parts.fragment))


def urls_equal(left, right):
    return normalise_url(left) == normalise_url(right)


def _check_port(port, option, url):
    if port is not None and not 1 <= port <= 65535:
        raise UrlError(f'{option} {mask_url(url)} has an invalid port {port}; a port must be between 1 and 65535')


def validate_db_url(url, option='database_connection'):
    """Raise UrlError unless ``url`` is a MySQL URL that SQLAlchemy (Nova) and PyMySQL (this collection) read alike."""
    if not url or not isinstance(url, str):
        raise UrlError(f'{option} is empty; give a URL such as mysql+pymysql://nova:PASSWORD@dbhost/nova_cell1')
    if '://' not in url:
        raise UrlError(f'{option} {mask_url(url)} has no scheme; expected {DB_SCHEMES[1]}://user:password@host/dbname')
    parts = parse_db_url(url, option)
    if parts['scheme'].lower() not in DB_SCHEMES:
        supported = ' and '.join(f'{s}://' for s in DB_SCHEMES)
        raise UrlError(f"{option} uses the unsupported scheme {parts['scheme']!r}; only {supported} are supported (the modules read Nova "
                       'databases with PyMySQL)')
    if parts['host'] and '@' in parts['host']:
        raise UrlError(f"{option} {mask_url(url)} has a raw '@' in its password: SQLAlchemy (and so Nova) ends the password at the first '@'; "
                       'percent-encode it as %40')
    if not parts['host'] and not parts['query'].get('unix_socket'):
        raise UrlError(f'{option} {mask_url(url)} has no host; give host[:port] or a unix_socket query option')
    _check_port(parts['port'], option, url)
    if not parts['database']:
        raise UrlError(f'{option} {mask_url(url)} names no database; append /dbname')
    if '/' in parts['database']:
        raise UrlError(f'{option} {mask_url(url)} has a path with more than a database name')


def validate_transport_url(url, option='transport_url', allow_none=False):
    """Raise UrlError unless oslo.messaging reads ``url`` as a usable transport (nova-manage drops invalid ones silently)."""
    if not url or not isinstance(url, str):
        raise UrlError(f'{option} is empty; give a URL such as rabbit://nova:PASSWORD@mqhost:5672/cell1')
    parts = parse_transport_url(url, option)
    scheme = parts['scheme'].lower()
    if scheme == 'none':
        if allow_none:
            return
        raise UrlError(f'{option} none:/// is only valid for cell0; give the cell its own message queue URL')
    if scheme not in TRANSPORT_SCHEMES and not scheme.startswith('kombu'):
        raise UrlError('{} uses the unknown transport scheme {!r}; expected one of {}'.format(option, parts['scheme'], ', '.join(TRANSPORT_SCHEMES)))
    for host in parts['hosts']:
        _check_port(host['port'], option, url)


def pymysql_connect_args(url):
    """Keyword arguments for ``pymysql.connect`` from a validated URL, read as SQLAlchemy reads it."""
    validate_db_url(url)
    parts = parse_db_url(url)
    query = parts['query']
    args = {
        'host': parts['host'] or 'localhost',
        'port': parts['port'] or 3306,
        'user': parts['username'] or None,
        'password': parts['password'] if parts['password'] is not None else '',
        'database': parts['database'],
    }
    if query.get('unix_socket'):
        args['unix_socket'] = query['unix_socket']
    if query.get('charset'):
        args['charset'] = query['charset']
    ssl = {}
    for key in ('ssl_ca', 'ssl_cert', 'ssl_key'):
        if query.get(key):
            ssl[key[len('ssl_'):]] = query[key]
    if ssl:
        args['ssl'] = ssl
    for key in ('ssl_verify_cert', 'ssl_verify_identity'):
        if key in query:
            args[key] = query[key].lower() in _TRUE
    return args


def db_name(url):
    try:
        return parse_db_url(url)['database'] or ''
    except UrlError:
        return unquote(urlsplit(url).path.strip('/'))


def with_database(url, database):
    """The same server and credentials, another database (e.g. to reach cell0 from a cell URL)."""
    match = _SQLALCHEMY_URL.match(url)
    if match is None or match.group('database') is None:
        parts = urlsplit(url)
        return urlunsplit((parts.scheme, parts.netloc, '/' + quote(database), parts.query, parts.fragment))
    return url[:match.start('database')] + quote(database) + url[match.end('database'):]


# -- building (the inventory model of the roles, module_utils/_deployment.py) -------------------


def _encode(value):
    """A user name, password or vhost as a URL part: everything but letters, digits and _.-~ percent-encoded."""
    return quote(str(value), safe='')


def _host_port(host, port):
    host = str(host)
    if ':' in host and not host.startswith('['):
        host = f'[{host}]'
    return f'{host}:{port}' if port else host


def build_db_url(scheme, user, password, host, port, database, query='', template=False):
    """An oslo.db connection URL; ``template`` puts Nova's {username}:{password} where the credentials go."""
    credentials = '{username}:{password}' if template else f'{_encode(user)}:{_encode(password)}'
    return '{}://{}@{}/{}{}'.format(scheme, credentials, _host_port(host, port), database, ('?' + query) if query else '')


def build_transport_url(scheme, user, password, hosts, port, vhost, query='', template=False):
    """An oslo.messaging transport URL with one user:password@host:port per host.

    ``template`` is False (the credentials themselves), 'numbered' ({username1}:{password1}, right for several
    hosts) or any other true value ({username}:{password}).
    """
    if template == 'numbered':
        credentials = '{username1}:{password1}'
    elif template:
        credentials = '{username}:{password}'
    else:
        credentials = f'{_encode(user)}:{_encode(password)}'
    hosts = [hosts] if isinstance(hosts, str) else list(hosts)
    netlocs = ','.join(f'{credentials}@{_host_port(host, port)}' for host in hosts)
    path = '' if vhost in ('/', '') else _encode(vhost)
    return '{}://{}/{}{}'.format(scheme, netlocs, path, ('?' + query) if query else '')
