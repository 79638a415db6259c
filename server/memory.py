"""The C allocator's settings for a long-running server (glibc only).

A completion with every token's n_probs candidates builds megabytes of text on a
worker thread and frees it a moment later. With glibc's defaults that memory is
not given back: the mmap threshold rises to the size of the largest block freed
(so the next such block comes from a heap arena and stays there), and every thread
gets an arena of its own. The process's RSS then grows with each distinct burst.
Here blocks of 256 KiB and more are always mapped on their own (returned to the
system when freed) and the arenas are limited to two."""

from __future__ import annotations

import ctypes
import functools
import ctypes.util
import logging

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
MMAP_THRESHOLD = 256 << 10
ARENA_MAX = 2

log = logging.getLogger(__name__)
_done = False


def tune_malloc() -> bool:
    """Apply the settings once per process; False where the C library is not glibc."""
    global _done
    if _done:
        return True
    try:
        mallopt = _libc().mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    ok = all(mallopt(k, v) == 1 for k, v in ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD),
                                               (M_ARENA_MAX, ARENA_MAX)))
    if not ok:
        log.debug("mallopt refused a setting; the allocator keeps its defaults")
    _done = True
    return ok


@functools.cache
def _libc() -> ctypes.CDLL:
    # find_library runs ldconfig in a subprocess: once, at start-up (tune_malloc), never
    # again on a worker thread (gevent cannot watch a child from there)
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")


def trim() -> bool:
    """Give the heap's free memory back to the system (glibc's malloc_trim); False elsewhere."""
    try:
        return bool(_libc().malloc_trim(0))
    except (OSError, AttributeError):
        return False
