"""Choosing the next token from logits: greedy, or seeded sampling.

The filters run in llama.cpp's default order (top-k, top-p, min-p, then
temperature) and the draw uses a seeded generator, so a seed reproduces a
completion. The full sampler chain of llama-server (penalties, DRY, XTC,
grammars, ...) builds on this in the server's sampling module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SamplingParams:
    """temperature <= 0 means greedy (the most likely token, lowest id on ties)."""

    temperature: float = 0.8
    top_k: int = 40
    top_p: float = 0.95
    min_p: float = 0.05
    seed: int | None = None


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Natural-log probabilities of a logits row, computed in float64."""
    x = logits.astype(np.float64)
    x -= x.max()
    return x - np.log(np.exp(x).sum())


class Sampler:
    """Picks tokens for one sequence; holds its random generator."""

    def __init__(self, params: SamplingParams = SamplingParams()):
        self.params = params
        self.rng = np.random.default_rng(params.seed)

    def __call__(self, logits: np.ndarray) -> int:
        p = self.params
        if p.temperature <= 0.0:
            return int(np.argmax(logits))
        x = logits.astype(np.float64)
        ids = np.argsort(-x, kind="stable")
        if p.top_k > 0:
            ids = ids[: p.top_k]
        probs = np.exp(x[ids] - x[ids[0]])
        probs /= probs.sum()
        if 0.0 < p.top_p < 1.0:
            keep = int(np.searchsorted(np.cumsum(probs), p.top_p)) + 1
            ids, probs = ids[:keep], probs[:keep]
        if p.min_p > 0.0:
            keep = probs >= p.min_p * probs[0]
            ids = ids[keep]
        z = x[ids] / p.temperature
        w = np.exp(z - z.max())
        w /= w.sum()
        return int(ids[self.rng.choice(len(ids), p=w)])
