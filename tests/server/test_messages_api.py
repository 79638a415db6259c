"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) through the real
`anthropic` SDK against a real server: SmolLM2 with Qwen 2.5's template (tools in the
Hermes format), DeepSeek R1's (its prompt opens a think block, so the reply is
reasoning: a thinking block) and Qwen 3's (which shows what `thinking` turns on and off).
Every answer and every stream event is also validated strictly against the SDK's own
models (the SDK itself builds them without validation). SmolLM2 never closes a think
block by itself, so a stream that moves from thinking to text to tool_use is checked on
made-up engine events, through the SDK's own accumulator."""

from __future__ import annotations

import json

import anthropic
import jsonschema
import pydantic
import pytest
import requests
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent

from helpers.chat_cases import TEMPLATES
from helpers.server_process import ServerProcess
from pyllama.chat import ChatSyntax
from pyllama.engine import ErrorEvent, FinalEvent, PartialEvent, TaskRequest
from pyllama.engine.task import CompletionResult, Timings
from pyllama.errors import TaskFailed
from pyllama.server import anthropic_messages as am
from pyllama.server.sse import answer_events

SYSTEM = "You are a helpful assistant."
ASK = [{"role": "user", "content": "What is the capital of France?"}]
WEATHER = {"name": "get_weather", "description": "Current weather of a city", "input_schema": {
    "type": "object", "properties": {"location": {"type": "string", "enum": ["Paris", "London", "Tokyo"]},
                                     "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["location"]}}
TIME = {"name": "get_time", "description": "Current time in a timezone", "input_schema": {
    "type": "object", "properties": {"timezone": {"type": "string", "enum": ["Europe/Paris", "Asia/Tokyo"]}},
    "required": ["timezone"]}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["name"]: t["input_schema"] for t in TOOLS}
TOOL_ASK = [{"role": "user", "content": "What is the weather in Paris?"}]

STREAM_EVENT = pydantic.TypeAdapter(RawMessageStreamEvent)
# The SDK (2.x) has no sampling arguments any more; the server reads them all the same.
GREEDY = {"extra_body": {"temperature": 0}}


def _server(model, template: str) -> ServerProcess:
    return ServerProcess(model, "--jinja", "--chat-template-file", str(TEMPLATES / f"{template}.jinja"),
                         "-np", "1", "-c", "4096", "-t", "2")


@pytest.fixture(scope="module")
def server(smollm2_path):
    s = _server(smollm2_path, "Qwen-Qwen2.5-7B-Instruct")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(server):
    return anthropic.Anthropic(base_url=server.url, api_key="unused", max_retries=0)


@pytest.fixture(scope="module")
def r1_client(smollm2_path):
    s = _server(smollm2_path, "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")
    yield anthropic.Anthropic(base_url=s.url, api_key="unused", max_retries=0)
    s.stop()


def create(client, **kw) -> Message:
    """messages.create, the raw JSON validated strictly as the SDK's Message."""
    raw = client.messages.with_raw_response.create(**{"model": "x", "max_tokens": 24, **GREEDY, **kw})
    Message.model_validate(raw.http_response.json())
    return raw.parse()


def streamed(client, **kw):
    """(final message, text_stream joined) of the SDK's stream helper."""
    with client.messages.stream(**{"model": "x", "max_tokens": 24, **GREEDY, **kw}) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    return final, text


def raw_events(server, body: dict) -> list[tuple[str, dict]]:
    """(event name, data) of a stream read off the wire, each data validated strictly."""
    r = requests.post(server.url + "/v1/messages", json={"model": "x", "max_tokens": 24, "temperature": 0,
                                                         "stream": True, **body}, stream=True, timeout=120)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    out, name = [], None
    for line in r.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("data: "):
            data = json.loads(line[len("data: "):])
            assert data["type"] == name
            STREAM_EVENT.validate_python(data)
            out.append((name, data))
            name = None
    return out


def shape(m) -> dict:
    """What a greedy reply must repeat: its blocks (tool ids aside, new on every request),
    stop, and token counts (a prompt's cached share varies with what ran before it)."""
    blocks = []
    for b in m.content:
        d = {k: v for k, v in b.model_dump().items() if k not in ("id", "parsed_output", "citations", "caller")}
        blocks.append(d)
    u = m.usage
    return {"content": blocks, "stop_reason": m.stop_reason, "stop_sequence": m.stop_sequence,
            "input": u.input_tokens + (u.cache_read_input_tokens or 0), "output": u.output_tokens}


def check_uses(m, names=None) -> list:
    uses = [b for b in m.content if b.type == "tool_use"]
    assert uses, m.content
    for b in uses:
        assert b.id and b.name in (names or SCHEMAS)
        jsonschema.validate(b.input, SCHEMAS[b.name])
    return uses


# -- text ---------------------------------------------------------------------------------------

def test_text_answer_with_usage_as_the_chat_route_counts(server, client):
    m = create(client, system=SYSTEM, messages=ASK)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert [b.type for b in m.content] == ["text"] and m.content[0].text.strip()
    assert m.stop_reason in ("end_turn", "max_tokens") and m.stop_sequence is None
    chat = server.post("/v1/chat/completions", {"messages": [{"role": "system", "content": SYSTEM}, *ASK],
                                                "max_tokens": 24, "temperature": 0}).json()
    assert chat["choices"][0]["message"]["content"] == m.content[0].text
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == chat["usage"]["prompt_tokens"]
    assert m.usage.output_tokens == chat["usage"]["completion_tokens"]
    assert {"end_turn": "stop", "max_tokens": "length"}[m.stop_reason] == chat["choices"][0]["finish_reason"]


def test_system_as_text_blocks_is_the_same_prompt(client):
    as_text = client.messages.count_tokens(model="x", system=SYSTEM, messages=ASK).input_tokens
    as_blocks = client.messages.count_tokens(model="x", messages=ASK, system=[
        {"type": "text", "text": "You are a helpful "}, {"type": "text", "text": "assistant."}]).input_tokens
    assert as_text == as_blocks


def test_max_tokens_reached(client):
    m = create(client, messages=ASK, max_tokens=3)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3


def test_stream_joins_to_the_whole_message(server, client):
    whole = create(client, system=SYSTEM, messages=ASK)
    final, text = streamed(client, system=SYSTEM, messages=ASK)
    assert text == whole.content[0].text
    assert shape(final) == shape(whole)
    events = raw_events(server, {"system": SYSTEM, "messages": ASK})
    names = [n for n, _ in events]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    assert names[1] == "content_block_start" and names[-3] == "content_block_stop"
    assert set(names[2:-3]) == {"content_block_delta"}
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 0
    assert start["usage"]["input_tokens"] + start["usage"]["cache_read_input_tokens"] == shape(whole)["input"]


def test_stop_sequence(client):
    whole = create(client, messages=ASK).content[0].text
    word = whole.split()[2]
    m = create(client, messages=ASK, stop_sequences=["zzz-never", word])
    assert m.stop_reason == "stop_sequence" and m.stop_sequence == word
    assert whole.startswith(m.content[0].text) and word not in m.content[0].text
    final, _ = streamed(client, messages=ASK, stop_sequences=["zzz-never", word])
    assert shape(final) == shape(m)


def test_count_tokens_is_what_a_run_reads(client):
    n = client.messages.count_tokens(model="x", system=SYSTEM, messages=ASK).input_tokens
    m = create(client, system=SYSTEM, messages=ASK, max_tokens=1)
    assert n == m.usage.input_tokens + m.usage.cache_read_input_tokens
    n_tools = client.messages.count_tokens(model="x", messages=TOOL_ASK, tools=TOOLS).input_tokens
    m = create(client, messages=TOOL_ASK, tools=TOOLS, max_tokens=1)
    assert n_tools == m.usage.input_tokens + m.usage.cache_read_input_tokens


# -- tools --------------------------------------------------------------------------------------

def test_any_tool(client):
    m = create(client, messages=TOOL_ASK, tools=TOOLS, tool_choice={"type": "any"}, max_tokens=120)
    assert m.stop_reason == "tool_use"
    check_uses(m)


def test_named_tool(client):
    m = create(client, messages=TOOL_ASK, tools=TOOLS, tool_choice={"type": "tool", "name": "get_time"},
               max_tokens=120)
    assert m.stop_reason == "tool_use"
    assert {b.name for b in check_uses(m)} == {"get_time"}


def test_tool_use_streamed(server, client):
    kw = dict(messages=TOOL_ASK, tools=TOOLS, tool_choice={"type": "any"}, max_tokens=120)
    whole = create(client, **kw)
    final, _ = streamed(client, **kw)
    check_uses(final)
    assert shape(final) == shape(whole)
    events = raw_events(server, kw)
    starts = [d for n, d in events if n == "content_block_start" and d["content_block"]["type"] == "tool_use"]
    assert starts and starts[0]["content_block"]["input"] == {} and starts[0]["content_block"]["id"]
    index = starts[0]["index"]
    joined = "".join(d["delta"]["partial_json"] for n, d in events
                     if n == "content_block_delta" and d["index"] == index)
    assert json.loads(joined) == whole.content[index].input


def test_tool_result_continues_the_conversation(client):
    first = create(client, messages=TOOL_ASK, tools=TOOLS, tool_choice={"type": "any"}, max_tokens=120)
    use = check_uses(first)[0]
    turn = [{"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]}]

    def answer(result: str, **extra) -> list:
        return TOOL_ASK + turn + [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": use.id, "content": result, **extra},
            {"type": "text", "text": "Thanks, and in one word?"}]}]

    n_short = client.messages.count_tokens(model="x", tools=TOOLS, messages=answer("Sunny")).input_tokens
    n_long = client.messages.count_tokens(model="x", tools=TOOLS, messages=answer(
        [{"type": "text", "text": "Sunny, "}, {"type": "text", "text": "22 degrees and a light wind"}])).input_tokens
    assert n_long > n_short  # the result's text is in the prompt
    m = create(client, tools=TOOLS, messages=answer("Sunny, 22 degrees", is_error=False), max_tokens=16)
    assert m.content and m.stop_reason in ("end_turn", "max_tokens", "tool_use")
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens > shape(first)["input"]


# -- thinking -----------------------------------------------------------------------------------

def test_thinking_block(r1_client):
    kw = dict(messages=[{"role": "user", "content": "What is 2+2?"}], max_tokens=16,
              thinking={"type": "enabled", "budget_tokens": 1024})
    m = create(r1_client, **kw)
    assert [b.type for b in m.content] == ["thinking"]  # R1's prompt ends inside <think>
    assert m.content[0].thinking and m.content[0].signature == "" and m.stop_reason == "max_tokens"
    final, text = streamed(r1_client, **kw)
    assert text == "" and shape(final) == shape(m)
    # a small budget: the end of thinking is forced after 4 tokens of it, a text block follows
    short = create(r1_client, **{**kw, "max_tokens": 24, "thinking": {"type": "enabled", "budget_tokens": 4}})
    assert [b.type for b in short.content] == ["thinking", "text"], short.content
    assert short.content[0].thinking.startswith(m.content[0].thinking[:4])
    assert len(short.content[0].thinking) < len(m.content[0].thinking)


def test_thinking_turns_the_template_on_and_off(smollm2_path):
    s = _server(smollm2_path, "Qwen-Qwen3-0.6B")
    try:
        c = anthropic.Anthropic(base_url=s.url, api_key="unused", max_retries=0)
        count = lambda **kw: c.messages.count_tokens(model="x", messages=ASK, **kw).input_tokens  # noqa: E731
        on, off = count(thinking={"type": "enabled", "budget_tokens": 1024}), count(thinking={"type": "disabled"})
        assert off > on  # off: Qwen 3's template writes an empty <think></think> into the prompt
        assert count() == on  # the template's default: thinking
        past = [*ASK, {"role": "assistant", "content": [{"type": "thinking", "thinking": "Easy.", "signature": ""},
                                                        {"type": "text", "text": "Paris."}]},
                {"role": "user", "content": "And of Spain?"}]
        assert c.messages.count_tokens(model="x", messages=past).input_tokens > count()
    finally:
        s.stop()


def test_api_key_from_the_sdk(smollm2_path):
    s = ServerProcess(smollm2_path, "--api-key", "sekrit", "-np", "1", "-c", "2048", "-t", "2")
    try:
        ok = anthropic.Anthropic(base_url=s.url, api_key="sekrit", max_retries=0)  # sent as X-Api-Key
        assert ok.messages.count_tokens(model="x", messages=ASK).input_tokens > 0
        wrong = anthropic.Anthropic(base_url=s.url, api_key="wrong", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):
            wrong.messages.count_tokens(model="x", messages=ASK)
    finally:
        s.stop()


# -- bad input ----------------------------------------------------------------------------------

BAD = [
    ({"messages": {}}, "messages: expected an array"),
    ({"messages": [{"role": "system", "content": "Hi"}]}, "top-level 'system'"),
    ({"messages": [{"role": "tool", "content": "Hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user", "content": [{"type": "video", "url": "x"}]}]}, "\"video\""),
    ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "f", "input": {}}]}]},
     "in a user message"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"messages": ASK, "system": 5}, "system"),
    ({"messages": ASK, "tools": [{"description": "no name"}]}, "tools[0].name"),
    ({"messages": ASK, "tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "not supported"),
    ({"messages": ASK, "tools": TOOLS, "tool_choice": {"type": "tool"}}, "tool_choice.name"),
    ({"messages": ASK, "tools": TOOLS, "tool_choice": {"type": "tool", "name": "nope"}}, "nope"),
    ({"messages": ASK, "thinking": {"type": "sometimes"}}, "thinking"),
    ({"messages": ASK, "stop_sequences": "END"}, "stop_sequences"),
    ({"messages": ASK, "max_tokens": "ten"}, "max_tokens"),
]


def send_bad(client, body: dict):
    """The body as it is (through extra_body: the SDK checks some arguments itself)."""
    return client.messages.create(model="x", max_tokens=8, messages=ASK, extra_body=body)


@pytest.mark.parametrize("body, says", BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_raises_bad_request(client, body, says):
    with pytest.raises(anthropic.BadRequestError) as e:
        send_bad(client, body)
    err = e.value
    assert err.status_code == 400 and err.body["type"] == "error"
    assert err.body["error"]["type"] == "invalid_request_error" and says in err.body["error"]["message"]
    assert "invalid_request_error" in str(err)


def test_bad_input_refused_before_a_stream_and_on_count_tokens(client):
    with pytest.raises(anthropic.BadRequestError, match="top-level"):
        with client.messages.stream(model="x", max_tokens=8, messages=[{"role": "system", "content": "Hi"}]) as s:
            s.get_final_message()
    with pytest.raises(anthropic.BadRequestError, match="expected an array"):
        client.messages.count_tokens(model="x", messages=[], extra_body={"messages": "hi"})


PIXEL = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}}


def test_images_as_llama_server(server):
    """An image, in a turn or in a tool result, is llama-server's 500 without a projector.
    (No messages at all is a valid request: test_completion, whose template allows it.)"""
    call = {"role": "assistant", "content": [{"type": "tool_use", "id": "t1", "name": "read", "input": {}}]}
    for messages in ([{"role": "user", "content": [PIXEL, {"type": "text", "text": "What is it?"}]}],
                     [{"role": "user", "content": "Read it"}, call, {"role": "user", "content": [
                         {"type": "tool_result", "tool_use_id": "t1", "content": [
                             {"type": "text", "text": "File: a.png"}, PIXEL]}]}]):
        r = server.post("/v1/messages", {"model": "x", "max_tokens": 8, "messages": messages})
        assert r.status_code == 500 and "image input is not supported" in r.text.lower(), r.text


def test_still_serving_after_bad_input(client):
    for body, _ in BAD:
        with pytest.raises(anthropic.BadRequestError):
            send_bad(client, body)
    assert create(client, messages=ASK, max_tokens=2).stop_reason == "max_tokens"


# -- the request conversion and the stream, without a model --------------------------------------

def test_conversion_follows_llama_server():
    body = am.to_chat_body({
        "system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        "messages": [
            {"role": "user", "content": "Weather?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "Call it.", "signature": "sig"},
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "Paris"}}]},
            {"role": "user", "content": [
                {"type": "text", "text": "Here:"},
                {"type": "tool_result", "tool_use_id": "toolu_1", "is_error": True,
                 "content": [{"type": "text", "text": "no "}, {"type": "text", "text": "network"}]}]},
            {"role": "assistant", "content": []}],
        "tools": [WEATHER], "tool_choice": {"type": "any"}, "stop_sequences": ["END"], "temperature": 0.5,
        "top_k": 5, "metadata": {"user_id": "u"}, "thinking": {"type": "enabled", "budget_tokens": 2048}})
    assert body["messages"] == [
        {"role": "system", "content": "AB"},
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": [{"type": "text", "text": "Let me look."}], "reasoning_content": "Call it.",
         "tool_calls": [{"id": "toolu_1", "type": "function",
                         "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\"}"}}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "no network"},  # before the turn's text
        {"role": "user", "content": [{"type": "text", "text": "Here:"}]}]  # the empty turn dropped
    assert body["tools"] == [{"type": "function", "function": {
        "name": "get_weather", "description": WEATHER["description"], "parameters": WEATHER["input_schema"]}}]
    assert body["tool_choice"] == "required" and body["stop"] == ["END"] and body["max_tokens"] == 4096
    assert body["temperature"] == 0.5 and body["top_k"] == 5 and body["enable_thinking"] is True
    assert "metadata" not in body
    assert am.to_chat_body({"messages": ASK, "tool_choice": {"type": "tool", "name": "f"}})["tool_choice"] == \
        {"type": "function", "function": {"name": "f"}}


def test_billing_header_stamp_made_constant():
    head = "x-anthropic-billing-header: cc_version=2.1.101.e51; cc_entrypoint=cli; cch=a5145;You are Claude Code"
    assert am.steady_billing_header(head) == head.replace("a5145", "fffff")
    assert am.steady_billing_header("cch=a5145;") == "cch=a5145;"


def _result(content: str, stop_type: str, n_decoded: int, word: str = "") -> CompletionResult:
    return CompletionResult(content=content, tokens=[], id_slot=0, n_decoded=n_decoded, n_prompt=30, n_cached=10,
                            stop_type=stop_type, stopping_word=word, truncated=False, has_new_line=False,
                            timings=Timings(), probs=[], seed=0)


def _answer(syntax: ChatSyntax, stops=()) -> am.AnthropicMessage:
    req = am.MessagesRequest(tasks=[TaskRequest(prompt=[1], stream=True)], stream=True, syntax=syntax,
                             stop_sequences=list(stops))
    return am.AnthropicMessage(req, model="m", tokenizer=None, n_ctx=2048)


def _sse(text: str) -> tuple[str, dict]:
    name, data = text.split("\n")[:2]
    assert name.startswith("event: ") and data.startswith("data: ") and text.endswith("\n\n")
    return name[len("event: "):], json.loads(data[len("data: "):])


def test_stream_of_thinking_text_and_tool_use_accumulates_to_the_whole_message():
    syntax = ChatSyntax(format="Hermes 2 Pro")
    out = "<think>Weather: call.</think>Let me check. <tool_call>\n" \
          "{\"name\": \"get_weather\", \"arguments\": {\"location\": \"Paris\"}}\n</tool_call>"
    pieces = [out[k:k + 3] for k in range(0, len(out), 3)]
    events = [(0, PartialEvent(p, [], [], k + 1, 30, 0, 10)) for k, p in enumerate(pieces)]
    events.append((0, FinalEvent(_result(out, "eos", len(pieces)))))
    sent = [_sse(t) for t in answer_events(_answer(syntax), events)]
    for name, data in sent:
        assert data["type"] == name
        STREAM_EVENT.validate_python(data)
    names = [n for n, _ in sent]
    opened = []  # a block closes before the next one opens
    for name, data in sent:
        if name == "content_block_start":
            assert not opened
            opened.append(data["index"])
        elif name == "content_block_stop":
            assert opened == [data["index"]]
            opened.pop()
    assert names.count("content_block_start") == 3 and names[-2:] == ["message_delta", "message_stop"]
    snapshot, bufs = None, {}
    for _, data in sent:
        snapshot = accumulate_event(event=STREAM_EVENT.validate_python(data), current_snapshot=snapshot,
                                    json_bufs=bufs)
    whole = _answer(syntax).whole([_result(out, "eos", len(pieces))])
    Message.model_validate(whole)
    assert [b["type"] for b in whole["content"]] == ["thinking", "text", "tool_use"]
    assert whole["stop_reason"] == "tool_use"
    assert whole["usage"] == {"cache_read_input_tokens": 10, "input_tokens": 20, "output_tokens": len(pieces)}
    assert shape(snapshot) == shape(Message.model_validate(whole))
    assert snapshot.content[0].signature == "" and snapshot.content[2].id  # the empty signature came as a delta


def test_stop_reasons():
    a = _answer(ChatSyntax(), stops=["END"])
    assert a.whole([_result("Hi", "word", 2, "END")])["stop_reason"] == "stop_sequence"
    assert a.whole([_result("Hi", "word", 2, "END")])["stop_sequence"] == "END"
    assert a.whole([_result("Hi", "word", 2, "<|im_end|>")])["stop_reason"] == "end_turn"  # the format's own stop
    assert a.whole([_result("Hi", "word", 2, "<|im_end|>")])["stop_sequence"] is None
    assert a.whole([_result("Hi", "eos", 2)])["stop_reason"] == "end_turn"
    assert a.whole([_result("Hi", "limit", 2)])["stop_reason"] == "max_tokens"


def test_an_error_mid_stream_is_an_error_event():
    events = [(0, PartialEvent("Hi", [], [], 1, 30, 0, 10)), (0, ErrorEvent(TaskFailed("decode failed")))]
    sent = [_sse(t) for t in answer_events(_answer(ChatSyntax()), events)]
    assert [n for n, _ in sent][-1] == "error"
    assert sent[-1][1] == {"type": "error", "error": {"code": 500, "message": "decode failed", "type": "server_error"}}
