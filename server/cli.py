"""pyllama-server: llama-server's command line (same flags, same LLAMA_ARG_*
environment variables; a flag beats its variable), serving the app under
gevent's WSGI server."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from pyllama import __version__

# (flags, dest, type, default, environment variable, help)
FLAGS: list[tuple] = [
    (("-m", "--model"), "model", str, "", "LLAMA_ARG_MODEL",
     "model path, or a default model name fetched on first use (smollm2-135m, gemma3-270m)"),
    (("-a", "--alias"), "alias", str, "", "LLAMA_ARG_ALIAS", "model name reported by the API"),
    (("--host",), "host", str, "127.0.0.1", "LLAMA_ARG_HOST", "address to listen on"),
    (("--port",), "port", int, 8080, "LLAMA_ARG_PORT", "port to listen on"),
    (("-c", "--ctx-size"), "ctx_size", int, 4096, "LLAMA_ARG_CTX_SIZE", "KV cache cells, shared by all slots"),
    (("-np", "--parallel"), "parallel", int, 1, "LLAMA_ARG_N_PARALLEL", "number of slots"),
    (("-t", "--threads"), "threads", int, 0, "LLAMA_ARG_THREADS", "compute threads (0: all cores)"),
    (("-tb", "--threads-batch"), "threads_batch", int, 0, "LLAMA_ARG_THREADS_BATCH",
     "threads for prompt batches (one pool serves both here: the larger of -t and -tb is used)"),
    (("-b", "--batch-size"), "batch_size", int, 2048, "LLAMA_ARG_BATCH", "tokens per engine step"),
    (("-ub", "--ubatch-size"), "ubatch_size", int, 512, "LLAMA_ARG_UBATCH", "tokens per forward pass"),
    (("-n", "--n-predict"), "n_predict", int, -1, "LLAMA_ARG_N_PREDICT", "cap on tokens per request (-1: none)"),
    (("--keep",), "keep", int, 0, None, "prompt tokens kept on a context shift"),
    (("--max-queue",), "max_queue", int, 128, "LLAMA_ARG_MAX_QUEUE",
     "requests that may wait for a slot; more get 503 at once (-1: no bound, as llama-server)"),
    (("--shutdown-grace",), "shutdown_grace", float, 30.0, "LLAMA_ARG_SHUTDOWN_GRACE",
     "seconds running requests get to finish after SIGTERM/SIGINT"),
    (("-s", "--seed"), "seed", int, -1, None, "default sampling seed (-1: random)"),
    (("--temp",), "temp", float, 0.8, None, "default temperature"),
    (("--top-k",), "top_k", int, 40, None, "default top-k"),
    (("--top-p",), "top_p", float, 0.95, None, "default top-p"),
    (("--min-p",), "min_p", float, 0.05, None, "default min-p"),
    (("--repeat-penalty",), "repeat_penalty", float, 1.0, None, "default repeat penalty"),
    (("--repeat-last-n",), "repeat_last_n", int, 64, None, "default penalty window"),
    (("--presence-penalty",), "presence_penalty", float, 0.0, None, "default presence penalty"),
    (("--frequency-penalty",), "frequency_penalty", float, 0.0, None, "default frequency penalty"),
    (("--cache-reuse",), "cache_reuse", int, 0, "LLAMA_ARG_CACHE_REUSE", "min chunk to reuse by KV shifting"),
    (("-ctk", "--cache-type-k"), "cache_type_k", str, "f16", "LLAMA_ARG_CACHE_TYPE_K", "K cache type"),
    (("-ctv", "--cache-type-v"), "cache_type_v", str, "f16", "LLAMA_ARG_CACHE_TYPE_V", "V cache type"),
    (("--api-key",), "api_key", str, "", "LLAMA_API_KEY", "API keys, comma-separated"),
    (("--api-key-file",), "api_key_file", str, "", None, "file with one API key per line"),
    (("--ssl-key-file",), "ssl_key_file", str, "", "LLAMA_ARG_SSL_KEY_FILE", "PEM private key (HTTPS)"),
    (("--ssl-cert-file",), "ssl_cert_file", str, "", "LLAMA_ARG_SSL_CERT_FILE", "PEM certificate (HTTPS)"),
    (("-to", "--timeout"), "timeout", int, 600, "LLAMA_ARG_TIMEOUT", "read/write timeout, seconds"),
    (("--chat-template",), "chat_template", str, "", "LLAMA_ARG_CHAT_TEMPLATE", "a Jinja chat template"),
    (("--chat-template-file",), "chat_template_file", str, "", "LLAMA_ARG_CHAT_TEMPLATE_FILE",
     "file with a Jinja chat template"),
    (("--path",), "path", str, "", "LLAMA_ARG_STATIC_PATH", "directory of static files to serve"),
    (("--grammar",), "grammar", str, "", None, "default GBNF grammar for requests that bring no constraint"),
    (("--grammar-file",), "grammar_file", str, "", None, "file with the default GBNF grammar"),
    (("-j", "--json-schema"), "json_schema", str, "", None, "default JSON schema (e.g. {} for any JSON object)"),
    (("-jf", "--json-schema-file"), "json_schema_file", str, "", None, "file with the default JSON schema"),
]
# (on flags, off flags, dest, default, environment variable, help)
SWITCHES: list[tuple] = [
    (("-cb", "--cont-batching"), ("-nocb", "--no-cont-batching"), "cont_batching", True, "LLAMA_ARG_CONT_BATCHING",
     "continuous batching"),
    (("--context-shift",), ("--no-context-shift",), "context_shift", False, "LLAMA_ARG_CONTEXT_SHIFT",
     "shift the context when it fills"),
    (("--metrics",), (), "metrics", False, "LLAMA_ARG_ENDPOINT_METRICS", "enable /metrics"),
    (("--slots",), ("--no-slots",), "slots", True, "LLAMA_ARG_ENDPOINT_SLOTS", "enable /slots"),
    (("--props",), (), "props", False, "LLAMA_ARG_ENDPOINT_PROPS", "allow POST /props"),
    (("--jinja",), ("--no-jinja",), "jinja", True, "LLAMA_ARG_JINJA", "Jinja chat templates"),
    (("--webui",), ("--no-webui",), "webui", True, "LLAMA_ARG_WEBUI", "serve the web UI"),
    (("--log-disable",), (), "log_disable", False, None, "no logging"),
    (("-v", "--verbose"), (), "verbose", False, None, "verbose logging"),
]


def _env_bool(v: str) -> bool:
    return v.strip().lower() in ("1", "true", "yes", "on", "enabled")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pyllama-server", description="llama-server's HTTP API on pyllama's engine")
    for flags, dest, typ, default, env, help_ in FLAGS:
        env_note = f" (env: {env})" if env else ""
        p.add_argument(*flags, dest=dest, type=typ, default=None, help=f"{help_}; default {default!r}{env_note}")
    for on, off, dest, default, env, help_ in SWITCHES:
        env_note = f" (env: {env})" if env else ""
        p.add_argument(*on, dest=dest, action="store_const", const=True, default=None,
                       help=f"{help_}; default {'on' if default else 'off'}{env_note}")
        if off:
            p.add_argument(*off, dest=dest, action="store_const", const=False, help=f"disable: {help_}")
    p.add_argument("--version", action="version", version=f"pyllama-server {__version__}")
    return p


def resolve(ns: argparse.Namespace | None = None, environ=os.environ):
    """Flag, else environment variable, else default -> ServerConfig."""
    from .config import build_config
    values = {}
    for flags, dest, typ, default, env, _ in FLAGS:
        v = getattr(ns, dest, None) if ns is not None else None
        if v is None and env and env in environ:
            v = typ(environ[env])
        values[dest] = default if v is None else v
    for on, off, dest, default, env, _ in SWITCHES:
        v = getattr(ns, dest, None) if ns is not None else None
        if v is None and env and env in environ:
            v = _env_bool(environ[env])
        values[dest] = default if v is None else v
    return build_config(values)


def config_from_env():
    return resolve(None)


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
    ns = parser().parse_args(argv)
    try:
        config = resolve(ns)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not config.model:
        print("error: no model given (-m PATH or a default model name)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.DEBUG if config.verbose else
                        (logging.CRITICAL if config.log_disable else logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
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

    app = create_app(config, load=False, on_fatal=fatal)
    ssl = {}
    if config.ssl_key_file and config.ssl_cert_file:
        ssl = {"keyfile": config.ssl_key_file, "certfile": config.ssl_cert_file}
    from .disconnect import Handler
    Handler.timeout_s = config.timeout if config.timeout > 0 else None
    from gevent.pool import Pool
    # a pool (unbounded) so that stopping waits for running requests (serve_forever's stop_timeout)
    server = WSGIServer((config.host, config.port), app, log=None if config.log_disable else "default",
                        handler_class=Handler, spawn=Pool(), **ssl)
    servers.append(server)
    try:
        server.init_socket()  # bind before loading: a busy port is an error at once
    except OSError as e:
        print(f"error: cannot listen on {config.host}:{config.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    state = app.config["PYLLAMA_STATE"]
    state.load_in_background()
    _graceful_signals(server, Handler, config.shutdown_grace)
    logging.getLogger("pyllama.server").info("listening on http%s://%s:%d", "s" if ssl else "", config.host,
                                             config.port)
    try:
        if not failed:
            server.serve_forever(stop_timeout=config.shutdown_grace)
    except KeyboardInterrupt:
        pass
    if state.engine is not None:
        state.engine.shutdown()
    if failed:
        print(f"error: exiting, the model could not be loaded: {failed[0]}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
