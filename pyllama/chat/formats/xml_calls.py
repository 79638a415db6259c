"""Tool calls written as tags around a name and one tag pair per argument: Qwen3-Coder
(`<tool_call><function=f><parameter=k>v</parameter></function></tool_call>`), MiniMax-M2
(`<minimax:tool_call><invoke name="f"><parameter name="k">v</parameter></invoke>...`) and
GLM 4.5 / 4.6 (`<tool_call>f<arg_key>k</arg_key><arg_value>v</arg_value></tool_call>`).

An argument whose schema is a plain string is the raw text between the tags; any other
is read as JSON (and kept as text if it is not JSON), so `"5"` for a string parameter
stays a string (llama.cpp reads every value as JSON first). Streaming: a raw string
argument grows as it is generated; another argument appears once its tag closes.

The grammar holds string arguments to their schema, where llama.cpp lets any text
through: an `enum` or `const` is a choice of the raw values; a `pattern`, `format` or
length bound makes the value a JSON string (quoted and escaped, which the schema
converter can check), read back as JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass

from ...schema.builder import excluding
from ..output_parser import Incomplete, Malformed, partial_start
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, dumps, literal, rule_name, think_prefix, word


@dataclass(frozen=True)
class XmlForm:
    """The markers a parser looks for (whitespace around them is free)."""

    scope_start: str   # around all the calls of a turn ("" for none)
    scope_end: str
    call_start: str    # before the name
    name_end: str      # after the name ("": the name ends at a newline or the first key)
    key_start: str
    key_end: str
    value_start: str   # between key_end and the value (after optional whitespace)
    value_end: str
    call_end: str
    trim: bool         # values lose surrounding whitespace


@dataclass(frozen=True)
class XmlLayout:
    """What a grammar makes the model write, exactly as the template renders it."""

    scope_start: str
    scope_end: str
    call_start: str
    name_end: str
    key_start: str
    key_end: str
    value_end: str
    call_end: str
    scope_per_call: bool  # each call in its own scope (Qwen3-Coder) or all in one (MiniMax)


def is_string_schema(schema) -> bool:
    if not isinstance(schema, dict):
        return False
    t = schema.get("type")
    return t == "string" or (isinstance(t, list) and t == ["string"])


_JSON_STRING_KEYS = ("pattern", "format", "minLength", "maxLength")


def raw_string_schema(schema) -> bool:
    """A string argument written as raw text: one without a pattern, format or length
    bound (those are written as JSON strings)."""
    return is_string_schema(schema) and not any(k in schema for k in _JSON_STRING_KEYS)


def _raw_choices(schema, value_end: str) -> list[str] | None:
    """The raw values an enum/const string argument may take (those the closing tag
    does not cut), or None when it takes any text."""
    if "const" in schema:
        values = [schema["const"]]
    elif isinstance(schema.get("enum"), list):
        values = schema["enum"]
    else:
        return None
    return [v for v in values if isinstance(v, str) and value_end not in v]


def _param_schemas(tools: list[dict], name: str) -> dict | None:
    for t in tools:
        if t["function"]["name"] == name:
            props = t["function"]["parameters"].get("properties")
            return props if isinstance(props, dict) else {}
    return None


def _value(raw: str, schema, known: bool):
    if known and raw_string_schema(schema):
        return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def parse_xml_calls(p, form: XmlForm) -> None:
    """Content, calls, and any content after them, to the end of the output."""
    opener = form.scope_start or form.call_start
    while p.find_literal(opener) is not None:
        if form.scope_start:
            p.spaces()
            p.expect_literal(form.call_start)
        while True:
            _call(p, form)
            p.spaces()
            if not (form.scope_start and p.try_literal(form.call_start)):
                break  # (several calls may share one scope)
        if form.scope_start:
            p.expect_literal(form.scope_end)
        p.spaces()
    p.add_content(p.rest())


def _call(p, form: XmlForm) -> None:
    text = p.text
    if form.name_end:
        i = text.find(form.name_end, p.pos)
        if i < 0:
            raise Incomplete("tool name")
        name, p.pos = text[p.pos:i].strip(), i + len(form.name_end)
    else:
        stops = [j for j in (text.find("\n", p.pos), text.find(form.key_start, p.pos), text.find(form.call_end, p.pos))
                 if j >= 0]
        if not stops:
            raise Incomplete("tool name")
        i = min(stops)
        name, p.pos = text[p.pos:i].strip(), i
    if not name:
        raise Malformed("a tool call without a name")
    props = _param_schemas(p.syntax.tools, name)
    known = props is not None
    pairs: list[str] = []

    def partial_call(extra: str = "") -> Incomplete:
        p.add_call(name, "{" + ",".join(pairs) + ("," if pairs and extra else "") + extra)
        return Incomplete("tool call")

    def literal(s: str) -> bool:  # a marker cut short keeps the call seen so far
        try:
            return p.try_literal(s)
        except Incomplete:
            raise partial_call() from None

    while True:
        p.spaces()
        if p.at_end:
            raise partial_call()
        if literal(form.call_end):
            break
        if not literal(form.key_start):
            if p.at_end:
                raise partial_call()
            raise Malformed("expected an argument or the end of the call")
        k = text.find(form.key_end, p.pos)
        if k < 0:
            raise partial_call()
        key, p.pos = text[p.pos:k].strip(), k + len(form.key_end)
        if form.value_start:
            p.spaces()
            if not literal(form.value_start):
                if p.at_end:
                    raise partial_call()
                raise Malformed("expected a value")
        schema = (props or {}).get(key)
        v = text.find(form.value_end, p.pos)
        if v < 0:
            if not p.partial:
                raise Malformed("an argument value does not close")
            if not (known and raw_string_schema(schema)):
                raise partial_call()
            cut = partial_start(text, form.value_end, p.pos)
            raw = text[p.pos:len(text) if cut is None else cut]
            if form.trim:
                raw = raw.lstrip()
                raw = raw[:len(raw.rstrip())]
            raise partial_call(json.dumps(key, ensure_ascii=False) + ":" + dumps(raw)[:-1])
        raw, p.pos = text[p.pos:v], v + len(form.value_end)
        if form.trim:
            raw = raw.strip()
        pairs.append(json.dumps(key, ensure_ascii=False) + ":" + dumps(_value(raw, schema, known)))
    p.add_call(name, "{" + ",".join(pairs) + "}")


def xml_grammar(spec: ToolSpec, lay: XmlLayout, trigger: str, *, end_think: str = "</think>") -> ToolGrammar:
    """Calls in the template's layout: plain string arguments are free text up to the
    closing tag, enum strings one of their raw values, the others (and strings with a
    pattern, format or length) follow their schema as JSON; required arguments must
    appear, in schema order."""
    g = GrammarBuilder()
    text_value = g.add_rule("string-arg-val", excluding([lay.value_end]))
    calls = []
    for name, params in spec.functions():
        r = rule_name(name)
        props = params.get("properties") if isinstance(params.get("properties"), dict) else {}
        required = set(params.get("required") or [])
        pieces = [literal(lay.call_start + name + lay.name_end)]
        for key, schema in props.items():
            value = _arg_value(g, f"{r}-arg-{rule_name(key)}", schema, text_value, lay.value_end)
            kv = g.add_rule(f"{r}-kv-{rule_name(key)}",
                            f"{literal(lay.key_start + key + lay.key_end)} {value} {literal(lay.value_end)}")
            pieces.append(kv if key in required else f"{kv}?")
        pieces.append(literal(lay.call_end))
        body = " ".join(pieces)
        if lay.scope_per_call and lay.scope_start:
            body = f"{literal(lay.scope_start)} {body} {literal(lay.scope_end)}"
        calls.append(g.add_rule(f"{r}-call", body))
    call = g.add_rule("tool-call", " | ".join(calls))
    body = f'{call} ( "\\n"? {call} )*' if spec.parallel else call
    if lay.scope_start and not lay.scope_per_call:
        body = f"{literal(lay.scope_start)} {body} {literal(lay.scope_end)}"
    root = think_prefix(spec, end_think) + body
    return ToolGrammar(g.build(root), lazy=not spec.required, triggers=[word(trigger)])


def _arg_value(g: GrammarBuilder, name: str, schema, text_value: str, value_end: str) -> str:
    if not raw_string_schema(schema):
        return g.add_schema(name, schema)
    choices = _raw_choices(schema, value_end)
    if choices is None:
        return text_value
    if not choices:
        return g.add_schema(name, schema)  # nothing it can take: the converter's error
    return g.add_rule(name, " | ".join(literal(c) for c in choices))


class XmlCallsFormat(ChatFormat):
    """A format of this family: its FORM (how calls are read), its LAYOUT (how the
    grammar writes them) and the TRIGGER that starts a lazy grammar; reasoning in
    `<think>...</think>` before the calls."""

    FORM: XmlForm
    LAYOUT: XmlLayout
    TRIGGER: str

    def grammar(self, spec: ToolSpec):
        return xml_grammar(spec, self.LAYOUT, self.TRIGGER)

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        parse_xml_calls(p, self.FORM)
