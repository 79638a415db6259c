"""Cost of constrained decoding on gemma-3 (262,144-token vocabulary): tokens/s
generating a JSON object with and without its grammar, and the time of one full
token mask. Target (issue 7): constrained generation slows decoding by < 2x.

    python benchmarks/bench_grammar.py
"""

from __future__ import annotations

import statistics
import time

from pyllama import Llama
from pyllama.grammar import GrammarState, compile_grammar
from pyllama.model_registry import resolve_model

JSON_OBJECT = r'''
root   ::= "{" ws pair ("," ws pair)* ws "}"
pair   ::= string ws ":" ws value
value  ::= string | number | "true" | "false" | "null"
string ::= "\"" [a-zA-Z0-9 _-]{0,24} "\""
number ::= "-"? [0-9]{1,6} ("." [0-9]{1,3})?
ws     ::= [ \n]{0,2}
'''


def rate(llm: Llama, grammar: str | None, n: int = 64) -> float:
    rates = []
    for seed in range(3):
        list(llm.generate("Describe a city as a JSON object: ", max_tokens=n, temperature=0.8, seed=seed,
                          grammar=grammar, stop_at_eog=grammar is not None))
        t = llm.timings  # generation only, the prompt excluded
        rates.append(t.n_generated / t.generate_s)
    return statistics.median(rates)


def main() -> None:
    llm = Llama(resolve_model("gemma3-270m"), n_ctx=1024, n_threads=2)
    state = GrammarState(compile_grammar(JSON_OBJECT, llm.tokenizer), llm.tokenizer)
    t0 = time.perf_counter()
    for _ in range(5):
        state.matcher.allowed_mask(llm.n_vocab)
    mask_ms = (time.perf_counter() - t0) / 5 * 1000
    free = rate(llm, None)
    constrained = rate(llm, JSON_OBJECT)
    print(f"full mask over {llm.n_vocab} tokens at the start of a JSON object: {mask_ms:.1f} ms")
    print(f"unconstrained: {free:.1f} tokens/s   JSON grammar: {constrained:.1f} tokens/s   "
          f"slowdown {free / constrained:.2f}x")


if __name__ == "__main__":
    main()
