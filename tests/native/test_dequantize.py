"""Dequantization is bit-exact against gguf.quants.dequantize: random blocks and real models."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T
from gguf.quants import dequantize as ref_dequantize

from helpers.blocks import WEIGHT_TYPES, random_rows, type_info
from pyllama import GGUFFile, _native

ISAS = [isa for isa in ("generic", "avx2", "avx512") if ["generic", "avx2", "avx512"].index(isa)
        <= ["generic", "avx2", "avx512"].index(_native.best_isa())]


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.mark.parametrize("qtype", WEIGHT_TYPES, ids=lambda t: T(t).name)
@pytest.mark.parametrize("isa", ISAS)
def test_random_blocks_bit_exact(qtype, isa):
    rng = np.random.default_rng(int(qtype) * 7 + 1)
    n_cols = 1024
    rows = random_rows(qtype, 64, n_cols, rng)
    ours = _native.dequantize(rows, int(qtype), rows.shape[0] * n_cols, isa=isa)
    ref = ref_dequantize(rows, qtype).reshape(-1)
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(bits(ours), bits(ref))


@pytest.mark.parametrize("qtype", [T.Q4_0, T.Q8_0, T.Q4_K, T.Q6_K], ids=lambda t: T(t).name)
def test_all_zero_and_extreme_blocks(qtype):
    _, bs, ts, _ = type_info(qtype)
    zeros = np.zeros((4, ts), dtype=np.uint8)
    ones = np.full((4, ts), 0xFF, dtype=np.uint8)  # NaN scales propagate, like ggml
    for blocks in (zeros, ones):
        ours = _native.dequantize(blocks, int(qtype), 4 * bs)
        ref = ref_dequantize(blocks, qtype).reshape(-1)
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
        np.testing.assert_array_equal(bits(ours)[~np.isnan(ours)], bits(ref)[~np.isnan(ref)])


def test_rejects_partial_blocks():
    with pytest.raises(ValueError, match="block size"):
        _native.dequantize(np.zeros(18, np.uint8), int(T.Q4_0), 31)
    with pytest.raises(ValueError, match="too small"):
        _native.dequantize(np.zeros(18, np.uint8), int(T.Q4_0), 64)
    with pytest.raises(ValueError, match="unknown ggml type"):
        _native.dequantize(np.zeros(18, np.uint8), 99, 32)


def test_every_tensor_of_real_models(real_model_path):
    """Every tensor of the reference models, in row chunks, bit for bit."""
    with GGUFFile(real_model_path) as f:
        for t in f.tensors.values():
            n_cols, n_rows = t.n_cols, t.n_rows
            raw = t.data.reshape(n_rows, -1)
            step = max(1, (1 << 22) // n_cols)
            for r0 in range(0, n_rows, step):
                chunk = raw[r0:r0 + step]
                ours = _native.dequantize(chunk, t.type, chunk.shape[0] * n_cols)
                ref = ref_dequantize(chunk, T(t.type)).reshape(-1)
                if not np.array_equal(bits(ours), bits(ref)):
                    bad = int(np.argmax(bits(ours) != bits(ref)))
                    pytest.fail(f"{t.name} ({t.type_name}) rows {r0}+: element {bad} {ours[bad]!r} != {ref[bad]!r}")
