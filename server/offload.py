"""Per-request work that may take a while (tokenizing a large prompt, rendering a
chat template, converting a JSON schema, parsing a grammar, building a large
answer) runs on gevent's thread pool, so the event loop keeps answering /health
and feeding running streams meanwhile: native tokenization and grammar parsing
release the GIL, and Python code on a worker thread gives the GIL back to the
loop every switch interval.

What that work touches is shared between threads. Who shares what, and how:

    object                              used by                          protected by
    ----------------------------------  -------------------------------  ------------------------------
    Tokenizer (native BPE/SPM/WPM)      worker threads, engine thread    BPE word cache: a mutex; the
                                                                         rest is immutable once built
    Grammar (parsed)                    tasks on the engine thread       immutable
    GrammarVocab and its mask cache     workers (compile), engine        a mutex in the mask cache
    GrammarMatcher / sampler chain      one task, engine thread only     not shared
    DRY breaker sets (sampling.py)      workers compute, engine reads    an LRU under one lock
    parsed schemas / grammars (lru)     worker threads                   functools.lru_cache's lock
    Engine._pending                     greenlets submit, engine admits  an unpatched lock
    model, KV cache, slots              engine thread only               (greenlets only read /slots)
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar("T")


def offload(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) on a worker thread under gevent (its exception re-raised
    here), or directly when gevent has not patched threads (tests, plain WSGI)."""
    try:
        from gevent import get_hub
        from gevent.monkey import is_module_patched
    except ImportError:
        return fn(*args, **kwargs)
    if not is_module_patched("threading"):
        return fn(*args, **kwargs)
    ok, value = get_hub().threadpool.apply(_captured, (fn, args, kwargs))
    if not ok:
        raise value
    return value


def _captured(fn, args, kwargs):
    """The pool would log every exception as a failure; a 400 is an answer, not one."""
    try:
        return True, fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - re-raised on the request's greenlet
        return False, e


def json_response(build: Callable[[], object], status: int = 200, *, inline: bool = False):
    """A JSON response whose body is built and serialised on a worker thread (a
    completion with every token's n_probs candidates can be megabytes), or here when
    the caller knows it is small (inline)."""
    from flask import Response

    from .json_text import dumps

    def dump() -> str:
        return dumps(build(), separators=(",", ":"))

    return Response(dump() if inline else offload(dump), status=status, mimetype="application/json")
