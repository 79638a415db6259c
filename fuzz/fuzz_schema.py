"""JSON Schema -> GBNF under atheris (the converter is Python): each input is JSON
text; schema_to_grammar then compile_grammar must either succeed or raise a
documented error -- SchemaError (a 400 on the server), RecursionError (the server
maps it to a 400 too), or a GrammarError saying the grammar is too large or too
ambiguous. Anything else, or a GrammarError of any other kind (the converter wrote
GBNF that does not parse), is a crash.

    python fuzz/fuzz_schema.py -dict=fuzz/schema.dict -max_total_time=600 fuzz/corpus/schema
"""

from __future__ import annotations

import json
import sys

import atheris

from pyllama.grammar import GrammarError, compile_grammar  # noqa: E402
from pyllama.schema import SchemaError, schema_to_grammar  # noqa: E402
from pyllama.schema import convert, pattern, primitives, ranges  # noqa: E402

# The editable install imports through a custom loader, which instrument_imports()
# does not see into: instrument the converter's functions in place instead.
for _module in (convert, pattern, primitives, ranges):
    atheris.instrument_func  # noqa: B018 (present in every atheris version used here)
    for _name, _obj in list(vars(_module).items()):
        if getattr(_obj, "__module__", None) == _module.__name__:
            if isinstance(_obj, type):
                for _k, _v in list(vars(_obj).items()):
                    if callable(_v) and hasattr(_v, "__code__"):
                        setattr(_obj, _k, atheris.instrument_func(_v))
            elif callable(_obj) and hasattr(_obj, "__code__"):
                setattr(_module, _name, atheris.instrument_func(_obj))

LIMIT_WORDS = ("too large", "too ambiguous", "too complex", "repetition", "too many rules", "nested too deeply")


def test_one(data: bytes) -> None:
    try:
        schema = json.loads(data.decode("utf-8", "surrogatepass"))
    except (ValueError, RecursionError):
        return  # not JSON: the HTTP layer refuses it before the converter
    try:
        text = schema_to_grammar(schema)
    except (SchemaError, RecursionError):
        return
    try:
        compile_grammar(text)
    except GrammarError as e:
        if not any(w in str(e) for w in LIMIT_WORDS):
            raise AssertionError(f"the converter wrote GBNF that does not parse: {e}\n{text[:2000]}") from e


def main() -> None:
    sys.setrecursionlimit(1000)  # the server's default; a deep schema must stop cleanly
    atheris.Setup(sys.argv, test_one)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
