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
                       rope_freqs: bool = False) -> Path:
    """A random-weight decoder of one of the supported architectures: llama, qwen2
    (Q/K/V biases), qwen3 (Q/K norms) or gemma3 (Q/K norms, post-norms, sliding window)."""
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
