"""Tokenizers against llama.cpp's own outputs: the ggml-vocab test vectors and the
tokenize / completion records of the reference models."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from pyllama.gguf_file import GGUFFile
from pyllama.tokenizer import Tokenizer
from pyllama.tokenizer_pretok import split_words

DATA = Path(__file__).resolve().parents[1] / "data"
VOCABS = sorted((DATA / "tokenizer-vectors").glob("*.gguf"))
_cache: dict[Path, Tokenizer] = {}


def tokenizer(path: Path) -> Tokenizer:
    if path not in _cache:
        _cache[path] = Tokenizer.from_gguf(GGUFFile(path))
    return _cache[path]


def vector_cases(path: Path) -> list[tuple[str, list[int]]]:
    texts = path.with_name(path.name + ".inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")
    lines = path.with_name(path.name + ".out").read_text().split("\n")
    return [(t, [int(x) for x in lines[i].split()]) for i, t in enumerate(texts) if i < len(lines)]


def test_all_vocab_files_are_present():
    assert len(VOCABS) == 10, [p.name for p in VOCABS]


@pytest.mark.parametrize("path", VOCABS, ids=lambda p: p.name[len("ggml-vocab-"):-len(".gguf")])
def test_vocab_vectors(path):
    tok = tokenizer(path)
    cases = vector_cases(path)
    assert len(cases) >= 40
    failures = [(t, want, got) for t, want in cases if (got := tok.tokenize(t, add_special=False)) != want]
    assert not failures, failures[:3]


def reference_records(name: str, kind: str) -> list[dict]:
    rows = [json.loads(line) for line in (DATA / "reference" / name).read_text().splitlines()]
    return [r for r in rows if r["kind"] == kind]


REF = {"smollm2-135m": "smollm2-135m-instruct-q4_1.jsonl", "gemma3-270m": "gemma-3-270m-q4_k_m.jsonl"}


@pytest.mark.parametrize("model", list(REF))
def test_reference_tokenize_records(model, request):
    path = request.getfixturevalue({"smollm2-135m": "smollm2_path", "gemma3-270m": "gemma3_path"}[model])
    tok = tokenizer(Path(path))
    records = reference_records(REF[model], "tokenize")
    assert {r["add_special"] for r in records} == {True, False}
    for r in records:
        assert tok.tokenize(r["content"], r["add_special"], r["parse_special"]) == r["tokens"], r["content"]
    for r in reference_records(REF[model], "completion"):
        assert len(tok.tokenize(r["prompt"], True, True)) == r["n_prompt_tokens"], r["prompt"][:40]


def test_bert_reference_tokens():
    tok = tokenizer(DATA / "vocab" / "all-minilm-l6-v2.vocab.gguf")
    records = reference_records("all-minilm-l6-v2-f16.jsonl", "embedding")
    assert records
    for r in records:
        assert tok.tokenize(r["input"], add_special=True, parse_special=True) == r["tokens"], r["input"]


ALPHABET = list("aAzZ09 '\t\n\r.,!?-_()[]") + ["'s", "'T", "'re", "'LL", "  ", "\u00a0", "é", "ß", "Ж", "中",
                                                 "😀", "٣", "\u2003", "\u0301", "\x0b", "\x1c", "½", "Ⅻ"]


@pytest.mark.parametrize("name", ["gpt-2", "starcoder", "llama-bpe", "qwen2"])
def test_native_pretokenizer_equals_the_pattern(name):
    """The hand-written native splitters agree with the regular expressions they replace."""
    enc = tokenizer(DATA / "tokenizer-vectors" / f"ggml-vocab-{name}.gguf").encoder
    assert enc.kind is not None
    rng = random.Random(name)
    for _ in range(2000):
        s = "".join(rng.choice(ALPHABET) for _ in range(rng.randint(0, 30)))
        assert enc.native.encode(s, enc.kind) == enc.native.encode_words(split_words(s, enc.patterns)), repr(s)
