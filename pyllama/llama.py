"""Llama: a GGUF model loaded for inference, as a library.

    llm = Llama("model.gguf", n_ctx=4096, n_threads=2)
    ids = llm.tokenize("The capital of France is")
    for tok in llm.generate(ids, max_tokens=16):          # greedy by default
        print(llm.detokenize([tok]), end="")

One `decode()` call is one forward pass over a Batch: tokens of one or more
sequences, each with a position and the sequence ids it belongs to; the
logits of the flagged tokens come back. The KV cache (`llm.kv`) keeps what
every sequence has seen, so a sequence continues by decoding only new tokens.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from . import _native
from .errors import ContextOverflow, ModelLoadError
from .gguf_file import GGUFFile
from .model_loader import LoadProgress, load_model
from .grammar import GrammarState, compile_grammar
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer

CACHE_TYPES = ("f16", "f32", "q8_0")


@dataclass
class Batch:
    """Tokens for one forward pass. seq_ids: the sequences a token belongs to
    (attention follows the lowest; the cell is shared by all of them)."""

    tokens: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    seq_ids: list[tuple[int, ...]] = field(default_factory=list)
    logits: list[bool] = field(default_factory=list)

    def add(self, token: int, pos: int, seq_ids: int | Iterable[int] = 0, logits: bool = False) -> "Batch":
        self.tokens.append(int(token))
        self.pos.append(int(pos))
        self.seq_ids.append((int(seq_ids),) if isinstance(seq_ids, (int, np.integer)) else tuple(seq_ids))
        self.logits.append(bool(logits))
        return self

    def add_sequence(self, tokens: Sequence[int], pos0: int, seq_id: int = 0, *, logits_last: bool = True) -> "Batch":
        for i, t in enumerate(tokens):
            self.add(t, pos0 + i, seq_id, logits_last and i == len(tokens) - 1)
        return self

    def __len__(self) -> int:
        return len(self.tokens)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        seqs = np.zeros(len(self.tokens), np.uint64)
        for i, ids in enumerate(self.seq_ids):
            for s in ids:
                if not 0 <= s < 64:
                    raise ValueError(f"sequence id {s} is out of range [0, 64)")
                seqs[i] |= np.uint64(1 << s)
        return (np.asarray(self.tokens, np.int32), np.asarray(self.pos, np.int32), seqs,
                np.asarray(self.logits, np.uint8))


@dataclass
class RunTimings:
    """Counts and wall times of the last generate() call."""

    n_prompt: int = 0
    prompt_s: float = 0.0
    n_generated: int = 0
    generate_s: float = 0.0

    @property
    def prompt_per_second(self) -> float:
        return self.n_prompt / self.prompt_s if self.prompt_s > 0 else 0.0

    @property
    def generate_per_second(self) -> float:
        return self.n_generated / self.generate_s if self.generate_s > 0 else 0.0


class Llama:
    """A GGUF text-generation model with its tokenizer and one KV cache.

    n_ctx: KV cache cells shared by all sequences; n_ubatch: tokens per
    micro-batch; n_threads: compute threads (default: all hardware threads);
    cache_type_k / cache_type_v: f16 (default), f32 or q8_0.
    Raises ModelLoadError for a missing, malformed or unsupported file.
    """

    def __init__(self, model_path: str | os.PathLike, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_ubatch: int = 512, cache_type_k: str = "f16", cache_type_v: str = "f16",
                 progress: bool | None = None):
        for name, value in (("cache_type_k", cache_type_k), ("cache_type_v", cache_type_v)):
            if value not in CACHE_TYPES:
                raise ValueError(f"{name} must be one of {', '.join(CACHE_TYPES)}, got {value!r}")
        if n_ctx <= 0 or n_ubatch <= 0:
            raise ValueError("n_ctx and n_ubatch must be positive")
        self.path = os.fspath(model_path)
        bar = LoadProgress(os.path.basename(self.path), enabled=progress)
        self.gguf = GGUFFile(self.path)
        self.hparams = self.gguf.hparams
        self.tokenizer = Tokenizer.from_gguf(self.gguf)
        self._model = load_model(self.gguf, progress=bar)
        bar.done()
        try:
            self._ctx = _native.Context(self._model, n_ctx=n_ctx, n_ubatch=n_ubatch, n_threads=n_threads or 0,
                                        type_k=cache_type_k, type_v=cache_type_v)
        except ValueError as e:
            raise ModelLoadError(f"'{self.path}': {e}") from None
        self.n_vocab: int = self._model.n_vocab
        self.n_params: int = sum(math.prod(t.shape) for t in self.gguf.tensors.values())
        self.timings = RunTimings()
        self._last_logits: np.ndarray | None = None

    # -- properties -------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self._ctx.n_ctx

    @property
    def n_threads(self) -> int:
        return self._ctx.n_threads

    @property
    def kv(self) -> "_native.KvCache":
        """The KV cache: seq_rm, seq_cp, seq_keep, seq_add, seq_div, seq_pos_min/max, clear, defrag,
        seq_save/seq_restore."""
        return self._ctx.kv

    @property
    def metadata(self) -> dict:
        return self.gguf.metadata

    @property
    def logits(self) -> np.ndarray | None:
        """Logits (n_outputs, n_vocab) of the last decode() call."""
        return self._last_logits

    # -- text <-> tokens --------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False) -> str:
        return self.tokenizer.detokenize(ids, remove_special=remove_special, unparse_special=unparse_special)

    # -- forward passes ---------------------------------------------------
    def decode(self, batch: Batch) -> np.ndarray:
        """One forward pass over the batch; returns the flagged tokens' logits (n_out, n_vocab).

        Raises ContextOverflow (cache unchanged) when the KV cache lacks room.
        """
        if not len(batch):
            raise ValueError("the batch is empty")
        try:
            out = self._ctx.decode(*batch.arrays())
        except _native.ContextFull as e:
            raise ContextOverflow(str(e)) from None
        self._last_logits = out
        return out

    def eval(self, tokens: Sequence[int], *, seq_id: int = 0, pos0: int | None = None,
             all_logits: bool = False) -> np.ndarray:
        """Decode tokens of one sequence after what the cache holds for it (or from pos0);
        returns the last token's logits (n_vocab), or every token's (n, n_vocab)."""
        if pos0 is None:
            pos0 = self.kv.seq_pos_max(seq_id) + 1
        b = Batch()
        for i, t in enumerate(tokens):
            b.add(t, pos0 + i, seq_id, all_logits or i == len(tokens) - 1)
        out = self.decode(b)
        return out if all_logits else out[-1]

    def generate(self, prompt: str | Sequence[int], *, max_tokens: int = 128, temperature: float = 0.0,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, seed: int | None = None,
                 sampling: SamplingParams | None = None, grammar: str | None = None, seq_id: int = 0,
                 stop_at_eog: bool = True, keep_cache: bool = False) -> Iterator[int]:
        """Yield up to max_tokens generated token ids (greedy when temperature <= 0).

        `sampling` gives the whole llama-server sampler chain (it overrides the
        temperature/top_k/top_p/min_p/seed shortcuts). `grammar` (GBNF) constrains
        the output; generation ends when the grammar allows nothing but the end. The prompt is accepted into
        the chain, so repetition penalties see it. The sequence's cache is cleared
        first unless keep_cache, in which case the prompt continues what the cache
        holds. Stops early at an end-of-generation token (not yielded) when
        stop_at_eog. Counts and times go to self.timings.
        """
        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("the prompt is empty")
        if not keep_cache:
            self.kv.seq_rm(seq_id, -1, -1)
        if sampling is None:
            sampling = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                      seed=-1 if seed is None else seed)
        sampler = Sampler(sampling, self.n_vocab, n_ctx=self.n_ctx, tokenizer=self.tokenizer)
        sampler.accept(ids)
        state = GrammarState(compile_grammar(grammar, self.tokenizer), self.tokenizer) if grammar else None
        self.timings = RunTimings(n_prompt=len(ids))
        t0 = time.perf_counter()
        logits = self.eval(ids, seq_id=seq_id)
        t1 = time.perf_counter()
        self.timings.prompt_s = t1 - t0
        pos = self.kv.seq_pos_max(seq_id) + 1
        for _ in range(max_tokens):
            tok = sampler.sample(logits, state.filter if state is not None else None)
            sampler.accept(tok)
            if state is not None:
                state.accept(tok)
            if stop_at_eog and self.tokenizer.is_eog(tok):
                break
            self.timings.n_generated += 1
            self.timings.generate_s = time.perf_counter() - t1
            yield tok
            logits = self.eval([tok], seq_id=seq_id, pos0=pos)
            pos += 1
        self.timings.generate_s = time.perf_counter() - t1

    def close(self) -> None:
        """Free the cache and unmap the file (the object is unusable afterwards)."""
        self._ctx = None
        self._model = None
        self.gguf.close()

    def __enter__(self) -> "Llama":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
