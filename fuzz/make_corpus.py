"""Writes the seed corpora under fuzz/corpus/<target>/ (committed; re-run to refresh):
small GGUF files, texts from the tokenizer vectors, GBNF grammars with matcher
operations, JSON schemas. A few KB per target: the fuzzer finds the rest."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
DATA = ROOT.parent / "tests" / "data"


def put(target: str, blob: bytes) -> None:
    d = ROOT / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(blob).hexdigest()[:16]).write_bytes(blob)


def gguf_seeds() -> None:
    import tempfile

    import gguf
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(3):
            path = Path(tmp) / f"s{k}.gguf"
            w = gguf.GGUFWriter(str(path), "llama")
            w.add_uint32("a.u32", 7)
            w.add_float32("a.f32", 0.5)
            w.add_bool("a.bool", True)
            w.add_string("a.str", "héllo")
            w.add_int64("a.i64", -3)
            w.add_array("a.arr", [1, 2, 3])
            w.add_array("tokenizer.ggml.tokens", ["<s>", "a", "b", "ab"][: k + 2])
            if k == 1:
                w.add_uint32("general.alignment", 64)
            if k > 0:
                w.add_tensor("t0", np.arange(32, dtype=np.float32).reshape(2, 16))
                w.add_tensor("t1", np.zeros(8, dtype=np.float16))
            w.write_header_to_file()
            w.write_kv_data_to_file()
            w.write_tensors_to_file()
            w.close()
            blob = path.read_bytes()
            put("gguf", blob)
            put("gguf", blob[: len(blob) // 2])  # truncated


def texts(vocab: str, n: int = 12) -> list[str]:
    raw = (DATA / "tokenizer-vectors" / f"{vocab}.gguf.inp").read_text("utf-8")
    items = [t.strip("\n") for t in raw.split("__ggml_vocab_test__")]
    items = [t for t in items if 0 < len(t.encode()) < 400]
    return items[:n]


def tokenizer_seeds() -> None:
    for sel, vocab in enumerate(["ggml-vocab-gpt-2", "ggml-vocab-llama-bpe", "ggml-vocab-qwen2"]):
        for i, t in enumerate(texts(vocab)):
            put("tokenizer_bpe", bytes([(sel + 5 * (i % 8)) % 256]) + t.encode())
    put("tokenizer_bpe", bytes([1 + 20]) + "<|begin_of_text|>Hi<|eot_id|> x".encode())
    for sel, vocab in enumerate(["ggml-vocab-llama-spm", "ggml-vocab-phi-3"]):
        for t in texts(vocab):
            put("tokenizer_spm", bytes([sel]) + t.replace(" ", "\u2581").encode())
    put("tokenizer_spm", b"\x00\xff\xfe\xc3(\xe2\x82")


GRAMMARS = [
    'root ::= "yes" | "no"',
    'root ::= [0-9]+ ("." [0-9]{1,2})?',
    'root ::= ("a" | "b")+ "c"',
    'root ::= "-"? [1-9] [0-9]{0,3}',
    'root ::= [^,\\n]+ ("," [^,\\n]+)*',
    'root ::= "\u00e9"+ "x"',
    'root ::= x{2} x{1,3} x{2,} x? x* x+\nx ::= "\\x41\\u00e9\\U0001F600\\t\\"\\\\"',
    'root ::= <[33]> !<[1]> "x" <tok>',
    'root ::= . . "\u00e9"  [^"\\\\]',
    'root ::= (\n  "multi"\n  | "line"\n)\n',
    'root ::= e e e "x"\ne ::= "=" | "=" | "="',
    r'''root   ::= "{" ws ( string ":" ws value ("," ws string ":" ws value)* )? "}"
value  ::= root | string | [0-9]+ | "true" | "null"
string ::= "\"" ( [^"\\] | "\\" ["\\nt] )* "\""
ws ::= [ \n]?''',
]


def grammar_seeds() -> None:
    ops = bytes([0 + 4 * 1, 2, 1 + 4 * 3, 3 + 4 * 3]) + b"abc" + bytes([2, 0 + 4 * 17, 2, 0 + 4 * 18, 0])
    for g in GRAMMARS:
        put("grammar", g.encode() + b"\0" + ops)


def schema_seeds() -> None:
    sys.path.insert(0, str(ROOT.parent / "tests"))
    from helpers.schema_corpus import CORPUS
    for _name, schema, _prompt in CORPUS[::2]:
        put("schema", json.dumps(schema).encode())


if __name__ == "__main__":
    gguf_seeds()
    tokenizer_seeds()
    grammar_seeds()
    schema_seeds()
    for d in sorted((ROOT / "corpus").iterdir()):
        files = list(d.iterdir())
        print(d.name, len(files), "files", sum(f.stat().st_size for f in files), "bytes")
