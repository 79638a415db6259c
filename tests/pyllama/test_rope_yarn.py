"""RoPE scaling: llama.cpp's rules for resolving the model's settings and the user's
overrides (pyllama.rope), and YaRN in the native forward pass against the numpy
reference (tests/helpers/reference_forward.py) on small random-weight models."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers.reference_forward import ReferenceModel
from helpers.tiny_models import write_tiny_decoder

from pyllama import Llama, ModelLoadError
from pyllama.rope import ModelRope, RopeOptions, resolve

YARN_META = {"type": "yarn", "factor": 4.0, "original_context_length": 4096}


def tokens(n: int, seed: int = 1) -> list[int]:
    return np.random.default_rng(seed).integers(0, 47, n).tolist()


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-6)


def test_the_models_settings_apply_by_default():
    r = resolve(ModelRope(freq_base=500000.0, freq_scale=0.125, n_ctx_train=8192))
    assert (r.freq_base, r.freq_scale, r.ext_factor, r.attn_factor) == (500000.0, 0.125, 0.0, 1.0)
    assert r.n_ctx_orig == 8192  # no original context named: the training context


def test_overrides_and_scaling_none():
    m = ModelRope(freq_base=10000.0, freq_scale=0.5, n_ctx_train=2048)
    r = resolve(m, RopeOptions(freq_base=20000.0, freq_scale=0.25))
    assert (r.freq_base, r.freq_scale) == (20000.0, 0.25)
    assert resolve(m, RopeOptions(scaling_type="none", freq_scale=0.25)).freq_scale == 1.0  # none never scales
    assert resolve(m, RopeOptions(yarn_orig_ctx=1000)).n_ctx_orig == 1000
    with pytest.raises(ValueError):
        RopeOptions(scaling_type="ntk")


def test_yarn_sets_extrapolation_and_magnitude():
    m = ModelRope(scaling_type="yarn", freq_scale=0.25, n_ctx_orig=4096, n_ctx_train=16384)
    r = resolve(m)
    assert r.ext_factor == 1.0 and r.n_ctx_orig == 4096 and (r.beta_fast, r.beta_slow) == (32.0, 1.0)
    # YaRN's magnitude 1 + 0.1 ln(4), divided by what the kernel multiplies in: 1 in all
    assert close(r.attn_factor, 1.0)
    # the model's rope.scaling.attn_factor multiplies it; a user ext factor of 0 turns YaRN off
    assert close(resolve(ModelRope(**{**m.__dict__, "rope_attn_factor": 0.5})).attn_factor, 0.5)
    off = resolve(m, RopeOptions(yarn_ext_factor=0.0, yarn_attn_factor=0.8))
    assert off.ext_factor == 0.0 and close(off.attn_factor, 0.8)
    # a log multiplier (DeepSeek-style metadata): mscale(1) / mscale(log_mul), then the kernel's factor out
    lm = resolve(ModelRope(**{**m.__dict__, "yarn_log_mul": 0.707}))
    want = (1 + 0.1 * math.log(4)) / (1 + 0.1 * 0.707 * math.log(4)) / (1 + 0.1 * math.log(4))
    assert close(lm.attn_factor, want)
    # --rope-scaling yarn on a plain model
    r = resolve(ModelRope(freq_scale=1.0, n_ctx_train=512), RopeOptions(scaling_type="yarn", freq_scale=0.5))
    assert r.ext_factor == 1.0 and r.freq_scale == 0.5 and r.n_ctx_orig == 512


@pytest.fixture(scope="module", params=["llama", "qwen3", "gemma3"])
def yarn_model(request, tmp_path_factory):
    arch = request.param
    path = write_tiny_decoder(tmp_path_factory.mktemp(arch) / f"{arch}-yarn.gguf", arch,
                              n_layer=6 if arch == "gemma3" else 2, rope_scaling=YARN_META)
    return arch, path


def test_yarn_model_matches_numpy_reference(yarn_model):
    arch, path = yarn_model
    ref = ReferenceModel(path)
    assert ref.p.rope_ext_factor == 1.0 and ref.p.rope_scale == 0.25 and ref.p.rope_n_ctx_orig == 4096
    toks = tokens(40)
    want = ref.logits(toks)
    llm = Llama(path, n_ctx=64, n_threads=2, cache_type_k="f32", cache_type_v="f32")
    got = llm.eval(toks, all_logits=True)
    tol = 2e-3 if arch == "gemma3" else 2e-5  # gemma3's GELU uses ggml's F16 table
    assert np.abs(got - want).max() < tol * np.abs(want).max()
    # and YaRN changes the answer: the same model without it differs
    plain = ReferenceModel(path, RopeOptions(scaling_type="none")).logits(toks)
    assert np.abs(plain - want).max() > 0.02 * np.abs(want).max()


def test_flags_give_what_the_metadata_gives(tmp_path):
    """--rope-scaling yarn --rope-scale 4 --yarn-orig-ctx 4096 on a model without scaling
    metadata computes what a model declaring that scaling computes."""
    plain = write_tiny_decoder(tmp_path / "plain.gguf", "qwen3", seed=3)
    declared = write_tiny_decoder(tmp_path / "declared.gguf", "qwen3", seed=3, rope_scaling=YARN_META)
    opts = RopeOptions(scaling_type="yarn", freq_scale=0.25, yarn_orig_ctx=4096)
    toks = tokens(30, seed=4)
    a = Llama(plain, n_ctx=64, rope=opts, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    b = Llama(declared, n_ctx=64, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    np.testing.assert_array_equal(a, b)
    want = ReferenceModel(plain, opts).logits(toks)
    assert np.abs(a - want).max() < 2e-5 * np.abs(want).max()


@pytest.mark.parametrize("opts", [
    RopeOptions(yarn_ext_factor=0.5, yarn_beta_fast=16.0, yarn_beta_slow=2.0),
    RopeOptions(yarn_orig_ctx=64),
    RopeOptions(scaling_type="linear", freq_scale=0.5, freq_base=50000.0),
])
def test_yarn_and_linear_overrides_match_reference(tmp_path, opts):
    path = write_tiny_decoder(tmp_path / "llama-yarn.gguf", "llama", rope_scaling=YARN_META)
    toks = tokens(24, seed=5)
    want = ReferenceModel(path, opts).logits(toks)
    got = Llama(path, n_ctx=64, rope=opts, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    assert np.abs(got - want).max() < 2e-5 * np.abs(want).max()


def test_yarn_k_shift_equals_decoding_at_the_shifted_positions(yarn_model):
    """A context shift re-rotates cached K by the position delta: with YaRN the angle is
    still linear in the position, and the magnitude was applied once, when K was written."""
    arch, path = yarn_model
    toks = tokens(16, seed=6)
    llm = Llama(path, n_ctx=64, cache_type_k="f32", cache_type_v="f32")
    fresh = llm.eval(toks, pos0=5, all_logits=True)
    llm.kv.clear()
    llm.eval(toks[:10], pos0=9)
    llm.kv.seq_add(0, -1, -1, -4)         # positions 9.. become 5..
    shifted = llm.eval(toks[10:], all_logits=True)
    np.testing.assert_allclose(shifted, fresh[10:], atol=1e-4 * np.abs(fresh).max())


def test_bad_rope_values_are_load_errors(tmp_path):
    path = write_tiny_decoder(tmp_path / "m.gguf", "llama", rope_scaling={"type": "yarn", "factor": 0.0})
    with pytest.raises(ValueError):
        Llama(path, n_ctx=16, rope=RopeOptions(freq_base=-1.0))
    # a yarn model with no factor: freq_scale 1, YaRN's mixing is then the identity
    llm = Llama(path, n_ctx=16)
    assert llm.n_ctx == 16
    with pytest.raises(ModelLoadError):
        Llama(write_tiny_decoder(tmp_path / "z.gguf", "llama", rope_scaling={"factor": -2.0}), n_ctx=16)
