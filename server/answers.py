"""JSON shapes of llama-server's answers: probability lists, generation settings, and
the native /completion builder; the OpenAI builders (text_completion, chat.completion)
live in pyllama.openai_answers, shared with the library, and are given here the fast
candidate lists (sse.answer_events runs the stream loop, the same for all)."""

from __future__ import annotations

import json
import math
import weakref

from pyllama import openai_answers as _oa
from pyllama.engine.task import CompletionResult, PartialEvent, ProgressEvent, TaskRequest
from pyllama.openai_answers import (FINGERPRINT, chat_finish_reason, finish_reason, new_id, now,  # noqa: F401
                                    progress_json, usage)
from pyllama.sampling import TokenProbs

from .json_text import RawJSON


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


def candidates_json(tokenizer, tp: TokenProbs, post_sampling: bool) -> RawJSON:
    """The candidate list of one token as JSON text. Up to the whole vocabulary
    (49,152 entries with SmolLM2): joined from cached per-token heads instead of a
    dict per candidate, which took a quarter of a second per token."""
    key = "prob" if post_sampling else "logprob"
    heads = _HEADS.get(tokenizer)
    if heads is None:
        heads = _HEADS.setdefault(tokenizer, _Heads(tokenizer))
    items = [f'{heads[tid]}{key}":{v!r}}}'
             for tid, v in zip(tp.top_ids.tolist(), _oa._values(tp.top_probs, post_sampling))]
    return RawJSON("[" + ",".join(items) + "]")


def probs_json(tokenizer, probs: list[TokenProbs], post_sampling: bool) -> list[dict]:
    return _oa.probs_json(tokenizer, probs, post_sampling, candidates_json)


def openai_logprobs(tokenizer, probs: list[TokenProbs], post_sampling: bool) -> dict | None:
    return _oa.openai_logprobs(tokenizer, probs, post_sampling, candidates_json)


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
        # llama-server's {"bias", "token"} objects; its JSON writes a non-finite bias as null
        "logit_bias": [{"bias": b if math.isfinite(b) else None, "token": t} for t, b in s.logit_bias],
        "n_probs": s.n_probs, "min_keep": s.min_keep, "grammar": req.grammar_text, "grammar_lazy": req.grammar_lazy,
        "grammar_triggers": req.grammar_triggers, "preserved_tokens": req.preserved_tokens, "chat_format": req.chat_format,
        "reasoning_format": reasoning_format,
        "reasoning_in_content": req.stream and reasoning_format == "deepseek-legacy", "generation_prompt": "",
        "samplers": list(s.samplers), "speculative.types": "none", "timings_per_token": req.timings_per_token,
        "post_sampling_probs": s.post_sampling_probs, "backend_sampling": False,
        "lora": [{"id": i, "scale": scale} for i, scale in enumerate(req.lora)],
    }


def reported_seed(req: TaskRequest) -> int:
    """The seed as llama-server reports it: the request's, -1 as 4294967295."""
    return req.sampling.seed & 0xFFFFFFFF


def pick_fields(obj: dict, fields: list) -> dict:
    """/completion's response_fields as llama-server picks them: each named field ("a/b"
    reaches into objects) under its whole path as the key, null values kept; paths that
    lead nowhere and names that are not strings are skipped."""
    out = {}
    missing = object()
    for f in fields:
        if not isinstance(f, str):
            continue
        cur = obj
        for part in f.split("/"):
            cur = cur.get(part, missing) if isinstance(cur, dict) else missing
            if cur is missing:
                break
        if cur is not missing:
            out[f] = cur
    return out


class Answer(_oa.Answer):
    """pyllama.openai_answers.Answer with what only the server has: llama-server's native
    result shapes (the /completion answer and stream chunk, with generation_settings),
    and -v's `verbose` (the OpenAI answers then carry the native result as __verbose)."""

    def __init__(self, req, *, model: str, tokenizer, n_ctx: int, verbose: bool = False):
        super().__init__(req, model=model, tokenizer=tokenizer, n_ctx=n_ctx)
        self.verbose = verbose

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


class NativeCompletion(Answer):
    """/completion: a result object per task (a list when there are several), or a
    stream of partial results, each task's ending with its final one (no [DONE])."""

    CHUNK_TIMINGS = True  # timings_per_token (sse.py)

    def whole(self, results):
        out = [self._result(i, r, stream=False) for i, r in enumerate(results)]
        if self.req.response_fields:
            out = [pick_fields(o, self.req.response_fields) for o in out]
        return out if len(out) > 1 else out[0]

    def partial(self, i, ev):
        return self.native_partial(i, ev)

    def final(self, i, r):
        return self._result(i, r, stream=True)

    def progress(self, i, ev: ProgressEvent):
        return {"index": i, "content": "", "tokens": [], "stop": False, "id_slot": ev.id_slot,
                "tokens_predicted": 0, "tokens_evaluated": ev.total, "prompt_progress": progress_json(ev)}

    def _prompt_text(self, i: int) -> str:
        p = self.req.prompts[i]
        return p if isinstance(p, str) else self.tokenizer.detokenize(self.req.prompt_ids[i])

    def _result(self, i: int, r: CompletionResult, stream: bool) -> dict:
        return self.native_final(i, r, stream=stream, prompt=self._prompt_text(i), return_tokens=self.req.return_tokens)


def _with_verbose(obj: dict, native) -> dict:
    """obj with __verbose added before its timings (llama-server's order)."""
    timings = obj.pop("timings", None)
    obj["__verbose"] = native
    if timings is not None:
        obj["timings"] = timings
    return obj


class _ServerOpenAI(Answer):
    """Mixed in before an OpenAI builder of pyllama.openai_answers: the fast candidate
    lists, and with -v the whole object's __verbose (the native result of each task)."""

    candidates = staticmethod(candidates_json)

    def whole_object(self, choices: list, results: list[CompletionResult], *, one_prompt: bool) -> dict:
        out = super().whole_object(choices, results, one_prompt=one_prompt)
        if self.verbose:  # llama-server -v: the native result, for debugging
            natives = [self.native_final(i, r, stream=False) for i, r in enumerate(results)]
            _with_verbose(out, natives[0] if len(natives) == 1 else natives)
        return out


class TextCompletion(_ServerOpenAI, _oa.TextCompletion):
    __doc__ = _oa.TextCompletion.__doc__
    CHUNK_TIMINGS = True

    def partial(self, i, ev):
        out = super().partial(i, ev)
        return _with_verbose(out, self.native_partial(i, ev)) if self.verbose else out

    def final(self, i, r):
        out = super().final(i, r)
        return _with_verbose(out, self.native_final(i, r, stream=True)) if self.verbose else out


class ChatCompletion(_ServerOpenAI, _oa.ChatCompletion):
    __doc__ = _oa.ChatCompletion.__doc__
    CHUNK_TIMINGS = True

    def final(self, i, r):
        out = super().final(i, r)
        if self.verbose:  # llama-server -v: on the first chunk of the final ones
            _with_verbose(out[0], self.native_final(i, r, stream=True))
        return out
