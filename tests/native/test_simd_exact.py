"""SIMD kernels that must give the generic kernels' results bit for bit: F32 -> F16
rounding, ggml's table GELU, and the register-tiled F16 matmul against the row-by-row
dot products."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from gguf import GGMLQuantizationType as T

from pyllama import _native

needs_avx2 = pytest.mark.skipif(_native.best_isa() == "generic", reason="the CPU has no AVX2")


def awkward_floats(n: int, seed: int = 0) -> np.ndarray:
    """Normal values, halfway cases, the F16 overflow and subnormal edges, zeros,
    infinities and NaNs; n not a multiple of 8 so the scalar tails run too."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(np.float32) * np.float32(4.0)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan, 65504.0, 65519.99, 65520.0, -65520.0,
                        6.1e-5, 5.96e-8, 2.98e-8, 2.99e-8, -1e-7, 1e-40, 10.0, -10.0, 9.999, -9.999],
                       np.float32)
    x[:len(special)] = special
    halves = rng.integers(0, 0x7bff, 64).astype(np.uint16).view(np.float16).astype(np.float32)
    x[32:96] = halves + np.float32(np.spacing(halves) / 2)  # ties between neighbouring halves
    x[200:210] = np.float32(np.nan)
    x[205] = np.float32(1.5)  # a NaN block with ordinary lanes
    x[300:302] = np.array([0x7fa00000, 0xffb00001], np.uint32).view(np.float32)  # NaNs with payloads
    return x


@needs_avx2
def test_f16_rounding_matches_generic():
    x = awkward_floats(1003)
    simd = _native.quantize(x, int(T.F16), isa="avx2")
    generic = _native.quantize(x, int(T.F16), isa="generic")
    np.testing.assert_array_equal(np.asarray(simd), np.asarray(generic))


@needs_avx2
def test_gelu_table_matches_generic(tmp_path):
    x = awkward_floats(1003, seed=1)
    u = np.random.default_rng(2).standard_normal(x.size).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "u.npy", u)
    code = ("import numpy as np, sys; from pyllama import _native; x = np.load('x.npy'); u = np.load('u.npy'); "
            "np.save(sys.argv[1], np.stack([_native.gelu_ggml(x), _native.geglu_ggml(x, u)]))")
    outs = {}
    for isa in ("generic", "avx2"):
        env = dict(os.environ, PYLLAMA_ISA=isa)
        subprocess.run([sys.executable, "-c", code, f"{isa}.npy"], check=True, cwd=tmp_path, env=env)
        outs[isa] = np.load(tmp_path / f"{isa}.npy")
    np.testing.assert_array_equal(outs["avx2"].view(np.uint32), outs["generic"].view(np.uint32))


@pytest.mark.parametrize("n,k,m", [(7, 32, 4), (37, 512, 70), (130, 384, 11), (301, 1536, 65), (16, 96, 5)])
def test_tiled_f16_matmul_equals_row_dots(n, k, m):
    rng = np.random.default_rng(n + k + m)
    w = rng.standard_normal((n, k)).astype(np.float16).view(np.uint8)
    x = rng.standard_normal((m, k)).astype(np.float32)
    y = _native.matmul(w, int(T.F16), n, k, x)
    a = [_native.quantize(r, int(T.F16)) for r in x]
    row = w.reshape(n, 2 * k)
    ref = np.array([[_native.vec_dot(int(T.F16), k, row[r], a[i]) for r in range(n)] for i in range(m)], np.float32)
    np.testing.assert_array_equal(y, ref)
