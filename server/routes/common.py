"""Helpers every route uses: the server state, the JSON body, and the answer of a
generation request (parse -> run -> build)."""

from __future__ import annotations

import json
import math
import re

from flask import current_app, request

from ..disconnect import watcher
from ..errors import api_error, bad_request, not_supported, unavailable
from ..generation import collect, run
from ..offload import json_response, offload
from ..params import field
from ..sse import answer_events, stream_response


def state():
    st = current_app.config["PYLLAMA_STATE"]
    if st.engine is not None and st.engine.failure is not None:
        raise api_error(st.engine.stopped_error())
    if not st.ready:
        if st.load_error:
            raise unavailable(f"Loading model failed: {st.load_error}")
        raise unavailable("Loading model")
    return st


def json_body() -> dict:
    """The body as a JSON object. As llama-server's parser: NaN and Infinity are not
    JSON, a number too large for a double is an error, and so is a string holding
    half of a surrogate pair (it is no text at all)."""
    body = json_value()
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body


def json_value():
    """The body as any JSON value (an empty body: {}), parsed as json_body says."""
    data = request.get_data(cache=True)
    try:
        body = json.loads(data or b"{}", parse_constant=_not_json, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"JSON parse error: {e}") from None
    except RecursionError:
        raise bad_request("JSON parse error: the body is nested too deeply") from None
    if _SURROGATE_ESCAPE.search(data or b""):
        bad = _lone_surrogate(body)
        if bad is not None:
            raise bad_request(f"JSON parse error: a string holds a lone surrogate \\u{ord(bad):04x}")
    return body


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _not_json(name: str):
    raise ValueError(f"{name} is not a JSON value")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise ValueError(f"number out of range: {text[:40]}")
    return v


def _lone_surrogate(value) -> str | None:
    """The first lone surrogate in any string (key or value) of a parsed body, else None.
    json decodes a proper pair into one character, so any surrogate left is alone."""
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            m = _SURROGATE_CHAR.search(v)
            if m:
                return m.group()
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return None


_SURROGATE_CHAR = re.compile("[\ud800-\udfff]")


def generate(parse, answer_type):
    """A generation route: the body parsed into a typed request by `parse` (a schemas
    function; on a worker thread: it renders, tokenizes and compiles grammars), its
    tasks run on the engine, and `answer_type` (a responses.Answer) makes the answer:
    the whole JSON object (built on a worker thread) or the SSE stream. A client that
    goes away cancels the tasks."""
    st = state()
    if st.config.embedding:
        raise not_supported("This server does not support completions. Start it without `--embeddings`")
    body = json_body()
    req = offload(parse, st, body)
    if st.config.log_prompts_dir:
        offload(log_prompts, st, req.tasks)
    verbose = field(body, "verbose", bool, st.config.verbose_answers)  # the request's, default -v's
    answer = answer_type(req, model=st.alias, tokenizer=st.llm.tokenizer, n_ctx=st.engine.n_ctx_slot,
                         verbose=verbose)
    gone = watcher(request.environ)
    if not req.stream:
        results = collect(st.engine, req.tasks, gone)
        return json_response(lambda: answer.whole(results))
    return stream_response(answer_events(answer, run(st.engine, req.tasks, gone, ping_interval(st, body))))


def ping_interval(st, body: dict) -> float | None:
    """Seconds of silence before an SSE ping: the request's sse_ping_interval, else
    --sse-ping-interval; -1 (or 0): none."""
    v = body.get("sse_ping_interval")
    if v is None:
        v = st.config.sse_ping_interval
    elif isinstance(v, bool) or not isinstance(v, (int, float)):
        raise bad_request("Field 'sse_ping_interval': expected a number")
    return float(v) if v > 0 else None


def log_prompts(st, tasks) -> None:
    """--log-prompts-dir: each task's prompt, as text with special tokens shown, in a file of its own
    (the directory is made when missing; a failure to write is logged, never the request's)."""
    import logging
    import os
    import time

    folder = st.config.log_prompts_dir
    try:
        os.makedirs(folder, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 1_000_000_000:09d}"
        for i, task in enumerate(tasks):
            text = st.llm.tokenizer.detokenize(task.prompt, unparse_special=True)
            with open(os.path.join(folder, f"prompt-{stamp}-{i}.txt"), "w", encoding="utf-8") as f:
                f.write(text)
    except OSError as e:
        logging.getLogger("pyllama.server").warning("--log-prompts-dir: cannot write a prompt: %s", e)
