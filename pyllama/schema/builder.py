"""One GBNF grammar made of several JSON schemas and hand-written rules (llama.cpp's
`build_grammar` / `common_grammar_builder`): tool-call grammars wrap each tool's
argument schema in the markers of a chat format. Rules from every schema share one
namespace (a clash gets a numbered name), and each schema resolves its own `$ref`s."""

from __future__ import annotations

from .convert import MAX_GRAMMAR_BYTES, Converter, SchemaError
from .primitives import literal

__all__ = ["GrammarBuilder", "literal", "excluding"]


class GrammarBuilder:
    def __init__(self) -> None:
        self._conv = Converter(None)

    def add_schema(self, name: str, schema) -> str:
        """Rules for JSON values of the schema; returns the name of its top rule."""
        if not name:
            raise ValueError("a schema needs a rule name")
        conv = self._conv
        conv.root, conv.refs, conv.flat_refs = schema, {}, {}
        rule = conv.visit(schema, name)
        assert not conv.reserved
        return rule

    def add_rule(self, name: str, body: str) -> str:
        """A rule named after `name` (made unique if another body took it); returns its name."""
        return self._conv.add_rule(name, body)

    def primitive(self, name: str) -> str:
        """One of the shared JSON building blocks (string, number, value, ...)."""
        return self._conv.primitive(name)

    def build(self, root: str) -> str:
        """The grammar text, with `root ::= <root>`."""
        self._conv.rules["root"] = root
        text = self._conv.grammar()
        if len(text) > MAX_GRAMMAR_BYTES:
            raise SchemaError(f"the tools' grammar would be too large ({len(text)} bytes, at most "
                              f"{MAX_GRAMMAR_BYTES})")
        return text


def _char_class(chars) -> str:
    out = []
    for c in sorted(set(chars)):
        if c in "\\]^-[":
            out.append("\\" + c)
        elif ord(c) < 0x20 or ord(c) == 0x7F:
            out.append(f"\\x{ord(c):02X}")
        else:
            out.append(c)
    return "".join(out)


def excluding(forbidden: list[str]) -> str:
    """A GBNF expression for any text (possibly empty) that contains none of the strings:
    a trie over them, so `<` may start text as long as it does not go on into `</x>`.
    Like llama.cpp's, it does not track overlaps of a string with itself (tags never have
    them), and text may not end inside a proper prefix of a forbidden string."""
    words = sorted({w for w in forbidden if w})
    if not words:
        return "( . )*"

    def node(prefix_words: list[str], depth: int) -> str:
        kids: dict[str, list[str]] = {}
        for w in prefix_words:
            if len(w) > depth:
                kids.setdefault(w[depth], []).append(w)
        alts = [f"[^{_char_class(kids)}]"] if kids else []
        for ch, ws in kids.items():
            if any(len(w) == depth + 1 for w in ws):
                continue  # ch completes a forbidden word: never allowed here
            alts.append(f"{literal(ch)} {node(ws, depth + 1)}")
        return "( " + " | ".join(alts) + " )"

    return f"{node(words, 0)}*"
