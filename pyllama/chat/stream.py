"""Streaming a parsed chat reply: the OpenAI deltas between successive parses of the
growing output (llama.cpp's `common_chat_msg_diff`), in the shape the OpenAI SDK
accumulates: `reasoning_content` and `content` increments, and for tool calls a first
delta with `index`, `id`, `type` and the name, then argument increments under the same
index. Ids are fixed when a call first appears (the model's own, else a new one from
the format) and the final message carries the same ones.

A parse that does not extend what was already sent (malformed output re-read as plain
text at the end) cannot be taken back: only the parts that still extend it are sent."""

from __future__ import annotations

from .formats import format_by_name
from .messages import ChatMsg, ToolCall
from .output_parser import ChatSyntax
from .parse import parse_output


class ChatStream:
    def __init__(self, syntax: ChatSyntax, new_id=None):
        self.syntax = syntax
        self.new_id = new_id or format_by_name(syntax.format).new_id
        self.sent = ChatMsg()
        self.ids: list[str] = []
        self.memo: dict = {}   # the parser's searches, valid while the text only grows
        self.seen = ""

    def _memo(self, text: str) -> dict:
        if not text.startswith(self.seen):
            self.memo.clear()
        self.seen = text
        return self.memo

    def update(self, text: str) -> list[dict]:
        """Deltas for the output generated so far (possibly none)."""
        return self._diff(parse_output(text, self.syntax, partial=True, memo=self._memo(text)))

    def finish(self, text: str) -> tuple[ChatMsg, list[dict]]:
        """(the final message with stable ids, the last deltas)."""
        msg = parse_output(text, self.syntax, partial=False, memo=self._memo(text))
        deltas = self._diff(msg)
        for i, call in enumerate(msg.tool_calls):
            call.id = self._id(i, call)
        return msg, deltas

    def _id(self, i: int, call: ToolCall) -> str:
        while len(self.ids) <= i:
            self.ids.append("")
        if not self.ids[i]:
            self.ids[i] = call.id or self.new_id()
        return self.ids[i]

    def _diff(self, msg: ChatMsg) -> list[dict]:
        out: list[dict] = []
        sent = self.sent
        for key in ("reasoning_content", "content"):
            old, new = getattr(sent, key), getattr(msg, key)
            if len(new) > len(old) and new.startswith(old):
                out.append({key: new[len(old):]})
                setattr(sent, key, new)
        for i, call in enumerate(msg.tool_calls):
            if i < len(sent.tool_calls):
                prev = sent.tool_calls[i]
                if call.name == prev.name and len(call.arguments) > len(prev.arguments) and \
                        call.arguments.startswith(prev.arguments):
                    out.append({"tool_calls": [{"index": i, "function": {"arguments": call.arguments[len(prev.arguments):]}}]})
                    prev.arguments = call.arguments
                continue
            if i > len(sent.tool_calls):
                break
            ident = self._id(i, call)
            out.append({"tool_calls": [{"index": i, "id": ident, "type": "function",
                                        "function": {"name": call.name, "arguments": call.arguments}}]})
            sent.tool_calls.append(ToolCall(call.name, call.arguments, ident))
        return out


def assign_ids(msg: ChatMsg, syntax: ChatSyntax, new_id=None) -> ChatMsg:
    """A complete (non-streamed) message with an id on every call: the model's, else a new one."""
    make = new_id or format_by_name(syntax.format).new_id
    for call in msg.tool_calls:
        if not call.id:
            call.id = make()
    return msg
