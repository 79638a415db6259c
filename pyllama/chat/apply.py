"""One chat request made ready for generation (llama-server's `common_chat_templates_apply`
and the request handling around it): the prompt, the chat format, the tool-call grammar
with its lazy triggers, preserved tokens and extra stops, and the syntax the output
is parsed with.

Thinking: `enable_thinking` defaults to on for templates that react to it (off for
the others, which makes no difference to them); `reasoning_effort: "none"` and
`chat_template_kwargs.enable_thinking: false` turn it off; the server turns it off
for `--reasoning-budget 0`. Assistant prefill: a conversation that ends with an
assistant message is rendered without it, with a generation prompt, and its text
appended, so the model continues it (not with thinking on, as in llama-server).

tool_choice: "none" renders the tools but adds no grammar and parses no calls; a
named function is "required" restricted to that tool (llama-server ignores a named
choice). parallel_tool_calls (default off, as in llama-server) only holds when the
template can show several calls in a turn."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..errors import InvalidRequest
from .formats import ChatFormat, ToolSpec, select_format
from .formats.base import TRIGGER_WORD
from .messages import normalize_messages, normalize_tools, parse_tool_choice
from .output_parser import REASONING_FORMATS, ChatSyntax
from .template import ChatTemplate


@dataclass
class ChatInputs:
    messages: list[dict]
    tools: list[dict] | None = None
    tool_choice: str | dict | None = "auto"
    parallel_tool_calls: bool = False
    add_generation_prompt: bool = True
    enable_thinking: bool | None = None    # None: on when the template reacts to it
    reasoning_effort: str | None = None     # given to the template; "none" turns thinking off
    reasoning_format: str = "auto"          # none | auto | deepseek | deepseek-legacy
    chat_template_kwargs: dict = field(default_factory=dict)
    json_schema: dict | None = None         # response_format schema, when it comes with tools
    grammar: str | None = None              # a user grammar (refused together with tools)
    stream: bool = False                    # deepseek-legacy keeps <think> in streamed content
    prefill_assistant: bool = True
    reasoning_preserve: bool = True         # off: only the last assistant turn keeps its reasoning_content
    now: datetime | None = None


@dataclass
class ChatParams:
    prompt: str
    format: str                              # llama-server's `chat_format` name
    syntax: ChatSyntax                       # how to parse the output (parse_output / ChatStream)
    grammar: str = ""                        # GBNF for tool calls ("" without tools)
    grammar_lazy: bool = False
    grammar_triggers: list[dict] = field(default_factory=list)  # {"type": 1|2|3, "value": str}
    preserved_tokens: list[str] = field(default_factory=list)
    additional_stops: list[str] = field(default_factory=list)
    thinking_forced_open: bool = False
    enable_thinking: bool = False
    parallel_tool_calls: bool = False
    prefill: str = ""                        # assistant text the prompt ends with (generation continues it)
    thinking_start: str = ""                 # the format's reasoning markers ("" when it has none)
    thinking_end: str = ""                   # what ends reasoning and starts the answer (a budget forces it)


def _enable_thinking(inputs: ChatInputs, supported: bool) -> bool:
    on = supported if inputs.enable_thinking is None else bool(inputs.enable_thinking)
    if inputs.reasoning_effort == "none":
        on = False
    kw = inputs.chat_template_kwargs.get("enable_thinking") if inputs.chat_template_kwargs else None
    if kw is not None:
        if not isinstance(kw, bool):
            raise InvalidRequest("invalid type for \"enable_thinking\" (expected boolean)")
        on = kw
    return on


def apply_chat(template: ChatTemplate, inputs: ChatInputs) -> ChatParams:
    """InvalidRequest (ChatTemplateError included) for a request the template or the
    tools cannot take."""
    if inputs.reasoning_format not in REASONING_FORMATS:
        raise InvalidRequest(f"Unknown reasoning format: {inputs.reasoning_format}")
    if not isinstance(inputs.chat_template_kwargs or {}, dict):
        raise InvalidRequest("'chat_template_kwargs' must be an object")
    messages = normalize_messages(inputs.messages)
    if not inputs.reasoning_preserve:
        last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=-1)
        messages = [{k: v for k, v in m.items() if k != "reasoning_content"} if i != last else m
                    for i, m in enumerate(messages)]
    tools = normalize_tools(inputs.tools)
    mode, forced = parse_tool_choice(inputs.tool_choice, tools)
    if tools and mode != "none" and inputs.grammar:
        raise InvalidRequest("Cannot specify grammar with tools")
    if template.builtin is not None:
        if tools:
            raise InvalidRequest("tools need a Jinja chat template (--jinja)")
        return _builtin(template, inputs, messages)
    caps = template.caps
    thinking = _enable_thinking(inputs, caps.supports_enable_thinking)
    reasoning_format = inputs.reasoning_format
    add_gen = inputs.add_generation_prompt

    prefill = ""
    if inputs.prefill_assistant and messages and messages[-1]["role"] == "assistant":
        if len(messages) >= 2 and messages[-2]["role"] == "assistant":
            raise InvalidRequest("Cannot have 2 or more assistant messages at the end of the list.")
        if messages[-1].get("tool_calls"):
            raise InvalidRequest("Cannot continue an assistant message that contains tool calls.")
        if thinking:
            raise InvalidRequest("Assistant response prefill is incompatible with enable_thinking.")
        prefill = messages[-1]["content"] or ""
        parts = inputs.messages[-1].get("content")
        if isinstance(parts, list):  # llama.cpp continues text parts joined by a blank line (render_content)
            prefill = "\n\n".join(p["text"] for p in parts)
        messages, add_gen, reasoning_format = messages[:-1], True, "none"

    fmt = select_format(template.source, tools=tools, tool_choice=mode, json_schema=inputs.json_schema)
    msgs = fmt.adjust_messages(messages)
    if caps.requires_non_null_content:
        msgs = [{**m, "content": ""} if m.get("content") is None else m for m in msgs]
    now = inputs.now or datetime.now()
    extra = dict(inputs.chat_template_kwargs or {})
    extra["enable_thinking"] = thinking
    if inputs.reasoning_effort and inputs.reasoning_effort != "none":
        extra["reasoning_effort"] = inputs.reasoning_effort
    extra.update(fmt.template_context(tools, now, thinking))
    prompt = template.apply(msgs, tools=tools or None, add_generation_prompt=add_gen, extra=extra, now=now)
    prompt, forced_open = fmt.finish_prompt(prompt, thinking, add_gen)

    parallel = bool(inputs.parallel_tool_calls) and caps.supports_parallel_tool_calls
    params = ChatParams(prompt=prompt + prefill, format=fmt.reported_name(tools), syntax=ChatSyntax(),
                        additional_stops=list(fmt.stops), thinking_forced_open=forced_open,
                        enable_thinking=thinking, parallel_tool_calls=parallel, prefill=prefill)
    if fmt.think:
        params.thinking_start, params.thinking_end = fmt.think[0], fmt.think_end
    preserved = list(fmt.preserved)
    if tools and mode != "none":
        chosen = [t for t in tools if forced is None or t["function"]["name"] == forced]
        spec = ToolSpec(chosen, required=mode == "required", parallel=parallel, forced_open=forced_open,
                        json_schema=inputs.json_schema)
        tg = fmt.grammar(spec)
        if tg is not None:
            params.grammar, params.grammar_lazy, params.grammar_triggers = tg.text, tg.lazy, tg.triggers
            preserved += tg.preserved + [t["value"] for t in tg.triggers if t["type"] == TRIGGER_WORD]
    params.preserved_tokens = list(dict.fromkeys(preserved))
    params.syntax = ChatSyntax(format=params.format, reasoning_format=reasoning_format,
                               reasoning_in_content=inputs.stream and reasoning_format == "deepseek-legacy",
                               thinking_forced_open=forced_open, parse_tool_calls=bool(tools) and mode != "none",
                               tools=tools)
    return params


def _builtin(template: ChatTemplate, inputs: ChatInputs, messages: list[dict]) -> ChatParams:
    """A named built-in format (no Jinja): plain content, no thinking, no tools."""
    msgs = [{**m, "content": m["content"] or ""} for m in messages]
    prefill = ""
    add_gen = inputs.add_generation_prompt
    if inputs.prefill_assistant and msgs and msgs[-1]["role"] == "assistant":
        if len(msgs) >= 2 and msgs[-2]["role"] == "assistant":  # as with a Jinja template
            raise InvalidRequest("Cannot have 2 or more assistant messages at the end of the list.")
        prefill, msgs, add_gen = msgs[-1]["content"], msgs[:-1], True
    prompt = template.render(msgs, add_generation_prompt=add_gen)
    return ChatParams(prompt=prompt + prefill, format="Content-only", prefill=prefill,
                      syntax=ChatSyntax(reasoning_format="none" if prefill else inputs.reasoning_format,
                                        parse_tool_calls=False))


__all__ = ["ChatInputs", "ChatParams", "apply_chat", "ChatFormat"]
