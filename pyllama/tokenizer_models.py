"""The three subword algorithms, each turning one text fragment into token ids
exactly as llama.cpp's sessions do (llama-vocab.cpp):

- SpmEncoder: SentencePiece BPE by token score (Llama 2, Phi-3, Gemma), byte fallback.
- BpeEncoder: byte-level BPE by merge rank after a pre-tokenizer (GPT-2, Llama 3, Qwen, SmolLM...).
- WpmEncoder: WordPiece longest match over a phantom-space vocabulary (BERT).

Token texts are Python strings; a vocabulary string that is not valid UTF-8 is kept
with surrogate escapes, so single raw bytes look up as "\\udcXX".
"""

from __future__ import annotations

import re
import unicodedata

from . import _native
from .tokenizer_pretok import compiled, split_words

SPACE = "\u2581"  # the escaped space of SPM and WPM vocabularies


def _byte_str(b: int) -> str:
    return chr(b) if b < 0x80 else chr(0xDC00 + b)


class SpmEncoder:
    """Highest-scoring adjacent pair first (ties: leftmost); symbols that are not
    tokens become <0xXX> byte tokens. The merging runs natively."""

    def __init__(self, tokens: list[str], scores, unk: int):
        self.native = _native.SpmTokenizer(tokens, scores, unk)

    def encode(self, text: str, out: list[int]) -> None:
        out.extend(self.native.encode(text))


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


BYTE_TO_CHAR = bytes_to_unicode()
CHAR_TO_BYTE = {c: b for b, c in BYTE_TO_CHAR.items()}


class BpeEncoder:
    """Pre-tokenize, byte-encode each word, then merge the lowest-ranked pair first
    (ties: leftmost), one pair at a time as llama.cpp does. The merging (and, for the
    common pattern families, the pre-tokenizing) runs natively; words are cached."""

    NATIVE_PRE = {"gpt2": "gpt2", "starcoder": "starcoder", "llama3": "llama3", "qwen2": "qwen2"}

    def __init__(self, tokens: list[str], merges: list[str], patterns: str, ignore_merges: bool):
        self.native = _native.BpeTokenizer(tokens, merges, ignore_merges=ignore_merges)
        kind = self.NATIVE_PRE.get(patterns)
        self.kind = getattr(_native.PreKind, kind) if kind else None
        self.patterns = compiled(patterns)

    def encode(self, text: str, out: list[int]) -> None:
        if self.kind is not None:
            out += self.native.encode(text, self.kind)
        else:
            out += self.native.encode_words(split_words(text, self.patterns))


# White_Space code points (llama.cpp's whitespace table); str.isspace also takes \x1c-\x1f.
_WHITESPACE = frozenset(map(chr, [9, 10, 11, 12, 13, 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B),
                                  0x2028, 0x2029, 0x202F, 0x205F, 0x3000]))


_DROPPED_SEPARATORS = dict.fromkeys(range(0x1C, 0x20))
_ASCII_WORDS = re.compile(r"[a-z0-9]+|[^a-z0-9]")


def _is_chinese(cp: int) -> bool:
    return (0x4E00 <= cp <= 0x9FFF or 0x3400 <= cp <= 0x4DBF or 0x20000 <= cp <= 0x2A6DF
            or 0x2A700 <= cp <= 0x2B73F or 0x2B740 <= cp <= 0x2B81F or 0x2B920 <= cp <= 0x2CEAF
            or 0xF900 <= cp <= 0xFAFF or 0x2F800 <= cp <= 0x2FA1F)


def _first_nfd(ch: str) -> str:
    # llama.cpp maps each code point to the first code point of its decomposition
    # (so accents drop out): é -> e
    if ch.isascii():
        return ch
    return unicodedata.normalize("NFD", ch)[0]


def _lower(ch: str) -> str:
    lo = ch.lower()
    return lo if len(lo) == 1 else lo[0]  # simple (one code point) case mapping


class WpmEncoder:
    """BERT WordPiece: NFD (first code point), lowercase, split on whitespace,
    punctuation, ASCII symbols and CJK characters; then longest-match pieces of
    "\u2581" + word; a word with an unmatchable rest becomes [UNK]."""

    def __init__(self, token_to_id: dict[str, int], unk: int):
        self.t2i = token_to_id
        self.unk = unk
        self.max_len = max((len(t) for t in token_to_id), default=1)

    @staticmethod
    def words(text: str) -> list[str]:
        # str.split() splits on the same whitespace, plus U+001C..U+001F, which are control
        # characters here (dropped without splitting), so those go first. An ASCII word of
        # letters, digits and symbols is only lowercased and cut by a regex; the rest goes character by character (a
        # word is built as a list: growing a string in a list is quadratic).
        words: list[str] = []
        for chunk in text.translate(_DROPPED_SEPARATORS).split():
            if chunk.isascii():
                if chunk.isalnum():
                    words.append(chunk.lower())
                    continue
                if chunk.isprintable():  # letters and digits, and symbols that stand alone
                    words.extend(_ASCII_WORDS.findall(chunk.lower()))
                    continue
            cur: list[str] = []
            for ch in chunk:
                ch = _first_nfd(ch)
                cp = ord(ch)
                cat = unicodedata.category(ch)
                if ch in _WHITESPACE:
                    split, ch = True, ""
                elif cp == 0 or cp == 0xFFFD or cat[0] == "C":
                    continue
                else:
                    ch = _lower(ch)
                    split = cat[0] == "P" or (cp < 0x7F and cat[0] == "S") or _is_chinese(cp)
                if split:
                    if cur:
                        words.append("".join(cur))
                        cur = []
                    if ch:
                        words.append(ch)
                else:
                    cur.append(ch)
            if cur:
                words.append("".join(cur))
        return words

    def encode(self, text: str, out: list[int]) -> None:
        t2i = self.t2i
        for word in self.words(text):
            w = SPACE + word
            n = len(w)
            start = len(out)
            i = 0
            while i < n:
                for j in range(min(n, i + self.max_len), i, -1):
                    tid = t2i.get(w[i:j])
                    if tid is not None:
                        out.append(tid)
                        i = j
                        break
                else:
                    del out[start:]
                    break
            if len(out) == start:
                out.append(self.unk)
