"""GPT-OSS (OpenAI's harmony format): the reply is a sequence of messages
`<|channel|>NAME<|message|>TEXT<|end|>` joined by `<|start|>assistant`. The analysis
channel is reasoning, final (and commentary without a recipient) is content, and a
message addressed `to=functions.NAME` (in the channel or role header) is a tool call
with JSON arguments. Past reasoning is given to the template as `thinking`."""

from __future__ import annotations

import regex

from ..output_parser import Incomplete
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, args_text, literal, pattern, pattern_full, rule_name

_CONSTRAINT = r"(?: (<\|constrain\|>)?([a-zA-Z0-9_-]+))"
_RECIPIENT = r"(?: to=functions\.([^<\s]+))"
_ANALYSIS = regex.compile(r"<\|channel\|>analysis")
_FINAL = regex.compile(r"<\|channel\|>final" + _CONSTRAINT + "?")
_PREAMBLE = regex.compile(r"<\|channel\|>commentary")
_TOOL_IN_ROLE = regex.compile(_RECIPIENT + r"<\|channel\|>(analysis|commentary)" + _CONSTRAINT + "?")
_TOOL_IN_CHANNEL = regex.compile(r"<\|channel\|>(analysis|commentary)" + _RECIPIENT + _CONSTRAINT + "?")
_START = regex.compile(r"<\|start\|>assistant")
_NOT_END = '[^<] | "<" [^|] | "<|" [^e] | "<|e" [^n] | "<|en" [^d] | "<|end" [^|] | "<|end|" [^>]'


class GptOss(ChatFormat):
    name = "GPT-OSS"
    think = ("<|channel|>analysis<|message|>", "<|end|>")
    think_end = "<|end|><|start|>assistant<|channel|>final<|message|>"
    preserved = ("<|channel|>", "<|constrain|>", "<|message|>", "<|start|>", "<|end|>")

    @staticmethod
    def detect(src: str) -> bool:
        return "<|channel|>" in src

    def adjust_messages(self, messages):
        return [{**m, "thinking": m["reasoning_content"]} if m.get("tool_calls") and m.get("reasoning_content")
                else m for m in messages]

    def finish_prompt(self, prompt, enable_thinking, add_generation_prompt=True):
        if not add_generation_prompt:  # <|return|> ends training samples; at inference a turn ends with <|end|>
            i = prompt.rfind("<|return|>")
            if i >= 0:
                prompt = prompt[:i] + "<|end|>" + prompt[i + len("<|return|>"):]
        return prompt, False

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        channel = g.add_rule("channel", '"<|channel|>" ( "commentary" | "analysis" )')
        in_role, in_channel = [], []
        for name, params in spec.functions():
            r = rule_name(name)
            args = g.add_schema(f"{r}-args", params)
            in_role.append(g.add_rule(f"{r}-call", f'{literal(name)} {channel} " <|constrain|>json"? "<|message|>" {args}'))
            in_channel.append(g.add_rule(f"{r}-call-in-channel",
                                         f'{literal(name)} " <|constrain|>json"? "<|message|>" {args}'))
        recipient_in_channel = g.add_rule("recipient-in-channel",
                                          f'{channel} " to=functions." ( ' + " | ".join(in_channel) + " )")
        if not spec.required:
            recipient_in_role = g.add_rule("recipient-in-role", '"<|start|>assistant"? " to=functions." ( '
                                           + " | ".join(in_role) + " )")
            root = f"{recipient_in_role} | {recipient_in_channel}"
        else:
            not_end = g.add_rule("not-end", _NOT_END)
            analysis = g.add_rule("analysis", f'"<|channel|>analysis<|message|>" ( {not_end} )* "<|end|>"')
            commentary = g.add_rule("commentary", f'"<|channel|>commentary<|message|>" ( {not_end} )* "<|end|>"')
            recipient_in_role = g.add_rule("recipient-in-role", '" to=functions." ( ' + " | ".join(in_role) + " )")
            root = (f'( {analysis} "<|start|>assistant" )? ( {commentary} "<|start|>assistant" )? '
                    f"( {recipient_in_role} | {recipient_in_channel} )")
        triggers = [pattern(r"<\|channel\|>(?:commentary|analysis) to"), pattern_full(r" to[\s\S]*"),
                    pattern(r"<\|start\|>assistant to")]
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=triggers)

    def parse(self, p):
        syn = p.syntax
        while True:
            header_start = p.pos
            header = p.find_literal("<|message|>", add_prelude=False)
            if header is None:
                raise Incomplete("header")
            if (m := _TOOL_IN_ROLE.fullmatch(header)) or (m := _TOOL_IN_CHANNEL.fullmatch(header)):
                name = m.group(1) if m.re is _TOOL_IN_ROLE else m.group(2)
                node = p.json()
                if syn.parse_tool_calls:
                    p.add_call(name, args_text(node))
                if not node.complete:
                    raise Incomplete("tool call")
            elif _ANALYSIS.fullmatch(header):
                p.pos = header_start
                if syn.reasoning_format == "none" or syn.reasoning_in_content:
                    p.add_content(self._to_end(p, keep_end=True))
                else:
                    p.reasoning(*self.think)
            elif _FINAL.fullmatch(header) or _PREAMBLE.fullmatch(header):
                p.add_content(self._to_end(p))
            else:  # an unknown header: look for the next message
                p.pos = header_start
            if p.find(_START, add_prelude=False) is None:
                break
        p.rest()  # whatever follows the last message is not part of the answer

    @staticmethod
    def _to_end(p, keep_end: bool = False) -> str:
        text, found = p.take_until("<|end|>")
        return text + ("<|end|>" if found and keep_end else "")
