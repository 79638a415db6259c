"""/v1/chat/completions and /chat/completions (OpenAI chat), /apply-template."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent

from .. import responses as R
from .. import schemas
from ..errors import error_event_body
from ..disconnect import watcher
from ..generation import collect, run
from ..offload import json_response, offload
from ..sse import event, stream_response
from .common import json_body, state

bp = Blueprint("chat", __name__)


@bp.post("/apply-template")
def apply_template():
    st = state()
    return jsonify({"prompt": offload(schemas.chat_prompt, st, json_body())})


@bp.post("/v1/chat/completions")
@bp.post("/chat/completions")
def chat_completions():
    st = state()
    body = json_body()
    gone = watcher(request.environ)
    req = offload(schemas.chat, st, body)
    reqs, stream = req.tasks, req.stream
    tok = st.llm.tokenizer
    cid, created = R.new_id("chatcmpl"), R.now()
    base = {"created": created, "id": cid, "model": st.alias, "system_fingerprint": R.FINGERPRINT}

    def logprobs(i, probs):
        return R.openai_logprobs(tok, probs, reqs[i].sampling.post_sampling_probs)

    if not stream:
        results = collect(st.engine, reqs, gone)

        def build():
            choices = []
            for i, r in enumerate(results):
                c = {"finish_reason": R.finish_reason(r), "index": i,
                     "message": {"role": "assistant", "content": r.content}}
                if r.probs:
                    c["logprobs"] = logprobs(i, r.probs)
                choices.append(c)
            total = {"completion_tokens": sum(r.n_decoded for r in results), "prompt_tokens": results[0].n_prompt,
                     "total_tokens": sum(r.n_decoded for r in results) + results[0].n_prompt,
                     "prompt_tokens_details": {"cached_tokens": results[0].n_cached}}
            return {"choices": choices, "created": created, "model": st.alias, "system_fingerprint": R.FINGERPRINT,
                    "object": "chat.completion", "usage": total, "id": cid, "timings": results[-1].timings.to_json()}
        return json_response(build)

    include_usage = req.include_usage

    def generate():
        started = set()
        last = None
        for i, ev in run(st.engine, reqs, gone):
            if isinstance(ev, ErrorEvent):
                yield event(error_event_body(ev.error))
                return
            if i not in started:
                started.add(i)
                yield event({"choices": [{"finish_reason": None, "index": i,
                                          "delta": {"role": "assistant", "content": None}}],
                             **base, "object": "chat.completion.chunk"})
            if isinstance(ev, PartialEvent):
                choice = {"finish_reason": None, "index": i, "delta": {"content": ev.content}}
                if ev.probs:
                    choice["logprobs"] = offload(logprobs, i, ev.probs)
                yield event({"choices": [choice], **base, "object": "chat.completion.chunk"})
            elif isinstance(ev, FinalEvent):
                last = ev.result
                chunk = {"choices": [{"finish_reason": R.finish_reason(ev.result), "index": i, "delta": {}}],
                         **base, "object": "chat.completion.chunk"}
                if not include_usage:
                    chunk["timings"] = ev.result.timings.to_json()
                yield event(chunk)
        if include_usage and last is not None:
            yield event({"choices": [], **base, "object": "chat.completion.chunk", "usage": R.usage(last),
                         "timings": last.timings.to_json()})
        yield event("[DONE]")

    return stream_response(generate())
