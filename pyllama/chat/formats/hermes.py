"""Hermes 2 Pro, Qwen 2.5 and Qwen 3: `<tool_call>{"name": ..., "arguments": {...}}</tool_call>`
after optional text and `<think>` reasoning. The parser also takes the variants small
models slip into (`<function=name>{...}</function>`, `<function name="...">`, the JSON
bare or wrapped in `<function_call>`, `<tools>`, `<response>`, `<json>`, `<xml>` or a
code fence), as llama.cpp's does.

Beyond llama.cpp, a lazy grammar also starts at a `<tool_call>` that follows text
(llama.cpp's trigger only fires when the output opens with the call)."""

from __future__ import annotations

import regex

from ..output_parser import Incomplete, Malformed
from .base import (ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, call_object_schema, literal, pattern,
                   pattern_full, rule_name, think_prefix, word, args_text)

_OPEN = regex.compile(
    r'(?:(```(?:xml|json)?\n\s*)?(<tool_call>|<function_call>|<tool>|<tools>|<response>|<json>|<xml>|<JSON>)?'
    r'(\s*\{\s*"name"))|<function=([^>]+)>|<function name="([^"]+)">')
_WRAPPERS = ("tool_call", "function_call", "response", "tools", "json", "xml", "JSON")


class Hermes2Pro(ChatFormat):
    name = "Hermes 2 Pro"
    opened = ("<think>\n",)
    needs_no_schema = True
    preserved = ("<think>", "</think>", "<tool_call>", "</tool_call>", "<function", "<tools>", "</tools>",
                 "<response>", "</response>", "<function_call>", "</function_call>", "<json>", "</json>",
                 "<JSON>", "</JSON>", "```", "```json", "```xml")

    @staticmethod
    def detect(src: str) -> bool:
        return "<tool_call>" in src

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        objects, alts, triggers, names = [], [], [], []
        for name, params in spec.functions():
            r = rule_name(name)
            objects.append(g.add_schema(f"{r}-call", call_object_schema(name, params)))
            args = g.add_schema(f"{r}-args", params)
            eq, attr = literal("=" + name), literal(' name="' + name + '"')
            alts.append(g.add_rule(f"{r}-function-tag",
                                   f'"<function" ( {eq} | {attr} ) ">" space {args} "</function>" space'))
            triggers += [word(f"<function={name}>"), pattern(f'<function\\s+name\\s*=\\s*"{regex.escape(name)}"')]
            names.append(regex.escape(name))
        any_call = g.add_rule("any-tool-call", "( " + " | ".join(objects) + " ) space")
        wrapped = [any_call] + [f'{literal(f"<{t}>")} space {any_call} {literal(f"</{t}>")}' for t in _WRAPPERS]
        wrappable = g.add_rule("wrappable-tool-call", "( " + " | ".join(wrapped) + " ) space")
        alts.append(wrappable)
        alts.append(f'( "```\\n" | "```json\\n" | "```xml\\n" ) space {wrappable} space "```" space')
        call = g.add_rule("tool-call", " | ".join(alts))
        root = think_prefix(spec) + (f"( {call} )+" if spec.parallel else call)
        lead = r"[\s\S]*?(</think>\s*)" if spec.forced_open else r"(?:<think>[\s\S]*?</think>\s*)?"
        triggers.append(pattern_full(
            lead + r'\s*((?:<tool_call>|<function|(?:```(?:json|xml)?\n\s*)?(?:<function_call>|<tools>|<xml><json>|'
            r'<response>)?\s*\{\s*"name"\s*:\s*"(?:' + "|".join(names) + r')"))[\s\S]*'))
        triggers.append(word("<tool_call>"))
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=triggers)

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        while (m := p.find(_OPEN)) is not None:
            fence = bool(m.group(1))
            if m.group(3):
                tag = m.group(2)
                close = "</" + tag[1:] if tag else ""
                p.pos = m.start(3)
                node = p.json()
                if node.kind != "object":
                    raise Malformed("expected a tool call object")
                name = node.member("name")
                if name is not None and name.complete:
                    args = node.member("arguments")
                    if node.complete and args is None:
                        raise Malformed("a tool call without arguments")
                    p.add_call(name.value(), args_text(args))
                if not node.complete:
                    raise Incomplete("tool call")
            else:
                name = m.group(4) or m.group(5)
                close = "</function>"
                node = p.json()
                p.add_call(name, args_text(node))
                if not node.complete:
                    raise Incomplete("tool call")
            p.spaces()
            if close:
                p.expect_literal(close)
                p.spaces()
            if fence:
                p.expect_literal("```")
                p.spaces()
        p.add_content(p.rest())
