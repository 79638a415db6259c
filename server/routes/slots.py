"""/slots (slot states) and /metrics (Prometheus text, llama-server's names)."""

from __future__ import annotations


from flask import Blueprint, Response, jsonify, request

from pyllama.engine.slot import IDLE

from .. import responses as R
from ..errors import ApiError
from .common import state

bp = Blueprint("slots", __name__)


def slot_json(slot, n_ctx: int, model: str) -> dict:
    out = {"id": slot.id, "n_ctx": n_ctx, "speculative": False, "is_processing": slot.state != IDLE}
    task = slot.last_task
    if task is None:
        return out
    req = task.request
    n_decoded = getattr(slot, "n_decoded", 0)
    n_remain = -1 if req.n_predict < 0 else max(0, req.n_predict - n_decoded)
    out.update({
        "id_task": task.id,
        "n_prompt_tokens": len(req.prompt),
        "n_prompt_tokens_processed": getattr(slot, "timings", None).prompt_n if hasattr(slot, "timings") else 0,
        "n_prompt_tokens_cache": getattr(slot, "n_cached", 0),
        "params": R.generation_settings(req, n_ctx, model, R.reported_seed(req)),
        "next_token": [{"has_next_token": slot.state != IDLE, "has_new_line": "\n" in getattr(slot, "text", ""),
                        "n_remain": n_remain, "n_decoded": n_decoded}],
    })
    out["params"].pop("n_ctx", None)
    out["params"].pop("model", None)
    return out


@bp.get("/slots")
def slots():
    st = state()
    if not st.config.slots:
        raise ApiError(501, "This server does not support slots endpoint.", "not_supported_error")
    engine = st.engine
    if request.args.get("fail_on_no_slot") in ("1", "true") and all(s.state != IDLE for s in engine.slots):
        raise ApiError(503, "no slot available", "unavailable_error")
    return jsonify([slot_json(s, engine.n_ctx_slot, st.alias) for s in engine.slots])


_last_scrape: dict = {}


@bp.get("/metrics")
def metrics():
    st = state()
    if not st.config.metrics:
        raise ApiError(501, "This server does not support metrics endpoint.", "not_supported_error")
    s = st.engine.stats
    prev = _last_scrape.get(id(st), (0, 0.0, 0, 0.0, 0, 0))
    d_prompt, d_prompt_s = s.n_prompt_tokens - prev[0], s.t_prompt_s - prev[1]
    d_pred, d_pred_s = s.n_predicted - prev[2], s.t_predicted_s - prev[3]
    d_decode, d_busy = s.n_decode - prev[4], s.n_busy_slots_total - prev[5]
    _last_scrape[id(st)] = (s.n_prompt_tokens, s.t_prompt_s, s.n_predicted, s.t_predicted_s, s.n_decode,
                            s.n_busy_slots_total)
    busy = sum(1 for sl in st.engine.slots if sl.state != IDLE)
    rows = [
        ("counter", "prompt_tokens_total", "Number of prompt tokens processed.", s.n_prompt_tokens),
        ("counter", "prompt_tokens_cached_total", "Number of prompt tokens taken from the cache.",
         s.n_prompt_cached),
        ("counter", "prompt_seconds_total", "Prompt process time", s.t_prompt_s),
        ("counter", "tokens_predicted_total", "Number of generation tokens processed.", s.n_predicted),
        ("counter", "tokens_predicted_seconds_total", "Predict process time", s.t_predicted_s),
        ("counter", "n_decode_total", "Total number of llama_decode() calls", s.n_decode),
        ("counter", "n_tokens_max", "Largest observed n_tokens.", s.n_tokens_max),
        ("gauge", "prompt_tokens_seconds", "Average prompt throughput in tokens/s.",
         d_prompt / d_prompt_s if d_prompt_s > 0 else 0.0),
        ("gauge", "predicted_tokens_seconds", "Average generation throughput in tokens/s.",
         d_pred / d_pred_s if d_pred_s > 0 else 0.0),
        ("gauge", "requests_processing", "Number of requests processing.", busy),
        ("gauge", "requests_deferred", "Number of requests deferred.", st.engine.n_pending()),
        ("gauge", "n_busy_slots_per_decode", "Average number of busy slots per llama_decode() call",
         d_busy / d_decode if d_decode else 0.0),
    ]
    lines = []
    for kind, name, help_, value in rows:
        lines += [f"# HELP llamacpp:{name} {help_}", f"# TYPE llamacpp:{name} {kind}", f"llamacpp:{name} {value}"]
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
