"""pyllama-server: llama-server's command line (same flags, same LLAMA_ARG_*
environment variables; a flag beats its variable; declared in config.py),
serving the app under gevent's WSGI server."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pyllama import __version__

from .config import ServerConfig, resolve
from .flags import add_arguments, given


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyllama-server", description="llama-server's HTTP API on pyllama's engine")
    add_arguments(p, ServerConfig)
    p.add_argument("--version", action="version", version=f"pyllama-server {__version__}")
    return p


def patch_gevent() -> None:
    """gevent's monkey.patch_all(), minus 0.3 s of start-up: it looks its plugin entry
    points up 25 times, each a scan of every installed distribution; one scan is
    enough (plugins are still honoured)."""
    import importlib.metadata as metadata

    from gevent import monkey

    original = metadata.entry_points
    seen: dict = {}

    def entry_points(**kw):
        key = tuple(sorted(kw.items()))
        if key not in seen:
            seen[key] = original(**kw)
        return seen[key]

    metadata.entry_points = entry_points
    try:
        monkey.patch_all()
    finally:
        metadata.entry_points = original


def _graceful_signals(server, handler, grace: float) -> None:
    """SIGTERM/SIGINT: stop accepting, close idle connections, give running requests
    `grace` seconds (serve_forever's stop_timeout), then return; a second signal
    ends the process at once."""
    import signal

    import gevent

    log = logging.getLogger("pyllama.server")
    seen = []

    def on_signal(signum: int) -> None:
        if seen:
            log.warning("second signal: exiting now")
            os._exit(1)
        seen.append(signum)
        log.info("%s: no new requests; running ones have %.0f s to finish", signal.Signals(signum).name, grace)
        handler.close_idle()
        server.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, on_signal, sig)


def main(argv: list[str] | None = None) -> int:
    from .router.child import guard
    guard()  # started by a router: end with it
    ns = parser().parse_args(argv)
    try:
        config = resolve(ns)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from .log_writer import install
    log_writer = install(logging.DEBUG if config.verbose else (logging.CRITICAL if config.log_disable else logging.INFO))
    try:
        return _serve(ns, config, log_writer)
    finally:
        log_writer.close()


def _serve(ns: argparse.Namespace, config: ServerConfig, log_writer) -> int:
    patch_gevent()
    from gevent.pywsgi import WSGIServer

    import gevent

    from .app import create_app
    failed: list[str] = []
    servers: list = []
    hub = gevent.get_hub()

    def stop() -> None:
        for s in servers:
            s.close()

    def fatal(reason: str) -> None:  # on the loader thread: stop serving, main() returns 1
        failed.append(reason)
        hub.loop.run_callback_threadsafe(stop)

    router = None
    if config.is_router:  # no model: llama-server's router mode, a child server per model
        from .router.app import create_router_app
        try:
            app = create_router_app(config, given(ServerConfig, ns, {}))
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 1
        router = app.config["PYLLAMA_ROUTER"]
    else:
        app = create_app(config, load=False, on_fatal=fatal)
    ssl = {}
    if config.ssl_key_file and config.ssl_cert_file:
        ssl = {"keyfile": config.ssl_key_file, "certfile": config.ssl_cert_file}
    from .disconnect import Handler
    Handler.timeout_s = config.timeout if config.timeout > 0 else None
    from gevent.pool import Pool
    # a pool (unbounded) so that stopping waits for running requests (serve_forever's stop_timeout)
    server = WSGIServer((config.host, config.port), app, log=None if config.log_disable else log_writer,
                        handler_class=Handler, spawn=Pool(), **ssl)
    servers.append(server)
    try:
        server.init_socket()  # bind before loading: a busy port is an error at once
    except OSError as e:
        print(f"error: cannot listen on {config.host}:{config.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    state = app.config["PYLLAMA_STATE"]
    if router is None:
        state.load_in_background()
    _graceful_signals(server, Handler, config.shutdown_grace)
    logging.getLogger("pyllama.server").info("%s on http%s://%s:%d", "router listening" if router else "listening",
                                             "s" if ssl else "", config.host, config.port)
    try:
        if not failed:
            server.serve_forever(stop_timeout=config.shutdown_grace)
    except KeyboardInterrupt:
        pass
    finally:
        if router is not None:  # no model's server outlives the router
            try:
                router.stop_all()
            finally:
                router.kill_all()
    if router is None and state.engine is not None:
        state.engine.shutdown()
    if failed:
        log_writer.close()  # the log first, then the reason
        print(f"error: exiting, the model could not be loaded: {failed[0]}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
