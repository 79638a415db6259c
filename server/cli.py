"""pyllama-server: llama-server's command line (same flags, same LLAMA_ARG_*
environment variables; a flag beats its variable; declared in config.py),
serving the app under gevent's WSGI server on every address of --host; without a
model (-m, -hf, -mu), llama-server's router mode: a child server per model (router/)."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pyllama import __version__

from .config import ServerConfig, resolve
from .flags import add_arguments, declared, given, names_of, normalize_argv

# Flags that act and exit rather than configure the server: (names, help). The
# README's flag table lists them with the declared ones (tools/gen_flags_table.py).
ACTIONS: list[tuple[tuple[str, ...], str]] = [
    (("-h", "--help", "--usage"), "print usage and exit"),
    (("--version",), "show version and build info"),
    (("-cl", "--cache-list"), "show the list of models in the cache ($PYLLAMA_CACHE) and exit"),
    (("--completion-bash",), "print a source-able bash completion script for pyllama-server and exit"),
    (("--list-devices",), "print the list of available offloading devices (none: CPU only) and exit"),
]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyllama-server", description="llama-server's HTTP API on pyllama's engine",
                                add_help=False, allow_abbrev=False)
    p.add_argument(*ACTIONS[0][0], action="help", help=ACTIONS[0][1])
    add_arguments(p, ServerConfig)
    p.add_argument("--version", action="version", version=f"pyllama-server {__version__}", help=ACTIONS[1][1])
    for names, text in ACTIONS[2:]:
        p.add_argument(*names, dest="action_" + names[-1].lstrip("-").replace("-", "_"), action="store_true",
                       help=text)
    return p


def _action(ns: argparse.Namespace) -> int | None:
    """Run an exit-action flag if one was given: its exit code, else None."""
    if getattr(ns, "action_cache_list", False):
        from pyllama.model_registry import cache_dir

        folder = cache_dir()
        models = sorted(folder.rglob("*.gguf")) if folder.is_dir() else []
        print(f"model cache directory: {folder}")
        print(f"number of models in cache: {len(models)}")
        for i, m in enumerate(models, 1):
            print(f"{i:4d}. {m.relative_to(folder)}")
        return 0
    if getattr(ns, "action_completion_bash", False):
        print(completion_script())
        return 0
    if getattr(ns, "action_list_devices", False):
        print("Available devices:")  # llama.cpp lists offloading devices only; pyllama has none
        return 0
    return None


def completion_script() -> str:
    opts = " ".join(sorted(names_of(ServerConfig) | {n for names, _ in ACTIONS for n in names}))
    return "\n".join([
        "_pyllama_server_completions() {",
        "    local cur prev opts",
        "    COMPREPLY=()",
        '    cur="${COMP_WORDS[COMP_CWORD]}"',
        '    prev="${COMP_WORDS[COMP_CWORD-1]}"',
        f'    opts="{opts}"',
        '    case "$prev" in',
        "        --model|-m)",
        "            COMPREPLY=( $(compgen -f -X '!*.gguf' -- \"$cur\") $(compgen -d -- \"$cur\") )",
        "            return 0;;",
        "        --grammar-file)",
        "            COMPREPLY=( $(compgen -f -X '!*.gbnf' -- \"$cur\") $(compgen -d -- \"$cur\") )",
        "            return 0;;",
        "        --chat-template-file)",
        "            COMPREPLY=( $(compgen -f -X '!*.jinja' -- \"$cur\") $(compgen -d -- \"$cur\") )",
        "            return 0;;",
        "        *)",
        '            COMPREPLY=( $(compgen -W "${opts}" -- "$cur") )',
        "            return 0;;",
        "    esac",
        "}",
        "complete -F _pyllama_server_completions pyllama-server",
    ])


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


def _graceful_signals(servers: list, handler, grace: float, on_stop=None) -> None:
    """SIGTERM/SIGINT: stop accepting, close idle connections, give running requests
    `grace` seconds (serve_forever's stop_timeout), then return; a second signal
    ends the process at once. on_stop() runs first (tool calls in flight end)."""
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
        if on_stop is not None:
            on_stop()
        handler.close_idle()
        for s in servers:
            s.close()

    for sig in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(sig, on_signal, sig)


def main(argv: list[str] | None = None) -> int:
    from .router.child import guard
    guard()  # started by a router: end with it
    argv = sys.argv[1:] if argv is None else list(argv)
    argv = normalize_argv(argv, names_of(ServerConfig) | {n for names, _ in ACTIONS for n in names})
    ns = parser().parse_args(argv)
    code = _action(ns)
    if code is not None:
        return code
    try:
        config = resolve(ns)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for dest, _, _, f in declared(ServerConfig):  # as llama.cpp: a flag beats its variable, and says so
        if getattr(ns, dest, None) is not None and f.env and f.env in os.environ:
            print(f"warn: {f.env} environment variable is set, but will be overwritten by command line argument "
                  f"{f.name}", file=sys.stderr)
    from . import logs

    logs.setup(config)
    try:
        return _serve(ns, config)
    finally:
        logs.close()


def _serve(ns: argparse.Namespace, config: ServerConfig) -> int:
    from . import logs, placement

    log = logging.getLogger("pyllama.server")
    for w in config.warnings + placement.apply(config):
        log.warning("%s", w)
    patch_gevent()
    import gevent
    from gevent.pool import Pool
    from gevent.pywsgi import LoggingLogAdapter, WSGIServer

    from . import vertex
    from .app import create_app
    from .disconnect import Handler
    from .listen import close_all, open_listeners

    failed: list[str] = []
    servers: list = []
    hub = gevent.get_hub()

    def stop() -> None:
        for s in servers:
            s.close()

    def fatal(reason: str) -> None:  # on the loader thread: stop serving, main() returns 1
        failed.append(reason)
        hub.loop.run_callback_threadsafe(stop)

    ssl = {}
    if config.ssl_key_file and config.ssl_cert_file:
        ssl = {"keyfile": config.ssl_key_file, "certfile": config.ssl_cert_file}
    port = config.port
    if vertex.enabled():  # Vertex AI names the port
        port, warning = vertex.http_port(port)
        if warning:
            log.warning("%s", warning)
    try:  # bind before loading: a busy port is an error at once
        listeners = open_listeners(config.host, port, reuse_port=config.reuse_port, tls=bool(ssl))
    except OSError as e:
        print(f"error: {e.strerror or e}", file=sys.stderr)
        return 1
    router = None
    if config.is_router:  # no model: llama-server's router mode, a child server per model
        from .router.app import create_router_app
        try:
            app = create_router_app(config, given(ServerConfig, ns, {}))
        except ValueError as e:
            close_all(listeners)
            print(f"error: {e}", file=sys.stderr)
            return 1
        router = app.config["PYLLAMA_ROUTER"]
    else:
        try:
            app = create_app(config, load=False, on_fatal=fatal)
        except ValueError as e:  # tools that cannot be set up (tools/)
            close_all(listeners)
            print(f"error: {e}", file=sys.stderr)
            return 1
    Handler.timeout_s = config.timeout if config.timeout > 0 else None
    access = None if config.log_disable else LoggingLogAdapter(logs.access_log(), logging.INFO)
    for ls in listeners:
        # a pool per server, so that stopping waits for its running requests (serve_forever's stop_timeout);
        # --threads-http N bounds it at N + 1024, as llama-server's HTTP thread pool
        pool = Pool(config.threads_http + 1024) if config.threads_http > 0 else Pool()
        servers.append(WSGIServer(ls.sock, app, log=access, handler_class=Handler, spawn=pool, **ssl))
    state = app.config["PYLLAMA_STATE"]
    if router is None:
        state.load_in_background()
    from . import tools
    _graceful_signals(servers, Handler, config.shutdown_grace, on_stop=lambda: tools.shutdown(app))
    for ls in listeners:
        log.info("%s on %s", "router listening" if router is not None else "listening", ls.url)
    try:
        if not failed:
            gevent.joinall([gevent.spawn(s.serve_forever, stop_timeout=config.shutdown_grace) for s in servers])
    except KeyboardInterrupt:
        pass
    finally:
        tools.close(app)  # no tool or MCP child, nor the --tools-runtime container, outlives the server
        try:
            if router is not None:  # no model's server outlives the router
                try:
                    router.stop_all()
                finally:
                    router.kill_all()
        finally:
            close_all(listeners)
    if router is None and state.engine is not None:
        state.engine.shutdown()
    if failed:
        logs.close()  # the log first, then the reason
        print(f"error: exiting, the model could not be loaded: {failed[0]}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
