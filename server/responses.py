"""JSON shapes of llama-server's answers: native /completion results, probability
lists, generation settings, and the OpenAI completion / chat objects."""

from __future__ import annotations

import json
import math
import time
import uuid
import weakref

import numpy as np

from pyllama.engine.task import CompletionResult, TaskRequest
from pyllama.sampling import TokenProbs

from .json_text import RawJSON

FINGERPRINT = "b0-pyllama"


def _piece(tokenizer, tid: int) -> tuple[str, list[int]]:
    b = tokenizer.piece(tid, True)
    return b.decode("utf-8", "ignore"), list(b)


_HEADS: "weakref.WeakKeyDictionary[object, dict[int, str]]" = weakref.WeakKeyDictionary()


def _head(tokenizer, tid: int, heads: dict[int, str]) -> str:
    """`{"id":…,"token":…,"bytes":[…],"` of one token, kept per tokenizer (at most
    one entry per vocabulary token)."""
    h = heads.get(tid)
    if h is None:
        text, raw = _piece(tokenizer, tid)
        h = heads[tid] = '{"id":%d,"token":%s,"bytes":%s,"' % (
            tid, json.dumps(text, ensure_ascii=False), json.dumps(raw, separators=(",", ":")))
    return h


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
        heads = _HEADS.setdefault(tokenizer, {})
    items = [f'{_head(tokenizer, tid, heads)}{key}":{v!r}}}'
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
    s = req.sampling
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
        "grammar_triggers": req.grammar_triggers, "preserved_tokens": req.preserved_tokens, "chat_format": "Content-only",
        "reasoning_format": "none", "reasoning_in_content": False, "generation_prompt": "",
        "samplers": list(s.samplers), "speculative.types": "none", "timings_per_token": False,
        "post_sampling_probs": s.post_sampling_probs, "backend_sampling": False, "lora": [],
    }


def reported_seed(req: TaskRequest) -> int:
    """The seed as llama-server reports it: the request's, -1 as 4294967295."""
    return req.sampling.seed & 0xFFFFFFFF


def completion_final(r: CompletionResult, req: TaskRequest, *, index: int, model: str, prompt_text: str,
                     n_ctx: int, tokenizer, return_tokens: bool, stream: bool) -> dict:
    res = {
        "index": index,
        "content": "" if stream else r.content,
        "tokens": [] if stream or not return_tokens else r.tokens,
        "id_slot": r.id_slot,
        "stop": True,
        "model": model,
        "tokens_predicted": r.n_decoded,
        "tokens_evaluated": r.n_prompt,
        "generation_settings": generation_settings(req, n_ctx, model, reported_seed(req)),
        "prompt": prompt_text,
        "has_new_line": r.has_new_line,
        "truncated": r.truncated,
        "stop_type": r.stop_type,
        "stopping_word": r.stopping_word,
        "tokens_cached": r.n_cached,
        "timings": r.timings.to_json(),
    }
    if not stream and r.probs:
        res["completion_probabilities"] = probs_json(tokenizer, r.probs, req.sampling.post_sampling_probs)
    return res


def finish_reason(r: CompletionResult) -> str:
    return "stop" if r.stop_type in ("eos", "word") else "length"


def usage(r: CompletionResult) -> dict:
    return {"completion_tokens": r.n_decoded, "prompt_tokens": r.n_prompt,
            "total_tokens": r.n_decoded + r.n_prompt, "prompt_tokens_details": {"cached_tokens": r.n_cached}}


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:32]}"


def now() -> int:
    return int(time.time())
