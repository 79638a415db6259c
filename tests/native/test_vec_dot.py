"""Dot products: generic kernels against a float64 reference, ISA variants against generic."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize as ref_dequantize

from helpers.blocks import WEIGHT_TYPES, random_rows, type_info
from pyllama import _native

LEVELS = ["generic", "avx2", "avx512"]
SIMD_ISAS = [isa for isa in LEVELS[1:] if LEVELS.index(isa) <= LEVELS.index(_native.best_isa())]


def activation(vtype: int, x: np.ndarray) -> np.ndarray:
    return _native.quantize(x.astype(np.float32), vtype)


def act_dequant(vtype: int, a: np.ndarray, n: int) -> np.ndarray:
    return _native.dequantize(a, vtype, n).astype(np.float64)


def case(qtype: int, n_rows: int, n_cols: int, seed: int):
    rng = np.random.default_rng(seed)
    w = random_rows(qtype, n_rows, n_cols, rng)
    vtype = type_info(qtype)[3]
    x = rng.standard_normal(n_cols).astype(np.float32)
    return w, vtype, activation(vtype, x), x


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: T(t).name)
def test_generic_matches_float_reference(qtype):
    n_cols = 2048
    w, vtype, a, _ = case(qtype, 16, n_cols, 11)
    ref_a = act_dequant(vtype, a, n_cols)
    for r in range(w.shape[0]):
        ours = _native.vec_dot(int(qtype), n_cols, w[r], a, isa="generic")
        ref = float(ref_dequantize(w[r:r + 1], qtype).reshape(-1).astype(np.float64) @ ref_a)
        scale = float(np.abs(ref_dequantize(w[r:r + 1], qtype)).reshape(-1) @ np.abs(ref_a)) + 1e-12
        assert abs(ours - ref) <= 1e-5 * scale, (r, ours, ref)


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: T(t).name)
@pytest.mark.parametrize("isa", SIMD_ISAS)
def test_simd_variant_matches_generic(qtype, isa):
    n_cols, n_rows = 4096, 64
    w, vtype, a, _ = case(qtype, n_rows, n_cols, 5)
    gen = np.array([_native.vec_dot(int(qtype), n_cols, w[r], a, isa="generic") for r in range(n_rows)])
    simd = np.array([_native.vec_dot(int(qtype), n_cols, w[r], a, isa=isa) for r in range(n_rows)])
    nmse = float(np.sum((simd - gen) ** 2) / np.sum(gen ** 2))
    assert nmse < 1e-6, nmse


@pytest.mark.parametrize("vtype", [T.Q8_0, T.Q8_1, T.Q8_K], ids=lambda t: T(t).name)
def test_activation_quantization_error_bound(vtype):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4096).astype(np.float32) * 3
    back = _native.dequantize(_native.quantize(x, int(vtype)), int(vtype), x.size)
    bs = type_info(vtype)[1]
    amax = np.abs(x.reshape(-1, bs)).max(axis=1, keepdims=True)
    # half a quantization step (plus f16 rounding of the scale)
    assert np.all(np.abs((back - x).reshape(-1, bs)) <= amax / 127 * 0.5 + amax * 2e-3)


def test_q8_1_sum_field():
    x = np.random.default_rng(4).standard_normal(64).astype(np.float32)
    blocks = _native.quantize(x, int(T.Q8_1)).reshape(2, 36)
    for b in blocks:
        d = float(b[0:2].view(np.float16)[0])
        s = float(b[2:4].view(np.float16)[0])
        q = b[4:].view(np.int8).astype(np.int64)
        assert s == pytest.approx(d * q.sum(), rel=2e-3, abs=1e-3)


def test_q8_K_bsums():
    x = np.random.default_rng(5).standard_normal(512).astype(np.float32)
    raw = _native.quantize(x, int(T.Q8_K)).reshape(2, 292)
    for b in raw:
        q = b[4:260].view(np.int8).astype(np.int64)
        np.testing.assert_array_equal(b[260:].view(np.int16), q.reshape(16, 16).sum(axis=1))
