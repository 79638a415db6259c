"""/v1/responses (OpenAI's Responses API, run as a chat) and the token counts of a
request: /v1/responses/input_tokens for a Responses body, /v1/chat/completions/input_tokens
for a chat body. Each also without the /v1 prefix, as llama-server serves them."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import openai_responses as R
from ..offload import offload
from .common import generate, json_body, state

bp = Blueprint("responses_api", __name__)


@bp.post("/v1/responses")
@bp.post("/responses")
def responses():
    return generate(R.responses_request, R.ResponsesAnswer)


@bp.post("/v1/responses/input_tokens")
@bp.post("/responses/input_tokens")
def responses_input_tokens():
    st = state()
    return jsonify(offload(R.responses_input_tokens, st, json_body()))


@bp.post("/v1/chat/completions/input_tokens")
@bp.post("/chat/completions/input_tokens")
def chat_input_tokens():
    st = state()
    return jsonify(offload(R.input_tokens, st, json_body()))
