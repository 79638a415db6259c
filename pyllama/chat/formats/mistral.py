"""Mistral's formats.

- Mistral Nemo: `[TOOL_CALLS][{"name": ..., "arguments": {...}, "id": "<9 letters/digits>"}, ...]`;
  the template insists on 9-character ids, so ids made here are 9 characters too.
- Magistral: the same calls after `[THINK]...[/THINK]` reasoning.
- Ministral 3 (and Mistral Large 3): `[THINK]...[/THINK]`, content, then
  `[TOOL_CALLS]name[ARGS]{...}` per call; the template takes reasoning as a `thinking`
  content block, so messages are rewritten into blocks. llama.cpp reports this one as
  "peg-native" (its generic parser-combinator format); here it has its own name.

Beyond llama.cpp, text after the call list is content instead of failing the parse."""

from __future__ import annotations

import regex

from ..output_parser import Incomplete, Malformed
from ...schema.builder import excluding
from .base import (ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, array_of, args_text, call_object_schema,
                   calls_from_array, literal, random_id, rule_name, think_prefix, word)

_ID = {"type": "string", "pattern": "^[a-zA-Z0-9]{9}$"}


class MistralNemo(ChatFormat):
    name = "Mistral Nemo"
    think = None
    preserved = ("[TOOL_CALLS]",)

    @staticmethod
    def detect(src: str) -> bool:
        return "[TOOL_CALLS]" in src

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        schemas = [call_object_schema(n, params, extra={"id": _ID}) for n, params in spec.functions()]
        calls = g.add_schema("tool-calls", array_of(schemas, spec.parallel))
        root = think_prefix(spec, "[/THINK]") + f'"[TOOL_CALLS]" {calls}'
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=[word("[TOOL_CALLS]")])

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        if p.find_literal("[TOOL_CALLS]") is not None:
            calls_from_array(p, p.json())
            p.spaces()
        p.add_content(p.rest())

    def new_id(self) -> str:
        return random_id(9)


class Magistral(MistralNemo):
    name = "Magistral"
    think = ("[THINK]", "[/THINK]")
    opened = ("[THINK]",)
    close_thinking = "[/THINK]"
    preserved = ("[THINK]", "[/THINK]", "[TOOL_CALLS]")

    @staticmethod
    def detect(src: str) -> bool:
        return "[THINK]" in src and "[/THINK]" in src


_NAME = regex.compile(r"([^\[\]\s]+)\[ARGS\]")


class Ministral3(ChatFormat):
    name = "Ministral 3"
    think = ("[THINK]", "[/THINK]")
    preserved = ("[THINK]", "[/THINK]", "[TOOL_CALLS]", "[ARGS]")

    @staticmethod
    def detect(src: str) -> bool:
        return "[SYSTEM_PROMPT]" in src and "[TOOL_CALLS]" in src and "[ARGS]" in src

    def adjust_messages(self, messages):
        out = []
        for m in messages:
            if m["role"] not in ("system", "assistant"):
                out.append(m)
                continue
            blocks = []
            if isinstance(m.get("reasoning_content"), str):
                blocks.append({"type": "thinking", "thinking": m["reasoning_content"]})
            if isinstance(m.get("content"), str) and m["content"]:
                blocks.append({"type": "text", "text": m["content"]})
            elif isinstance(m.get("content"), list):
                blocks += m["content"]
            out.append({**{k: v for k, v in m.items() if k != "reasoning_content"}, "content": blocks})
        return out

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        alts = [g.add_rule(f"tool-{rule_name(n)}", f'{literal(n + "[ARGS]")} {g.add_schema(f"tool-{rule_name(n)}-args", p)}')
                for n, p in spec.functions()]
        call = g.add_rule("tool-call", '"[TOOL_CALLS]" ( ' + " | ".join(alts) + " )")
        root = f"{call}+" if spec.parallel else call
        if spec.required:  # from the first token: the reasoning may come first
            think = g.add_rule("think", f'"[THINK]" {excluding(["[/THINK]"])} "[/THINK]"')
            root = f"{think}? {root}"
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=[word("[TOOL_CALLS]")])

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        if p.find_literal("[TOOL_CALLS]") is not None:
            while True:
                m = p.match(_NAME)
                if m is None:
                    raise Incomplete("tool name") if p.at_end else Malformed("expected name[ARGS]")
                node = p.json()
                p.add_call(m.group(1), args_text(node))
                if not node.complete:
                    raise Incomplete("tool call")
                p.spaces()
                if not p.try_literal("[TOOL_CALLS]"):
                    break
        p.add_content(p.rest())
