"""The web UI at / (a small chat page; --no-webui turns it off), or the static
files of --path."""

from __future__ import annotations

import os

from flask import Blueprint, current_app, send_from_directory

from ..errors import not_found

bp = Blueprint("webui", __name__)
BUILTIN = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "static")


def _root() -> str | None:
    cfg = current_app.config["PYLLAMA_STATE"].config
    if cfg.path:
        return cfg.path
    return BUILTIN if cfg.webui else None


@bp.get("/")
def index():
    return _file("index.html")


@bp.get("/<path:name>")
def static_file(name: str):
    return _file(name)


def _file(name: str):
    root = _root()
    if root is None or not os.path.isfile(os.path.join(root, name)):
        raise not_found()
    return send_from_directory(root, name)  # refuses paths that leave root
