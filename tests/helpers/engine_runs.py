"""Running tasks on an in-process Engine from a test: submit them at once, wait for
each one's last event."""

from __future__ import annotations

import queue

from pyllama.engine import ErrorEvent, FinalEvent, Task


def last_events(engine, *reqs, timeout: float = 120) -> list:
    """The last event (FinalEvent or ErrorEvent) of each TaskRequest, in order."""
    q: queue.Queue = queue.Queue()
    tasks = [Task(r, lambda ev, i=i: q.put((i, ev))) for i, r in enumerate(reqs)]
    engine.submit(*tasks)
    last: dict = {}
    while len(last) < len(tasks):
        i, ev = q.get(timeout=timeout)
        if isinstance(ev, (FinalEvent, ErrorEvent)):
            last[i] = ev
    return [last[i] for i in range(len(tasks))]
