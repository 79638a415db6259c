"""Request parsing (server/schemas.py) in process, with SmolLM2's tokenizer and chat
template and no engine: which tasks each API's body makes, how OpenAI's fields map
to the native ones, and which problem is reported first."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from pyllama import Llama
from pyllama.server import schemas
from pyllama.server.config import ServerConfig
from pyllama.server.errors import ApiError
from pyllama.server.state import ServerState

MSGS = [{"role": "user", "content": "Name a color."}]


@pytest.fixture(scope="module")
def st(smollm2_path):
    config = ServerConfig(model=str(smollm2_path), parallel=2, ctx_size=4096)
    llm = Llama(smollm2_path, n_ctx=4096, n_threads=1)
    template = ServerState(config)._chat_template(llm)
    return SimpleNamespace(config=config, llm=llm, template=template, engine=SimpleNamespace(n_ctx_slot=2048),
                           lora_infos=[], lora_scales=[])


def refused(parse, st, body) -> tuple[int, str]:
    with pytest.raises(ApiError) as e:
        parse(st, body)
    return e.value.code, e.value.message


def test_chat_maps_openai_fields_to_native_ones(st):
    req = schemas.chat(st, {"messages": MSGS, "logprobs": True, "top_logprobs": 3, "max_completion_tokens": 5,
                            "n": 2, "stream": True, "stream_options": {"include_usage": True}})
    assert len(req.tasks) == 2 and req.tasks[0] is req.tasks[1]
    task = req.tasks[0]
    assert task.sampling.n_probs == 3 and task.n_predict == 5 and task.stream and req.stream and req.include_usage
    prompt = schemas.chat_prompt(st, {"messages": MSGS})
    assert prompt.endswith("<|im_start|>assistant\n")
    assert task.prompt == st.llm.tokenizer.tokenize(prompt, add_special=True, parse_special=True)
    one = schemas.chat(st, {"messages": MSGS, "logprobs": True, "max_tokens": 7, "max_completion_tokens": 5})
    assert one.tasks[0].sampling.n_probs == 1 and one.tasks[0].n_predict == 7  # max_tokens wins
    assert not one.stream and not one.include_usage and len(one.tasks) == 1
    assert schemas.chat(st, {"messages": MSGS, "logprobs": False}).tasks[0].sampling.n_probs == 0


def test_chat_problems_in_llama_servers_order(st):
    cases = [
        ({"messages": [], "stream": "yes", "n": 9}, "Field 'stream': expected a boolean"),
        ({"messages": [], "n": 9}, "Field 'n': Value must be between 1 <= value <= 2, but got 9"),
        ({"messages": {}, "logprobs": 3}, "'messages' must be an array of message objects"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "invalid message role: 'wizard'"),
        ({"messages": [{"role": "user", "content": 7}]},
         "message content must be a string or an array of content parts"),
        ({"messages": [{"role": "user", "content": [{"type": "file"}]}]}, "only text content parts are supported"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
         "image input is not supported - hint: if this is unexpected, you may need to provide the mmproj"),
        ({"messages": [{"role": "assistant", "content": None}]}, "message content is required"),
        ({"messages": MSGS, "chat_template_kwargs": "x", "logprobs": 3},
         "Field 'chat_template_kwargs': expected an object"),
        ({"messages": MSGS, "continue_final_message": True, "add_generation_prompt": True},
         "Cannot set both add_generation_prompt and continue_final_message"),
        ({"messages": MSGS, "continue_final_message": True},
         "continue_final_message needs the last message to be from the assistant"),
        ({"messages": MSGS, "logprobs": 3, "grammar": 5}, "Field 'logprobs': expected a boolean"),
        ({"messages": MSGS, "top_logprobs": 2}, "top_logprobs requires logprobs to be set to true"),
        ({"messages": MSGS, "json_schema": {}, "grammar": 'root ::= "a"'}, "Cannot use both json_schema and grammar"),
    ]
    for body, message in cases:
        code = 500 if message.startswith("image input") else 400  # (llama-server's 500 for media)
        assert refused(schemas.chat, st, body) == (code, message), body


def test_continue_final_message(st):
    msgs = [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "Hi there, I am"}]
    prompt = schemas.chat_prompt(st, {"messages": msgs, "continue_final_message": True})
    assert prompt.endswith("<|im_start|>assistant\nHi there, I am")


def test_completion_repeats_each_prompt_n_times_in_order(st):
    req = schemas.completion(st, {"prompt": ["Hello", [1, 2, 3]], "n_cmpl": 2, "return_tokens": True,
                                  "response_fields": ["content"]})
    assert req.prompts == ["Hello", "Hello", [1, 2, 3], [1, 2, 3]]
    assert req.prompt_ids[2:] == [[1, 2, 3]] * 2 and req.prompt_ids[0] == req.tasks[0].prompt
    assert req.tasks[0] is req.tasks[1] and req.tasks[2] is req.tasks[3] and req.tasks[1] is not req.tasks[2]
    assert req.return_tokens and req.response_fields == ["content"] and not req.stream
    assert schemas.completion(st, {"prompt": "x", "response_fields": []}).response_fields is None
    assert len(schemas.completion(st, {"prompt": "x", "n": 2}).tasks) == 2  # `n` when n_cmpl is not given


def test_completion_problems(st):
    assert refused(schemas.completion, st, {"prompt": "x", "return_tokens": 1, "n_cmpl": 9}) == \
        (400, "Field 'return_tokens': expected a boolean")
    assert refused(schemas.completion, st, {"prompt": "x", "n_cmpl": 5, "n": 1})[1].startswith("Field 'n_cmpl'")
    assert refused(schemas.completion, st, {"n_predict": 3}) == (400, "\"prompt\" is required")
    assert refused(schemas.completion, st, {"prompt": {"prompt_string": "x", "multimodal_data": ["AA"]}}) == \
        (501, "This server does not support multimodal input")


def test_openai_completion(st):
    req = schemas.openai_completion(st, {"prompt": ["A", "B"], "n": 2, "logprobs": 2, "stream": True,
                                         "stream_options": {"include_usage": 1}})
    assert [t.prompt for t in req.tasks] == [req.prompt_ids[0]] * 2 + [req.prompt_ids[2]] * 2
    assert req.tasks[0].sampling.n_probs == 2 and req.include_usage and req.stream
    for lp in (True, 1.5, "2"):
        assert refused(schemas.openai_completion, st, {"prompt": "x", "logprobs": lp, "n": 9}) == \
            (400, "Field 'logprobs': expected an integer")
    assert refused(schemas.openai_completion, st, {"prompt": None}) == (400, "\"prompt\" is required")


# -- chats with tools (a tool-capable template from tests/data/chat_templates) -------------------

WEATHER = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}}
ASK = [{"role": "user", "content": "Weather in Paris?"}]


def with_template(st, name: str, **cfg):
    from helpers.chat_cases import TEMPLATES

    config = ServerConfig(model=st.config.model, parallel=2, ctx_size=4096,
                          chat_template_file=str(TEMPLATES / f"{name}.jinja"), **cfg)
    return SimpleNamespace(config=config, llm=st.llm, template=ServerState(config)._chat_template(st.llm),
                           engine=st.engine, lora_infos=[], lora_scales=[])


def test_tools_give_the_formats_grammar_and_syntax(st):
    qwen = with_template(st, "Qwen-Qwen2.5-7B-Instruct")
    auto = schemas.chat(qwen, {"messages": ASK, "tools": [WEATHER]})
    task = auto.tasks[0]
    assert auto.syntax.format == "Hermes 2 Pro" and auto.syntax.parse_tool_calls
    assert task.grammar is not None and task.grammar_lazy and task.grammar_triggers
    assert "get_weather" in schemas.chat_prompt(qwen, {"messages": ASK, "tools": [WEATHER]})  # /apply-template
    required = schemas.chat(qwen, {"messages": ASK, "tools": [WEATHER], "tool_choice": "required"}).tasks[0]
    assert required.grammar is not None and not required.grammar_lazy
    none = schemas.chat(qwen, {"messages": ASK, "tools": [WEATHER], "tool_choice": "none"})
    assert none.tasks[0].grammar is None and not none.syntax.parse_tool_calls
    plain = schemas.chat(qwen, {"messages": ASK, "response_format": {"type": "json_object"}})
    assert plain.tasks[0].grammar is not None and not plain.syntax.parse_tool_calls  # the schema's grammar
    mixed = schemas.chat(qwen, {"messages": ASK, "tools": [WEATHER], "response_format": {"type": "json_object"}})
    assert mixed.syntax.format == "Generic" and mixed.tasks[0].grammar is not None  # one grammar for both
    llama = with_template(st, "meta-llama-Llama-3.2-3B-Instruct")
    assert "<|eom_id|>" in schemas.chat(llama, {"messages": ASK, "tools": [WEATHER], "stop": ["x"]}).tasks[0].stop


def test_bad_tools_are_400s(st):
    from pyllama.errors import InvalidRequest

    qwen = with_template(st, "Qwen-Qwen2.5-7B-Instruct")
    for body in ({"tools": [{"type": "retrieval"}]}, {"tools": "x"},
                 {"tools": [WEATHER], "tool_choice": "sometimes"},
                 {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
                 {"tools": [WEATHER], "grammar": 'root ::= "x"'}, {"reasoning_format": "loud"}):
        with pytest.raises(InvalidRequest):
            schemas.chat(qwen, {"messages": ASK, **body})
    assert refused(schemas.chat, qwen, {"messages": ASK, "parallel_tool_calls": "yes"}) == \
        (400, "Field 'parallel_tool_calls': expected a boolean")


def test_thinking_kwargs_and_reasoning_format(st):
    qwen3 = with_template(st, "Qwen-Qwen3-0.6B", chat_template_kwargs='{"enable_thinking": false}')
    off = "<|im_start|>assistant\n<think>\n\n</think>\n\n"
    assert schemas.chat_prompt(qwen3, {"messages": ASK}).endswith(off)  # --chat-template-kwargs
    on = {"messages": ASK, "chat_template_kwargs": {"enable_thinking": True}}
    assert not schemas.chat_prompt(qwen3, on).endswith(off)  # the request's kwargs win
    budget0 = with_template(st, "Qwen-Qwen3-0.6B", reasoning_budget=0)
    assert schemas.chat_prompt(budget0, {"messages": ASK}).endswith(off)
    assert not schemas.chat_prompt(budget0, {"messages": ASK, "enable_thinking": True}).endswith(off)
    assert schemas.chat(budget0, {"messages": ASK}).syntax.reasoning_format == "auto"
    assert schemas.chat_prompt(with_template(st, "Qwen-Qwen3-0.6B", reasoning="off"), {"messages": ASK}).endswith(off)
    oss = with_template(st, "openai-gpt-oss-120b", reasoning_effort="high")
    assert "Reasoning: high" in schemas.chat_prompt(oss, {"messages": ASK})
    assert "Reasoning: low" in schemas.chat_prompt(oss, {"messages": ASK, "reasoning_effort": "low"})
    past = ASK + [{"role": "assistant", "content": "Sunny.", "reasoning_content": "OLD THOUGHT"},
                  {"role": "user", "content": "And tomorrow?"},
                  {"role": "assistant", "content": "Rain.", "reasoning_content": "LAST THOUGHT"},
                  {"role": "user", "content": "Thanks"}]
    name = "mistralai-Ministral-3-14B-Reasoning-2512"
    kept = schemas.chat_prompt(with_template(st, name), {"messages": past})
    dropped = schemas.chat_prompt(with_template(st, name, reasoning_preserve=False), {"messages": past})
    assert "OLD THOUGHT" in kept and "OLD THOUGHT" not in dropped and "LAST THOUGHT" in dropped
    none = with_template(st, "Qwen-Qwen3-0.6B", reasoning_format="none")
    assert schemas.chat(none, {"messages": ASK}).syntax.reasoning_format == "none"
    assert schemas.chat(none, {"messages": ASK, "reasoning_format": "deepseek"}).syntax.reasoning_format == "deepseek"
    with pytest.raises(ValueError, match="--chat-template-kwargs"):
        ServerConfig(chat_template_kwargs="[1]")
    with pytest.raises(ValueError, match="--reasoning-format"):
        ServerConfig(reasoning_format="loud")
