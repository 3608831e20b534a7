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
# A password that is only a template variable is not a secret and stays readable.
_PLACEHOLDER = re.compile(r'^\{[a-z]+[0-9]*\}$')
# Query options of a DB URL that PyMySQL understands; everything else is oslo.db's business.
_PYMYSQL_QUERY_OPTIONS = ('charset', 'unix_socket', 'ssl_ca', 'ssl_cert', 'ssl_key', 'ssl_verify_cert', 'ssl_verify_identity')
_TRUE = ('1', 'true', 'yes', 'on')


class UrlError(ValueError):
    """A URL that cannot be used; the message never contains a password."""


def is_template(url):
    """Nova treats any URL with a brace as a template (CellMapping.format_*_url)."""
    return url is not None and '{' in url


def _netloc_entries(netloc):
    """Split an oslo.messaging netloc (``u:p@h1:1,u2:p2@h2:2``) into (userinfo, hostport) pairs."""
    entries = []
    for entry in netloc.split(','):
        userinfo, sep, hostport = entry.rpartition('@')
        entries.append((userinfo if sep else None, hostport))
    return entries


def _split_userinfo(userinfo):
    username, sep, password = userinfo.partition(':')
    return username, (password if sep else None)


def url_secrets(url):
    """Every clear-text password inside ``url``, raw and percent-decoded, for ``no_log_values``."""
    if not url:
        return set()
    secrets = set()
    for userinfo, _hostport in _netloc_entries(urlsplit(url).netloc):
        if userinfo is None:
            continue
        password = _split_userinfo(userinfo)[1]
        if password and not _PLACEHOLDER.match(password):
            secrets.update({password, unquote(password)})
    for key, value in parse_qsl(urlsplit(url).query, keep_blank_values=True):
        if 'password' in key.lower() and value:
            secrets.update({value, unquote(value)})
    return {s for s in secrets if s}


def mask_url(url):
    """Replace every password in ``url`` with ``****``; template placeholders and all else stay verbatim."""
    if not url:
        return url
    parts = urlsplit(url)
    entries = []
    for userinfo, hostport in _netloc_entries(parts.netloc):
        if userinfo is None:
            entries.append(hostport)
            continue
        username, password = _split_userinfo(userinfo)
        if password is not None and not _PLACEHOLDER.match(password):
            userinfo = '%s:%s' % (username, MASK)
        entries.append('%s@%s' % (userinfo, hostport))
    masked = url.replace('//' + parts.netloc, '//' + ','.join(entries), 1) if parts.netloc else url
    if 'password' in parts.query.lower():
        query = '&'.join(
            '%s=%s' % (key, MASK) if 'password' in key.lower() else '%s=%s' % (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True))
        masked = masked.replace('?' + parts.query, '?' + query, 1)
    return masked


def mask_text(text, secrets):
    """Mask known secrets inside free text (nova-manage output, tracebacks)."""
    if not text:
        return text
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text


def _parse_host_port(address):
    """oslo_utils.netutils.parse_host_port, which Nova uses for numbered template variables."""
    if not address:
        return None, None
    if address[0] == '[':
        host, _sep, rest = address[1:].partition(']')
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
    """The substitutions Nova offers a template, computed from the local config's URL."""
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
                subs['%s%i' % (key, index)] = value
    return subs


def expand_template(url, base_url):
    """Render ``url`` exactly as ``CellMapping._format_url`` does against ``base_url``.

    Returns ``(rendered, error)``. Nova logs an error and uses the raw URL when rendering fails or
    when the base option is unset; ``error`` says why so callers can refuse such a template.
    """
    if not is_template(url):
        return url, None
    if base_url is None:
        return url, 'the URL is a template but the option it is rendered from is not set in the config files'
    try:
        return url.format(**template_variables(base_url)), None
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        return url, 'the template cannot be rendered (%s: %s); Nova would use it unrendered' % (type(exc).__name__, exc)


def normalise_url(url):
    """A form for comparison that differs only where two URLs are truly equivalent.

    Scheme case and the order of query parameters do not change what Nova connects to; an empty
    query ('?') is the same as none. Host names, ports, paths, credentials and the encoding of each
    query parameter are kept verbatim (the stable sort keeps repeated keys in their order).
    """
    if url is None:
        return None
    parts = urlsplit(url)
    segments = sorted((segment for segment in parts.query.split('&') if segment),
                      key=lambda segment: segment.split('=', 1)[0])
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path, '&'.join(segments), parts.fragment))


def urls_equal(left, right):
    return normalise_url(left) == normalise_url(right)


def validate_db_url(url, option='database_connection'):
    """Raise UrlError unless ``url`` is a MySQL URL PyMySQL can use."""
    if not url or not isinstance(url, str):
        raise UrlError('%s is empty; give a URL such as mysql+pymysql://nova:PASSWORD@dbhost/nova_cell1' % option)
    parts = urlsplit(url)
    if not parts.scheme:
        raise UrlError('%s %s has no scheme; expected %s://user:password@host/dbname' % (option, mask_url(url), DB_SCHEMES[1]))
    if parts.scheme.lower() not in DB_SCHEMES:
        raise UrlError('%s uses the unsupported scheme %r; only %s are supported (the modules read Nova databases with PyMySQL)'
                       % (option, parts.scheme, ' and '.join('%s://' % s for s in DB_SCHEMES)))
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    if not parts.hostname and not query.get('unix_socket'):
        raise UrlError('%s %s has no host; give host[:port] or a unix_socket query option' % (option, mask_url(url)))
    try:
        parts.port  # noqa: B018 - urlsplit validates the port lazily
    except ValueError:
        raise UrlError('%s %s has an invalid port' % (option, mask_url(url))) from None
    if not parts.path.strip('/'):
        raise UrlError('%s %s names no database; append /dbname' % (option, mask_url(url)))
    if '/' in parts.path.strip('/'):
        raise UrlError('%s %s has a path with more than a database name' % (option, mask_url(url)))


def validate_transport_url(url, option='transport_url', allow_none=False):
    """Raise UrlError unless oslo.messaging could parse ``url`` (nova-manage drops invalid ones silently)."""
    if not url or not isinstance(url, str):
        raise UrlError('%s is empty; give a URL such as rabbit://nova:PASSWORD@mqhost:5672/cell1' % option)
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if not scheme:
        raise UrlError('%s %s has no scheme; expected rabbit://user:password@host:5672/vhost' % (option, mask_url(url)))
    if scheme == 'none':
        if allow_none:
            return
        raise UrlError('%s none:/// is only valid for cell0; give the cell its own message queue URL' % option)
    if scheme not in TRANSPORT_SCHEMES and not scheme.startswith('kombu'):
        raise UrlError('%s uses the unknown transport scheme %r; expected one of %s'
                       % (option, parts.scheme, ', '.join(TRANSPORT_SCHEMES)))
    for _userinfo, hostport in _netloc_entries(parts.netloc):
        try:
            _parse_host_port(hostport)
        except ValueError:
            raise UrlError('%s %s has an invalid host or port %r' % (option, mask_url(url), hostport)) from None


def pymysql_connect_args(url):
    """Keyword arguments for ``pymysql.connect`` from a validated SQLAlchemy-style MySQL URL."""
    validate_db_url(url)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    args = {
        'host': unquote(parts.hostname) if parts.hostname else 'localhost',
        'port': parts.port or 3306,
        'user': unquote(parts.username) if parts.username else None,
        'password': unquote(parts.password) if parts.password is not None else '',
        'database': unquote(parts.path.strip('/')),
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
    return unquote(urlsplit(url).path.strip('/'))


def with_database(url, database):
    """The same server and credentials, another database (e.g. to reach cell0 from a cell URL)."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, '/' + quote(database), parts.query, parts.fragment))
