"""A chat request's tool-call constraint in the shape of the engine's TaskRequest
fields (grammar, grammar_text, grammar_lazy, trigger_tokens, trigger_patterns,
grammar_triggers, preserved_tokens), resolved against the model's tokenizer as
llama-server resolves them: a trigger word that is one preserved special token
triggers on that token, any other word on its text; a pattern may match anywhere
(the grammar starts where the whole pattern matched); a whole-output pattern must
match everything generated so far (the grammar starts at its first non-empty group)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import regex

from ..grammar import compile_grammar, compile_trigger
from .formats.base import TRIGGER_PATTERN, TRIGGER_PATTERN_FULL, TRIGGER_TOKEN, TRIGGER_WORD

if TYPE_CHECKING:
    from ..tokenizer import Tokenizer
    from .apply import ChatParams


def _single_token(tokenizer: "Tokenizer", text: str) -> int | None:
    ids = tokenizer.tokenize(text, add_special=False, parse_special=True)
    return ids[0] if len(ids) == 1 else None


def grammar_fields(params: "ChatParams", tokenizer: "Tokenizer") -> dict:
    """TaskRequest keyword arguments for the chat's constraint ({} when it has none).
    GrammarError / regex.error only for a broken format (never for request input)."""
    if not params.grammar:
        return {}
    preserved = []
    for piece in params.preserved_tokens:
        tok = _single_token(tokenizer, piece)
        if tok is not None and tok not in preserved:
            preserved.append(tok)
    tokens, patterns, reported = [], [], []
    for t in params.grammar_triggers:
        kind, value = t["type"], t["value"]
        if kind == TRIGGER_WORD:
            tok = _single_token(tokenizer, value)
            if tok is not None and tok in preserved:
                tokens.append(tok)
                reported.append({"type": TRIGGER_TOKEN, "value": value, "token": tok})
                continue
            source = "(" + regex.escape(value) + ")"
        elif kind == TRIGGER_PATTERN:
            source = "(" + value + ")"
        elif kind == TRIGGER_PATTERN_FULL:
            source = "^" + value + "$"
        else:
            raise ValueError(f"unknown trigger type {kind}")
        patterns.append(compile_trigger(source))
        reported.append({"type": kind, "value": value})
    return {"grammar": compile_grammar(params.grammar, tokenizer), "grammar_text": params.grammar,
            "grammar_lazy": params.grammar_lazy, "trigger_tokens": tokens, "trigger_patterns": patterns,
            "grammar_triggers": reported, "preserved_tokens": preserved}
