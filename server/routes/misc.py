"""/health, /models, /props, /v1/systemone, /tokenize, /detokenize."""

from __future__ import annotations

from flask import Blueprint, jsonify

from pyllama._version import BUILD_INFO
from pyllama.engine import TaskRequest

from .. import answers as R
from ..errors import bad_request, not_supported
from ..params import field
from ..offload import offload
from .common import json_body, state

bp = Blueprint("misc", __name__)


@bp.get("/health")
@bp.get("/v1/health")
def health():
    state()  # 503 while loading
    return jsonify({"status": "ok"})


@bp.get("/models")
@bp.get("/v1/models")
def models():
    st = state()  # also while asleep: what it reports is kept in st.info
    info = st.info
    meta = {"vocab_type": info.vocab_type, "n_vocab": info.n_vocab, "n_ctx": info.n_ctx_slot,
            "n_ctx_train": info.n_ctx_train, "n_embd": info.n_embd, "n_params": info.n_params, "size": info.size}
    return jsonify({
        "models": [{"name": st.alias, "model": st.alias, "modified_at": "", "size": "", "digest": "", "type": "model",
                    "description": "", "tags": [""], "capabilities": ["completion"], "parameters": "",
                    "details": {"parent_model": "", "format": "gguf", "family": "", "families": [""],
                                "parameter_size": "", "quantization_level": ""}}],
        "object": "list",
        "data": [{"id": st.alias, "aliases": st.config.aliases, "tags": st.config.tag_list, "object": "model",
                  # no multimodal projector, no decision model: text in, text out
                  "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
                  "created": R.now(), "owned_by": "llamacpp", "meta": meta}],
    })


@bp.get("/props")
def props():
    st = state()  # also while asleep (it does not wake the model)
    info = st.info
    req = TaskRequest(prompt=[], sampling=st.config.sampling, n_predict=st.config.n_predict,
                      reasoning_format=st.config.reasoning_format)
    return jsonify({
        "default_generation_settings": {"params": R.generation_settings(req, info.n_ctx_slot, st.alias,
                                                                      R.reported_seed(req)),
                                        "n_ctx": info.n_ctx_slot},
        "total_slots": st.config.n_slots,
        "model_alias": st.alias,
        "model_path": st.model_path,
        "modalities": {"vision": False, "audio": False},
        "chat_template": st.template.source,
        "chat_template_caps": offload(lambda: st.template.caps.to_json()),  # trial renders, the first time
        "bos_token": info.bos_token,
        "eos_token": info.eos_token,
        "build_info": BUILD_INFO,
        "endpoint_slots": st.config.slots,
        "endpoint_props": st.config.props,
        "endpoint_metrics": st.config.metrics,
        "ui": st.config.webui, "ui_settings": st.config.ui_settings,
        "webui": st.config.webui, "webui_settings": st.config.ui_settings,  # llama-server's older names
        "is_sleeping": st.sleeping,
    })


@bp.post("/props")
def set_props():
    st = state()
    if not st.config.props:
        raise not_supported("This server does not support changing global properties. Start it with `--props`")
    json_body()
    return jsonify({"success": True})


@bp.post("/v1/systemone")
def systemone():
    """TypeSafe's System One API answers with a native decision model (openjev, laya, ...);
    pyllama serves none, and llama-server answers 501 for every other model, before it
    reads the request."""
    state()
    raise not_supported("This model is not a decision model")


@bp.post("/tokenize")
def tokenize():
    st = state()
    body = json_body()
    content = body.get("content")
    if not isinstance(content, str):
        raise bad_request("\"content\" must be a string")
    add_special = field(body, "add_special", bool, False)
    parse_special = field(body, "parse_special", bool, True)
    with_pieces = field(body, "with_pieces", bool, False)
    return jsonify({"tokens": offload(_tokens, st.llm.tokenizer, content, add_special, parse_special, with_pieces)})


def _tokens(tok, content: str, add_special: bool, parse_special: bool, with_pieces: bool) -> list:
    ids = tok.tokenize(content, add_special=add_special, parse_special=parse_special)
    if not with_pieces:
        return ids
    out = []
    for t in ids:
        raw = tok.piece(t, True)
        try:
            piece = raw.decode("utf-8")
        except UnicodeDecodeError:
            piece = list(raw)
        out.append({"id": t, "piece": piece})
    return out


@bp.post("/detokenize")
def detokenize():
    st = state()
    body = json_body()
    ids = body.get("tokens", [])
    if not isinstance(ids, list) or any(isinstance(t, bool) or not isinstance(t, int) for t in ids):
        raise bad_request("\"tokens\" must be an array of token ids")
    if any(t < 0 or t >= st.llm.n_vocab for t in ids):
        raise bad_request("\"tokens\" contains an invalid token id")
    return jsonify({"content": offload(st.llm.tokenizer.detokenize, ids)})
