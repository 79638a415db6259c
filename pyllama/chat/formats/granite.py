"""IBM Granite 3.x: `<think>...</think><response>...</response>` when thinking, and
`<|tool_call|>[{"name": ..., "arguments": {...}}, ...]` for calls. The template reads
`thinking`.

Beyond llama.cpp, the text of an unclosed `<response>` streams as content."""

from __future__ import annotations

from .base import (ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, call_object_schema, calls_from_array, word,
                   rule_name)


class Granite(ChatFormat):
    name = "Granite"
    opened = ("<think>\n", "<think>")
    preserved = ("<think>", "</think>", "<response>", "</response>", "<|tool_call|>")

    @staticmethod
    def detect(src: str) -> bool:
        return "elif thinking" in src and "<|tool_call|>" in src

    def template_context(self, tools, now, enable_thinking=True):
        return {"thinking": enable_thinking}

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        calls = [g.add_rule(f"{rule_name(n)}-call", g.add_schema(f"{rule_name(n)}-args", call_object_schema(n, p)))
                 for n, p in spec.functions()]
        call = g.add_rule("tool-call", " | ".join(calls))
        more = f' ( "," space {call} )*' if spec.parallel else ""
        tool_list = g.add_rule("tool-list", f'"[" space {call}{more} space "]"')
        root = f'"<|tool_call|>" space {tool_list}'
        if spec.forced_open:
            root = '"</think>" space "<response>" space [^<]* "</response>" space ' + root
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=[word("<|tool_call|>")])

    def parse(self, p):
        p.reasoning("<think>", "</think>")
        if p.try_literal("<response>"):
            text, _ = p.take_until("</response>")
            p.add_content(text)
        if p.syntax.parse_tool_calls and p.find_literal("<|tool_call|>") is not None:
            calls_from_array(p, p.json())
            p.spaces()
        p.add_content(p.rest())
