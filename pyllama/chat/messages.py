"""OpenAI chat messages and tools as the chat code takes them (checked and put in the
shape llama-server gives its templates), `tool_choice`, and the assistant message
a model's output parses into."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..errors import InvalidRequest


@dataclass
class ToolCall:
    name: str
    arguments: str  # JSON text; while streaming, a prefix of the final text
    id: str = ""


@dataclass
class ChatMsg:
    """An assistant message parsed from model output."""

    content: str = ""
    reasoning_content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)

    def to_openai(self) -> dict:
        """The OpenAI `message` object (llama-server's field order; content is null when
        the message is only tool calls)."""
        msg: dict = {"role": "assistant"}
        if self.reasoning_content:
            msg["reasoning_content"] = self.reasoning_content
        msg["content"] = None if (not self.content and self.tool_calls) else self.content
        if self.tool_calls:
            msg["tool_calls"] = [{"type": "function", "function": {"name": c.name, "arguments": c.arguments},
                                  "id": c.id} for c in self.tool_calls]
        return msg


def _text(content, where: str) -> str | list | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or "type" not in part:
                raise InvalidRequest(f"{where}: missing content part type")
            if part["type"] != "text" or not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{where}: unsupported content part type: {json.dumps(part['type'])}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise InvalidRequest(f"{where}: invalid 'content' type: expected string or array, got {json.dumps(content)}")


def normalize_messages(messages) -> list[dict]:
    """Messages as templates get them: text content (parts joined by newlines; null for
    a turn that is only tool calls), tool-call arguments as JSON text, the optional
    fields (tool_calls, reasoning_content, name, tool_call_id) present only when set.
    InvalidRequest on anything malformed."""
    if not isinstance(messages, list):
        raise InvalidRequest("'messages' must be an array")
    out = []
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise InvalidRequest(f"{where}: expected an object")
        role = m.get("role")
        if not isinstance(role, str):
            raise InvalidRequest(f"{where}: missing 'role'")
        if "content" not in m and "tool_calls" not in m:
            raise InvalidRequest(f"{where}: expected 'content' or 'tool_calls'")
        content = _text(m.get("content"), where)
        calls = []
        for c in m.get("tool_calls") or []:
            if not isinstance(c, dict) or c.get("type", "function") != "function":
                raise InvalidRequest(f"{where}: unsupported tool call: {json.dumps(c)}")
            fn = c.get("function")
            if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
                raise InvalidRequest(f"{where}: a tool call needs function.name")
            args = fn.get("arguments", "")
            if not isinstance(args, str):
                args = json.dumps(args, ensure_ascii=False)
            call = {"type": "function", "function": {"name": fn["name"], "arguments": args}}
            if c.get("id"):
                call["id"] = str(c["id"])
            calls.append(call)
        msg: dict = {"role": role, "content": content if content else (None if calls else "")}
        if calls:
            msg["tool_calls"] = calls
        for key in ("reasoning_content", "name", "tool_call_id"):
            v = m.get(key)
            if v is not None and v != "":
                if not isinstance(v, str):
                    raise InvalidRequest(f"{where}: '{key}' must be a string")
                msg[key] = v
        out.append(msg)
    return out


def normalize_tools(tools) -> list[dict]:
    """OpenAI `tools` as templates get them: [{type, function: {name, description,
    parameters}}] (an absent description is "", absent parameters an empty object)."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array")
    out = []
    for t in tools:
        if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(t.get("function"), dict):
            raise InvalidRequest(f"unsupported tool: {json.dumps(t)[:200]}")
        fn = t["function"]
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequest("a tool needs function.name")
        params = fn.get("parameters")
        if params is None:
            params = {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise InvalidRequest(f"tool {fn['name']}: 'parameters' must be an object")
        desc = fn.get("description") or ""
        out.append({"type": "function", "function": {"name": fn["name"], "description": desc, "parameters": params}})
    return out


def parse_tool_choice(value, tools: list[dict]) -> tuple[str, str | None]:
    """("auto" | "none" | "required", the forced function's name or None), from the OpenAI
    shapes ("auto", {"type": "function", "function": {"name": ...}}) and the Responses /
    Anthropic ones ({"type": "function", "name": ...}, {"type": "any"}, {"type": "tool", ...})."""
    if value is None:
        return "auto", None
    if isinstance(value, str):
        if value in ("auto", "none", "required"):
            return value, None
        raise InvalidRequest(f"Invalid tool_choice: {value}")
    if not isinstance(value, dict):
        raise InvalidRequest("Invalid tool_choice: expected a string or an object")
    kind = value.get("type")
    if kind in ("auto", "none", "required"):
        return kind, None
    if kind == "any":
        return "required", None
    if kind in ("function", "tool"):
        fn = value.get("function")
        name = fn.get("name") if isinstance(fn, dict) else value.get("name")
        if not isinstance(name, str):
            raise InvalidRequest("Invalid tool_choice: a named choice needs the function's name")
        if name not in {t["function"]["name"] for t in tools}:
            raise InvalidRequest(f"Invalid tool_choice: no tool named {name}")
        return "required", name
    raise InvalidRequest(f"Invalid tool_choice: {json.dumps(value)[:200]}")
