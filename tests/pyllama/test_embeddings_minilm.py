"""all-MiniLM-L6-v2 (bert, F16): llama.cpp's recorded embeddings, a float64 numpy
reference of the same weights for every pooling and normalization, batching, limits,
and a reranker made of MiniLM's weights plus a classifier head."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import reference_encoder as ref
from helpers.reference_encoder import ReferenceEncoder
from helpers.tiny_models import write_reranker_from

from pyllama import Batch, Llama, ModelLoadError
from pyllama.errors import InputTooLarge, InvalidRequest, PromptTooLong

DATA = Path(__file__).resolve().parents[1] / "data" / "reference"
TEXTS = ["The cat sits on the mat.", "How do I bake sourdough bread?", "🦙 llamas and alpacas", "ok"]


@pytest.fixture(scope="module")
def minilm(minilm_path):
    return Llama(minilm_path, embedding=True, n_threads=2)


@pytest.fixture(scope="module")
def reference(minilm_path):
    return ReferenceEncoder(minilm_path)


def records() -> list[dict]:
    lines = (DATA / "all-minilm-l6-v2-f16.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "embedding"]


def test_matches_llama_cpp_embeddings(minilm):
    recs = records()
    assert minilm.pooling_type == "mean" and minilm.is_encoder and minilm.n_embd == 384
    got = minilm.embed([r["input"] for r in recs])  # mean pooling, euclidean norm: llama-server's /v1/embeddings
    assert got.shape == (len(recs), 384) and got.dtype == np.float32
    for r, vec in zip(recs, got):
        assert minilm.embedding_tokens(r["input"]) == r["tokens"]
        want = np.asarray(r["embedding"])
        cos = vec @ want / np.linalg.norm(vec) / np.linalg.norm(want)
        assert cos >= 0.9999 and np.abs(vec - want).max() <= 1e-3, (r["input"], cos)


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
@pytest.mark.parametrize("mode", [-1, 0, 1, 2, 3])
def test_pooling_and_normalization_match_numpy(minilm, reference, pooling, mode):
    got = minilm.embed(TEXTS, pooling=pooling, normalize=mode)
    for text, vec in zip(TEXTS, got):
        want = ref.normalize(ref.pool(reference.hidden(minilm.embedding_tokens(text)), pooling), mode)
        assert np.abs(vec - want).max() <= 3e-3 * np.abs(want).max(), (text, pooling, mode)


def test_pooling_none_gives_every_token_unnormalized(minilm, reference):
    got = minilm.embed(TEXTS[:2], pooling="none", normalize=2)
    for text, rows in zip(TEXTS, got):
        want = reference.hidden(minilm.embedding_tokens(text))
        assert rows.shape == want.shape
        assert np.abs(rows - want).max() <= 3e-3 * np.abs(want).max()


def test_inputs_of_every_shape(minilm):
    ids = minilm.embedding_tokens(TEXTS[0])
    one = minilm.embed(TEXTS[0])
    assert one.shape == (1, 384)
    np.testing.assert_array_equal(minilm.embed(ids), one)
    mixed = minilm.embed([TEXTS[1], ids])
    np.testing.assert_array_equal(mixed[1], one[0])
    np.testing.assert_array_equal(mixed[0], minilm.embed(TEXTS[1])[0])
    with pytest.raises(InvalidRequest):
        minilm.embed([[]])
    with pytest.raises(InvalidRequest):
        minilm.embed([[1, 10 ** 6]])


def sequence_batch(seqs: dict[int, list[int]], interleave: bool = False) -> Batch:
    b = Batch()
    if not interleave:
        for s, toks in seqs.items():
            for p, t in enumerate(toks):
                b.add(t, p, s, True)
        return b
    longest = max(map(len, seqs.values()))
    for p in range(longest):
        for s, toks in seqs.items():
            if p < len(toks):
                b.add(toks[p], p, s, True)
    return b


@pytest.mark.parametrize("n_ubatch, interleave", [(512, False), (512, True), (16, True)])
def test_sequences_in_one_batch_are_bit_identical_to_alone(minilm_path, n_ubatch, interleave):
    llm = Llama(minilm_path, embedding=True, n_threads=2, n_ubatch=n_ubatch)
    seqs = {s: llm.embedding_tokens(t) for s, t in zip((3, 0, 7, 1), TEXTS)}
    alone = {s: llm.decode(sequence_batch({s: toks})) for s, toks in seqs.items()}
    b = sequence_batch(seqs, interleave)
    rows = llm.decode(b)
    assert rows.shape == (len(b), 384)
    for s in seqs:
        mine = rows[[i for i, ids in enumerate(b.seq_ids) if ids[0] == s]]
        np.testing.assert_array_equal(mine, alone[s])


def test_decode_returns_the_flagged_tokens_hidden_states(minilm):
    toks = minilm.embedding_tokens(TEXTS[1])
    b = Batch()
    for p, t in enumerate(toks):
        b.add(t, p, 0, p in (0, 3))
    rows = minilm.decode(b)
    every = minilm.embed([toks], pooling="none")[0]
    np.testing.assert_array_equal(rows, every[[0, 3]])


def test_limits(minilm_path, minilm):
    with pytest.raises(ModelLoadError, match="'bert'.*embedding=True"):
        Llama(minilm_path)
    small = Llama(minilm_path, embedding=True, n_ubatch=8)
    with pytest.raises(InputTooLarge, match="increase the physical batch size") as e:
        small.embed("a sentence that is longer than eight tokens, surely")
    assert e.value.extra["n_ubatch"] == 8
    b = Batch().add_sequence(list(range(1000, 1012)), 0, 0)
    with pytest.raises(ValueError, match="n_ubatch = 8"):
        small.decode(b)
    with pytest.raises(ValueError, match="no logits"):
        minilm.decode(b, embeddings=False)
    big = Llama(minilm_path, embedding=True, n_ubatch=1024)
    with pytest.raises(PromptTooLong):  # 512 position embeddings
        big.embed([[1000] * 600])
    with pytest.raises(ValueError, match="position 600"):
        big.decode(Batch().add(1000, 600, 0, True))
    with pytest.raises(InvalidRequest, match="classifier"):
        minilm.rerank("q", ["d"])


@pytest.fixture(scope="module")
def reranker(minilm_path, tmp_path_factory):
    return write_reranker_from(minilm_path, tmp_path_factory.mktemp("rr") / "minilm-rerank.gguf")


def test_reranker_scores_match_numpy(reranker):
    llm = Llama(reranker, embedding=True, n_threads=2)
    assert llm.pooling_type == "rank" and llm.n_cls_out == 1
    query = "What do cats like?"
    docs = ["Cats like to sleep on warm mats.", "Stock markets fell sharply today.", "Bread needs flour."]
    toks = llm.rerank_tokens(query, docs[0])
    q, d = llm.tokenize(query, add_special=False), llm.tokenize(docs[0], add_special=False)
    assert toks == [101] + q + [102] + d + [102]      # [CLS] query [SEP] doc [SEP]
    scores = llm.rerank(query, docs)
    r = ReferenceEncoder(reranker)
    want = [r.classify(r.hidden(llm.rerank_tokens(query, doc))[0])[0] for doc in docs]
    np.testing.assert_allclose(scores, want, atol=5e-3)
    assert len(set(np.argsort(scores))) == 3
    np.testing.assert_array_equal(llm.embed([llm.rerank_tokens(query, x) for x in docs])[:, 0], scores)


def test_rerank_template_from_the_gguf(minilm_path, tmp_path):
    path = write_reranker_from(minilm_path, tmp_path / "tmpl.gguf", rerank_template="[CLS]{document}[SEP]{query}")
    llm = Llama(path, embedding=True)
    q, d = llm.tokenize("a query", add_special=False), llm.tokenize("a document", add_special=False)
    assert llm.rerank_tokens("a query", "a document") == [101] + d + [102] + q


def test_vectors_do_not_depend_on_the_thread_count(minilm_path, minilm):
    one = Llama(minilm_path, embedding=True, n_threads=1)
    np.testing.assert_array_equal(one.embed(TEXTS), minilm.embed(TEXTS))
