"""Tool calls end to end: a real server with SmolLM2 and a tool-calling model's own chat
template (`--jinja --chat-template-file`), through the `openai` SDK. SmolLM2 knows none
of these formats; the format's grammar makes it write a call all the same, so what is
checked is the whole path: template with tools -> grammar (from the first token for
`required` and a named function, lazy for `auto`) -> the reply parsed into `tool_calls`
whose arguments validate against the tool's schema, whole and streamed (the SDK's own
stream helper accumulates the deltas)."""

from __future__ import annotations

import json

import jsonschema
import openai
import pytest

from helpers.chat_cases import TEMPLATES
from helpers.server_process import ServerProcess

# Small value sets keep a 135M model's arguments short (a free string could run to max_tokens).
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather of a city",
    "parameters": {"type": "object", "properties": {
        "location": {"type": "string", "enum": ["Paris", "London", "Tokyo"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["location"]}}}
TIME = {"type": "function", "function": {
    "name": "get_time", "description": "Current time in a timezone",
    "parameters": {"type": "object", "properties": {
        "timezone": {"type": "string", "enum": ["Europe/Paris", "Asia/Tokyo"]}}, "required": ["timezone"]}}}
TOOLS = [WEATHER, TIME]
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in TOOLS}
ASK = [{"role": "system", "content": "You are a helpful assistant with tools."},
       {"role": "user", "content": "What is the weather in Paris?"}]

FORMATS = {  # template file -> the chat_format llama-server reports for it with tools
    "Qwen-Qwen2.5-7B-Instruct": "Hermes 2 Pro",
    "meta-llama-Llama-3.2-3B-Instruct": "Llama 3.x",
    "mistralai-Mistral-Nemo-Instruct-2407": "Mistral Nemo",
    "meetkai-functionary-medium-v3.2": "Functionary v3.2",
    "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B": "DeepSeek R1",
    "openai-gpt-oss-120b": "GPT-OSS",
    "Qwen3-Coder": "Qwen3 Coder",
    "": "Generic",  # SmolLM2's own template: no tool syntax, tools shown by the polyfill
}
NO_TOOLS_IN_TEMPLATE = {"", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B"}


@pytest.fixture(scope="module", params=sorted(FORMATS), ids=lambda name: name or "smollm2-own")
def fmt_server(request, smollm2_path):
    template = ["--chat-template-file", str(TEMPLATES / f"{request.param}.jinja")] if request.param else []
    s = ServerProcess(smollm2_path, "--jinja", *template, "-np", "1", "-c", "4096", "-t", "2")
    s.template = request.param
    yield s
    s.stop()


@pytest.fixture(scope="module")
def client(fmt_server):
    return openai.OpenAI(base_url=fmt_server.url + "/v1", api_key="unused")


def check_calls(calls, names=None) -> None:
    assert calls, "no tool call"
    for c in calls:
        assert c.type == "function" and c.id
        assert c.function.name in (names or SCHEMAS)
        jsonschema.validate(json.loads(c.function.arguments), SCHEMAS[c.function.name])
    assert len({c.id for c in calls}) == len(calls)


def ask(client, **kw):
    return client.chat.completions.create(**{"model": "x", "messages": ASK, "tools": TOOLS, "max_tokens": 160,
                                             "temperature": 0, **kw})


def test_required_gives_a_valid_call(client):
    r = ask(client, tool_choice="required")
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    check_calls(choice.message.tool_calls)


def test_required_streamed_through_the_sdk_helper(client):
    with client.chat.completions.stream(model="x", messages=ASK, tools=TOOLS, tool_choice="required",
                                        max_tokens=160, temperature=0) as stream:
        kinds = {type(e).__name__ for e in stream}
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    check_calls(choice.message.tool_calls)
    assert "FunctionToolCallArgumentsDoneEvent" in kinds
    whole = ask(client, tool_choice="required").choices[0].message  # greedy: the same reply, read at once
    assert (choice.message.content or "") == (whole.content or "")  # no partial markup leaked into the deltas
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls] == \
        [(c.function.name, c.function.arguments) for c in whole.tool_calls]


def test_named_function(client):
    r = ask(client, tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert r.choices[0].finish_reason == "tool_calls"
    check_calls(r.choices[0].message.tool_calls, names={"get_time"})
    parts = list(ask(client, tool_choice={"type": "function", "function": {"name": "get_time"}}, stream=True))
    calls = [c for p in parts for c in (p.choices[0].delta.tool_calls or []) if p.choices]
    assert calls[0].function.name == "get_time" and calls[0].id and calls[0].index == 0
    assert all(c.index == 0 and not c.function.name and not c.id for c in calls[1:])  # name and id once
    assert json.loads("".join(c.function.arguments or "" for c in calls)) == \
        json.loads(r.choices[0].message.tool_calls[0].function.arguments)  # greedy: the same call


def test_auto_gives_text_or_a_valid_call(client):
    choice = ask(client, max_tokens=48).choices[0]
    if choice.message.tool_calls:
        check_calls(choice.message.tool_calls)
        assert choice.finish_reason in ("tool_calls", "length")
    else:
        assert isinstance(choice.message.content, str) and choice.finish_reason in ("stop", "length")


def test_props_and_apply_template(fmt_server):
    props = fmt_server.get("/props").json()
    caps = props["chat_template_caps"]
    assert all(isinstance(v, bool) for v in caps.values())
    assert caps["supports_tools"] == (fmt_server.template not in NO_TOOLS_IN_TEMPLATE)
    assert caps["supports_tool_calls"] == bool(fmt_server.template)
    prompt = fmt_server.post("/apply-template", {"messages": ASK, "tools": TOOLS}).json()["prompt"]
    assert "get_weather" in prompt and "get_time" in prompt
    done = fmt_server.post("/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "max_tokens": 1})
    assert done.status_code == 200, done.text
    params = fmt_server.get("/slots").json()[0]["params"]  # the slot's last task, as llama-server keeps it
    assert (params["chat_format"], params["reasoning_format"]) == (FORMATS[fmt_server.template], "auto")
    bad = fmt_server.post("/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "tool_choice": "sometimes"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"


def test_reasoning_of_a_template_that_opens_it(smollm2_path):
    """DeepSeek R1's template ends the prompt inside <think>: what the model writes
    until </think> is reasoning_content (reasoning_format none: all of it content)."""
    s = ServerProcess(smollm2_path, "--chat-template-file",
                      str(TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), "-c", "1024", "-t", "2")
    try:
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 6, "temperature": 0}
        msg = s.post("/v1/chat/completions", body).json()["choices"][0]["message"]
        assert msg["reasoning_content"] and msg["content"] == ""
        raw = s.post("/v1/chat/completions", {**body, "reasoning_format": "none"}).json()["choices"][0]["message"]
        assert "reasoning_content" not in raw and msg["reasoning_content"] in raw["content"]
        streamed = [json.loads(line[6:]) for line in s.post("/v1/chat/completions", {**body, "stream": True}).text
                    .splitlines() if line.startswith("data: {")]
        deltas = [e["choices"][0]["delta"] for e in streamed if e["choices"]]
        assert "".join(d.get("reasoning_content") or "" for d in deltas) == msg["reasoning_content"]
        assert not "".join(d.get("content") or "" for d in deltas)
        props = s.get("/props").json()
        assert props["default_generation_settings"]["params"]["reasoning_format"] == "auto"
        # a budget: after 3 tokens of reasoning the message and </think> are forced, the answer follows
        budget = {**body, "max_tokens": 24, "reasoning_budget_tokens": 3, "reasoning_budget_message": " Enough."}
        cut = s.post("/v1/chat/completions", budget).json()["choices"][0]["message"]
        assert cut["reasoning_content"].endswith(" Enough.") and cut["content"], cut
        assert cut["reasoning_content"].startswith(msg["reasoning_content"][:3])
        n = s.post("/tokenize", {"content": cut["reasoning_content"][:-len(" Enough.")]}).json()["tokens"]
        assert len(n) <= 4, cut  # 3 tokens, perhaps tokenized apart differently
        bad = s.post("/v1/chat/completions", {**body, "reasoning_budget_tokens": -2})
        assert bad.status_code == 400 and "reasoning_budget_tokens" in bad.json()["error"]["message"]
    finally:
        s.stop()


def test_reasoning_budget_flag(smollm2_path):
    """--reasoning-budget N with --reasoning-budget-message: every chat's reasoning stops there."""
    s = ServerProcess(smollm2_path, "--chat-template-file",
                      str(TEMPLATES / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"), "-c", "1024", "-t", "2",
                      "--reasoning-budget", "2", "--reasoning-budget-message", " Done thinking.")
    try:
        body = {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 20, "temperature": 0, "stream": True}
        events = [json.loads(line[6:]) for line in s.post("/v1/chat/completions", body).text.splitlines()
                  if line.startswith("data: {")]
        deltas = [e["choices"][0]["delta"] for e in events if e["choices"]]
        reasoning = "".join(d.get("reasoning_content") or "" for d in deltas)
        assert reasoning.endswith(" Done thinking.") and "".join(d.get("content") or "" for d in deltas)
        free = s.post("/v1/chat/completions", {**body, "stream": False, "reasoning_budget_tokens": -1}).json()
        assert "Done thinking" not in free["choices"][0]["message"]["reasoning_content"]
    finally:
        s.stop()


def test_chatml_by_name_is_a_jinja_template(smollm2_path):
    """`--jinja --chat-template chatml` is llama.cpp's ChatML Jinja template, as in
    llama-server: tools are accepted (shown by the generic polyfill), where the built-in
    ChatML format (without --jinja) refuses them."""
    s = ServerProcess(smollm2_path, "--jinja", "--chat-template", "chatml", "-np", "1", "-c", "2048", "-t", "2")
    try:
        assert s.get("/props").json()["chat_template"].startswith("{%- for message in messages -%}")
        r = s.post("/v1/chat/completions", {"messages": ASK, "tools": TOOLS, "max_tokens": 8, "temperature": 0})
        assert r.status_code == 200, r.text
        plain = s.post("/apply-template", {"messages": ASK}).json()["prompt"]
        assert plain == ("<|im_start|>system\nYou are a helpful assistant with tools.<|im_end|>\n"
                         "<|im_start|>user\nWhat is the weather in Paris?<|im_end|>\n<|im_start|>assistant\n")
    finally:
        s.stop()
