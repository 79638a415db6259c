"""DeepSeek R1 (and its distills) and DeepSeek V3.1.

R1: `<think>...</think>` (the prompt opens it), then
`<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME\\n```json\\n{...}\\n```<｜tool▁call▁end｜>...<｜tool▁calls▁end｜>`.
Distilled models garble the opening marker, so its common variants are accepted.
V3.1: `<｜tool▁call▁begin｜>NAME<｜tool▁sep｜>{...}<｜tool▁call▁end｜>`; the template reads
`thinking`. (llama.cpp takes a forced-open V3.1 reply that never closes its reasoning
as content once complete, though it streamed it as reasoning; here it stays reasoning.)

Beyond llama.cpp, a lazy grammar also starts at a calls block that follows text."""

from __future__ import annotations

import re

import regex

from ..output_parser import Incomplete, Malformed
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, args_text, literal, pattern_full, rule_name, \
    think_prefix, word

BEGIN = "<｜tool▁calls▁begin｜>"
END = "<｜tool▁calls▁end｜>"
CALL_BEGIN, SEP, CALL_END = "<｜tool▁call▁begin｜>", "<｜tool▁sep｜>", "<｜tool▁call▁end｜>"
_BEGIN_VARIANTS = (BEGIN, "<｜tool_calls_begin｜>", "<｜tool calls begin｜>", "<｜tool\\_calls\\_begin｜>", "<｜tool▁calls｜>")
_BEGIN_RE = regex.compile("|".join(regex.escape(v) for v in _BEGIN_VARIANTS))
_R1_CALL = regex.compile(r"(?:" + CALL_BEGIN + r")?function" + SEP + r"([^\n]+)\n```json\n")
_R1_CLOSE = regex.compile(r"\s*```[\s\r\n]*" + CALL_END)
_V31_CALL = regex.compile(r"(?:" + CALL_BEGIN + r")?([^\n<]+)" + SEP)
_V31_CLOSE = regex.compile(r"\s*" + CALL_END)
_PRESERVED = ("<think>", "</think>", BEGIN, CALL_BEGIN, SEP, CALL_END, END)
_OFFICIAL_R1 = "{% if ns.is_tool %}{{'<｜tool▁outputs▁end｜>'}}"


class DeepSeekR1(ChatFormat):
    name = "DeepSeek R1"
    opened = ("<think>\n",)
    needs_no_schema = True
    preserved = _PRESERVED
    call_re, close_re = _R1_CALL, _R1_CLOSE

    @staticmethod
    def detect(src: str) -> bool:
        return BEGIN in src

    def finish_prompt(self, prompt, enable_thinking, add_generation_prompt=True):
        if _OFFICIAL_R1 in self.src:  # the official template leaves the chat dangling after tool results
            if prompt.endswith("<｜tool▁outputs▁end｜>"):
                prompt += "<｜end▁of▁sentence｜>" + ("<｜Assistant｜>" if add_generation_prompt else "")
            prompt = re.sub(r"(<｜tool▁call▁end｜>)[\s\r\n]*(<｜tool▁outputs▁begin｜>|<｜User｜>)",
                            r"\1<｜tool▁calls▁end｜><｜end▁of▁sentence｜>\2", prompt)
        return super().finish_prompt(prompt, enable_thinking, add_generation_prompt)

    def call_rule(self, g, name: str, args: str) -> str:
        return (f'( {literal(CALL_BEGIN)} )? {literal("function" + SEP + name + chr(10) + "```json" + chr(10))} '
                f'{args} "\\n"? {literal("```" + CALL_END)}')

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        calls = [g.add_rule(f"{rule_name(n)}-call", self.call_rule(g, n, g.add_schema(f"{rule_name(n)}-args", p)))
                 for n, p in spec.functions()]
        call = g.add_rule("tool-call", " | ".join(calls))
        body = f'{call} ( "\\n"? {call} )*' if spec.parallel else call
        begin = "( " + " | ".join(literal(v) for v in _BEGIN_VARIANTS) + " )"
        root = think_prefix(spec) + f"{begin} {body} {literal(END)} space"
        lead = r"[\s\S]*?(</think>\s*)" if spec.forced_open else r"(?:<think>[\s\S]*?</think>\s*)?"
        variants = "|".join(regex.escape(v) for v in _BEGIN_VARIANTS)
        return ToolGrammar(g.build(root), lazy=not spec.required,
                           triggers=[pattern_full(lead + f"({variants})" + r"[\s\S]*"), word(BEGIN)])

    def parse(self, p):
        p.reasoning("<think>", "</think>")
        self.parse_calls(p)

    def parse_calls(self, p):
        if not p.syntax.parse_tool_calls:
            p.add_content(p.rest())
            return
        if p.find(_BEGIN_RE) is not None:
            while True:
                p.spaces()
                m = p.match(self.call_re)
                if m is None:
                    break
                node = p.json()
                p.add_call(m.group(1).strip(), args_text(node))
                if not node.complete:
                    raise Incomplete("tool call")
                if p.match(self.close_re) is None:
                    raise Incomplete("call end") if p.at_end else Malformed("expected the end of the call")
            p.expect_literal(END)
            p.spaces()
        p.add_content(p.rest())


class DeepSeekV31(DeepSeekR1):
    name = "DeepSeek V3.1"
    opened = ("<think>",)
    call_re, close_re = _V31_CALL, _V31_CLOSE

    @staticmethod
    def detect(src: str) -> bool:
        return "message['prefix'] is defined and message['prefix'] and thinking" in src

    def template_context(self, tools, now, enable_thinking=True):
        return {"thinking": enable_thinking}

    def call_rule(self, g, name: str, args: str) -> str:
        return f'( {literal(CALL_BEGIN)} )? {literal(name + SEP)} {args} {literal(CALL_END)}'
