"""The Messages API request: its body as a chat body (see the package docstring)."""

from __future__ import annotations

import json
from dataclasses import dataclass

from pyllama.chat import ChatSyntax
from pyllama.engine import TaskRequest

from .. import schemas
from ..errors import bad_request, media_unsupported
from ..params import field


DEFAULT_MAX_TOKENS = 4096  # llama-server's, when a body has none
PASSED_THROUGH = ("temperature", "top_p", "top_k", "stream", "chat_template_kwargs")


@dataclass
class MessagesRequest:
    """A /v1/messages request made ready: the chat's task, how to read its output, and
    the stop sequences the client asked for (which tell "stop_sequence" from "end_turn")."""

    tasks: list[TaskRequest]
    stream: bool
    syntax: ChatSyntax
    stop_sequences: list[str]


def parse(st, body: dict) -> MessagesRequest:
    """/v1/messages: the body as a chat (schemas.chat renders, tokenizes, constrains)."""
    chat_body = to_chat_body(body)
    chat = schemas.chat(st, chat_body)
    return MessagesRequest(chat.tasks, chat.stream, chat.syntax, chat_body.get("stop", []))


def count_tokens(st, body: dict) -> int:
    """/v1/messages/count_tokens: the tokens of the prompt /v1/messages would run."""
    params = schemas.chat_params(st, to_chat_body(body))
    return len(st.llm.tokenizer.tokenize(params.prompt, add_special=True, parse_special=True))


# -- the request -------------------------------------------------------------------------------

def to_chat_body(body: dict) -> dict:
    """The OpenAI chat body of a Messages body (see the module's docstring)."""
    out: dict = {"messages": _system(body.get("system")) + _messages(body.get("messages"))}
    if body.get("tools") is not None:
        out["tools"] = _tools(body["tools"])
    if body.get("tool_choice") is not None:
        out["tool_choice"] = _tool_choice(body["tool_choice"])
    stops = body.get("stop_sequences")
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
            raise bad_request("stop_sequences: expected an array of strings")
        out["stop"] = stops
    out["max_tokens"] = field(body, "max_tokens", int, DEFAULT_MAX_TOKENS)
    for key in PASSED_THROUGH:
        if key in body:
            out[key] = body[key]
    thinking, budget = _thinking(body.get("thinking"))
    if thinking is not None:
        out["enable_thinking"] = thinking
    if budget is not None:
        out["reasoning_budget_tokens"] = budget
    return out


def _system(system) -> list[dict]:
    if system is None:
        return []
    if isinstance(system, str):
        text = steady_billing_header(system)
    elif isinstance(system, list):
        texts = []
        for k, b in enumerate(system):
            if not isinstance(b, dict) or b.get("type") != "text" or not isinstance(b.get("text"), str):
                raise bad_request(f"system[{k}]: expected a text block {{\"type\": \"text\", \"text\": ...}}")
            texts.append(steady_billing_header(b["text"]))
        text = "".join(texts)
    else:
        raise bad_request("system: expected a string or an array of text blocks")
    return [{"role": "system", "content": text}] if text else []


def steady_billing_header(text: str) -> str:
    """Claude Code opens its system prompt with `x-anthropic-billing-header: ...; cch=XXXXX;`,
    a stamp that changes with every request and would keep any prompt cache from reaching
    past it; as llama-server does, its five characters are made constant."""
    head = "x-anthropic-billing-header:"
    if not text.startswith(head):
        return text
    k = text.find("cch=", len(head))
    if k < 0:
        return text
    k += len("cch=")
    if k + 5 < len(text) and text[k + 5] == ";":
        return text[:k] + "fffff" + text[k + 5:]
    return text


def _messages(msgs) -> list[dict]:
    if not isinstance(msgs, list):  # (empty is allowed, as llama-server allows it)
        raise bad_request("messages: expected an array of messages")
    out: list[dict] = []
    for i, m in enumerate(msgs):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            raise bad_request(f"{where}: expected an object with 'role' and 'content'")
        role = m.get("role")
        if role not in ("user", "assistant"):
            raise bad_request(f"{where}.role: expected \"user\" or \"assistant\", got {json.dumps(role)}"
                              + (" (a system prompt goes in the top-level 'system' field)" if role == "system" else ""))
        content = m.get("content")
        if isinstance(content, str):
            out.append({"role": role, "content": content})
        elif isinstance(content, list):
            out.extend(_turn(role, content, where))
        else:
            raise bad_request(f"{where}.content: expected a string or an array of content blocks")
    return out


def _turn(role: str, blocks: list, where: str) -> list[dict]:
    """One turn's blocks as OpenAI messages: its tool results (user), then the turn itself
    if anything is left (an empty turn is dropped, as llama-server drops it)."""
    texts: list[str] = []
    calls: list[dict] = []
    results: list[dict] = []
    reasoning = ""
    for k, b in enumerate(blocks):
        at = f"{where}.content[{k}]"
        if not isinstance(b, dict):
            raise bad_request(f"{at}: expected a content block object")
        kind = b.get("type")
        if kind == "text":
            texts.append(_string(b, "text", at))
        elif kind == "image":  # an image part for the chat, which needs a multimodal projector
            raise media_unsupported("image")
        elif kind == "document":
            raise bad_request(f"{at}: document blocks are not supported (this server has no document input)")
        elif kind == "tool_use" and role == "assistant":
            calls.append(_tool_call(b, at))
        elif kind == "tool_result" and role == "user":
            results.append(_tool_result(b, at))
        elif kind == "thinking" and role == "assistant":
            reasoning += _string(b, "thinking", at)
        elif kind == "redacted_thinking" and role == "assistant":
            pass  # encrypted by Anthropic: nothing a local model can read
        else:
            raise bad_request(f"{at}: unsupported content block type {json.dumps(kind)} in a {role} message")
    out = list(results)
    if texts or calls or reasoning:
        msg: dict = {"role": role, "content": [{"type": "text", "text": t} for t in texts] or ""}
        if calls:
            msg["tool_calls"] = calls
        if reasoning:
            msg["reasoning_content"] = reasoning
        out.append(msg)
    return out


def _string(block: dict, key: str, at: str) -> str:
    v = block.get(key)
    if not isinstance(v, str):
        raise bad_request(f"{at}.{key}: expected a string")
    return v


def _tool_call(b: dict, at: str) -> dict:
    ident, name = _string(b, "id", at), _string(b, "name", at)
    args = b.get("input", {})
    if not isinstance(args, dict):
        raise bad_request(f"{at}.input: expected an object")
    return {"id": ident, "type": "function",
            "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False, separators=(",", ":"))}}


def _tool_result(b: dict, at: str) -> dict:
    ident = _string(b, "tool_use_id", at)
    if b.get("is_error") is not None and not isinstance(b["is_error"], bool):
        raise bad_request(f"{at}.is_error: expected a boolean")
    content = b.get("content")
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        parts = []
        for k, c in enumerate(content):
            if isinstance(c, dict) and c.get("type") == "image":
                raise media_unsupported("image")
            if not isinstance(c, dict) or c.get("type") != "text":
                kind = c.get("type") if isinstance(c, dict) else None
                raise bad_request(f"{at}.content[{k}]: unsupported block type {json.dumps(kind)} in a tool "
                                  "result (only text)")
            parts.append(_string(c, "text", f"{at}.content[{k}]"))
        text = "".join(parts)
    else:
        raise bad_request(f"{at}.content: expected a string or an array of text blocks")
    return {"role": "tool", "tool_call_id": ident, "content": text}


def _tools(tools) -> list[dict]:
    if not isinstance(tools, list):
        raise bad_request("tools: expected an array of tools")
    out = []
    for k, t in enumerate(tools):
        at = f"tools[{k}]"
        if not isinstance(t, dict):
            raise bad_request(f"{at}: expected an object with 'name' and 'input_schema'")
        if t.get("type") not in (None, "custom"):
            raise bad_request(f"{at}: tool type {json.dumps(t['type'])} is not supported (only client tools "
                              "with an input_schema)")
        name = t.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request(f"{at}.name: expected a non-empty string")
        desc = t.get("description")
        if desc is not None and not isinstance(desc, str):
            raise bad_request(f"{at}.description: expected a string")
        schema = t.get("input_schema")
        if schema is not None and not isinstance(schema, dict):
            raise bad_request(f"{at}.input_schema: expected a JSON Schema object")
        out.append({"type": "function", "function": {
            "name": name, "description": desc or "",
            "parameters": schema if schema is not None else {"type": "object", "properties": {}}}})
    return out


def _tool_choice(tc) -> str | dict:
    kind = tc.get("type") if isinstance(tc, dict) else None
    if kind in ("auto", "none"):
        return kind
    if kind == "any":
        return "required"
    if kind == "tool":
        name = tc.get("name")
        if not isinstance(name, str) or not name:
            raise bad_request("tool_choice.name: expected the name of a tool")
        return {"type": "function", "function": {"name": name}}
    raise bad_request("tool_choice: expected {\"type\": \"auto\" | \"any\" | \"none\"} or "
                      "{\"type\": \"tool\", \"name\": ...}")


def _thinking(v) -> tuple[bool | None, int | None]:
    """Anthropic's `thinking` as (enable_thinking: on, off, or None for the server's
    default; the reasoning budget in tokens, if any)."""
    if v is None:
        return None, None
    kind = v.get("type") if isinstance(v, dict) else None
    if kind == "enabled":
        budget = v.get("budget_tokens")
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int) or budget < 1):
            raise bad_request("thinking.budget_tokens: expected a positive integer")
        return True, budget
    if kind == "disabled":
        return False, None
    if kind == "adaptive":
        return None, None
    raise bad_request("thinking: expected {\"type\": \"enabled\", \"budget_tokens\": N} or {\"type\": \"disabled\"}")
