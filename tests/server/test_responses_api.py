"""OpenAI's Responses API (/v1/responses) and the token-count routes, end to end: a real
server (SmolLM2 with Qwen 2.5's tool template) through the `openai` SDK; every response
object and stream event is also validated against the SDK's own models. The same
conversation through /v1/chat/completions gives the numbers to compare with (greedy, one
slot: the same reply). Then the request conversion and the stream builder without a model."""

from __future__ import annotations

import json
import typing
from types import SimpleNamespace

import jsonschema
import openai
import pytest
import requests
from openai.types.responses import InputTokenCountResponse, Response, ResponseStreamEvent

from helpers.chat_cases import TEMPLATES
from helpers.server_process import ServerProcess
from pyllama.chat import ChatSyntax
from pyllama.engine.task import CompletionResult, PartialEvent, Timings
from pyllama.server.errors import ApiError
from pyllama.server.openai_responses import ResponsesAnswer, ResponsesRequest, chat_body

WEATHER = {"type": "function", "name": "get_weather", "description": "Current weather of a city",
           "parameters": {"type": "object", "properties": {
               "location": {"type": "string", "enum": ["Paris", "London", "Tokyo"]}}, "required": ["location"]}}
CHAT_WEATHER = {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
ASK = "What is the weather in Paris?"
EVENT_TYPES = {typing.get_args(c.model_fields["type"].annotation)[0]: c
               for c in typing.get_args(typing.get_args(ResponseStreamEvent)[0])}


@pytest.fixture(scope="module")
def srv(smollm2_path):
    s = ServerProcess(smollm2_path, "--jinja", "--chat-template-file",
                      str(TEMPLATES / "Qwen-Qwen2.5-7B-Instruct.jinja"), "-np", "1", "-c", "4096", "-t", "2")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(srv):
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="unused")


def create(srv, **body) -> dict:
    """A whole response as JSON, validated by the SDK's Response model."""
    r = srv.post("/v1/responses", {"model": "x", "temperature": 0, **body})
    assert r.status_code == 200, r.text
    Response.model_validate(r.json())
    return r.json()


def chat(srv, messages, **body) -> dict:
    r = srv.post("/v1/chat/completions", {"messages": messages, "temperature": 0, **body})
    assert r.status_code == 200, r.text
    return r.json()


def stream(srv, **body) -> list[dict]:
    """The events of a streamed response: each `event:` name equals its data's type, and
    each validates as the SDK's event model of that type."""
    events, name = [], None
    with requests.post(srv.url + "/v1/responses", json={"model": "x", "temperature": 0, "stream": True, **body},
                       stream=True, timeout=120) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines(decode_unicode=True):
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                data = json.loads(line[len("data: "):])
                assert data["type"] == name
                EVENT_TYPES[data["type"]].model_validate(data)
                events.append(data)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def text_of(resp: dict) -> str:
    return "".join(p["text"] for item in resp["output"] if item["type"] == "message"
                   for p in item["content"] if p["type"] == "output_text")


# -- text ---------------------------------------------------------------------------------------

def test_text_input_with_instructions(srv, client):
    r = client.responses.create(model="x", instructions="Answer in one short sentence.", input="Name a colour.",
                                max_output_tokens=12, temperature=0)
    assert r.object == "response" and r.status == "completed" and r.id.startswith("resp_")
    assert r.output_text and [o.type for o in r.output] == ["message"]
    assert r.output[0].id.startswith("msg_") and r.output[0].role == "assistant"
    assert r.instructions == "Answer in one short sentence." and r.max_output_tokens == 12
    same = chat(srv, [{"role": "system", "content": "Answer in one short sentence."},
                      {"role": "user", "content": "Name a colour."}], max_tokens=12)
    assert r.output_text == same["choices"][0]["message"]["content"]
    u = same["usage"]
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == \
        (u["prompt_tokens"], u["completion_tokens"], u["total_tokens"])
    raw = create(srv, instructions="Answer in one short sentence.", input="Name a colour.", max_output_tokens=12)
    assert text_of(raw) == r.output_text


def test_item_input(srv, client):
    items = [{"type": "message", "role": "developer", "content": [{"type": "input_text", "text": "Be brief."}]},
             {"role": "user", "content": "My name is Ada."},
             {"type": "message", "role": "assistant", "status": "completed",
              "content": [{"type": "output_text", "text": "Nice to meet you, Ada.", "annotations": []}]},
             {"role": "assistant", "content": "How can I help?"},  # the SDK's EasyInputMessage: no type
             {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "What is my name?"}]}]
    r = client.responses.create(model="x", instructions="You are kind.", input=items, max_output_tokens=10,
                                temperature=0)
    same = chat(srv, [{"role": "system", "content": "You are kind."}, {"role": "developer", "content": "Be brief."},
                      {"role": "user", "content": "My name is Ada."},
                      {"role": "assistant", "content": "Nice to meet you, Ada.How can I help?"},
                      {"role": "user", "content": "What is my name?"}], max_tokens=10)
    assert r.output_text == same["choices"][0]["message"]["content"]
    assert r.usage.input_tokens == same["usage"]["prompt_tokens"]
    counted = client.responses.input_tokens.count(model="x", instructions="You are kind.", input=items)
    assert counted.object == "response.input_tokens" and counted.input_tokens == r.usage.input_tokens


def test_streamed_events(srv):
    events = stream(srv, input="Name a colour.", max_output_tokens=12)
    kinds = [e["type"] for e in events]
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert kinds == ["response.created", "response.in_progress", "response.output_item.added",
                     "response.content_part.added", *["response.output_text.delta"] * len(deltas),
                     "response.output_text.done", "response.content_part.done", "response.output_item.done",
                     "response.completed"]
    assert deltas and all(e["output_index"] == 0 and e["content_index"] == 0 for e in deltas)
    final = events[-1]["response"]
    Response.model_validate(final)
    text = "".join(e["delta"] for e in deltas)
    assert text == events[-4]["text"] == text_of(final)
    assert final["id"] == events[0]["response"]["id"] and final["status"] == "completed"
    assert events[2]["item"]["id"] == deltas[0]["item_id"] == final["output"][0]["id"]
    whole = create(srv, input="Name a colour.", max_output_tokens=12)
    assert text == text_of(whole)  # greedy: the same reply, read at once
    assert final["usage"]["input_tokens"] == whole["usage"]["input_tokens"]
    assert final["usage"]["output_tokens"] == whole["usage"]["output_tokens"]


def test_streamed_telemetry(srv):
    """llama-server's extensions: return_progress reports prompt processing in
    `response.in_progress` events, timings_per_token puts the timings so far on the last
    event of each delta, and `response.completed` carries the final timings."""
    events = stream(srv, input="Tell me a story. " * 8, max_output_tokens=6, timings_per_token=True,
                    return_progress=True, cache_prompt=False)
    progress = [e for e in events if "prompt_progress" in e]
    assert progress and all(e["type"] == "response.in_progress" for e in progress)
    p = progress[-1]["prompt_progress"]
    assert 0 < p["processed"] <= p["total"] and p["processed"] >= p["cache"]
    deltas = [e for e in events if e["type"] == "response.output_text.delta"]
    assert deltas and all("predicted_per_second" in e["timings"] for e in deltas)
    final = events[-1]
    assert final["type"] == "response.completed" and final["timings"]["predicted_n"] == \
        final["response"]["usage"]["output_tokens"]
    plain = stream(srv, input="Name a colour.", max_output_tokens=4)
    assert not any("prompt_progress" in e for e in plain)
    assert [e for e in plain if "timings" in e] == [plain[-1]]


def test_sdk_stream_helper(client):
    with client.responses.stream(model="x", input="Name a colour.", max_output_tokens=12, temperature=0) as s:
        kinds = [e.type for e in s]
        final = s.get_final_response()
    raw = client.responses.create(model="x", input="Name a colour.", max_output_tokens=12, temperature=0, stream=True)
    deltas = [e.delta for e in raw if e.type == "response.output_text.delta"]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text and final.output_text == "".join(deltas)


# -- function tools -----------------------------------------------------------------------------

def check_call(item: dict) -> None:
    assert item["type"] == "function_call" and item["name"] == "get_weather" and item["status"] == "completed"
    assert item["call_id"].startswith("fc_")
    jsonschema.validate(json.loads(item["arguments"]), WEATHER["parameters"])


def test_required_tool_gives_a_function_call(srv, client):
    r = client.responses.create(model="x", input=ASK, tools=[WEATHER], tool_choice="required",
                                max_output_tokens=64, temperature=0)
    calls = [o for o in r.output if o.type == "function_call"]
    assert len(calls) == 1 and r.tools[0].name == "get_weather" and r.tool_choice == "required"
    check_call(calls[0].model_dump())
    raw = create(srv, input=ASK, tools=[WEATHER], tool_choice="required", max_output_tokens=64)
    assert [(o["name"], o["arguments"]) for o in raw["output"]] == [(calls[0].name, calls[0].arguments)]
    named = create(srv, input=ASK, tools=[WEATHER], tool_choice={"type": "function", "name": "get_weather"},
                   max_output_tokens=64)
    check_call(named["output"][-1])


def test_required_tool_streamed(srv, client):
    events = stream(srv, input=ASK, tools=[WEATHER], tool_choice="required", max_output_tokens=64)
    added = [e for e in events if e["type"] == "response.output_item.added"]
    assert len(added) == 1 and added[0]["item"]["type"] == "function_call"
    k, item_id = added[0]["output_index"], added[0]["item"]["id"]
    deltas = [e for e in events if e["type"] == "response.function_call_arguments.delta"]
    assert deltas and all(e["item_id"] == item_id and e["output_index"] == k for e in deltas)
    done = next(e for e in events if e["type"] == "response.function_call_arguments.done")
    item = next(e for e in events if e["type"] == "response.output_item.done")["item"]
    final = events[-1]["response"]["output"][k]
    assert "".join(e["delta"] for e in deltas) == done["arguments"] == item["arguments"] == final["arguments"]
    assert item["call_id"] == added[0]["item"]["call_id"] == final["call_id"]
    check_call(final)
    whole = create(srv, input=ASK, tools=[WEATHER], tool_choice="required", max_output_tokens=64)
    assert whole["output"][-1]["arguments"] == final["arguments"]
    with client.responses.stream(model="x", input=ASK, tools=[WEATHER], tool_choice="required",
                                 max_output_tokens=64, temperature=0) as s:
        for _ in s:
            pass
        helper = s.get_final_response()
    assert [(o.type, o.arguments) for o in helper.output] == [("function_call", final["arguments"])]


def test_function_call_output_continues(srv, client):
    first = client.responses.create(model="x", input=ASK, tools=[WEATHER], tool_choice="required",
                                    max_output_tokens=64, temperature=0)
    call = first.output[-1]
    items = [{"role": "user", "content": ASK},
             {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
             {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 22 C"}]
    r = client.responses.create(model="x", input=items, tools=[WEATHER], max_output_tokens=16, temperature=0)
    assert r.status == "completed" and r.output
    same = chat(srv, [{"role": "user", "content": ASK},
                      {"role": "assistant", "content": None, "tool_calls": [
                          {"id": call.call_id, "type": "function",
                           "function": {"name": call.name, "arguments": call.arguments}}]},
                      {"role": "tool", "tool_call_id": call.call_id, "content": "Sunny, 22 C"}],
                tools=[CHAT_WEATHER], max_tokens=16)
    assert r.usage.input_tokens == same["usage"]["prompt_tokens"]
    assert r.output_text == (same["choices"][0]["message"]["content"] or "")
    # the whole earlier output fed back (its items merge into one assistant turn), an array output
    items = [{"role": "user", "content": ASK}, *[o.model_dump(exclude_none=True) for o in first.output],
             {"type": "function_call_output", "call_id": call.call_id,
              "output": [{"type": "input_text", "text": "Sunny, 22 C"}]}]
    again = client.responses.create(model="x", input=items, tools=[WEATHER], max_output_tokens=16, temperature=0)
    assert again.usage.input_tokens == r.usage.input_tokens and again.output_text == r.output_text


# -- token counts -------------------------------------------------------------------------------

def test_input_token_routes_count_the_prompt_of_a_run(srv, client):
    body = {"instructions": "Be brief.", "input": ASK, "tools": [WEATHER]}
    run = create(srv, **body, max_output_tokens=4)
    for path in ("/v1/responses/input_tokens", "/responses/input_tokens"):
        got = srv.post(path, body).json()
        InputTokenCountResponse.model_validate(got)
        assert got == {"object": "response.input_tokens", "input_tokens": run["usage"]["input_tokens"]}
    assert client.responses.input_tokens.count(model="x", **body).input_tokens == run["usage"]["input_tokens"]
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": ASK}]
    ran = chat(srv, messages, tools=[CHAT_WEATHER], max_tokens=4)
    for path in ("/v1/chat/completions/input_tokens", "/chat/completions/input_tokens"):
        got = srv.post(path, {"messages": messages, "tools": [CHAT_WEATHER]}).json()
        assert got == {"object": "response.input_tokens", "input_tokens": ran["usage"]["prompt_tokens"]}
    assert ran["usage"]["prompt_tokens"] == run["usage"]["input_tokens"]
    bad = srv.post("/v1/chat/completions/input_tokens", {"messages": "hi"})
    assert bad.status_code == 400


# -- bad input ----------------------------------------------------------------------------------

BAD = [
    ({}, "'input' is required"),
    ({"input": 3}, "'input' must be a string or array of objects"),
    ({"input": None}, "'input' must be a string or array of objects"),
    ({"input": ["hi"]}, "Cannot determine type of 'item'"),
    ({"input": [{"type": "mystery"}]}, "Cannot determine type of 'item'"),
    ({"input": [{"type": "function_call", "name": "f"}]}, "Cannot determine type of 'item'"),
    ({"input": [{"role": "user", "content": [{"type": "input_text"}]}]}, "'Input text' requires 'text'"),
    ({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "x"}]}]}, "'input_file' is not"),
    ({"input": [{"role": "user", "content": [{"type": "video"}]}]}, "'type' must be one of 'input_text'"),
    ({"input": [{"type": "message", "role": "assistant", "content": [{"type": "input_image"}]}]},
     "'type' must be one of 'output_text' or 'refusal'"),
    ({"input": [{"type": "function_call_output", "call_id": "c", "output": [{"type": "image"}]}]},
     "Output of tool call should be 'Input text'"),
    ({"input": [{"type": "reasoning", "summary": []}]}, "item['content'] is not an array"),
    ({"input": [{"type": "reasoning", "summary": [], "content": []}]}, "item['content'] is empty"),
    ({"input": "hi", "tools": {"type": "function"}}, "'tools' must be an array of objects"),
    ({"input": "hi", "tools": [{"type": "function", "parameters": {}}]}, "a tool needs function.name"),
    ({"input": "hi", "tools": [WEATHER], "tool_choice": {"type": "function", "name": "nope"}}, "no tool named nope"),
    ({"input": "hi", "previous_response_id": "resp_1"}, "does not support 'previous_response_id'"),
    ({"input": "hi", "instructions": 5}, "'instructions' must be a string"),
    ({"input": "hi", "max_output_tokens": "many"}, "max_tokens"),
]


@pytest.mark.parametrize("body,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_input_is_a_400(srv, body, message):
    for path in ("/v1/responses", "/v1/responses/input_tokens"):
        if path.endswith("input_tokens") and "max_output_tokens" in body:
            continue  # counting reads the prompt only
        r = srv.post(path, body)
        assert r.status_code == 400, (path, r.text)
        err = r.json()["error"]
        assert err["code"] == 400 and err["type"] == "invalid_request_error" and message in err["message"], err


def test_serving_after_bad_input(srv, client):
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="x", input=[{"type": "mystery"}])
    assert srv.post("/v1/responses", {"input": "Hi", "stream": True, "tools": 7}).status_code == 400
    r = client.responses.create(model="x", input="Hi", max_output_tokens=4, temperature=0)
    assert r.status == "completed" and r.usage.output_tokens <= 4


# -- without a model: the request conversion ----------------------------------------------------

def test_conversion_of_items_and_fields():
    body = chat_body({
        "model": "m", "instructions": "Sys", "max_output_tokens": 9, "temperature": 0.5,
        "reasoning": {"effort": "low"}, "tool_choice": "auto", "text": {"format": {"type": "text"}},
        "tools": [WEATHER, {"type": "web_search"}, {"type": "function", "name": "f", "strict": False}],
        "input": [{"role": "user", "content": "Hi", "type": "message", "status": "completed"},
                  {"type": "reasoning", "id": "rs_1", "summary": [], "content": [{"type": "reasoning_text", "text": "R"}]},
                  {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "A"}]},
                  {"type": "function_call", "call_id": "fc_1", "name": "get_weather", "arguments": "{}"},
                  {"type": "function_call_output", "call_id": "fc_1", "output": "sunny"},
                  {"role": "system", "content": [{"type": "input_text", "text": "S2"}]}]})
    assert body["messages"] == [
        {"role": "system", "content": "Sys"},
        {"role": "user", "content": [{"text": "Hi", "type": "text"}]},
        {"role": "assistant", "content": [{"text": "A", "type": "text"}], "reasoning_content": "R",
         "tool_calls": [{"function": {"arguments": "{}", "name": "get_weather"}, "id": "fc_1", "type": "function"}]},
        {"content": "sunny", "role": "tool", "tool_call_id": "fc_1"},
        {"role": "system", "content": [{"text": "S2", "type": "text"}]}]
    assert body["tools"] == [{"type": "function", "function": {**CHAT_WEATHER["function"], "strict": True}},
                             {"type": "function", "function": {"name": "f", "strict": False}}]
    assert body["max_tokens"] == 9 and body["reasoning_effort"] == "low" and body["temperature"] == 0.5
    assert not {"input", "instructions", "max_output_tokens", "reasoning"} & body.keys()
    assert chat_body({"input": "Hi"})["messages"] == [{"role": "user", "content": "Hi"}]
    assert "tools" not in chat_body({"input": "Hi", "tools": [{"type": "web_search"}]})


def test_conversion_refuses_what_llama_server_refuses():
    for body in ({"input": "x", "previous_response_id": "resp_1"}, {"instructions": "x"}, {"input": {}}):
        with pytest.raises(ApiError) as e:
            chat_body(body)
        assert e.value.code == 400
    assert chat_body({"input": "x", "previous_response_id": ""})["messages"]  # empty: not a reference


# -- without a model: the stream of a reply with reasoning, text and a call -----------------------

def _answer() -> ResponsesAnswer:
    task = SimpleNamespace(sampling=SimpleNamespace(temperature=0.0, top_p=1.0))
    req = ResponsesRequest(tasks=[task], stream=True, syntax=ChatSyntax(format="Hermes 2 Pro"))
    tokenizer = SimpleNamespace(tokenize=lambda text, add_special=True: text.split())
    return ResponsesAnswer(req, model="m", tokenizer=tokenizer, n_ctx=4096)


PIECES = ["<think>", "Let me", " check.</think>", "Sure,", " one moment. <tool_call>\n{\"name\": \"get_weather\", ",
          "\"arguments\": {\"location\": ", "\"Paris\"}}\n</tool_call>"]


def _result(text: str) -> CompletionResult:
    return CompletionResult(content=text, tokens=[], id_slot=0, n_decoded=len(PIECES), n_prompt=20, n_cached=5,
                            stop_type="eos", stopping_word="", truncated=False, has_new_line=True, timings=Timings(),
                            probs=[], seed=0)


def test_stream_of_reasoning_text_and_a_call():
    answer, text = _answer(), "".join(PIECES)
    payloads = list(answer.opening(0))
    for piece in PIECES:
        payloads += answer.partial(0, PartialEvent(piece, [], [], 1, 20, 0))
    payloads += answer.final(0, _result(text))
    events = []
    for ev in payloads:
        assert ev.name == ev.payload["type"]
        EVENT_TYPES[ev.name].model_validate(ev.payload)
        events.append(ev.payload)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    added = [(e["output_index"], e["item"]["type"]) for e in events if e["type"] == "response.output_item.added"]
    assert added == [(0, "reasoning"), (1, "message"), (2, "function_call")]
    final = events[-1]["response"]
    Response.model_validate(final)
    reasoning, message, call = final["output"]
    def joined(kind: str) -> str:
        return "".join(e["delta"] for e in events if e["type"] == kind)

    assert joined("response.reasoning_text.delta") == reasoning["content"][0]["text"] == "Let me check."
    assert joined("response.output_text.delta") == message["content"][0]["text"]
    assert joined("response.function_call_arguments.delta") == call["arguments"]
    assert message["content"][0]["text"] == "Sure, one moment. " and json.loads(call["arguments"]) == {"location": "Paris"}
    assert final["usage"]["output_tokens_details"]["reasoning_tokens"] == 3
    assert final["usage"]["input_tokens_details"] == {"cached_tokens": 5, "cache_write_tokens": 15}
    whole = _answer().whole([_result(text)])
    Response.model_validate(whole)
    assert [(o["type"], o.get("arguments"), o.get("content")) for o in whole["output"]] == \
        [(o["type"], o.get("arguments"), o.get("content")) for o in final["output"]]
