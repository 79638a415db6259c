"""/slots (slot states, from the snapshots the engine thread publishes), POST
/slots/{id}?action=save|restore|erase (slot files under --slot-save-path) and
/metrics (Prometheus text, llama-server's names)."""

from __future__ import annotations

import re
import time

from flask import Blueprint, Response, jsonify, request

from pyllama import slot_file
from pyllama.engine.slot import SlotSnapshot

from .. import answers as R
from .. import slot_files
from ..disconnect import watcher
from ..errors import bad_request, not_supported, unavailable
from ..offload import offload
from .common import json_body, state

bp = Blueprint("slots", __name__)


def slot_json(snap: SlotSnapshot, n_ctx: int, model: str) -> dict:
    out = {"id": snap.id, "n_ctx": n_ctx, "speculative": False, "is_processing": snap.is_processing}
    req = snap.request
    if req is None:
        return out
    n_remain = -1 if req.n_predict < 0 else max(0, req.n_predict - snap.n_decoded)
    n_decoded = snap.n_decoded
    if not snap.is_processing:  # an idle slot: its last task's budget is not its own (llama-server)
        n_remain, n_decoded = -1, 0
    out.update({
        "id_task": snap.id_task,
        "n_prompt_tokens": len(req.prompt),
        "n_prompt_tokens_processed": snap.n_prompt_tokens_processed,
        "n_prompt_tokens_cache": snap.n_prompt_tokens_cache,
        "params": R.generation_settings(req, n_ctx, model, R.reported_seed(req)),
        "next_token": [{"has_next_token": snap.is_processing, "has_new_line": snap.has_new_line,
                        "n_remain": n_remain, "n_decoded": n_decoded}],
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


@bp.post("/slots/<id_slot>")
def slot_action(id_slot: str):
    st = state()
    cfg = st.config
    if not cfg.slot_save_path:
        raise not_supported("This server does not support slots action. Start it with `--slot-save-path`")
    if not re.fullmatch(r"[+-]?\d{1,9}", id_slot):
        raise bad_request("Invalid slot ID")
    sid = int(id_slot)
    action = request.args.get("action", "")
    if action not in ("save", "restore", "erase"):
        raise bad_request("Invalid action")
    if not 0 <= sid < cfg.n_slots:
        raise bad_request("Invalid slot ID")
    gone = watcher(request.environ)
    if action == "erase":
        n = slot_files.run_action(st.engine, "erase", sid, gone=gone)
        return jsonify({"id_slot": sid, "n_erased": n})
    filename = json_body().get("filename")
    if not isinstance(filename, str):
        raise bad_request("\"filename\" must be a string")
    if not slot_files.valid_filename(filename):
        raise bad_request("Invalid filename")
    t0 = time.perf_counter()
    info = st.info
    if action == "save":
        saved = slot_files.run_action(st.engine, "save", sid, gone=gone)
        data = offload(slot_file.pack, saved, info.fingerprint, info.kv_layout)
        offload(slot_files.write, cfg.slot_save_path, filename, data)
        return jsonify({"id_slot": sid, "filename": filename, "n_saved": len(saved.tokens), "n_written": len(data),
                        "timings": {"save_ms": (time.perf_counter() - t0) * 1000}})
    limit = slot_file.max_size(info.kv_layout, info.n_ctx_slot)
    data = offload(slot_files.read, cfg.slot_save_path, filename, limit)
    saved = offload(slot_file.unpack, data, info.fingerprint, info.kv_layout, n_vocab=info.n_vocab,
                    n_ctx=info.n_ctx_slot)
    n = slot_files.run_action(st.engine, "restore", sid, saved, gone=gone)
    return jsonify({"id_slot": sid, "filename": filename, "n_restored": n, "n_read": len(data),
                    "timings": {"restore_ms": (time.perf_counter() - t0) * 1000}})


@bp.get("/metrics")
def metrics():
    st = state()
    if not st.config.metrics:
        raise not_supported("This server does not support metrics endpoint.")
    engine = st.engine  # None while asleep: the counters are kept, nothing runs
    busy = sum(1 for s in engine.snapshots if s.is_processing) if engine is not None else 0
    text = st.scrapes.text(st.stats, busy, engine.n_pending() if engine is not None else 0)
    # as llama-server: the start time lets a scraper tell a restart (counters back at zero) from a reset
    return Response(text, mimetype="text/plain; version=0.0.4",
                    headers={"Process-Start-Time-Unix": str(int(st.t_start))})
