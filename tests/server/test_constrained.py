"""Constrained output over real HTTP: json_schema on /completion, OpenAI's
response_format (through the openai SDK too, streaming included), lazy grammars
with each kind of trigger, the server's default grammar, and every way a
constraint can be wrong giving a 400 while the server keeps serving."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import openai
import pytest
import requests

from helpers.schema_corpus import validate
from helpers.server_process import RUN_DIR, ServerProcess, sse_events

PERSON = {"type": "object", "properties": {"name": {"type": "string", "maxLength": 20},
                                           "age": {"type": "integer", "minimum": 0, "maximum": 120}},
          "required": ["name", "age"]}
DIGITS = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": 9}, "minItems": 2, "maxItems": 3}
ASK = [{"role": "user", "content": "Describe a person as JSON."}]


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused")


def test_json_schema_on_completion(server):
    r = server.post("/completion", {"prompt": "A person as JSON:", "json_schema": PERSON, "n_predict": 128,
                                    "seed": 4})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["stop_type"] == "eos"
    validate(body["content"], PERSON)
    assert "root ::=" in body["generation_settings"]["grammar"]


def test_empty_json_schema_means_any_object(server):
    body = server.post("/completion", {"prompt": "JSON:", "json_schema": {}, "n_predict": 8}).json()
    assert body["content"].startswith("{")
    assert "object ::=" in body["generation_settings"]["grammar"]


def test_response_format_through_the_sdk(client):
    r = client.chat.completions.create(model="any", messages=ASK, max_tokens=128, seed=3, response_format={
        "type": "json_schema", "json_schema": {"name": "person", "schema": PERSON, "strict": True}})
    assert r.choices[0].finish_reason == "stop"
    validate(r.choices[0].message.content, PERSON)
    ok = [{"role": "user", "content": 'Reply with a JSON object with one key, "ok", set to true.'}]
    r = client.chat.completions.create(model="any", messages=ok, max_tokens=200, seed=2,
                                       response_format={"type": "json_object"})
    assert isinstance(json.loads(r.choices[0].message.content), dict)


def test_response_format_shorthands(server):
    for rf in ({"type": "json_schema", "schema": DIGITS}, {"type": "json_object", "schema": DIGITS}):
        r = server.post("/v1/chat/completions", {"messages": ASK, "response_format": rf, "max_tokens": 64})
        assert r.status_code == 200, r.text
        validate(r.json()["choices"][0]["message"]["content"], DIGITS)
    r = server.post("/v1/chat/completions", {"messages": ASK, "response_format": {"type": "text"},
                                             "max_tokens": 4})
    assert r.status_code == 200


def test_response_format_on_openai_completions(client):
    r = client.completions.create(model="any", prompt="Digits as JSON:", max_tokens=64, seed=5,
                                  extra_body={"response_format": {"type": "json_schema",
                                                                  "json_schema": {"schema": DIGITS}}})
    assert r.choices[0].finish_reason == "stop"
    validate(r.choices[0].text, DIGITS)


def test_streamed_constrained_chat(client):
    stream = client.chat.completions.create(model="any", messages=ASK, max_tokens=128, seed=8, stream=True,
                                            response_format={"type": "json_schema",
                                                             "json_schema": {"name": "p", "schema": PERSON}})
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    validate(text, PERSON)


BAD = [
    ("/completion", {"json_schema": {"type": "strin"}}, "unrecognized type"),
    ("/completion", {"json_schema": "abc"}, "must be an object"),
    ("/completion", {"json_schema": {"$ref": "#"}}, "invalid grammar"),
    ("/completion", {"json_schema": {"type": "string", "pattern": "^(?=x)x$"}}, "lookaround"),
    ("/completion", {"grammar": "root ::= foo"}, "invalid grammar"),
    ("/completion", {"grammar": 'root ::= "a"', "grammar_lazy": True}, "no triggers set for lazy grammar"),
    ("/completion", {"grammar": 'root ::= "a"', "grammar_lazy": True,
                     "grammar_triggers": [{"type": 1, "value": "<|im_start|>"}]}, "should be marked as preserved"),
    ("/completion", {"grammar": 'root ::= "a"', "grammar_lazy": True,
                     "grammar_triggers": [{"type": 2, "value": "(unclosed"}]}, "invalid pattern"),
    ("/completion", {"grammar": 'root ::= "a"', "grammar_lazy": True,
                     "grammar_triggers": [{"type": 9, "value": "x"}]}, "unknown trigger type"),
    ("/completion", {"grammar": 'root ::= "a"', "grammar_lazy": True,
                     "grammar_triggers": [{"type": 0, "value": "x", "token": -1}]}, "valid token id"),
    ("/completion", {"grammar_triggers": "x"}, "grammar_triggers"),
    ("/completion", {"preserved_tokens": [1]}, "preserved_tokens"),
    ("/completion", {"grammar_lazy": "yes"}, "grammar_lazy"),
    ("/v1/chat/completions", {"response_format": {"type": "xml"}}, "response_format type must be one of"),
    ("/v1/chat/completions", {"response_format": "json"}, "response_format"),
    ("/v1/chat/completions", {"response_format": {"type": "json_schema", "json_schema": {"schema": {"enum": []}}}},
     "enum"),
    ("/v1/chat/completions", {"json_schema": PERSON, "grammar": 'root ::= "a"'}, "Cannot use both"),
    ("/v1/chat/completions", {"response_format": {"type": "json_object"}, "grammar": 'root ::= "a"'},
     "Cannot use both"),
    ("/v1/completions", {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": 1}}}},
     "type must be"),
]


@pytest.mark.parametrize("path,extra,message", BAD, ids=[f"{b[0]}-{b[2]}" for b in BAD])
def test_bad_constraints_are_400(server, path, extra, message):
    body = {"messages": ASK} if "chat" in path else {"prompt": "x"}
    r = server.post(path, {**body, "max_tokens": 4, **extra})
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["code"] == 400 and err["type"] == "invalid_request_error"
    assert message in err["message"]


def test_server_keeps_serving_after_hostile_schemas(server):
    deep: dict = {"type": "integer"}
    for _ in range(500):
        deep = {"type": "array", "items": deep}
    r = server.post("/completion", {"prompt": "x", "json_schema": deep})
    assert r.status_code == 400 and "nested too deeply" in r.json()["error"]["message"]
    deeper = '{"prompt": "x", "json_schema": ' + '{"items": ' * 100_000 + "{}" + "}" * 100_001
    r = requests.post(server.url + "/completion", data=deeper, headers={"Content-Type": "application/json"})
    assert r.status_code == 400, r.text
    r = server.post("/completion", {"prompt": "x", "json_schema": {"type": "string", "minLength": 10 ** 9}})
    assert r.status_code == 400
    assert server.get("/health").status_code == 200
    assert server.post("/completion", {"prompt": "x", "n_predict": 2}).status_code == 200


# -- lazy grammars ------------------------------------------------------------------------------
PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def greedy(server):
    """The unconstrained greedy continuation: its tokens and each token's text."""
    body = server.post("/completion", {"prompt": PROMPT, "n_predict": 12, "temperature": 0,
                                       "return_tokens": True}).json()
    pieces = [server.post("/detokenize", {"tokens": [t]}).json()["content"] for t in body["tokens"]]
    assert "".join(pieces) == body["content"]
    return body["tokens"], pieces


def _trigger_index(tokens, pieces) -> int:
    """A token whose text is long enough and first shows up exactly at that token."""
    for k in range(1, len(tokens)):
        before = "".join(pieces[:k])
        if len(pieces[k].strip()) >= 3 and (before + pieces[k]).find(pieces[k]) == len(before):
            return k
    raise AssertionError("no usable trigger in the greedy text")


def _lazy(server, grammar, triggers, **extra):
    r = server.post("/completion", {"prompt": PROMPT, "n_predict": 24, "temperature": 0, "grammar": grammar,
                                    "grammar_lazy": True, "grammar_triggers": triggers, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_lazy_grammar_waits_for_a_token_trigger(server, greedy):
    tokens, pieces = greedy
    k = _trigger_index(tokens, pieces)
    body = _lazy(server, f'root ::= <[{tokens[k]}]> " forty-two"',
                 [{"type": 0, "value": pieces[k], "token": tokens[k]}])
    assert body["content"] == "".join(pieces[:k + 1]) + " forty-two"
    assert body["stop_type"] == "eos"
    assert body["generation_settings"]["grammar_lazy"] is True


@pytest.mark.parametrize("kind", ["pattern", "pattern_full", "word"])
def test_lazy_grammar_starts_where_the_trigger_text_starts(server, greedy, kind):
    tokens, pieces = greedy
    k = _trigger_index(tokens, pieces)
    word = pieces[k]
    grammar = f'root ::= "{word}" " forty-two"'
    if kind == "pattern":
        triggers, extra = [{"type": 2, "value": re.escape(word)}], {}
    elif kind == "pattern_full":
        triggers, extra = [{"type": 3, "value": r"[\s\S]*?(" + re.escape(word) + r")[\s\S]*"}], {}
    else:  # a word that is one token must be preserved, and becomes a token trigger
        triggers, extra = [{"type": 1, "value": word}], {"preserved_tokens": [word]}
    body = _lazy(server, grammar, triggers, **extra)
    assert body["content"] == "".join(pieces[:k + 1]) + " forty-two"
    if kind == "word":
        assert body["generation_settings"]["grammar_triggers"] == [{"type": 0, "value": word, "token": tokens[k]}]
        assert body["generation_settings"]["preserved_tokens"] == [tokens[k]]


def test_untriggered_lazy_grammar_changes_nothing(server, greedy):
    tokens, pieces = greedy
    body = _lazy(server, 'root ::= "never"', [{"type": 2, "value": "ZZZ-not-here"}], n_predict=12)
    assert body["content"] == "".join(pieces)


def test_preserved_special_tokens_are_shown(server):
    body = {"prompt": "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n", "n_predict": 40,
            "temperature": 0, "grammar": 'root ::= "Hello" <[1]> "there"'}
    assert server.post("/completion", body).json()["content"] == "Hellothere"
    r = server.post("/completion", {**body, "preserved_tokens": ["<|im_start|>"]})
    assert r.status_code == 200, r.text
    assert r.json()["content"] == "Hello<|im_start|>there"


# -- the server's default constraint ---------------------------------------------------------------
def test_default_json_schema_from_the_command_line(smollm2_path):
    s = ServerProcess("smollm2-135m", "-c", "1024", "-t", "2", "-j", json.dumps(DIGITS))
    try:
        body = s.post("/completion", {"prompt": "Numbers:", "n_predict": 32, "seed": 2}).json()
        validate(body["content"], DIGITS)
        body = s.post("/completion", {"prompt": "Say", "n_predict": 8, "grammar": 'root ::= "ok"'}).json()
        assert body["content"] == "ok"
    finally:
        s.stop()


def test_bad_default_grammar_stops_the_server_with_a_message():
    p = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-m", "smollm2-135m", "--grammar",
                        "root ::= ("], cwd=RUN_DIR, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2
    assert "--grammar" in p.stderr
