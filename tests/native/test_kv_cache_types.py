"""Every KV cache type llama-server lists (--cache-type-k/-v): the 4- and 5-bit
quantizers against gguf-py's reference (and a numpy IQ4_NL), and a model's logits
with each type against the F32 cache."""

from __future__ import annotations

import numpy as np
import pytest
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize
from helpers.tiny_models import write_tiny_decoder

from pyllama import Llama, _native
from pyllama.llama import CACHE_TYPES

IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113], np.float32)


def rows(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((64, 64)) * rng.uniform(0.01, 5, (64, 1))).astype(np.float32)
    x[3] = 0.0  # an all-zero block
    return x


@pytest.mark.parametrize("t", [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1])
def test_quantizers_equal_the_reference(t):
    x = rows()
    np.testing.assert_array_equal(_native.quantize(x.reshape(-1), int(t)), quantize(x, t).reshape(-1))


def iq4_nl_reference(x: np.ndarray) -> bytes:
    """ggml's quantize_row_iq4_nl_ref (no importance weights, no scale search), per block of 32."""
    out = bytearray()
    for b in x.reshape(-1, 32):
        i = int(np.argmax(np.abs(b)))
        if abs(b[i]) < 1e-15:
            d, idx = np.float32(0), np.zeros(32, int)
        else:
            inv = np.float32(1) / (b[i] / IQ4NL[0])
            v = inv * b
            idx = np.abs(v[:, None] - IQ4NL[None, :]).argmin(1)   # nearest value (ties: the lower)
            q = IQ4NL[idx]
            w = b * b
            sq2 = np.float32((w * q * q).sum(dtype=np.float32))
            d = np.float32((w * q * b).sum(dtype=np.float32)) / sq2 if sq2 > 0 else np.float32(0)
        out += np.float16(d).tobytes()
        out += bytes(int(idx[j]) | int(idx[16 + j]) << 4 for j in range(16))
    return bytes(out)


def test_iq4_nl_quantizer():
    x = rows(1)
    got = _native.quantize(x.reshape(-1), int(Q.IQ4_NL)).tobytes()
    want = iq4_nl_reference(x)
    # the scale is a float sum whose order may differ in its last bit; the indices must agree
    g = np.frombuffer(got, np.uint8).reshape(-1, 18)
    w = np.frombuffer(want, np.uint8).reshape(-1, 18)
    np.testing.assert_array_equal(g[:, 2:], w[:, 2:])
    np.testing.assert_allclose(g[:, :2].copy().view(np.float16).astype(np.float32),
                               w[:, :2].copy().view(np.float16).astype(np.float32), rtol=2e-3)
    # and it dequantizes back close to the input
    back = _native.dequantize(np.frombuffer(got, np.uint8), int(Q.IQ4_NL), x.size).reshape(x.shape)
    assert np.abs(back - x).max() < 0.15 * np.abs(x).max()


def test_cache_type_names_are_llama_servers():
    assert CACHE_TYPES == ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")
    with pytest.raises(ValueError, match="iq4_nl"):
        _native.KvCache(4, type_k="q2_K")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return write_tiny_decoder(tmp_path_factory.mktemp("kv") / "qwen3.gguf", "qwen3")


@pytest.mark.parametrize("cache", CACHE_TYPES)
def test_every_cache_type_runs_the_model(tiny, cache):
    toks = np.random.default_rng(2).integers(0, 47, 20).tolist()
    want = Llama(tiny, n_ctx=64, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    llm = Llama(tiny, n_ctx=64, cache_type_k=cache, cache_type_v=cache)
    got = llm.eval(toks, all_logits=True)
    tol = {"f32": 1e-6, "f16": 2e-2, "bf16": 5e-2, "q8_0": 6e-2}.get(cache, 0.35)  # 4/5-bit: coarse
    assert np.abs(got - want).max() < tol * np.abs(want).max(), cache
    # a context shift re-quantizes K in the cache's own type
    llm.kv.clear()
    llm.eval(toks[:8], pos0=3)
    llm.kv.seq_add(0, -1, -1, -3)
    assert np.isfinite(llm.eval(toks[8:], all_logits=True)).all()
