"""GET and POST /lora-adapters (server/lora.py)."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import lora
from .common import json_value, state

bp = Blueprint("lora", __name__)


@bp.get("/lora-adapters")
def list_adapters():
    return jsonify(lora.adapters_json(state()))


@bp.post("/lora-adapters")
def set_adapters():
    st = state()
    lora.set_global(st, json_value())
    return jsonify({"success": True})
