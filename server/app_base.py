"""What every pyllama Flask app shares (the model server's and the router's): JSON as
llama-server writes it, the body limit, the state the routes read, API keys, and the
error handlers that answer in llama-server's envelope."""

from __future__ import annotations

import logging

from flask import Flask
from werkzeug.exceptions import HTTPException

from pyllama.errors import PyllamaError

from . import auth
from .errors import ApiError, api_error, http_error
from .generation import ClientGone

# Parsing JSON holds the GIL: 16 MB of small numbers takes ~0.2 s, during which nothing
# else (not /health, not a stream) is served; 100 MB took 1.4 s. 16 MB is a 4M-token
# prompt as token ids, or a few million words of text.
MAX_BODY_BYTES = 16 << 20


def new_app(name: str, state) -> Flask:
    """A Flask app serving `state` (app.config["PYLLAMA_STATE"]), its keys checked."""
    app = Flask(name)
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["PYLLAMA_STATE"] = state
    auth.install(app, state)

    @app.errorhandler(ApiError)
    def _api_error(e: ApiError):
        return e.response()

    @app.errorhandler(PyllamaError)
    def _library_error(e: PyllamaError):  # a typed error from the library: STATUS in errors.py says how
        return api_error(e).response()

    @app.errorhandler(ClientGone)
    def _gone(e: ClientGone):
        return "", 499  # nobody is listening; the task was cancelled

    @app.errorhandler(HTTPException)
    def _http_error(e: HTTPException):
        return http_error(e.code, e.description, MAX_BODY_BYTES).response()

    @app.errorhandler(Exception)
    def _unexpected(e: Exception):
        logging.getLogger(name).exception("request failed")
        return api_error(e).response()  # not the library's: a 500

    return app
