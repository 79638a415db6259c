"""MeetKai Functionary.

- v3.2: the prompt ends with `>>>`; the model writes a recipient line then its
  message: `all\\nText` for the user, `name\\n{json}` for a call, `python\\n<code>` for raw
  Python; more messages follow after `>>>`. Used for every request with this template
  (it answers with `all\\n` even without tools).
- v3.1 (Llama 3.1 based): `<function=name>{json}</function>`, and `<|python_tag|>code`
  for a python / ipython tool.

Beyond llama.cpp, a later `>>>all` message is more content, not a call named "all"."""

from __future__ import annotations

import json

import regex

from ..output_parser import Incomplete, Malformed
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, args_text, literal, pattern_full, rule_name, word

_FIRST = regex.compile(r"(\w+)\n(?=\{)|(python|all)\n")
_NEXT = regex.compile(r">>>(?:(\w+)\n(?=\{)|(python|all)\n)")


def _code_args(p, code: str) -> str:
    text = json.dumps({"code": code}, ensure_ascii=False, separators=(",", ":"))
    return text[:-2] if p.partial else text  # partial: the string stays open


class FunctionaryV32(ChatFormat):
    name = "Functionary v3.2"
    think = None
    preserved = ("<|end_header_id|>",)

    @staticmethod
    def detect(src: str) -> bool:
        return ">>>all" in src

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        first, more, triggers = [], [], []
        for name, params in spec.functions():
            r = rule_name(name)
            args = g.add_schema(f"{r}-args", params)
            tail = r"\{[\s\S]*"
            if name == "python":
                args = g.add_rule(f"{r}-maybe-raw-args", f"{args} | [^{{] .*")
                tail = r"[\s\S]*"
            call = g.add_rule(f"{r}-call", f"{literal(name + chr(10))} {args}")
            first.append(call)
            more.append(g.add_rule(f"{r}-call2", f'">>>" {call}'))
            triggers.append(pattern_full(r"(?:[\s\S]*?>>>)?(" + regex.escape(name) + r"\n)" + tail))
        root = g.add_rule("first-tool-call", " | ".join(first)) + " space"
        if spec.parallel:
            root += " ( " + g.add_rule("subsequent-tool-call", " | ".join(more)) + " space )*"
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=triggers)

    def parse(self, p):
        first = True
        while True:
            m = p.match(_FIRST) if first else p.find(_NEXT)
            first = False
            if m is None:
                break
            name = m.group(1) or m.group(2)
            if name == "all":
                continue  # a message to the user: its text is the prelude of the next find
            if not p.syntax.parse_tool_calls:
                raise Malformed("tool calls are not expected")
            if name == "python" and not p.text.startswith("{", p.pos):
                p.add_call("python", _code_args(p, p.rest()))
                if p.partial:
                    raise Incomplete("python code")
                return
            node = p.json()
            p.add_call(name, args_text(node))
            if not node.complete:
                raise Incomplete("tool call")
            p.spaces()
        p.add_content(p.rest())


_V31 = regex.compile(r"<function=(\w+)>|<\|python_tag\|>")


class FunctionaryV31(ChatFormat):
    name = "Functionary v3.1 Llama 3.1"
    think = None

    @staticmethod
    def detect(src: str) -> bool:
        return "<|start_header_id|>" in src and "<function=" in src

    def reported_name(self, tools) -> str:
        return self.name if tools else "Content-only"

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        rules, triggers, preserved = [], [word("<function=")], []
        for name, params in spec.functions():
            r = rule_name(name)
            rules.append(g.add_rule(f"{r}-call", f'{literal(f"<function={name}>")} {g.add_schema(f"{r}-args", params)} '
                                    '"</function>" space'))
            if name in ("python", "ipython"):
                rules.append(g.add_rule("python-raw-call", '"<|python_tag|>" .*'))
                triggers.append(word("<|python_tag|>"))
                preserved.append("<|python_tag|>")
        call = g.add_rule("tool-call", " | ".join(dict.fromkeys(rules))) + " space"
        root = f"( {call} )+" if spec.parallel else call
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=triggers, preserved=preserved)

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        while (m := p.find(_V31)) is not None:
            if m.group(1) is None:  # <|python_tag|>: the rest is code
                p.add_call("python", _code_args(p, p.rest()))
                if p.partial:
                    raise Incomplete("python code")
                return
            node = p.json()
            p.add_call(m.group(1), args_text(node))
            if not node.complete:
                raise Incomplete("tool call")
            p.spaces()
            p.expect_literal("</function>")
            p.spaces()
        p.add_content(p.rest())
