"""Matmul: correct against numpy, and invariant to M, tiling and thread count."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize as ref_dequantize

from helpers.blocks import WEIGHT_TYPES, random_rows, type_info
from pyllama import _native


@pytest.fixture
def threads():
    before = _native.num_threads()
    yield _native.set_num_threads
    _native.set_num_threads(before)


def reference(w: np.ndarray, qtype: int, x: np.ndarray) -> np.ndarray:
    vtype = type_info(qtype)[3]
    xq = np.stack([_native.dequantize(_native.quantize(r, vtype), vtype, r.size) for r in x])
    return xq.astype(np.float64) @ ref_dequantize(w, T(qtype)).astype(np.float64).T


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: T(t).name)
@pytest.mark.parametrize("m", [1, 5, 70])
def test_matches_numpy(qtype, m):
    rng = np.random.default_rng(int(qtype) + m)
    n, k = 37, 512
    w = random_rows(qtype, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _native.matmul(w, int(qtype), n, k, x)
    ref = reference(w, qtype, x)
    assert y.shape == (m, n)
    err = np.abs(y - ref).max() / (np.abs(ref).max() + 1e-9)
    assert err < 1e-4, err


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q4_1, T.Q5_0, T.Q8_0, T.Q4_K, T.Q6_K, T.F16], ids=lambda t: T(t).name)
def test_batch_and_thread_invariance(qtype, threads):
    rng = np.random.default_rng(9)
    n, k, m = 300, 1024, 130
    w = random_rows(qtype, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    threads(2)
    full = _native.matmul(w, int(qtype), n, k, x)
    threads(1)
    single = _native.matmul(w, int(qtype), n, k, x)
    np.testing.assert_array_equal(full, single)
    for i in (0, 3, 64, 66, 129):  # rows decoded alone equal the same rows in the batch
        np.testing.assert_array_equal(_native.matmul(w, int(qtype), n, k, x[i:i + 1])[0], full[i])


def test_prefill_sized_batch():
    rng = np.random.default_rng(1)
    n, k, m = 64, 576, 512
    w = random_rows(T.Q4_0, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _native.matmul(w, int(T.Q4_0), n, k, x)
    np.testing.assert_allclose(y, reference(w, T.Q4_0, x), rtol=0, atol=1e-3 * np.abs(y).max())


def test_bad_shapes():
    w = np.zeros((4, 18), np.uint8)
    with pytest.raises(ValueError):
        _native.matmul(w, int(T.Q4_0), 4, 32, np.zeros((2, 64), np.float32))
    with pytest.raises(ValueError):
        _native.matmul(w, int(T.Q4_0), 8, 32, np.zeros((2, 32), np.float32))


def test_get_rows():
    rng = np.random.default_rng(2)
    w = random_rows(T.Q6_K, 50, 512, rng)
    ids = np.array([3, 0, 49, 3], np.int32)
    out = _native.get_rows(w, int(T.Q6_K), 50, 512, ids)
    np.testing.assert_array_equal(out, ref_dequantize(w[ids], T.Q6_K))
    with pytest.raises(IndexError):
        _native.get_rows(w, int(T.Q6_K), 50, 512, np.array([50], np.int32))


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: T(t).name)
@pytest.mark.parametrize("isa", ["generic"] + [i for i in ("avx2", "avx512") if
                                               ["generic", "avx2", "avx512"].index(i) <=
                                               ["generic", "avx2", "avx512"].index(_native.best_isa())])
def test_matmul_equals_single_row_dot_products(qtype, isa):
    """Multi-row kernels (used inside matmul tiles) give the single-row dot product bit for bit."""
    rng = np.random.default_rng(21)
    n, k, m = 23, 512, 9  # 9 activation rows: two four-row groups and a tail
    w = random_rows(qtype, n, k, rng)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _native.matmul(w, int(qtype), n, k, x, isa=isa)
    vtype = type_info(qtype)[3]
    for i in range(m):
        a = _native.quantize(x[i], vtype)
        row = np.array([_native.vec_dot(int(qtype), k, w[r], a, isa=isa) for r in range(n)], np.float32)
        np.testing.assert_array_equal(y[i], row)
