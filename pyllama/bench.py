"""Prompt-processing and generation speed, measured like llama-bench.

pp N: one batch of N prompt tokens into an empty cache; tg N: N single-token
decode steps after an empty cache (llama-bench's definitions). Each test runs
once untimed (warm-up) and then `repetitions` times; the result is the mean
and standard deviation of tokens per second over the repetitions.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class BenchResult:
    model: str
    test: str
    threads: int
    mean: float
    stdev: float

    def __str__(self) -> str:
        return f"| {self.model} | {self.threads} | {self.test:>6} | {self.mean:9.2f} ± {self.stdev:6.2f} |"


def _pp(llm, n: int) -> float:
    from .llama import Batch

    llm.kv.clear()
    rng = np.random.default_rng(0)
    toks = rng.integers(0, llm.n_vocab, n).tolist()
    b = Batch().add_sequence(toks, 0)
    t0 = time.perf_counter()
    llm.decode(b)
    return n / (time.perf_counter() - t0)


def _tg(llm, n: int) -> float:
    from .llama import Batch

    llm.kv.clear()
    tok = llm.tokenizer.bos if llm.tokenizer.bos is not None and llm.tokenizer.bos >= 0 else 0
    t0 = time.perf_counter()
    for i in range(n):
        logits = llm.decode(Batch().add(tok, i, 0, True))
        tok = int(np.argmax(logits[0]))
    return n / (time.perf_counter() - t0)


def run_bench(model: str, *, n_prompt: int = 512, n_gen: int = 128, n_threads: int | None = None,
              repetitions: int = 5):
    """Yield a header, then one BenchResult per test (pp, then tg)."""
    import os

    from .llama import Llama
    from .model_registry import resolve_model

    path = resolve_model(model)
    llm = Llama(path, n_ctx=max(n_prompt, n_gen) + 16, n_threads=n_threads, n_ubatch=max(512, n_prompt))
    name = os.path.basename(str(path))
    yield "| model | threads | test | t/s |"
    yield "| --- | --- | --- | --- |"
    for label, fn, n in (("pp", _pp, n_prompt), ("tg", _tg, n_gen)):
        if n <= 0:
            continue
        fn(llm, n)  # warm-up
        runs = [fn(llm, n) for _ in range(repetitions)]
        yield BenchResult(name, f"{label}{n}", llm.n_threads, statistics.mean(runs),
                          statistics.stdev(runs) if len(runs) > 1 else 0.0)
