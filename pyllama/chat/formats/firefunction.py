"""FireFunction v2: ` functools[{"name": ..., "arguments": {...}}, ...]` after optional
text. The template reads the tools as `functions` (JSON text) and the date as
`datetime`, so this format renders it even without tools."""

from __future__ import annotations

import json

import regex

from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, array_of, call_object_schema, calls_from_array, word

_START = regex.compile(r" ?functools(?=\[)")


class FireFunctionV2(ChatFormat):
    name = "FireFunction v2"
    think = None
    preserved = (" functools[",)

    @staticmethod
    def detect(src: str) -> bool:
        return " functools[" in src

    def reported_name(self, tools) -> str:
        return self.name if tools else "Content-only"

    def template_context(self, tools, now, enable_thinking=True):
        return {"datetime": now.strftime("%b %d %Y %H:%M:%S GMT"),
                "functions": json.dumps(tools, ensure_ascii=False, indent=2) if tools else ""}

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        calls = g.add_schema("tool-calls", array_of([call_object_schema(n, p) for n, p in spec.functions()],
                                                    spec.parallel))
        return ToolGrammar(g.build(f'" functools"? {calls}'), lazy=not spec.required, triggers=[word(" functools[")])

    def parse(self, p):
        if p.syntax.parse_tool_calls and p.find(_START) is not None:
            calls_from_array(p, p.json())
            p.spaces()
        p.add_content(p.rest())
