"""A small HTTP server on a thread for the tests' fake upstreams (the Hugging Face Hub,
a Docker registry, a CORS proxy's target): a handler served on a free port of
127.0.0.1, optionally over TLS, until `stop`."""

from __future__ import annotations

import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable


def serve(handler: type[BaseHTTPRequestHandler], tls: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


def get_head_handler(answer: Callable[[BaseHTTPRequestHandler, bool], None]) -> type[BaseHTTPRequestHandler]:
    """A quiet HTTP/1.1 handler that passes GET and HEAD requests to answer(handler, head)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_HEAD(self):
            answer(self, True)

        def do_GET(self):
            answer(self, False)

    return Handler
