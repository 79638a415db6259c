"""Noticing a client that went away while its request waits on the engine.

The WSGI server puts the connection's socket in the environ (`pyllama.socket`
from our gevent handler, `gunicorn.socket` under gunicorn). A socket that polls
readable and peeks zero bytes has been closed by the peer."""

from __future__ import annotations

import socket
from typing import Callable

from gevent import select
from gevent.pywsgi import WSGIHandler


class Handler(WSGIHandler):
    """gevent's handler, with the connection's socket in the environ and the
    server's read/write timeout (--timeout) on the socket."""

    timeout_s: float | None = None

    def handle(self):
        if self.timeout_s:
            self.socket.settimeout(self.timeout_s)
        return super().handle()

    def get_environ(self):
        env = super().get_environ()
        env["pyllama.socket"] = self.socket
        return env


def watcher(environ: dict) -> Callable[[], bool]:
    sock = environ.get("pyllama.socket") or environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            readable, _, _ = select.select([sock], [], [], 0)
            if not readable:
                return False
            return sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    return gone
