"""/completion and /completions over real HTTP against a real server process."""

from __future__ import annotations

import json

import pytest
import requests

from helpers.server_process import sse_events
from helpers.golden import completion_records
from pyllama import Llama


@pytest.fixture(scope="module")
def llm(smollm2_path):
    return Llama(smollm2_path, n_ctx=2048, n_threads=2)


def test_health_and_ready_time(server):
    r = server.get("/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}
    assert server.get("/v1/health").json() == {"status": "ok"}
    assert server.ready_s < 10


def test_greedy_completion_reproduces_the_library_and_the_reference(server, llm):
    records = completion_records("smollm2-135m")
    exact = 0
    for rec in records[:10]:
        r = server.post("/completion", {"prompt": rec["prompt"], "n_predict": 16, "temperature": 0,
                                        "return_tokens": True})
        assert r.status_code == 200, r.text
        body = r.json()
        ours = list(llm.generate(rec["prompt"], max_tokens=16))
        assert body["tokens"] == ours
        assert body["tokens_evaluated"] == rec["n_prompt_tokens"]
        exact += body["tokens"] == rec["tokens"][:16]
    assert exact >= 5  # llama.cpp's own answers, where the arithmetic noise allows (see issue 4)


def test_response_shape(server):
    r = server.post("/completion", {"prompt": "Hello", "n_predict": 3, "temperature": 0})
    body = r.json()
    assert list(body)[:6] == ["index", "content", "tokens", "id_slot", "stop", "model"]
    assert body["stop"] is True and body["stop_type"] == "limit" and body["tokens_predicted"] == 3
    assert body["tokens"] == []  # only with return_tokens
    assert set(body["timings"]) >= {"prompt_n", "prompt_ms", "predicted_n", "predicted_per_second"}
    gs = body["generation_settings"]
    assert gs["n_predict"] == 3 and gs["temperature"] == 0 and gs["seed"] == 4294967295
    assert gs["samplers"] == ["penalties", "dry", "top_n_sigma", "top_k", "typ_p", "top_p", "min_p", "xtc",
                              "temperature"]


def test_response_fields_and_logit_bias_shape(server):
    """response_fields keys are the whole paths, as llama-server writes them; logit_bias in
    generation_settings is a list of {"bias", "token"}, a ban (false) as a null bias."""
    body = {"prompt": "Hi", "n_predict": 1, "logit_bias": [[5, 1.5], [7, False]],
            "response_fields": ["generation_settings/n_predict", "generation_settings/logit_bias", "content/x",
                                "nope", "stop"]}
    r = server.post("/completion", body)
    assert r.status_code == 200
    assert r.json() == {"generation_settings/n_predict": 1, "stop": True,
                        "generation_settings/logit_bias": [{"bias": 1.5, "token": 5}, {"bias": None, "token": 7}]}
    assert b"Infinity" not in r.content


def test_verbose_per_request(server):
    """"verbose": true puts the native result in an OpenAI answer as __verbose (by default
    only -v does); a verbose that is not a boolean is a 400."""
    chat = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}
    assert "__verbose" not in server.post("/v1/chat/completions", chat).json()
    c = server.post("/v1/chat/completions", {**chat, "verbose": True}).json()
    assert c["__verbose"]["prompt"].startswith("<|im_start|>") and c["__verbose"]["tokens_predicted"] == 2
    t = server.post("/v1/completions", {"prompt": "Hi", "max_tokens": 1, "verbose": True}).json()
    assert t["__verbose"]["generation_settings"]["n_predict"] == 1
    r = server.post("/v1/chat/completions", {**chat, "verbose": "yes"})
    assert r.status_code == 400 and "verbose" in r.json()["error"]["message"]


@pytest.mark.parametrize("messages,message", [
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "assistant", "content": "c"}],
     "Cannot have 2 or more assistant messages at the end of the list."),
    ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "", "tool_calls": [
        {"id": "1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
     "Cannot continue an assistant message that contains tool calls."),
])
def test_assistant_prefill_limits(server, messages, message):
    """A chat ending in an assistant message is continued (prefill), as llama-server does:
    not two of them, nor one that holds tool calls."""
    r = server.post("/v1/chat/completions", {"messages": messages, "max_tokens": 1})
    assert r.status_code == 400 and r.json()["error"]["message"] == message
    ok = server.post("/v1/chat/completions", {"messages": messages[:2] if len(messages) == 3 else messages[:1],
                                              "max_tokens": 1})
    assert ok.status_code == 200


def test_empty_messages_and_media_parts(server):
    """As llama-server: no messages renders only the generation prompt; a media part
    without a multimodal projector is its 500, and the server goes on."""
    r = server.post("/v1/chat/completions", {"messages": [], "max_tokens": 1})
    assert r.status_code == 200 and r.json()["choices"][0]["finish_reason"] == "length"
    r = server.post("/v1/messages", {"model": "x", "messages": [], "max_tokens": 1})
    assert r.status_code == 200 and r.json()["type"] == "message"
    for part, kind in (({"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}, "image"),
                       ({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}, "audio")):
        r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": [part]}]})
        err = r.json()["error"]
        assert r.status_code == 500 and err["type"] == "server_error"
        assert err["message"].startswith(f"{kind} input is not supported - hint")
    assert server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}],
                                                "max_tokens": 1}).status_code == 200


def test_generation_rate_counts_decode_steps_and_idle_slots(server):
    """As llama-server: the first token costs no decode step, so the rate is over n - 1;
    an idle slot shows no budget left from its last task."""
    t = server.post("/completion", {"prompt": "I believe", "n_predict": 1}).json()["timings"]
    assert t["predicted_n"] == 1 and t["predicted_per_second"] == 0.0 and t["predicted_per_token_ms"] == 0.0
    t = server.post("/completion", {"prompt": "I believe", "n_predict": 16, "ignore_eos": True}).json()["timings"]
    assert t["predicted_n"] == 16
    assert abs(t["predicted_per_second"] - 1e3 / t["predicted_ms"] * 15) < 1e-6
    assert abs(t["predicted_per_token_ms"] - t["predicted_ms"] / 15) < 1e-9
    for slot in server.get("/slots").json():
        assert slot["is_processing"] is False
        if "next_token" in slot:
            assert slot["next_token"][0]["n_remain"] == -1 and slot["next_token"][0]["n_decoded"] == 0


def test_timings_per_token(server):
    """timings_per_token: every progress and partial chunk carries the timings so far
    (the first progress before any prompt token is decoded); native and OpenAI streams."""
    body = {"prompt": "the quick brown fox jumps over the lazy dog " * 8, "n_predict": 4, "ignore_eos": True,
            "stream": True, "timings_per_token": True, "return_progress": True}
    chunks = sse_events(server.post("/completion", body, stream=True))
    progress = [c for c in chunks if "prompt_progress" in c]
    partial = [c for c in chunks if "prompt_progress" not in c and not c["stop"]]
    assert len(progress) >= 2 and len(partial) == 4 and chunks[-1]["stop"]
    first = progress[0]["timings"]
    assert (first["prompt_n"], first["prompt_ms"], first["predicted_n"], first["predicted_ms"]) == (0, 0.0, 0, 0.0)
    prompt_ms = 0.0
    for c in progress + partial:
        assert all(v is not None and v >= 0 for v in c["timings"].values())
        assert c["timings"]["prompt_ms"] >= prompt_ms
        prompt_ms = c["timings"]["prompt_ms"]
    assert prompt_ms > 0 and [c["timings"]["predicted_n"] for c in partial] == [1, 2, 3, 4]
    assert chunks[-1]["generation_settings"]["timings_per_token"] is True
    plain = sse_events(server.post("/completion", {**body, "timings_per_token": False}, stream=True))
    assert not any("timings" in c for c in plain if not c["stop"])
    chat = sse_events(server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}],
                                                           "max_tokens": 3, "stream": True,
                                                           "timings_per_token": True}, stream=True))
    deltas = [c for c in chat if isinstance(c, dict) and c.get("choices") and c["choices"][0]["delta"].get("content")]
    assert deltas and all("timings" in c for c in deltas)


def test_odd_but_valid_input(server):
    r = server.post("/completion", {"prompt": {"prompt_string": "Hello"}, "n_predict": 2, "n_probs": 10**9,
                                    "seed": 2**40, "logit_bias": [[1, 1e30]], "samplers": "kx?"})
    assert r.status_code == 200 and len(r.json()["completion_probabilities"][0]["top_logprobs"]) == 49152
    assert server.post("/completion", {"prompt": {"prompt_string": "x", "multimodal_data": ["AAAA"]}}) \
        .status_code == 501


def test_prompt_forms(server, llm):
    ids = llm.tokenize("The capital of France is")
    by_text = server.post("/completion", {"prompt": "The capital of France is", "n_predict": 5,
                                          "temperature": 0, "return_tokens": True}).json()
    by_ids = server.post("/completion", {"prompt": ids, "n_predict": 5, "temperature": 0,
                                         "return_tokens": True}).json()
    mixed = server.post("/completion", {"prompt": ids[:2] + [llm.detokenize(ids[2:])], "n_predict": 5,
                                        "temperature": 0, "return_tokens": True}).json()
    assert by_text["tokens"] == by_ids["tokens"]
    assert mixed["tokens_evaluated"] > 0
    many = server.post("/completion", {"prompt": ["The capital of France is", "Once upon a time"],
                                       "n_predict": 4, "temperature": 0}).json()
    assert isinstance(many, list) and [m["index"] for m in many] == [0, 1]


def test_streaming_sse(server):
    r = requests.post(server.url + "/completion", json={"prompt": "The capital of France is", "n_predict": 6,
                                                        "temperature": 0, "stream": True}, stream=True, timeout=60)
    assert r.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(r)
    assert "[DONE]" not in events
    *parts, final = events
    assert all(e["stop"] is False for e in parts) and final["stop"] is True
    whole = server.post("/completion", {"prompt": "The capital of France is", "n_predict": 6,
                                        "temperature": 0}).json()
    assert "".join(e["content"] for e in parts) == whole["content"]
    assert sum(len(e["tokens"]) for e in parts) == 6


def test_stop_strings(server):
    body = {"prompt": "The capital of France is", "n_predict": 30, "temperature": 0, "stop": ["United"]}
    r = server.post("/completion", body).json()
    assert r["stop_type"] == "word" and r["stopping_word"] == "United"
    assert "United" not in r["content"] and r["content"].endswith("The ")
    r = requests.post(server.url + "/completion", json={**body, "stream": True}, stream=True, timeout=60)
    events = sse_events(r)
    streamed = "".join(e["content"] for e in events[:-1])
    assert streamed == server.post("/completion", body).json()["content"]
    assert "Unit" not in streamed


def test_seeded_sampling_repeats(server):
    body = {"prompt": "Once upon a time", "n_predict": 12, "temperature": 1.0, "seed": 1234}
    a = server.post("/completion", body).json()["content"]
    b = server.post("/completion", body).json()["content"]
    assert a == b


def test_probabilities(server):
    r = server.post("/completion", {"prompt": "The capital of France is", "n_predict": 3, "temperature": 0,
                                    "n_probs": 3}).json()
    probs = r["completion_probabilities"]
    assert len(probs) == 3
    first = probs[0]
    assert list(first) == ["id", "token", "bytes", "logprob", "top_logprobs"]
    assert first["token"] == " Paris" and len(first["top_logprobs"]) == 3
    assert first["top_logprobs"][0]["logprob"] >= first["top_logprobs"][1]["logprob"]
    post = server.post("/completion", {"prompt": "The capital of France is", "n_predict": 2, "temperature": 1.0,
                                       "top_k": 2, "n_probs": 5, "post_sampling_probs": True, "seed": 1}).json()
    top = post["completion_probabilities"][0]["top_probs"]
    assert len(top) <= 2 and abs(sum(t["prob"] for t in top) - 1.0) < 1e-4


def test_prefix_cache_is_reused(server):
    prompt = "In a quiet village by the sea, there lived an old fisherman who"
    server.post("/completion", {"prompt": prompt, "n_predict": 2, "temperature": 0, "id_slot": 1})
    r = server.post("/completion", {"prompt": prompt + " loved", "n_predict": 2, "temperature": 0,
                                    "id_slot": 1}).json()
    assert r["tokens_cached"] >= len(prompt.split()) and r["id_slot"] == 1
    off = server.post("/completion", {"prompt": prompt, "n_predict": 2, "temperature": 0, "id_slot": 1,
                                      "cache_prompt": False}).json()
    assert off["tokens_cached"] == 0


def test_tokenize_and_detokenize(server, llm):
    r = server.post("/tokenize", {"content": "Hello world"}).json()
    assert r["tokens"] == llm.tokenize("Hello world", add_special=False, parse_special=True)
    pieces = server.post("/tokenize", {"content": "Hello é", "with_pieces": True}).json()["tokens"]
    assert "".join(p["piece"] if isinstance(p["piece"], str) else bytes(p["piece"]).decode("utf-8", "ignore")
                   for p in pieces) == "Hello é"
    back = server.post("/detokenize", {"tokens": r["tokens"]}).json()
    assert back == {"content": "Hello world"}


def test_bad_input_gets_the_error_envelope(server):
    cases = [
        ("/completion", b"{not json", 400),
        ("/completion", json.dumps({"prompt": "x", "n_predict": "ten"}).encode(), 400),
        ("/completion", json.dumps({"prompt": [10**9]}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "top_k": "a"}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "repeat_last_n": -7}).encode(), 400),
        ("/completion", json.dumps({"prompt": []}).encode(), 400),
        ("/completion", json.dumps({"n_predict": 3}).encode(), 400),
        ("/detokenize", json.dumps({"tokens": [-1]}).encode(), 400),
        ("/tokenize", json.dumps({"content": 5}).encode(), 400),
        ("/completion", json.dumps({"prompt": {"prompt_string": 5}}).encode(), 400),
        ("/completion", json.dumps({"prompt": [[1, 2], {"x": 1}]}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "stop": [1]}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "n_predict": -2}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "samplers": 5}).encode(), 400),
        ("/completion", json.dumps({"prompt": "x", "logit_bias": "no"}).encode(), 400),
        ("/completion", json.dumps(["not", "an", "object"]).encode(), 400),
        ("/v1/chat/completions", json.dumps({"messages": [{"role": "user", "content": 7}]}).encode(), 400),
        ("/v1/chat/completions", json.dumps({"messages": "hi"}).encode(), 400),
    ]
    for path, data, code in cases:
        r = requests.post(server.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=30)
        assert r.status_code == code, (path, data, r.text)
        err = r.json()["error"]
        assert err["code"] == code and err["type"] == "invalid_request_error" and err["message"]
    r = server.get("/no/such/route")
    assert r.status_code == 404 and r.json()["error"] == {"code": 404, "message": "File Not Found",
                                                          "type": "not_found_error"}
    assert server.get("/health").status_code == 200  # still serving


def test_prefill_of_text_parts(server):
    """A trailing assistant message given as text parts is continued with the parts joined
    by a blank line, as llama.cpp continues it (render_content)."""
    msgs = [{"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "text", "text": "Wh"}, {"type": "text", "text": "ill"}]}]
    r = server.post("/apply-template", {"messages": msgs})
    assert r.status_code == 200 and r.json()["prompt"].endswith("<|im_start|>assistant\nWh\n\nill"), r.text
    r = server.post("/v1/chat/completions", {"messages": msgs, "max_tokens": 1, "temperature": 0})
    assert r.status_code == 200, r.text


def test_routes_for_features_pyllama_lacks(server):
    """As llama-server answers for a model without them: /v1/systemone needs a decision
    model (501 before the body is read), and /metrics reports speculative decoding's
    counters at 0."""
    for body in ({"state": "x", "questions": {"q": {"type": "noul", "instructions": "?"}}}, {}):
        r = server.post("/v1/systemone", body)
        assert r.status_code == 501 and r.json()["error"] == {
            "code": 501, "message": "This model is not a decision model", "type": "not_supported_error"}
    m = server.get("/metrics").text
    for name in ("spec_decode_num_draft_tokens_total", "spec_decode_num_accepted_tokens_total",
                 "spec_decode_num_drafts_total"):
        assert f"# TYPE llamacpp:{name} counter" in m and f"\nllamacpp:{name} 0\n" in m


def test_prompt_beyond_the_context(server):
    long = "word " * 2500  # per-slot context is 4096 / 2
    for path, body in (("/completion", {"prompt": long}), ("/v1/completions", {"prompt": long}),
                       ("/v1/chat/completions", {"messages": [{"role": "user", "content": long}]})):
        for stream in (False, True):
            r = server.post(path, {**body, "n_predict": 1, "stream": stream})
            assert r.status_code == 400, (path, stream)
            err = r.json()["error"]
            assert err["type"] == "exceed_context_size_error" and err["n_ctx"] == 2048
            assert err["n_prompt_tokens"] > 2048 and "exceeds the available context size" in err["message"]


def test_grammar_field(server):
    g = 'root ::= "The answer is " ("yes" | "no") "."'
    for seed in range(3):
        r = server.post("/completion", {"prompt": "Is water wet?", "grammar": g, "temperature": 1.0, "seed": seed,
                                        "n_predict": 20}).json()
        assert r["content"] in ("The answer is yes.", "The answer is no.") and r["stop_type"] == "eos"
        assert r["generation_settings"]["grammar"] == g
    bad = server.post("/completion", {"prompt": "x", "grammar": "root ::= (\"a\""})
    assert bad.status_code == 400 and "invalid grammar" in bad.json()["error"]["message"]
    r = server.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Yes or no?"}],
                                             "grammar": 'root ::= "yes" | "no"', "max_tokens": 5})
    assert r.json()["choices"][0]["message"]["content"] in ("yes", "no")
