"""JSON read from model output that may stop anywhere: a value is scanned from a
position and comes back as a tree of nodes, complete or not. A node's `minified()`
text is the source without insignificant whitespace, cut before a dangling escape
while the node is incomplete, so the text shown for a prefix of the output is
always a prefix of the text shown for the whole of it: streamed tool-call
arguments only ever grow. Strict JSON: no NaN, no raw control characters."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MAX_DEPTH = 200

_WS = re.compile(r"[ \t\n\r]*")
_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"')
_STRING_PREFIX = re.compile(r'"(?:[^"\\\x00-\x1f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*(\\(?:u[0-9a-fA-F]{0,3})?)?\Z')
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_PREFIX = re.compile(r"-?(?:(?:0|[1-9][0-9]*)(?:\.(?:[0-9]+(?:[eE][+-]?[0-9]*)?)?|[eE][+-]?[0-9]*)?)?\Z")
_LITERALS = ("true", "false", "null")
_MIN_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"?|[^"\s]+', re.S)


class JsonError(ValueError):
    """The text is not a prefix of any JSON value."""


def minify(text: str) -> str:
    return "".join(_MIN_TOKEN.findall(text))


@dataclass(eq=False)
class JsonNode:
    text: str
    kind: str  # object | array | string | number | literal
    start: int
    end: int = -1       # one past the value when complete; len(text) otherwise
    complete: bool = False
    safe_end: int = -1  # while incomplete: how far the source may be shown
    members: list = field(default_factory=list)  # object: [(key, JsonNode)], keys complete
    items: list = field(default_factory=list)    # array: [JsonNode]

    def member(self, key: str) -> "JsonNode | None":
        for k, v in self.members:
            if k == key:
                return v
        return None

    def value(self):
        """The Python value (complete nodes only)."""
        assert self.complete
        return json.loads(self.text[self.start:self.end])

    def minified(self) -> str:
        return minify(self.text[self.start:self.end if self.complete else self.safe_end])


class _Scanner:
    def __init__(self, text: str, final: bool):
        self.text, self.n, self.final = text, len(text), final

    def ws(self, i: int) -> int:
        return _WS.match(self.text, i).end()

    def value(self, i: int, depth: int) -> JsonNode:
        if depth > MAX_DEPTH:
            raise JsonError("JSON nested too deeply")
        c = self.text[i]
        if c == "{":
            return self.container(i, depth, "object")
        if c == "[":
            return self.container(i, depth, "array")
        if c == '"':
            return self.string(i)
        if c == "-" or c.isdigit():
            return self.number(i)
        for lit in _LITERALS:
            if self.text.startswith(lit, i):
                return JsonNode(self.text, "literal", i, i + len(lit), True)
            if self.n - i < len(lit) and lit.startswith(self.text[i:]) and not self.final:
                return JsonNode(self.text, "literal", i, self.n, False, self.n)
        raise JsonError(f"unexpected {c!r} at {i}")

    def string(self, i: int) -> JsonNode:
        m = _STRING.match(self.text, i)
        if m:
            return JsonNode(self.text, "string", i, m.end(), True)
        m = _STRING_PREFIX.match(self.text, i)
        if m and not self.final:
            return JsonNode(self.text, "string", i, self.n, False, m.start(1) if m.group(1) else self.n)
        raise JsonError(f"invalid string at {i}")

    def number(self, i: int) -> JsonNode:
        m = _NUMBER.match(self.text, i)
        if m and (m.end() < self.n or self.final):
            return JsonNode(self.text, "number", i, m.end(), True)
        if not self.final and _NUMBER_PREFIX.match(self.text, i):
            return JsonNode(self.text, "number", i, self.n, False, self.n)
        raise JsonError(f"invalid number at {i}")

    def container(self, start: int, depth: int, kind: str) -> JsonNode:
        node = JsonNode(self.text, kind, start)
        close = "}" if kind == "object" else "]"
        i = self.ws(start + 1)

        def cut(at: int) -> JsonNode:
            if self.final:
                raise JsonError("unexpected end of JSON")
            node.end, node.safe_end = self.n, at
            return node

        if i == self.n:
            return cut(self.n)
        if self.text[i] == close:
            node.end, node.complete = i + 1, True
            return node
        while True:
            key = None
            if kind == "object":
                if self.text[i] != '"':
                    raise JsonError(f"expected a key at {i}")
                k = self.string(i)
                if not k.complete:
                    return cut(k.safe_end)
                key = k.value()
                i = self.ws(k.end)
                if i == self.n:
                    return cut(self.n)
                if self.text[i] != ":":
                    raise JsonError(f"expected ':' at {i}")
                i = self.ws(i + 1)
                if i == self.n:
                    return cut(self.n)
            child = self.value(i, depth + 1)
            if kind == "object":
                node.members.append((key, child))
            else:
                node.items.append(child)
            if not child.complete:
                return cut(child.safe_end)
            i = self.ws(child.end)
            if i == self.n:
                return cut(self.n)
            c = self.text[i]
            if c == close:
                node.end, node.complete = i + 1, True
                return node
            if c != ",":
                raise JsonError(f"expected ',' or {close!r} at {i}")
            i = self.ws(i + 1)
            if i == self.n:
                return cut(self.n)


def scan_json(text: str, pos: int = 0, *, final: bool = False) -> JsonNode | None:
    """The JSON value starting at `pos` (after whitespace), or None when only whitespace
    follows. final=True: the text is all there is, so an unfinished value is an error.
    JsonError when the text cannot be the start of a JSON value."""
    i = _WS.match(text, pos).end()
    if i == len(text):
        return None
    return _Scanner(text, final).value(i, 0)
