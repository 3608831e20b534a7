# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""Server addresses (memcached, ZooKeeper) in the forms their client libraries read.

Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.

Used by the ServiceGroup renderer (_servicegroup: refuse what a service would fail to parse) and by the
liveness readers (_liveness_mc, _liveness_zk: connect to what nova.conf names). Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
import re

MEMCACHED_PORT = 11211
ZOOKEEPER_PORT = 2181

_HOSTNAME = re.compile(r'^(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?'
                       r'(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$')


class AddressError(ValueError):
    """A server address that the client library would refuse or misread; the message says how to write it."""


def _valid_host(host, allow_ipv6=False):
    if allow_ipv6:
        try:
            ipaddress.IPv6Address(host.split('%', 1)[0])
            return True
        except ValueError:
            pass
    try:
        ipaddress.IPv4Address(host)
        return True
    except ValueError:
        pass
    return bool(_HOSTNAME.match(host)) and not host.replace('.', '').isdigit()


def _port(text, server, what):
    if not text or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise AddressError(f'{what} {server!r} has an invalid port {text!r}: give a number from 1 to 65535')
    return int(text)


def parse_server(server, style='any', what='memcached server', default_port=None):
    """Parse one server address; returns ``(host, port)``.

    ``style`` is the client library that will read the option: ``pymemcache`` (``host:port``, ``[v6]:port``),
    ``python-memcached`` (``host:port``, ``inet:host:port``, ``inet6:[v6]:port``), or ``any`` (every form).
    Without a port, ``default_port`` is used when given, else the address is refused.
    """
    if not isinstance(server, str) or not server.strip():
        raise AddressError(f'a {what} address is empty: give host:port')
    text = server.strip()
    if text.startswith(('unix:', '/')):
        raise AddressError(f'{what} {text!r} is a unix socket: Nova services on several hosts need TCP, give host:port')
    family, body = None, text
    for prefix in ('inet6', 'inet'):
        if text.startswith(prefix + ':'):
            family, body = prefix, text[len(prefix) + 1:]
            break
    bracketed = body.startswith('[')
    if bracketed:
        close = body.find(']')
        if close < 0:
            raise AddressError(f'{what} {text!r} has an unclosed [')
        host, rest = body[1:close], body[close + 1:]
        if rest and not rest.startswith(':'):
            raise AddressError(f'{what} {text!r}: expected :PORT after ]')
        port_text = rest[1:] if rest else None
        if family == 'inet':
            raise AddressError(f'{what} {text!r}: inet: takes an IPv4 address or a host name without brackets')
        if not _valid_host(host, allow_ipv6=True):
            raise AddressError(f'{what} {text!r}: {host!r} is neither an IPv6 address nor a host name')
    else:
        if family == 'inet6':
            raise AddressError(f'{what} {text!r}: inet6: needs the address in brackets, e.g. inet6:[::1]:11211')
        if body.count(':') > 1:
            form = 'inet6:[ADDRESS]:PORT' if style == 'python-memcached' else '[ADDRESS]:PORT'
            raise AddressError(f'{what} {text!r} looks like an IPv6 address without brackets; write it as {form}')
        host, sep, port_text = body.partition(':')
        port_text = port_text if sep else None
        if not _valid_host(host):
            raise AddressError(f'{what} {text!r}: {host!r} is not a valid host name or IPv4 address')
    if style == 'pymemcache' and family:
        form = f'[{host}]:PORT' if bracketed else f'{host}:PORT'
        raise AddressError(f'{what} {text!r} uses the {family}: prefix, which only python-memcached understands; the '
                           f'dogpile.cache.pymemcache backend needs {form}')
    if style == 'python-memcached' and bracketed and family != 'inet6':
        raise AddressError(f'{what} {text!r}: python-memcached (used by this backend) cannot parse [ADDRESS]:PORT and would '
                           f'fail at service start; write it as inet6:{body}')
    if port_text is None:
        if default_port is None:
            example = f'[{host}]' if bracketed else host
            port = ZOOKEEPER_PORT if 'ZooKeeper' in what else MEMCACHED_PORT
            raise AddressError(f'{what} {text!r} has no port: give host:port, e.g. {example}:{port}')
        return host, default_port
    return host, _port(port_text, text, what)


def _server_list(value, name):
    if value is None:
        return []
    if isinstance(value, str):
        value = value.split(',')
    if not isinstance(value, (list, tuple)):
        raise AddressError(f'{name} must be a list of host:port strings, not {value!r}')
    items = [item.strip() if isinstance(item, str) else item for item in value]
    return [item for item in items if item != '']


def validate_servers(servers, style, name='memcache_servers', what='memcached server'):
    """A non-empty list of distinct, valid addresses; returns them stripped, in order."""
    items = _server_list(servers, name)
    if not items:
        raise AddressError(f'{name} is empty: give at least one {what} as host:port')
    seen = {}
    for item in items:
        address = parse_server(item, style=style, what=what)
        if address in seen:
            raise AddressError(f'{name} lists {address[0]}:{address[1]} twice ({seen[address]!r} and {item!r})')
        seen[address] = item
    return items
