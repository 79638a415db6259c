"""Cost of constrained decoding on gemma-3 (262,144-token vocabulary).

Generates JSON objects with a grammar (a hand-written GBNF one, any JSON object,
a JSON Schema's) and times, per token, the forward pass, the constrained sampling
(draw, check, the full mask when the draw is refused, the grammar's advance) and
plain sampling on the same logits. The slowdown is (decode + constrained) /
(decode + plain) over the same tokens, so the noisy decode time cancels out as far
as it can. Also: one cold full mask, and converting a schema. Target (issue 7):
constrained generation slows decoding by < 2x.

    python benchmarks/bench_grammar.py
"""

from __future__ import annotations

import time

from pyllama import Llama
from pyllama.grammar import GrammarState, compile_grammar
from pyllama.model_registry import resolve_model
from pyllama.sampling import Sampler, SamplingParams
from pyllama.schema import schema_to_grammar

JSON_OBJECT = r'''
root   ::= "{" ws pair ("," ws pair)* ws "}"
pair   ::= string ws ":" ws value
value  ::= string | number | "true" | "false" | "null"
string ::= "\"" [a-zA-Z0-9 _-]{0,24} "\""
number ::= "-"? [0-9]{1,6} ("." [0-9]{1,3})?
ws     ::= [ \n]{0,2}
'''
CITY = {"type": "object", "properties": {
    "name": {"type": "string", "maxLength": 30}, "country": {"type": "string", "maxLength": 30},
    "population": {"type": "integer", "minimum": 0}, "area_km2": {"type": "number", "exclusiveMinimum": 0},
    "founded": {"type": "string", "format": "date"},
    "tags": {"type": "array", "items": {"enum": ["coast", "capital", "old", "new"]}}},
    "required": ["name", "country", "population"]}
PROMPT = ('City records as JSON objects, one per line:\n'
          '{"name": "Rome", "country": "Italy", "population": 2873000, "tags": ["capital", "old"]}\n')


def run(llm: Llama, gbnf: str, seed: int, n: int = 64) -> tuple[float, float, float, int]:
    """(decode s, constrained sampling s, plain sampling s, tokens) for one constrained generation."""
    params = SamplingParams(temperature=0.8, seed=seed)
    constrained = Sampler(params, llm.n_vocab, n_ctx=llm.n_ctx, tokenizer=llm.tokenizer)
    plain = Sampler(params, llm.n_vocab, n_ctx=llm.n_ctx, tokenizer=llm.tokenizer)
    state = GrammarState(compile_grammar(gbnf, llm.tokenizer), llm.tokenizer)
    ids = llm.tokenize(PROMPT)
    llm.kv.seq_rm(0, -1, -1)
    logits = llm.eval(ids)
    pos = len(ids)
    t_dec = t_con = t_plain = 0.0
    for i in range(n):
        t0 = time.perf_counter()
        plain.sample(logits, None)
        t1 = time.perf_counter()
        tok = constrained.sample(logits, state.filter)
        constrained.accept(tok)
        state.accept(tok)
        t2 = time.perf_counter()
        t_plain += t1 - t0
        t_con += t2 - t1
        if llm.tokenizer.is_eog(tok):
            return t_dec, t_con, t_plain, i + 1
        t3 = time.perf_counter()
        logits = llm.eval([tok], pos0=pos)
        t_dec += time.perf_counter() - t3
        pos += 1
    return t_dec, t_con, t_plain, n


def main() -> None:
    llm = Llama(resolve_model("gemma3-270m"), n_ctx=1024, n_threads=2)
    t0 = time.perf_counter()
    for _ in range(20):
        schema_to_grammar(CITY)
    print(f"schema -> GBNF conversion: {(time.perf_counter() - t0) / 20 * 1000:.2f} ms")
    cold = GrammarState(compile_grammar(schema_to_grammar({"type": "object"}), llm.tokenizer), llm.tokenizer)
    cold.matcher.accept_text(b'{"na')
    t0 = time.perf_counter()
    cold.matcher.allowed_mask(llm.n_vocab)
    print(f"one uncached full mask over {llm.n_vocab} tokens inside a JSON string: "
          f"{(time.perf_counter() - t0) * 1000:.1f} ms")
    for name, gbnf in (("GBNF JSON grammar", JSON_OBJECT), ("any JSON object", schema_to_grammar({"type": "object"})),
                       ("city JSON Schema", schema_to_grammar(CITY))):
        dec = con = plain = 0.0
        n = 0
        for seed in range(3):
            d, c, p, k = run(llm, gbnf, seed)
            dec, con, plain, n = dec + d, con + c, plain + p, n + k
        print(f"{name}: {n} tokens; per token: decode {dec / n * 1000:.1f} ms, constrained sampling "
              f"{con / n * 1000:.2f} ms, plain sampling {plain / n * 1000:.2f} ms; "
              f"slowdown {(dec + con) / (dec + plain):.2f}x")


if __name__ == "__main__":
    main()
