"""Embeddings from final hidden states: which tokens to output, pooling and
normalization, as llama.cpp computes them.

One sequence's hidden states come out of `Llama.decode(batch)` in embedding
mode for the tokens `output_flags` marks (in batch order); `pool` turns those
rows into the sequence's vector (for "rank", the row the classifier head reads:
`Llama.pool` applies the head); `normalize` is llama.cpp's common_embd_normalize.

    flags = output_flags(len(tokens), "mean")       # which rows decode must return
    vec = normalize(pool(rows, "mean"), 2)           # (n_embd,) float32, unit length
"""

from __future__ import annotations

import numpy as np

from . import _native

# Index = the GGUF's `{arch}.pooling_type` value (llama_pooling_type).
POOLING_TYPES = ("none", "mean", "cls", "last", "rank")


def pooling_name(value: int | str) -> str:
    """A pooling type by GGUF value (0..4) or name; ValueError for anything else."""
    if isinstance(value, str) and value in POOLING_TYPES:
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(POOLING_TYPES):
        return POOLING_TYPES[int(value)]
    raise ValueError(f"unknown pooling type {value!r} (choices: {', '.join(POOLING_TYPES)})")


def output_flags(n_tokens: int, pooling: str) -> list[bool]:
    """The tokens of one sequence (positions 0..n-1) whose hidden states pooling reads:
    all of them for none and mean, the first for cls and rank, the last for last."""
    if pooling in ("none", "mean"):
        return [True] * n_tokens
    if pooling in ("cls", "rank"):
        return [i == 0 for i in range(n_tokens)]
    if pooling == "last":
        return [i == n_tokens - 1 for i in range(n_tokens)]
    raise ValueError(f"unknown pooling type {pooling!r}")


def pool(states: np.ndarray, pooling: str) -> np.ndarray:
    """One sequence's vector from the rows output_flags asked for, (n_rows, n_embd):
    none -> the rows themselves (n_rows, n_embd); mean -> their mean (n_embd);
    cls, rank -> the first row; last -> the last row. float32."""
    states = np.asarray(states, dtype=np.float32)
    if states.ndim != 2 or not len(states):
        raise ValueError("pool takes the (n_rows, n_embd) hidden states of one sequence, at least one row")
    if pooling == "none":
        return states.copy()
    if pooling == "mean":  # llama.cpp: a matmul of the rows with weights 1/n
        return (states.astype(np.float64) * np.float64(np.float32(1.0) / np.float32(len(states)))).sum(axis=0) \
            .astype(np.float32)
    if pooling in ("cls", "rank"):
        return states[0].copy()
    if pooling == "last":
        return states[-1].copy()
    raise ValueError(f"unknown pooling type {pooling!r}")


def normalize(vectors: np.ndarray, mode: int = 2) -> np.ndarray:
    """llama.cpp's common_embd_normalize along the last axis, float32:
    -1 none, 0 max-abs scaled to the int16 range (divided by max|x| / 32760),
    1 taxicab, 2 euclidean, p > 2 the p-norm. An all-zero vector stays zero."""
    mode = int(mode)
    x = np.asarray(vectors, dtype=np.float32)
    if mode == -1:
        return x.copy()
    if mode == 0:
        total = np.abs(x).max(axis=-1, keepdims=True).astype(np.float64) / 32760.0
    elif mode == 2:
        total = np.sqrt((x * x).astype(np.float64).sum(axis=-1, keepdims=True))
    else:
        total = (np.abs(x).astype(np.float64) ** mode).sum(axis=-1, keepdims=True) ** (1.0 / mode)
    with np.errstate(divide="ignore"):
        scale = np.where(total > 0.0, 1.0 / total, 0.0).astype(np.float32)
    return x * scale


def vector_json(vec: np.ndarray) -> str:
    """JSON array text of a float32 vector's values (flattened), exactly as json.dumps
    writes them as Python floats with separators (",", ":"), non-finite ones as null
    (as llama-server writes them); natively, about seven times faster."""
    return _native.floats_json(np.ascontiguousarray(vec, dtype=np.float32))
