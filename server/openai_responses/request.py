"""The Responses API request: its body as a chat body (see the package docstring)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field as dataclass_field

from pyllama.chat import ChatSyntax
from pyllama.engine import TaskRequest

from .. import schemas
from ..errors import bad_request


log = logging.getLogger("pyllama.server")

# Responses fields that become something else in the chat body (the rest pass through).
_CONVERTED = ("input", "instructions", "tools", "max_output_tokens", "reasoning")


# -- the request --------------------------------------------------------------------------------

def chat_body(body: dict) -> dict:
    """The chat-completions body of a Responses body (400 on what cannot be read)."""
    if "input" not in body:
        raise bad_request("'input' is required")
    previous = body.get("previous_response_id")
    if isinstance(previous, str) and previous:
        raise bad_request("llama.cpp does not support 'previous_response_id'.")
    out = {k: v for k, v in body.items() if k not in _CONVERTED}
    messages: list[dict] = []
    instructions = body.get("instructions")
    if instructions is not None:
        if not isinstance(instructions, str):
            raise bad_request("'instructions' must be a string")
        messages.append({"role": "system", "content": instructions})
    given = body["input"]
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list):
        for item in given:
            _add_item(messages, item)
    else:
        raise bad_request("'input' must be a string or array of objects")
    out["messages"] = messages
    tools = _chat_tools(body.get("tools"))
    if tools:
        out["tools"] = tools
    if "max_output_tokens" in body:
        out["max_tokens"] = body["max_output_tokens"]
    reasoning = body.get("reasoning")
    if isinstance(reasoning, dict) and "effort" in reasoning:
        out["reasoning_effort"] = reasoning["effort"]
    return out


def _add_item(messages: list[dict], item) -> None:
    """One input item appended to the chat messages (or merged into the assistant turn
    before it), in llama-server's order of recognition."""
    if not isinstance(item, dict):
        raise bad_request("Cannot determine type of 'item'")
    item = dict(item)
    if isinstance(item.get("content"), str):  # only an input message has text content
        item["content"] = [{"text": item["content"], "type": "input_text"}]
    role, kind, content = item.get("role"), item.get("type"), item.get("content")
    after_assistant = bool(messages) and messages[-1].get("role") == "assistant"
    if isinstance(content, list) and role in ("user", "system", "developer"):
        messages.append({**_without(item, "type", "status"), "content": [_input_part(p) for p in content]})
    elif role == "assistant" and (kind == "message" or (kind is None and isinstance(content, list))):
        parts = [_output_part(p) for p in content] if isinstance(content, list) else []
        if after_assistant:
            prev = messages[-1]
            if not isinstance(prev.get("content"), list):
                prev["content"] = []
            prev["content"].extend(parts)
        else:
            messages.append({**_without(item, "type", "status"), "content": parts})
    elif kind == "function_call" and all(isinstance(item.get(k), str) for k in ("arguments", "call_id", "name")):
        call = {"function": {"arguments": item["arguments"], "name": item["name"]},
                "id": item["call_id"], "type": "function"}
        if after_assistant:
            prev = messages[-1]
            if not isinstance(prev.get("tool_calls"), list):
                prev["tool_calls"] = []
            prev["tool_calls"].append(call)
        else:
            messages.append({"role": "assistant", "tool_calls": [call]})
    elif kind == "function_call_output" and isinstance(item.get("call_id"), str) and \
            isinstance(item.get("output"), (str, list)):
        messages.append({"content": _tool_output(item["output"]), "role": "tool", "tool_call_id": item["call_id"]})
    elif kind == "reasoning" and isinstance(item.get("summary"), list):
        text = _reasoning_text(content)
        if after_assistant:
            messages[-1]["reasoning_content"] = text
        else:
            messages.append({"role": "assistant", "content": [], "reasoning_content": text})
    else:
        raise bad_request("Cannot determine type of 'item'")


def _without(d: dict, *keys: str) -> dict:
    return {k: v for k, v in d.items() if k not in keys}


def _type(part) -> str:
    t = part.get("type") if isinstance(part, dict) else None
    return t if isinstance(t, str) else ""


def _input_part(part) -> dict:
    kind = _type(part)
    if kind == "input_text":
        if "text" not in part:
            raise bad_request("'Input text' requires 'text'")
        return {"text": part["text"], "type": "text"}
    if kind == "input_image":
        if "image_url" not in part:
            raise bad_request("'image_url' is required")
        return {"image_url": {"url": part["image_url"]}, "type": "image_url"}
    if kind == "input_file":
        raise bad_request("'input_file' is not supported by llamacpp at this moment")
    raise bad_request("'type' must be one of 'input_text', 'input_image', or 'input_file'")


def _output_part(part) -> dict:
    kind = _type(part)
    if kind in ("output_text", "input_text"):
        if not isinstance(part.get("text"), str):
            raise bad_request("'Output text' requires 'text'")
        return {"text": part["text"], "type": "text"}
    if kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise bad_request("'Refusal' requires 'refusal'")
        return {"refusal": part["refusal"], "type": "refusal"}
    raise bad_request("'type' must be one of 'output_text' or 'refusal'")


def _tool_output(output: str | list):
    if isinstance(output, str):
        return output
    parts = []
    for part in output:
        if _type(part) != "input_text":
            raise bad_request("Output of tool call should be 'Input text'")
        parts.append({**part, "type": "text"})
    return parts


def _reasoning_text(content) -> str:
    if not isinstance(content, list):
        raise bad_request("item['content'] is not an array")
    if not content:
        raise bad_request("item['content'] is empty")
    if not isinstance(content[0], dict) or not isinstance(content[0].get("text"), str):
        raise bad_request("item['content']['text'] is not a string")
    return content[0]["text"]


def _chat_tools(tools) -> list[dict]:
    """Responses' flat function tools as chat tools; other kinds (web_search, mcp, ...)
    have no chat equivalent and are left out, with a warning, as llama-server does."""
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise bad_request("'tools' must be an array of objects")
    out = []
    for tool in tools:
        if _type(tool) != "function":
            log.warning("unsupported Responses tool type %r skipped", _type(tool))
            continue
        out.append({"type": "function", "function": {**_without(tool, "type"), "strict": tool.get("strict", True)}})
    return out


@dataclass
class ResponsesRequest:
    """A Responses request run as a chat: its one task, how to read the output, and what
    the response object echoes of the request."""

    tasks: list[TaskRequest]
    stream: bool
    syntax: ChatSyntax
    echo: dict = dataclass_field(default_factory=dict)


def responses_request(st, body: dict) -> ResponsesRequest:
    """The typed request of a Responses body (on a worker thread: it renders and tokenizes)."""
    for key in ("n", "n_cmpl"):
        if body.get(key) not in (None, 1):
            raise bad_request(f"'{key}': a response is one output, it must be 1")
    converted = chat_body(body)
    chat = schemas.chat(st, converted)
    tools = [{"type": "function", **t["function"]} for t in converted.get("tools", [])]
    return ResponsesRequest(tasks=chat.tasks, stream=chat.stream, syntax=chat.syntax, echo=_echo(body, tools))


def _echo(body: dict, tools: list[dict]) -> dict:
    """The request's settings a response object repeats, in the SDK's shapes (`tools`:
    the function tools read)."""
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):  # the chat shape of a named one
        choice = {"type": "function", "name": choice["function"].get("name")}
    reasoning = body.get("reasoning")
    parallel = body.get("parallel_tool_calls")
    metadata = body.get("metadata")
    return {
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "parallel_tool_calls": parallel if isinstance(parallel, bool) else False,
        "reasoning": {"effort": reasoning.get("effort") if isinstance(reasoning, dict) else None, "summary": None},
        "tool_choice": choice if choice is not None else "auto",
        "tools": tools,
        "metadata": metadata if isinstance(metadata, dict) else {},
    }


def input_tokens(st, chat: dict) -> dict:
    """/…/input_tokens: the number of tokens of the prompt a chat body renders to (the
    prompt a run of the same body would evaluate)."""
    prompt = schemas.chat_params(st, chat).prompt
    n = len(st.llm.tokenizer.tokenize(prompt, add_special=True, parse_special=True))
    return {"object": "response.input_tokens", "input_tokens": n}


def responses_input_tokens(st, body: dict) -> dict:
    return input_tokens(st, chat_body(body))
