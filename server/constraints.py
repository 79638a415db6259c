"""What a request constrains its output with: a GBNF `grammar`, a `json_schema`,
OpenAI's `response_format`, and lazy grammars (`grammar_lazy` with
`grammar_triggers` and `preserved_tokens`). Everything wrong is a 400."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache

import regex

from pyllama.chat import ChatParams, ChatSyntax
from pyllama.chat.task_fields import grammar_fields
from pyllama.grammar import GrammarError, compile_grammar, compile_trigger
from pyllama.schema import SchemaError, schema_to_grammar

from .errors import bad_request

TRIGGER_TOKEN, TRIGGER_WORD, TRIGGER_PATTERN, TRIGGER_PATTERN_FULL = range(4)  # llama.cpp's numbering
MAX_TRIGGERS = 64            # each pattern is matched against the text after every token
MAX_TRIGGER_CHARS = 1024
MAX_PRESERVED = 1024


@dataclass
class Constraint:
    grammar: object = None                 # compiled, or None
    text: str = ""                         # the GBNF source, as reported back
    lazy: bool = False
    trigger_tokens: list[int] = field(default_factory=list)
    trigger_patterns: list = field(default_factory=list)   # compiled
    triggers: list[dict] = field(default_factory=list)     # as reported back
    preserved: list[int] = field(default_factory=list)


@lru_cache(maxsize=128)
def _schema_grammar(schema_json: str) -> str:
    return schema_to_grammar(json.loads(schema_json))


@lru_cache(maxsize=64)
def _compiled(text: str, tokenizer):
    return compile_grammar(text, tokenizer)  # a parsed grammar is immutable: tasks share it


def grammar_for_schema(schema) -> str:
    if isinstance(schema, dict) and not schema:
        schema = {"type": "object"}  # llama-server: an empty schema means any object
    try:
        return _schema_grammar(json.dumps(schema))
    except SchemaError as e:
        raise bad_request(f'"json_schema": {e}') from None
    except RecursionError:
        raise bad_request('"json_schema": schema nested too deeply') from None


def _response_format_schema(body: dict, schema):
    rf = body.get("response_format")
    if rf is None:
        return schema
    if not isinstance(rf, dict):
        raise bad_request("Field 'response_format': expected an object")
    kind = rf.get("type") or ""
    if not isinstance(kind, str):
        raise bad_request("Field 'response_format.type': expected a string")
    if kind == "json_object":
        if "schema" in rf or not schema:
            schema = rf.get("schema") or {}
    elif kind == "json_schema":
        wrapper = rf.get("json_schema")
        if wrapper is not None and not isinstance(wrapper, dict):
            raise bad_request("Field 'response_format.json_schema': expected an object")
        schema = (wrapper or {}).get("schema", rf.get("schema", {}))
        if schema is None:
            schema = {}
    elif kind != "text":
        raise bad_request('response_format type must be one of "text", "json_object" or "json_schema", '
                          f"but got: {kind}")
    return schema


def requested_schema(body: dict) -> dict | None:
    """The JSON schema an OpenAI body asks the output to follow (`json_schema`, or
    `response_format`'s), as a chat format folds it into its tool-call grammar; None
    when there is none. An empty schema means any object."""
    schema = _response_format_schema(body, body.get("json_schema"))
    if schema is None or not isinstance(schema, dict):
        return None
    return schema or {"type": "object"}


def chat_constraint(state, params: ChatParams) -> Constraint:
    """A chat's tool-call grammar (pyllama.chat.ChatParams with a grammar), resolved
    against the model's tokenizer (triggers, preserved tokens). The tools' schemas are
    the request's: a grammar the matcher refuses (too ambiguous) is a 400, as a
    request's own grammar is."""
    try:
        f = _chat_fields(params.grammar, tuple(params.preserved_tokens),
                         json.dumps(params.grammar_triggers, sort_keys=True), params.grammar_lazy,
                         state.llm.tokenizer)
    except GrammarError as e:
        raise bad_request(f"invalid grammar for the tools: {e}") from None
    return Constraint(grammar=f["grammar"], text=f["grammar_text"], lazy=f["grammar_lazy"],
                      trigger_tokens=list(f["trigger_tokens"]), trigger_patterns=list(f["trigger_patterns"]),
                      triggers=[dict(t) for t in f["grammar_triggers"]], preserved=list(f["preserved_tokens"]))


@lru_cache(maxsize=64)
def _chat_fields(grammar: str, preserved: tuple, triggers_json: str, lazy: bool, tokenizer) -> dict:
    """grammar_fields, kept per distinct grammar: an agent sends the same tools with
    every turn, and compiling their grammar is the costly part."""
    params = ChatParams(prompt="", format="", syntax=ChatSyntax(), grammar=grammar, grammar_lazy=lazy,
                        grammar_triggers=json.loads(triggers_json), preserved_tokens=list(preserved))
    return grammar_fields(params, tokenizer)


def parse_constraint(state, body: dict, *, openai: bool) -> Constraint:
    tokenizer = state.llm.tokenizer
    text = body.get("grammar")
    if text is not None and not isinstance(text, str):
        raise bad_request("Field 'grammar': expected a string")
    text = text or ""
    schema = body.get("json_schema")
    if openai:
        if schema is not None and text:
            raise bad_request("Cannot use both json_schema and grammar")
        schema = _response_format_schema(body, schema)
        if schema is not None and text:
            raise bad_request("Cannot use both response_format and grammar")
    elif "grammar" in body:
        schema = None  # llama-server: a grammar field wins over json_schema on /completion
    if schema is not None:
        text = grammar_for_schema(schema)
    elif not text and "grammar" not in body:
        text = state.config.default_grammar
    c = Constraint(text=text)
    if text:
        try:
            c.grammar = _compiled(text, tokenizer)
        except GrammarError as e:
            raise bad_request(f"invalid grammar: {e}") from None
    lazy = body.get("grammar_lazy")
    if lazy is not None and not isinstance(lazy, bool):
        raise bad_request("Field 'grammar_lazy': expected a boolean")
    c.lazy = bool(lazy)
    c.preserved = _preserved_tokens(tokenizer, body.get("preserved_tokens"))
    _triggers(c, tokenizer, body.get("grammar_triggers"), state.llm.n_vocab)
    if c.lazy and not c.triggers:
        raise bad_request("Error: no triggers set for lazy grammar!")
    return c


def _preserved_tokens(tokenizer, values) -> list[int]:
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise bad_request("Field 'preserved_tokens': expected an array of strings")
    if len(values) > MAX_PRESERVED:
        raise bad_request(f"Field 'preserved_tokens': at most {MAX_PRESERVED} tokens, got {len(values)}")
    out = []
    for v in values:
        ids = tokenizer.tokenize(v, add_special=False, parse_special=True)
        if len(ids) == 1 and ids[0] not in out:
            out.append(ids[0])
    return out


def _triggers(c: Constraint, tokenizer, values, n_vocab: int) -> None:
    if values is None:
        return
    if not isinstance(values, list):
        raise bad_request("Field 'grammar_triggers': expected an array")
    if len(values) > MAX_TRIGGERS:
        raise bad_request(f"Field 'grammar_triggers': at most {MAX_TRIGGERS} triggers, got {len(values)}")
    for t in values:
        if not isinstance(t, dict) or not isinstance(t.get("type"), int) or isinstance(t.get("type"), bool) \
                or not isinstance(t.get("value"), str):
            raise bad_request("Field 'grammar_triggers': each trigger needs an integer type and a string value")
        kind, value = t["type"], t["value"]
        if len(value) > MAX_TRIGGER_CHARS:
            raise bad_request(f"Field 'grammar_triggers': a trigger value may have at most {MAX_TRIGGER_CHARS} "
                              "characters")
        if kind == TRIGGER_TOKEN:
            tok = t.get("token")
            if not isinstance(tok, int) or isinstance(tok, bool) or not 0 <= tok < n_vocab:
                raise bad_request("Field 'grammar_triggers': a token trigger needs a valid token id")
            c.trigger_tokens.append(tok)
            c.triggers.append({"type": kind, "value": value, "token": tok})
            continue
        if kind == TRIGGER_WORD:
            ids = tokenizer.tokenize(value, add_special=False, parse_special=True)
            if len(ids) == 1:
                if ids[0] not in c.preserved:
                    raise bad_request(f"Grammar trigger word should be marked as preserved token: {value}")
                c.trigger_tokens.append(ids[0])
                c.triggers.append({"type": TRIGGER_TOKEN, "value": value, "token": ids[0]})
                continue
            pattern = regex.escape(value)
        elif kind == TRIGGER_PATTERN:
            pattern = value
        elif kind == TRIGGER_PATTERN_FULL:
            pattern = ("" if value.startswith("^") else "^") + value + ("" if value.endswith("$") and value else "$")
        else:
            raise bad_request(f"Field 'grammar_triggers': unknown trigger type {kind}")
        try:
            c.trigger_patterns.append(compile_trigger(pattern))
        except regex.error as e:
            raise bad_request(f"Field 'grammar_triggers': invalid pattern {value!r}: {e}") from None
        c.triggers.append({"type": kind, "value": value})
