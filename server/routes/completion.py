"""/completion and /completions (llama-server's native API), /infill (fill in the middle)
and /v1/completions (OpenAI)."""

from __future__ import annotations

from flask import Blueprint

from .. import schemas
from ..answers import NativeCompletion, TextCompletion
from .common import generate

bp = Blueprint("completion", __name__)


@bp.post("/completion")
@bp.post("/completions")
def completion():
    return generate(schemas.completion, NativeCompletion)


@bp.post("/infill")
def infill():
    return generate(schemas.infill, NativeCompletion)


@bp.post("/v1/completions")
def v1_completions():
    return generate(schemas.openai_completion, TextCompletion)
