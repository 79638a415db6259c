"""The grammar matcher's work budget (issue 15): how many steps ordinary grammars
take per call, and how long a hostile one runs before the budget stops it.

Walks every schema of the test corpus (tests/helpers/schema_corpus.py) and a few
hand-written grammars over gemma-3's 262,144-token vocabulary, taking full masks
(the expensive call) at every step and preferring long tokens, and reports the
most steps any call took and its time. Then times the exponential grammar of the
issue against the default budget. The budget must sit well above the first
figure and trip well under a second.

    python benchmarks/bench_grammar_budget.py [--walks N] [--steps N]
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np

from pyllama import _native
from pyllama.gguf_file import GGUFFile
from pyllama.grammar import GrammarState, compile_grammar
from pyllama.model_registry import resolve_model
from pyllama.schema import schema_to_grammar
from pyllama.tokenizer import Tokenizer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.schema_corpus import CORPUS  # noqa: E402

HOSTILE = 'root ::= e e e e e e e e e e e e "x"\ne ::= "=" | "=" | "=" | "=" | "=" | "=" | "=" | "="'
EXTRA = {
    "gbnf-json": r'''
root   ::= object
value  ::= object | array | string | number | ("true" | "false" | "null") ws
object ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}" ws
array  ::= "[" ws ( value ("," ws value)* )? "]" ws
string ::= "\"" ( [^"\\\x7F\x00-\x1F] | "\\" (["\\bfnrt] | "u" [0-9a-fA-F]{4}) )* "\"" ws
number ::= ("-"? ([0-9] | [1-9] [0-9]{0,15})) ("." [0-9]+)? ([eE] [-+]? [0-9] [1-9]{0,15})? ws
ws ::= | " " | "\n" [ \t]{0,20}
''',
}


def walk(state: GrammarState, n_vocab: int, rng: random.Random, steps: int, stats: dict) -> None:
    m = state.matcher
    for _ in range(steps):
        t = time.perf_counter()
        mask = m.allowed_mask(n_vocab)
        dt = time.perf_counter() - t
        if m.last_steps > stats["steps"]:
            stats.update(steps=m.last_steps, ms=dt * 1e3)
        allowed = np.flatnonzero(mask)
        allowed = [int(a) for a in allowed if not state.vocab.is_eog(int(a))]
        if not allowed:
            return
        if rng.random() < 0.5:  # long tokens reach deeper into the grammar
            allowed.sort(key=lambda a: -len(state.vocab.piece(a)))
            tok = allowed[rng.randrange(min(len(allowed), 20))]
        else:
            tok = rng.choice(allowed)
        m.accept(tok)
        if m.last_steps > stats["steps"]:
            stats.update(steps=m.last_steps, ms=0.0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--walks", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    args = ap.parse_args()
    tok = Tokenizer.from_gguf(GGUFFile(resolve_model("gemma3-270m", progress=False)))
    grammars = {name: schema_to_grammar(schema) for name, schema, _ in CORPUS}
    grammars.update(EXTRA)
    worst = {"steps": 0, "ms": 0.0, "name": ""}
    for name, text in grammars.items():
        stats = {"steps": 0, "ms": 0.0}
        g = compile_grammar(text, tok)
        for w in range(args.walks):
            walk(GrammarState(g, tok), tok.n_vocab, random.Random(w), args.steps, stats)
        print(f"{name:24s} most steps {stats['steps']:>10,d}  ({stats['ms']:.0f} ms)")
        if stats["steps"] > worst["steps"]:
            worst = {**stats, "name": name}
    print(f"worst ordinary call: {worst['steps']:,d} steps ({worst['name']}, {worst['ms']:.0f} ms)")

    vocab = _native.GrammarVocab([b"=", b"=" * 64, b"", b"x"], [2])
    m = _native.GrammarMatcher(compile_grammar(HOSTILE), vocab)
    t = time.perf_counter()
    try:
        m.allowed_mask(4)
        print("hostile grammar: no error?")
    except _native.GrammarTooComplexError as e:
        print(f"hostile grammar: budget of {m.max_steps:,d} steps tripped after "
              f"{(time.perf_counter() - t) * 1e3:.0f} ms: {e}")


if __name__ == "__main__":
    main()
