"""JSON shapes of llama-server's answers: probability lists, generation settings,
usage totals, and one builder per generation API (native /completion, OpenAI
text_completion and chat.completion) that makes its whole answer or the events of
its stream (sse.answer_events runs the stream loop, the same for all)."""

from __future__ import annotations

import json
import math
import time
import uuid
import weakref

import numpy as np

from pyllama.chat import ChatMsg, ChatStream, assign_ids, parse_output
from pyllama.engine.task import CompletionResult, PartialEvent, ProgressEvent, TaskRequest
from pyllama.sampling import TokenProbs

from .json_text import RawJSON

FINGERPRINT = "b0-pyllama"


def _piece(tokenizer, tid: int) -> tuple[str, list[int]]:
    b = tokenizer.piece(tid, True)
    return b.decode("utf-8", "ignore"), list(b)


class _Heads:
    """`{"id":…,"token":…,"bytes":[…],"` of each token, made on first use from the
    vocabulary's pieces (read from the tokenizer at once: a piece at a time took
    0.6 s over SmolLM2's 49,152 tokens), kept per tokenizer."""

    def __init__(self, tokenizer):
        self.pieces = tokenizer.all_pieces(special=True)
        self.made: dict[int, str] = {}

    def __getitem__(self, tid: int) -> str:
        h = self.made.get(tid)
        if h is None:
            raw = self.pieces[tid]
            h = self.made[tid] = '{"id":%d,"token":%s,"bytes":%s,"' % (
                tid, json.dumps(raw.decode("utf-8", "ignore"), ensure_ascii=False),
                json.dumps(list(raw), separators=(",", ":")))
        return h


_HEADS: "weakref.WeakKeyDictionary[object, _Heads]" = weakref.WeakKeyDictionary()


def _values(ps: np.ndarray, post_sampling: bool) -> list[float]:
    """The reported numbers: probabilities, or their natural logs (-1e30 for zero)."""
    p = np.asarray(ps, dtype=np.float64)
    if post_sampling:
        return p.tolist()
    with np.errstate(divide="ignore"):
        return np.where(p > 0, np.log(np.where(p > 0, p, 1.0)), -1e30).tolist()


def candidates_json(tokenizer, tp: TokenProbs, post_sampling: bool) -> RawJSON:
    """The candidate list of one token as JSON text. Up to the whole vocabulary
    (49,152 entries with SmolLM2): joined from cached per-token heads instead of a
    dict per candidate, which took a quarter of a second per token."""
    key = "prob" if post_sampling else "logprob"
    heads = _HEADS.get(tokenizer)
    if heads is None:
        heads = _HEADS.setdefault(tokenizer, _Heads(tokenizer))
    items = [f'{heads[tid]}{key}":{v!r}}}'
             for tid, v in zip(tp.top_ids.tolist(), _values(tp.top_probs, post_sampling))]
    return RawJSON("[" + ",".join(items) + "]")


def probs_json(tokenizer, probs: list[TokenProbs], post_sampling: bool) -> list[dict]:
    key, top_key = ("prob", "top_probs") if post_sampling else ("logprob", "top_logprobs")
    out = []
    for tp in probs:
        text, raw = _piece(tokenizer, tp.token)
        value = _values(np.array([tp.prob]), post_sampling)[0]
        out.append({"id": tp.token, "token": text, "bytes": raw, key: value,
                    top_key: candidates_json(tokenizer, tp, post_sampling)})
    return out


def openai_logprobs(tokenizer, probs: list[TokenProbs], post_sampling: bool) -> dict | None:
    """OpenAI's `logprobs` object for generated tokens, or null when none were asked."""
    return {"content": probs_json(tokenizer, probs, post_sampling)} if probs else None


def generation_settings(req: TaskRequest, n_ctx: int, model: str, seed: int) -> dict:
    """llama-server's echo of a task's parameters (`chat_format` and `reasoning_format`:
    how a chat's output is read; deepseek-legacy keeps reasoning in a stream's content)."""
    s = req.sampling
    reasoning_format = req.reasoning_format
    return {
        "n_ctx": n_ctx, "model": model,
        "seed": seed, "temperature": s.temperature, "dynatemp_range": s.dynatemp_range,
        "dynatemp_exponent": s.dynatemp_exponent, "top_k": s.top_k, "top_p": s.top_p, "min_p": s.min_p,
        "top_n_sigma": s.top_n_sigma, "xtc_probability": s.xtc_probability, "xtc_threshold": s.xtc_threshold,
        "typical_p": s.typical_p, "repeat_last_n": s.repeat_last_n, "repeat_penalty": s.repeat_penalty,
        "presence_penalty": s.presence_penalty, "frequency_penalty": s.frequency_penalty,
        "dry_multiplier": s.dry_multiplier, "dry_base": s.dry_base, "dry_allowed_length": s.dry_allowed_length,
        "dry_penalty_last_n": s.dry_penalty_last_n, "dry_sequence_breakers": list(s.dry_sequence_breakers),
        "mirostat": s.mirostat, "mirostat_tau": s.mirostat_tau, "mirostat_eta": s.mirostat_eta,
        "stop": list(req.stop), "max_tokens": req.n_predict, "n_predict": req.n_predict, "n_keep": req.n_keep,
        "n_discard": req.n_discard, "ignore_eos": s.ignore_eos, "stream": req.stream,
        "logit_bias": [[t, b if math.isfinite(b) else False] for t, b in s.logit_bias],
        "n_probs": s.n_probs, "min_keep": s.min_keep, "grammar": req.grammar_text, "grammar_lazy": req.grammar_lazy,
        "grammar_triggers": req.grammar_triggers, "preserved_tokens": req.preserved_tokens, "chat_format": req.chat_format,
        "reasoning_format": reasoning_format,
        "reasoning_in_content": req.stream and reasoning_format == "deepseek-legacy", "generation_prompt": "",
        "samplers": list(s.samplers), "speculative.types": "none", "timings_per_token": False,
        "post_sampling_probs": s.post_sampling_probs, "backend_sampling": False, "lora": [],
    }


def reported_seed(req: TaskRequest) -> int:
    """The seed as llama-server reports it: the request's, -1 as 4294967295."""
    return req.sampling.seed & 0xFFFFFFFF


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


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:32]}"


def now() -> int:
    return int(time.time())


def pick_fields(obj: dict, fields: list) -> dict:
    """/completion's response_fields: each named field ("a/b" reaches into objects),
    under its last name; missing ones and names that are not strings are skipped."""
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


class Answer:
    """How one API answers a generation request (schemas.CompletionRequest or
    ChatRequest): `whole(results)` at once, or as a stream: `opening(i)` before the
    first event of task i, `partial` per PartialEvent, `final` per FinalEvent, and
    `closing(last result)` once every task ended (payloads: dicts, or text such as
    "[DONE]"; `partial` and `final` give one payload, or a list of any number). An
    error ends every API's stream alike (sse.answer_events)."""

    def __init__(self, req, *, model: str, tokenizer, n_ctx: int, verbose: bool = False):
        self.req, self.model, self.tokenizer, self.n_ctx = req, model, tokenizer, n_ctx
        self.verbose = verbose  # llama-server's -v: OpenAI answers carry the native result as __verbose

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

    def prompt_text(self, i: int) -> str:
        """The prompt as llama-server echoes it: its tokens as text, special tokens shown."""
        return self.tokenizer.detokenize(self.req.tasks[i].prompt, unparse_special=True)

    def native_partial(self, i: int, ev: PartialEvent) -> dict:
        """llama-server's native partial result (the /completion stream chunk)."""
        chunk = {"index": i, "content": ev.content, "tokens": ev.tokens, "stop": False, "id_slot": ev.id_slot,
                 "tokens_predicted": ev.n_decoded, "tokens_evaluated": ev.n_prompt}
        if ev.probs:
            chunk["completion_probabilities"] = probs_json(self.tokenizer, ev.probs, self.post_sampling(i))
        return chunk

    def native_final(self, i: int, r: CompletionResult, *, stream: bool, prompt: str | None = None,
                     return_tokens: bool = False) -> dict:
        """llama-server's native final result (the /completion answer, and -v's __verbose)."""
        task = self.req.tasks[i]
        res = {
            "index": i,
            "content": "" if stream else r.content,
            "tokens": [] if stream or not return_tokens else r.tokens,
            "id_slot": r.id_slot,
            "stop": True,
            "model": self.model,
            "tokens_predicted": r.n_decoded,
            "tokens_evaluated": r.n_prompt,
            "generation_settings": generation_settings(task, self.n_ctx, self.model, reported_seed(task)),
            "prompt": self.prompt_text(i) if prompt is None else prompt,
            "has_new_line": r.has_new_line,
            "truncated": r.truncated,
            "stop_type": r.stop_type,
            "stopping_word": r.stopping_word,
            "tokens_cached": r.n_cached,
            "timings": r.timings.to_json(),
        }
        if not stream and r.probs:
            res["completion_probabilities"] = probs_json(self.tokenizer, r.probs, self.post_sampling(i))
        return res


def progress_json(ev: ProgressEvent) -> dict:
    return {"total": ev.total, "cache": ev.cache, "processed": ev.processed, "time_ms": ev.time_ms}

class NativeCompletion(Answer):
    """/completion: a result object per task (a list when there are several), or a
    stream of partial results, each task's ending with its final one (no [DONE])."""

    def whole(self, results):
        out = [self._result(i, r, stream=False) for i, r in enumerate(results)]
        if self.req.response_fields:
            out = [pick_fields(o, self.req.response_fields) for o in out]
        return out if len(out) > 1 else out[0]

    def partial(self, i, ev):
        return self.native_partial(i, ev)

    def final(self, i, r):
        return self._result(i, r, stream=True)

    def progress(self, i, ev):
        return {"index": i, "content": "", "tokens": [], "stop": False, "id_slot": ev.id_slot,
                "tokens_predicted": 0, "tokens_evaluated": ev.total, "prompt_progress": progress_json(ev)}

    def _prompt_text(self, i: int) -> str:
        p = self.req.prompts[i]
        return p if isinstance(p, str) else self.tokenizer.detokenize(self.req.prompt_ids[i])

    def _result(self, i: int, r: CompletionResult, stream: bool) -> dict:
        return self.native_final(i, r, stream=stream, prompt=self._prompt_text(i), return_tokens=self.req.return_tokens)


class _OpenAIAnswer(Answer):
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
        extra = {}
        if self.verbose:  # llama-server -v: the native result, for debugging
            natives = [self.native_final(i, r, stream=False) for i, r in enumerate(results)]
            extra["__verbose"] = natives[0] if len(natives) == 1 else natives
        return self.envelope(choices, self.OBJECT, usage=usage(results, one_prompt=one_prompt), **extra,
                             timings=results[-1].timings.to_json())

    def progress(self, i, ev):
        return self.progress_chunk(i, ev)

    def progress_chunk(self, i, ev):
        return self.chunk(self.empty_choice(i), prompt_progress=progress_json(ev))

    def empty_choice(self, i: int) -> dict:
        raise NotImplementedError

    def logprobs(self, i: int, probs) -> dict | None:
        return openai_logprobs(self.tokenizer, probs, self.post_sampling(i))

    def closing(self, last):
        if self.req.include_usage and last is not None:
            return [self.usage_chunk(last), "[DONE]"]
        return ["[DONE]"]

    def usage_chunk(self, last: CompletionResult) -> dict:
        return self.envelope([], self.CHUNK_OBJECT, usage=usage([last]))


class TextCompletion(_OpenAIAnswer):
    """/v1/completions: text_completion, or chunks of text, each task's ending with a
    finish chunk that carries its timings."""

    ID_PREFIX, OBJECT, CHUNK_OBJECT = "cmpl", "text_completion", "text_completion"

    def whole(self, results):
        choices = [_text_choice(i, r.content, self.logprobs(i, r.probs), finish_reason(r))
                   for i, r in enumerate(results)]
        return self.whole_object(choices, results, one_prompt=False)

    def partial(self, i, ev):
        extra = {"__verbose": self.native_partial(i, ev)} if self.verbose else {}
        return self.chunk(_text_choice(i, ev.content, self.logprobs(i, ev.probs), None), **extra)

    def final(self, i, r):
        extra = {"__verbose": self.native_final(i, r, stream=True)} if self.verbose else {}
        return self.chunk(_text_choice(i, "", None, finish_reason(r)), **extra, timings=r.timings.to_json())

    def empty_choice(self, i):
        return _text_choice(i, "", None, None)


def _text_choice(i: int, text: str, logprobs: dict | None, finish: str | None) -> dict:
    return {"text": text, "index": i, "logprobs": logprobs, "finish_reason": finish}


class ChatCompletion(_OpenAIAnswer):
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
        out.append(chunk)
        if self.verbose:  # llama-server -v: on the first chunk of the final ones
            out[0]["__verbose"] = self.native_final(i, r, stream=True)
        return out

    def usage_chunk(self, last):
        return {**super().usage_chunk(last), "timings": last.timings.to_json()}


def chat_finish_reason(r: CompletionResult, msg: ChatMsg) -> str:
    reason = finish_reason(r)
    return "tool_calls" if reason == "stop" and msg.tool_calls else reason
