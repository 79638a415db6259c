"""Anthropic's Messages API (/v1/messages, /v1/messages/count_tokens) as llama-server
serves it: a Messages body is turned into an OpenAI chat body, which schemas.chat then
renders, tokenizes and constrains like any chat (so a conversation costs the same
tokens on both routes), and the output comes back in Anthropic's shapes: a `message`
object, or its stream of named events.

The request, as llama-server converts it: `system` (a string or text blocks, joined)
becomes a system message; each turn's blocks become OpenAI messages: `text` blocks the
content, `thinking` blocks the assistant's reasoning_content, `tool_use` blocks its
tool_calls (`input` as compact JSON text), `tool_result` blocks tool messages (their
text joined; `is_error` is not shown to the model, as in llama-server); `tools`
(`name`, `description`, `input_schema`) become function tools; `tool_choice` auto /
any / tool / none; `stop_sequences` the stop strings; `max_tokens` defaults to 4096
(llama-server does not require it); `temperature`, `top_p`, `top_k`, `stream` and
`chat_template_kwargs` pass through; `metadata` is ignored.

Where this departs from llama-server, on purpose:
- What llama-server skips silently is a 400 that names it: a role other than user or
  assistant, an unknown block, a block in the wrong turn, a field of the wrong type.
  Image and document blocks are refused (no vision here; llama-server would fail later
  for want of a projector).
- A user turn's tool results come before its text: templates need tool messages right
  after the assistant turn that called (llama-server puts the text first).
- `tool_choice` {"type": "tool", "name"} forces that tool (llama-server: any tool);
  {"type": "none"} renders the tools and calls none (llama-server: auto).
- `thinking` {"type": "enabled"} turns the template's thinking on, {"type": "disabled"}
  off; `budget_tokens` is the reasoning budget (reasoning_budget_tokens: its end is
  forced after that many tokens of reasoning).
- `stop_reason` is "stop_sequence", with `stop_sequence` set, when one of the request's
  stop sequences ended the output (llama-server says "end_turn", and names any stop
  string, the chat format's own included).
- The stream closes each content block before the next one starts (llama-server leaves
  them open until the end), and usage in `message_delta` carries the input counts too.
- Message ids are Anthropic's `msg_…` (llama-server reuses its `chatcmpl-…` ids); tool_use
  ids are the chat route's, as llama-server's are.
- Errors here have Anthropic's envelope, which is llama-server's plus `"type": "error"`
  (see error_body); a failure mid-stream is an `event: error`, which the SDK raises
  (a bare `data:` error line, as other streams end, would be ignored by it).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

from pyllama.chat import ChatMsg, ChatStream, ChatSyntax, assign_ids, parse_output
from pyllama.engine import TaskRequest
from pyllama.engine.task import CompletionResult, PartialEvent

from . import schemas
from .errors import ApiError, api_error, bad_request
from .params import field
from .responses import Answer
from .sse import NamedEvent

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
    if not isinstance(msgs, list) or not msgs:
        raise bad_request("messages: expected a non-empty array of messages")
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
        elif kind in ("image", "document"):
            raise bad_request(f"{at}: {kind} blocks are not supported (this server has no vision or "
                              "document input)")
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


# -- the answer --------------------------------------------------------------------------------

def error_body(e: ApiError) -> dict:
    """Anthropic's error envelope, {"type": "error", "error": {"type", "message"}}, made of
    llama-server's: the same `error` object (code, message, type; llama-server's error
    types are Anthropic's names for 400/401/403/404), under `"type": "error"`. Clients of
    either read what they expect."""
    return {"type": "error", **e.body()}


def content_blocks(msg: ChatMsg) -> list[dict]:
    """A parsed reply as content blocks: its thinking (signature "": a local model signs
    nothing), its text, then one tool_use block per call (`input` the arguments as an
    object; {} if they are not a JSON object, e.g. cut by max_tokens)."""
    out: list[dict] = []
    if msg.reasoning_content:
        out.append({"type": "thinking", "thinking": msg.reasoning_content, "signature": ""})
    if msg.content:
        out.append({"type": "text", "text": msg.content})
    for c in msg.tool_calls:
        out.append({"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)})
    return out


def tool_input(arguments: str) -> dict:
    try:
        v = json.loads(arguments)
    except ValueError:
        return {}
    return v if isinstance(v, dict) else {}


class AnthropicMessage(Answer):
    """/v1/messages: a `message` object, or its stream: message_start, per content block
    content_block_start, its deltas (text_delta, thinking_delta then a signature_delta,
    input_json_delta) and content_block_stop, then message_delta (stop_reason, usage)
    and message_stop. The blocks come from ChatStream's deltas, so the stream's blocks
    join to the whole answer's."""

    def __init__(self, req: MessagesRequest, **kw):
        super().__init__(req, **kw)
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.chat = ChatStream(req.syntax)
        self.blocks = _OpenBlocks()
        self.text = ""
        self.started = False

    def whole(self, results):
        r = results[0]
        msg = assign_ids(parse_output(r.content, self.req.syntax), self.req.syntax)
        reason, word = self.stop_reason(r, msg)
        return self.message(content_blocks(msg), reason, word, usage(r, r.n_decoded))

    def message(self, content: list, reason: str | None, word: str | None, use: dict) -> dict:
        return {"id": self.id, "type": "message", "role": "assistant", "content": content, "model": self.model,
                "stop_reason": reason, "stop_sequence": word, "usage": use}

    def stop_reason(self, r: CompletionResult, msg: ChatMsg) -> tuple[str, str | None]:
        """(stop_reason, stop_sequence): max_tokens when cut; stop_sequence when one of the
        request's stop sequences ended it; tool_use when it made calls; else end_turn."""
        if r.stop_type == "limit":
            return "max_tokens", None
        if r.stop_type == "word" and r.stopping_word in self.req.stop_sequences:
            return "stop_sequence", r.stopping_word
        return ("tool_use" if msg.tool_calls else "end_turn"), None

    def _start(self, n_prompt: int, n_cached: int) -> list:
        if self.started:
            return []
        self.started = True
        use = {"cache_read_input_tokens": n_cached, "input_tokens": n_prompt - n_cached, "output_tokens": 0}
        return [NamedEvent("message_start", {"type": "message_start", "message": self.message([], None, None, use)})]

    def partial(self, i, ev: PartialEvent):
        out = self._start(ev.n_prompt, ev.n_cached)
        self.text += ev.content
        return out + self.blocks.events(self.chat.update(self.text))

    def final(self, i, r):
        out = self._start(r.n_prompt, r.n_cached)
        msg, deltas = self.chat.finish(r.content)
        out += self.blocks.events(deltas) + self.blocks.close()
        reason, word = self.stop_reason(r, msg)
        out.append(NamedEvent("message_delta", {"type": "message_delta",
                                           "delta": {"stop_reason": reason, "stop_sequence": word},
                                           "usage": usage(r, r.n_decoded)}))
        out.append(NamedEvent("message_stop", {"type": "message_stop"}))
        return out

    def error_payload(self, e: BaseException) -> NamedEvent:
        """How an error ends this stream (sse.answer_events)."""
        return NamedEvent("error", error_body(api_error(e)))


def usage(r: CompletionResult, output_tokens: int) -> dict:
    """Anthropic's usage: input tokens read from the prompt cache apart from the others."""
    return {"cache_read_input_tokens": r.n_cached, "input_tokens": r.n_prompt - r.n_cached,
            "output_tokens": output_tokens}


class _OpenBlocks:
    """The content blocks of a streamed message, one open at a time as Anthropic streams
    them: ChatStream's deltas (reasoning_content, content, tool_calls) become block
    starts, deltas and stops, each block with its own index in the message. (Text that
    follows a tool call, which the formats rarely allow, opens a new text block here; the
    whole answer has one text block before its calls.)"""

    def __init__(self):
        self.n = 0                      # blocks started so far
        self.open: tuple | None = None  # ("thinking",) | ("text",) | ("tool", call index)
        self.tools: dict[int, int] = {}  # tool call index -> block index

    def events(self, deltas: list[dict]) -> list[NamedEvent]:
        out: list[NamedEvent] = []
        for d in deltas:
            if d.get("reasoning_content"):
                out += self._enter(("thinking",), {"type": "thinking", "thinking": "", "signature": ""})
                out.append(self._delta(self.n - 1, {"type": "thinking_delta", "thinking": d["reasoning_content"]}))
            if d.get("content"):
                out += self._enter(("text",), {"type": "text", "text": ""})
                out.append(self._delta(self.n - 1, {"type": "text_delta", "text": d["content"]}))
            for call in d.get("tool_calls") or []:
                k, fn = call["index"], call.get("function") or {}
                if k not in self.tools:
                    out += self._enter(("tool", k), {"type": "tool_use", "id": call.get("id", ""),
                                                     "name": fn.get("name", ""), "input": {}})
                    self.tools[k] = self.n - 1
                if fn.get("arguments"):
                    out.append(self._delta(self.tools[k], {"type": "input_json_delta",
                                                           "partial_json": fn["arguments"]}))
        return out

    def close(self) -> list[NamedEvent]:
        """The open block's end (a thinking block first gets its empty signature)."""
        if self.open is None:
            return []
        index = self.n - 1
        out = []
        if self.open == ("thinking",):
            out.append(self._delta(index, {"type": "signature_delta", "signature": ""}))
        out.append(NamedEvent("content_block_stop", {"type": "content_block_stop", "index": index}))
        self.open = None
        return out

    def _enter(self, which: tuple, block: dict) -> list[NamedEvent]:
        if self.open == which:
            return []
        out = self.close()
        self.open = which
        out.append(NamedEvent("content_block_start", {"type": "content_block_start", "index": self.n,
                                                 "content_block": block}))
        self.n += 1
        return out

    @staticmethod
    def _delta(index: int, delta: dict) -> NamedEvent:
        return NamedEvent("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
