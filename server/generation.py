"""Running tasks from a request greenlet: submit to the engine, wait on a channel,
cancel on the way out (a closed stream or a finished response)."""

from __future__ import annotations

import queue
from typing import Callable, Iterator

from pyllama.engine import ErrorEvent, FinalEvent, Task, TaskRequest
from pyllama.engine.bridge import Channel
from pyllama.errors import PyllamaError

from .errors import api_error


POLL_S = 0.25  # how often a waiting request checks that its client is still there


def run(engine, requests: list[TaskRequest], gone: Callable[[], bool] = lambda: False) \
        -> Iterator[tuple[int, object]]:
    """Yield (index, event) for every event of every request until all are final.
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
    try:
        while open_:
            try:
                i, ev = channel.get(timeout=POLL_S)
            except queue.Empty:
                if gone():
                    return
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
        if isinstance(ev, ErrorEvent):
            raise api_error(ev.error)
        if isinstance(ev, FinalEvent):
            results[i] = ev.result
    if any(r is None for r in results):
        raise ClientGone()
    return results
