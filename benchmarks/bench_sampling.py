"""Sampler-chain cost per token over gemma-3's vocabulary (262,144 tokens), one
core: the default chain, greedy, the default chain with repetition penalties and
DRY over a 64-token history, and a chain without top-k (top-p over the whole
vocabulary). Target (issue 5): the default chain under 1 ms per token.

    python benchmarks/bench_sampling.py

The logits are real: gemma-3-270m's output for a short prompt, so their spread is
a model's, not a synthetic one's.
"""

from __future__ import annotations

import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from pyllama import Llama  # noqa: E402
from pyllama.model_registry import resolve_model  # noqa: E402
from pyllama.sampling import Sampler, SamplingParams  # noqa: E402

N = 300


def per_token_ms(params: SamplingParams, logits: np.ndarray, history: list[int], llm: Llama) -> float:
    s = Sampler(params, len(logits), n_ctx=4096, tokenizer=llm.tokenizer)
    s.accept(history)
    s(logits)  # warm-up (DRY breakers, buffers)
    times = []
    for _ in range(N):
        t0 = time.perf_counter()
        tok = s.sample(logits)
        s.accept(tok)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    llm = Llama(resolve_model("gemma3-270m"), n_ctx=512, n_threads=1)
    prompt = llm.tokenize("The history of the Roman Empire begins with")
    logits = np.array(llm.eval(prompt), dtype=np.float32)
    history = (prompt * 8)[:64]
    cases = {
        "default chain": SamplingParams(seed=1),
        "greedy (temperature 0)": SamplingParams(temperature=0.0),
        "default + penalties + DRY": SamplingParams(seed=1, repeat_penalty=1.1, frequency_penalty=0.2,
                                                    presence_penalty=0.2, dry_multiplier=0.8),
        "top_k 0 (top-p over all)": SamplingParams(seed=1, top_k=0),
    }
    print(f"vocabulary: {len(logits)} tokens; median of {N} draws, one core")
    for name, params in cases.items():
        print(f"{name:28} {per_token_ms(params, logits, history, llm):7.3f} ms/token")


if __name__ == "__main__":
    main()
