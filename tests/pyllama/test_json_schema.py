"""JSON Schema -> GBNF: every string a converted grammar can produce parses and
validates against its schema (random walks over a character vocabulary, for the
whole corpus and for regex patterns), chosen valid documents are accepted, and
schemas that make no sense or cannot be honoured are refused with a reason."""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal
from math import ceil, floor

import jsonschema
import numpy as np
import pytest

from pyllama.grammar import GrammarError, compile_grammar
from pyllama.schema import SchemaError, schema_to_grammar
from helpers.schema_corpus import CORPUS, validate
from pyllama import _native

CHARS = [chr(c) for c in range(0x20, 0x7F)] + ["\n", "\t", "é", "名", "前", "ï", "😀"]
MULTI = ['{"', '":', ', "', "00", "null", "true", "false", '\\"', "\\u00e9", '"}', "-1", ".5", "12"]
PIECES = [c.encode() for c in CHARS + MULTI]
EOG = len(PIECES)
VOCAB = _native.GrammarVocab(PIECES + [b""], [EOG])
CLOSERS = [PIECES.index(c.encode()) for c in '"}]']


def walk(grammar, rng: random.Random, max_steps: int = 3000) -> str | None:
    """A random string of the grammar, leaning towards closing what is open."""
    m = _native.GrammarMatcher(grammar, VOCAB)
    out = b""
    for _ in range(max_steps):
        allowed = np.flatnonzero(m.allowed_mask(EOG + 1))
        if len(allowed) == 0:
            raise AssertionError(f"dead end after {out!r}")
        if EOG in allowed and rng.random() < 0.5:
            return out.decode()
        closers = [t for t in CLOSERS if t in allowed]
        pool = [t for t in allowed if t != EOG] or [EOG]
        t = rng.choice(closers) if closers and rng.random() < 0.3 else int(rng.choice(pool))
        if t == EOG:
            return out.decode()
        assert m.accept(t)
        out += PIECES[t]
    return None


def finished_walks(schema, seed: str, n: int) -> list[str]:
    """The walks of the schema's grammar that reached the end (most must)."""
    grammar = compile_grammar(schema_to_grammar(schema))
    rng = random.Random(seed)
    outs = [out for out in (walk(grammar, rng) for _ in range(n)) if out is not None]
    assert len(outs) >= n // 2
    return outs


@pytest.mark.parametrize("name,schema,_prompt", CORPUS, ids=[c[0] for c in CORPUS])
def test_every_walk_validates(name, schema, _prompt):
    for out in finished_walks(schema, name, 25):
        validate(out, schema)


ACCEPTED = [
    ({"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}}},
     ['{}', '{"a": 1}', '{"b": "x"}', '{ "a" : -3,\n  "b":"\\u00e9" }']),
    ({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
      "additionalProperties": True}, ['{"a": 1, "zz": [1, {"q": null}]}', '{"a": 0, "ab": 2}']),
    ({"type": "number", "minimum": -1.5, "maximum": 2}, ["-1.5", "-1", "0", "1.999", "2", "0.25"]),
    ({"type": "integer", "exclusiveMinimum": -3, "maximum": 17}, ["-2", "0", "9", "17"]),
    ({"type": "string", "pattern": "^a+(b|c)?$"}, ['"a"', '"aaab"', '"ac"']),
    ({"type": "string", "pattern": "^[^a-z]$"}, ['"A"', '"\\""', '"\\\\"', '"é"']),
    ({"type": "string", "pattern": "^\\s\\w\\d$"}, ['" a1"', '"\\tZ0"', '"\\n_9"']),
    ({"type": "string", "format": "date"}, ['"2024-02-28"', '"1999-12-31"', '"2023-04-30"']),
    ({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2}, ["[true]", "[true, false]"]),
    ({"prefixItems": [{"const": 1}], "items": {"type": "string"}}, ['[1]', '[1, "a", "b"]']),
    ({"type": ["integer", "null"]}, ["null", "5"]),
    ({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1, "maxProperties": 2},
     ['{"a": 1}', '{"a": 1, "b": 2}']),
]

REJECTED = [
    ({"type": "object", "properties": {"a": {"type": "integer"}}}, ['{"b": 1}', '{"a": 1.5}', '{"a": 1, "a": 2}']),
    ({"type": "number", "minimum": -1.5, "maximum": 2}, ["-1.6", "2.01", "-0", "1e1", "3"]),
    ({"type": "integer", "exclusiveMinimum": -3, "maximum": 17}, ["-3", "18", "017", "-0"]),
    # digits a double cannot tell from the bound
    ({"type": "number", "exclusiveMinimum": 0.5, "exclusiveMaximum": 9}, ["0.50000000000000001", "8.9999999999999999"]),
    ({"type": "string", "pattern": "^a+(b|c)?$"}, ['""', '"abc"', '"b"']),
    ({"type": "string", "format": "date"}, ['"2024-02-30"', '"2023-04-31"', '"2023-13-01"']),
    ({"type": "array", "items": {"type": "boolean"}, "minItems": 1, "maxItems": 2}, ["[]", "[true, true, true]"]),
    ({"type": "object", "properties": {"k": {"type": "string"}}, "additionalProperties": {"type": "integer"}},
     ['{"k": 1}', '{"x": "s"}']),
    ({"type": "object", "additionalProperties": {"type": "integer"}, "minProperties": 1, "maxProperties": 2},
     ['{}', '{"a": 1, "b": 2, "c": 3}']),
]


def accepts(grammar, text: str) -> bool:
    m = _native.GrammarMatcher(grammar, VOCAB)
    return m.accept_text(text) and m.complete()


@pytest.mark.parametrize("schema,docs", ACCEPTED)
def test_valid_documents_are_accepted(schema, docs):
    grammar = compile_grammar(schema_to_grammar(schema))
    for doc in docs:
        jsonschema.validate(json.loads(doc), schema)
        assert accepts(grammar, doc), doc


@pytest.mark.parametrize("schema,docs", REJECTED)
def test_invalid_documents_are_refused(schema, docs):
    grammar = compile_grammar(schema_to_grammar(schema))
    for doc in docs:
        assert not accepts(grammar, doc), doc


PATTERNS = [
    r"^\d{3}-\d{2}$", r"^[A-Za-z_][A-Za-z0-9_]*$", r"^(foo|bar)+baz?$", r"^.{2,5}$", r"^[^\s@]{1,4}@[a-z]{1,3}\.com$",
    r"^a.c$", r"^(?:x|yz){2}$", r"^[\w.-]+$", r"^\$\d+(\.\d\d)?$", r"^[\u00e0-\u00ff]+$", r"ab", r"^ab", r"cd$",
    r"^x|y$", r"^[\]\-\\]+$", r"^(?<word>[a-c]+)!$", r"^\x41\u0042\t$", r"^[^\"]*$", r"^\S+\s\S+$",
    r"^(a|)b$", r"^a{2,}?$",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_pattern_walks_match(pattern):
    for out in finished_walks({"type": "string", "pattern": pattern}, pattern, 40):
        assert re.search(pattern.replace("(?<", "(?P<"), json.loads(out)), (pattern, out)


INVALID = [
    ({"type": "strin"}, "unrecognized type"),
    ({"type": 5}, "type must be"),
    ({"type": []}, "type must be"),
    ({"type": "string", "minLength": -1}, "minLength"),
    ({"type": "string", "minLength": 5, "maxLength": 2}, "minLength is greater"),
    ({"type": "array", "minItems": 3, "maxItems": 1}, "minItems is greater"),
    ({"type": "integer", "minimum": 5, "maximum": 4}, "no integer"),
    ({"type": "integer", "minimum": 1.2, "maximum": 1.8}, "no integer"),
    ({"type": "number", "exclusiveMinimum": 1, "exclusiveMaximum": 1}, "no number"),
    ({"type": "number", "minimum": "0"}, "minimum must be a number"),
    # found by the schema fuzzer: JSON's 491e30810 reads as inf (OverflowError, a 500, before)
    ({"type": "integer", "maximum": float("inf")}, "maximum must be a finite number"),
    ({"type": "number", "minimum": float("-inf")}, "minimum must be a finite number"),
    ({"type": "integer", "exclusiveMinimum": float("nan")}, "exclusiveMinimum must be a finite number"),
    ({"type": "object", "minProperties": 2, "maxProperties": 1}, "minProperties is greater"),
    ({"enum": []}, "enum"),
    ({"type": "string", "enum": [1, 2]}, "no enum value"),
    ({"$ref": "#/$defs/missing"}, "cannot resolve"),
    ({"$ref": "https://example.com/schema.json"}, "only references into the same document"),
    ({"properties": []}, "properties must be an object"),
    ({"required": "a"}, "required must be"),
    ({"type": "object", "required": ["z"], "additionalProperties": False}, "not allowed by additionalProperties"),
    ({"anyOf": []}, "anyOf must be"),
    ({"allOf": [{"type": "string"}, {"type": "integer"}]}, "exclude each other"),
    ({"type": "string", "pattern": "^(?=a)a$"}, "lookaround"),
    ({"type": "string", "pattern": "^(a)\\1$"}, "not supported"),
    ({"type": "string", "pattern": "^\\bword$"}, "not supported"),
    ({"type": "string", "pattern": "^a(b"}, "missing )"),
    ({"type": "string", "pattern": "^[z-a]$"}, "out of order"),
    ({"type": "string", "pattern": "^*$"}, "nothing to repeat"),
    ({"type": "string", "minLength": 5000}, "at most"),
    (False, "matches nothing"),
    ("string", "must be an object"),
]


@pytest.mark.parametrize("schema,message", INVALID)
def test_invalid_schemas_say_why(schema, message):
    with pytest.raises(SchemaError, match=re.escape(message)):
        schema_to_grammar(schema)


def test_deep_and_self_referencing_schemas_fail_cleanly():
    deep: dict = {"type": "string"}
    for _ in range(10_000):
        deep = {"type": "array", "items": deep}
    with pytest.raises(SchemaError, match="nested too deeply"):
        schema_to_grammar(deep)
    with pytest.raises(GrammarError, match="left recursion|left-recursive"):
        compile_grammar(schema_to_grammar({"$ref": "#"}))
    cyclic = {"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"allOf": [{"$ref": "#/$defs/a"}]}}, "$ref": "#/$defs/a"}
    with pytest.raises(SchemaError, match="too deep"):
        schema_to_grammar(cyclic)


def test_recursive_refs_expand_once():
    schema = {"$defs": {"t": {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/t"}}}}},
              "$ref": "#/$defs/t"}
    gbnf = schema_to_grammar(schema)
    assert gbnf.count("::=") < 15
    grammar = compile_grammar(gbnf)
    assert accepts(grammar, '{"kids": [{"kids": [{}, {"kids": []}]}]}')
    assert not accepts(grammar, '{"kids": [{"kid": []}]}')


def test_large_lengths_are_capped_not_refused():
    grammar = compile_grammar(schema_to_grammar({"type": "string", "maxLength": 100000}))
    assert accepts(grammar, json.dumps("x" * 900))


NUMBER_STRINGS = ["0", "1", "-1", "0.5", "0.50", "0.4", "0.6", "-0.25", "-0.3", "-0.2", "2.125", "2.1251", "2.124",
                  "10", "10.0", "10.01", "-10", "-10.1", "99.9", "99.91", "0.05", "0.049", "0.051", "3", "3.0", "-3.5",
                  "-3.49", "-3.51", "100", "100.5", "0.001", "0.0009", "5", "50", "-50", "1000", "-1000", "7.77"]
BOUNDS = ["0", "1", "-1", "0.5", "-0.25", "2.125", "10", "-10", "99.9", "0.05", "-3.5", "100", "0.001"]


def test_bounded_numbers_match_exactly_the_values_in_range():
    """Every (inclusive or exclusive) pair of bounds: the grammar takes a number string iff its value
    is in range (the strings all have a form the grammar writes: no exponent, no -0)."""
    rng = random.Random(3)
    for _ in range(150):
        lo, hi = rng.choice([None] + BOUNDS), rng.choice([None] + BOUNDS)
        if lo is not None and hi is not None and Decimal(lo) > Decimal(hi):
            lo, hi = hi, lo
        schema = {"type": "number"}
        lo_excl, hi_excl = rng.random() < 0.5, rng.random() < 0.5
        if lo is not None:
            schema["exclusiveMinimum" if lo_excl else "minimum"] = float(lo)
        if hi is not None:
            schema["exclusiveMaximum" if hi_excl else "maximum"] = float(hi)
        try:
            grammar = compile_grammar(schema_to_grammar(schema))
        except SchemaError:
            assert lo == hi and (lo_excl or hi_excl)
            continue
        for s in NUMBER_STRINGS:
            v = Decimal(s)
            inside = (lo is None or (v > Decimal(lo) if lo_excl else v >= Decimal(lo))) and \
                (hi is None or (v < Decimal(hi) if hi_excl else v <= Decimal(hi)))
            if accepts(grammar, s):
                assert inside, (schema, s)
            elif inside and s.rstrip("0") == s and not s.endswith("."):  # trailing zeros: a subset is fine
                raise AssertionError(f"{schema} refuses {s}")
        schema["type"] = "integer"
        grammar = compile_grammar(schema_to_grammar(schema)) if _has_integer(lo, hi, lo_excl, hi_excl) else None
        for v in range(-1100, 1100, 13):
            inside = (lo is None or (v > Decimal(lo) if lo_excl else v >= Decimal(lo))) and \
                (hi is None or (v < Decimal(hi) if hi_excl else v <= Decimal(hi)))
            assert (grammar is not None and accepts(grammar, str(v))) == inside, (schema, v)


def _has_integer(lo, hi, lo_excl, hi_excl) -> bool:
    a = None if lo is None else (floor(Decimal(lo)) + 1 if lo_excl else ceil(Decimal(lo)))
    b = None if hi is None else (ceil(Decimal(hi)) - 1 if hi_excl else floor(Decimal(hi)))
    return a is None or b is None or a <= b
