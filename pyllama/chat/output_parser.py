"""The cursor each chat format's parser walks over model output (llama.cpp's
`common_chat_msg_parser`), and the reasoning extraction they share.

Two modes. Final: the output is complete; a construct that does not close, or text
that fits no rule, raises and the caller falls back to plain content. Partial (while
streaming): the output may stop anywhere; a parser that reaches the end inside a
construct raises `Incomplete` and what it gathered so far is the answer. Text that
might be the start of a marker (`<tool_c` at the very end) is never given out as
content in partial mode: it is held back until the next token decides."""

from __future__ import annotations

from dataclasses import dataclass, field

import regex

from .messages import ChatMsg, ToolCall
from .partial_json import JsonError, JsonNode, scan_json

REASONING_FORMATS = ("none", "auto", "deepseek", "deepseek-legacy")


@dataclass
class ChatSyntax:
    """How to read one generation's output (llama-server's `chat_syntax`)."""

    format: str = "Content-only"
    reasoning_format: str = "auto"        # none | auto | deepseek | deepseek-legacy
    reasoning_in_content: bool = False    # keep <think>...</think> in content (deepseek-legacy, streamed)
    thinking_forced_open: bool = False    # the prompt ends inside an open reasoning block
    parse_tool_calls: bool = True
    tools: list = field(default_factory=list)  # normalized tools: argument types for XML-style formats


class Incomplete(Exception):
    """The output stops inside a construct."""


class Malformed(Exception):
    """The output does not follow the format."""


def partial_start(text: str, marker: str, pos: int = 0) -> int | None:
    """Where a proper prefix of `marker` that ends the text starts (the longest one), if any."""
    n = len(text)
    for k in range(min(len(marker) - 1, n - pos), 0, -1):
        if text.endswith(marker[:k]):
            return n - k
    return None


class OutputParser:
    def __init__(self, text: str, syntax: ChatSyntax, partial: bool, memo: dict | None = None):
        self.text, self.syntax, self.partial = text, syntax, partial
        self.memo = memo  # see find()
        self.pos = 0
        self.content = ""
        self.reasoning_content = ""
        self.calls: list[ToolCall] = []

    # -- results ------------------------------------------------------------------------------
    def add_content(self, s: str) -> None:
        self.content += s

    def add_reasoning(self, s: str) -> None:
        self.reasoning_content += s

    def add_call(self, name: str, arguments: str, id: str = "") -> None:
        if not name:
            raise Malformed("a tool call without a name")
        self.calls.append(ToolCall(name=name, arguments=arguments, id=id))

    def result(self) -> ChatMsg:
        return ChatMsg(self.content, self.reasoning_content, list(self.calls))

    # -- reading --------------------------------------------------------------------------------
    @property
    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def rest(self) -> str:
        out, self.pos = self.text[self.pos:], len(self.text)
        return out

    def spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def try_literal(self, lit: str) -> bool:
        """Consume `lit` here. Partial mode: the text ending in a prefix of it raises Incomplete."""
        if self.text.startswith(lit, self.pos):
            self.pos += len(lit)
            return True
        left = self.text[self.pos:self.pos + len(lit)]
        if self.partial and left and len(left) < len(lit) and lit.startswith(left):
            self.pos = len(self.text)
            raise Incomplete(lit)
        return False

    def expect_literal(self, lit: str) -> None:
        if not self.try_literal(lit):
            if self.at_end:
                raise Incomplete(lit)
            raise Malformed(f"expected {lit!r}")

    def find_literal(self, lit: str, add_prelude: bool = True) -> str | None:
        """Move past the next `lit`; the text skipped (the prelude) goes to content unless
        add_prelude=False, and is returned. None when absent (nothing consumed)."""
        i = self.text.find(lit, self.pos)
        if i >= 0:
            prelude = self.text[self.pos:i]
            if add_prelude:
                self.add_content(prelude)
            self.pos = i + len(lit)
            return prelude
        if self.partial:
            j = partial_start(self.text, lit, self.pos)
            if j is not None:
                if add_prelude:
                    self.add_content(self.text[self.pos:j])
                self.pos = len(self.text)
                raise Incomplete(lit)
        return None

    def find(self, pattern: "regex.Pattern", add_prelude: bool = True):
        """Like find_literal for a pattern: the match, or None. Partial mode: a match that the
        end of the text cuts short raises Incomplete (prelude before it kept).

        With a memo (ChatStream's, over successive parses of a growing text), a search
        from the same place resumes where the last one found neither a match nor the
        start of one: no match can start before that in the longer text either (it
        would have been a match or a partial match of the shorter one), so a streamed
        reply is searched once, not once per token."""
        key = (pattern.pattern, self.pos)
        start = self.pos if self.memo is None else self.memo.get(key, self.pos)
        m = pattern.search(self.text, start)
        if m is None and self.partial:
            pm = pattern.search(self.text, start, partial=True)
            if pm is not None and pm.start() < len(self.text):
                if self.memo is not None:
                    self.memo[key] = pm.start()
                if add_prelude:
                    self.add_content(self.text[self.pos:pm.start()])
                self.pos = len(self.text)
                raise Incomplete(pattern.pattern)
            if self.memo is not None:
                self.memo[key] = len(self.text)
        if m is None:
            return None
        if add_prelude:
            self.add_content(self.text[self.pos:m.start()])
        self.pos = m.end()
        return m

    def take_until(self, marker: str) -> tuple[str, bool]:
        """The text up to `marker` and whether it was there (then consumed); without it, the
        rest of the output (in partial mode less a trailing prefix of the marker)."""
        i = self.text.find(marker, self.pos)
        if i >= 0:
            out, self.pos = self.text[self.pos:i], i + len(marker)
            return out, True
        end = len(self.text)
        if self.partial:
            cut = partial_start(self.text, marker, self.pos)
            end = end if cut is None else cut
        out, self.pos = self.text[self.pos:end], len(self.text)
        return out, False

    def match(self, pattern: "regex.Pattern"):
        """The pattern matched right here (consumed), or None. Partial mode: cut short → Incomplete."""
        m = pattern.match(self.text, self.pos)
        if m is None and self.partial:
            pm = pattern.match(self.text, self.pos, partial=True)
            if pm is not None and pm.partial:
                self.pos = len(self.text)
                raise Incomplete(pattern.pattern)
        if m is not None:
            self.pos = m.end()
        return m

    def json(self) -> JsonNode:
        """The JSON value here; Incomplete when the text ends before it starts (partial mode),
        Malformed when there is none. The node may be incomplete (partial mode only)."""
        try:
            node = scan_json(self.text, self.pos, final=not self.partial)
        except JsonError as e:
            raise Malformed(str(e)) from None
        if node is None:
            raise Incomplete("JSON")
        self.pos = node.end
        return node

    # -- reasoning --------------------------------------------------------------------------------
    def reasoning(self, start: str, end: str) -> bool:
        """Reasoning blocks (start...end) at the current position, possibly several; with
        thinking forced open by the prompt, the text up to `end` is reasoning though no
        `start` opens it. Unclosed reasoning runs to the end of the output. With
        reasoning_in_content the blocks stay in content, tags included."""
        syn = self.syntax
        if syn.reasoning_format == "none":
            return False
        text, n = self.text, len(self.text)
        j = self.pos
        while j < n and text[j].isspace():
            j += 1
        if j == n:
            if syn.thinking_forced_open:
                self._think(text[self.pos:], closed=not self.partial, start=start, end=end)
                self.pos = n
                return True
            return False
        if text.startswith(start, j):
            self.add_content(text[self.pos:j])
            cursor = j + len(start)
        elif self.partial and start.startswith(text[j:]):
            self.pos = n
            return True
        elif syn.thinking_forced_open:
            cursor = j
        else:
            return False
        while True:
            k = text.find(end, cursor)
            if k < 0:
                cut = partial_start(text, end, cursor) if self.partial else None
                self._think(text[cursor:n if cut is None else cut], closed=not self.partial, start=start, end=end)
                self.pos = n
                return True
            self._think(text[cursor:k], closed=True, start=start, end=end)
            cursor = k + len(end)
            while cursor < n and text[cursor].isspace():
                cursor += 1
            if text.startswith(start, cursor):
                cursor += len(start)
                continue
            if self.partial and cursor < n and start.startswith(text[cursor:]):
                self.pos = n
                return True
            self.pos = cursor
            return True

    def _think(self, reasoning: str, closed: bool, start: str, end: str) -> None:
        text = reasoning.strip()
        if not text:
            return
        if self.syntax.reasoning_in_content:
            deepseek = self.syntax.reasoning_format == "deepseek"
            self.add_content(("<think>" if deepseek else start) + text + (("</think>" if deepseek else end)
                                                                           if closed else ""))
        else:
            self.add_reasoning(text)
