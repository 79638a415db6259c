"""Tokenizers built from GGUF metadata alone (`tokenizer.ggml.*`), token for token as llama.cpp.

    tok = Tokenizer.from_gguf(GGUFFile("model.gguf"))
    ids = tok.tokenize("Hello", add_special=True, parse_special=False)
    tok.detokenize(ids)                 # text, as llama_detokenize
    tok.piece(ids[0], special=True)     # one token's bytes
    dec = tok.stream_decoder()          # dec.feed(id) -> str, never a broken UTF-8 sequence

Special tokens (control, user-defined, unknown) are split out of the text first,
longest first; control and unknown tokens only when parse_special is set.
"""

from __future__ import annotations

import codecs
import logging
from enum import IntEnum, IntFlag
from typing import Iterable, Sequence

import numpy as np

from . import _native
from .errors import ModelLoadError
from .tokenizer_models import CHAR_TO_BYTE, SPACE, BpeEncoder, SpmEncoder, WpmEncoder
from .tokenizer_pretok import PRE_SPECS

log = logging.getLogger(__name__)


class TokenType(IntEnum):
    """`tokenizer.ggml.token_type` values."""

    UNDEFINED = 0
    NORMAL = 1
    UNKNOWN = 2
    CONTROL = 3
    USER_DEFINED = 4
    UNUSED = 5
    BYTE = 6


class Attr(IntFlag):
    """Per-token attributes (llama_token_attr)."""

    UNDEFINED = 0
    UNKNOWN = 1 << 0
    UNUSED = 1 << 1
    NORMAL = 1 << 2
    CONTROL = 1 << 3
    USER_DEFINED = 1 << 4
    BYTE = 1 << 5
    NORMALIZED = 1 << 6
    LSTRIP = 1 << 7
    RSTRIP = 1 << 8
    SINGLE_WORD = 1 << 9


# index = TokenType value
_TYPE_TO_ATTR = np.array([0, Attr.NORMAL, Attr.UNKNOWN, Attr.CONTROL, Attr.USER_DEFINED, Attr.UNUSED, Attr.BYTE],
                         dtype=np.int32)

_EOG_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<|return|>", "<|call|>", "<end_of_turn>", "<|endoftext|>",
              "<|eom_id|>", "<EOT>", "_<EOT>", "<|end_of_text|>", "<end_of_utterance>")
_EOT_TEXTS = ("<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<|end_of_text|>", "<EOT>",
              "_<EOT>", "<｜end▁of▁sentence｜>", "<end_of_utterance>")

# Fill-in-the-middle tokens found by their text when the GGUF names none (llama.cpp's
# lists; where a vocabulary has several, the first listed here is taken).
_FIM_TEXTS = {
    "fim_pre": ("<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>",
                "<|code_prefix|>", "<|prefix|>"),
    "fim_suf": ("<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>",
                "<|code_suffix|>", "<|suffix|>"),
    "fim_mid": ("<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>",
                "<|code_middle|>", "<|middle|>"),
    "fim_pad": ("<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"),
    "fim_rep": ("<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"),
    "fim_sep": ("<|file_sep|>",),
}

MODELS = {"llama": "spm", "gpt2": "bpe", "bert": "wpm"}


class Tokenizer:
    """One vocabulary and its algorithm. Build with from_gguf / from_metadata."""

    def __init__(self, metadata: dict):
        md = metadata
        model = md.get("tokenizer.ggml.model")
        if model not in MODELS:
            raise ModelLoadError(f"unsupported tokenizer model {model!r} (supported: llama, gpt2, bert)")
        self.kind = MODELS[model]
        tokens = md.get("tokenizer.ggml.tokens")
        if not isinstance(tokens, list) or not tokens:
            raise ModelLoadError("GGUF has no tokenizer.ggml.tokens")
        self.tokens: list[str] = list(tokens) if all(tokens) else [t if t else f"[EMPTY_{i}]" for i, t in enumerate(tokens)]
        n = len(self.tokens)
        self.token_to_id: dict[str, int] = dict(zip(self.tokens, range(n)))
        scores = md.get("tokenizer.ggml.scores")
        self.scores = np.asarray(scores, dtype=np.float32) if scores is not None else np.zeros(n, np.float32)
        types = md.get("tokenizer.ggml.token_type")
        if types is not None:
            types = np.asarray(types, dtype=np.int64)
            if types.shape != (n,):
                raise ModelLoadError(f"tokenizer.ggml.token_type has {types.size} entries for {n} tokens")
            self.attrs = np.where((types >= 0) & (types < 7), _TYPE_TO_ATTR[np.clip(types, 0, 6)], 0).astype(np.int32)
        else:
            self.attrs = np.full(n, int(Attr.NORMAL), np.int32)
        if len(self.scores) != n:
            raise ModelLoadError(f"tokenizer.ggml.scores has {len(self.scores)} entries for {n} tokens")
        self.warnings: list[str] = []
        self._configure(md)
        self._special_tokens()
        self._build_encoder(md)
        self._pieces: dict[tuple[int, bool], bytes] = {}
        self._splitter = None  # the native special-token splitter, built on first use

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_gguf(cls, gguf) -> "Tokenizer":
        return cls(gguf.metadata)

    def _configure(self, md: dict) -> None:
        self.pre = md.get("tokenizer.ggml.pre", "") or ""
        self.ignore_merges = False
        self.add_sep = False
        if self.kind == "spm":
            bos, eos, unk, sep, pad, mask = 1, 2, 0, -1, -1, -1
            self.add_space_prefix, self.clean_spaces, self.add_bos, self.add_eos = True, False, True, False
            self.patterns = None
        elif self.kind == "wpm":
            bos, eos, unk, sep, pad, mask = 101, -1, 100, 102, 0, 103
            self.add_space_prefix, self.clean_spaces, self.add_bos, self.add_eos = False, True, True, False
            self.add_sep = True
            self.patterns = None
        else:
            bos, eos, unk, sep, pad, mask = 11, 11, -1, -1, -1, -1
            self.add_space_prefix, self.add_bos, self.add_eos = False, False, False
            spec = PRE_SPECS.get(self.pre)
            if spec is None:
                msg = f"unknown pre-tokenizer {self.pre!r}: using 'default' (as llama.cpp does)"
                log.warning(msg)
                self.warnings.append(msg)
                spec = PRE_SPECS["default"]
            self.patterns = spec.patterns
            self.clean_spaces = spec.clean_spaces
            self.ignore_merges = spec.ignore_merges
            if spec.add_bos is not None:
                self.add_bos = spec.add_bos
            self.add_sep = spec.add_sep
            if self.pre in ("chatglm-bpe", "glm4"):
                bos = -1
        self.add_space_prefix = bool(md.get("tokenizer.ggml.add_space_prefix", self.add_space_prefix))
        n = len(self.tokens)

        def tid(key: str, default: int) -> int:
            v = md.get(key)
            if v is None:
                return default
            v = int(v)
            if not 0 <= v < n:
                self.warnings.append(f"bad special token {key} = {v}; using {default}")
                return default
            return v

        self.bos = tid("tokenizer.ggml.bos_token_id", bos)
        self.eos = tid("tokenizer.ggml.eos_token_id", eos)
        self.eot = tid("tokenizer.ggml.eot_token_id", -1)
        self.eom = tid("tokenizer.ggml.eom_token_id", -1)
        self.unk = tid("tokenizer.ggml.unknown_token_id", unk)
        self.sep = tid("tokenizer.ggml.seperator_token_id", sep)
        self.pad = tid("tokenizer.ggml.padding_token_id", pad)
        self.mask = tid("tokenizer.ggml.mask_token_id", mask)
        self.fim_pre = tid("tokenizer.ggml.fim_pre_token_id", tid("tokenizer.ggml.prefix_token_id", -1))
        self.fim_suf = tid("tokenizer.ggml.fim_suf_token_id", tid("tokenizer.ggml.suffix_token_id", -1))
        self.fim_mid = tid("tokenizer.ggml.fim_mid_token_id", tid("tokenizer.ggml.middle_token_id", -1))
        self.fim_pad = tid("tokenizer.ggml.fim_pad_token_id", -1)
        self.fim_rep = tid("tokenizer.ggml.fim_rep_token_id", -1)
        self.fim_sep = tid("tokenizer.ggml.fim_sep_token_id", -1)
        for key, attr in (("add_bos_token", "add_bos"), ("add_eos_token", "add_eos"), ("add_sep_token", "add_sep")):
            v = md.get("tokenizer.ggml." + key)
            if v is not None:
                setattr(self, attr, bool(v))
        self.name = str(md.get("general.name", "") or "")
        self.arch = str(md.get("general.architecture", "") or "")

    def _mark_control(self, tid: int) -> None:
        if not self.attrs[tid] & Attr.CONTROL:
            self.attrs[tid] = Attr.CONTROL

    def _special_tokens(self) -> None:
        t2i = self.token_to_id
        if self.eot < 0:
            self.eot = next((t2i[t] for t in _EOT_TEXTS if t in t2i), -1)
            if self.eot >= 0:
                self._mark_control(self.eot)
        if self.eom < 0 and "<|eom_id|>" in t2i:
            self.eom = t2i["<|eom_id|>"]
            self._mark_control(self.eom)
        for attr, texts in _FIM_TEXTS.items():
            if getattr(self, attr) < 0:
                found = next((t2i[t] for t in texts if t in t2i), -1)
                if found >= 0:
                    setattr(self, attr, found)
                    self._mark_control(found)
        eog = {t for t in (self.fim_pad, self.fim_rep, self.fim_sep) if t >= 0}
        for text in _EOG_TEXTS:
            if text in t2i:
                eog.add(t2i[text])
                self._mark_control(t2i[text])
        for text in ("<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"):
            if text in t2i:
                self.attrs[t2i[text]] = Attr.USER_DEFINED
        for t in (self.eos, self.eot, self.eom):
            if t >= 0:
                eog.add(t)
        ends = {self.tokens[t]: t for t in eog}
        if "<|return|>" in ends and "<|call|>" in ends and "<|end|>" in ends:
            eog.discard(ends["<|end|>"])
            self.attrs[ends["<|end|>"]] = Attr.USER_DEFINED
        self.eog_ids = frozenset(eog)
        # per-model attributes llama.cpp sets by name
        name = self.name.lower()
        if any(p in self.pre for p in ("jina-v2-de", "jina-v2-es", "jina-v2-code")) or \
                any(a in self.arch for a in ("nomic-bert-moe", "jina-bert-v3")):
            if "<mask>" in t2i:
                self.attrs[t2i["<mask>"]] |= Attr.LSTRIP
        special_mask = Attr.CONTROL | Attr.USER_DEFINED | Attr.UNKNOWN
        special = np.flatnonzero(self.attrs & special_mask)
        if "phi-3" in name or "phi3" in name:
            self.attrs[special] |= Attr.RSTRIP
            for text, on in (("</s>", True), ("<unk>", False), ("<s>", False), ("<|endoftext|>", False)):
                if text in t2i:
                    self.attrs[t2i[text]] = (self.attrs[t2i[text]] | Attr.RSTRIP) if on else \
                        (self.attrs[t2i[text]] & ~Attr.RSTRIP)
        # longest text first (ties: lower id first)
        self.special_ids: list[int] = sorted(special.tolist(), key=lambda i: (-len(self.tokens[i].encode("utf-8", "surrogateescape")), i))

    def _build_encoder(self, md: dict) -> None:
        if self.kind == "spm":
            self.encoder = SpmEncoder(self.tokens, self.scores, self.unk)
        elif self.kind == "wpm":
            self.encoder = WpmEncoder(self.token_to_id, self.unk)
        else:
            merges = md.get("tokenizer.ggml.merges")
            if not isinstance(merges, list):
                raise ModelLoadError("BPE tokenizer without tokenizer.ggml.merges")
            self.encoder = BpeEncoder(self.tokens, merges, self.patterns, self.ignore_merges)

    # -- queries --------------------------------------------------------------

    @property
    def n_vocab(self) -> int:
        return len(self.tokens)

    def is_eog(self, tid: int) -> bool:
        return tid in self.eog_ids

    def attr(self, tid: int) -> Attr:
        return Attr(int(self.attrs[tid]))

    def token_type(self, tid: int) -> TokenType:
        a = int(self.attrs[tid])
        for t, bit in ((TokenType.NORMAL, Attr.NORMAL), (TokenType.CONTROL, Attr.CONTROL),
                       (TokenType.USER_DEFINED, Attr.USER_DEFINED), (TokenType.BYTE, Attr.BYTE),
                       (TokenType.UNKNOWN, Attr.UNKNOWN), (TokenType.UNUSED, Attr.UNUSED)):
            if a & bit:
                return t
        return TokenType.UNDEFINED

    # -- tokenize -------------------------------------------------------------

    def _partition(self, text: str, parse_special: bool) -> list:
        """Split text into raw fragments (str) and special tokens (int), llama.cpp's order:
        each special token in turn (longest first) splits every raw fragment."""
        if self._splitter is None:
            attrs = self.attrs[np.asarray(self.special_ids, dtype=np.int64)]
            lstrip = (attrs & int(Attr.LSTRIP)) != 0
            rstrip = (attrs & int(Attr.RSTRIP)) != 0
            needs_parse = (attrs & int(Attr.CONTROL | Attr.UNKNOWN)) != 0
            self._splitter = _native.SpecialSplitter([
                (self.tokens[t], t, ls, rs, np_) for t, ls, rs, np_ in
                zip(self.special_ids, lstrip.tolist(), rstrip.tolist(), needs_parse.tolist())])
        return self._splitter.split(text, parse_special)

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        """Token ids of text. add_special adds BOS/EOS/SEP as the vocabulary asks;
        parse_special turns control-token text (e.g. "<|im_start|>") into that token."""
        out: list[int] = []
        frags = self._partition(text, parse_special)
        enc = self.encoder
        if self.kind == "spm":
            prev_special = True
            if add_special and self.add_bos and self.bos >= 0:
                out.append(self.bos)
            for f in frags:
                if isinstance(f, int):
                    out.append(f)
                    prev_special = True
                    continue
                if self.add_space_prefix and prev_special:
                    f = " " + f
                enc.encode(f.replace(" ", SPACE), out)
                prev_special = False
            if add_special and self.add_eos and self.eos >= 0:
                out.append(self.eos)
        else:
            if add_special and self.add_bos and self.bos >= 0:
                out.append(self.bos)
            for f in frags:
                if isinstance(f, int):
                    out.append(f)
                else:
                    enc.encode(f, out)
            if add_special:
                if self.add_eos and self.eos >= 0:
                    out.append(self.eos)
                if self.kind == "wpm" and self.add_sep and self.sep >= 0:
                    out.append(self.sep)
        return out

    # -- detokenize -----------------------------------------------------------

    def piece(self, tid: int, special: bool = True) -> bytes:
        """The bytes token tid stands for (llama_token_to_piece). Control and unknown
        tokens give b"" unless special."""
        key = (tid, special)
        p = self._pieces.get(key)
        if p is None:
            p = self._piece(tid, special)
            self._pieces[key] = p
        return p

    def _piece(self, tid: int, special: bool) -> bytes:
        if not 0 <= tid < len(self.tokens):
            raise IndexError(f"token id {tid} out of range [0, {len(self.tokens)})")
        attr = int(self.attrs[tid])
        text = self.tokens[tid]
        if attr & (Attr.UNKNOWN | Attr.CONTROL) and not special:
            return b""
        if attr & (Attr.UNKNOWN | Attr.CONTROL | Attr.USER_DEFINED):
            return text.encode("utf-8", "surrogateescape")
        if self.kind == "bpe":
            if attr & Attr.NORMAL:
                out = bytearray()
                for ch in text:
                    b = CHAR_TO_BYTE.get(ch)
                    if b is None:
                        raw = ch.encode("utf-8", "surrogateescape")
                        out += b"[UNK_BYTE_0x" + raw.hex().encode() + text.encode("utf-8", "surrogateescape") + b"]"
                    else:
                        out.append(b)
                return bytes(out)
            return b""
        if attr & Attr.NORMAL:
            return text.replace(SPACE, " ").encode("utf-8", "surrogateescape")
        if attr & Attr.BYTE:
            return bytes([int(text[3:5], 16)])
        return b""

    def all_pieces(self, special: bool = True) -> list[bytes]:
        """piece(t, special) for every token, computed in bulk (grammars need them all)."""
        out: list[bytes] = [b""] * len(self.tokens)
        attrs = self.attrs
        tokens = self.tokens
        rest = []
        normal = np.flatnonzero(attrs & int(Attr.NORMAL)).tolist()
        if self.kind == "bpe":
            table = _BYTE_TABLE
            for i in normal:
                try:
                    out[i] = tokens[i].translate(table).encode("latin-1")
                except UnicodeEncodeError:  # a character outside GPT-2's byte map
                    rest.append(i)
        else:
            for i in normal:
                out[i] = tokens[i].replace(SPACE, " ").encode("utf-8", "surrogateescape")
        others = np.flatnonzero((attrs & int(Attr.NORMAL)) == 0).tolist()
        for i in rest + others:
            out[i] = self.piece(i, special)
        return out

    def detokenize(self, ids: Sequence[int], remove_special: bool = False, unparse_special: bool = False) -> str:
        """Text of a token sequence (llama_detokenize): leading space of an SPM prefix
        removed, optional BOS/EOS removal, llama.cpp's space clean-up for BPE/WPM."""
        ids = list(ids)
        remove_space = self.add_space_prefix
        if remove_special and self.add_bos and ids and ids[0] == self.bos:
            remove_space = False
            ids = ids[1:]
        if remove_special and self.add_eos and ids and ids[-1] == self.eos:
            ids = ids[:-1]
        buf = bytearray()
        for tid in ids:
            p = self.piece(tid, unparse_special)
            if remove_space and p[:1] == b" ":
                p = p[1:]
            remove_space = False
            buf += p
        if self.clean_spaces:
            buf = _clean_spaces(bytes(buf))
        return bytes(buf).decode("utf-8", "replace")

    def stream_decoder(self, special: bool = False) -> "StreamDecoder":
        return StreamDecoder(self, special)


_BYTE_TABLE = {ord(ch): b for ch, b in CHAR_TO_BYTE.items()}  # GPT-2 stand-in -> code point of its byte


def _clean_spaces(t: bytes) -> bytes:
    # pass 1: " ?", " !", " .", " ," lose the space
    out = bytearray(t[:1])
    for i in range(1, len(t)):
        if t[i - 1] == 0x20 and t[i] in b"?!.,":
            out.pop()
        out.append(t[i])
    # pass 2: a lone apostrophe between spaces loses both spaces
    t, out = bytearray(out), bytearray(out[:1])
    i = 1
    while i < len(t):
        x = t[i]
        if x == 0x27 and i + 1 < len(t) and t[i - 1] == 0x20 and t[i + 1] == 0x20:
            out.pop()
            out.append(x)
            t[i + 1] = 0  # llama.cpp blanks the skipped space in place: the next check sees NUL
            i += 2
            continue
        out.append(x)
        i += 1
    # pass 3: " 's", " 'm", " 're", " 've" lose the space
    t, out = bytes(out), bytearray(out[:1])
    for i in range(1, len(t)):
        x = t[i]
        if t[i - 1] == 0x20 and x == 0x27 and i + 1 < len(t):
            x1 = t[i + 1]
            if x1 in b"sm":
                out.pop()
            elif i + 2 < len(t) and (t[i + 1:i + 3] in (b"re", b"ve")):
                out.pop()
        out.append(x)
    return bytes(out)


class StreamDecoder:
    """Incremental detokenizer for streaming: feed token ids, get text whose UTF-8
    sequences are complete. A character split over several tokens comes out whole
    with the token that completes it; invalid bytes become U+FFFD."""

    def __init__(self, tok: Tokenizer, special: bool = False, shown: Iterable[int] = ()):
        self.tok = tok
        self.special = special
        self.shown = frozenset(shown)  # special tokens rendered anyway (a request's preserved_tokens)
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, tid: int) -> str:
        return self._dec.decode(self.tok.piece(tid, self.special or tid in self.shown))

    def feed_many(self, ids: Iterable[int]) -> str:
        return "".join(self.feed(t) for t in ids)

    def pending(self) -> bool:
        """True while bytes of an incomplete character are held back."""
        return bool(self._dec.getstate()[0])

    def flush(self) -> str:
        return self._dec.decode(b"", final=True)
