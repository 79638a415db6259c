"""Who may call what, and from where: API keys (--api-key, --api-key-file) on every
route but the public ones, and CORS (--cors-origins, --cors-methods, --cors-headers,
--cors-credentials; a preflight is answered without a key). As llama-server: with
--cors-origins * (the default) any Origin is reflected; 'localhost' reflects an Origin
on this machine only; otherwise the Origin must be one of the list."""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from flask import Flask, request

from .errors import unauthorized, unavailable

PUBLIC = {"/health", "/v1/health"}


def is_public() -> bool:
    """Health checks and the web UI's files need no key; everything else does, so a
    new API route is protected without being listed anywhere."""
    # (Vertex AI's health route too: its probes carry no key; llama-server asks one there)
    return request.path in PUBLIC or request.blueprint == "webui" or request.endpoint == "vertex_health"


def key_accepted(api_keys: list[str]) -> bool:
    """The request's key (X-Api-Key, or Authorization: Bearer) is one of api_keys;
    every key is compared, in constant time."""
    given = request.headers.get("X-Api-Key") or request.headers.get("Authorization", "")
    if given.startswith("Bearer "):
        given = given[len("Bearer "):]
    ok = False
    for key in api_keys:
        ok |= hmac.compare_digest(given.encode(), key.encode())
    return ok


def install(app: Flask, state) -> None:
    """The key check and CORS headers on every request of `app`."""

    @app.before_request
    def _auth():
        if request.method == "OPTIONS":
            return _preflight(app)
        if is_public():
            return None
        if not state.ready:  # as llama-server: while loading, every other route is a 503 before any key check
            return unavailable(f"Loading model failed: {state.load_error}" if state.load_error
                               else "Loading model").response()
        api_keys = state.config.api_keys
        if api_keys and not key_accepted(api_keys):
            return unauthorized().response()
        return None

    @app.after_request
    def _cors(resp):
        _allow(resp, state.config)
        return resp


def _preflight(app: Flask):
    r = app.make_response(("", 200))
    cfg = app.config["PYLLAMA_STATE"].config
    if _allow(r, cfg):
        r.headers["Access-Control-Allow-Methods"] = cfg.cors_methods
        r.headers["Access-Control-Allow-Headers"] = cfg.cors_headers
    return r


LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


def allowed_origin(cfg, origin: str | None) -> str | None:
    """The Access-Control-Allow-Origin for a request's Origin header, or None (no CORS grant)."""
    spec = [o.strip() for o in cfg.cors_origins.split(",") if o.strip()]
    if not origin:
        return "*" if "*" in spec else None
    if "*" in spec or origin in spec:
        return origin
    if "localhost" in spec:
        try:
            host = urlsplit(origin).hostname
        except ValueError:
            host = None
        if host in LOCAL_HOSTS or (host or "").endswith(".localhost"):
            return origin
    return None


def _allow(resp, cfg) -> bool:
    if "Access-Control-Allow-Origin" in resp.headers:
        return True
    origin = allowed_origin(cfg, request.headers.get("Origin"))
    if origin is None:
        return False
    resp.headers["Access-Control-Allow-Origin"] = origin
    if cfg.cors_credentials and origin != "*":
        resp.headers["Access-Control-Allow-Credentials"] = "true"
    if origin != "*":
        resp.headers.add("Vary", "Origin")
    return True
