"""The OpenAI routes through the real `openai` SDK (streaming included)."""

from __future__ import annotations

import json

import openai
import pytest

from helpers.golden import DATA


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def chat_records():
    lines = (DATA / "smollm2-135m-instruct-q4_1.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["kind"] == "chat"]


def test_models(client, server):
    models = client.models.list()
    assert models.data[0].id == "SmolLM2-135M-Instruct.Q4_1.gguf"
    raw = server.get("/v1/models").json()
    meta = raw["data"][0]["meta"]
    assert meta["n_vocab"] == 49152 and meta["n_embd"] == 576
    assert meta["n_params"] == 134_515_008  # llama-bench: 134.52 M
    # text in, text out: no projector, not a decision model (llama-server's "decisions")
    assert raw["data"][0]["architecture"] == {"input_modalities": ["text"], "output_modalities": ["text"]}


def test_chat_completion_renders_the_template_like_llama_server(client, server):
    for rec in chat_records():
        r = client.chat.completions.create(model="x", messages=rec["messages"], max_tokens=8, temperature=0)
        assert r.object == "chat.completion" and r.choices[0].message.role == "assistant"
        assert r.usage.prompt_tokens == rec["usage"]["prompt_tokens"]
        assert r.choices[0].finish_reason == "length"
        rendered = server.post("/apply-template", {"messages": rec["messages"]}).json()["prompt"]
        assert rendered == rec["rendered_prompt"]
    first = chat_records()[0]
    r = client.chat.completions.create(model="x", messages=first["messages"], max_tokens=6, temperature=0)
    assert first["content"].startswith(r.choices[0].message.content)


def test_chat_streaming(client):
    msgs = [{"role": "user", "content": "Name a color."}]
    whole = client.chat.completions.create(model="x", messages=msgs, max_tokens=10, temperature=0)
    chunks = list(client.chat.completions.create(model="x", messages=msgs, max_tokens=10, temperature=0,
                                                 stream=True, stream_options={"include_usage": True}))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 10
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)


def test_completions_and_stream(client):
    r = client.completions.create(model="x", prompt="The capital of France is", max_tokens=5, temperature=0)
    assert r.object == "text_completion" and r.choices[0].text.startswith(" Paris")
    assert r.usage.completion_tokens == 5
    parts = list(client.completions.create(model="x", prompt="The capital of France is", max_tokens=5,
                                           temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == r.choices[0].text
    assert parts[-1].choices[0].finish_reason == "length"


def test_logprobs(client):
    r = client.chat.completions.create(model="x", messages=[{"role": "user", "content": "Hi"}], max_tokens=3,
                                       temperature=0, logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert len(content) == 3 and len(content[0].top_logprobs) == 2
    assert content[0].logprob <= 0
    c = client.completions.create(model="x", prompt="Hello", max_tokens=2, temperature=0, logprobs=2)
    assert c.choices[0].logprobs is not None


def test_stop_and_errors(client):
    r = client.completions.create(model="x", prompt="The capital of France is", max_tokens=30, temperature=0,
                                  stop=["United"])
    assert r.choices[0].finish_reason == "stop" and "United" not in r.choices[0].text
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="x", messages="x", max_tokens=3)  # ([] is valid, as llama-server)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="x", messages=[{"role": "wizard", "content": "x"}], max_tokens=3)
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="x", messages=[{"role": "user", "content": "x"}], max_tokens=3,
                                       top_logprobs=2)


def test_continue_final_message(server):
    msgs = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi there, I am"}]
    prompt = server.post("/apply-template", {"messages": msgs, "continue_final_message": True,
                                             "add_generation_prompt": False}).json()["prompt"]
    assert prompt.endswith("<|im_start|>assistant\nHi there, I am")
    both = server.post("/apply-template", {"messages": msgs, "continue_final_message": True,
                                           "add_generation_prompt": True})
    assert both.status_code == 400
    r = server.post("/v1/chat/completions", {"messages": msgs, "continue_final_message": True,
                                             "add_generation_prompt": False, "max_tokens": 3})
    assert r.status_code == 200
