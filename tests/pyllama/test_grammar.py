"""GBNF grammars: the parser (features, errors, malicious input) and the matcher
(token masks that never let a string leave the grammar, split UTF-8 characters,
token references), alone on synthetic vocabularies and with a real model."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

from pyllama import _native
from pyllama.grammar import GrammarError, GrammarState, compile_grammar

# -- parser -----------------------------------------------------------------------------

VALID = [
    'root ::= "a"',
    'root ::= "yes" | "no"  # a comment\n',
    'root ::= [a-z0-9_]+ ("," [^,\\n]*)* "\\n"',
    'root ::= x{2} x{1,3} x{2,} x? x* x+\nx ::= "\\x41\\u00e9\\U0001F600\\t\\"\\\\"',
    'root ::= ( "a" | ( "b" "c" )+ )?\n\n# trailing comment',
    'root ::= . . "é"  [^"\\\\]',
    'root ::= <[12]> !<[13]> "x"',
    'root ::= (\n  "multi"\n  | "line"\n)\n',   # alternatives span lines only inside a group, as in llama.cpp
]


@pytest.mark.parametrize("text", VALID)
def test_valid_grammars_parse(text):
    assert compile_grammar(text).n_rules >= 1


INVALID = [
    ('root ::= "a', "unterminated string"),
    ("root ::= [abc", "unterminated character class"),
    ("root ::= []", "empty character class"),
    ("root ::= [z-a]", "out of order"),
    ('root ::= "\\q"', "unknown escape"),
    ('root ::= "\\x4"', "hex digits"),
    ("root ::= ( \"a\"", "expecting ')'"),
    ("root ::= foo", "undefined rule 'foo'"),
    ('foo ::= "a"', "does not define the rule 'root'"),
    ('root ::= "a"\nroot ::= "b"', "defined twice"),
    ('root ::= root "a"', "left recursion"),
    ('root ::= a\na ::= b "x"\nb ::= "" | a', "left recursion"),
    ('root ::= "a"{5000}', "too large"),
    ('root ::= "a"{3,1}', "n < m"),
    ('root ::= "a"{2000}{2000}', "too large"),
    ("root ::= *", "expecting something before"),
    ('root "a"', "expecting ::="),
    ('root ::= "a"\n  | "b"', "expecting a rule name"),
    ("root ::= <token>", "need a vocabulary"),
    ('root ::= "a" ]', "expecting a newline"),
]


@pytest.mark.parametrize("text,message", INVALID)
def test_invalid_grammars_say_what_is_wrong(text, message):
    with pytest.raises(GrammarError, match=re.escape(message)):
        compile_grammar(text)


def test_errors_say_where():
    with pytest.raises(GrammarError, match="line 2, column 11"):
        compile_grammar('root ::= x\nx ::= "a" ]')


@pytest.mark.parametrize("text", [
    "root ::= " + "(" * 200_000 + '"a"' + ")" * 200_000,          # would overflow a recursive parser
    "root ::= " + " | ".join(f'"{i}"' for i in range(100_000)),   # large but legal: parses
    'root ::= ("a"{1,40}){1,40}{1,40}',                            # rule explosion
    "root ::= " + "x" * 5_000_000,                                 # too big a source
    "x" * 100_000,
    "\x00\xff" * 1000,
])
def test_malicious_grammars_fail_cleanly(text):
    try:
        compile_grammar(text)
    except GrammarError as e:
        assert str(e)


# -- matcher on a synthetic vocabulary ------------------------------------------------

PIECES = [b"", b"a", b"b", b"c", b"ab", b"abc", b"0", b"1", b"12", b"123", b"-", b".", b",", b" ", b"\n",
          b"\xc3", b"\xa9", b"\xc3\xa9", b"yes", b"no", b"\"", b"{", b"}", b":", b"x", b"\xa9x"]
EOG = 0


def state(text: str):
    vocab = _native.GrammarVocab(PIECES, [EOG])
    return _native.GrammarMatcher(compile_grammar(text), vocab)


def random_walk(text: str, rng: random.Random, max_steps: int = 40) -> bytes | None:
    m = state(text)
    out = b""
    for _ in range(max_steps):
        allowed = [t for t, ok in enumerate(m.allowed_mask(len(PIECES))) if ok]
        for t in range(len(PIECES)):  # the mask and allows() agree
            assert m.allows(t) == (t in allowed)
        if not allowed:
            return None
        t = rng.choice(allowed)
        if t == EOG:
            assert m.complete()
            return out
        assert m.accept(t)
        out += PIECES[t]
    return None


GRAMMARS = [
    ('root ::= "yes" | "no"', r"yes|no"),
    ('root ::= [0-9]+ ("." [0-9]{1,2})?', r"[0-9]+(\.[0-9]{1,2})?"),
    ('root ::= ("a" | "b")+ "c"', r"[ab]+c"),
    ('root ::= "-"? [1-9] [0-9]{0,3}', r"-?[1-9][0-9]{0,3}"),
    ('root ::= [^,\\n]+ ("," [^,\\n]+)*', r"[^,\n]+(,[^,\n]+)*"),
    ('root ::= "é"+ "x"', r"é+x"),
    ('root ::= "{" ("\\"" [a-c]+ "\\"" ":" [0-9]+)? "}"', r'\{("[a-c]+":[0-9]+)?\}'),
]


@pytest.mark.parametrize("text,regex", GRAMMARS)
def test_every_walk_stays_in_the_grammar(text, regex):
    rng = random.Random(5)
    done = 0
    for _ in range(60):
        out = random_walk(text, rng)
        if out is None:
            continue
        assert re.fullmatch(regex, out.decode("utf-8")), out
        done += 1
    assert done >= 20


def test_split_characters_must_complete():
    m = state('root ::= "é" "x"')
    assert m.allows(15) and not m.allows(16) and m.allows(17)  # b"\xc3" starts é; b"\xa9" alone cannot
    assert m.accept(15)
    assert m.allows(16) and m.allows(25) and not m.allows(1)   # now a continuation byte is needed
    assert m.accept(25) and m.complete()                        # b"\xa9x" finishes é and adds x


def test_token_references():
    m = state("root ::= <[18]> <[19]>")
    assert m.allows(18) and not m.allows(19) and not m.allows(1)
    assert m.accept(18) and m.allows(19) and m.accept(19) and m.complete()
    m = state('root ::= !<[1]> "b"')
    assert not m.allows(1) and m.allows(2) and m.allows(24)


def test_a_token_reference_never_takes_the_rest_of_a_token():
    """Found by the grammar fuzzer: the mask let token 4 (b"ab") give "a" to the . and then,
    with its "b" left over, count as the reference <[4]> itself."""
    m = state('root ::= . <[4]> "x"')
    mask = m.allowed_mask(len(PIECES))
    for t in range(len(PIECES)):
        assert bool(mask[t]) == m.allows(t), PIECES[t]
    assert not m.allows(4) and m.allows(1)


def test_text_ending_inside_a_character_keeps_only_stacks_that_can_finish_it():
    """Found by the grammar fuzzer: accept_text left a pending partial character on a stack
    whose top is a token reference; allows() then took the token, the mask did not."""
    m = state('root ::= . <[24]>')
    assert m.accept_text(b"a")
    assert not m.accept_text(b"\xc3")          # no character can follow the . here
    assert m.allows(24) and m.accept_text(b"")  # state unchanged; empty text is a no-op
    m = state('root ::= "a" "\u00e9"')
    assert m.accept_text(b"a\xc3") and m.allows(16) and not m.allows(24)
    m = state('root ::= . . <[24]>')
    assert m.accept_text(b"a\xc3")             # the second . can take the é
    mask = m.allowed_mask(len(PIECES))
    assert [bool(x) for x in mask] == [m.allows(t) for t in range(len(PIECES))]
    assert not m.allows(24) and m.allows(16)


def test_a_token_reference_takes_its_token_whatever_its_text():
    """Found by the grammar fuzzer: <[16]> (a lone continuation byte) passed allows() but not the mask."""
    m = state('root ::= . <[16]> "x"')
    assert m.accept(1)
    mask = m.allowed_mask(len(PIECES))
    assert [bool(x) for x in mask] == [m.allows(t) for t in range(len(PIECES))]
    assert m.allows(16) and m.accept(16) and m.allows(24)


def test_refused_tokens_leave_the_state_alone():
    m = state('root ::= "ab" "c"')
    assert not m.accept(3)
    assert m.accept(4) and m.accept(3) and m.complete()


# -- with a real model ----------------------------------------------------------------

JSON_GRAMMAR = r'''
root   ::= "{" ws "\"name\":" ws string "," ws "\"age\":" ws number ws "}"
string ::= "\"" [A-Za-z ]{1,20} "\""
number ::= [1-9] [0-9]{0,2}
ws     ::= [ ]?
'''


def test_constrained_generation_with_smollm2(smollm2_path):
    from pyllama import Llama
    llm = Llama(smollm2_path, n_ctx=1024, n_threads=2)
    for seed in range(4):
        ids = list(llm.generate("A person, as JSON: ", max_tokens=60, temperature=1.0, seed=seed,
                                grammar=JSON_GRAMMAR))
        obj = json.loads(llm.detokenize(ids))
        assert set(obj) == {"name", "age"} and isinstance(obj["age"], int)
    ids = list(llm.generate("Is the sky blue? Answer: ", max_tokens=10, temperature=0, grammar='root ::= "yes" | "no"'))
    assert llm.detokenize(ids) in ("yes", "no")


def test_mask_cost_on_gemma_vocabulary(gemma3_path):
    """Not a timing assertion: the full mask over 262k tokens works and keeps the right ones."""
    from pyllama.gguf_file import GGUFFile
    from pyllama.tokenizer import Tokenizer
    tok = Tokenizer.from_gguf(GGUFFile(gemma3_path))
    st = GrammarState(compile_grammar('root ::= [0-9]+ "."'), tok)
    mask = st.matcher.allowed_mask(tok.n_vocab)
    allowed = np.flatnonzero(mask)
    assert len(allowed) > 10
    for t in allowed[:200]:
        text = tok.piece(int(t), True).decode("utf-8", "replace")
        assert re.fullmatch(r"[0-9]+\.?", text), text


def test_cached_masks_belong_to_their_grammar():
    vocab = _native.GrammarVocab([b"a", b"b", b"ab", b""], [3])
    for _ in range(3):  # fresh grammars at the same state, over and over: never another's mask
        for text, allowed in (('root ::= "a" "b"', [True, False, True, False]),
                              ('root ::= "b"', [False, True, False, False])):
            m = _native.GrammarMatcher(compile_grammar(text), vocab)
            assert list(m.allowed_mask(4)) == allowed
    m = _native.GrammarMatcher(compile_grammar('root ::= "a" "b"'), vocab)
    assert m.accept(0) and list(m.allowed_mask(4)) == [False, True, False, False]
