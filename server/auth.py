"""Who may call what, and from where: API keys (--api-key, --api-key-file) on every
route but the public ones, and CORS (a preflight is answered without a key; every
answer allows the caller's origin)."""

from __future__ import annotations

import hmac

from flask import Flask, request

from .errors import unauthorized

PUBLIC = {"/health", "/v1/health"}


def is_public() -> bool:
    """Health checks and the web UI's files need no key; everything else does, so a
    new API route is protected without being listed anywhere."""
    return request.path in PUBLIC or request.blueprint == "webui"


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
        api_keys = state.config.api_keys
        if not api_keys or is_public() or not state.ready:
            return None  # while loading, every route answers 503 before any key check
        if not key_accepted(api_keys):
            return unauthorized().response()
        return None

    @app.after_request
    def _cors(resp):
        resp.headers.setdefault("Access-Control-Allow-Origin", request.headers.get("Origin", "*"))
        return resp


def _preflight(app: Flask):
    r = app.make_response(("", 200))
    r.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    r.headers["Access-Control-Allow-Methods"] = "GET, POST, DELETE, OPTIONS"
    r.headers["Access-Control-Allow-Headers"] = "*"
    return r
