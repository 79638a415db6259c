"""Encoders of the BERT family (bert, nomic-bert, jina-bert-v2) and decoder hidden
states on small random-weight GGUF files, against float64 numpy references;
malformed encoder files."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import reference_encoder as ref
from helpers.reference_encoder import ReferenceEncoder
from helpers.reference_forward import ReferenceModel
from helpers.tiny_models import T, write_tiny_bert, write_tiny_decoder, write_tiny_encoder

from pyllama import Batch, Llama, ModelLoadError

ENCODERS = {
    "bert": dict(arch="bert"),
    "bert-f16-fused": dict(arch="bert", weight_type=T.F16, fused_qkv=True),
    "nomic-bert": dict(arch="nomic-bert"),
    "jina-gate": dict(arch="jina-bert-v2", jina_ffn="gate"),
    "jina-fused-norms": dict(arch="jina-bert-v2", jina_ffn="fused", qk_norm=True, attn_norm_2=True),
    "jina-plain": dict(arch="jina-bert-v2", jina_ffn="plain", n_head=6, n_embd=48),  # 6 heads: two ALiBi steps
}


@pytest.fixture(scope="module", params=list(ENCODERS))
def encoder(request, tmp_path_factory):
    path = write_tiny_encoder(tmp_path_factory.mktemp("enc") / f"{request.param}.gguf", **ENCODERS[request.param])
    return Llama(path, embedding=True, n_threads=2), ReferenceEncoder(path)


def tokens(n: int, seed: int = 1) -> list[int]:
    return np.random.default_rng(seed).integers(5, 48, n).tolist()


def test_hidden_states_match_numpy_reference(encoder):
    llm, r = encoder
    for n, seed in ((1, 1), (7, 2), (19, 3)):
        toks = tokens(n, seed)
        got = llm.embed([toks], pooling="none")[0]
        want = r.hidden(toks)
        # GELU through ggml's F16 table and F16 K/V, as llama.cpp: a few 1e-3 of the scale
        assert np.abs(got - want).max() <= 3e-3 * np.abs(want).max(), (n, np.abs(got - want).max())


def test_pooled_and_normalized(encoder):
    llm, r = encoder
    seqs = [tokens(5, 4), tokens(11, 5)]
    for pooling in ("mean", "cls", "last"):
        got = llm.embed(seqs, pooling=pooling, normalize=2)
        for toks, vec in zip(seqs, got):
            want = ref.normalize(ref.pool(r.hidden(toks), pooling), 2)
            assert np.abs(vec - want).max() <= 5e-3


def test_sequences_in_one_batch_are_bit_identical_to_alone(encoder):
    llm, _ = encoder
    seqs = {2: tokens(6, 6), 0: tokens(9, 7), 5: tokens(3, 8)}
    alone = {s: llm.decode(_all(t, s)) for s, t in seqs.items()}
    b = Batch()
    for p in range(9):  # interleaved tokens of three sequences
        for s, t in seqs.items():
            if p < len(t):
                b.add(t[p], p, s, True)
    rows = llm.decode(b)
    for s in seqs:
        np.testing.assert_array_equal(rows[[i for i, ids in enumerate(b.seq_ids) if ids[0] == s]], alone[s])


def _all(toks: list[int], seq: int) -> Batch:
    b = Batch()
    for p, t in enumerate(toks):
        b.add(t, p, seq, True)
    return b


@pytest.mark.parametrize("head", [2, -1])
def test_classifier_head(tmp_path, head):
    path = write_tiny_encoder(tmp_path / "rr.gguf", "jina-bert-v2" if head < 0 else "bert", head=head,
                              pooling=4)
    llm, r = Llama(path, embedding=True), ReferenceEncoder(path)
    assert llm.pooling_type == "rank" and llm.n_cls_out == abs(head)
    seqs = [tokens(6, 9), tokens(4, 10)]
    got = llm.embed(seqs)                   # rank pooling: the head's outputs, unnormalized
    want = np.array([r.classify(r.hidden(t)[0]) for t in seqs])
    assert got.shape == (2, abs(head))
    np.testing.assert_allclose(got, want, atol=5e-3 * max(1.0, np.abs(want).max()))


def test_rank_pooling_needs_a_head(tmp_path):
    path = write_tiny_encoder(tmp_path / "e.gguf")
    with pytest.raises(ModelLoadError, match="classifier head"):
        Llama(path, embedding=True, pooling="rank")
    with pytest.raises(ValueError, match="pooling must be one of"):
        Llama(path, embedding=True, pooling="max")


@pytest.mark.parametrize("kw, match", [
    (dict(skip_tensors=("blk.1.ffn_up.weight",)), "missing .*tensor blk.1.ffn_up"),
    (dict(skip_tensors=("blk.0.attn_output_norm.bias",)), "blk.0.attn_output_norm.bias"),
    (dict(skip_tensors=("position_embd.weight",)), "position_embd"),
    (dict(shapes={"blk.0.attn_q.weight": (32, 64)}), "attn_q.*shape"),
    (dict(shapes={"blk.1.ffn_down.weight": (64, 50)}), "ffn_down.*shape"),
    (dict(shapes={"blk.0.attn_k.bias": (60,)}), "attn_k.bias|bk.*60"),
    (dict(shapes={"blk.0.layer_output_norm.weight": (2, 64)}), "layer_output_norm"),
    (dict(arch="nomic-bert", skip_tensors=("blk.0.ffn_gate.weight",)), "ffn_gate"),
    (dict(arch="nomic-bert", shapes={"blk.1.attn_qkv.weight": (190, 64)}), "attn_qkv"),
    (dict(arch="jina-bert-v2", jina_ffn="fused", shapes={"blk.0.ffn_up.weight": (150, 64)}), "ffn_up"),
    (dict(head=1, skip_tensors=("cls.output.bias",)), "cls.output.bias"),
    (dict(head=1, skip_tensors=("cls.weight", "cls.bias")), "missing tensor cls"),
])
def test_malformed_encoder_is_a_load_error(tmp_path, kw, match):
    path = write_tiny_encoder(tmp_path / "bad.gguf", **kw)
    with pytest.raises(ModelLoadError, match=match):
        Llama(path, embedding=True)


def test_an_encoder_needs_embedding_mode(tmp_path):
    with pytest.raises(ModelLoadError, match="'bert'"):
        Llama(write_tiny_bert(tmp_path / "b.gguf"))


DECODERS = ["llama", "qwen2", "qwen3", "gemma3"]


@pytest.fixture(scope="module", params=DECODERS)
def decoder(request, tmp_path_factory):
    arch = request.param
    path = write_tiny_decoder(tmp_path_factory.mktemp(arch) / f"{arch}.gguf", arch, n_layer=6 if arch == "gemma3" else 2)
    return Llama(path, embedding=True, n_ctx=128, n_threads=2, cache_type_k="f32", cache_type_v="f32"), \
        ReferenceModel(path)


def test_decoder_hidden_states_match_reference(decoder):
    llm, r = decoder
    assert not llm.is_encoder and llm.pooling_type == "none"   # no {arch}.pooling_type: none, as llama.cpp
    toks = np.random.default_rng(3).integers(0, 47, 12).tolist()
    rows = llm.decode(_all(toks, 0))                           # embedding mode: (n, n_embd) states
    want = r.hidden(toks)
    tol = 2e-3 if r.hp.arch == "gemma3" else 2e-5              # gemma3's GELU through ggml's F16 table
    assert rows.shape == want.shape and np.abs(rows - want).max() <= tol * np.abs(want).max()
    llm.kv.clear()
    logits = llm.decode(_all(toks, 0), embeddings=False)       # the same context still gives logits
    assert np.abs(logits - r.logits(toks)).max() <= tol * np.abs(r.logits(toks)).max()
    llm.kv.clear()


def test_decoder_embed_pools_and_frees_its_sequences(decoder):
    llm, r = decoder
    keep = [1, 2, 3, 4]
    llm.eval(keep, seq_id=0)                                   # another sequence's cache is left alone
    seqs = [np.random.default_rng(s).integers(0, 47, n).tolist() for s, n in ((4, 9), (5, 3))]
    for pooling in ("last", "mean"):
        got = llm.embed(seqs, pooling=pooling)
        for toks, vec in zip(seqs, got):
            want = ref.normalize(ref.pool(r.hidden(toks), pooling), 2)
            assert np.abs(vec - want).max() <= 3e-3
    assert llm.kv.n_used == len(keep) and llm.kv.seq_pos_max(0) == 3
    llm.kv.clear()
