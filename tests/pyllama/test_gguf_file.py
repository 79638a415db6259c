"""GGUF loading: real models, zero-copy tensors, and clear errors for malformed files."""

from __future__ import annotations

import os
import struct

import numpy as np
import pytest

from helpers.tiny_models import tensor_info_offset, write_tiny_bert, write_tiny_llama
from pyllama import GGUFFile, ModelLoadError, _native


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_smollm2_metadata_and_hparams(smollm2_path):
    with GGUFFile(smollm2_path) as f:
        assert f.version == 3
        assert f.architecture == "llama"
        assert f.metadata["tokenizer.ggml.model"] == "gpt2"
        assert len(f.metadata["tokenizer.ggml.tokens"]) == 49152
        assert f.metadata["tokenizer.ggml.token_type"].dtype == np.int32
        hp = f.hparams
        assert (hp.family, hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.n_ff) == ("llama", 30, 576, 9, 3, 1536)
        assert hp.n_vocab == 49152 and hp.rope_freq_base == 100000.0 and hp.n_rot == 64 and not hp.rope_neox
        assert len(f.tensors) == 272
        emb = f.tensors["token_embd.weight"]
        assert emb.shape == (576, 49152) and emb.type_name == "Q8_0" and emb.nbytes == 49152 * 18 * 34


def test_gemma3_hparams(gemma3_path):
    with GGUFFile(gemma3_path) as f:
        hp = f.hparams
        assert (hp.family, hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv) == ("gemma3", 18, 640, 4, 1)
        assert (hp.head_dim_k, hp.head_dim_v, hp.sliding_window, hp.swa_pattern) == (256, 256, 512, 6)
        assert hp.rope_freq_base == 1e6 and hp.rope_neox
        assert len(f.metadata["tokenizer.ggml.tokens"]) == 262144
        assert f.metadata["tokenizer.ggml.scores"].dtype == np.float32


def test_bert_hparams(tmp_path):
    with GGUFFile(write_tiny_bert(tmp_path / "bert.gguf")) as f:
        hp = f.hparams
        assert (hp.family, hp.n_layer, hp.n_embd, hp.n_head, hp.causal_attention, hp.pooling_type) == (
            "bert", 2, 64, 4, False, 1)
        assert hp.norm_eps == pytest.approx(1e-12)


def test_tensors_are_zero_copy_views(gemma3_path):
    before = rss_bytes()
    f = GGUFFile(gemma3_path)
    grown = rss_bytes() - before
    size = os.path.getsize(gemma3_path)
    # The header (vocabulary) is read; the 250 MB of weights are not.
    assert grown < size / 4, f"RSS grew by {grown / 2**20:.1f} MiB opening a {size / 2**20:.0f} MiB file"
    emb = f.tensors["token_embd.weight"]
    assert not emb.data.flags.owndata and not emb.data.flags.writeable
    # native code reads the mapping directly
    row = _native.get_rows(emb.data, emb.type, emb.n_rows, emb.n_cols, np.array([2], np.int32))
    assert row.shape == (1, 640) and np.isfinite(row).all()
    f.close()


def test_tiny_model_roundtrip(tmp_path):
    f = GGUFFile(write_tiny_llama(tmp_path / "tiny.gguf"))
    assert f.hparams.n_layer == 2 and f.hparams.n_head_kv == 2
    t = f.tensors["blk.1.ffn_up.weight"]
    assert t.shape == (64, 128) and t.type_name == "F32"


# -- malformed files ------------------------------------------------------

@pytest.fixture
def tiny(tmp_path):
    path = write_tiny_llama(tmp_path / "base.gguf")
    return path, path.read_bytes()


def write(tmp_path, data: bytes):
    p = tmp_path / "bad.gguf"
    p.write_bytes(data)
    return p


def expect_error(path, pattern):
    with pytest.raises(ModelLoadError, match=pattern):
        GGUFFile(path).hparams


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.gguf", "cannot open")


def test_empty_file(tmp_path):
    expect_error(write(tmp_path, b""), "empty")


def test_bad_magic(tmp_path, tiny):
    expect_error(write(tmp_path, b"GGML" + tiny[1][4:]), "bad magic")


@pytest.mark.parametrize("version,pattern", [(1, "version 1"), (4, "version 4"), (0xFFFFFFFF, "unsupported GGUF version")])
def test_unsupported_version(tmp_path, tiny, version, pattern):
    data = tiny[1][:4] + struct.pack("<I", version) + tiny[1][8:]
    expect_error(write(tmp_path, data), pattern)


@pytest.mark.parametrize("cut", [6, 20, 100, 400, 2000])
def test_truncated_header(tmp_path, tiny, cut):
    expect_error(write(tmp_path, tiny[1][:cut]), "truncated")


def test_truncated_tensor_data(tmp_path, tiny):
    expect_error(write(tmp_path, tiny[1][:-100]), "past the end of the file")


def test_huge_counts(tmp_path, tiny):
    data = bytearray(tiny[1])
    data[8:16] = struct.pack("<Q", 2**62)
    expect_error(write(tmp_path, bytes(data)), "tensor count")
    data = bytearray(tiny[1])
    data[16:24] = struct.pack("<Q", 2**40)
    expect_error(write(tmp_path, bytes(data)), "metadata count")


def test_huge_string_length(tmp_path, tiny):
    data = bytearray(tiny[1])
    data[24:32] = struct.pack("<Q", 2**63)  # length of the first key
    expect_error(write(tmp_path, bytes(data)), "truncated")


def test_tensor_offset_past_end(tmp_path, tiny):
    data = bytearray(tiny[1])
    p = tensor_info_offset(bytes(data), "blk.1.ffn_down.weight")
    n_dims = struct.unpack_from("<I", data, p)[0]
    struct.pack_into("<Q", data, p + 4 + 8 * n_dims + 4, 2**40)
    expect_error(write(tmp_path, bytes(data)), "ffn_down.weight.*past the end")


def test_tensor_offset_misaligned(tmp_path, tiny):
    data = bytearray(tiny[1])
    p = tensor_info_offset(bytes(data), "blk.0.attn_q.weight")
    n_dims = struct.unpack_from("<I", data, p)[0]
    off = struct.unpack_from("<Q", data, p + 4 + 8 * n_dims + 4)[0]
    struct.pack_into("<Q", data, p + 4 + 8 * n_dims + 4, off + 4)
    expect_error(write(tmp_path, bytes(data)), "not aligned")


@pytest.mark.parametrize("dims", [(2**40, 2**40), (0, 64), (2**63 + 5, 1)])
def test_overflowing_or_zero_dims(tmp_path, tiny, dims):
    data = bytearray(tiny[1])
    p = tensor_info_offset(bytes(data), "blk.0.ffn_gate.weight")
    assert struct.unpack_from("<I", data, p)[0] == 2
    struct.pack_into("<QQ", data, p + 4, *dims)
    expect_error(write(tmp_path, bytes(data)), "ffn_gate.weight.*(invalid or overflowing shape|past the end)")


def test_too_many_dims(tmp_path, tiny):
    data = bytearray(tiny[1])
    p = tensor_info_offset(bytes(data), "output_norm.weight")
    struct.pack_into("<I", data, p, 9)
    expect_error(write(tmp_path, bytes(data)), "9 dimensions")


@pytest.mark.parametrize("ttype", [4, 5, 9, 15, 99, 0xFFFFFFFF])
def test_unknown_tensor_type(tmp_path, tiny, ttype):
    data = bytearray(tiny[1])
    p = tensor_info_offset(bytes(data), "output_norm.weight")
    struct.pack_into("<I", data, p + 4 + 8, ttype)
    expect_error(write(tmp_path, bytes(data)), f"output_norm.weight' has unsupported type {ttype}")


def test_unknown_metadata_type(tmp_path, tiny):
    data = bytearray(tiny[1])
    key = b"general.architecture"
    p = data.find(len(key).to_bytes(8, "little") + key) + 8 + len(key)
    struct.pack_into("<I", data, p, 77)
    expect_error(write(tmp_path, bytes(data)), "unknown value type 77")


@pytest.mark.parametrize("missing", ["token_embd.weight", "output_norm.weight", "blk.1.attn_k.weight"])
def test_missing_required_tensor(tmp_path, missing):
    expect_error(write_tiny_llama(tmp_path / "m.gguf", skip_tensors=(missing,)), f"missing required tensor {missing}")


@pytest.mark.parametrize("missing", ["embedding_length", "block_count", "attention.layer_norm_rms_epsilon"])
def test_missing_required_key(tmp_path, missing):
    expect_error(write_tiny_llama(tmp_path / "k.gguf", skip_keys=(missing,)), f"missing required key llama.{missing}")


def test_unsupported_architecture(tmp_path):
    expect_error(write_tiny_llama(tmp_path / "a.gguf", arch="mamba"), "unsupported model architecture 'mamba'")


def test_architecture_table_is_the_native_one():
    from pyllama.gguf_file import ARCHITECTURES
    from pyllama.model_loader import DECODER_ARCHS, ENCODER_ARCHS

    table = _native.architectures()
    assert list(ARCHITECTURES) == [a.name for a in table]
    assert DECODER_ARCHS == ("llama", "mistral", "granite", "smollm3", "qwen2", "qwen3", "gemma3")
    assert ENCODER_ARCHS == ("bert", "nomic-bert", "jina-bert-v2")
    assert {a.name: a.family for a in table}["mistral"] == "llama" and not ARCHITECTURES["bert"].decoder
    assert {a.name: a.positions for a in table if a.encoder} == {
        "bert": "absolute", "nomic-bert": "rope", "jina-bert-v2": "alibi"}
    for name in ("mamba", "t5"):  # the native model accepts exactly the table's rows
        p = _native.ModelParams()
        p.arch, p.n_vocab, p.n_embd, p.n_layer, p.n_head, p.n_head_kv = name, 8, 8, 1, 1, 1
        p.head_dim_k = p.head_dim_v = p.n_rot = 8
        p.n_ff = 8
        with pytest.raises(ValueError, match=f"unsupported model architecture '{name}'"):
            _native.Model(p)
    for a in table:
        p.arch = a.name
        assert _native.Model(p).is_encoder == a.encoder != a.decoder


def test_inconsistent_heads(tmp_path):
    expect_error(write_tiny_llama(tmp_path / "h.gguf", n_head=4, n_head_kv=3), "not a multiple")


def test_random_corruption_never_crashes(tmp_path, tiny):
    """Flip random header bytes: every outcome is a clean open or a ModelLoadError."""
    rng = np.random.default_rng(0)
    base = tiny[1]
    header_end = GGUFFile(tiny[0]).data_offset
    for i in range(1000):
        data = bytearray(base)
        for pos in rng.integers(0, header_end, size=rng.integers(1, 6)):
            data[pos] = rng.integers(0, 256)
        try:
            GGUFFile(write(tmp_path, bytes(data))).hparams
        except ModelLoadError:
            pass
