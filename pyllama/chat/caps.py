"""What a chat template can show, found as llama.cpp's minja finds it: render small
conversations containing needles and see which needles come out. A render that
fails counts as "cannot". /props reports these as `chat_template_caps`.

Beyond minja, the trial renders get the extra variables the template's chat format
always passes (FireFunction v2 reads `functions` and `datetime`, never `tools`), so
such a template is judged as it is actually used rather than as failing outright."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .template import ChatTemplateError

if TYPE_CHECKING:
    from .template import ChatTemplate

_EPOCH = datetime.fromtimestamp(0, tz=timezone.utc)
USER_NEEDLE, SYS_NEEDLE, REASONING_NEEDLE = "<User Needle>", "<System Needle>", "<REASONING_NEEDLE>"


@dataclass(frozen=True)
class TemplateCaps:
    supports_string_content: bool = True
    supports_typed_content: bool = False
    supports_system_role: bool = True
    supports_tools: bool = False
    supports_tool_calls: bool = False
    supports_tool_responses: bool = False
    supports_parallel_tool_calls: bool = False
    supports_tool_call_id: bool = False
    supports_preserve_reasoning: bool = False
    supports_thinking: bool = False          # reacts to enable_thinking, or shows past reasoning
    supports_enable_thinking: bool = False   # the prompt changes with enable_thinking
    requires_object_arguments: bool = False  # tool-call arguments must be objects, not JSON text
    requires_non_null_content: bool = False  # an assistant turn with tool calls needs content ""
    requires_typed_content: bool = False     # content must be a list of parts

    def to_json(self) -> dict:
        """The /props `chat_template_caps` object."""
        d = asdict(self)
        for k in ("supports_enable_thinking", "requires_non_null_content", "requires_typed_content",
                  "supports_tool_call_id"):
            d.pop(k)
        return d


def _contains(out: str, needle: str) -> bool:
    return needle in out


def detect_caps(tmpl: "ChatTemplate") -> tuple[TemplateCaps, str]:
    """(capabilities, tool-call example) of a Jinja template; built-in formats show
    system and user turns only."""
    if tmpl.builtin is not None:
        return TemplateCaps(), ""
    from .formats import template_format

    fmt = template_format(tmpl.source)

    def render(messages, tools=None, extra=None, add_generation_prompt=False) -> str:
        ctx = fmt.template_context(tools or [], _EPOCH)
        ctx.update(extra or {})
        try:
            return tmpl.render(messages, add_generation_prompt=add_generation_prompt, tools=tools, now=_EPOCH,
                               **ctx)
        except (ChatTemplateError, RecursionError):
            return ""

    str_user = {"role": "user", "content": USER_NEEDLE}
    typed_user = {"role": "user", "content": [{"type": "text", "text": USER_NEEDLE}]}
    string_ok = _contains(render([str_user]), USER_NEEDLE)
    typed_ok = _contains(render([typed_user]), USER_NEEDLE)
    requires_typed = not string_ok and typed_ok
    user = typed_user if requires_typed else str_user
    sys_msg = {"role": "system",
               "content": [{"type": "text", "text": SYS_NEEDLE}] if requires_typed else SYS_NEEDLE}
    system_ok = _contains(render([sys_msg, user]), SYS_NEEDLE)

    tool = {"name": "some_tool", "type": "function",
            "function": {"name": "some_tool", "description": "Some tool.",
                         "parameters": {"type": "object",
                                        "properties": {"arg": {"type": "string", "description": "Some argument."}},
                                        "required": ["arg"]}}}
    tools_ok = _contains(render([user], tools=[tool]), "some_tool")

    def with_content(content):
        a = {"role": "assistant", "content": content}
        return render([user, a, user, a])

    non_null = _contains(with_content(""), USER_NEEDLE) and not _contains(with_content(None), USER_NEEDLE)

    def calls_msg(calls):
        return {"role": "assistant", "content": "" if non_null else None, "tool_calls": calls}

    def call(name, args, id_="call_1___"):
        return {"id": id_, "type": "function", "function": {"arguments": args, "name": name}}

    args_obj = {"argument_needle": "print('Hello, World!')"}

    def has_args(out: str) -> bool:
        return any(s in out for s in ("<parameter=argument_needle>", '"argument_needle"', "'argument_needle':",
                                      ">argument_needle<"))

    str_args = has_args(render([user, calls_msg([call("ipython", json.dumps(args_obj))])]))
    obj_args = has_args(render([user, calls_msg([call("ipython", args_obj)])]))
    calls_ok = str_args or obj_args
    object_args = not str_args and obj_args
    parallel = responses = call_id = False
    if calls_ok:
        args = args_obj if object_args else json.dumps(args_obj)
        tc1, tc2 = call("test_tool1", args), call("test_tool2", args)
        out = render([user, calls_msg([tc1, tc2])])
        parallel = "test_tool1" in out and "test_tool2" in out
        out = render([user, calls_msg([tc1]), {"role": "tool", "name": "test_tool1", "content": "Some response!",
                                               "tool_call_id": "call_911_"}])
        responses, call_id = "Some response!" in out, "call_911_" in out

    # reasoning: shown for the last turn (any form the template reads), kept in history
    def assistant(fields, content=None):
        m = {"role": "assistant", **fields}
        m["content"] = content if content is not None else ("" if non_null else None)
        return m

    shows_reasoning = any(REASONING_NEEDLE in render([user, assistant({k: REASONING_NEEDLE}, c)])
                          for k, c in (("reasoning_content", None), ("thought", "response"), ("thinking", "response")))
    blocks = render([user, {"role": "assistant", "content": [{"type": "thinking", "thinking": REASONING_NEEDLE},
                                                             {"type": "text", "text": "response"}]}])
    shows_reasoning |= REASONING_NEEDLE in blocks and '"type"' not in blocks and "'type'" not in blocks
    preserve = REASONING_NEEDLE in render([user, assistant({"reasoning_content": REASONING_NEEDLE}, "answer"),
                                           str_user if not requires_typed else typed_user])
    def thinking(on: bool) -> str:  # the prompt as the format finishes it (it may close a reasoning block)
        out = render([str_user], extra={"enable_thinking": on, **fmt.template_context([], _EPOCH, on)},
                     add_generation_prompt=True)
        return fmt.finish_prompt(out, on)[0] if out else ""

    think_on, think_off = thinking(True), thinking(False)
    enable_thinking = bool(think_on) and think_on != think_off

    caps = TemplateCaps(
        supports_string_content=string_ok, supports_typed_content=typed_ok, supports_system_role=system_ok,
        supports_tools=tools_ok, supports_tool_calls=calls_ok, supports_tool_responses=responses,
        supports_parallel_tool_calls=parallel, supports_tool_call_id=call_id,
        supports_preserve_reasoning=preserve, supports_thinking=enable_thinking or shows_reasoning,
        supports_enable_thinking=enable_thinking, requires_object_arguments=object_args,
        requires_non_null_content=non_null, requires_typed_content=requires_typed)
    return caps, _tool_call_example(tmpl, fmt, caps) if not tools_ok else ""


def _tool_call_example(tmpl: "ChatTemplate", fmt, caps: TemplateCaps) -> str:
    """The text a tool call adds to a conversation: the render of [user] with a
    generation prompt against [user, assistant tool call] without one."""
    user = {"role": "user", "content": "Hey"}
    args = {"arg1": "some_value"}
    msg = {"role": "assistant", "content": "" if caps.requires_non_null_content else None,
           "tool_calls": [{"id": "call_1___", "type": "function",
                           "function": {"name": "tool_name",
                                        "arguments": args if caps.requires_object_arguments else json.dumps(args)}}]}
    ctx = fmt.template_context([], _EPOCH, False)  # the example is the call alone, no reasoning block
    try:
        prefix = tmpl.render([user], add_generation_prompt=True, now=_EPOCH, **ctx)
        full = tmpl.render([user, msg], add_generation_prompt=False, now=_EPOCH, **ctx)
    except ChatTemplateError:
        return ""
    eos = tmpl.eos_token
    if eos:
        last = full.rfind(eos)
        if last >= 0 and (last == len(prefix) - len(eos) or (full.endswith("\n") and last == len(full) - len(eos) - 1)):
            full = full[:last]
    common = 0
    for i in range(min(len(prefix), len(full))):
        if prefix[i] != full[i]:
            break
        if prefix[i] == "<":  # do not eat the "<" of a tag the two renders open differently
            continue
        common = i + 1
    example = full[common:]
    return example if ("tool_name" in example or "some_value" in example) else ""
