"""The standard library's own primitives when gevent has monkey-patched them.

Code that runs on real OS threads (the engine thread, the model loader, request
work offloaded to gevent's thread pool) must lock and wait with these: a patched
lock or sleep belongs to one thread's event loop and is not safe across threads."""

from __future__ import annotations

import contextlib
import importlib


def original(module: str, name: str):
    """The unpatched `module.name` (the stdlib's own when gevent is absent)."""
    try:
        from gevent import monkey
    except ImportError:  # gevent absent: the stdlib is the original
        return getattr(importlib.import_module(module), name)
    return monkey.get_original(module, name)


# What third-party imports use at import time that gevent's patching takes away:
# trio (imported by huggingface_hub's HTTP stack) reads select.epoll in a class body and
# runs ctypes.util.find_library, a subprocess, which gevent's Popen refuses off the main
# thread's loop ("child watchers are only available on the default loop").
_IMPORT_TIME = ("select", "subprocess")
_import_lock = None


@contextlib.contextmanager
def stdlib_for_import():
    """While importing a package that probes the OS at import time: the stdlib's own
    `select` and `subprocess` (every attribute gevent replaced), put back afterwards.
    One such import at a time (the swap is process-wide: a greenlet starting a child
    meanwhile gets the stdlib's blocking Popen); nothing when gevent has patched nothing."""
    global _import_lock
    try:
        from gevent import monkey
    except ImportError:
        yield
        return
    if _import_lock is None:
        _import_lock = monkey.get_original("threading", "Lock")()
    with _import_lock:
        saved = []
        for module in _IMPORT_TIME:
            mod = importlib.import_module(module)
            for name, value in monkey.saved.get(module, {}).items():
                saved.append((mod, name, getattr(mod, name, _MISSING)))
                setattr(mod, name, value)
        try:
            yield
        finally:
            for mod, name, value in reversed(saved):
                if value is _MISSING:
                    delattr(mod, name)
                else:
                    setattr(mod, name, value)


_MISSING = object()
