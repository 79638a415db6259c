"""What llama.cpp can do to a model file at load besides reading it: metadata
overrides (--override-kv), a scan for invalid values (--check-tensors), and
locking the mapping in RAM (--mlock)."""

from __future__ import annotations

import ctypes
import logging
import math
from typing import Any, Mapping

import numpy as np

from . import _native
from .errors import ModelLoadError

log = logging.getLogger(__name__)

_KINDS = {bool: "bool", int: "int", float: "float", str: "str"}


def kind_of(value: Any) -> str | None:
    return _KINDS.get(type(value))


def apply_overrides(gguf, overrides: Mapping[str, Any]) -> None:
    """Replace metadata values before anything reads them. As llama.cpp, an override of a
    key the file holds with another type is an error (bool, int, float, str)."""
    for key, value in overrides.items():
        kind = kind_of(value)
        if kind is None:
            raise ModelLoadError(f"metadata override {key}: values are int, float, bool or str")
        if key in gguf.metadata:
            have = kind_of(gguf.metadata[key])
            if have is not None and have != kind:
                raise ModelLoadError(f"'{gguf.path}': bad metadata override for key {key}: the model's value is "
                                     f"{have}, the override is {kind}")
        log.info("metadata override: %s = %s:%r", key, kind, value)
        gguf.metadata[key] = value
    if overrides:
        gguf._hparams = None  # derived from the metadata: read again


F32, F16, BF16 = 0, 1, 30
CHUNK = 1 << 20  # values dequantized at a time


def check_tensors(gguf) -> None:
    """ModelLoadError naming the first tensor holding a NaN or an infinite value (every
    value is dequantized and looked at; llama.cpp's --check-tensors)."""
    for name, t in gguf.tensors.items():
        bad = _first_bad(t)
        if bad is not None:
            raise ModelLoadError(f"'{gguf.path}': tensor '{name}' has invalid data: {bad} (--check-tensors)")


def _first_bad(t) -> str | None:
    if t.type == F32:
        return _bad_values(np.asarray(t.data).view(np.float32))
    if t.type == F16:
        return _bad_values(np.asarray(t.data).view(np.float16))
    row_bytes = t.nbytes // t.n_rows if t.n_rows else t.nbytes
    rows_per = max(1, CHUNK // max(t.n_cols, 1))
    for r0 in range(0, t.n_rows, rows_per):
        r1 = min(t.n_rows, r0 + rows_per)
        data = t.data[r0 * row_bytes:r1 * row_bytes]
        try:
            values = _native.dequantize(data, t.type, (r1 - r0) * t.n_cols)
        except (ValueError, RuntimeError) as e:
            return f"cannot be read ({e})"
        bad = _bad_values(np.asarray(values, dtype=np.float32))
        if bad is not None:
            return bad
    return None


def _bad_values(x: np.ndarray) -> str | None:
    finite = np.isfinite(x)
    if finite.all():
        return None
    i = int(np.argmin(finite))
    v = float(x.reshape(-1)[i])
    return f"{'NaN' if math.isnan(v) else v} at element {i}"


def lock_in_ram(gguf) -> str | None:
    """mlock the file's mapping; a warning text when the OS refuses (RLIMIT_MEMLOCK), as
    llama.cpp warns and goes on."""
    try:  # the process's own symbols hold the C library's (no find_library: it may spawn a process)
        libc = ctypes.CDLL(None, use_errno=True)
        mlock = libc.mlock
    except (OSError, AttributeError):
        return "cannot lock the model in RAM: mlock is not available"
    buf = np.frombuffer(gguf._mmap, dtype=np.uint8)
    addr, size = buf.ctypes.data, buf.nbytes
    if mlock(ctypes.c_void_p(addr), ctypes.c_size_t(size)) != 0:
        import os
        err = ctypes.get_errno()
        return (f"failed to mlock {size / 2**20:.0f} MiB of the model: {os.strerror(err)} (try raising "
                f"'ulimit -l')")
    log.info("the model (%.0f MiB) is locked in RAM", size / 2**20)
    return None
