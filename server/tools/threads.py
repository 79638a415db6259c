"""Blocking file work of the tools (reading, walking, matching) on a thread pool of
their own, so the event loop keeps serving meanwhile and a busy tool never takes
the threads that requests to the model use (server/offload.py's pool)."""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")

POOL_SIZE = 4
_pool = None


def in_thread(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) on the tools' pool (its exception re-raised here)."""
    global _pool
    try:
        from gevent.threadpool import ThreadPool
    except ImportError:
        return fn(*args, **kwargs)
    if _pool is None:
        _pool = ThreadPool(POOL_SIZE)
    ok, value = _pool.apply(_captured, (fn, args, kwargs))
    if not ok:
        raise value
    return value


def _captured(fn, args, kwargs):
    try:
        return True, fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - re-raised on the caller's greenlet
        return False, e
