"""Tokenizers shared between OS threads: the request threads and the engine thread
tokenize with one Tokenizer at once, with the GIL released in native code. Several
threads racing on a fresh tokenizer (cold caches: lookups, inserts and the BPE
cache's clear-when-full all interleave) must give exactly the single-threaded
tokens, text by text."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest

from pyllama.gguf_file import GGUFFile
from pyllama.tokenizer import Tokenizer

DATA = Path(__file__).resolve().parents[1] / "data"
# (vocabulary, texts of 4000 random words): for llama-bpe, enough distinct words that the
# BPE word cache fills (200,000 words) and is cleared in the middle of the race
VOCABS = [("llama-bpe", 56), ("gpt-2", 5), ("qwen2", 5), ("starcoder", 5), ("llama-spm", 5), ("bert-bge", 2)]
N_THREADS = 4


def texts(name: str, n_random: int) -> list[str]:
    raw = (DATA / "tokenizer-vectors" / f"ggml-vocab-{name}.gguf.inp").read_text("utf-8")
    out = raw.split("\n__ggml_vocab_test__\n")
    rng = random.Random(7)
    letters = "abcdefghijklmnopqrstuvwxyzéßж日本 "
    for _ in range(n_random):
        out.append(" ".join("".join(rng.choice(letters) for _ in range(rng.randint(3, 9))) for _ in range(4000)))
    return out


def load(name: str) -> Tokenizer:
    return Tokenizer.from_gguf(GGUFFile(DATA / "tokenizer-vectors" / f"ggml-vocab-{name}.gguf"))


@pytest.mark.parametrize("name,n_random", VOCABS, ids=[v[0] for v in VOCABS])
def test_racing_threads_agree_with_one_thread(name, n_random):
    items = texts(name, n_random)
    alone = load(name)
    expected = [alone.tokenize(t, add_special=False) for t in items]
    shared = load(name)  # fresh: every thread starts on a cold cache
    results: list[list[list[int] | None]] = [[None] * len(items) for _ in range(N_THREADS)]
    errors: list[BaseException] = []
    start = threading.Barrier(N_THREADS)

    def work(k: int) -> None:
        try:
            order = list(range(len(items)))
            random.Random(k).shuffle(order)  # each thread in its own order
            start.wait()
            for i in order:
                results[k][i] = shared.tokenize(items[i], add_special=False)
        except BaseException as e:  # noqa: BLE001 -- reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in range(N_THREADS):
        bad = [i for i in range(len(items)) if results[k][i] != expected[i]]
        assert not bad, (name, k, items[bad[0]][:80])
