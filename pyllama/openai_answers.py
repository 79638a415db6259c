"""The OpenAI shapes of a generation's answer, shared by the server (/v1/completions,
/v1/chat/completions) and the library (Llama.create_completion,
Llama.create_chat_completion): one builder per API that makes its whole answer, or
the payloads of its stream, from the engine's events and results.

An answer reads its request through a few attributes: `tasks` (the TaskRequests, for
their sampling settings), `include_usage` (a stream ends with a usage chunk) and, for
a chat, `syntax` (how the output is read: reasoning, tool calls). Probability lists
are built by `candidates` (plain dicts here; the server puts in a faster JSON text)."""

from __future__ import annotations

import math
import time
import uuid
from typing import TYPE_CHECKING, Callable

import numpy as np

from ._version import BUILD_INFO
from .chat import ChatMsg, ChatStream, assign_ids, parse_output
from .sampling import TokenProbs

if TYPE_CHECKING:  # (pyllama.engine imports the Llama class, which imports this module)
    from .engine.task import CompletionResult, PartialEvent, ProgressEvent

FINGERPRINT = BUILD_INFO  # llama-server's system_fingerprint is its build_info


def _piece(tokenizer, tid: int) -> tuple[str, list[int]]:
    b = tokenizer.piece(tid, True)
    return b.decode("utf-8", "ignore"), list(b)


def _values(ps: np.ndarray, post_sampling: bool) -> list[float]:
    """The reported numbers: probabilities, or their natural logs (-1e30 for zero). The
    logs come from the C library (math.log), not numpy: numpy's vectorised log may differ
    in the last bit from one release or CPU to another, and answers should not."""
    p = np.asarray(ps, dtype=np.float64).tolist()
    if post_sampling:
        return p
    log = math.log
    return [log(v) if v > 0 else -1e30 for v in p]


def candidates_list(tokenizer, tp: TokenProbs, post_sampling: bool) -> list[dict]:
    """The candidate list of one token: {"id", "token", "bytes", "logprob" | "prob"} each."""
    key = "prob" if post_sampling else "logprob"
    out = []
    for tid, v in zip(tp.top_ids.tolist(), _values(tp.top_probs, post_sampling)):
        text, raw = _piece(tokenizer, tid)
        out.append({"id": tid, "token": text, "bytes": raw, key: v})
    return out


Candidates = Callable[[object, TokenProbs, bool], object]


def probs_json(tokenizer, probs: list[TokenProbs], post_sampling: bool,
               candidates: Candidates = candidates_list) -> list[dict]:
    key, top_key = ("prob", "top_probs") if post_sampling else ("logprob", "top_logprobs")
    out = []
    for tp in probs:
        text, raw = _piece(tokenizer, tp.token)
        value = _values(np.array([tp.prob]), post_sampling)[0]
        out.append({"id": tp.token, "token": text, "bytes": raw, key: value,
                    top_key: candidates(tokenizer, tp, post_sampling)})
    return out


def openai_logprobs(tokenizer, probs: list[TokenProbs], post_sampling: bool,
                    candidates: Candidates = candidates_list) -> dict | None:
    """OpenAI's `logprobs` object for generated tokens, or null when none were asked."""
    return {"content": probs_json(tokenizer, probs, post_sampling, candidates)} if probs else None


def finish_reason(r: CompletionResult) -> str:
    return "stop" if r.stop_type in ("eos", "word") else "length"


def usage(results: list[CompletionResult], *, one_prompt: bool = False) -> dict:
    """OpenAI's usage totals: the completion tokens of every result; the prompt (and
    cached) tokens of every result, or of the first alone when all share one prompt
    (the choices of a chat)."""
    prompted = results[:1] if one_prompt else results
    completion = sum(r.n_decoded for r in results)
    prompt = sum(r.n_prompt for r in prompted)
    return {"completion_tokens": completion, "prompt_tokens": prompt, "total_tokens": completion + prompt,
            "prompt_tokens_details": {"cached_tokens": sum(r.n_cached for r in prompted)}}


def progress_json(ev: ProgressEvent) -> dict:
    """llama-server's `prompt_progress` object (a request's return_progress)."""
    return {"total": ev.total, "cache": ev.cache, "processed": ev.processed, "time_ms": ev.time_ms}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:32]}"


def now() -> int:
    return int(time.time())


class Answer:
    """How one API answers a generation request (schemas.CompletionRequest or
    ChatRequest): `whole(results)` at once, or as a stream: `opening(i)` before the
    first event of task i, `partial` per PartialEvent, `final` per FinalEvent, and
    `closing(last result)` once every task ended (payloads: dicts, or text such as
    "[DONE]"; `partial` and `final` give one payload, or a list of any number), and
    `progress` per ProgressEvent (prompt processing, when the request asked for it). An
    error ends every API's stream alike (sse.answer_events)."""

    candidates: Candidates = staticmethod(candidates_list)  # how a token's candidate list is written

    def __init__(self, req, *, model: str, tokenizer, n_ctx: int):
        self.req, self.model, self.tokenizer, self.n_ctx = req, model, tokenizer, n_ctx

    def whole(self, results: list[CompletionResult]):
        raise NotImplementedError

    def opening(self, i: int) -> list:
        return []

    def partial(self, i: int, ev: PartialEvent) -> dict | list:
        raise NotImplementedError

    def final(self, i: int, r: CompletionResult) -> dict | list:
        raise NotImplementedError

    def closing(self, last: CompletionResult | None) -> list:
        return []

    def progress(self, i: int, ev: ProgressEvent) -> dict | list:
        """A streamed prompt-processing progress report (a request's return_progress)."""
        return []

    def post_sampling(self, i: int) -> bool:
        return self.req.tasks[i].sampling.post_sampling_probs


class OpenAIAnswer(Answer):
    """What OpenAI's answers share: one id and creation time per request, the envelope
    of every object and chunk, logprobs, usage, and the end of a stream: a usage chunk
    (with stream_options.include_usage), then [DONE]."""

    ID_PREFIX = OBJECT = CHUNK_OBJECT = ""

    def __init__(self, req, **kw):
        super().__init__(req, **kw)
        self.id, self.created = new_id(self.ID_PREFIX), now()

    def envelope(self, choices: list, obj: str, **extra) -> dict:
        return {"choices": choices, "created": self.created, "id": self.id, "model": self.model,
                "system_fingerprint": FINGERPRINT, "object": obj, **extra}

    def chunk(self, choice: dict, **extra) -> dict:
        return self.envelope([choice], self.CHUNK_OBJECT, **extra)

    def whole_object(self, choices: list, results: list[CompletionResult], *, one_prompt: bool) -> dict:
        return self.envelope(choices, self.OBJECT, usage=usage(results, one_prompt=one_prompt),
                             timings=results[-1].timings.to_json())

    def progress(self, i, ev):
        return self.progress_chunk(i, ev)

    def progress_chunk(self, i: int, ev: ProgressEvent) -> dict:
        """A chunk with task i's empty choice and llama-server's `prompt_progress`."""
        return self.chunk(self.empty_choice(i), prompt_progress=progress_json(ev))

    def empty_choice(self, i: int) -> dict:
        raise NotImplementedError

    def logprobs(self, i: int, probs) -> dict | None:
        return openai_logprobs(self.tokenizer, probs, self.post_sampling(i), self.candidates)

    def closing(self, last):
        if self.req.include_usage and last is not None:
            return [self.usage_chunk(last), "[DONE]"]
        return ["[DONE]"]

    def usage_chunk(self, last: CompletionResult) -> dict:
        return self.envelope([], self.CHUNK_OBJECT, usage=usage([last]))


class TextCompletion(OpenAIAnswer):
    """/v1/completions: text_completion, or chunks of text, each task's ending with a
    finish chunk that carries its timings."""

    ID_PREFIX, OBJECT, CHUNK_OBJECT = "cmpl", "text_completion", "text_completion"

    def whole(self, results):
        choices = [_text_choice(i, r.content, self.logprobs(i, r.probs), finish_reason(r))
                   for i, r in enumerate(results)]
        return self.whole_object(choices, results, one_prompt=False)

    def partial(self, i, ev):
        return self.chunk(_text_choice(i, ev.content, self.logprobs(i, ev.probs), None))

    def final(self, i, r):
        return self.chunk(_text_choice(i, "", None, finish_reason(r)), timings=r.timings.to_json())

    def empty_choice(self, i):
        return _text_choice(i, "", None, None)


def _text_choice(i: int, text: str, logprobs: dict | None, finish: str | None) -> dict:
    return {"text": text, "index": i, "logprobs": logprobs, "finish_reason": finish}


class ChatCompletion(OpenAIAnswer):
    """/v1/chat/completions: chat.completion, or chunks: per choice a role chunk,
    delta chunks and a finish chunk. The timings go on the stream's last object:
    the usage chunk when there is one, else each finish chunk.

    The output is read with the request's chat syntax (reasoning, tool calls): whole,
    into the message; streamed, each partial event's text so far gives the deltas
    since the last one (pyllama.chat.ChatStream: text that may still become a marker
    is held back, a tool call comes as its index, id and name, then argument
    increments), one chunk per delta; the probabilities of events that gave no delta
    go with the next one. finish_reason is "tool_calls" when a generation that ended
    by itself made calls (a cut one stays "length", as in llama-server)."""

    ID_PREFIX, OBJECT, CHUNK_OBJECT = "chatcmpl", "chat.completion", "chat.completion.chunk"

    def __init__(self, req, **kw):
        super().__init__(req, **kw)
        self.streams: dict[int, ChatStream] = {}
        self.texts: dict[int, str] = {}
        self.held_probs: dict[int, list] = {}

    def whole(self, results):
        choices = []
        for i, r in enumerate(results):
            msg = assign_ids(parse_output(r.content, self.req.syntax), self.req.syntax)
            c = {"finish_reason": chat_finish_reason(r, msg), "index": i, "message": msg.to_openai()}
            if r.probs:
                c["logprobs"] = self.logprobs(i, r.probs)
            choices.append(c)
        return self.whole_object(choices, results, one_prompt=True)

    def opening(self, i):
        return [self.chunk(self.empty_choice(i))]

    def empty_choice(self, i):
        return {"finish_reason": None, "index": i, "delta": {"role": "assistant", "content": None}}

    def _stream(self, i: int) -> ChatStream:
        st = self.streams.get(i)
        if st is None:
            st = self.streams[i] = ChatStream(self.req.syntax)
        return st

    def partial(self, i, ev):
        text = self.texts[i] = self.texts.get(i, "") + ev.content
        return self._delta_chunks(i, self._stream(i).update(text), ev.probs)

    def _delta_chunks(self, i: int, deltas: list[dict], probs) -> list[dict]:
        probs = self.held_probs.pop(i, []) + list(probs or [])
        if not deltas:
            if probs:
                self.held_probs[i] = probs
            return []
        out = []
        for k, delta in enumerate(deltas):
            choice = {"finish_reason": None, "index": i, "delta": delta}
            if k == 0 and probs:
                choice["logprobs"] = self.logprobs(i, probs)
            out.append(self.chunk(choice))
        return out

    def final(self, i, r):
        msg, deltas = self._stream(i).finish(r.content)
        out = self._delta_chunks(i, deltas, [])
        held = self.held_probs.pop(i, [])
        choice = {"finish_reason": chat_finish_reason(r, msg), "index": i, "delta": {}}
        if held:
            choice["logprobs"] = self.logprobs(i, held)
        chunk = self.chunk(choice)
        if not self.req.include_usage:
            chunk["timings"] = r.timings.to_json()
        return out + [chunk]

    def usage_chunk(self, last):
        return {**super().usage_chunk(last), "timings": last.timings.to_json()}


def chat_finish_reason(r: CompletionResult, msg: ChatMsg) -> str:
    reason = finish_reason(r)
    return "tool_calls" if reason == "stop" and msg.tool_calls else reason
