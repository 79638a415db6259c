"""Chat with tools, for every template in tests/data/chat_templates (the real templates of
tool-calling and reasoning models): a conversation with tools, tool calls, tool results
and reasoning renders, capabilities and format are detected as llama-server does, canned
outputs of the template's format parse into the exact message (also streamed, through
the OpenAI SDK's own accumulator), and the tool-call grammars accept what the model is
meant to write: from the first token for `required`, from the trigger for `auto`."""

from __future__ import annotations

import itertools
import json
from datetime import datetime
from functools import lru_cache

import pytest
import regex

from helpers.chat_cases import CANNED, EXPECTED, SHOWS_REASONING, TEMPLATES, TOOLS, conversation
from pyllama import _native
from pyllama.chat import ChatInputs, ChatStream, ChatTemplate, apply_chat, assign_ids, parse_output
from pyllama.chat.formats import format_by_name
from pyllama.grammar import compile_grammar, compile_trigger, trigger_start

NAMES = sorted(EXPECTED)
NOW = datetime(2025, 3, 14, 9, 26)
VOCAB = _native.GrammarVocab([b"x"], [])


@lru_cache(maxsize=None)
def template(name: str) -> ChatTemplate:
    return ChatTemplate((TEMPLATES / name).read_text(), bos_token="<s>", eos_token="</s>")


def request(name: str, **kw):
    kw.setdefault("tools", TOOLS)
    kw.setdefault("now", NOW)
    messages = kw.pop("messages", None) or conversation(False)
    return apply_chat(template(name), ChatInputs(messages, **kw))


def cases(select=lambda case: True):
    return [pytest.param(n, c, id=f"{n[:-6]}-{c}") for n in NAMES for c in CANNED[EXPECTED[n][0]] if select(c)]


def test_every_template_is_covered():
    assert {p.name for p in TEMPLATES.glob("*.jinja")} == set(EXPECTED)


@pytest.mark.parametrize("name", NAMES)
def test_format_and_capabilities(name):
    fmt, caps = EXPECTED[name]
    assert request(name).format == fmt
    detected = template(name).caps.to_json()
    assert {k: detected[k] for k in caps} == caps
    assert set(detected) >= {"supports_tools", "supports_tool_calls", "supports_parallel_tool_calls",
                             "supports_system_role", "supports_thinking", "supports_preserve_reasoning"}


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("end_with_tool", [False, True], ids=["full", "after-tool"])
def test_tool_conversation_renders(name, end_with_tool):
    caps = template(name).caps
    parallel = caps.supports_parallel_tool_calls
    p = request(name, messages=conversation(parallel, end_with_tool), parallel_tool_calls=parallel)
    for text in ("What is the weather in Paris?", "get_weather", "Paris", "Sunny, 21C"):
        assert text in p.prompt, text
    if parallel:
        assert "get_time" in p.prompt and "14:05" in p.prompt
    if not end_with_tool:  # (Mistral Nemo shows the system message in the last user turn only)
        for text in ("You are a helpful assistant.", "It is sunny and 21C.", "Thanks! And tomorrow?"):
            assert text in p.prompt, text
    elif name in SHOWS_REASONING:
        assert "The user wants the weather." in p.prompt
    assert p.prompt.count("Sunny, 21C") == 1
    plain = apply_chat(template(name), ChatInputs([{"role": "user", "content": "Hello"}], now=NOW))
    assert "Hello" in plain.prompt and not plain.grammar


@pytest.mark.parametrize("name,case", cases())
def test_canned_output_parses(name, case):
    p = request(name)
    text, expected = CANNED[p.format][case]
    assert parse_output(text, p.syntax) == expected


@pytest.mark.parametrize("name", NAMES)
def test_ids_are_the_models_or_new(name):
    p = request(name)
    text, expected = CANNED[p.format]["single"]
    msg = assign_ids(parse_output(text, p.syntax), p.syntax)
    want = expected.tool_calls[0].id
    assert msg.tool_calls[0].id == want if want else len(msg.tool_calls[0].id) >= 9
    out = msg.to_openai()
    assert out["content"] is None and out["tool_calls"][0]["type"] == "function"


def accepts(grammar_text: str, text: str) -> bool:
    m = _native.GrammarMatcher(compile_grammar(grammar_text), VOCAB)
    return m.accept_text(text.encode()) and m.complete()


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("parallel", [False, True], ids=["one", "parallel"])
def test_required_grammar_accepts_a_call(name, parallel):
    p = request(name, tool_choice="required", parallel_tool_calls=parallel)
    assert not p.grammar_lazy
    assert p.parallel_tool_calls == (parallel and template(name).caps.supports_parallel_tool_calls)
    calls = CANNED[p.format]
    assert accepts(p.grammar, calls["parallel" if p.parallel_tool_calls else "single"][0])
    if not p.parallel_tool_calls and p.format not in ("Functionary v3.2", "Llama 3.x", "Llama 3.x with builtin tools"):
        assert not accepts(p.grammar, calls["parallel"][0])
    assert not accepts(p.grammar, "Hello")


def test_required_grammar_closes_reasoning_the_prompt_opened():
    """Else the call would be read as reasoning: the parser takes all before </think>."""
    p = request("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", tool_choice="required")
    text = CANNED[p.format]["single"][0]
    assert p.thinking_forced_open and text.startswith("</think>") and accepts(p.grammar, text)
    bare = text[len("</think>"):].lstrip()
    assert not accepts(p.grammar, bare) and not parse_output(bare, p.syntax).tool_calls
    lazy = request("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja")
    assert lazy.grammar_lazy and lazy.grammar.split("root ::= ")[1].startswith('( "</think>" space )?')


@pytest.mark.parametrize("name", NAMES)
def test_named_function_grammar(name):
    p = request(name, tool_choice={"type": "function", "function": {"name": "get_time"}})
    assert not p.grammar_lazy and "get_time" in p.grammar and "get_weather" not in p.grammar
    assert not accepts(p.grammar, CANNED[p.format]["single"][0])  # a get_weather call


def trigger_patterns(params):
    """The triggers as the server compiles them (llama.cpp's types: word, pattern, whole output)."""
    kinds = {1: regex.escape, 2: lambda v: v, 3: lambda v: "^" + v + "$"}
    return [compile_trigger(kinds[t["type"]](t["value"])) for t in params.grammar_triggers]


def lazy_start(params, text: str) -> int | None:
    """Where the grammar starts when the output arrives one byte at a time (as GrammarState sees it)."""
    data, patterns = text.encode(), trigger_patterns(params)
    for n in range(1, len(data) + 1):
        for pat in patterns:
            start = trigger_start(pat, data[:n])
            if start is not None:
                return start
    return None


LAZY_CASES = [pytest.param(n, c, id=f"{n[:-6]}-{c}") for n in NAMES for c in ("single", "parallel", "text_before")
              if EXPECTED[n][0] != "Generic" and not (c == "text_before" and EXPECTED[n][0].startswith("Llama 3.x"))]


@pytest.mark.parametrize("name,case", LAZY_CASES)
def test_auto_grammar_starts_at_the_call(name, case):
    parallel = case == "parallel"
    p = request(name, parallel_tool_calls=parallel)
    if parallel and not p.parallel_tool_calls:
        pytest.skip("the template shows one call per turn")
    assert p.grammar_lazy and p.grammar_triggers
    text = CANNED[p.format][case][0]
    start = lazy_start(p, text)
    assert start is not None
    m = _native.GrammarMatcher(compile_grammar(p.grammar), VOCAB)
    assert m.accept_text(text.encode()[start:]) and m.complete()
    assert lazy_start(p, "It is sunny in Paris today, 21C.") is None
    for word in (t["value"] for t in p.grammar_triggers if t["type"] == 1):
        assert word in p.preserved_tokens


@pytest.mark.parametrize("name", [n for n in NAMES if EXPECTED[n][0] == "Generic"])
def test_generic_auto_grammar_allows_a_plain_answer(name):
    p = request(name)
    assert not p.grammar_lazy
    assert accepts(p.grammar, CANNED["Generic"]["response"][0])
    assert accepts(p.grammar, CANNED["Generic"]["single"][0])


def accumulate(chunks: list[dict]) -> dict:
    """What an OpenAI client ends up with: strings appended, tool calls merged by index."""
    out = {"content": "", "reasoning_content": "", "calls": []}
    for d in chunks:
        for k in ("content", "reasoning_content"):
            out[k] += d.get(k, "")
        for tc in d.get("tool_calls", []):
            while len(out["calls"]) <= tc["index"]:
                out["calls"].append({"id": "", "name": "", "arguments": ""})
            c = out["calls"][tc["index"]]
            c["id"] += tc.get("id", "")
            c["name"] += tc.get("function", {}).get("name", "")
            c["arguments"] += tc.get("function", {}).get("arguments", "")
    return out


def stream(syntax, text: str, step: int = 1):
    ids = itertools.count()
    st = ChatStream(syntax, new_id=lambda: f"gen{next(ids)}")
    seen, deltas = [], []
    for n in range(step, len(text), step):
        deltas += st.update(text[:n])
        seen.append(accumulate(deltas))
    final, last = st.finish(text)
    return final, deltas + last, seen


@pytest.mark.parametrize("name,case", cases(lambda c: c != "malformed"))
def test_streamed_deltas_add_up_to_the_message(name, case):
    p = request(name)
    text, expected = CANNED[p.format][case]
    final, deltas, seen = stream(p.syntax, text)
    got = accumulate(deltas)
    assert got["content"] == expected.content and got["reasoning_content"] == expected.reasoning_content
    assert [(c["name"], c["arguments"]) for c in got["calls"]] == [(c.name, c.arguments) for c in expected.tool_calls]
    assert [c["id"] for c in got["calls"]] == [c.id for c in final.tool_calls]
    for c, want in zip(final.tool_calls, expected.tool_calls):
        assert c.id == (want.id or c.id) or c.id.startswith("gen")
    for s in seen:  # nothing given out early is taken back: no partial marker ever shows as content
        assert expected.content.startswith(s["content"])
        assert expected.reasoning_content.startswith(s["reasoning_content"])
    prev = []
    for n in range(1, len(text)):  # each parse extends the last: calls never vanish, arguments only grow
        calls = parse_output(text[:n], p.syntax, partial=True).tool_calls
        assert len(calls) >= len(prev)
        assert all(b.name == a.name and b.arguments.startswith(a.arguments) for a, b in zip(prev, calls))
        prev = calls


@pytest.mark.parametrize("name", NAMES)
def test_malformed_output_streams_without_errors(name):
    p = request(name)
    text, expected = CANNED[p.format]["malformed"]
    final, deltas, _ = stream(p.syntax, text)
    assert final == expected


@pytest.mark.parametrize("name", ["Qwen-Qwen3-0.6B.jinja", "mistralai-Mistral-Nemo-Instruct-2407.jinja",
                                  "openai-gpt-oss-120b.jinja", "MiniMax-M2.jinja", "Qwen3-Coder.jinja"])
def test_openai_sdk_accumulates_the_stream(name):
    from openai.lib.streaming.chat import ChatCompletionStreamState
    from openai.types.chat import ChatCompletionChunk

    p = request(name, parallel_tool_calls=True)
    text, expected = CANNED[p.format]["parallel"]
    _, deltas, _ = stream(p.syntax, text, step=3)
    state = ChatCompletionStreamState()
    first = {"role": "assistant", "content": None}
    for i, d in enumerate([first] + deltas + [{}]):
        state.handle_chunk(ChatCompletionChunk.model_validate({
            "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 0, "model": "m",
            "choices": [{"index": 0, "delta": d, "finish_reason": "tool_calls" if i == len(deltas) + 1 else None}]}))
    message = state.get_final_completion().choices[0].message
    assert [(c.function.name, c.function.arguments) for c in message.tool_calls] == \
        [(c.name, c.arguments) for c in expected.tool_calls]
    assert len({c.id for c in message.tool_calls}) == len(expected.tool_calls)


XML_TEMPLATES = ["Qwen3-Coder.jinja", "MiniMax-M2.jinja", "GLM-4.6.jinja"]
BOOKING = {"type": "function", "function": {"name": "book", "parameters": {"type": "object", "properties": {
    "city": {"type": "string", "enum": ["Paris", "New York"]},
    "code": {"type": "string", "pattern": "^[A-Z]{3}$"},
    "note": {"type": "string"}}, "required": ["city", "code"]}}}


def xml_call(p, args: list[tuple[str, str]]) -> str:
    """One call to `book` in the format's layout (after the reasoning the prompt opened)."""
    lay = format_by_name(p.format).LAYOUT
    body = "".join(f"{lay.key_start}{k}{lay.key_end}{v}{lay.value_end}" for k, v in args)
    call = f"{lay.call_start}book{lay.name_end}{body}{lay.call_end}"
    return ("</think>\n" if p.thinking_forced_open else "") + f"{lay.scope_start}{call}{lay.scope_end}"


@pytest.mark.parametrize("name", XML_TEMPLATES)
def test_xml_grammar_holds_string_arguments_to_their_schema(name):
    """An enum string is one of its raw values; a pattern makes the value a JSON string
    (read back as the string); a plain string takes any text."""
    p = request(name, tools=[BOOKING], tool_choice="required")
    good = xml_call(p, [("city", "New York"), ("code", '"JFK"'), ("note", "window seat, <b>please</b>")])
    if not accepts(p.grammar, good):  # the layout's exact whitespace: find it from the template's own output
        pytest.fail(f"{p.format} grammar refuses {good!r}:\n{p.grammar}")
    assert p.format in ("Qwen3 Coder", "MiniMax-M2", "GLM 4.5")
    assert not accepts(p.grammar, xml_call(p, [("city", "Berlin"), ("code", '"JFK"')]))
    assert not accepts(p.grammar, xml_call(p, [("city", "Paris"), ("code", '"jfk"')]))
    assert not accepts(p.grammar, xml_call(p, [("city", "Paris"), ("code", "JFK")]))
    msg = parse_output(good, p.syntax)
    assert [json.loads(c.arguments) for c in msg.tool_calls] == [
        {"city": "New York", "code": "JFK", "note": "window seat, <b>please</b>"}]


@pytest.mark.parametrize("name,case", cases())
def test_memoized_parses_equal_fresh_ones(name, case):
    """A stream's parser resumes its searches where the parse of the shorter text left
    them: at every length, with text arriving one character (then five) at a time, the
    message is the one a fresh parse gives."""
    p = request(name)
    text, _ = CANNED[p.format][case]
    for step in (1, 5):
        memo: dict = {}
        for n in list(range(0, len(text), step)) + [len(text)]:
            assert parse_output(text[:n], p.syntax, partial=True, memo=memo) == \
                parse_output(text[:n], p.syntax, partial=True), (step, text[:n])
        assert parse_output(text, p.syntax, memo=memo) == parse_output(text, p.syntax)
