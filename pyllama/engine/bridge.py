"""The crossing between the engine thread and the server's greenlets.

The engine calls `Channel.deliver(event)` on its own OS thread; the event is
handed to the greenlet's hub with `loop.run_callback_threadsafe`, which puts it
into a gevent queue the request greenlet waits on. Without gevent (plain
threads, tests), a standard queue does the same."""

from __future__ import annotations

import queue

from ..unpatched import original  # noqa: F401 - re-exported: the engine's and loader's threads use it


class Channel:
    def __init__(self) -> None:
        try:
            import gevent
            import gevent.queue
        except ImportError:
            gevent = None
        if gevent is not None:
            self._hub = gevent.get_hub()
            self._queue = gevent.queue.Queue()
            self.deliver = self._deliver_gevent
        else:
            self._queue = queue.Queue()
            self.deliver = self._queue.put

    def _deliver_gevent(self, event: object) -> None:
        self._hub.loop.run_callback_threadsafe(self._queue.put_nowait, event)

    def get(self, timeout: float | None = None) -> object:
        return self._queue.get(timeout=timeout)
