"""/v1/chat/completions and /chat/completions (OpenAI chat), /apply-template."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import schemas
from ..offload import offload
from ..answers import ChatCompletion
from .common import generate, json_body, state

bp = Blueprint("chat", __name__)


@bp.post("/apply-template")
def apply_template():
    st = state()
    return jsonify({"prompt": offload(schemas.chat_prompt, st, json_body())})


@bp.post("/v1/chat/completions")
@bp.post("/chat/completions")
def chat_completions():
    return generate(schemas.chat, ChatCompletion)
