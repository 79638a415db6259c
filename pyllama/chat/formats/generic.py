"""The fallback for templates with no tool-call syntax of their own (and for tools
together with a response_format schema): the model answers with one JSON object,
`{"tool_call": {...}}` (`{"tool_calls": [...]}` when parallel) or `{"response": ...}`,
under a grammar from the first token. The prompt gets a system line saying so."""

from __future__ import annotations

import json

from ..polyfill import add_system
from .base import ChatFormat, Incomplete, Malformed, ToolGrammar, ToolSpec, GrammarBuilder, call_from_node

INSTRUCTION = ("Respond in JSON format, either with `tool_call` (a request to call tools) or with `response` "
               "reply to the user's request")


class Generic(ChatFormat):
    name = "Generic"

    def adjust_messages(self, messages):
        return add_system(messages, INSTRUCTION)

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        calls = []
        for name, params in spec.functions():
            props = {"name": {"type": "string", "const": name}, "arguments": params}
            if spec.parallel:
                props["id"] = {"type": "string", "minLength": 4}
            calls.append({"type": "object", "properties": props, "required": list(props)})
        one = calls[0] if len(calls) == 1 else {"anyOf": calls}
        if spec.parallel:
            call = {"type": "object", "properties": {"tool_calls": {"type": "array", "items": one, "minItems": 1}},
                    "required": ["tool_calls"]}
        else:
            call = {"type": "object", "properties": {"tool_call": one}, "required": ["tool_call"]}
        schema = call
        if not spec.required:
            answer = spec.json_schema if spec.json_schema is not None else {"type": "string"}
            schema = {"anyOf": [call, {"type": "object", "properties": {"response": answer},
                                       "required": ["response"]}]}
        g = GrammarBuilder()
        return ToolGrammar(g.build(g.add_schema("tool-or-response", schema)), lazy=False)

    def parse(self, p):
        if not self.reasoning_then_calls(p):
            return
        node = p.json()
        if node.kind != "object":
            raise Malformed("expected a JSON object")
        for key, value in node.members:
            if key == "tool_calls":
                if value.kind != "array":
                    raise Malformed("tool_calls must be an array")
                for item in value.items:
                    call_from_node(p, item)
                if not value.complete:
                    raise Incomplete("tool calls")
            elif key == "tool_call":
                call_from_node(p, value)
                if not value.complete:
                    raise Incomplete("tool call")
            elif key == "response":
                if value.kind == "string":
                    if value.complete:
                        p.add_content(value.value())
                    else:
                        p.add_content(json.loads(p.text[value.start:value.safe_end] + '"'))
                        raise Incomplete("response")
                elif value.complete:
                    p.add_content(json.dumps(value.value(), ensure_ascii=False, indent=2))
                else:
                    raise Incomplete("response")
            else:
                raise Malformed(f"unexpected key {key!r}")
        if not node.complete:
            raise Incomplete("JSON")
        if not node.members:
            raise Malformed("expected 'tool_call', 'tool_calls' or 'response'")
        p.spaces()
        if not p.at_end:
            raise Malformed("text after the JSON answer")
