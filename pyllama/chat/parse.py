"""A model's output parsed into an OpenAI assistant message, complete or while it streams."""

from __future__ import annotations

from .formats import format_by_name
from .messages import ChatMsg
from .output_parser import ChatSyntax, Incomplete, Malformed, OutputParser


def parse_output(text: str, syntax: ChatSyntax, *, partial: bool = False, memo: dict | None = None) -> ChatMsg:
    """The message in `text` (tool-call ids as the model wrote them, often empty).
    Never raises for odd output: text that does not follow the format becomes plain
    content (with its reasoning still separated). partial=True: `text` is what has
    been generated so far; nothing that could still become a marker is content yet,
    and the last tool call may have partial arguments. `memo`: what earlier parses of
    shorter versions of this same text learnt (OutputParser.find), kept by the caller."""
    fmt = format_by_name(syntax.format)
    p = OutputParser(text, syntax, partial, memo)
    try:
        fmt.parse(p)
        if not partial and not p.at_end:
            raise Malformed("unexpected text at the end")
        return p.result()
    except Incomplete:
        if partial:
            return p.result()
    except Malformed:
        pass
    plain = OutputParser(text, syntax, partial)
    try:
        fmt.parse_plain(plain)
    except Incomplete:
        pass
    return plain.result()
