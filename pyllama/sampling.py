"""Choosing the next token: llama-server's sampler chain, run natively.

`SamplingParams` holds every sampling field of a request with llama-server's
names and defaults; `SamplingParams.from_request` reads them from a request body
with llama-server's rules (null means the default, hard limits raise
`SamplingError`, soft limits are clamped, logit_bias in all its forms).
`Sampler` builds the native chain for one sequence:

    logit_bias -> penalties; dry; top_n_sigma; top_k; typ_p; top_p; min_p; xtc;
    temperature (the order is configurable) -> seeded draw

or, with mirostat 1 or 2, temperature -> mirostat. A token filter (a grammar's
mask) can be passed to `Sampler.sample`: when it refuses the drawn token, the
chain runs again with the filter applied first.
"""

from __future__ import annotations

import collections
import dataclasses
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np

from . import _native
from .errors import InvalidRequest
from .unpatched import original

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

log = logging.getLogger(__name__)

INT32_MAX = 2**31 - 1
RANDOM_SEED = 0xFFFFFFFF  # seed -1: a fresh random seed

DEFAULT_SAMPLERS = ("penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc", "temperature")
SAMPLER_CHARS = {"e": "penalties", "d": "dry", "s": "top_n_sigma", "k": "top_k", "y": "typ_p", "p": "top_p",
                 "m": "min_p", "x": "xtc", "t": "temperature", "a": "adaptive_p"}
# adaptive_p, named anywhere in `samplers`, replaces the final draw (llama.cpp's adaptive-p)
ALL_SAMPLERS = DEFAULT_SAMPLERS + ("adaptive_p",)
DEFAULT_DRY_BREAKERS = ("\n", ":", "\"", "*")
DRY_MAX_BREAKER_BYTES = 40
DRY_MAX_TAIL_TOKENS = 20
DRY_MAX_BREAKERS = 64            # per request (llama.cpp has no bound; each costs a scan of the vocabulary)
DRY_CACHE_ENTRIES = 32           # processed breaker sets kept per tokenizer


def _sampler_aliases() -> dict[str, str]:
    names = {n: n for n in ALL_SAMPLERS}
    for n in ALL_SAMPLERS:
        if "_" in n:
            names[n.replace("_", "-")] = n
            names[n.replace("_", "")] = n
    names.update({"nucleus": "top_p", "temp": "temperature", "typ": "typ_p"})
    return names


SAMPLER_NAMES = _sampler_aliases()


class SamplingError(InvalidRequest):
    """A sampling field of a request is invalid; the message names the field (HTTP 400)."""


@dataclass
class SamplingParams:
    """Every sampling field of a llama-server request, with its defaults.

    temperature <= 0 is greedy. seed -1 (or None) draws a random seed. repeat_last_n
    and dry_penalty_last_n of -1 mean the whole context. logit_bias is a list of
    (token id, bias) pairs; -inf bans a token.
    """

    temperature: float = 0.8
    dynatemp_range: float = 0.0
    dynatemp_exponent: float = 1.0
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    typical_p: float = 1.0
    top_n_sigma: float = -1.0
    xtc_probability: float = 0.0
    xtc_threshold: float = 0.1
    min_keep: int = 0
    repeat_last_n: int = 64
    repeat_penalty: float = 1.0
    frequency_penalty: float = 0.0
    presence_penalty: float = 0.0
    dry_multiplier: float = 0.0
    dry_base: float = 1.75
    dry_allowed_length: int = 2
    dry_penalty_last_n: int = 64
    dry_sequence_breakers: tuple[str, ...] = DEFAULT_DRY_BREAKERS
    mirostat: int = 0
    mirostat_tau: float = 5.0
    mirostat_eta: float = 0.1
    adaptive_target: float = -1.0  # adaptive-p (when `samplers` names adaptive_p): negative = a plain draw
    adaptive_decay: float = 0.9
    seed: int = -1
    samplers: tuple[str, ...] = DEFAULT_SAMPLERS
    logit_bias: list[tuple[int, float]] = field(default_factory=list)
    ignore_eos: bool = False
    n_probs: int = 0
    post_sampling_probs: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0 and self.mirostat == 0

    def replace(self, **changes: Any) -> "SamplingParams":
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_request(cls, data: Mapping[str, Any], defaults: "SamplingParams | None" = None,
                     tokenizer: "Tokenizer | None" = None) -> "SamplingParams":
        """Read the sampling fields of a request body over `defaults` (llama-server's rules).

        Raises SamplingError naming the field for a wrong type or a value outside a
        hard limit. String logit_bias keys need the tokenizer; ignore_eos bans its
        end-of-generation tokens.
        """
        return _RequestReader(data, defaults or cls(), tokenizer).read()


class _RequestReader:
    # (name, kind, soft/hard, low, high): kind "i" int, "f" float
    LIMITS: tuple = (
        ("top_k", "i", "soft", 0, INT32_MAX),
        ("top_p", "f", "soft", 0.0, 1.0),
        ("min_p", "f", "soft", 0.0, 1.0),
        ("top_n_sigma", "f", None, None, None),
        ("xtc_probability", "f", "soft", 0.0, 1.0),
        ("xtc_threshold", "f", "soft", 0.0, 1.0),
        ("typical_p", "f", None, None, None),
        ("temperature", "f", "soft", 0.0, math.inf),
        ("dynatemp_range", "f", None, None, None),
        ("dynatemp_exponent", "f", None, None, None),
        ("repeat_last_n", "i", "hard", -1, INT32_MAX),
        ("repeat_penalty", "f", None, None, None),
        ("frequency_penalty", "f", None, None, None),
        ("presence_penalty", "f", None, None, None),
        ("dry_multiplier", "f", None, None, None),
        ("dry_allowed_length", "i", "hard", 0, INT32_MAX),
        ("dry_penalty_last_n", "i", "hard", -1, INT32_MAX),
        ("mirostat", "i", "soft", 0, 2),
        ("mirostat_tau", "f", None, None, None),
        ("mirostat_eta", "f", None, None, None),
        ("adaptive_target", "f", None, None, None),
        ("adaptive_decay", "f", "soft", 0.0, 0.99),
        ("min_keep", "i", "hard", 0, INT32_MAX),
    )

    def __init__(self, data: Mapping[str, Any], defaults: SamplingParams, tokenizer: "Tokenizer | None"):
        self.data = data
        self.defaults = defaults
        self.tokenizer = tokenizer
        self.changes: dict[str, Any] = {}

    def has(self, name: str) -> bool:
        return self.data.get(name) is not None

    def number(self, name: str, kind: str) -> float | int:
        v = self.data[name]
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise SamplingError(f"Field '{name}': expected a number, got {type(v).__name__}")
        if kind == "i":
            if isinstance(v, float):
                if not math.isfinite(v):
                    raise SamplingError(f"Field '{name}': expected an integer, got {v}")
                v = int(v)
            return v
        return float(v)

    def read(self) -> SamplingParams:
        for name, kind, limit, lo, hi in self.LIMITS:
            if not self.has(name):
                continue
            v = self.number(name, kind)
            if limit == "soft":
                v = max(lo, min(hi, v))
            elif limit == "hard" and not lo <= v <= hi:
                raise SamplingError(f"Field '{name}': Value must be between {lo} <= value <= {hi}, but got {v}")
            self.changes[name] = v
        if self.has("dry_base"):
            v = self.number("dry_base", "f")
            self.changes["dry_base"] = self.defaults.dry_base if v < 1.0 else v
        if self.has("seed"):
            self.changes["seed"] = self.seed()
        for name in ("ignore_eos", "post_sampling_probs"):
            if self.has(name):
                if not isinstance(self.data[name], bool):
                    raise SamplingError(f"Field '{name}': expected a boolean")
                self.changes[name] = self.data[name]
        for name in ("n_probs", "logprobs"):
            if self.has(name) and not (name == "logprobs" and self.has("n_probs")):
                if name == "logprobs" and isinstance(self.data[name], bool):
                    continue  # the chat API's boolean logprobs is handled by the route
                n_vocab = self.tokenizer.n_vocab if self.tokenizer is not None else INT32_MAX
                self.changes["n_probs"] = max(0, min(int(self.number(name, "i")), n_vocab))  # clamped, as llama.cpp
                break
        if self.has("samplers"):
            self.changes["samplers"] = parse_samplers(self.data["samplers"])
        if self.has("dry_sequence_breakers"):
            b = self.data["dry_sequence_breakers"]
            if not isinstance(b, list) or not b or not all(isinstance(s, str) for s in b):
                raise SamplingError("Field 'dry_sequence_breakers': must be a non-empty array of strings")
            if len(b) > DRY_MAX_BREAKERS:
                raise SamplingError(f"Field 'dry_sequence_breakers': at most {DRY_MAX_BREAKERS} breakers, "
                                    f"got {len(b)}")
            self.changes["dry_sequence_breakers"] = tuple(b)
        bias = list(self.defaults.logit_bias)
        if self.has("logit_bias"):
            bias = self.logit_bias(self.data["logit_bias"])
        if self.changes.get("ignore_eos", self.defaults.ignore_eos) and self.tokenizer is not None:
            bias += [(t, -math.inf) for t in sorted(self.tokenizer.eog_ids)]
        self.changes["logit_bias"] = bias
        return self.defaults.replace(**self.changes)

    def seed(self) -> int:
        v = self.number("seed", "i")
        v = int(v) & 0xFFFFFFFF
        return -1 if v == RANDOM_SEED else v

    def logit_bias(self, value: Any) -> list[tuple[int, float]]:
        n_vocab = self.tokenizer.n_vocab if self.tokenizer is not None else INT32_MAX
        out: list[tuple[int, float]] = []

        def bias_of(v: Any) -> float | None:
            if v is False:
                return -math.inf
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                return None
            return float(v)

        def add(key: Any, v: Any, key_is_text: bool) -> None:
            b = bias_of(v)
            if b is None:
                return
            if isinstance(key, int) and not isinstance(key, bool):
                if 0 <= key < n_vocab:
                    out.append((key, b))
            elif isinstance(key, str) and key_is_text:
                if self.tokenizer is None:
                    raise SamplingError("Field 'logit_bias': text keys need a tokenizer")
                out.extend((t, b) for t in self.tokenizer.tokenize(key, add_special=False, parse_special=False))

        if isinstance(value, list):
            for el in value:
                if isinstance(el, list) and len(el) == 2:
                    add(el[0], el[1], True)
        elif isinstance(value, dict):
            for k, v in value.items():
                try:
                    key: Any = int(k, 10)
                except ValueError:
                    key = k
                add(key, v, True)
        else:
            raise SamplingError("Field 'logit_bias': expected an array of [token, bias] pairs or an object")
        return out


def parse_samplers(value: Any) -> tuple[str, ...]:
    """A `samplers` field: names (aliases like "top-k", "topk", "nucleus", "temp"
    accepted, any case) or a string of llama.cpp's sampler characters. Unknown
    entries are skipped with a warning, as llama-server does."""
    if isinstance(value, str):
        out = []
        for c in value:
            if c in SAMPLER_CHARS:
                out.append(SAMPLER_CHARS[c])
            else:
                log.warning("unable to match sampler by char %r", c)
        return tuple(out)
    if isinstance(value, list):
        out = []
        for n in value:
            if not isinstance(n, str):
                raise SamplingError("Field 'samplers': expected an array of strings or a string")
            name = SAMPLER_NAMES.get(n.lower())
            if name is None:
                log.warning("unable to match sampler by name %r", n)
            else:
                out.append(name)
        return tuple(out)
    raise SamplingError("Field 'samplers': expected an array of strings or a string")


def dry_breakers(tokenizer: "Tokenizer", breakers: Sequence[str]) -> list[tuple[int, list[int]]]:
    """llama.cpp's processed DRY sequence breakers: for every token whose text holds
    a breaker, (token, []); for every token whose text ends with the start of a
    breaker, (token, the tokens of the rest of the breaker, at most 20)."""
    key = tuple(breakers)
    cache = _dry_cache(tokenizer)
    with _DRY_LOCK:
        if key in cache:
            cache.move_to_end(key)
            return cache[key]
    out: list[tuple[int, list[int]]] = []
    seen: set[tuple[int, tuple[int, ...]]] = set()
    for text in breakers:
        s = text.encode("utf-8", "surrogateescape")[:DRY_MAX_BREAKER_BYTES]
        if not s:
            continue
        tails: dict[int, tuple[int, ...]] = {}
        first = s[:1]
        for tid in _tokens_maybe_holding(tokenizer, s):
            w = _token_text(tokenizer, tid)
            if first not in w:
                continue
            if s in w:
                entry = (tid, ())
                if entry not in seen:
                    seen.add(entry)
                    out.append((tid, []))
                continue
            for j in range(1, min(len(s), len(w) + 1)):
                if w.endswith(s[:j]):
                    if j not in tails:
                        rest = s[j:].decode("utf-8", "surrogateescape")
                        tails[j] = tuple(tokenizer.tokenize(rest, add_special=False)[:DRY_MAX_TAIL_TOKENS])
                    entry = (tid, tails[j])
                    if entry not in seen:
                        seen.add(entry)
                        out.append((tid, list(tails[j])))
    with _DRY_LOCK:
        cache[key] = out
        while len(cache) > DRY_CACHE_ENTRIES:
            cache.popitem(last=False)
    return out


# Processed breaker sets are shared by request threads (which compute them while
# validating a request) and the engine thread (which reads them when a task starts):
# an LRU per tokenizer, bounded in entries, guarded by one lock.
_DRY_LOCK = original("threading", "Lock")()


def _dry_cache(tokenizer: "Tokenizer") -> "collections.OrderedDict":
    with _DRY_LOCK:
        return tokenizer.__dict__.setdefault("_dry_breakers", collections.OrderedDict())


def _tokens_maybe_holding(tokenizer: "Tokenizer", breaker: bytes) -> list[int]:
    """Tokens whose detokenized text may hold the breaker's first character (a
    superset, found in the vocabulary strings: the character itself, U+2581 for a
    space, the byte-level BPE stand-in and the <0xXX> byte token of its first byte)."""
    import re

    from .tokenizer_models import BYTE_TO_CHAR, SPACE

    joined = tokenizer.__dict__.get("_joined_tokens")
    if joined is None:
        text = "\0".join(tokenizer.tokens)
        starts = np.cumsum([0] + [len(t) + 1 for t in tokenizer.tokens[:-1]])
        joined = tokenizer.__dict__["_joined_tokens"] = (text, starts)
    text, starts = joined
    first = breaker.decode("utf-8", "surrogateescape")[:1]
    reps = {first, BYTE_TO_CHAR[breaker[0]], f"<0x{breaker[0]:02X}>"}
    if first == " ":
        reps.add(SPACE)
    pattern = re.compile("|".join(re.escape(r) for r in sorted(reps, key=len, reverse=True)))
    at = np.fromiter((m.start() for m in pattern.finditer(text)), dtype=np.int64)
    return np.unique(np.searchsorted(starts, at, side="right") - 1).tolist()


def _token_text(tokenizer: "Tokenizer", tid: int) -> bytes:
    """A token detokenized alone with specials shown (llama.cpp's view for DRY)."""
    return tokenizer.detokenize([tid], unparse_special=True).encode("utf-8", "surrogateescape")


@dataclass
class TokenProbs:
    """What llama-server reports for one generated token: its probability and the
    n most probable candidates (pre- or post-sampling, as the request asked).

    The candidates stay numpy arrays: with n_probs clamped to the vocabulary a token
    has 49,152 of them (SmolLM2), which as Python tuples cost the engine thread tens
    of milliseconds and megabytes per token."""

    token: int
    prob: float
    top_ids: np.ndarray  # int32, most probable first
    top_probs: np.ndarray  # float32, same order

    @property
    def top(self) -> list[tuple[int, float]]:
        return list(zip(self.top_ids.tolist(), self.top_probs.tolist()))


class Sampler:
    """The sampler chain of one sequence.

    n_ctx resolves repeat_last_n / dry_penalty_last_n of -1. The tokenizer is needed
    for DRY sequence breakers.
    """

    def __init__(self, params: SamplingParams, n_vocab: int, *, n_ctx: int = 4096,
                 tokenizer: "Tokenizer | None" = None, dry_processed: list | None = None):
        self.params = params
        cfg = _native.SamplingConfig()
        cfg.n_vocab = n_vocab
        cfg.seed = RANDOM_SEED if params.seed is None or params.seed < 0 else int(params.seed) & 0xFFFFFFFF
        for name in ("temperature", "dynatemp_range", "dynatemp_exponent", "top_k", "top_p", "min_p", "typical_p",
                     "top_n_sigma", "xtc_probability", "xtc_threshold", "min_keep", "repeat_penalty",
                     "frequency_penalty", "presence_penalty", "dry_multiplier", "dry_base", "dry_allowed_length",
                     "mirostat", "mirostat_tau", "mirostat_eta", "adaptive_target", "adaptive_decay"):
            setattr(cfg, name, getattr(params, name))
        cfg.repeat_last_n = n_ctx if params.repeat_last_n == -1 else params.repeat_last_n
        cfg.dry_penalty_last_n = n_ctx if params.dry_penalty_last_n == -1 else params.dry_penalty_last_n
        cfg.order = [getattr(_native.SamplerKind, n) for n in params.samplers]
        cfg.logit_bias = [(int(t), float(b)) for t, b in params.logit_bias if 0 <= t < n_vocab]
        dry_on = params.dry_multiplier != 0.0 and params.dry_base >= 1.0 and cfg.dry_penalty_last_n != 0 \
            and "dry" in params.samplers and params.mirostat == 0
        if dry_on and dry_processed is not None:  # done on the request's thread already
            cfg.dry_breakers = dry_processed
        elif dry_on and tokenizer is not None:
            cfg.dry_breakers = dry_breakers(tokenizer, params.dry_sequence_breakers)
        self.n_vocab = n_vocab
        self.chain = _native.SamplerChain(cfg)

    @property
    def seed(self) -> int:
        """The seed the draw uses (the one drawn at random when params.seed is -1)."""
        return self.chain.seed

    def sample(self, logits: np.ndarray, token_filter: "_native.TokenFilter | None" = None) -> int:
        """Draw the next token from a row of logits (not yet accepted: call accept)."""
        return self.chain.sample(np.ascontiguousarray(logits, dtype=np.float32), token_filter)

    def __call__(self, logits: np.ndarray) -> int:
        tok = self.sample(logits)
        self.accept(tok)
        return tok

    def accept(self, token: int | Sequence[int]) -> None:
        """Tokens of the sequence (the prompt's too): penalties and DRY look back at them."""
        if isinstance(token, (int, np.integer)):
            self.chain.accept(int(token))
        else:
            self.chain.accept_many([int(t) for t in token])

    def reset(self) -> None:
        self.chain.reset()

    def probs(self, logits: np.ndarray, token: int, n_probs: int | None = None) -> TokenProbs:
        """llama-server's probabilities for the token just sampled: the softmax of the
        raw logits, or (post_sampling_probs) the candidates the chain left, dropping
        zero probabilities."""
        n = self.params.n_probs if n_probs is None else n_probs
        if self.params.post_sampling_probs:
            ids, ps = self.chain.ranked()
            hit = np.flatnonzero(ids == token)
            prob = float(ps[hit[0]]) if hit.size else 0.0
            ids, ps = ids[:n], ps[:n]
            zero = np.flatnonzero(ps == 0.0)  # samplers that zero a probability keep the token; llama-server drops it
            end = int(zero[0]) if zero.size else ps.size
            return TokenProbs(token, prob, ids[:end].copy(), ps[:end].copy())
        ids, ps, prob = _native.top_probabilities(np.ascontiguousarray(logits, dtype=np.float32), n, token)
        return TokenProbs(token, float(prob), np.asarray(ids, dtype=np.int32), np.asarray(ps, dtype=np.float32))


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities of a logits row, computed in float64."""
    x = logits.astype(np.float64)
    x -= x.max()
    return x - np.log(np.exp(x).sum())
