"""Running tasks from a request greenlet: submit to the engine, wait on a channel,
cancel on the way out (a closed stream or a finished response)."""

from __future__ import annotations

from typing import Iterator

from pyllama.engine import ErrorEvent, FinalEvent, Task, TaskRequest
from pyllama.engine.bridge import Channel

from .errors import ApiError


def run(engine, requests: list[TaskRequest]) -> Iterator[tuple[int, object]]:
    """Yield (index, event) for every event of every request until all are final.
    Leaving early (client gone) cancels whatever is still running or queued."""
    channel = Channel()
    tasks = []
    for i, req in enumerate(requests):
        tasks.append(Task(req, lambda ev, i=i: channel.deliver((i, ev))))
    for t in tasks:
        engine.submit(t)
    open_ = len(tasks)
    try:
        while open_:
            i, ev = channel.get()
            if isinstance(ev, (FinalEvent, ErrorEvent)):
                open_ -= 1
            yield i, ev
    finally:
        for t in tasks:
            engine.cancel(t)


def collect(engine, requests: list[TaskRequest]) -> list:
    """Final results in request order; the first error becomes an ApiError."""
    results: list = [None] * len(requests)
    for i, ev in run(engine, requests):
        if isinstance(ev, ErrorEvent):
            raise ApiError(ev.code, ev.message, ev.type, **ev.extra)
        if isinstance(ev, FinalEvent):
            results[i] = ev.result
    return results
