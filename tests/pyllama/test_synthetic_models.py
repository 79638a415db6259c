"""Forward passes of every supported architecture against the numpy reference
(tests/helpers/reference_forward.py), on small random-weight GGUF files."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tiny_models import T, write_tiny_bert, write_tiny_decoder, write_tiny_llama
from helpers.reference_forward import ReferenceModel

from pyllama import Batch, ContextOverflow, Llama, ModelLoadError

ARCHS = ["llama", "qwen2", "qwen3", "gemma3"]


@pytest.fixture(scope="module", params=ARCHS)
def tiny(request, tmp_path_factory):
    arch = request.param
    # gemma3: six layers so both sliding-window (0-4) and global (5) layers run; window 4
    path = write_tiny_decoder(tmp_path_factory.mktemp(arch) / f"{arch}.gguf", arch, n_layer=6 if arch == "gemma3" else 2)
    return arch, path, ReferenceModel(path)


def tokens(n: int, seed: int = 1) -> list[int]:
    return np.random.default_rng(seed).integers(0, 47, n).tolist()


@pytest.mark.parametrize("cache", ["f32", "f16", "q8_0"])
def test_logits_match_numpy_reference(tiny, cache):
    arch, path, ref = tiny
    toks = tokens(12)
    want = ref.logits(toks)
    llm = Llama(path, n_ctx=64, n_threads=2, cache_type_k=cache, cache_type_v=cache)
    got = llm.eval(toks, all_logits=True)
    # F32 weights and cache: float rounding only; gemma3's GELU uses ggml's F16 table
    tol = {"f32": 2e-3 if arch == "gemma3" else 2e-5, "f16": 2e-2, "q8_0": 6e-2}[cache]
    assert np.abs(got - want).max() < tol * np.abs(want).max()
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9


def test_quantized_weights_match_reference(tmp_path):
    path = write_tiny_decoder(tmp_path / "q.gguf", "qwen2", weight_type=T.Q8_0)
    toks = tokens(10)
    want = ReferenceModel(path).logits(toks)
    got = Llama(path, n_ctx=32, cache_type_k="f32", cache_type_v="f32").eval(toks, all_logits=True)
    # activations are quantized to Q8_0 like llama.cpp's
    assert np.abs(got - want).max() < 0.03 * np.abs(want).max()


def test_rope_frequency_factors(tmp_path):
    path = write_tiny_decoder(tmp_path / "l31.gguf", "llama", rope_freqs=True)
    toks = tokens(12)
    want = ReferenceModel(path).logits(toks)
    llm = Llama(path, n_ctx=32, cache_type_k="f32", cache_type_v="f32")
    np.testing.assert_allclose(llm.eval(toks, all_logits=True), want, atol=2e-5 * np.abs(want).max())
    llm.kv.clear()
    llm.eval(toks[:6], pos0=2)                # K re-rotation honours the factors too
    llm.kv.seq_add(0, -1, -1, -2)
    np.testing.assert_allclose(llm.eval(toks[6:], all_logits=True), want[6:], atol=1e-4)


def test_incremental_decode_equals_one_batch(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=64, n_threads=2)
    toks = tokens(10)
    whole = llm.eval(toks, all_logits=True)
    llm.kv.clear()
    llm.eval(toks[:6])
    rest = [llm.eval([t]) for t in toks[6:]]
    # one token at a time reuses the cache: same values (reductions run in the same order)
    np.testing.assert_array_equal(np.array(rest), whole[6:])


def test_sequences_in_one_batch_are_bit_identical_to_alone(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=128, n_threads=2, n_ubatch=5)
    a, b = tokens(9, 2), tokens(13, 3)
    alone_a = llm.eval(a, seq_id=0, all_logits=True)
    llm.kv.clear()
    alone_b = llm.eval(b, seq_id=3, all_logits=True)
    llm.kv.clear()
    batch = Batch()
    for i in range(max(len(a), len(b))):    # interleaved, across micro-batch boundaries of 5
        if i < len(b):
            batch.add(b[i], i, 1, True)
        if i < len(a):
            batch.add(a[i], i, 0, True)
    out = llm.decode(batch)
    got_a = out[[j for j, s in enumerate(batch.seq_ids) if s == (0,)]]
    got_b = out[[j for j, s in enumerate(batch.seq_ids) if s == (1,)]]
    np.testing.assert_array_equal(got_a, alone_a)
    np.testing.assert_array_equal(got_b, alone_b)


def test_thread_count_does_not_change_logits(tiny):
    _, path, _ = tiny
    toks = tokens(11)
    one = Llama(path, n_ctx=32, n_threads=1).eval(toks, all_logits=True)
    two = Llama(path, n_ctx=32, n_threads=2).eval(toks, all_logits=True)
    np.testing.assert_array_equal(one, two)


def test_shared_prefix_and_seq_cp(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=64)
    prefix, s1, s2 = tokens(6, 4), tokens(3, 5), tokens(4, 6)
    full1 = llm.eval(prefix + s1, all_logits=True)[-1]
    llm.kv.clear()
    full2 = llm.eval(prefix + s2, all_logits=True)[-1]
    llm.kv.clear()
    llm.eval(prefix, seq_id=0)
    llm.kv.seq_cp(0, 1, -1, -1)              # seq 1 shares the prefix cells
    used = llm.kv.n_used
    np.testing.assert_array_equal(llm.eval(s1, seq_id=0), full1)
    np.testing.assert_array_equal(llm.eval(s2, seq_id=1), full2)
    assert llm.kv.n_used == used + len(s1) + len(s2)


def test_save_restore_continues_identically(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=64)
    toks = tokens(8, 7)
    llm.eval(toks[:5], seq_id=2)
    blob = llm.kv.seq_save(2)
    want = llm.eval(toks[5:], seq_id=2)
    llm.kv.clear()
    llm.eval(tokens(3, 8), seq_id=0)         # something else occupies the first cells
    llm.kv.seq_restore(4, blob)
    np.testing.assert_array_equal(llm.eval(toks[5:], seq_id=4), want)


def test_seq_add_shift_matches_decoding_at_shifted_positions(tmp_path):
    path = write_tiny_decoder(tmp_path / "l.gguf", "llama")
    toks = tokens(8, 9)
    llm = Llama(path, n_ctx=64, cache_type_k="f32", cache_type_v="f32")
    # decode at positions 3.., then shift to 0..: like decoding at 0.. from the start
    llm.eval(toks[:6], pos0=3)
    llm.kv.seq_add(0, -1, -1, -3)
    shifted = llm.eval(toks[6:], all_logits=True)
    llm.kv.clear()
    direct = llm.eval(toks, all_logits=True)[6:]
    np.testing.assert_allclose(shifted, direct, atol=1e-4)


def test_context_overflow_leaves_cache_unchanged(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=8)
    llm.eval(tokens(5))
    with pytest.raises(ContextOverflow):
        llm.eval(tokens(4))
    assert llm.kv.n_used == 5
    llm.eval(tokens(3))                       # still serving
    assert llm.kv.n_used == 8


def test_bad_batches_raise_value_error(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=8)
    with pytest.raises(ValueError, match="out of range"):
        llm.decode(Batch().add(10_000, 0, 0, True))
    with pytest.raises(ValueError, match="sequence id"):
        llm.decode(Batch().add(1, 0, 64, True))
    with pytest.raises(ValueError, match="positions"):
        llm.decode(Batch().add(1, -1, 0, True))
    with pytest.raises(ValueError, match="empty"):
        llm.decode(Batch())
    assert llm.kv.n_used == 0


def test_generate_greedy_and_seeded(tiny):
    _, path, ref = tiny
    llm = Llama(path, n_ctx=64)
    prompt = tokens(5, 10)
    greedy = list(llm.generate(prompt, max_tokens=6, stop_at_eog=False))
    seq = list(prompt)
    for _ in range(6):                        # the reference's argmax, step by step
        seq.append(int(ref.logits(seq)[-1].argmax()))
    assert greedy == seq[5:]
    a = list(llm.generate(prompt, max_tokens=8, temperature=1.0, seed=42, stop_at_eog=False))
    b = list(llm.generate(prompt, max_tokens=8, temperature=1.0, seed=42, stop_at_eog=False))
    assert a == b
    assert llm.timings.n_prompt == 5 and llm.timings.n_generated == 8


def test_unsupported_architecture_is_refused(tmp_path):
    bert = write_tiny_bert(tmp_path / "bert.gguf")
    with pytest.raises(ModelLoadError, match="'bert'"):
        Llama(bert)
    mamba = write_tiny_llama(tmp_path / "mamba.gguf", arch="mamba")
    with pytest.raises(ModelLoadError, match="'mamba'"):
        Llama(mamba)


def test_missing_tensor_is_a_load_error(tmp_path):
    path = write_tiny_llama(tmp_path / "broken.gguf", skip_tensors=("blk.1.ffn_up.weight",))
    with pytest.raises(ModelLoadError, match="blk.1.ffn_up"):
        Llama(path)


def test_fragmented_cache_is_compacted_without_changing_results(tiny):
    _, path, _ = tiny
    llm = Llama(path, n_ctx=32)
    llm.eval(tokens(4, 11), seq_id=0)
    llm.eval(tokens(20, 12), seq_id=1)
    seq2 = tokens(5, 13)
    llm.eval(seq2[:4], seq_id=2)
    llm.kv.seq_rm(1, -1, -1)                  # a 20-cell hole below sequence 2's cells
    assert llm.kv.fragmentation() > 0.5
    got = llm.eval(seq2[4:], seq_id=2)
    assert llm.kv.fragmentation() == 0.0
    fresh = Llama(path, n_ctx=32).eval(seq2, seq_id=0)
    np.testing.assert_array_equal(got, fresh)
