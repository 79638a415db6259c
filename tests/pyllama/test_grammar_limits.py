"""What a hostile grammar costs: sizes are bounded before repetitions are expanded,
a grammar too ambiguous to start is refused when it is parsed, and a grammar whose
masks take exponential work stops at the matcher's step budget with an error of its
own (GrammarTooComplexError, a GrammarError) that ends one generation."""

from __future__ import annotations

import pytest

from pyllama import _native
from pyllama.grammar import GrammarError, GrammarTooComplexError, compile_grammar

EXPONENTIAL = 'root ::= e e e e e e e e e e e e "x"\ne ::= "=" | "=" | "=" | "=" | "=" | "=" | "=" | "="'


def ambiguous(depth: int) -> str:
    """2**depth starting stacks: each level's two alternatives differ by what follows."""
    lines = ["root ::= a0"] + [f'a{i} ::= a{i + 1} "y" | a{i + 1} "y"' for i in range(depth)]
    return "\n".join(lines + [f'a{depth} ::= "x"'])


def test_error_types():
    assert issubclass(GrammarTooComplexError, GrammarError) and issubclass(GrammarError, ValueError)


def test_a_huge_repetition_is_refused_before_it_is_expanded():
    with pytest.raises(GrammarError, match=r"too large once expanded \(more than \d+ elements\)"):
        compile_grammar('root ::= "%s"{2000}' % ("a" * (1 << 20)))
    with pytest.raises(GrammarError, match="too large once expanded"):
        compile_grammar('root ::= "%s"{1000,2000}' % ("a" * 10_000))


def test_nested_repetitions_are_sized_too():
    with pytest.raises(GrammarError, match="too large once expanded"):
        compile_grammar('root ::= ("%s"{100}){100}' % ("a" * 100_000))
    with pytest.raises(GrammarError, match="too large once expanded"):  # unfinished outer rule counted
        compile_grammar('root ::= "%s"{1000} ("%s"{1000})' % ("a" * 3000, "b" * 3000))
    assert compile_grammar('root ::= ("%s"{100}){100}' % ("a" * 1000)).n_rules > 1


def test_many_small_repetitions_in_one_rule_are_fine():
    # the element count grows linearly with the rule, not with its square (5000**2 > the limit)
    assert compile_grammar("root ::= " + " ".join('"a"?' for _ in range(5000))).n_rules > 1


def test_too_ambiguous_to_start_is_refused_at_parse_time():
    with pytest.raises(GrammarTooComplexError, match="too ambiguous"):
        compile_grammar(ambiguous(15))
    compile_grammar(ambiguous(10))  # 1024 stacks: fine


def test_duplicate_alternatives_stay_cheap():
    g = compile_grammar("root ::= " + " ".join(["a"] * 15) + '\na ::= "x" | "x"')
    m = _native.GrammarMatcher(g, _native.GrammarVocab([b"x", b"xx", b""], [2]))
    for _ in range(15):
        assert m.accept(0)
    assert m.complete()


def test_exponential_mask_stops_at_the_budget():
    vocab = _native.GrammarVocab([b"=", b"=" * 64, b"", b"x"], [2])
    m = _native.GrammarMatcher(compile_grammar(EXPONENTIAL), vocab)
    with pytest.raises(GrammarTooComplexError, match=r"more than \d+ steps for one token"):
        m.allowed_mask(4)
    assert m.last_steps >= m.max_steps
    # the same matcher with a bigger budget is not the point; a fresh small one fails the same way, fast
    m = _native.GrammarMatcher(compile_grammar(EXPONENTIAL), vocab, max_steps=100_000)
    with pytest.raises(GrammarTooComplexError):
        m.allowed_mask(4)


def test_budget_applies_to_every_call():
    vocab = _native.GrammarVocab([b"a", b"b", b""], [2])
    g = compile_grammar('root ::= ("a" | "b")+')
    with pytest.raises(GrammarTooComplexError):
        _native.GrammarMatcher(g, vocab, max_steps=1)
    m = _native.GrammarMatcher(g, vocab, max_steps=1000)
    before = m.total_steps
    assert m.accept(0) and 0 < m.last_steps < 1000
    assert m.total_steps == before + m.last_steps
    assert m.accept_text(b"ab")
    tight = _native.GrammarMatcher(g, vocab, max_steps=m.last_steps)  # enough to start, not to go on
    with pytest.raises(GrammarTooComplexError):
        for _ in range(100):
            tight.accept_text(b"ab" * 50)


def test_exponential_grammar_in_the_sampler_chain():
    """The mask inside SamplerChain.sample raises through the chain (GIL released) as the same type."""
    import numpy as np
    vocab = _native.GrammarVocab([b"=", b"=" * 64, b"", b"x"], [2])
    m = _native.GrammarMatcher(compile_grammar(EXPONENTIAL), vocab, max_steps=200_000)
    cfg = _native.SamplingConfig()
    cfg.n_vocab = 4
    cfg.temperature = 0.0
    chain = _native.SamplerChain(cfg)
    logits = np.array([0.0, 5.0, 0.0, 0.0], dtype=np.float32)  # the 64-= token first: refused, so the mask runs
    with pytest.raises(GrammarTooComplexError):
        chain.sample(logits, m.filter())
