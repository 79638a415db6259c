"""Kimi K2: `<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:IDX<|tool_call_argument_begin|>{...}<|tool_call_end|>...<|tool_calls_section_end|>`,
after optional `<think>` reasoning. The call's id is its `functions.NAME:IDX` (the
template writes tool results under that id; llama.cpp makes up a random one)."""

from __future__ import annotations

import regex

from ..output_parser import Incomplete
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, args_text, literal, rule_name, think_prefix, word

SECTION_BEGIN, SECTION_END = "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"
CALL_BEGIN, ARGS_BEGIN, CALL_END = "<|tool_call_begin|>", "<|tool_call_argument_begin|>", "<|tool_call_end|>"
_ID = regex.compile(r"functions\.(.+):\d+")


class KimiK2(ChatFormat):
    name = "Kimi K2"
    stops = ("<|im_end|>", "<|im_middle|>")
    preserved = ("<think>", "</think>", SECTION_BEGIN, CALL_BEGIN, ARGS_BEGIN, CALL_END, SECTION_END,
                 "<|im_end|>", "<|im_system|>", "<|im_middle|>")

    @staticmethod
    def detect(src: str) -> bool:
        return "<|im_system|>tool_declare<|im_middle|>" in src and SECTION_BEGIN in src and "## Return of" in src

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        calls = [g.add_rule(f"{rule_name(n)}-call", f'{literal(CALL_BEGIN + "functions." + n + ":")} [0-9]+ '
                            f'{literal(ARGS_BEGIN)} {g.add_schema(f"{rule_name(n)}-args", p)} {literal(CALL_END)}')
                 for n, p in spec.functions()]
        call = g.add_rule("tool-call", " | ".join(calls))
        body = f"{call}+" if spec.parallel else call
        root = think_prefix(spec) + f"{literal(SECTION_BEGIN)} {body} {literal(SECTION_END)}"
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=[word(SECTION_BEGIN)])

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        while p.find_literal(SECTION_BEGIN) is not None:
            while True:
                p.spaces()
                if not p.try_literal(CALL_BEGIN):
                    break
                ident, found = p.take_until(ARGS_BEGIN)
                if not found:
                    raise Incomplete("tool call id")
                ident = ident.strip()
                m = _ID.fullmatch(ident)
                node = p.json()
                p.add_call(m.group(1) if m else ident, args_text(node), ident)
                if not node.complete:
                    raise Incomplete("tool call")
                p.spaces()
                p.expect_literal(CALL_END)
            p.expect_literal(SECTION_END)
            p.spaces()
        p.add_content(p.rest())
