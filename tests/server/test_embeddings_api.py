"""Embeddings end to end: MiniLM (`--embedding`) against llama.cpp's own vectors through
the openai SDK (float and base64) and the native routes, pooling none, the errors and
limits as llama-server gives them, and several requests at once on -np 4 giving the
vectors each gives alone."""

from __future__ import annotations

import base64
import json
import threading
import time
from pathlib import Path

import numpy as np
import openai
import pytest

from helpers.server_process import ServerProcess

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "reference" / "all-minilm-l6-v2-f16.jsonl"


def records() -> list[dict]:
    return [r for r in map(json.loads, REFERENCE.read_text().splitlines()) if r.get("kind") == "embedding"]


@pytest.fixture(scope="module")
def server(minilm_path):
    s = ServerProcess(minilm_path, "--embedding", "-np", "4", "-c", "2048", "-t", "2")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def close(got, want) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    cos = got @ want / np.linalg.norm(got) / np.linalg.norm(want)
    assert cos >= 0.9999 and np.abs(got - want).max() <= 1e-3, (cos, np.abs(got - want).max())


def test_openai_sdk_float_and_base64_match_llama_cpp(client):
    recs = records()
    assert recs
    r = client.embeddings.create(model="minilm", input=[x["input"] for x in recs])  # the SDK asks base64, decodes
    assert [d.index for d in r.data] == list(range(len(recs)))
    for d, rec in zip(r.data, recs):
        close(d.embedding, rec["embedding"])
    assert r.usage.prompt_tokens == r.usage.total_tokens == sum(len(x["tokens"]) for x in recs)
    f = client.embeddings.create(model="minilm", input=recs[0]["input"], encoding_format="float")
    close(f.data[0].embedding, recs[0]["embedding"])
    b = client.embeddings.create(model="minilm", input=recs[0]["input"], encoding_format="base64")
    close(np.frombuffer(base64.b64decode(b.data[0].embedding), np.float32), recs[0]["embedding"])


def test_raw_base64_and_token_input(server):
    rec = records()[0]
    r = server.post("/v1/embeddings", {"input": rec["tokens"], "encoding_format": "base64"}).json()
    assert r["data"][0]["encoding_format"] == "base64" and r["object"] == "list"
    close(np.frombuffer(base64.b64decode(r["data"][0]["embedding"]), np.float32), rec["embedding"])
    mixed = server.post("/v1/embeddings", {"input": [rec["tokens"], rec["input"]]}).json()
    close(mixed["data"][0]["embedding"], mixed["data"][1]["embedding"])


def test_native_routes(server):
    rec = records()[0]
    for route in ("/embedding", "/embeddings"):
        r = server.post(route, {"content": rec["input"]}).json()
        assert [e["index"] for e in r] == [0] and len(r[0]["embedding"]) == 1
        close(r[0]["embedding"][0], rec["embedding"])
    raw = server.post("/embedding", {"content": rec["input"], "embd_normalize": -1}).json()[0]["embedding"][0]
    assert abs(np.linalg.norm(raw) - 1) > 1e-3  # not normalized
    close(np.asarray(raw) / np.linalg.norm(raw), rec["embedding"])
    taxi = server.post("/embedding", {"content": rec["input"], "embd_normalize": 1}).json()[0]["embedding"][0]
    assert abs(np.abs(taxi).sum() - 1) < 1e-4
    content = server.post("/v1/embeddings", {"content": rec["input"]}).json()  # "content": the native answer
    assert isinstance(content, list) and content[0]["index"] == 0


def test_content_part_inputs(server):
    """Each input may be an object with a `content` array of chat parts (llama-server's
    multimodal embedding shape): text parts count as their text; media needs a projector."""
    rec = records()[0]
    half = len(rec["input"]) // 2
    parts = [{"type": "text", "text": rec["input"][:half]}, {"type": "text", "text": rec["input"][half:]}]
    r = server.post("/v1/embeddings", {"input": [{"content": parts}, rec["input"]]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    close(data[0]["embedding"], rec["embedding"])
    close(data[1]["embedding"], rec["embedding"])
    one = server.post("/v1/embeddings", {"input": {"content": parts}}).json()["data"]
    assert len(one) == 1
    close(one[0]["embedding"], rec["embedding"])
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}
    r = server.post("/v1/embeddings", {"input": [{"content": [image, parts[0]]}]})
    assert r.status_code == 500 and r.json()["error"]["message"].startswith("image input is not supported")
    for bad in ({"content": "text"}, {"content": [{"type": "text", "text": 5}]}, {"content": [{"type": "video"}]}):
        r = server.post("/v1/embeddings", {"input": [bad]})
        assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error", r.text


@pytest.mark.parametrize("text", ["a" * 15_000_000, "hello, world " * 1_200_000, "\u20ac" * 2_000_000],
                         ids=["one-word", "words", "symbols"])  # ("\u20ac" is 6 bytes of JSON)
def test_a_huge_input_is_refused_at_once(server, text):
    """A 15 MB input is refused before it is tokenized (WordPiece in Python would take
    minutes), with the error the engine gives a long input, on every embedding route."""
    for route, body in (("/v1/embeddings", {"input": text}), ("/embedding", {"content": text}),
                        ("/v1/embeddings", {"input": ["short", text]})):
        t0 = time.monotonic()
        r = server.post(route, body)
        assert time.monotonic() - t0 < 20, route  # generous: the body alone is 15 MB of JSON
        assert r.status_code == 500 and "input is too large to process" in r.json()["error"]["message"], r.text
        assert "at least" in r.json()["error"]["message"]
    assert server.post("/v1/embeddings", {"input": "still serving"}).status_code == 200


@pytest.mark.parametrize("body,code,message", [
    ({}, 400, "\"input\" or \"content\" must be provided"),
    ({"input": [[]]}, 400, "Input content cannot be empty"),  # ("" is [CLS] [SEP] for BERT: not empty)
    ({"input": "x", "encoding_format": "hex"}, 400, "Can be either float or base64"),
    ({"input": [1.5]}, 400, "prompt"),
    ({"input": [10 ** 9]}, 400, "invalid tokens"),
    ({"input": "word " * 600}, 500, "input is too large to process. increase the physical batch size"),
])
def test_errors(server, body, code, message):
    r = server.post("/v1/embeddings", body)
    assert r.status_code == code and message in r.json()["error"]["message"], r.text
    assert server.get("/health").status_code == 200


def test_completions_are_refused(server):
    for route, body in (("/completion", {"prompt": "x"}), ("/v1/chat/completions",
                                                          {"messages": [{"role": "user", "content": "x"}]})):
        r = server.post(route, body)
        assert r.status_code == 501 and "Start it without `--embeddings`" in r.json()["error"]["message"]
    r = server.post("/rerank", {"query": "q", "documents": ["d"]})
    assert r.status_code == 501 and "--reranking" in r.json()["error"]["message"]


def test_concurrent_requests_give_the_vectors_each_gives_alone(server):
    recs = records()
    alone = {x["input"]: server.post("/embedding", {"content": x["input"]}).json()[0]["embedding"][0] for x in recs}
    got: dict[str, list] = {}
    errors: list = []

    def ask(rec):
        try:
            for _ in range(3):
                r = server.post("/embedding", {"content": rec["input"]})
                got.setdefault(rec["input"], []).append(r.json()[0]["embedding"][0])
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=ask, args=(x,)) for x in recs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    slots = server.get("/slots").json()  # embedding tasks show in /slots like any other, and end idle
    assert len(slots) == 4 and not any(s["is_processing"] for s in slots)
    for text, vectors in got.items():
        for v in vectors:
            assert np.abs(np.asarray(v) - np.asarray(alone[text])).max() < 1e-5


def test_pooling_none_gives_every_token(minilm_path):
    s = ServerProcess(minilm_path, "--embedding", "--pooling", "none", "-c", "512", "-t", "2")
    try:
        rec = records()[0]
        r = s.post("/embedding", {"content": rec["input"]}).json()
        rows = r[0]["embedding"]
        assert len(rows) == len(rec["tokens"]) and len(rows[0]) == 384
        mean = np.mean(np.asarray(rows), axis=0)
        close(mean / np.linalg.norm(mean), rec["embedding"])  # mean pooling of the same rows
        bad = s.post("/v1/embeddings", {"input": "x"})
        assert bad.status_code == 400 and "Pooling type 'none' is not OAI compatible" in bad.json()["error"]["message"]
    finally:
        s.stop()


def test_without_the_flag_embeddings_are_501(smollm2_path):
    s = ServerProcess(smollm2_path, "-c", "512", "-t", "2")
    try:
        r = s.post("/v1/embeddings", {"input": "x"})
        assert r.status_code == 501 and r.json()["error"]["type"] == "not_supported_error"
    finally:
        s.stop()
