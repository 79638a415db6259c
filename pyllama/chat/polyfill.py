"""A conversation rewritten into what a template can show (minja's polyfills, which
llama-server applies on every render): for a template without

- a system role: system text is folded into the next user turn;
- tools: they are listed in a system message, with an example call in the
  template's own syntax when one could be inferred;
- tool calls: an assistant turn's calls become JSON text in its content;
- tool responses: a tool turn becomes a user turn holding a JSON `tool_response`;
- string content (typed only): text becomes a list of one text part;

and for a template that wants tool-call arguments as objects, JSON-text arguments
are parsed."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .caps import TemplateCaps


def _dump(value) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)


def add_system(messages: list[dict], text: str) -> list[dict]:
    """The conversation with `text` appended to its system message (or one made for it)."""
    if messages and messages[0].get("role") == "system" and isinstance(messages[0].get("content"), str):
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + text}] + messages[1:]
    return [{"role": "system", "content": text}] + list(messages)


def object_arguments(call: dict) -> dict:
    """A tool call whose JSON-text arguments are parsed into an object (kept as text if not JSON)."""
    fn = call.get("function")
    if not isinstance(fn, dict) or not isinstance(fn.get("arguments"), str):
        return call
    try:
        args = json.loads(fn["arguments"]) if fn["arguments"].strip() else {}
    except ValueError:
        return call
    return {**call, "function": {**fn, "arguments": args}}


def polyfill_messages(messages: list[dict], tools: list | None, caps: "TemplateCaps", example: str = "") -> list[dict]:
    has_calls = any(m.get("tool_calls") for m in messages)
    fill_system = not caps.supports_system_role
    fill_tools = bool(tools) and not caps.supports_tools
    fill_calls = has_calls and not caps.supports_tool_calls
    fill_responses = not caps.supports_tool_responses and any(m.get("role") == "tool" for m in messages)
    fill_objects = has_calls and caps.requires_object_arguments
    fill_typed = caps.requires_typed_content
    if not (fill_system or fill_tools or fill_calls or fill_responses or fill_objects or fill_typed):
        return messages

    if fill_tools:
        text = "You can call any of the following tools to satisfy the user's requests: " + _dump(tools)
        if example:
            text += "\n\nExample tool call syntax:\n\n" + example + "\n\n"
        messages = add_system(messages, text)

    out: list[dict] = []
    pending_system = ""

    def add(msg: dict) -> None:
        if fill_typed and isinstance(msg.get("content"), str):
            msg = {"role": msg["role"], "content": [{"type": "text", "text": msg["content"]}]}
        out.append(msg)

    for msg in messages:
        msg = dict(msg)
        role = msg.get("role")
        if msg.get("tool_calls") and (fill_objects or fill_calls):
            msg["tool_calls"] = [object_arguments(c) for c in msg["tool_calls"]]
        if msg.get("tool_calls") and fill_calls:
            calls = []
            for c in msg["tool_calls"]:
                fn = c.get("function") or {}
                tc = {"name": fn.get("name"), "arguments": fn.get("arguments")}
                if "id" in c:
                    tc["id"] = c["id"]
                calls.append(tc)
            obj: dict = {"tool_calls": calls}
            if msg.get("content"):
                obj["content"] = msg["content"]
            msg["content"] = _dump(obj)
            del msg["tool_calls"]
        if fill_responses and role == "tool":
            resp: dict = {}
            if "name" in msg:
                resp["tool"] = msg.pop("name")
            resp["content"] = msg.get("content")
            if "tool_call_id" in msg:
                resp["tool_call_id"] = msg["tool_call_id"]
            msg["role"], role = "user", "user"
            msg["content"] = _dump({"tool_response": resp})
        if fill_system and isinstance(msg.get("content"), str):
            content = msg["content"]
            if role == "system":
                pending_system += ("\n" if pending_system else "") + content
                continue
            if role == "user":
                if pending_system:
                    msg["content"] = pending_system + ("\n" + content if content else "")
                    pending_system = ""
            elif pending_system:
                add({"role": "user", "content": pending_system})
                pending_system = ""
        add(msg)
    if pending_system:
        add({"role": "user", "content": pending_system})
    return out
