"""OpenAI's Responses API as llama-server serves it: a Responses body is converted into
a chat-completions body (llama-server's `convert_responses_to_chatcmpl`) and run as a
chat; the chat's output becomes a `response` object, or the typed events of its stream.

The request. `input` is a string (one user turn) or a list of items: messages (`user`,
`system`, `developer` with `input_text` parts; `assistant` ones with `output_text` or
`refusal` parts), `function_call` items (a call of the assistant), `function_call_output`
items (a tool turn) and `reasoning` items (the assistant's reasoning_content). Items that
follow an assistant turn (a message, a call, reasoning) are merged into it, as
llama-server does, so a model's whole earlier output fed back comes out as one assistant
message. `instructions` is a system turn first; function tools are flattened
(`{"type": "function", "name", "parameters", ...}`, `strict` true unless given) and any
other kind of tool is left out; `max_output_tokens` is `max_tokens`; `reasoning.effort`
is `reasoning_effort`; every other field is read as the chat route reads it
(temperature, top_p, tool_choice, parallel_tool_calls, stream, ...). As in llama-server,
`text.format` is not read and `previous_response_id` is refused: no response is kept.

Where this departs from llama-server, on purpose:
- an assistant message item without `"type": "message"` (the SDK's EasyInputMessage) is
  read as an assistant turn; llama-server cannot tell what it is (400);
- `instructions` and `tools` set to null count as absent (llama-server makes an empty
  system turn, or refuses null tools); `instructions` that is not a string is a 400
  (llama-server makes an empty system turn of it);
- `n` other than 1 is a 400: a response is one output (llama-server answers a list).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field as dataclass_field

from pyllama.chat import ChatStream, ChatSyntax, assign_ids, parse_output
from pyllama.chat.formats.base import random_id
from pyllama.engine import TaskRequest

from . import schemas
from .errors import bad_request
from .responses import Answer, now
from .sse import NamedEvent

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


# -- the answer ---------------------------------------------------------------------------------

def reasoning_item(item_id: str, text: str, status: str) -> dict:
    content = [{"text": text, "type": "reasoning_text"}] if text else []
    return {"id": item_id, "summary": [], "type": "reasoning", "content": content, "encrypted_content": "",
            "status": status}


def text_part(text: str) -> dict:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def message_item(item_id: str, text: str | None, status: str) -> dict:
    """A message item: with its one output_text part, or (text None: just added) none yet."""
    return {"content": [] if text is None else [text_part(text)], "id": item_id, "role": "assistant",
            "status": status, "type": "message"}


def call_item(call_id: str, name: str, arguments: str, status: str) -> dict:
    """A function_call item: `call_id` is what a function_call_output answers."""
    return {"type": "function_call", "id": call_id, "call_id": call_id, "name": name, "arguments": arguments,
            "status": status}


def new_id(prefix: str) -> str:
    return prefix + random_id()


class _Item:
    """An output item being streamed: its kind, id, the text (or arguments) sent so far,
    and a function call's name."""

    def __init__(self, kind: str, item_id: str, name: str = ""):
        self.kind, self.id, self.name, self.text = kind, item_id, name, ""

    def as_json(self, status: str) -> dict:
        if self.kind == "reasoning":
            return reasoning_item(self.id, self.text if status == "completed" else "", status)
        if self.kind == "message":
            return message_item(self.id, self.text if status == "completed" else None, status)
        return call_item(self.id, self.name, self.text if status == "completed" else "", status)


class ResponsesAnswer(Answer):
    """The `response` object of a Responses request, or its stream of events.

    Whole: output items in llama-server's order, a `reasoning` item (`rs_…`), a `message`
    item (`msg_…`) with one `output_text` part, a `function_call` item per call
    (`call_id` "fc_" + the call's id); each only when it has something.

    Streamed, llama-server's events, each `event: <type>` then its data with a
    `sequence_number` counting from 0: `response.created` and `response.in_progress`,
    then per delta of the parsed output (pyllama.chat.ChatStream) an item opened when its
    first text comes (`response.output_item.added`, for the message also
    `response.content_part.added`) and its increments (`response.reasoning_text.delta`,
    `response.output_text.delta`, `response.function_call_arguments.delta`); at the end
    every item is closed in output order (`response.output_text.done`,
    `response.content_part.done`; `response.function_call_arguments.done`;
    `response.output_item.done`) and `response.completed` carries the whole response. No
    `[DONE]`.

    Where llama-server's stream does not validate in the openai SDK, this one does: every
    event has its `output_index` (and `content_index`, `logprobs`), every response object
    has the fields the SDK requires (`created_at`, `model`, `output`, `tools`, ...), a
    call item has one `call_id` from added to done (llama-server's added item says
    "call_…", its done item "fc_…", which the SDK's stream helper refuses), an output_text
    part has `annotations`, and a reasoning item is closed with
    `response.reasoning_text.done` too. The final items carry what was streamed, so the
    deltas always join to them.

    `usage`: input_tokens = the prompt's tokens (cached_tokens of them reused from the
    slot's cache, cache_write_tokens evaluated and kept there), output_tokens = the
    tokens generated (reasoning_tokens: those of the reasoning text, tokenized again).
    `status` is "completed" whenever the generation ended, also at max_output_tokens,
    as in llama-server (and so the SDK's stream helper, which needs `response.completed`,
    works)."""

    def __init__(self, req: ResponsesRequest, **kw):
        super().__init__(req, **kw)
        self.id, self.created = new_id("resp_"), now()
        self.seq = 0
        self.chat = ChatStream(req.syntax)
        self.generated = ""
        self.items: list[_Item] = []           # in output_index order
        self.kinds: dict[str, int] = {}        # "reasoning" / "message" -> output index
        self.calls: dict[int, int] = {}        # tool call index -> output index

    # whole

    def whole(self, results):
        r = results[0]
        msg = assign_ids(parse_output(r.content, self.req.syntax), self.req.syntax)
        output = []
        if msg.reasoning_content:
            output.append(reasoning_item(new_id("rs_"), msg.reasoning_content, "completed"))
        if msg.content:
            output.append(message_item(new_id("msg_"), msg.content, "completed"))
        output += [call_item("fc_" + c.id, c.name, c.arguments, "completed") for c in msg.tool_calls]
        return self.response("completed", output, r, msg.reasoning_content)

    def response(self, status: str, output: list[dict], r=None, reasoning: str = "") -> dict:
        """The response object (llama-server's fields first, then the SDK's others)."""
        echo, sampling = self.req.echo, self.req.tasks[0].sampling
        return {
            "completed_at": now() if status == "completed" else None, "created_at": self.created,
            "id": self.id, "model": self.model, "object": "response", "output": output, "status": status,
            "usage": self.usage(r, reasoning) if r is not None else None,
            "error": None, "incomplete_details": None, "instructions": echo.get("instructions"),
            "max_output_tokens": echo.get("max_output_tokens"),
            "parallel_tool_calls": echo.get("parallel_tool_calls", False), "previous_response_id": None,
            "reasoning": echo.get("reasoning", {"effort": None, "summary": None}), "store": False,
            "temperature": sampling.temperature, "text": {"format": {"type": "text"}},
            "tool_choice": echo.get("tool_choice", "auto"), "tools": echo.get("tools", []),
            "top_p": sampling.top_p, "truncation": "disabled", "metadata": echo.get("metadata", {}),
        }

    def usage(self, r, reasoning: str) -> dict:
        n_reasoning = len(self.tokenizer.tokenize(reasoning, add_special=False)) if reasoning else 0
        return {"input_tokens": r.n_prompt,
                "input_tokens_details": {"cached_tokens": r.n_cached, "cache_write_tokens": r.n_prompt - r.n_cached},
                "output_tokens": r.n_decoded,
                "output_tokens_details": {"reasoning_tokens": min(n_reasoning, r.n_decoded)},
                "total_tokens": r.n_prompt + r.n_decoded}

    # streamed

    def event(self, kind: str, **fields) -> NamedEvent:
        data = {"type": kind, "sequence_number": self.seq, **fields}
        self.seq += 1
        return NamedEvent(kind, data)

    def opening(self, i):
        return [self.event(kind, response=self.response("in_progress", []))
                for kind in ("response.created", "response.in_progress")]

    def partial(self, i, ev):
        self.generated += ev.content
        return self._deltas(self.chat.update(self.generated))

    def final(self, i, r):
        _, deltas = self.chat.finish(r.content)
        out = self._deltas(deltas)
        output = []
        for k, item in enumerate(self.items):
            out += self._close(k, item)
            output.append(item.as_json("completed"))
        reasoning = self.items[self.kinds["reasoning"]].text if "reasoning" in self.kinds else ""
        out.append(self.event("response.completed", response=self.response("completed", output, r, reasoning)))
        return out

    def _deltas(self, deltas: list[dict]) -> list[NamedEvent]:
        out: list[NamedEvent] = []
        for d in deltas:
            if "reasoning_content" in d:
                k, item = self._open("reasoning", "rs_", out)
                item.text += d["reasoning_content"]
                out.append(self.event("response.reasoning_text.delta", item_id=item.id, output_index=k,
                                      content_index=0, delta=d["reasoning_content"]))
            if "content" in d:
                k, item = self._open("message", "msg_", out)
                item.text += d["content"]
                out.append(self.event("response.output_text.delta", item_id=item.id, output_index=k,
                                      content_index=0, delta=d["content"], logprobs=[]))
            for call in d.get("tool_calls", []):
                fn = call.get("function") or {}
                k = self.calls.get(call["index"])
                if k is None:
                    k = self.calls[call["index"]] = self._add(_Item("function_call", "fc_" + call["id"], fn["name"]),
                                                              out)
                item = self.items[k]
                if fn.get("arguments"):
                    item.text += fn["arguments"]
                    out.append(self.event("response.function_call_arguments.delta", item_id=item.id,
                                          output_index=k, delta=fn["arguments"]))
        return out

    def _open(self, kind: str, prefix: str, out: list) -> tuple[int, _Item]:
        """The reasoning or message item, added (with the message's empty part) on first use."""
        k = self.kinds.get(kind)
        if k is None:
            k = self.kinds[kind] = self._add(_Item(kind, new_id(prefix)), out)
            if kind == "message":
                out.append(self.event("response.content_part.added", item_id=self.items[k].id, output_index=k,
                                      content_index=0, part=text_part("")))
        return k, self.items[k]

    def _add(self, item: _Item, out: list) -> int:
        self.items.append(item)
        k = len(self.items) - 1
        out.append(self.event("response.output_item.added", output_index=k, item=item.as_json("in_progress")))
        return k

    def _close(self, k: int, item: _Item) -> list[NamedEvent]:
        out = []
        if item.kind == "reasoning":
            out.append(self.event("response.reasoning_text.done", item_id=item.id, output_index=k, content_index=0,
                                  text=item.text))
        elif item.kind == "message":
            out.append(self.event("response.output_text.done", item_id=item.id, output_index=k, content_index=0,
                                  text=item.text, logprobs=[]))
            out.append(self.event("response.content_part.done", item_id=item.id, output_index=k, content_index=0,
                                  part=text_part(item.text)))
        else:
            out.append(self.event("response.function_call_arguments.done", item_id=item.id, output_index=k,
                                  arguments=item.text))
        out.append(self.event("response.output_item.done", output_index=k, item=item.as_json("completed")))
        return out
