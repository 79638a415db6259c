"""LoRA adapters in llama.cpp's GGUF format (`general.type = adapter`,
`adapter.type = lora`): for a weight W (n_out, n_in) of the base model, the
tensors `<W name>.lora_a` (ggml shape [n_in, r]) and `<W name>.lora_b` ([r, n_out]).
At scale s an adapted layer computes, in native code, as llama.cpp does:

    y = W x + s' B (A x),      s' = s * alpha / r   (s' = s when adapter.lora.alpha is 0 or absent)

Which adapters a sequence uses, and at which scale, is set per sequence on the
context (Llama.set_lora_scales), so sequences with different adapters share a batch.

    llm = Llama("base.gguf")
    i = llm.load_lora("adapter.gguf")          # attached at scale 0 for every sequence
    llm.set_lora_scales(0, {i: 1.0})           # sequence 0 applies it at 1.0
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass

import numpy as np

from . import _native
from .errors import ModelLoadError
from .gguf_file import GGML_TYPE_NAMES, GGUFFile

# What an adapter may adapt: the base tensor's name (after "blk.N.") -> the native role
LAYER_ROLES = {"attn_q.weight": "wq", "attn_k.weight": "wk", "attn_v.weight": "wv", "attn_output.weight": "wo",
               "ffn_gate.weight": "gate", "ffn_up.weight": "up", "ffn_down.weight": "down"}
# The types the A and B matrices may have (the matmul kernels take both as weights)
LORA_TYPES = {0: "F32", 1: "F16"}
_NAME = re.compile(r"(.+)\.lora_([ab])")
_BLOCK = re.compile(r"blk\.(\d+)\.(.+)")


class LoraLoadError(ModelLoadError):
    """A LoRA adapter file that cannot be used with this model; the message says why."""


@dataclass
class LoraInfo:
    """What the server reports of a loaded adapter (llama-server's GET /lora-adapters)."""

    id: int
    path: str
    alpha: float
    n_pairs: int                 # matrices adapted
    task_name: str = ""          # adapter.lora.task_name
    prompt_prefix: str = ""      # adapter.lora.prompt_prefix
    fingerprint: str = ""        # sha256 of the adapter's metadata and tensors: what a KV cache built with it depends on


def load_adapter(path: str | os.PathLike, model: "_native.Model", base: GGUFFile) -> tuple[object, GGUFFile, LoraInfo]:
    """(native adapter, its open file, info) for a GGUF LoRA adapter of the model read
    from `base`. The native adapter borrows the file's tensors: keep the file open as
    long as the adapter lives. Raises LoraLoadError naming the problem."""
    path = os.fspath(path)
    try:
        f = GGUFFile(path)
    except ModelLoadError as e:
        raise LoraLoadError(f"LoRA adapter: {e}") from None
    try:
        adapter, info = _build(f, model, base)
    except BaseException:
        f.close()
        raise
    return adapter, f, info


def _build(f: GGUFFile, model, base: GGUFFile) -> tuple[object, LoraInfo]:
    where = f"LoRA adapter '{f.path}'"
    kind = f.get("general.type")
    if kind != "adapter":
        raise LoraLoadError(f"{where}: general.type is {kind!r}, expected 'adapter' (is it a model rather than an "
                            f"adapter?)")
    adapter_type = f.get("adapter.type")
    if adapter_type != "lora":
        raise LoraLoadError(f"{where}: adapter.type is {adapter_type!r}; only 'lora' adapters are supported")
    if f.get("adapter.alora.invocation_tokens") is not None:
        raise LoraLoadError(f"{where}: activated LoRA (adapter.alora.*) is not supported")
    arch, base_arch = f.get("general.architecture"), base.architecture
    if arch != base_arch:
        raise LoraLoadError(f"{where}: made for architecture {arch!r}, the model is {base_arch!r}")
    alpha = f.get("adapter.lora.alpha", 0.0)
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not np.isfinite(alpha):
        raise LoraLoadError(f"{where}: adapter.lora.alpha must be a number")
    hp = base.hparams
    native = _native.LoraAdapter(hp.n_layer, alpha=float(alpha))
    halves: dict[str, set[str]] = {}
    for name, t in f.tensors.items():
        m = _NAME.fullmatch(name)
        if m is None:
            raise LoraLoadError(f"{where}: tensor {name} is not a LoRA tensor (<weight>.lora_a / .lora_b)")
        target, half = m.group(1), m.group(2)
        if target not in base.tensors:
            raise LoraLoadError(f"{where}: tensor {name} adapts {target}, which the model does not have "
                                f"(an adapter for another base model?)")
        layer, role = _role(target)
        if role is None:
            raise LoraLoadError(f"{where}: tensor {name}: adapting {target} is not supported (only attention and "
                                f"feed-forward matrices and output.weight)")
        if t.type not in LORA_TYPES:
            raise LoraLoadError(f"{where}: tensor {name} is {GGML_TYPE_NAMES.get(t.type, t.type)}; LoRA tensors "
                                f"must be F32 or F16")
        if len(t.shape) != 2:
            raise LoraLoadError(f"{where}: tensor {name} has {len(t.shape)} dimensions, expected 2")
        halves.setdefault(target, set()).add(half)
        try:
            native.set_tensor(role, layer, half, t.data, t.type, t.n_rows, t.n_cols)
        except ValueError as e:
            raise LoraLoadError(f"{where}: {name}: {e}") from None
    for target, got in halves.items():
        if got != {"a", "b"}:
            missing = "lora_b" if "a" in got else "lora_a"
            raise LoraLoadError(f"{where}: {target}.{missing} is missing")
    if not halves:
        raise LoraLoadError(f"{where}: the file holds no LoRA tensors")
    try:
        native.finalize(model)
    except ValueError as e:
        raise LoraLoadError(f"{where}: {e}") from None
    task_name = f.get("adapter.lora.task_name", "")
    prefix = f.get("adapter.lora.prompt_prefix", "")
    info = LoraInfo(id=-1, path=f.path, alpha=float(alpha), n_pairs=native.n_pairs,
                    task_name=task_name if isinstance(task_name, str) else "",
                    prompt_prefix=prefix if isinstance(prefix, str) else "", fingerprint=_fingerprint(f))
    return native, info


def _role(target: str) -> tuple[int, str | None]:
    if target == "output.weight":
        return -1, "output"
    m = _BLOCK.fullmatch(target)
    if m is None:
        return -1, None
    return int(m.group(1)), LAYER_ROLES.get(m.group(2))


def _fingerprint(f: GGUFFile) -> str:
    """sha256 of alpha and every tensor (name, type, shape, bytes): adapters are small."""
    h = hashlib.sha256()
    h.update(repr(f.get("adapter.lora.alpha", 0.0)).encode())
    for name in sorted(f.tensors):
        t = f.tensors[name]
        h.update(f"{name}:{t.type}:{t.shape}".encode())
        h.update(memoryview(t.data))
    return h.hexdigest()
