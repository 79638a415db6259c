"""Constrained output: GBNF grammars (llama.cpp's syntax) parsed and matched in
native code. `compile_grammar` parses (GrammarError on bad input, with where);
`GrammarState` follows one generation and is the sampler chain's token filter."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _native

if TYPE_CHECKING:
    from .tokenizer import Tokenizer

GrammarError = _native.GrammarError


def compile_grammar(text: str, tokenizer: "Tokenizer | None" = None, root: str = "root") -> "_native.Grammar":
    """Parse GBNF. <token> references are resolved with the tokenizer (they must be
    exactly one token); <[id]> needs none."""
    if not isinstance(text, str):
        raise GrammarError("the grammar must be a string")

    def token_id(piece: str) -> int:
        ids = tokenizer.tokenize(piece, add_special=False, parse_special=True)
        return ids[0] if len(ids) == 1 else -1

    return _native.parse_grammar(text, root, token_id if tokenizer is not None else None)


def grammar_vocab(tokenizer: "Tokenizer") -> "_native.GrammarVocab":
    """Every token's text (specials shown) and the end-of-generation ids, built once per tokenizer."""
    vocab = tokenizer.__dict__.get("_grammar_vocab")
    if vocab is None:
        pieces = tokenizer.all_pieces(special=True)
        vocab = _native.GrammarVocab(pieces, sorted(tokenizer.eog_ids))
        tokenizer.__dict__["_grammar_vocab"] = vocab
    return vocab


class GrammarState:
    """A grammar following one generation."""

    def __init__(self, grammar: "_native.Grammar", tokenizer: "Tokenizer"):
        self.matcher = _native.GrammarMatcher(grammar, grammar_vocab(tokenizer))
        self.filter = self.matcher.filter()

    def accept(self, token: int) -> bool:
        return self.matcher.accept(token)

    def allows(self, token: int) -> bool:
        return self.matcher.allows(token)

    @property
    def complete(self) -> bool:
        return self.matcher.complete()
