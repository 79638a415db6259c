"""The library's high-level API (pyllama.completions) on SmolLM2 and MiniLM:
create_completion / __call__, create_chat_completion (streams, stop, logprobs,
response_format, tools), create_embedding, in llama-cpp-python's OpenAI shapes, on
the server's engine; and the hand-over between it and the low-level calls."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from pyllama import Llama
from pyllama.engine import EngineConfig
from pyllama.errors import InvalidRequest

TEMPLATES = Path(__file__).resolve().parents[1] / "data" / "chat_templates"
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def llm(smollm2_path):
    model = Llama("smollm2-135m", n_ctx=2048, n_threads=2)  # a default model name
    assert model.path == str(smollm2_path)
    yield model
    model.close()


def test_completion_is_the_greedy_continuation(llm):
    out = llm.create_completion(PROMPT, max_tokens=12, temperature=0)
    assert out["object"] == "text_completion" and out["id"].startswith("cmpl-") and out["model"] == llm.path
    assert set(out) >= {"id", "object", "created", "model", "choices", "usage"}
    choice = out["choices"][0]
    assert (choice["index"], choice["logprobs"], choice["finish_reason"]) == (0, None, "length")
    expected = llm.detokenize(list(llm.generate(PROMPT, max_tokens=12)))  # low-level, after the engine ran
    assert choice["text"] == expected
    assert out["usage"] == {"completion_tokens": 12, "prompt_tokens": 5, "total_tokens": 17,
                            "prompt_tokens_details": {"cached_tokens": 0}}
    again = llm(PROMPT, max_tokens=12, temperature=0, echo=True)  # the engine starts again
    assert again["choices"][0]["text"] == PROMPT + expected


def test_completion_stream_stop_and_logprobs(llm):
    whole = llm.create_completion(PROMPT, max_tokens=24, temperature=0, stop=["\n"], logprobs=3)
    choice = whole["choices"][0]
    assert choice["finish_reason"] == "stop" and "\n" not in choice["text"]
    content = choice["logprobs"]["content"]
    assert len(content) == whole["usage"]["completion_tokens"]
    assert all(len(c["top_logprobs"]) == 3 and c["logprob"] <= 0 for c in content)
    assert "".join(c["token"] for c in content).startswith(choice["text"])
    chunks = list(llm.create_completion(PROMPT, max_tokens=24, temperature=0, stop=["\n"], stream=True))
    assert all(c["object"] == "text_completion" and c["id"] == chunks[0]["id"] for c in chunks)
    assert "".join(c["choices"][0]["text"] for c in chunks) == choice["text"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])


def test_chat_completion_whole_and_streamed(llm):
    msgs = [{"role": "system", "content": "You are brief."}, {"role": "user", "content": "Name a color."}]
    out = llm.create_chat_completion(msgs, max_tokens=16, temperature=0, logprobs=True, top_logprobs=2)
    assert out["object"] == "chat.completion" and out["id"].startswith("chatcmpl-")
    msg = out["choices"][0]["message"]
    assert msg["role"] == "assistant" and msg["content"].strip()
    assert all(len(c["top_logprobs"]) == 2 for c in out["choices"][0]["logprobs"]["content"])
    chunks = list(llm.create_chat_completion(msgs, max_tokens=16, temperature=0, stream=True))
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": None}
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert text == msg["content"]
    assert chunks[-1]["choices"][0]["finish_reason"] == out["choices"][0]["finish_reason"]


def test_response_format_json_schema(llm):
    schema = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                               "population": {"type": "integer", "minimum": 0}},
              "required": ["name", "population"], "additionalProperties": False}
    out = llm.create_chat_completion([{"role": "user", "content": "A city as JSON"}], max_tokens=60, temperature=0,
                                     response_format={"type": "json_schema", "json_schema": {"schema": schema}})
    jsonschema.validate(json.loads(out["choices"][0]["message"]["content"]), schema)
    out = llm.create_completion("Some JSON:", max_tokens=40, temperature=0,
                                response_format={"type": "json_object", "schema": schema})
    jsonschema.validate(json.loads(out["choices"][0]["text"]), schema)


def test_tools(smollm2_path):
    model = Llama(smollm2_path, n_ctx=2048, n_threads=2)
    model.chat_template = (TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja").read_text()
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}]
    try:
        out = model.create_chat_completion([{"role": "user", "content": "Weather in Paris?"}], tools=tools,
                                           tool_choice="required", max_tokens=64, temperature=0)
        choice = out["choices"][0]
        assert choice["finish_reason"] == "tool_calls"
        call = choice["message"]["tool_calls"][0]
        assert call["type"] == "function" and call["function"]["name"] == "get_weather"
        assert "location" in json.loads(call["function"]["arguments"])
        chunks = list(model.create_chat_completion([{"role": "user", "content": "Weather in Paris?"}], tools=tools,
                                                   tool_choice="required", max_tokens=64, temperature=0,
                                                   stream=True))
        deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
        streamed = [d["tool_calls"][0] for d in deltas if d.get("tool_calls")]
        assert streamed[0]["function"]["name"] == "get_weather"
        assert "".join(s["function"].get("arguments", "") for s in streamed) == call["function"]["arguments"]
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    finally:
        model.close()


def test_concurrent_callers_share_the_engine(smollm2_path):
    model = Llama(smollm2_path, n_ctx=2048, n_threads=2)
    model.engine_config = EngineConfig(n_parallel=2)
    prompts = [PROMPT, "Once upon a time", "def fibonacci(n):"]
    try:
        alone = [model(p, max_tokens=10, temperature=0)["choices"][0]["text"] for p in prompts]
        together: dict = {}
        threads = [threading.Thread(target=lambda p=p: together.__setitem__(
            p, model(p, max_tokens=10, temperature=0)["choices"][0]["text"])) for p in prompts]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert [together[p] for p in prompts] == alone
    finally:
        model.close()


def test_low_level_calls_wait_for_open_streams(llm):
    stream = llm.create_completion(PROMPT, max_tokens=200, temperature=0, stream=True)
    next(stream)
    with pytest.raises(RuntimeError, match="close their streams first"):
        llm.eval(llm.tokenize("Hi"))
    stream.close()  # cancels the request
    assert llm.eval(llm.tokenize("Hi")).shape == (llm.n_vocab,)


def test_bad_arguments(llm):
    with pytest.raises(NotImplementedError, match="suffix"):
        llm.create_completion(PROMPT, suffix="x")
    with pytest.raises(TypeError, match="unexpected keyword argument"):
        llm.create_completion(PROMPT, temprature=0)
    with pytest.raises(InvalidRequest, match="Prompt contains invalid tokens"):
        llm.create_completion([10**7])
    with pytest.raises(InvalidRequest):
        llm.create_chat_completion([{"role": "robot", "content": "x"}])
    with pytest.raises(InvalidRequest, match="embedding=True"):
        llm.create_embedding("x")
    out = llm.create_completion(PROMPT, max_tokens=4, dry_multiplier=0.8, xtc_probability=0.5, seed=7)
    assert out["usage"]["completion_tokens"] == 4


def test_create_embedding(minilm_path):
    emb = Llama(minilm_path, embedding=True, n_threads=2)
    texts = ["The cat sits on the mat.", "A feline rests.", "Stocks fell sharply."]
    try:
        out = emb.create_embedding(texts)
        assert out["object"] == "list" and out["model"] == str(minilm_path)
        assert [d["index"] for d in out["data"]] == [0, 1, 2] and out["data"][0]["object"] == "embedding"
        vecs = np.array([d["embedding"] for d in out["data"]])
        np.testing.assert_allclose(vecs, emb.embed(texts), atol=1e-5)
        assert out["usage"]["prompt_tokens"] == sum(len(emb.embedding_tokens(t)) for t in texts)
        one = emb.create_embedding(texts[0])
        np.testing.assert_allclose(one["data"][0]["embedding"], vecs[0], atol=1e-5)
    finally:
        emb.close()


def test_a_dropped_model_stops_its_engine(smollm2_path):
    import gc
    model = Llama(smollm2_path, n_ctx=512, n_threads=1)
    assert model("Hi", max_tokens=2, temperature=0)["usage"]["completion_tokens"] == 2
    engine = model._engine
    del model
    gc.collect()
    assert engine.shutdown(wait_s=10)  # its thread ended: nothing holds the model any more
