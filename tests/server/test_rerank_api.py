"""Reranking end to end (a MiniLM with a classifier head, `--rerank`): the four routes,
Jina's and TEI's shapes, ordering, `top_n`, `return_text`, scores equal to the library's;
and decoder embeddings (SmolLM2 with `--embedding --pooling mean|last`) equal to the
library's vectors."""

from __future__ import annotations

import time

import numpy as np
import pytest

from helpers.server_process import ServerProcess
from helpers.tiny_models import write_reranker_from
from pyllama.llama import Llama

QUERY = "What is a panda?"
DOCS = ["hi", "it is a bear",
        "The giant panda, sometimes called a panda bear, is a bear species endemic to China.",
        {"text": "Pandas eat bamboo."}]


@pytest.fixture(scope="module")
def reranker(minilm_path, tmp_path_factory):
    return write_reranker_from(minilm_path, tmp_path_factory.mktemp("rerank") / "reranker.gguf")


@pytest.fixture(scope="module")
def server(reranker):
    s = ServerProcess(reranker, "--rerank", "-np", "2", "-c", "1024", "-t", "2")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def expected(reranker) -> list[float]:
    llm = Llama(reranker, embedding=True, n_threads=2)
    try:
        return llm.rerank(QUERY, [d if isinstance(d, str) else d["text"] for d in DOCS])
    finally:
        llm.close()


@pytest.mark.parametrize("route", ["/rerank", "/reranking", "/v1/rerank", "/v1/reranking"])
def test_jina_shape_sorted_with_library_scores(server, expected, route):
    r = server.post(route, {"model": "m", "query": QUERY, "documents": DOCS})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "m" and body["object"] == "list"
    results = body["results"]
    assert sorted(e["index"] for e in results) == list(range(len(DOCS)))
    scores = [e["relevance_score"] for e in results]
    assert scores == sorted(scores, reverse=True)
    for e in results:
        assert abs(e["relevance_score"] - expected[e["index"]]) < 1e-4
    assert body["usage"]["prompt_tokens"] == body["usage"]["total_tokens"] > 0


def test_top_n_and_tei_shape(server, expected):
    top = server.post("/rerank", {"query": QUERY, "documents": DOCS, "top_n": 2}).json()["results"]
    assert [e["index"] for e in top] == list(np.argsort(expected)[::-1][:2])
    tei = server.post("/rerank", {"query": QUERY, "texts": DOCS[:3], "return_text": True}).json()
    assert isinstance(tei, list) and set(tei[0]) == {"index", "score", "text"}
    assert tei[0]["text"] == DOCS[tei[0]["index"]]


@pytest.mark.parametrize("body,message", [
    ({"documents": ["a"]}, "\"query\" must be provided"),
    ({"query": 1, "documents": ["a"]}, "\"query\" must be a string"),
    ({"query": "q", "documents": []}, "\"documents\" must be a non-empty string array"),
    ({"query": "q", "documents": [1]}, "\"documents\" must be a non-empty string array"),
    ({"query": "q", "documents": ["a"], "top_n": -1}, "top_n"),
])
def test_bad_requests(server, body, message):
    r = server.post("/rerank", body)
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    assert server.get("/health").status_code == 200


def test_a_huge_query_or_document_is_refused_at_once(server):
    big = "panda " * 2_500_000  # 15 MB
    for body in ({"query": big, "documents": ["a"]}, {"query": "q", "documents": ["a", big]}):
        t0 = time.monotonic()
        r = server.post("/rerank", body)
        assert time.monotonic() - t0 < 20 and r.status_code == 500, r.text
        assert "input is too large to process" in r.json()["error"]["message"]
    assert server.post("/rerank", {"query": QUERY, "documents": DOCS[:1]}).status_code == 200


def test_rank_pooling_on_the_embedding_route_gives_scores(server, expected):
    r = server.post("/embedding", {"content": "x"}).json()
    assert len(r[0]["embedding"]) == 1 and len(r[0]["embedding"][0]) == 1  # the head's one output


@pytest.mark.parametrize("pooling", ["mean", "last"])
def test_decoder_embeddings_equal_the_librarys(smollm2_path, pooling):
    s = ServerProcess(smollm2_path, "--embedding", "--pooling", pooling, "-np", "2", "-c", "1024", "-t", "2")
    try:
        texts = ["The cat sits on the mat.", "Stock markets fell sharply today."]
        got = [d["embedding"] for d in s.post("/v1/embeddings", {"input": texts}).json()["data"]]
        llm = Llama(smollm2_path, embedding=True, pooling=pooling, n_threads=2, n_ctx=512)
        try:
            want = llm.embed(texts)
        finally:
            llm.close()
        assert np.abs(np.asarray(got) - want).max() < 1e-4
        assert s.post("/completion", {"prompt": "x"}).status_code == 501
    finally:
        s.stop()
