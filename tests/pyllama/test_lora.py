"""LoRA adapters in native code: at scale s an adapted model gives the logits of the
model whose weights were merged with s' B A (numpy reference), sequences with
different adapters share a batch without changing each other's results, and a
malformed adapter is a clear load error."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.lora_adapters import merged, random_pairs, weight_shapes, write_lora
from helpers.reference_forward import ReferenceModel
from helpers.tiny_models import write_tiny_decoder

from pyllama import Batch, Llama
from pyllama.lora import LoraLoadError

TINY_TARGETS = ["blk.0.attn_q.weight", "blk.0.attn_v.weight", "blk.1.attn_k.weight", "blk.1.attn_output.weight",
                "blk.0.ffn_gate.weight", "blk.1.ffn_up.weight", "blk.1.ffn_down.weight", "output.weight"]


def tokens(n: int, seed: int = 1, vocab: int = 47) -> list[int]:
    return np.random.default_rng(seed).integers(0, vocab, n).tolist()


def reference_with(path, deltas: dict[str, np.ndarray]) -> ReferenceModel:
    """The numpy reference model with W + delta for each named weight."""
    ref = ReferenceModel(path)
    for name, d in deltas.items():
        ref._cache[name] = ref.w(name) + d
    return ref


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("lora")
    path = write_tiny_decoder(folder / "llama.gguf", "llama", n_layer=2)
    pairs = random_pairs(weight_shapes(path, TINY_TARGETS), rank=4, seed=3, scale_a=0.3, scale_b=0.3)
    return folder, path, pairs


@pytest.mark.parametrize("dtype,alpha", [(np.float32, None), (np.float16, None), (np.float32, 8.0)])
def test_adapter_gives_the_merged_models_logits(tiny, dtype, alpha):
    folder, path, pairs = tiny
    adapter = write_lora(folder / f"a-{np.dtype(dtype).name}-{alpha}.gguf", pairs, alpha=alpha, dtype=dtype)
    toks = tokens(12)
    llm = Llama(path, n_ctx=64, n_threads=2, cache_type_k="f32", cache_type_v="f32", lora=[adapter])
    assert llm.lora_adapters[0].n_pairs == len(TINY_TARGETS)
    base = llm.eval(toks, all_logits=True)
    for scale in (1.0, 0.5, -0.7):
        llm.kv.clear()
        llm.set_lora_scales(0, {0: scale})
        got = llm.eval(toks, all_logits=True)
        want = reference_with(path, merged(pairs, scale, alpha, dtype)).logits(toks)
        # F32 weights and cache; an F16 adapter's activations go through F16 as in llama.cpp
        tol = 2e-5 if dtype == np.float32 else 2e-3
        assert np.abs(got - want).max() < tol * np.abs(want).max(), scale
        assert np.abs(got - base).max() > 0.05 * np.abs(base).max()  # the adapter does something
    llm.kv.clear()
    llm.set_lora_scales(0, {0: 0.0})
    assert np.array_equal(llm.eval(toks, all_logits=True), base)  # scale 0: the base model, bit for bit


def test_two_adapters_add_up(tiny):
    folder, path, pairs = tiny
    other = random_pairs(weight_shapes(path, TINY_TARGETS[:3]), rank=2, seed=9, scale_a=0.3, scale_b=0.3)
    a = write_lora(folder / "one.gguf", pairs)
    b = write_lora(folder / "two.gguf", other)
    llm = Llama(path, n_ctx=64, n_threads=2, cache_type_k="f32", cache_type_v="f32", lora=[a, b])
    toks = tokens(9, seed=4)
    llm.set_lora_scales(0, [0.5, 2.0])
    got = llm.eval(toks, all_logits=True)
    deltas = merged(pairs, 0.5)
    for name, d in merged(other, 2.0).items():
        deltas[name] = deltas.get(name, 0) + d
    want = reference_with(path, deltas).logits(toks)
    assert np.abs(got - want).max() < 2e-5 * np.abs(want).max()


def test_sequences_with_different_adapters_share_a_batch(tiny):
    """Each sequence's rows are bit-identical to the same sequence decoded alone."""
    folder, path, pairs = tiny
    adapter = write_lora(folder / "batch.gguf", pairs)
    llm = Llama(path, n_ctx=128, n_threads=2, lora=[adapter])
    seqs = {0: (tokens(7, 1), 1.0), 1: (tokens(5, 2), 0.0), 2: (tokens(9, 3), -0.5)}
    alone = {}
    for sid, (toks, scale) in seqs.items():
        llm.kv.clear()
        llm.set_lora_scales(sid, [scale])
        alone[sid] = llm.eval(toks, seq_id=sid, all_logits=True)
    llm.kv.clear()
    b = Batch()
    for sid, (toks, _) in seqs.items():
        for i, t in enumerate(toks):
            b.add(t, i, sid, True)
    out = llm.decode(b)
    at = 0
    for sid, (toks, _) in seqs.items():
        assert np.array_equal(out[at:at + len(toks)], alone[sid]), sid
        at += len(toks)


def test_generate_takes_per_call_scales(tiny):
    folder, path, pairs = tiny
    adapter = write_lora(folder / "gen.gguf", pairs)
    llm = Llama(path, n_ctx=64, n_threads=1, lora=[adapter])
    toks = tokens(6, seed=8)
    plain = list(llm.generate(toks, max_tokens=6, stop_at_eog=False))
    adapted = list(llm.generate(toks, max_tokens=6, stop_at_eog=False, lora={0: 1.0}))
    assert llm.lora_scales(0) == [1.0]
    again = list(llm.generate(toks, max_tokens=6, stop_at_eog=False, lora={}))
    assert again == plain and adapted != plain
    with pytest.raises(ValueError, match="out of range"):
        llm.set_lora_scales(0, {3: 1.0})


def test_smollm2_adapter_matches_merged_weights(smollm2_path, tmp_path):
    """A real Q4_1 model: with the adapter at scale s, its logits sit as close to the
    float64 logits of the model with W + s B A as the plain model's sit to its own
    float64 logits (quantization noise), while the adapter moves them much further."""
    targets = [f"blk.{i}.{n}" for i in (0, 7, 19) for n in ("attn_q.weight", "attn_v.weight", "ffn_up.weight",
                                                            "ffn_down.weight")]
    pairs = random_pairs(weight_shapes(smollm2_path, targets), rank=8, seed=5, scale_a=0.1, scale_b=0.1)
    adapter = write_lora(tmp_path / "smol-lora.gguf", pairs, alpha=16.0, dtype=np.float16)
    llm = Llama(smollm2_path, n_ctx=64, n_threads=2, lora=[adapter])
    toks = llm.tokenize("The capital of France is Paris, and the capital of Italy is")
    scale = 0.75
    base = llm.eval(toks, all_logits=True)
    llm.kv.clear()
    llm.set_lora_scales(0, {0: scale})
    got = llm.eval(toks, all_logits=True)
    ref = ReferenceModel(smollm2_path)
    want_base = ref.logits(toks)
    for name, d in merged(pairs, scale, 16.0, np.float16).items():
        ref._cache[name] = ref.w(name) + d
    want = ref.logits(toks)
    noise = np.abs(base - want_base).mean()
    err = np.abs(got - want).mean()
    effect = np.abs(want - want_base).mean()
    print(f"mean |logit error|: plain {noise:.3f}, adapted {err:.3f}; the adapter moves logits by {effect:.3f}")
    assert effect > 5 * noise, (effect, noise)
    assert err < 1.5 * noise, (err, noise)
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9


# -- malformed adapters ----------------------------------------------------------------
def test_malformed_adapters_are_clear_load_errors(tiny):
    folder, path, pairs = tiny
    one = {"blk.0.attn_q.weight": pairs["blk.0.attn_q.weight"]}
    a, b = one["blk.0.attn_q.weight"]
    llm = Llama(path, n_ctx=32)
    cases = [
        (write_lora(folder / "t.gguf", {"blk.0.attn_q.weight": (b.T.copy(), a.T.copy())}), "incorrect shape"),
        (write_lora(folder / "arch.gguf", one, arch="gemma3"), "architecture 'gemma3'"),
        (write_lora(folder / "model.gguf", one, general_type="model"), "general.type"),
        (write_lora(folder / "cv.gguf", one, adapter_type="control_vector"), "adapter.type"),
        (write_lora(folder / "half.gguf", one, skip=("blk.0.attn_q.weight.lora_b",)), "lora_b is missing"),
        (write_lora(folder / "nobase.gguf", {"blk.5.attn_q.weight": (a, b)}), "does not have"),
        (write_lora(folder / "rank.gguf", {"blk.0.attn_q.weight": (a, np.zeros((b.shape[0], 3), np.float32))}),
         "rank"),
        (path, "general.type"),  # a model, not an adapter
    ]
    for file, message in cases:
        with pytest.raises(LoraLoadError, match=message):
            llm.load_lora(file)
    with pytest.raises(LoraLoadError, match="cannot open"):
        llm.load_lora(folder / "missing.gguf")
    assert llm.lora_adapters == []
    truncated = folder / "trunc.gguf"
    truncated.write_bytes(write_lora(folder / "ok.gguf", one).read_bytes()[:200])
    with pytest.raises(LoraLoadError):
        llm.load_lora(truncated)


@pytest.mark.parametrize("arch", ["qwen2", "qwen3", "gemma3"])
def test_other_architectures(tmp_path, arch):
    """Biases, Q/K norms, GeGLU and post-norms around the adapted matrices."""
    path = write_tiny_decoder(tmp_path / f"{arch}.gguf", arch, n_layer=6 if arch == "gemma3" else 2)
    targets = [t for t in TINY_TARGETS if t != "output.weight"]
    pairs = random_pairs(weight_shapes(path, targets), rank=4, seed=7, scale_a=0.3, scale_b=0.3)
    adapter = write_lora(tmp_path / "a.gguf", pairs, arch=arch)
    llm = Llama(path, n_ctx=64, n_threads=2, cache_type_k="f32", cache_type_v="f32", lora=[adapter])
    llm.set_lora_scales(0, [0.8])
    toks = tokens(10)
    got = llm.eval(toks, all_logits=True)
    want = reference_with(path, merged(pairs, 0.8)).logits(toks)
    tol = 2e-3 if arch == "gemma3" else 2e-5  # gemma3's GELU uses ggml's F16 table
    assert np.abs(got - want).max() < tol * np.abs(want).max()
