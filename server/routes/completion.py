"""/completion and /completions (llama-server's native API) and /v1/completions (OpenAI)."""

from __future__ import annotations

from flask import Blueprint, request

from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent

from .. import responses as R
from .. import schemas
from ..errors import error_event_body
from ..disconnect import watcher
from ..generation import collect, run
from ..offload import json_response, offload
from ..sse import event, stream_response
from .common import json_body, state

bp = Blueprint("completion", __name__)


@bp.post("/completion")
@bp.post("/completions")
def completion():
    st = state()
    body = json_body()
    gone = watcher(request.environ)
    req = offload(schemas.completion, st, body)
    prompts, ids, reqs, stream, return_tokens = req.prompts, req.prompt_ids, req.tasks, req.stream, req.return_tokens
    tok = st.llm.tokenizer

    def prompt_text(i: int) -> str:
        p = prompts[i]
        return p if isinstance(p, str) else tok.detokenize(ids[i])

    if not stream:
        results = collect(st.engine, reqs, gone)

        def build():
            out = [R.completion_final(r, reqs[i], index=i, model=st.alias, prompt_text=prompt_text(i),
                                      n_ctx=st.engine.n_ctx_slot, tokenizer=tok, return_tokens=return_tokens,
                                      stream=False) for i, r in enumerate(results)]
            if req.response_fields:
                out = [_pick(o, req.response_fields) for o in out]
            return out if len(out) > 1 else out[0]
        return json_response(build)

    def generate():
        for i, ev in run(st.engine, reqs, gone):
            if isinstance(ev, PartialEvent):
                chunk = {"index": i, "content": ev.content, "tokens": ev.tokens, "stop": False,
                         "id_slot": ev.id_slot, "tokens_predicted": ev.n_decoded, "tokens_evaluated": ev.n_prompt}
                if ev.probs:
                    chunk["completion_probabilities"] = offload(R.probs_json, tok, ev.probs,
                                                                reqs[i].sampling.post_sampling_probs)
                yield event(chunk)
            elif isinstance(ev, FinalEvent):
                yield event(R.completion_final(ev.result, reqs[i], index=i, model=st.alias,
                                               prompt_text=prompt_text(i), n_ctx=st.engine.n_ctx_slot,
                                               tokenizer=tok, return_tokens=return_tokens, stream=True))
            elif isinstance(ev, ErrorEvent):
                yield event(error_event_body(ev.error))
                return

    return stream_response(generate())


def _pick(obj: dict, fields: list) -> dict:
    out = {}
    for f in fields:
        if not isinstance(f, str):
            continue
        cur = obj
        for part in f.split("/"):
            cur = cur.get(part) if isinstance(cur, dict) else None
        if cur is not None:
            out[f.split("/")[-1]] = cur
    return out


@bp.post("/v1/completions")
def v1_completions():
    st = state()
    body = json_body()
    gone = watcher(request.environ)
    req = offload(schemas.openai_completion, st, body)
    reqs, stream = req.tasks, req.stream
    tok = st.llm.tokenizer
    cid, created = R.new_id("cmpl"), R.now()
    include_usage = req.include_usage

    def logprobs(r, probs):
        return R.openai_logprobs(tok, probs, r.sampling.post_sampling_probs)

    if not stream:
        results = collect(st.engine, reqs, gone)

        def build():
            choices = [{"text": r.content, "index": i, "logprobs": logprobs(reqs[i], r.probs),
                        "finish_reason": R.finish_reason(r)} for i, r in enumerate(results)]
            total = {"completion_tokens": sum(r.n_decoded for r in results),
                     "prompt_tokens": sum(r.n_prompt for r in results),
                     "total_tokens": sum(r.n_decoded + r.n_prompt for r in results),
                     "prompt_tokens_details": {"cached_tokens": sum(r.n_cached for r in results)}}
            return {"choices": choices, "created": created, "model": st.alias, "system_fingerprint": R.FINGERPRINT,
                    "object": "text_completion", "usage": total, "id": cid, "timings": results[-1].timings.to_json()}
        return json_response(build)

    def generate():
        last = None
        for i, ev in run(st.engine, reqs, gone):
            base = {"created": created, "model": st.alias, "system_fingerprint": R.FINGERPRINT,
                    "object": "text_completion", "id": cid}
            if isinstance(ev, PartialEvent):
                lp = offload(logprobs, reqs[i], ev.probs) if ev.probs else None
                yield event({"choices": [{"text": ev.content, "index": i, "logprobs": lp,
                                          "finish_reason": None}], **base})
            elif isinstance(ev, FinalEvent):
                last = ev.result
                chunk = {"choices": [{"text": "", "index": i, "logprobs": None,
                                      "finish_reason": R.finish_reason(ev.result)}], **base}
                chunk["timings"] = ev.result.timings.to_json()
                yield event(chunk)
            elif isinstance(ev, ErrorEvent):
                yield event(error_event_body(ev.error))
                return
        if include_usage and last is not None:
            yield event({"choices": [], "created": created, "model": st.alias, "system_fingerprint": R.FINGERPRINT,
                         "object": "text_completion", "id": cid, "usage": R.usage(last)})
        yield event("[DONE]")

    return stream_response(generate())
