"""What every chat format provides, and the pieces several share.

A format knows, for one family of templates: how to detect it from the template
source; what extra variables and message shapes the template wants; whether the
rendered prompt opened a reasoning block; the grammar that constrains a tool call
(with the triggers that start it lazily, llama.cpp's numbering: 1 word, 2 pattern
found anywhere, 3 pattern matching the whole output so far); and how to parse the
model's output into content, reasoning and tool calls."""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from datetime import datetime

from ...schema.builder import GrammarBuilder, literal
from ..output_parser import Incomplete, Malformed, OutputParser
from ..partial_json import JsonNode

TRIGGER_TOKEN, TRIGGER_WORD, TRIGGER_PATTERN, TRIGGER_PATTERN_FULL = range(4)
_ALNUM = string.ascii_letters + string.digits


def word(value: str) -> dict:
    return {"type": TRIGGER_WORD, "value": value}


def pattern(value: str) -> dict:
    return {"type": TRIGGER_PATTERN, "value": value}


def pattern_full(value: str) -> dict:
    return {"type": TRIGGER_PATTERN_FULL, "value": value}


@dataclass
class ToolSpec:
    """What the tool-call grammar must allow."""

    tools: list[dict]        # normalized tools ({type, function: {name, description, parameters}})
    required: bool           # a call from the first token (tool_choice required or a named function)
    parallel: bool           # several calls
    forced_open: bool = False  # the prompt opened a reasoning block the output must close first
    json_schema: dict | None = None  # response_format schema (the generic format's plain answers)

    def functions(self) -> list[tuple[str, dict]]:
        return [(t["function"]["name"], t["function"]["parameters"]) for t in self.tools]


@dataclass
class ToolGrammar:
    text: str
    lazy: bool
    triggers: list[dict] = field(default_factory=list)
    preserved: list[str] = field(default_factory=list)


def random_id(n: int = 32) -> str:
    """llama-server's tool-call ids: random letters and digits."""
    rng = random.SystemRandom()
    return "".join(rng.choice(_ALNUM) for _ in range(n))


def rule_name(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name) or "tool"


class ChatFormat:
    name = "Content-only"
    think: tuple[str, str] | None = ("<think>", "</think>")  # reasoning markers (also for the plain fallback)
    opened: tuple[str, ...] = ()      # prompt endings that mean the template opened reasoning
    close_thinking = "</think>"       # appended to such a prompt when thinking is off
    preserved: tuple[str, ...] = ()   # special tokens the output must show as text
    stops: tuple[str, ...] = ()       # extra stop strings
    needs_no_schema = False           # skipped when a response_format schema comes with tools

    def __init__(self, src: str = ""):
        self.src = src  # the template source (a few formats patch what its render gets wrong)

    @staticmethod
    def detect(src: str) -> bool:
        return False

    @property
    def think_end(self) -> str:
        """What a reasoning budget forces to end reasoning and start the answer."""
        return self.think[1] if self.think else ""

    def reported_name(self, tools: list[dict]) -> str:
        """The `chat_format` llama-server reports for a request with these tools."""
        return self.name

    def template_context(self, tools: list[dict], now: datetime, enable_thinking: bool = True) -> dict:
        """Variables this template reads besides the standard ones."""
        return {}

    def adjust_messages(self, messages: list[dict]) -> list[dict]:
        return messages

    def finish_prompt(self, prompt: str, enable_thinking: bool, add_generation_prompt: bool = True) -> tuple[str, bool]:
        """(prompt, thinking_forced_open): a prompt ending in an open reasoning block is
        closed when thinking is off, else the output starts inside reasoning."""
        for suffix in self.opened:
            if prompt.endswith(suffix):
                return (prompt, True) if enable_thinking else (prompt + self.close_thinking, False)
        return prompt, False

    def grammar(self, spec: ToolSpec) -> ToolGrammar | None:
        return None

    def parse(self, p: OutputParser) -> None:
        """Content (and reasoning) only; formats with tool calls override this."""
        self.parse_plain(p)

    def reasoning_then_calls(self, p: OutputParser) -> bool:
        """Reasoning in this format's markers, then whether tool calls are to be read;
        when they are not (no tools, tool_choice none), the rest is content."""
        if self.think:
            p.reasoning(*self.think)
        if p.syntax.parse_tool_calls:
            return True
        p.add_content(p.rest())
        return False

    def parse_plain(self, p: OutputParser) -> None:
        if self.think:
            p.reasoning(*self.think)
        p.add_content(p.rest())

    def new_id(self) -> str:
        return random_id()


# -- JSON tool calls --------------------------------------------------------------------------

def args_text(node: JsonNode | None) -> str:
    """A call's arguments as JSON text: an object minified (a prefix while incomplete); a
    string holding JSON text is used as is once complete."""
    if node is None:
        return ""
    if node.kind == "string":
        return node.value() if node.complete else ""
    return node.minified()


def call_from_node(p: OutputParser, node: JsonNode, name_key: str = "name", args_key: str = "arguments",
                   id_key: str | None = "id") -> bool:
    """Add the call a JSON object describes; False when its name is not known yet (or it
    is not an object). An incomplete object adds a call with partial arguments."""
    if node.kind != "object":
        if node.complete:
            raise Malformed("a tool call must be an object")
        return False
    name = node.member(name_key)
    if name is None or not name.complete or name.kind != "string":
        if node.complete:
            raise Malformed("a tool call without a name")
        return False
    args = node.member(args_key)
    if node.complete and args is None:
        raise Malformed("a tool call without arguments")
    ident = node.member(id_key) if id_key else None
    call_id = ident.value() if ident is not None and ident.complete and ident.kind == "string" else ""
    p.add_call(name.value(), args_text(args) if args is not None else "", call_id)
    return True


def calls_from_array(p: OutputParser, node: JsonNode, **keys) -> None:
    """Add every call of a JSON array; Incomplete when the array is."""
    if node.kind != "array":
        if node.complete:
            raise Malformed("expected an array of tool calls")
        raise Incomplete("array")
    for item in node.items:
        call_from_node(p, item, **keys)
    if not node.complete:
        raise Incomplete("tool calls")
    if not node.items:
        raise Malformed("an empty list of tool calls")


def call_object_schema(name: str, params: dict, *, name_key="name", args_key="arguments", extra=None) -> dict:
    props = {name_key: {"type": "string", "const": name}, args_key: params}
    props.update(extra or {})
    return {"type": "object", "properties": props, "required": list(props)}


def array_of(schemas: list[dict], parallel: bool) -> dict:
    schema = {"type": "array", "items": schemas[0] if len(schemas) == 1 else {"anyOf": schemas}, "minItems": 1}
    if not parallel:
        schema["maxItems"] = 1
    return schema


def think_prefix(spec: ToolSpec, end: str = "</think>") -> str:
    """With reasoning opened by the prompt, the closing tag leads the tool calls. A lazy
    grammar starts at the trigger's closing tag, which may be there or not (llama.cpp's
    rule: optional). A grammar from the first token (required, a named function) makes
    the model write it: the parser reads everything before it as reasoning, so a call
    with no closing tag in front would come back as reasoning_content, not as a call
    (what llama-server answers when the model skips the optional tag)."""
    if not spec.forced_open:
        return ""
    return f"{literal(end)} space " if spec.required else f"( {literal(end)} space )? "


def dumps(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


__all__ = ["ChatFormat", "ToolSpec", "ToolGrammar", "GrammarBuilder", "literal", "word", "pattern",
           "pattern_full", "args_text", "call_from_node", "calls_from_array", "call_object_schema", "array_of",
           "think_prefix", "dumps", "random_id", "rule_name", "Incomplete", "Malformed", "OutputParser"]
