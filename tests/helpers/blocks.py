"""Random but valid blocks of every format, for kernel tests.

Quantized bits are uniformly random; the F16 scale fields are replaced by finite
values of realistic magnitude so every block dequantizes to finite numbers.
"""

from __future__ import annotations

import numpy as np
from gguf import GGMLQuantizationType as T

from pyllama import _native

# Byte offsets of the F16 scale fields in each block, and whether they may be negative.
SCALE_FIELDS = {
    T.Q4_0: ([0], True), T.Q4_1: ([0, 2], True), T.Q5_0: ([0], True), T.Q5_1: ([0, 2], True),
    T.Q8_0: ([0], True), T.IQ4_NL: ([0], True), T.Q2_K: ([80, 82], False), T.Q3_K: ([108], True),
    T.Q4_K: ([0, 2], False), T.Q5_K: ([0, 2], False), T.Q6_K: ([208], True),
}

WEIGHT_TYPES = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K,
                T.Q5_K, T.Q6_K, T.IQ4_NL]


def type_info(t: int) -> tuple[str, int, int, int]:
    """(name, block_size, type_size, vec_dot_type)"""
    return _native.type_info(int(t))


def random_rows(t: int, n_rows: int, n_cols: int, rng: np.random.Generator) -> np.ndarray:
    """(n_rows, row_bytes) uint8 of valid random blocks of type t."""
    _, bs, ts, _ = type_info(t)
    if t == T.F32:
        return rng.standard_normal((n_rows, n_cols), dtype=np.float32).view(np.uint8)
    if t == T.F16:
        return rng.standard_normal((n_rows, n_cols)).astype(np.float16).view(np.uint8)
    if t == T.BF16:
        f = rng.standard_normal((n_rows, n_cols)).astype(np.float32)
        return (f.view(np.uint32) >> 16).astype(np.uint16).view(np.uint8)
    n_blocks = n_rows * n_cols // bs
    blocks = rng.integers(0, 256, size=(n_blocks, ts), dtype=np.uint8)
    offsets, signed = SCALE_FIELDS[T(t)]
    for off in offsets:
        mag = rng.uniform(1e-3, 5e-2, size=n_blocks)
        if signed:
            mag *= rng.choice([-1.0, 1.0], size=n_blocks)
        blocks[:, off:off + 2] = mag.astype(np.float16).view(np.uint8).reshape(n_blocks, 2)
    return blocks.reshape(n_rows, -1)
