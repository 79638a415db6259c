"""Tokenizer behaviour: special tokens, flags, detokenization, streaming, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pyllama.errors import ModelLoadError
from pyllama.gguf_file import GGUFFile
from pyllama.tokenizer import Attr, Tokenizer, TokenType

VECTORS = Path(__file__).resolve().parents[1] / "data" / "tokenizer-vectors"
_cache: dict[str, Tokenizer] = {}


def vocab(name: str) -> Tokenizer:
    if name not in _cache:
        _cache[name] = Tokenizer.from_gguf(GGUFFile(VECTORS / f"ggml-vocab-{name}.gguf"))
    return _cache[name]


def texts(name: str) -> list[str]:
    return (VECTORS / f"ggml-vocab-{name}.gguf.inp").read_text(encoding="utf-8").split("\n__ggml_vocab_test__\n")


def test_add_special_follows_the_vocabulary_flags():
    spm = vocab("llama-spm")
    assert spm.tokenize("Hello", add_special=True)[0] == spm.bos == 1
    assert spm.tokenize("Hello", add_special=False)[0] != 1
    assert spm.tokenize("", add_special=True) == [1] and spm.tokenize("", add_special=False) == []
    llama3 = vocab("llama-bpe")  # llama-bpe pre-tokenizer implies add_bos
    assert llama3.tokenize("Hi", add_special=True)[0] == 128000
    gpt2 = vocab("gpt-2")  # no add_bos
    assert gpt2.tokenize("Hi", add_special=True) == gpt2.tokenize("Hi", add_special=False)
    bert = vocab("bert-bge")
    ids = bert.tokenize("hello", add_special=True)
    assert ids[0] == bert.bos == 101 and ids[-1] == bert.sep == 102


def test_parse_special_only_when_asked():
    tok = vocab("llama-bpe")
    text = "<|begin_of_text|>Hi<|eot_id|>"
    parsed = tok.tokenize(text, add_special=False, parse_special=True)
    assert parsed == [128000, tok.token_to_id["Hi"], 128009]
    literal = tok.tokenize(text, add_special=False, parse_special=False)
    assert 128000 not in literal and 128009 not in literal
    assert tok.detokenize(literal) == text


def test_user_defined_tokens_split_even_without_parse_special():
    tok = vocab("deepseek-coder")
    user = [i for i in range(tok.n_vocab) if tok.token_type(i) == TokenType.USER_DEFINED]
    assert user
    t = user[0]
    text = "x " + tok.tokens[t] + " y"
    assert t in tok.tokenize(text, add_special=False, parse_special=False)


def test_phi3_special_tokens_strip_following_whitespace():
    tok = vocab("phi-3")
    assert tok.attr(tok.token_to_id["<|user|>"]) & Attr.RSTRIP
    ids = tok.tokenize("<|user|>\nHi<|end|>\n", add_special=True, parse_special=True)
    assert ids == [1, tok.token_to_id["<|user|>"], tok.token_to_id["▁Hi"], tok.token_to_id["<|end|>"]]


def test_eog_tokens():
    tok = vocab("llama-bpe")
    assert tok.is_eog(128009) and tok.is_eog(tok.eos) and not tok.is_eog(tok.token_to_id["Hi"])


@pytest.mark.parametrize("name,ids", [
    ("starcoder", (1, 3, 2, 4, -1, -1)),          # <fim_prefix>, <fim_suffix>, <fim_middle>, <fim_pad>
    ("deepseek-coder", (32016, 32015, 32017, -1, -1, -1)),  # <｜fim▁begin｜>, <｜fim▁hole｜>, <｜fim▁end｜>
    ("llama-bpe", (-1, -1, -1, -1, -1, -1)),
])
def test_fim_tokens_found_by_their_text(name, ids):
    """As llama.cpp finds them when the GGUF names none; pad, repo and file separator end generation."""
    tok = vocab(name)
    assert (tok.fim_pre, tok.fim_suf, tok.fim_mid, tok.fim_pad, tok.fim_rep, tok.fim_sep) == ids
    for t in ids[:3]:
        if t >= 0:
            assert tok.attrs[t] & Attr.CONTROL and not tok.is_eog(t)
    if ids[3] >= 0:
        assert tok.is_eog(ids[3])


@pytest.mark.parametrize("name", ["llama-spm", "phi-3", "qwen2", "deepseek-llm", "deepseek-coder"])
def test_detokenize_round_trips(name):
    tok = vocab(name)
    for t in texts(name):
        assert tok.detokenize(tok.tokenize(t, add_special=False)) == t


def test_detokenize_special_handling():
    tok = vocab("llama-spm")
    ids = tok.tokenize("Hello world", add_special=True)
    # as llama_detokenize: only the first piece loses the SPM prefix space, and with a
    # BOS first that piece is the (empty or "<s>") BOS
    assert tok.detokenize(ids) == " Hello world"
    assert tok.detokenize(ids, unparse_special=True) == "<s> Hello world"
    assert tok.detokenize(ids, remove_special=True) == " Hello world"
    assert tok.detokenize(ids[1:]) == "Hello world"
    assert tok.piece(ids[0], special=False) == b"" and tok.piece(ids[0]) == b"<s>"


def test_clean_spaces_for_bpe():
    tok = vocab("gpt-2")
    assert tok.clean_spaces
    assert tok.detokenize(tok.tokenize("Hello , world !", add_special=False)) == "Hello, world!"
    assert tok.detokenize(tok.tokenize("it 's fine", add_special=False)) == "it's fine"


@pytest.mark.parametrize("name", ["llama-spm", "gpt-2", "qwen2"])
def test_stream_decoder_never_splits_a_character(name):
    tok = vocab(name)
    text = "this is 🦙.cpp — 我们 ✓ Äpfel"
    ids = tok.tokenize(text, add_special=False)
    dec = tok.stream_decoder()
    pieces = [dec.feed(t) for t in ids]
    assert all("\ufffd" not in p for p in pieces)
    out = "".join(pieces) + dec.flush()
    assert out.lstrip() == text or out == text
    # the llama emoji is several byte tokens in the SPM vocabulary: nothing shows until complete
    if name == "llama-spm":
        assert sum(1 for p in pieces if p == "") >= 3


def test_stream_decoder_replaces_invalid_bytes():
    tok = vocab("llama-spm")
    dec = tok.stream_decoder()
    byte_ff = tok.token_to_id["<0xFF>"]
    assert dec.feed(byte_ff) == "\ufffd"
    assert dec.feed(tok.token_to_id["<0xE6>"]) == "" and dec.pending()
    assert dec.flush() == "\ufffd"


def test_unknown_pre_tokenizer_falls_back_with_a_warning():
    md = dict(GGUFFile(VECTORS / "ggml-vocab-gpt-2.gguf").metadata)
    md["tokenizer.ggml.pre"] = "no-such-pre"
    tok = Tokenizer(md)
    assert any("no-such-pre" in w for w in tok.warnings)
    assert tok.tokenize("Hello world", add_special=False) == vocab("gpt-2").tokenize("Hello world", add_special=False)


def test_bad_metadata_is_a_load_error():
    md = dict(GGUFFile(VECTORS / "ggml-vocab-gpt-2.gguf").metadata)
    with pytest.raises(ModelLoadError, match="unsupported tokenizer model 'rwkv-x'"):
        Tokenizer({**md, "tokenizer.ggml.model": "rwkv-x"})
    with pytest.raises(ModelLoadError, match="merges"):
        Tokenizer({k: v for k, v in md.items() if k != "tokenizer.ggml.merges"})
    with pytest.raises(ModelLoadError, match="token_type"):
        Tokenizer({**md, "tokenizer.ggml.token_type": np.zeros(3, np.int32)})
    with pytest.raises(ModelLoadError, match="tokens"):
        Tokenizer({k: v for k, v in md.items() if k != "tokenizer.ggml.tokens"})


def test_piece_of_out_of_range_id():
    with pytest.raises(IndexError):
        vocab("gpt-2").piece(10**9)
