"""Noticing a client that went away while its request waits on the engine, and
the connection handler that makes it possible (and lets a shutdown close idle
keep-alive connections instead of waiting for them).

The WSGI server puts the connection's socket in the environ (`pyllama.socket`
from our gevent handler, `gunicorn.socket` under gunicorn). A peer that closed
its side shows POLLRDHUP (a FIN has arrived), whatever bytes are still unread:
this holds under TLS too, where the socket cannot be peeked (a close_notify alert
would look like data) and recv(MSG_PEEK) is refused."""

from __future__ import annotations

import select as std_select
import socket
import weakref
from typing import Callable

from gevent.pywsgi import WSGIHandler

from pyllama.engine.bridge import original

_GONE = std_select.POLLRDHUP | std_select.POLLHUP | std_select.POLLERR | std_select.POLLNVAL


class Handler(WSGIHandler):
    """gevent's handler, with the connection's socket in the environ, the server's
    read/write timeout (--timeout) on the socket, TCP_NODELAY, and a registry of
    open connections so a graceful stop can close the idle ones at once.

    Without TCP_NODELAY an answer written in two sends (headers, then body) waits
    for the client's delayed ACK (40 ms on Linux) on every keep-alive request after
    the first: Nagle holds the body back until the headers are acknowledged."""

    timeout_s: float | None = None
    closing = False                  # set on shutdown: no further request per connection
    live: "weakref.WeakSet[Handler]" = weakref.WeakSet()

    def handle(self):
        if self.timeout_s:
            self.socket.settimeout(self.timeout_s)
        try:
            self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # not TCP (a Unix socket)
            pass
        self.idle = False
        Handler.live.add(self)
        try:
            return super().handle()
        finally:
            Handler.live.discard(self)

    def read_requestline(self):
        if Handler.closing:
            return ""  # an empty line: the connection ends
        self.idle = True
        try:
            return super().read_requestline()
        finally:
            self.idle = False

    def handle_one_response(self):
        if Handler.closing:
            self.close_connection = True
        return super().handle_one_response()

    def get_environ(self):
        env = super().get_environ()
        env["pyllama.socket"] = self.socket
        return env

    @classmethod
    def close_idle(cls) -> None:
        """Shutting down: idle keep-alive connections end now, busy ones after their answer."""
        cls.closing = True
        for h in list(cls.live):
            if getattr(h, "idle", False) and h.socket is not None:
                try:
                    h.socket.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def watcher(environ: dict) -> Callable[[], bool]:
    sock = environ.get("pyllama.socket") or environ.get("gunicorn.socket")
    if sock is None:
        return lambda: False

    def gone() -> bool:
        try:
            poller = original("select", "poll")()  # non-blocking (timeout 0): fine on the event loop
            poller.register(sock.fileno(), std_select.POLLIN | std_select.POLLRDHUP)
            return any(ev & _GONE for _, ev in poller.poll(0))
        except (OSError, ValueError):  # closed under us (fileno -1)
            return True

    return gone
