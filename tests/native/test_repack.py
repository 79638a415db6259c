"""Packed (row-interleaved) weights: layout, matmul results, invariance, ISA agreement."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from helpers.blocks import random_rows
from pyllama import _native

PACKED_TYPES = [T.Q4_0, T.Q4_1]
LEVELS = ["generic", "avx2", "avx512"]
ISAS = [isa for isa in LEVELS if LEVELS.index(isa) <= LEVELS.index(_native.best_isa())]


def unpack(packed: np.ndarray, qtype: int, n_groups: int, k: int) -> np.ndarray:
    """Rebuild plain rows from the documented layout (repack.h)."""
    nb = k // 32
    head = 16 if qtype == T.Q4_0 else 32  # d[8] (+ m[8]) as fp16
    blocks = packed.reshape(n_groups, nb, head + 128)
    scales = blocks[:, :, :head].reshape(n_groups, nb, head // 16, 8, 2)  # (g, i, d|m, row, 2 bytes)
    qs = blocks[:, :, head:].reshape(n_groups, nb, 4, 8, 4)              # (g, i, chunk, row, 4 bytes)
    qs = qs.transpose(0, 3, 1, 2, 4).reshape(n_groups, 8, nb, 16)        # (g, row, i, 16 bytes)
    sc = scales.transpose(0, 3, 1, 2, 4).reshape(n_groups, 8, nb, head // 8)
    return np.concatenate([sc, qs], axis=3).reshape(n_groups * 8, -1)


@pytest.mark.parametrize("qtype", PACKED_TYPES, ids=lambda t: T(t).name)
def test_layout_is_a_row_interleave(qtype):
    rng = np.random.default_rng(3)
    n, k = 43, 256
    w = random_rows(qtype, n, k, rng)
    packed = _native.pack_rows(w, int(qtype), n, k)
    assert packed.dtype == np.uint8
    np.testing.assert_array_equal(unpack(packed, qtype, n // 8, k), w[: n // 8 * 8])


@pytest.mark.parametrize("qtype", [T.Q8_0, T.Q4_K, T.F16], ids=lambda t: T(t).name)
def test_types_without_layout_give_none(qtype):
    w = random_rows(qtype, 8, 256, np.random.default_rng(0))
    assert _native.pack_rows(w, int(qtype), 8, 256) is None


@pytest.mark.parametrize("qtype", PACKED_TYPES, ids=lambda t: T(t).name)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("m", [1, 5, 70])
def test_packed_matmul_agrees_with_plain(qtype, isa, m):
    rng = np.random.default_rng(int(qtype) * 7 + m)
    n, k = 37, 512  # 4 packed groups + 5 plain tail rows
    w = random_rows(qtype, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    packed = _native.pack_rows(w, int(qtype), n, k)
    plain = _native.matmul(w, int(qtype), n, k, x, isa="generic")
    y = _native.matmul(w, int(qtype), n, k, x, packed=packed, isa=isa)
    nmse = float(np.sum((y - plain) ** 2) / np.sum(plain**2))
    assert nmse < 1e-6, nmse
    # the tail rows are computed by the plain kernel of the same level
    np.testing.assert_array_equal(y[:, 32:], _native.matmul(w, int(qtype), n, k, x, isa=isa)[:, 32:])


@pytest.mark.parametrize("qtype", PACKED_TYPES, ids=lambda t: T(t).name)
def test_packed_batch_and_thread_invariance(qtype):
    rng = np.random.default_rng(11)
    n, k, m = 300, 1024, 130
    w = random_rows(qtype, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    packed = _native.pack_rows(w, int(qtype), n, k)
    before = _native.num_threads()
    try:
        _native.set_num_threads(2)
        full = _native.matmul(w, int(qtype), n, k, x, packed=packed)
        _native.set_num_threads(1)
        np.testing.assert_array_equal(_native.matmul(w, int(qtype), n, k, x, packed=packed), full)
    finally:
        _native.set_num_threads(before)
    for i in (0, 64, 129):
        np.testing.assert_array_equal(_native.matmul(w, int(qtype), n, k, x[i:i + 1], packed=packed)[0], full[i])


def test_wrong_packed_size_is_refused():
    rng = np.random.default_rng(0)
    w = random_rows(T.Q4_0, 16, 64, rng)
    packed = _native.pack_rows(w, int(T.Q4_0), 16, 64)
    x = np.zeros((1, 64), np.float32)
    with pytest.raises(ValueError, match="packed buffer"):
        _native.matmul(w, int(T.Q4_0), 16, 64, x, packed=packed[:-1])
    q8 = random_rows(T.Q8_0, 16, 64, rng)
    with pytest.raises(ValueError, match="packed buffer"):
        _native.matmul(q8, int(T.Q8_0), 16, 64, x, packed=packed)
