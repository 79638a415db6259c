"""create_app(): the Flask app. Under gevent's WSGI server (pyllama-server) or
gunicorn's gevent worker; the model loads on an OS thread after the app exists,
so the port answers at once (/health: 503 "Loading model" until ready)."""

from __future__ import annotations

import logging
from typing import Callable

from flask import Flask, g

from .app_base import new_app
from .memory import tune_malloc
from . import cors_proxy, tools, vertex
from .routes import chat, completion, embeddings_api, lora, misc, messages_api, responses_api, slots, webui
from .config import ServerConfig, config_from_env
from .state import ServerState


def _default_logging() -> None:
    """When the host configured no logging (gunicorn configures only its own loggers),
    pyllama's INFO lines (download progress, model loaded) go where gunicorn's go, or
    to stderr, as Flask gives its app logger a default handler."""
    ours = logging.getLogger("pyllama")
    if ours.handlers or logging.getLogger().handlers:
        return
    handlers = logging.getLogger("gunicorn.error").handlers
    if not handlers:
        h = logging.StreamHandler()
        h.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handlers = [h]
    for h in handlers:
        ours.addHandler(h)
    if ours.level == logging.NOTSET:
        ours.setLevel(logging.INFO)


def create_app(config: ServerConfig | None = None, *, load: bool = True,
               on_fatal: Callable[[str], None] | None = None) -> Flask:
    """The app for `config` (by default read from LLAMA_ARG_* / LLAMA_API_KEY, as
    gunicorn runs it); the model starts loading unless load is False. If it cannot be
    loaded, on_fatal(reason) is called on the loader thread; by default the process
    exits with code 3 (under gunicorn: the worker failed to boot, the arbiter stops)."""
    from_env = config is None
    if config is None:
        config = config_from_env()
    _default_logging()
    if from_env:  # under gunicorn: no command line printed them, nor placed the process
        from . import placement
        for w in config.warnings + placement.apply(config):
            logging.getLogger("pyllama.server").warning("%s", w)
    if config.is_router:  # no model: the router (under gunicorn, flags come from the environment only)
        import atexit

        from .router.app import create_router_app
        app = create_router_app(config, {})
        atexit.register(app.config["PYLLAMA_ROUTER"].kill_all)
        return app
    tune_malloc()
    st = ServerState(config, on_fatal)
    app = new_app("pyllama.server", st)
    for bp in (misc.bp, completion.bp, chat.bp, responses_api.bp, messages_api.bp, embeddings_api.bp, slots.bp,
               lora.bp, webui.bp):
        app.register_blueprint(bp)
    if vertex.enabled():  # AIP_MODE=PREDICTION: Vertex AI's predict route
        vertex.install(app)
    tools.install(app, config)  # /tools: --tools, MCP servers (403 without them)
    cors_proxy.install(app, config)  # /cors-proxy: --ui-mcp-proxy, --agent (403 without them)

    if config.sleep_idle_seconds > 0:
        _install_sleep(app, st, config.sleep_idle_seconds)
    if config.api_prefix:
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, config.api_prefix)
    if load:
        st.load_in_background()
    return app


def _install_sleep(app: Flask, st: ServerState, idle_s: int) -> None:
    """--sleep-idle-seconds: requests that need the model (after the key check) count as
    activity and wake it (sleep.py)."""
    from .sleep import Sleeper, exempt

    sleeper = Sleeper(st, idle_s)
    app.config["PYLLAMA_SLEEPER"] = sleeper

    @app.before_request
    def _wake():
        if not exempt():
            g.pyllama_counted = True
            sleeper.begin()

    @app.teardown_request
    def _done(_exc):
        if g.pop("pyllama_counted", False):
            sleeper.end()

    sleeper.start()


class PrefixMiddleware:
    """--api-prefix: the server answers under the prefix only (the routes see the path
    without it); any other path is llama-server's 404."""

    def __init__(self, wsgi_app, prefix: str):
        self.wsgi_app, self.prefix = wsgi_app, prefix

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == self.prefix or path.startswith(self.prefix + "/"):
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.prefix
            environ["PATH_INFO"] = path[len(self.prefix):] or "/"
            return self.wsgi_app(environ, start_response)
        body = b'{"error":{"code":404,"message":"File Not Found","type":"not_found_error"}}'
        start_response("404 Not Found", [("Content-Type", "application/json; charset=utf-8"),
                                         ("Content-Length", str(len(body)))])
        return [body]
