"""Running tasks from a request greenlet: submit to the engine, wait on a channel,
cancel on the way out (a closed stream or a finished response)."""

from __future__ import annotations

import queue
import time
from typing import Callable, Iterator

from pyllama.engine import ErrorEvent, FinalEvent, Task, TaskRequest
from pyllama.engine.bridge import Channel
from pyllama.errors import PyllamaError

from .errors import api_error


POLL_S = 0.25  # how often a waiting request checks that its client is still there
PING = object()  # yielded as (-1, PING) when a stream has been silent for ping_s seconds


def run(engine, requests: list[TaskRequest], gone: Callable[[], bool] = lambda: False,
        ping_s: float | None = None) -> Iterator[tuple[int, object]]:
    """Yield (index, event) for every event of every request until all are final, and
    (-1, PING) whenever ping_s seconds passed without one (--sse-ping-interval).
    Leaving early (the stream closed, or `gone()` seen while waiting) cancels
    whatever is still running or queued."""
    channel = Channel()
    tasks = []
    for i, req in enumerate(requests):
        tasks.append(Task(req, lambda ev, i=i: channel.deliver((i, ev))))
    try:
        engine.submit(*tasks)
    except PyllamaError as e:  # the queue is full, or the engine ended
        raise api_error(e) from None
    open_ = len(tasks)
    done = [False] * len(tasks)
    last = time.monotonic()
    try:
        while open_:
            try:
                i, ev = channel.get(timeout=POLL_S if ping_s is None else min(POLL_S, ping_s))
            except queue.Empty:
                if gone():
                    return
                if ping_s is not None and time.monotonic() - last >= ping_s:
                    last = time.monotonic()
                    yield -1, PING
                if engine.failure is not None:  # its thread died: the events will never come
                    for i, d in enumerate(done):
                        if not d:
                            yield i, ErrorEvent(engine.stopped_error())
                    return
                continue
            if done[i]:
                continue
            if isinstance(ev, (FinalEvent, ErrorEvent)):
                open_ -= 1
                done[i] = True
            last = time.monotonic()
            yield i, ev
    finally:
        for t in tasks:
            engine.cancel(t)


class ClientGone(Exception):
    """The client closed the connection before the answer was ready."""


def collect(engine, requests: list[TaskRequest], gone: Callable[[], bool] = lambda: False) -> list:
    """Final results in request order; the first error is raised (as an ApiError)."""
    results: list = [None] * len(requests)
    for i, ev in run(engine, requests, gone):
        if ev is PING:
            continue
        if isinstance(ev, ErrorEvent):
            raise api_error(ev.error)
        if isinstance(ev, FinalEvent):
            results[i] = ev.result
    if any(r is None for r in results):
        raise ClientGone()
    return results
