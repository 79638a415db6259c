"""The native special-token partition and SPM merge against plain-Python models
of llama.cpp's algorithms, on crafted vocabularies where order and overlap matter."""

from __future__ import annotations

import heapq
import random

import pytest

from pyllama import _native

C_SPACE = " \t\n\v\f\r"


def partition_reference(text, entries, parse_special):
    """llama.cpp's tokenizer_st_partition: each special token in priority order
    splits every raw fragment left by the ones before it."""
    frags = [text] if text else []
    for tok, tid, lstrip, rstrip, needs_parse in entries:
        if needs_parse and not parse_special:
            continue
        out = []
        for f in frags:
            if not isinstance(f, str) or tok not in f:
                out.append(f)
                continue
            parts = f.split(tok)
            for k, part in enumerate(parts):
                if k > 0:
                    out.append(tid)
                if lstrip and k + 1 < len(parts):
                    part = part.rstrip(C_SPACE)
                if rstrip and k > 0:
                    part = part.lstrip(C_SPACE)
                if part:
                    out.append(part)
        frags = out
    return frags


ENTRIES = [  # longest first, as the tokenizer orders them
    ("<start>", 10, False, False, True),
    ("\n\n\n", 11, False, False, False),
    ("<end>", 12, True, True, False),
    ("bcd", 13, False, False, False),
    ("\n\n", 14, False, False, False),
    ("ab", 15, False, False, False),
    ("é\n", 16, False, True, False),
    ("\n", 17, False, False, False),
]


@pytest.mark.parametrize("parse_special", [False, True])
@pytest.mark.parametrize("text", [
    "", "plain text", "abcd", "xabcdx ab bcd", "<start>hi<end> there <end>", "a \t<end>\n b",
    "\n\n\n\n\n", "é\n\n\né\n", "<start><start>", "<end>", "  <end>  ", "naïve é\n x",
])
def test_partition_matches_the_ordered_reference(text, parse_special):
    splitter = _native.SpecialSplitter(ENTRIES)
    assert splitter.split(text, parse_special) == partition_reference(text, ENTRIES, parse_special)


def test_partition_random_texts():
    splitter = _native.SpecialSplitter(ENTRIES)
    rng = random.Random(7)
    alphabet = ["a", "b", "c", "d", "é", " ", "\n", "\t", "<end>", "<start>", "x", "日"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        for ps in (False, True):
            assert splitter.split(text, ps) == partition_reference(text, ENTRIES, ps), text


def spm_reference(text, vocab, scores, byte_ids):
    sym = list(text)
    n = len(sym)
    nxt, prv = list(range(1, n)) + [-1], list(range(-1, n - 1))
    heap = []

    def add(a, b):
        if a >= 0 and b >= 0 and sym[a] + sym[b] in vocab:
            heapq.heappush(heap, (-scores[vocab[sym[a] + sym[b]]], a, len(sym[a]) + len(sym[b]), b))

    for i in range(1, n):
        add(i - 1, i)
    while heap:
        _, a, size, b = heapq.heappop(heap)
        if not sym[a] or not sym[b] or len(sym[a]) + len(sym[b]) != size:
            continue
        sym[a] += sym[b]
        sym[b] = ""
        nxt[a] = nxt[b]
        if nxt[b] >= 0:
            prv[nxt[b]] = a
        add(prv[a], a)
        add(a, nxt[a])
    out, i = [], 0 if n else -1
    while i != -1:
        s = sym[i]
        out.extend([vocab[s]] if s in vocab else [byte_ids[c] for c in s.encode()])
        i = nxt[i]
    return out


def test_spm_merges_by_score_with_byte_fallback():
    rng = random.Random(3)
    tokens = [f"<0x{b:02X}>" for b in range(256)]
    tokens += ["a", "b", "c", "▁", "ab", "bc", "abc", "▁a", "▁ab", "ca", "cab", "é", "éa", "aa", "aaa", "b"]
    scores = [0.0] * 256 + [rng.uniform(-5, 0) for _ in tokens[256:]]
    scores[-5] = scores[-4]  # a tie: leftmost pair first
    vocab = {t: i for i, t in enumerate(tokens)}  # "b" twice: the later id wins
    spm = _native.SpmTokenizer(tokens, scores, 0)
    alphabet = ["a", "b", "c", "▁", "é", "z", "日"]
    for _ in range(1000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 20)))
        assert spm.encode(text) == spm_reference(text, vocab, scores, list(range(256))), text
    assert spm.find("b") == len(tokens) - 1
    assert spm.find("nope") == -1
