"""Llama 3.1 / 3.2 / 3.3: a tool call is the whole reply, one JSON object
`{"name": ..., "parameters": {...}}` (optionally `"type": "function"` first). Llama 3.1's
template also knows the built-in tools (brave_search, wolfram_alpha, web_search,
python / code_interpreter), called as `<|python_tag|>brave_search.call(query="...")`;
a tool with one of those names and the expected parameters is offered that way.
The template needs `date_string`, so this format renders it even without tools.

Beyond llama.cpp: the parser also takes "arguments" for "parameters", and several
calls in a row (separated by whitespace or `;`); a tool named like a built-in one but
with other parameters is an ordinary tool instead of an error."""

from __future__ import annotations

import json

import regex

from ..output_parser import Incomplete, Malformed
from .base import ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, args_text, literal, pattern_full, rule_name, word

BUILTIN = {"wolfram_alpha": ("query",), "web_search": ("query",), "brave_search": ("query",), "python": ("code",),
           "code_interpreter": ("code",)}
_CALL = regex.compile(r'\s*\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*"([^"]+)"\s*,\s*'
                      r'"(?:parameters|arguments)"\s*:\s*')
_CLOSE = regex.compile(r"\s*\}\s*;?\s*")
_PYTAG_CALL = regex.compile(r"\s*(\w+)\s*\.\s*call\(")
_ARG = regex.compile(r"\s*(\w+)\s*=\s*")


def builtin_tools(tools: list[dict]) -> list[str]:
    """The tools that are Llama 3.1 built-ins: a built-in name with exactly its parameters, required."""
    out = []
    for t in tools:
        fn = t["function"]
        expected = BUILTIN.get(fn["name"])
        params = fn["parameters"]
        props = params.get("properties") if isinstance(params.get("properties"), dict) else None
        if expected and props is not None and set(props) == set(expected) and \
                set(expected) <= set(params.get("required") or []):
            out.append(fn["name"])
    return out


class Llama3(ChatFormat):
    name = "Llama 3.x"
    stops = ("<|eom_id|>",)

    def __init__(self, src: str = "", with_builtin: bool | None = None):
        super().__init__(src)
        self.allow_builtin = ("<|python_tag|>" in src) if with_builtin is None else with_builtin

    @staticmethod
    def detect(src: str) -> bool:
        return "<|start_header_id|>ipython<|end_header_id|>" in src

    def builtins(self, tools) -> list[str]:
        return builtin_tools(tools) if self.allow_builtin else []

    def reported_name(self, tools) -> str:
        if not tools:
            return "Content-only"
        return "Llama 3.x with builtin tools" if self.builtins(tools) else self.name

    def template_context(self, tools, now, enable_thinking=True):
        ctx = {"date_string": now.strftime("%d %b %Y"), "tools_in_user_message": False}
        builtin = self.builtins(tools)
        if builtin:
            ctx["builtin_tools"] = builtin
        return ctx

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        rules, triggers = [], []
        builtin = set(self.builtins(spec.tools))
        for name, params in spec.functions():
            r = rule_name(name)
            if name in builtin:
                kvs = [f'{literal(k + "=")} {g.add_schema(f"{r}-args-{k}", v)}'
                       for k, v in params["properties"].items()]
                rules.append(g.add_rule(f"{r}-builtin-call", f'{literal("<|python_tag|>" + name + ".call(")} '
                                        + ' ", " '.join(kvs) + ' ")"'))
            args = g.add_schema(f"{r}-args", params)
            rules.append(g.add_rule(
                f"{r}-call", '"{" space ( "\\"type\\"" space ":" space "\\"function\\"" space "," space )? '
                f'"\\"name\\"" space ":" space {literal(json.dumps(name))} space "," space '
                f'"\\"parameters\\"" space ":" space {args} space "}}" space'))
        triggers.append(pattern_full(r'(\{\s*(?:"type"\s*:\s*"function"\s*,\s*)?"name"\s*:\s*")[\s\S]*'))
        preserved = []
        if builtin:
            triggers.append(word("<|python_tag|>"))
            preserved.append("<|python_tag|>")
        root = " | ".join(rules)
        if spec.parallel:
            root = f"( {root} )+"
        return ToolGrammar(g.build(root), lazy=not spec.required, triggers=triggers, preserved=preserved)

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        if self.allow_builtin and p.find_literal("<|python_tag|>") is not None:
            self._builtin_call(p)
            return
        while (m := p.match(_CALL)) is not None:
            node = p.json()
            p.add_call(m.group(1), args_text(node))
            if not node.complete:
                raise Incomplete("tool call")
            if p.match(_CLOSE) is None:
                raise Incomplete("}") if p.at_end else Malformed("expected '}'")
        p.add_content(p.rest())

    def _builtin_call(self, p):
        m = p.match(_PYTAG_CALL)
        if m is None:
            raise Incomplete("call") if p.at_end else Malformed("expected name.call(")
        args = {}
        while (a := p.match(_ARG)) is not None:
            node = p.json()
            if not node.complete:
                raise Incomplete("argument")
            args[a.group(1)] = node.value()
            p.spaces()
            if not p.try_literal(","):
                break
        p.expect_literal(")")
        p.spaces()
        p.add_call(m.group(1), json.dumps(args, ensure_ascii=False, separators=(",", ":")))
        p.add_content(p.rest())
