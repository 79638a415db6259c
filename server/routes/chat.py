"""/v1/chat/completions and /chat/completions (OpenAI chat), /apply-template."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from pyllama.chat import ChatTemplateError
from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent

from .. import responses as R
from ..errors import ApiError, bad_request, error_event_body
from ..constraints import parse_constraint
from ..disconnect import watcher
from ..generation import collect, run
from ..params import field, n_choices, task_request
from ..offload import json_response, offload
from ..sse import event, stream_response
from .common import json_body, state

bp = Blueprint("chat", __name__)

ROLES = {"system", "user", "assistant", "tool", "developer", "function"}


def _messages(body: dict) -> list[dict]:
    msgs = body.get("messages")
    if not isinstance(msgs, list) or not msgs:
        raise bad_request("'messages' must be a non-empty array of message objects")
    out = []
    for m in msgs:
        if not isinstance(m, dict):
            raise bad_request("each message must be an object")
        role = m.get("role")
        if not isinstance(role, str) or role not in ROLES:
            raise bad_request(f"invalid message role: {role!r}")
        content = m.get("content")
        if isinstance(content, list):  # content parts: keep the text ones
            texts = []
            for part in content:
                if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                    raise bad_request("only text content parts are supported")
                texts.append(part["text"])
            content = "".join(texts)
        elif content is None:
            if role != "assistant" or not m.get("tool_calls"):
                raise bad_request("message content is required")
            content = ""
        elif not isinstance(content, str):
            raise bad_request("message content must be a string or an array of content parts")
        out.append({**m, "content": content})
    return out


def render(st, body: dict) -> str:
    msgs = _messages(body)
    add_gen = field(body, "add_generation_prompt", bool, True)
    cont = field(body, "continue_final_message", bool, False)
    if add_gen and cont and "add_generation_prompt" in body:
        raise bad_request("Cannot set both add_generation_prompt and continue_final_message")
    kwargs = body.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise bad_request("Field 'chat_template_kwargs': expected an object")
    try:
        if cont:
            return _continue_final(st, msgs, kwargs)
        return st.template.render(msgs, add_generation_prompt=add_gen, **kwargs)
    except ChatTemplateError as e:
        raise ApiError(400, str(e)) from None


def _continue_final(st, msgs: list[dict], kwargs: dict) -> str:
    """The prompt ends inside the last (assistant) message, so the model continues it:
    render with a marker in its place and cut the template's closing after it."""
    if msgs[-1]["role"] != "assistant":
        raise bad_request("continue_final_message needs the last message to be from the assistant")
    marker = "\u2063pyllama-continue\u2063"
    rendered = st.template.render(msgs[:-1] + [{**msgs[-1], "content": marker}], add_generation_prompt=False,
                                  **kwargs)
    at = rendered.rfind(marker)
    if at < 0:
        raise bad_request("the chat template drops the final message; it cannot be continued")
    return rendered[:at] + msgs[-1]["content"]


@bp.post("/apply-template")
def apply_template():
    st = state()
    return jsonify({"prompt": offload(render, st, json_body())})


def _chat_requests(st, body: dict, stream: bool, n: int) -> list:
    """The chat's tasks: template rendered, prompt tokenized, constraint compiled (on a worker thread)."""
    prompt = render(st, body)
    ids = st.llm.tokenizer.tokenize(prompt, add_special=True, parse_special=True)
    lp = body.get("logprobs")
    if lp is not None and not isinstance(lp, bool):
        raise bad_request("Field 'logprobs': expected a boolean")
    top = body.get("top_logprobs")
    if top is not None and not lp:
        raise bad_request("top_logprobs requires logprobs to be set to true")
    req_body = dict(body)
    req_body.pop("logprobs", None)
    if lp:  # a number is clamped to the vocabulary by the sampling reader; anything else is a 400 there
        req_body["n_probs"] = 1 if top is None else top
    if body.get("max_completion_tokens") is not None and body.get("max_tokens") is None:
        req_body["max_tokens"] = body["max_completion_tokens"]
    constraint = parse_constraint(st, req_body, openai=True)
    return [task_request(st, req_body, ids, stream=stream, constraint=constraint) for _ in range(n)]


@bp.post("/v1/chat/completions")
@bp.post("/chat/completions")
def chat_completions():
    st = state()
    body = json_body()
    gone = watcher(request.environ)
    stream = field(body, "stream", bool, False)
    n = n_choices(st, body, ("n",))
    reqs = offload(_chat_requests, st, body, stream, n)
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

    include_usage = isinstance(body.get("stream_options"), dict) and body["stream_options"].get("include_usage")

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
