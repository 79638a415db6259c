"""Control vectors (llama.cpp's --control-vector, --control-vector-scaled,
--control-vector-layer-range): GGUF files of F32 `direction.N` tensors (N >= 1, one
row of n_embd each). The rows of every file, times its scale, are summed per layer;
the row of layer N is added to that layer's output for every token. Layer 0 never
has one; the range (inclusive; 0 or less: from layer 1, to the last layer) limits
the layers that get theirs."""

from __future__ import annotations

import os
import re
from typing import Sequence

import numpy as np

from .errors import ModelLoadError
from .gguf_file import GGUFFile

F32 = 0
_NAME = re.compile(r"direction\.(\d+)")


def load(files: Sequence[tuple[str | os.PathLike, float]], n_layer: int, n_embd: int,
         layer_start: int = 0, layer_end: int = 0) -> np.ndarray:
    """(n_layer, n_embd) float32: what is added to each layer's output."""
    out = np.zeros((n_layer, n_embd), np.float32)
    for path, scale in files:
        with GGUFFile(path) as f:
            found = False
            for name, t in f.tensors.items():
                m = _NAME.fullmatch(name)
                if m is None or int(m.group(1)) == 0:
                    raise ModelLoadError(f"control vector '{path}': invalid direction tensor name {name!r} "
                                         f"(direction.N, N >= 1)")
                if t.type != F32 or len(t.shape) != 1:
                    raise ModelLoadError(f"control vector '{path}': {name} must be a one-dimensional F32 tensor")
                if t.shape[0] != n_embd:
                    raise ModelLoadError(f"control vector '{path}': {name} has {t.shape[0]} values, the model's "
                                         f"rows have {n_embd}")
                layer = int(m.group(1))
                if layer < n_layer:  # as llama.cpp: directions past the last layer are ignored
                    out[layer] += np.asarray(t.data).view(np.float32) * np.float32(scale)
                found = True
            if not found:
                raise ModelLoadError(f"control vector '{path}': no direction tensors")
    start = layer_start if layer_start > 0 else 1
    end = layer_end if layer_end > 0 else n_layer
    out[:start] = 0.0
    out[end + 1:] = 0.0
    return out


def parse_specs(plain: Sequence[str], scaled: Sequence[str]) -> list[tuple[str, float]]:
    """--control-vector FNAME[,FNAME...] (scale 1) and --control-vector-scaled FNAME:SCALE[,...];
    ValueError for a scale that is not a number."""
    out = [(p.strip(), 1.0) for item in plain for p in item.split(",") if p.strip()]
    for item in scaled:
        for part in (p.strip() for p in item.split(",") if p.strip()):
            path, colon, scale = part.rpartition(":")
            if not colon or not path:
                raise ValueError(f"--control-vector-scaled: {part!r} is not FNAME:SCALE")
            try:
                out.append((path, float(scale)))
            except ValueError:
                raise ValueError(f"--control-vector-scaled: {scale!r} is not a number") from None
    return out
