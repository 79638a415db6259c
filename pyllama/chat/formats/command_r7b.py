"""Cohere Command R7B: `<|START_THINKING|>plan<|END_THINKING|>` then either
`<|START_ACTION|>[{"tool_call_id": "0", "tool_name": ..., "parameters": {...}}]<|END_ACTION|>`
or `<|START_RESPONSE|>text<|END_RESPONSE|>`. A past turn's reasoning is shown to the
template as `tool_plan` (and kept as `reasoning_content`, which this template reads).
Beyond llama.cpp, a lazy grammar also starts at an action that follows text."""

from __future__ import annotations

from .base import (ChatFormat, GrammarBuilder, ToolGrammar, ToolSpec, array_of, call_object_schema, calls_from_array,
                   pattern_full, think_prefix, word)


class CommandR7B(ChatFormat):
    name = "Command R7B"
    think = ("<|START_THINKING|>", "<|END_THINKING|>")
    opened = ("<|START_THINKING|>",)
    close_thinking = "<|END_THINKING|>"
    needs_no_schema = True
    preserved = ("<|START_ACTION|>", "<|END_ACTION|>", "<|START_RESPONSE|>", "<|END_RESPONSE|>",
                 "<|START_THINKING|>", "<|END_THINKING|>")

    @staticmethod
    def detect(src: str) -> bool:
        return "<|END_THINKING|><|START_ACTION|>" in src

    def adjust_messages(self, messages):
        return [{**m, "tool_plan": m["reasoning_content"]} if m.get("tool_calls") and m.get("reasoning_content")
                else m for m in messages]

    def finish_prompt(self, prompt, enable_thinking, add_generation_prompt=True):
        prompt, forced = super().finish_prompt(prompt, enable_thinking, add_generation_prompt)
        if not enable_thinking and prompt.endswith("<|CHATBOT_TOKEN|>"):
            prompt += "<|START_THINKING|><|END_THINKING|>"
        return prompt, forced

    def grammar(self, spec: ToolSpec) -> ToolGrammar:
        g = GrammarBuilder()
        schemas = [call_object_schema(n, p, name_key="tool_name", args_key="parameters",
                                      extra={"tool_call_id": {"type": "string", "pattern": "^[0-9]{1,10}$"}})
                   for n, p in spec.functions()]
        for s in schemas:  # the id comes first, as the template writes it
            s["properties"] = {"tool_call_id": s["properties"].pop("tool_call_id"), **s["properties"]}
            s["required"] = list(s["properties"])
        calls = g.add_schema("tool-calls", array_of(schemas, spec.parallel))
        root = think_prefix(spec, "<|END_THINKING|>") + f'"<|START_ACTION|>" {calls} "<|END_ACTION|>"'
        lead = r"[\s\S]*?(<\|END_THINKING\|>\s*)" if spec.forced_open else \
            r"(?:<\|START_THINKING\|>[\s\S]*?<\|END_THINKING\|>\s*)?"
        return ToolGrammar(g.build(root), lazy=not spec.required,
                           triggers=[pattern_full(lead + r"(<\|START_ACTION\|>)[\s\S]*"), word("<|START_ACTION|>")])

    def parse(self, p):
        p.reasoning(*self.think)
        if p.syntax.parse_tool_calls and p.find_literal("<|START_ACTION|>") is not None:
            calls_from_array(p, p.json(), name_key="tool_name", args_key="parameters", id_key="tool_call_id")
            p.spaces()
            p.expect_literal("<|END_ACTION|>")
            p.spaces()
        elif p.find_literal("<|START_RESPONSE|>") is not None:
            text, _ = p.take_until("<|END_RESPONSE|>")
            p.add_content(text)
            p.spaces()
        p.add_content(p.rest())
