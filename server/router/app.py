"""The router's Flask app: llama-server's router mode.

- GET /health: the router's own (200).
- GET /models, /v1/models: every model with its status (llama-server's shape:
  id, aliases, tags, object, owned_by, created, status {value, args, [preset],
  [failed, exit_code]}, architecture, source, can_remove, and the loaded child's own
  /v1/models fields); ?reload=1 reads the sources again first.
- POST /models/load, /models/unload {"model": name} (unloading a download cancels it
  and deletes its partial file, as llama-server; a failed download keeps it to resume).
- GET /models/sse: the models' events as they happen (events.py).
- POST /models {"model": "user/model[:quant]"}: fetch a Hugging Face model into the
  cache in the background (checked on the Hub first; progress on /models/sse; the model
  is listed once `download_finished`). DELETE /models?model=NAME: stop a cached model
  and delete its files.
- GET /props: the router's props; with ?model= the model's (proxied).
- Any other POST is proxied to the server of the model its JSON body names in `model`;
  any other GET to the model named by ?model=. An unloaded model is loaded first
  (--models-autoload, or ?autoload=true|false per request), else 400; at --models-max
  the request waits in the queue of sched.py (until an idle model can be given up) and
  gives up its place if its client goes away.

Errors as llama-server's router gives them: no model named -> 400 "model name is
missing from the request"; an unknown one -> 400 "model 'X' not found"; not loaded
without autoload -> 400 "model is not loaded"; a model whose server failed to start
-> 500 "model name=X failed to load"; POST /models/load while --models-max models
run and all are busy -> 500 "model limit reached, try again later".

LLAMA_SERVER_DEBUG_FAKE_TIMING (non-empty), llama-server's switch for its router tests:
every load and every proxied request takes 2 s more (instances.FAKE_TIMING_S)."""

from __future__ import annotations

import logging
import time
from typing import Any

from flask import Flask, Response, jsonify, request

from pyllama._version import BUILD_INFO

from ..app_base import new_app
from ..config import ServerConfig
from ..disconnect import watcher
from ..errors import ApiError, bad_request
from ..offload import offload
from ..routes import webui
from ..routes.common import json_value
from .cache import check_downloadable, delete_cached
from .instances import (DOWNLOADED, DOWNLOADING, FAKE_TIMING_S, LOADED, LOADING, SLEEPING, Cancelled, Instance,
                        ModelLimit, Models)
from .presets import load_models
from .proxy import forward

log = logging.getLogger("pyllama.server.router")
MAX_NAME = 1024
MAX_DOWNLOADS = 4  # downloads at once (each is a child process)
ROUTER_ROUTES = {"/health", "/v1/health", "/models", "/v1/models", "/models/load", "/models/unload", "/models/sse",
                 "/props"}


class RouterState:
    """What auth.install and the web UI read from an app's state."""

    ready = True

    def __init__(self, config: ServerConfig, models: Models):
        self.config = config
        self.models = models


def create_router_app(config: ServerConfig, command_line: dict[str, Any]) -> Flask:
    """The router for `config` (no model of its own); `command_line` holds the flags
    given on the router's command line (config field -> value), which every model's
    server gets too. PresetError (a ValueError) for presets it cannot use."""
    specs = load_models(config, command_line)
    models = Models(specs, models_max=config.models_max, sources=lambda: load_models(config, command_line))
    startup = [n for n, s in specs.items() if s.load_on_startup]
    if config.models_max and len(startup) > config.models_max:
        raise ValueError(f"number of models to load on startup ({len(startup)}) exceeds --models-max "
                         f"({config.models_max})")
    log.info("router mode: %d models (%s)", len(specs), ", ".join(specs) or "none")
    app = new_app("pyllama.server.router", RouterState(config, models))
    app.config["PYLLAMA_ROUTER"] = models

    @app.get("/health")
    @app.get("/v1/health")
    def health():
        return jsonify({"status": "ok"})

    @app.get("/models")
    @app.get("/v1/models")
    def list_models():
        if request.args.get("reload"):
            try:
                models.reload(load_models(config, command_line))
            except ValueError as e:
                raise bad_request(f"cannot reload the model list: {e}") from None
        models.refresh()
        now = int(time.time())
        return jsonify({"data": [_model_json(inst, now) for inst in models.instances.values() if not inst.spec.hidden],
                        "object": "list"})

    @app.post("/models/load")
    def load():
        inst = models.get(_body_model())
        if inst is None:
            raise ApiError(404, "model is not found")
        if inst.running:
            raise bad_request("model is already running")
        try:
            models.load(inst)
        except ModelLimit as e:
            raise ApiError(500, str(e)) from None
        return jsonify({"success": True})

    @app.post("/models/unload")
    def unload():
        inst = models.get(_body_model())
        if inst is None:
            raise bad_request("model is not found")
        if not inst.running and inst.status != DOWNLOADING:
            raise bad_request("model is not running")
        models.unload(inst)
        if inst.status == DOWNLOADING:  # as llama-server: the answer waits for the cancelled download to end
            models.wait(lambda: inst.status != DOWNLOADING, timeout=None)
        return jsonify({"success": True})

    @app.get("/models/sse")
    def models_sse():
        return Response(models.events.stream(), mimetype="text/event-stream",
                        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    @app.post("/models")
    def download():
        name = _body_model(required=True)
        if name.count(":") > 1:  # one name per file: user/model:x:Q4_0 would fetch user/model:Q4_0 again
            raise bad_request(f"model validation failed, unable to download: invalid Hugging Face model name "
                              f"'{name}': expected <user>/<model>[:quant]")
        if sum(i.status == DOWNLOADING for i in models.instances.values()) >= MAX_DOWNLOADS:
            raise ApiError(503, f"too many downloads in progress (at most {MAX_DOWNLOADS}); try again later",
                           "unavailable_error")
        try:
            offload(check_downloadable, name, token=config.hf_token, offline=config.offline)
        except ValueError as e:
            raise bad_request(f"model validation failed, unable to download: {e}") from None
        if models.get(name) is not None:
            raise bad_request(f"model '{name}' already exists")
        log.info("starting the download of model %s", name)
        try:
            models.download(name)
        except RuntimeError as e:
            raise ApiError(500, str(e)) from None
        return jsonify({"success": True})

    @app.delete("/models")
    def remove():
        name = request.args.get("model", "")
        if not name:
            raise bad_request("model must be a non-empty string")
        inst = models.get(name)
        if inst is None:
            raise ApiError(500, f"model name={name} is not found")
        try:
            models.remove(inst, lambda n: offload(delete_cached, n))
        except RuntimeError as e:
            raise ApiError(500, str(e)) from None
        return jsonify({"success": True})

    @app.get("/props")
    def props():
        if request.args.get("model"):
            return _proxy(models, config, request.args.get("model", ""), update_last_used=False)
        return jsonify({"role": "router", "max_instances": config.models_max,
                        "models_autoload": config.models_autoload, "model_alias": "llama-server",
                        "model_path": "none", "default_generation_settings": {"params": {}, "n_ctx": 0},
                        "build_info": BUILD_INFO})

    @app.route("/<path:path>", methods=["POST"])
    def proxy_post(path: str):
        return _proxy(models, config, _body_model(), update_last_used=True)

    @app.route("/<path:path>", methods=["GET"])
    def proxy_get(path: str):
        name = request.args.get("model", "")
        if not name and request.path in ("/slots", "/metrics", "/lora-adapters"):
            raise bad_request("model name is missing from the request")
        if not name:  # the web UI's files, or a route nobody serves
            return webui.static_file(path)
        return _proxy(models, config, name, update_last_used=False)

    app.register_blueprint(webui.bp)
    from .. import tools
    tools.install(app, config)  # /tools is the router's own, as llama-server's
    from .. import cors_proxy
    cors_proxy.install(app, config)  # /cors-proxy too (--ui-mcp-proxy, --agent)
    if config.api_prefix:  # the router answers under the prefix; its children (reserved flag) without it
        from ..app import PrefixMiddleware
        app.wsgi_app = PrefixMiddleware(app.wsgi_app, config.api_prefix)

    if startup:
        import gevent

        def load_startup() -> None:
            for name in startup:
                log.info("(startup) loading model %s", name)
                try:
                    models.load(models.instances[name])
                except ModelLimit as e:  # requests filled the slots first
                    log.error("(startup) model %s: %s", name, e)
        gevent.spawn(load_startup)
    return app


def _body_model(required: bool = False) -> str:
    body = json_value()  # the model servers' parser: too deep a body is a 400 too
    name = body.get("model") if isinstance(body, dict) else None
    name = name if isinstance(name, str) else ""
    if required and not name:
        raise bad_request("model must be a non-empty string")
    if len(name) > MAX_NAME:
        raise bad_request(f"model name is too long ({len(name)} characters, at most {MAX_NAME})")
    return name


def _autoload(config: ServerConfig) -> bool:
    v = request.args.get("autoload")
    if v is None or v == "":
        return config.models_autoload
    return v in ("true", "1")


def _proxy(models: Models, config: ServerConfig, name: str, *, update_last_used: bool):
    if not name:
        raise bad_request("model name is missing from the request")
    inst = models.get(name)
    if inst is None:
        raise bad_request(f"model '{name}' not found")
    if inst.status in (DOWNLOADING, DOWNLOADED):
        raise ApiError(503, f"model name={inst.spec.name} is being downloaded; try again when it has finished")
    if _autoload(config):
        if not inst.running:
            log.info("model %s is not loaded: loading it", inst.spec.name)
        try:
            models.ensure_ready(inst, watcher(request.environ))
        except Cancelled as e:
            raise ApiError(500, str(e)) from None
    elif not inst.running:
        raise bad_request("model is not loaded")
    else:
        models.wait(lambda: inst.status != LOADING, timeout=None)
    if inst.status != "loaded":
        raise ApiError(500, f"model name={inst.spec.name} failed to load: {inst.error_line()}")
    if update_last_used:
        inst.last_used = time.monotonic()
    inst.active += 1
    done = []
    if models.fake_timing:  # llama-server's test switch: the model counts as busy meanwhile
        try:
            time.sleep(FAKE_TIMING_S)
        except BaseException:
            inst.active -= 1
            models.queue.tick()
            raise

    def finished() -> None:
        if not done:
            done.append(True)
            inst.active -= 1
            if inst.active == 0:
                models.queue.tick()  # an idle model may now make room for a queued request
    return forward(inst.port, config.timeout if config.timeout > 0 else None, finished)


def _model_json(inst: Instance, now: int) -> dict:
    status: dict = {"value": SLEEPING if inst.status == LOADED and inst.sleeping else inst.status,
                    "args": inst.args}
    if inst.status == DOWNLOADING:
        status["progress"] = inst.progress
    if inst.spec.source == "preset":
        status["preset"] = _preset_ini(inst)
    if inst.failed:
        status["exit_code"] = inst.exit_code
        status["failed"] = True
    tags = inst.spec.options.get("tags", "")
    out = {"id": inst.spec.name, "aliases": inst.spec.aliases,
           "tags": [t.strip() for t in tags.split(",") if t.strip()] if isinstance(tags, str) else [],
           "object": "model",
           "owned_by": "llamacpp", "created": now, "status": status,
           "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
           "source": inst.spec.source, "can_remove": inst.spec.source == "cache"}
    if inst.running:
        for k, v in inst.info.items():
            out.setdefault(k, v)
    return out


def _preset_ini(inst: Instance) -> str:
    from ..flags import declared
    names = {dest: f.name.lstrip("-") for dest, _, _, f in declared(ServerConfig)}
    repeated = {dest for dest, _, _, f in declared(ServerConfig) if f.repeat}
    lines = [f"[{inst.spec.name}]"]
    for dest, value in inst.spec.options.items():
        if dest not in ("host", "port", "alias"):
            for v in (value if isinstance(value, tuple) and dest in repeated else (value,)):
                lines.append(f"{names.get(dest, dest)} = {' '.join(v) if isinstance(v, tuple) else v}")
    lines += [f"{k} = {v}" for k, v in inst.spec.preset_only.items()]
    return "\n".join(lines) + "\n\n"
