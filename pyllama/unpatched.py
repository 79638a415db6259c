"""The standard library's own primitives when gevent has monkey-patched them.

Code that runs on real OS threads (the engine thread, the model loader, request
work offloaded to gevent's thread pool) must lock and wait with these: a patched
lock or sleep belongs to one thread's event loop and is not safe across threads."""

from __future__ import annotations

import importlib


def original(module: str, name: str):
    """The unpatched `module.name` (the stdlib's own when gevent is absent)."""
    try:
        from gevent import monkey
    except ImportError:  # gevent absent: the stdlib is the original
        return getattr(importlib.import_module(module), name)
    return monkey.get_original(module, name)
