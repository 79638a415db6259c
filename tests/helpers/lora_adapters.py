"""GGUF LoRA adapters for tests, written with gguf.GGUFWriter in llama.cpp's layout:
general.type = adapter, adapter.type = lora, adapter.lora.alpha, and per adapted
weight W (n_out, n_in) the tensors <W>.lora_a (numpy (r, n_in)) and <W>.lora_b
(numpy (n_out, r))."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from gguf import GGUFWriter

from pyllama.gguf_file import GGUFFile


def weight_shapes(model_path, names) -> dict[str, tuple[int, int]]:
    """numpy (n_out, n_in) of some weights of a GGUF model."""
    with GGUFFile(model_path) as f:
        return {n: (f.tensors[n].shape[1], f.tensors[n].shape[0]) for n in names}


def random_pairs(shapes: dict[str, tuple[int, int]], *, rank: int = 8, seed: int = 0, scale_a: float = 0.05,
                 scale_b: float = 0.05) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """name -> (A (r, n_in), B (n_out, r)), float32."""
    rng = np.random.default_rng(seed)
    return {n: (rng.normal(0, scale_a, (rank, n_in)).astype(np.float32),
                rng.normal(0, scale_b, (n_out, rank)).astype(np.float32)) for n, (n_out, n_in) in shapes.items()}


def write_lora(path: Path, pairs: dict[str, tuple[np.ndarray, np.ndarray]], *, arch: str = "llama",
               alpha: float | None = None, dtype=np.float32, general_type: str = "adapter",
               adapter_type: str = "lora", skip: tuple[str, ...] = ()) -> Path:
    """An adapter file; `skip` leaves out tensors by full name (e.g. "x.lora_b")."""
    w = GGUFWriter(str(path), arch)
    w.add_string("general.type", general_type)
    w.add_string("adapter.type", adapter_type)
    if alpha is not None:
        w.add_float32("adapter.lora.alpha", alpha)
    for name, (a, b) in pairs.items():
        for half, arr in (("lora_a", a), ("lora_b", b)):
            full = f"{name}.{half}"
            if full not in skip:
                w.add_tensor(full, np.ascontiguousarray(arr.astype(dtype)))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def merged(pairs, scale: float, alpha: float | None = None, dtype=np.float32) -> dict[str, np.ndarray]:
    """name -> s' B A in float64 (A and B rounded to `dtype` as the file stores them)."""
    out = {}
    for name, (a, b) in pairs.items():
        a64, b64 = a.astype(dtype).astype(np.float64), b.astype(dtype).astype(np.float64)
        s = scale * alpha / a.shape[0] if alpha else scale
        out[name] = s * (b64 @ a64)
    return out
