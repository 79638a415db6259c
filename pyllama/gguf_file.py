"""Open a GGUF model file: memory-mapped, validated, with typed hyper-parameters.

The header, metadata and tensor table are parsed by native code (every read bounds
checked); tensor data is never copied: each tensor is a read-only numpy view of
the mapping, handed to the kernels as is.

    with GGUFFile("model.gguf") as f:
        f.architecture, f.metadata["tokenizer.ggml.model"], f.hparams.n_layer
        f.tensors["token_embd.weight"].data   # np.uint8 view, zero-copy
"""

from __future__ import annotations

import mmap
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import _native
from .errors import ModelLoadError

GGML_TYPE_NAMES = {
    0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 10: "Q2_K",
    11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 20: "IQ4_NL", 30: "BF16",
}

# The architectures we know, from the native table (native/models/architectures.cpp):
# name -> its family, whether it has a forward pass, and the tensors it needs.
ARCHITECTURES: dict[str, "_native.Architecture"] = {a.name: a for a in _native.architectures()}


@dataclass(frozen=True)
class TensorInfo:
    """One tensor: shape in ggml order (shape[0] is the row length) and its raw bytes."""

    name: str
    shape: tuple[int, ...]
    type: int
    offset: int  # absolute file offset of the data
    nbytes: int
    data: np.ndarray = field(repr=False)  # (nbytes,) uint8, read-only view of the file

    @property
    def type_name(self) -> str:
        return GGML_TYPE_NAMES.get(self.type, str(self.type))

    @property
    def n_cols(self) -> int:
        return self.shape[0]

    @property
    def n_rows(self) -> int:
        return int(np.prod(self.shape[1:], dtype=np.int64)) if len(self.shape) > 1 else 1


@dataclass(frozen=True)
class HParams:
    """Hyper-parameters of a model, read from `<arch>.*` metadata."""

    arch: str
    family: str  # llama | gemma3 | bert
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_layer: int
    n_head: int
    n_head_kv: int
    n_ff: int
    head_dim_k: int
    head_dim_v: int
    norm_eps: float
    n_rot: int = 0
    rope_freq_base: float = 10000.0
    rope_freq_scale: float = 1.0
    rope_neox: bool = False
    # gemma3: sliding-window layers use their own RoPE base; every n-th layer is global
    sliding_window: int = 0
    swa_pattern: int = 0
    rope_freq_base_swa: float = 10000.0
    final_logit_softcap: float = 0.0
    # `{arch}.pooling_type` (0 none, 1 mean, 2 cls, 3 last, 4 rank); 0 when absent, as llama.cpp
    pooling_type: int = 0
    # bert family
    causal_attention: bool = True


class GGUFFile:
    """A memory-mapped GGUF file. Raises ModelLoadError for anything malformed."""

    def __init__(self, path: str | os.PathLike):
        self.path = os.fspath(path)
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError as e:
            raise ModelLoadError(f"cannot open model file '{self.path}': {e.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                raise ModelLoadError(f"'{self.path}': file is empty, not a GGUF model")
            self._mmap = mmap.mmap(fd, 0, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        try:
            parsed = _native.parse_gguf(self._mmap)
        except _native.GgufError as e:
            raise ModelLoadError(f"'{self.path}': {e}") from None
        self.version: int = parsed["version"]
        self.alignment: int = parsed["alignment"]
        self.data_offset: int = parsed["data_offset"]
        self.metadata: dict[str, Any] = {k: v[2] for k, v in parsed["metadata"].items()}
        self.metadata_types: dict[str, tuple[int, int]] = {k: (v[0], v[1]) for k, v in parsed["metadata"].items()}
        self.tensors: dict[str, TensorInfo] = {}
        whole = np.frombuffer(self._mmap, dtype=np.uint8)
        for name, shape, ttype, off, nbytes in parsed["tensors"]:
            start = self.data_offset + off
            self.tensors[name] = TensorInfo(name, tuple(shape), ttype, start, nbytes, whole[start:start + nbytes])
        self._hparams: HParams | None = None

    # -- metadata helpers -------------------------------------------------
    @property
    def architecture(self) -> str:
        arch = self.metadata.get("general.architecture")
        if not isinstance(arch, str):
            raise ModelLoadError(f"'{self.path}': missing required key general.architecture")
        return arch

    def get(self, key: str, default: Any = None) -> Any:
        return self.metadata.get(key, default)

    def require(self, key: str, kind: type = int) -> Any:
        """A metadata value that must exist and have the given kind (int, float, str, bool)."""
        if key not in self.metadata:
            raise ModelLoadError(f"'{self.path}': missing required key {key}")
        return self.typed(key, kind)

    def optional(self, key: str, kind: type, default: Any) -> Any:
        return self.typed(key, kind) if key in self.metadata else default

    def typed(self, key: str, kind: type) -> Any:
        value = self.metadata[key]
        ok = {
            int: isinstance(value, int) and not isinstance(value, bool),
            float: isinstance(value, (int, float)) and not isinstance(value, bool),
            str: isinstance(value, str),
            bool: isinstance(value, bool),
        }[kind]
        if not ok:
            raise ModelLoadError(f"'{self.path}': key {key} must be {kind.__name__}, got {type(value).__name__}")
        return kind(value)

    def tensor(self, name: str) -> TensorInfo:
        t = self.tensors.get(name)
        if t is None:
            raise ModelLoadError(f"'{self.path}': missing required tensor {name}")
        return t

    # -- hyper-parameters -------------------------------------------------
    @property
    def hparams(self) -> HParams:
        if self._hparams is None:
            self._hparams = read_hparams(self)
        return self._hparams

    def close(self) -> None:
        """Drop the tensor views and unmap (views handed out elsewhere keep it alive)."""
        self.tensors = {}
        try:
            self._mmap.close()
        except BufferError:
            pass  # numpy views still reference the mapping; it is released with them

    def __enter__(self) -> "GGUFFile":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_hparams(f: GGUFFile) -> HParams:
    """Typed hyper-parameters of the file's architecture; checks the tensors it needs."""
    arch = f.architecture
    info = ARCHITECTURES.get(arch)
    if info is None:
        raise ModelLoadError(f"'{f.path}': unsupported model architecture '{arch}'")
    family = info.family
    p = f"{arch}."
    n_embd = f.require(p + "embedding_length")
    n_head = f.require(p + "attention.head_count")
    n_layer = f.require(p + "block_count")
    if min(n_embd, n_head, n_layer) <= 0:
        raise ModelLoadError(f"'{f.path}': embedding_length, head_count and block_count must be positive")
    n_head_kv = f.optional(p + "attention.head_count_kv", int, n_head)
    if n_head_kv <= 0 or n_head % n_head_kv:
        raise ModelLoadError(f"'{f.path}': head_count {n_head} is not a multiple of head_count_kv {n_head_kv}")
    head_k = f.optional(p + "attention.key_length", int, n_embd // n_head)
    head_v = f.optional(p + "attention.value_length", int, n_embd // n_head)
    if head_k <= 0 or head_v <= 0:
        raise ModelLoadError(f"'{f.path}': attention key/value lengths must be positive")
    tokens = f.get("tokenizer.ggml.tokens")
    n_vocab = f.optional(p + "vocab_size", int, len(tokens) if isinstance(tokens, list) else 0)
    common = dict(
        arch=arch, family=family, n_vocab=n_vocab, n_ctx_train=f.require(p + "context_length"),
        n_embd=n_embd, n_layer=n_layer, n_head=n_head, n_head_kv=n_head_kv,
        n_ff=f.require(p + "feed_forward_length"), head_dim_k=head_k, head_dim_v=head_v,
    )
    common["pooling_type"] = f.optional(p + "pooling_type", int, 0)
    if family == "bert":
        hp = HParams(**common, norm_eps=f.require(p + "attention.layer_norm_epsilon", float),
                     causal_attention=f.optional(p + "attention.causal", bool, False),
                     n_rot=f.optional(p + "rope.dimension_count", int, head_k),
                     rope_freq_base=f.optional(p + "rope.freq_base", float, 10000.0),
                     rope_neox=info.rope_neox)
    else:
        scaling = f.optional(p + "rope.scaling.type", str, "none")
        factor = f.optional(p + "rope.scaling.factor", float, 0.0)
        freq_scale = 1.0 / factor if scaling == "linear" and factor > 0 else 1.0
        hp = HParams(
            **common,
            norm_eps=f.require(p + "attention.layer_norm_rms_epsilon", float),
            n_rot=f.optional(p + "rope.dimension_count", int, head_k),
            rope_freq_base=f.optional(p + "rope.freq_base", float, 10000.0),
            rope_freq_scale=freq_scale,
            rope_neox=info.rope_neox,
            sliding_window=f.optional(p + "attention.sliding_window", int, 0),
            swa_pattern=info.swa_period,
            final_logit_softcap=f.optional(p + "final_logit_softcapping", float, 0.0),
        )
    _check_tensors(f, hp)
    return hp


def _layer_tensors(hp: HParams) -> list[str]:
    if hp.family == "bert":  # Q/K/V separate or fused, the FFN's variants: checked by the native model
        return ["attn_output.weight", "attn_output_norm.weight", "ffn_up.weight", "ffn_down.weight",
                "layer_output_norm.weight"]
    names = ["attn_norm.weight", "attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight",
             "ffn_norm.weight", "ffn_gate.weight", "ffn_up.weight", "ffn_down.weight"]
    info = ARCHITECTURES[hp.arch]
    if info.qk_norm:
        names += ["attn_q_norm.weight", "attn_k_norm.weight"]
    if info.post_norms:
        names += ["post_attention_norm.weight", "post_ffw_norm.weight"]
    return names


def _check_tensors(f: GGUFFile, hp: HParams) -> None:
    emb = f.tensor("token_embd.weight")
    if emb.shape[0] != hp.n_embd:
        raise ModelLoadError(f"'{f.path}': token_embd.weight has rows of {emb.shape[0]}, expected {hp.n_embd}")
    f.tensor("token_embd_norm.weight" if hp.family == "bert" else "output_norm.weight")
    q_out = hp.n_head * hp.head_dim_k
    for i in range(hp.n_layer):
        for name in _layer_tensors(hp):
            f.tensor(f"blk.{i}.{name}")
        q = f.tensors.get(f"blk.{i}.attn_q.weight")
        if q is None:  # bert family: fused attn_qkv, checked by the native model
            continue
        if q.shape[:2] != (hp.n_embd, q_out):
            raise ModelLoadError(f"'{f.path}': blk.{i}.attn_q.weight has shape {q.shape}, expected ({hp.n_embd}, {q_out})")
