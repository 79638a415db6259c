"""Small GGUF files written with gguf.GGUFWriter, for loader tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGMLQuantizationType as T
import gguf
from gguf import GGUFWriter


def write_tiny_llama(path: Path, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_head_kv: int = 2,
                     n_ff: int = 128, n_vocab: int = 32, skip_tensors: tuple[str, ...] = (),
                     skip_keys: tuple[str, ...] = (), arch: str = "llama") -> Path:
    rng = np.random.default_rng(0)
    w = GGUFWriter(str(path), arch)
    keys = {
        "context_length": (w.add_context_length, 256),
        "embedding_length": (w.add_embedding_length, n_embd),
        "block_count": (w.add_block_count, n_layer),
        "feed_forward_length": (w.add_feed_forward_length, n_ff),
        "attention.head_count": (w.add_head_count, n_head),
        "attention.head_count_kv": (w.add_head_count_kv, n_head_kv),
        "attention.layer_norm_rms_epsilon": (w.add_layer_norm_rms_eps, 1e-5),
    }
    for key, (fn, value) in keys.items():
        if key not in skip_keys:
            fn(value)
    w.add_tokenizer_model("gpt2")
    w.add_token_list([f"t{i}" for i in range(n_vocab)])
    hd = n_embd // n_head

    def add(name: str, shape: tuple[int, ...]):  # numpy shape: (rows, cols)
        if name not in skip_tensors:
            w.add_tensor(name, rng.standard_normal(shape).astype(np.float32))

    add("token_embd.weight", (n_vocab, n_embd))
    add("output_norm.weight", (n_embd,))
    for i in range(n_layer):
        add(f"blk.{i}.attn_norm.weight", (n_embd,))
        add(f"blk.{i}.attn_q.weight", (n_head * hd, n_embd))
        add(f"blk.{i}.attn_k.weight", (n_head_kv * hd, n_embd))
        add(f"blk.{i}.attn_v.weight", (n_head_kv * hd, n_embd))
        add(f"blk.{i}.attn_output.weight", (n_embd, n_head * hd))
        add(f"blk.{i}.ffn_norm.weight", (n_embd,))
        add(f"blk.{i}.ffn_gate.weight", (n_ff, n_embd))
        add(f"blk.{i}.ffn_up.weight", (n_ff, n_embd))
        add(f"blk.{i}.ffn_down.weight", (n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_tiny_bert(path: Path, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4, n_ff: int = 128,
                    n_vocab: int = 40) -> Path:
    rng = np.random.default_rng(1)
    w = GGUFWriter(str(path), "bert")
    w.add_context_length(128)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)
    w.add_tokenizer_model("bert")
    w.add_token_list([f"t{i}" for i in range(n_vocab)])

    def add(name: str, shape: tuple[int, ...]):
        w.add_tensor(name, rng.standard_normal(shape).astype(np.float16 if len(shape) == 2 else np.float32))

    add("token_embd.weight", (n_vocab, n_embd))
    add("position_embd.weight", (128, n_embd))
    add("token_types.weight", (2, n_embd))
    add("token_embd_norm.weight", (n_embd,))
    add("token_embd_norm.bias", (n_embd,))
    for i in range(n_layer):
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            add(f"blk.{i}.{name}.weight", (n_embd, n_embd))
            add(f"blk.{i}.{name}.bias", (n_embd,))
        for name in ("attn_output_norm", "layer_output_norm"):
            add(f"blk.{i}.{name}.weight", (n_embd,))
            add(f"blk.{i}.{name}.bias", (n_embd,))
        add(f"blk.{i}.ffn_up.weight", (n_ff, n_embd))
        add(f"blk.{i}.ffn_up.bias", (n_ff,))
        add(f"blk.{i}.ffn_down.weight", (n_embd, n_ff))
        add(f"blk.{i}.ffn_down.bias", (n_embd,))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def tensor_info_offset(data: bytes, name: str) -> int:
    """Byte offset just past a tensor's name in the tensor table (where n_dims starts)."""
    needle = len(name).to_bytes(8, "little") + name.encode()
    pos = data.rfind(needle)
    assert pos >= 0, name
    return pos + len(needle)


__all__ = ["T", "tensor_info_offset", "write_tiny_bert", "write_tiny_llama"]


def write_tiny_decoder(path: Path, arch: str, *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4,
                       n_head_kv: int = 2, head_dim: int = 32, n_ff: int = 96, n_vocab: int = 48,
                       sliding_window: int = 4, weight_type: T = T.F32, seed: int = 0, tied: bool = False,
                       rope_freqs: bool = False, rope_scaling: dict | None = None) -> Path:
    """A random-weight decoder of one of the supported architectures: llama, qwen2
    (Q/K/V biases), qwen3 (Q/K norms) or gemma3 (Q/K norms, post-norms, sliding window).
    rope_scaling: `{arch}.rope.scaling.*` keys to write (type, factor, original_context_length, ...)."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), arch)
    w.add_context_length(512)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_head_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0 if arch != "gemma3" else 1000000.0)
    if arch == "gemma3":
        w.add_sliding_window(sliding_window)
    for key, value in (rope_scaling or {}).items():
        if isinstance(value, str):
            w.add_string(f"{arch}.rope.scaling.{key}", value)
        elif isinstance(value, int):
            w.add_uint32(f"{arch}.rope.scaling.{key}", value)
        else:
            w.add_float32(f"{arch}.rope.scaling.{key}", value)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("default")
    w.add_token_list([f"t{i}" for i in range(n_vocab)])
    w.add_token_types([1] * n_vocab)
    w.add_token_merges(["t 1"])
    w.add_eos_token_id(n_vocab - 1)

    def add(name: str, shape: tuple[int, ...], *, norm: bool = False):
        if norm:
            arr = (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32)
            w.add_tensor(name, arr)
            return
        arr = (rng.standard_normal(shape) / np.sqrt(shape[-1])).astype(np.float32)
        if len(shape) == 1:
            w.add_tensor(name, arr * 0.5)
        elif weight_type == T.F32:
            w.add_tensor(name, arr)
        elif weight_type == T.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, weight_type), raw_dtype=weight_type)

    add("token_embd.weight", (n_vocab, n_embd))
    add("output_norm.weight", (n_embd,), norm=True)
    if rope_freqs:  # Llama 3.1 style: low frequencies stretched
        w.add_tensor("rope_freqs.weight", np.geomspace(1.0, 8.0, head_dim // 2).astype(np.float32))
    if not tied and arch != "gemma3":
        add("output.weight", (n_vocab, n_embd))
    for i in range(n_layer):
        b = f"blk.{i}."
        add(b + "attn_norm.weight", (n_embd,), norm=True)
        add(b + "attn_q.weight", (n_head * head_dim, n_embd))
        add(b + "attn_k.weight", (n_head_kv * head_dim, n_embd))
        add(b + "attn_v.weight", (n_head_kv * head_dim, n_embd))
        add(b + "attn_output.weight", (n_embd, n_head * head_dim))
        if arch == "qwen2":
            add(b + "attn_q.bias", (n_head * head_dim,))
            add(b + "attn_k.bias", (n_head_kv * head_dim,))
            add(b + "attn_v.bias", (n_head_kv * head_dim,))
        if arch in ("qwen3", "gemma3"):
            add(b + "attn_q_norm.weight", (head_dim,), norm=True)
            add(b + "attn_k_norm.weight", (head_dim,), norm=True)
        if arch == "gemma3":
            add(b + "post_attention_norm.weight", (n_embd,), norm=True)
            add(b + "post_ffw_norm.weight", (n_embd,), norm=True)
        add(b + "ffn_norm.weight", (n_embd,), norm=True)
        add(b + "ffn_gate.weight", (n_ff, n_embd))
        add(b + "ffn_up.weight", (n_ff, n_embd))
        add(b + "ffn_down.weight", (n_embd, n_ff))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


__all__ += ["write_tiny_decoder"]


def write_tiny_encoder(path: Path, arch: str = "bert", *, n_layer: int = 2, n_embd: int = 64, n_head: int = 4,
                       n_ff: int = 96, n_vocab: int = 48, n_pos: int = 64, weight_type: T = T.F32, seed: int = 0,
                       jina_ffn: str = "gate", qk_norm: bool = False, attn_norm_2: bool = False,
                       fused_qkv: bool | None = None, head: int = 0, pooling: int = gguf.PoolingType.MEAN,
                       skip_tensors: tuple[str, ...] = (), shapes: dict[str, tuple[int, ...]] | None = None) -> Path:
    """A random-weight encoder of the BERT family: bert (absolute positions), nomic-bert
    (fused QKV, RoPE, SwiGLU) or jina-bert-v2 (ALiBi; jina_ffn "gate" = gelu(gate) * up,
    "fused" = GEGLU over an up of 2 n_ff rows, "plain" = GELU; optional Q/K LayerNorms and
    second attention norm). head > 0 adds a classifier (cls (n_embd, n_embd) then cls.output
    (head, n_embd)); head < 0 adds cls alone of -head rows (jina-reranker style). `shapes`
    overrides a tensor's numpy shape (to write a malformed file)."""
    rng = np.random.default_rng(seed)
    w = GGUFWriter(str(path), arch)
    w.add_context_length(n_pos)
    w.add_embedding_length(n_embd)
    w.add_block_count(n_layer)
    w.add_feed_forward_length(n_ff)
    w.add_head_count(n_head)
    w.add_layer_norm_eps(1e-12)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType(pooling))
    if arch == "nomic-bert":
        w.add_rope_freq_base(1000.0)
    w.add_tokenizer_model("bert")
    w.add_token_list(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(n_vocab - 5)])
    w.add_token_types([3, 2, 3, 3, 3] + [1] * (n_vocab - 5))
    w.add_bos_token_id(2)
    w.add_sep_token_id(3)
    w.add_unk_token_id(1)
    w.add_pad_token_id(0)
    w.add_mask_token_id(4)
    w.add_token_type_count(2)
    shapes = shapes or {}

    def add(name: str, shape: tuple[int, ...], *, norm: bool = False, scale: float = 1.0):
        if name in skip_tensors:
            return
        shape = shapes.get(name, shape)
        if norm:
            w.add_tensor(name, (1.0 + 0.1 * rng.standard_normal(shape)).astype(np.float32))
            return
        arr = (rng.standard_normal(shape) * scale / np.sqrt(shape[-1])).astype(np.float32)
        if len(shape) == 1:
            w.add_tensor(name, (arr * 0.5 * np.sqrt(shape[-1]) / 4).astype(np.float32))
        elif weight_type == T.F32 or name in ("position_embd.weight", "token_types.weight"):
            w.add_tensor(name, arr)
        elif weight_type == T.F16:
            w.add_tensor(name, arr.astype(np.float16))
        else:
            w.add_tensor(name, gguf.quants.quantize(arr, weight_type), raw_dtype=weight_type)

    add("token_embd.weight", (n_vocab, n_embd), scale=8.0)
    add("token_types.weight", (2, n_embd), scale=8.0)
    if arch == "bert":
        add("position_embd.weight", (n_pos, n_embd), scale=8.0)
    add("token_embd_norm.weight", (n_embd,), norm=True)
    add("token_embd_norm.bias", (n_embd,))
    fused = arch == "nomic-bert" if fused_qkv is None else fused_qkv
    biases = arch != "nomic-bert"
    for i in range(n_layer):
        b = f"blk.{i}."
        if fused:
            add(b + "attn_qkv.weight", (3 * n_embd, n_embd))
            if biases:
                add(b + "attn_qkv.bias", (3 * n_embd,))
        else:
            for t in ("attn_q", "attn_k", "attn_v"):
                add(b + t + ".weight", (n_embd, n_embd))
                if biases:
                    add(b + t + ".bias", (n_embd,))
        if qk_norm:
            for t in ("attn_q_norm", "attn_k_norm"):
                add(b + t + ".weight", (n_embd,), norm=True)
                add(b + t + ".bias", (n_embd,))
        add(b + "attn_output.weight", (n_embd, n_embd))
        if biases:
            add(b + "attn_output.bias", (n_embd,))
        add(b + "attn_output_norm.weight", (n_embd,), norm=True)
        add(b + "attn_output_norm.bias", (n_embd,))
        if attn_norm_2:
            add(b + "attn_norm_2.weight", (n_embd,), norm=True)
            add(b + "attn_norm_2.bias", (n_embd,))
        gated = arch == "nomic-bert" or (arch == "jina-bert-v2" and jina_ffn == "gate")
        n_up = 2 * n_ff if arch == "jina-bert-v2" and jina_ffn == "fused" else n_ff
        if gated:
            add(b + "ffn_gate.weight", (n_ff, n_embd))
        add(b + "ffn_up.weight", (n_up, n_embd))
        add(b + "ffn_down.weight", (n_embd, n_ff))
        if biases:
            add(b + "ffn_up.bias", (n_up,))
            add(b + "ffn_down.bias", (n_embd,))
        add(b + "layer_output_norm.weight", (n_embd,), norm=True)
        add(b + "layer_output_norm.bias", (n_embd,))
    if head > 0:
        add("cls.weight", (n_embd, n_embd))
        add("cls.bias", (n_embd,))
        add("cls.output.weight", (head, n_embd))
        add("cls.output.bias", (head,))
    elif head < 0:
        add("cls.weight", (-head, n_embd))
        add("cls.bias", (-head,))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_reranker_from(src: Path, dst: Path, *, seed: int = 0, rerank_template: str | None = None) -> Path:
    """A copy of an encoder GGUF (all its metadata and weights) with a random classifier head
    (cls.weight (n_embd, n_embd), cls.bias, cls.output.weight (1, n_embd), cls.output.bias)
    and pooling_type rank; optionally a tokenizer.chat_template.rerank."""
    from pyllama.gguf_file import GGUFFile

    rng = np.random.default_rng(seed)
    with GGUFFile(src) as f:
        arch = f.architecture
        w = GGUFWriter(str(dst), arch)
        for key, value in f.metadata.items():
            if key in ("general.architecture", f"{arch}.pooling_type") or key.startswith("GGUF."):
                continue
            vtype, sub = f.metadata_types[key]
            vtype = gguf.GGUFValueType(vtype)
            if vtype == gguf.GGUFValueType.ARRAY:
                w.add_key_value(key, list(value), vtype, gguf.GGUFValueType(sub))
            else:
                w.add_key_value(key, value, vtype)
        w.add_pooling_type(gguf.PoolingType.RANK)
        if rerank_template is not None:
            w.add_key_value("tokenizer.chat_template.rerank", rerank_template, gguf.GGUFValueType.STRING)
        dtypes = {0: np.float32, 1: np.float16}
        for name, t in f.tensors.items():
            arr = np.frombuffer(bytes(t.data), dtype=dtypes[t.type]).reshape(tuple(reversed(t.shape)))
            w.add_tensor(name, arr)
        n = f.hparams.n_embd
        w.add_tensor("cls.weight", (rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float16))
        w.add_tensor("cls.bias", (0.1 * rng.standard_normal(n)).astype(np.float32))
        w.add_tensor("cls.output.weight", (rng.standard_normal((1, n)) / np.sqrt(n)).astype(np.float16))
        w.add_tensor("cls.output.bias", np.array([0.05], dtype=np.float32))
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return dst


__all__ += ["write_reranker_from", "write_tiny_encoder"]
