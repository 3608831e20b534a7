"""Serve a WSGI application with a small threaded wsgiref server.

Used by the placement-api and nova-api units of the nova.cells lab images
(localhost/nova-cells/nova). Good enough for a test lab; not for production.

    /opt/nova/bin/python /usr/local/libexec/nova-cells/wsgi-serve.py \
        MODULE[:ATTRIBUTE] --port PORT [--host HOST] [--access-log]

The application object is imported *before* the socket is bound, so a
failing import (bad config, unreachable database) exits non-zero and systemd's
Restart=on-failure retries it.
"""

import argparse
import importlib
import socket
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class ThreadingWSGIServer6(ThreadingWSGIServer):
    address_family = socket.AF_INET6


class QuietHandler(WSGIRequestHandler):
    def log_message(self, *args, **kwargs):  # pylint: disable=arguments-differ
        pass


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("app", help='MODULE[:ATTRIBUTE], attribute defaults to "application"')
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--access-log", action="store_true", help="log every request to stderr")
    args = parser.parse_args()

    # The applications parse sys.argv for oslo.config options (nova's does):
    # hide the launcher's own arguments from them.
    sys.argv = sys.argv[:1]
    module_name, _sep, attribute = args.app.partition(":")
    application = getattr(importlib.import_module(module_name), attribute or "application")
    if application is None:
        sys.exit(f"wsgi-serve: {args.app} did not provide an application")

    server_class = ThreadingWSGIServer6 if ":" in args.host else ThreadingWSGIServer
    handler_class = WSGIRequestHandler if args.access_log else QuietHandler
    httpd = make_server(
        args.host,
        args.port,
        application,
        server_class=server_class,
        handler_class=handler_class,
    )
    print(f"wsgi-serve: serving {args.app} on {args.host} port {args.port}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
