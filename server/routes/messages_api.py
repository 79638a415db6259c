"""/v1/messages and /v1/messages/count_tokens: Anthropic's Messages API (the request
and the answer: the anthropic_messages package). Errors raised here have Anthropic's envelope."""

from __future__ import annotations

from flask import Blueprint, jsonify

from pyllama.errors import PyllamaError

from .. import anthropic_messages as am
from ..errors import ApiError, api_error
from ..offload import offload
from .common import generate, json_body, state

bp = Blueprint("messages_api", __name__)


@bp.post("/v1/messages")
def messages():
    return generate(am.parse, am.AnthropicMessage)


@bp.post("/v1/messages/count_tokens")
def count_tokens():
    st = state()
    return jsonify({"input_tokens": offload(am.count_tokens, st, json_body())})


@bp.errorhandler(ApiError)
@bp.errorhandler(PyllamaError)
def _error(e: Exception):
    err = api_error(e)
    r = jsonify(am.error_body(err))
    r.status_code = err.code
    return r
