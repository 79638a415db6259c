"""/slots (slot states, from the snapshots the engine thread publishes) and
/metrics (Prometheus text, llama-server's names)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from pyllama.engine.slot import SlotSnapshot

from .. import answers as R
from ..errors import not_supported, unavailable
from .common import state

bp = Blueprint("slots", __name__)


def slot_json(snap: SlotSnapshot, n_ctx: int, model: str) -> dict:
    out = {"id": snap.id, "n_ctx": n_ctx, "speculative": False, "is_processing": snap.is_processing}
    req = snap.request
    if req is None:
        return out
    n_remain = -1 if req.n_predict < 0 else max(0, req.n_predict - snap.n_decoded)
    out.update({
        "id_task": snap.id_task,
        "n_prompt_tokens": len(req.prompt),
        "n_prompt_tokens_processed": snap.n_prompt_tokens_processed,
        "n_prompt_tokens_cache": snap.n_prompt_tokens_cache,
        "params": R.generation_settings(req, n_ctx, model, R.reported_seed(req)),
        "next_token": [{"has_next_token": snap.is_processing, "has_new_line": snap.has_new_line,
                        "n_remain": n_remain, "n_decoded": snap.n_decoded}],
    })
    out["params"].pop("n_ctx", None)
    out["params"].pop("model", None)
    return out


@bp.get("/slots")
def slots():
    st = state()
    if not st.config.slots:
        raise not_supported("This server does not support slots endpoint.")
    engine = st.engine
    snaps = engine.snapshots
    if request.args.get("fail_on_no_slot") in ("1", "true") and all(s.is_processing for s in snaps):
        raise unavailable("no slot available")
    return jsonify([slot_json(s, engine.n_ctx_slot, st.alias) for s in snaps])


@bp.get("/metrics")
def metrics():
    st = state()
    if not st.config.metrics:
        raise not_supported("This server does not support metrics endpoint.")
    busy = sum(1 for s in st.engine.snapshots if s.is_processing)
    text = st.scrapes.text(st.engine.stats, busy, st.engine.n_pending())
    # as llama-server: the start time lets a scraper tell a restart (counters back at zero) from a reset
    return Response(text, mimetype="text/plain; version=0.0.4",
                    headers={"Process-Start-Time-Unix": str(int(st.t_start))})
