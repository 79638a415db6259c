"""One chat request's options as apply_chat reads them (thinking on/off and forced open,
reasoning_effort, chat_template_kwargs, tool_choice none / named, parallel calls,
assistant prefill, errors), reasoning_format when parsing, and the partial JSON that
streamed tool-call arguments are cut from."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from helpers.chat_cases import TEMPLATES, TOOLS, conversation
from pyllama.chat import ChatInputs, ChatStream, ChatSyntax, ChatTemplate, apply_chat, parse_output
from pyllama.chat.partial_json import JsonError, scan_json
from pyllama.errors import InvalidRequest

NOW = datetime(2025, 3, 14, 9, 26)
USER = [{"role": "user", "content": "Hi"}]


def t(name: str) -> ChatTemplate:
    return ChatTemplate((TEMPLATES / f"{name}.jinja").read_text(), bos_token="<s>", eos_token="</s>")


def run(name: str, messages=USER, **kw):
    return apply_chat(t(name), ChatInputs(messages, now=NOW, **kw))


def test_thinking_defaults_on_where_the_template_reacts():
    assert run("Qwen-Qwen3-0.6B").enable_thinking
    assert not run("Qwen-Qwen2.5-7B-Instruct").enable_thinking
    off = run("Qwen-Qwen3-0.6B", enable_thinking=False)
    assert off.prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert run("Qwen-Qwen3-0.6B", reasoning_effort="none").prompt == off.prompt
    assert run("Qwen-Qwen3-0.6B", chat_template_kwargs={"enable_thinking": False}).prompt == off.prompt
    with pytest.raises(InvalidRequest, match="enable_thinking"):
        run("Qwen-Qwen3-0.6B", chat_template_kwargs={"enable_thinking": "no"})


@pytest.mark.parametrize("name,opened,closed", [
    ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "<think>\n", "<think>\n</think>"),
    ("llama-cpp-deepseek-r1", "<think>\n", "<think>\n</think>"),
    ("deepseek-ai-DeepSeek-V3.1", "<think>", "<think></think>"),
    ("MiniMax-M2", "<think>\n", "<think>\n</think>\n\n"),
])
def test_thinking_forced_open_by_the_prompt(name, opened, closed):
    on = run(name)
    assert on.thinking_forced_open and on.syntax.thinking_forced_open and on.prompt.endswith(opened)
    off = run(name, enable_thinking=False)
    assert not off.thinking_forced_open and off.prompt.endswith(closed)
    msg = parse_output("The user says hi.\n</think>\n\nHello!", on.syntax)
    assert (msg.reasoning_content, msg.content) == ("The user says hi.", "Hello!")
    unclosed = parse_output("Still thinking", on.syntax)
    assert (unclosed.reasoning_content, unclosed.content) == ("Still thinking", "")


def test_reasoning_effort_and_kwargs_reach_the_template():
    assert "Reasoning: high" in run("openai-gpt-oss-120b", reasoning_effort="high").prompt
    assert "Reasoning: medium" in run("openai-gpt-oss-120b").prompt
    p = run("openai-gpt-oss-120b", chat_template_kwargs={"model_identity": "You are Pyllama."})
    assert p.prompt.startswith("<|start|>system<|message|>You are Pyllama.")
    granite = run("ibm-granite-granite-3.3-2B-Instruct", enable_thinking=True)
    assert "Write your thoughts between <think></think>" in granite.prompt


def test_tool_choice_none_renders_tools_but_parses_no_calls():
    p = run("Qwen-Qwen2.5-7B-Instruct", tools=TOOLS, tool_choice="none")
    assert "get_weather" in p.prompt and not p.grammar and not p.syntax.parse_tool_calls
    text = '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Paris"}}\n</tool_call>'
    assert parse_output(text, p.syntax).content == text


def test_parallel_calls_only_where_the_template_shows_them():
    assert run("Qwen-Qwen2.5-7B-Instruct", tools=TOOLS, parallel_tool_calls=True).parallel_tool_calls
    assert not run("meta-llama-Llama-3.2-3B-Instruct", tools=TOOLS, parallel_tool_calls=True).parallel_tool_calls
    assert not run("Qwen-Qwen2.5-7B-Instruct", tools=TOOLS).parallel_tool_calls  # off by default, as llama-server


@pytest.mark.parametrize("kw,match", [
    (dict(tool_choice={"type": "function", "function": {"name": "nope"}}), "no tool named nope"),
    (dict(tool_choice="sometimes"), "Invalid tool_choice"),
    (dict(grammar='root ::= "x"'), "grammar with tools"),
    (dict(reasoning_format="loud"), "Unknown reasoning format"),
])
def test_bad_requests(kw, match):
    with pytest.raises(InvalidRequest, match=match):
        run("Qwen-Qwen2.5-7B-Instruct", tools=TOOLS, **kw)


def test_bad_messages_and_tools():
    with pytest.raises(InvalidRequest):
        run("Qwen-Qwen2.5-7B-Instruct", messages=[{"role": "user"}])
    with pytest.raises(InvalidRequest):
        run("Qwen-Qwen2.5-7B-Instruct", tools=[{"type": "retrieval"}])
    with pytest.raises(InvalidRequest):  # the template itself refuses: roles must alternate
        run("google-gemma-2-2b-it", messages=USER + USER)


def test_assistant_prefill_is_continued():
    msgs = USER + [{"role": "assistant", "content": "Well, "}]
    p = run("Qwen-Qwen2.5-7B-Instruct", messages=msgs)
    assert p.prompt.endswith("<|im_start|>assistant\nWell, ") and p.prefill == "Well, "
    assert p.syntax.reasoning_format == "none"
    with pytest.raises(InvalidRequest, match="enable_thinking"):
        run("Qwen-Qwen3-0.6B", messages=msgs)
    assert run("Qwen-Qwen3-0.6B", messages=msgs, enable_thinking=False).prompt.endswith("</think>\n\nWell, ")
    whole = run("Qwen-Qwen2.5-7B-Instruct", messages=msgs, prefill_assistant=False, add_generation_prompt=False)
    assert whole.prompt.endswith("Well, <|im_end|>\n")
    with pytest.raises(InvalidRequest, match="2 or more assistant"):
        run("Qwen-Qwen2.5-7B-Instruct", messages=msgs + [{"role": "assistant", "content": "x"}])
    # a prefill given as text parts is continued with the parts joined by a blank line, as llama.cpp does
    parts = USER + [{"role": "assistant", "content": [{"type": "text", "text": "Wh"}, {"type": "text", "text": "ill"}]}]
    p = run("Qwen-Qwen2.5-7B-Instruct", messages=parts)
    assert p.prompt.endswith("<|im_start|>assistant\nWh\n\nill") and p.prefill == "Wh\n\nill"


def test_named_builtin_template_has_no_tools():
    p = apply_chat(ChatTemplate("chatml"), ChatInputs(USER))
    assert p.prompt == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n" and p.format == "Content-only"
    with pytest.raises(InvalidRequest):
        apply_chat(ChatTemplate("chatml"), ChatInputs(USER, tools=TOOLS))
    # a prefill is continued as with a Jinja template, and refused after another assistant turn
    prefill = USER + [{"role": "assistant", "content": "Well"}]
    assert apply_chat(ChatTemplate("chatml"), ChatInputs(prefill)).prompt.endswith("<|im_start|>assistant\nWell")
    with pytest.raises(InvalidRequest, match="2 or more assistant"):
        apply_chat(ChatTemplate("chatml"), ChatInputs(prefill + [{"role": "assistant", "content": "x"}]))


def test_bos_dropped_when_the_tokenizer_adds_it():
    src = (TEMPLATES / "meta-llama-Llama-3.2-3B-Instruct.jinja").read_text()
    with_bos = apply_chat(ChatTemplate(src, bos_token="<|begin_of_text|>"), ChatInputs(USER, now=NOW))
    without = apply_chat(ChatTemplate(src, bos_token="<|begin_of_text|>", add_bos=True), ChatInputs(USER, now=NOW))
    assert with_bos.prompt == "<|begin_of_text|>" + without.prompt
    assert "Today Date: 14 Mar 2025" in without.prompt


def test_caps_of_a_named_format_and_props_shape():
    caps = ChatTemplate("llama3").caps.to_json()
    assert caps["supports_system_role"] and not caps["supports_tools"]
    assert all(isinstance(v, bool) for v in caps.values())


# -- reasoning formats --------------------------------------------------------------------------

QWEN = "<think>\nThe user says hi.\n</think>\n\nHello!"


@pytest.mark.parametrize("fmt,stream,content,reasoning", [
    ("auto", False, "Hello!", "The user says hi."),
    ("deepseek", False, "Hello!", "The user says hi."),
    ("none", False, QWEN, ""),
    ("deepseek-legacy", False, "Hello!", "The user says hi."),
    ("deepseek-legacy", True, "<think>The user says hi.</think>Hello!", ""),
])
def test_reasoning_format(fmt, stream, content, reasoning):
    p = run("Qwen-Qwen3-0.6B", reasoning_format=fmt, stream=stream)
    msg = parse_output(QWEN, p.syntax)
    assert (msg.content, msg.reasoning_content) == (content, reasoning)


def test_reasoning_streams_before_it_closes():
    syn = ChatSyntax(format="Hermes 2 Pro")
    st = ChatStream(syn)
    assert st.update("<thi") == []
    assert st.update("<think>\nThe user") == [{"reasoning_content": "The user"}]
    assert st.update("<think>\nThe user says hi.\n</th") == [{"reasoning_content": " says hi."}]
    assert st.update("<think>\nThe user says hi.\n</think>\n\nHel") == [{"content": "Hel"}]
    msg, last = st.finish(QWEN)
    assert last == [{"content": "lo!"}] and msg.content == "Hello!"


def test_gpt_oss_analysis_channel_is_reasoning():
    p = run("openai-gpt-oss-120b", tools=TOOLS)
    text = "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>final<|message|>Done."
    assert parse_output(text, p.syntax).reasoning_content == "Think."
    raw = run("openai-gpt-oss-120b", reasoning_format="none")
    assert parse_output(text, raw.syntax).content == "<|channel|>analysis<|message|>Think.<|end|>Done."


# -- arguments ------------------------------------------------------------------------------------

def test_arguments_validate_against_the_schema():
    import jsonschema

    p = run("Qwen3-Coder", tools=TOOLS)
    text = ("<tool_call>\n<function=get_weather>\n<parameter=location>\nNew York\n</parameter>\n<parameter=days>\n"
            "4\n</parameter>\n</function>\n</tool_call>")
    call = parse_output(text, p.syntax).tool_calls[0]
    jsonschema.validate(json.loads(call.arguments), TOOLS[0]["function"]["parameters"])
    assert json.loads(call.arguments) == {"location": "New York", "days": 4}


def test_partial_json_prefixes_only_grow():
    rng = random.Random(7)
    doc = json.dumps({"a": [1, -2.5e3, True, None, "x\\\"y\u00e9\\u00e9"], "b": {"c": "line\nbreak", "d": []}},
                     indent=1)
    full = scan_json(doc, final=True).minified()
    assert json.loads(full) == json.loads(doc)
    for n in sorted(rng.sample(range(1, len(doc)), 80)):
        node = scan_json(doc[:n])
        if node is not None:
            assert full.startswith(node.minified()), doc[:n]
    for bad in ('{"a" 1}', "[1,,2]", '{"a": tru }', "nan"):
        with pytest.raises(JsonError):
            scan_json(bad)


def test_formats_without_a_template_here():
    from pyllama.chat import select_format
    from pyllama.chat.messages import normalize_tools

    tools = normalize_tools(TOOLS)
    magistral = "{{ bos_token }}[THINK]...[/THINK]{% for m in messages %}[INST]{{ m.content }}[/INST]{% endfor %}"
    assert select_format(magistral, tools=tools).name == "Magistral"
    assert select_format(magistral, tools=[]).name == "Magistral"
    syn = ChatSyntax(format="Magistral")
    text = '[THINK]Paris.[/THINK][TOOL_CALLS][{"name": "get_weather", "arguments": {"location": "Paris"}, "id": "a1b2c3d4e"}]'
    msg = parse_output(text, syn)
    assert msg.reasoning_content == "Paris." and msg.tool_calls[0].id == "a1b2c3d4e"
    plain = "{% for m in messages %}{{ m.content }}{% endfor %}"
    assert select_format(plain, tools=[]).name == "Content-only"
    assert select_format(plain, tools=tools).name == "Generic"
    assert select_format(plain, tools=tools, tool_choice="none").name == "Content-only"


def test_reasoning_preserve_off_keeps_only_the_last_turns_reasoning():
    msgs = conversation(False) + [{"role": "assistant", "content": "Tomorrow too.", "reasoning_content": "Again."},
                                  {"role": "user", "content": "Bye"}]
    kept = run("mistralai-Ministral-3-14B-Reasoning-2512", messages=msgs, tools=TOOLS)
    assert "[THINK]The user wants the weather.[/THINK]" in kept.prompt and "[THINK]Again.[/THINK]" in kept.prompt
    cut = run("mistralai-Ministral-3-14B-Reasoning-2512", messages=msgs, tools=TOOLS, reasoning_preserve=False)
    assert "The user wants the weather." not in cut.prompt and "[THINK]Again.[/THINK]" in cut.prompt


class CharTokenizer:
    """Each special string one token, every other byte one token: enough for grammar_fields and GrammarState."""

    def __init__(self, specials):
        self.specials = sorted(specials, key=len, reverse=True)
        self.pieces = [s.encode() for s in self.specials] + [bytes([b]) for b in range(256)] + [b""]
        self.eog_ids = {len(self.pieces) - 1}

    def tokenize(self, text, add_special=False, parse_special=True):
        ids, i = [], 0
        while i < len(text):
            k = next((k for k, s in enumerate(self.specials) if parse_special and text.startswith(s, i)), None)
            if k is not None:
                ids.append(k)
                i += len(self.specials[k])
            else:
                ids += [len(self.specials) + b for b in text[i].encode()]
                i += 1
        return ids

    def all_pieces(self, special=True):
        return self.pieces


@pytest.mark.parametrize("name,specials,case", [
    ("Qwen-Qwen3-0.6B", ["<tool_call>", "</tool_call>", "<think>", "</think>"], "text_before"),
    ("openai-gpt-oss-120b", ["<|channel|>", "<|message|>", "<|start|>", "<|end|>", "<|constrain|>"], "reasoning"),
    ("moonshotai-Kimi-K2", ["<|tool_calls_section_begin|>", "<|tool_call_begin|>", "<|tool_call_argument_begin|>",
                            "<|tool_call_end|>", "<|tool_calls_section_end|>"], "text_before"),
    ("meta-llama-Llama-3.1-8B-Instruct", ["<|python_tag|>"], "builtin"),
])
def test_task_fields_drive_the_engines_lazy_grammar(name, specials, case):
    from helpers.chat_cases import CANNED
    from pyllama.chat.task_fields import grammar_fields
    from pyllama.grammar import GrammarState

    tok = CharTokenizer(specials)
    p = run(name, tools=TOOLS)
    fields = grammar_fields(p, tok)
    assert fields["grammar_lazy"] and fields["grammar_text"] == p.grammar
    assert set(fields) <= {"grammar", "grammar_text", "grammar_lazy", "trigger_tokens", "trigger_patterns",
                           "grammar_triggers", "preserved_tokens"}
    state = GrammarState(fields["grammar"], tok, lazy=True, trigger_tokens=fields["trigger_tokens"],
                         trigger_patterns=fields["trigger_patterns"])
    text = CANNED[p.format][case][0]
    assert all(state.accept(t) for t in tok.tokenize(text))
    assert not state.awaiting and state.complete
    idle = GrammarState(fields["grammar"], tok, lazy=True, trigger_tokens=fields["trigger_tokens"],
                        trigger_patterns=fields["trigger_patterns"])
    assert all(idle.accept(t) for t in tok.tokenize("It is sunny.")) and idle.awaiting
    assert grammar_fields(run(name), tok) == {}
