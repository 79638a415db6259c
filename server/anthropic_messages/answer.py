"""The Messages API answer: the `message` object and the named events of its stream."""

from __future__ import annotations

import json
import uuid

from pyllama.chat import ChatMsg, ChatStream, assign_ids, parse_output
from pyllama.engine.task import CompletionResult, PartialEvent

from ..answers import Answer
from ..errors import ApiError, api_error
from ..sse import NamedEvent
from .request import MessagesRequest


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
