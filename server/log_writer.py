"""The server's log (Python logging and the access log) written by a thread of its own.

Under gevent every request runs on the main thread: a log line written straight to a
stream that is not being read (a full pipe, a terminal paused with Ctrl-S, a stalled
log collector) would block that thread, and with it /health and every other request.
Lines are queued here instead and written by an OS thread; when the reader stalls, up
to MAX_QUEUED lines wait, later ones are dropped and counted, and the count is logged
once writing resumes. (llama-server's logger also writes from a worker thread.)"""

from __future__ import annotations

import _queue
import _thread
import sys
from typing import TextIO

MAX_QUEUED = 20000
_STOP = object()


class LogWriter:
    """A file-like sink (write/flush) for logging handlers and gevent's access log."""

    def __init__(self, stream: TextIO | None = None, max_queued: int = MAX_QUEUED):
        self._stream = stream
        self._queue = _queue.SimpleQueue()  # C, never patched by gevent; put() never blocks
        self._max = max_queued
        self.dropped = 0  # written by producers only
        self._reported = 0  # written by the writer thread only
        self._closed = False
        self._done = _thread.allocate_lock()
        self._done.acquire()
        _thread.start_new_thread(self._run, ())

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stderr

    def write(self, text: str) -> int:
        if self._queue.qsize() >= self._max:
            self.dropped += 1
        else:
            self._queue.put(text)
        return len(text)

    def flush(self) -> None:  # the writer thread flushes after each batch
        pass

    def close(self, timeout: float = 5.0) -> bool:
        """Write what is queued (waiting at most `timeout` s for the stream), then stop
        (later lines are dropped). Once; again is a no-op."""
        if self._closed:
            return True
        self._closed = True
        self._queue.put(_STOP)
        return self._done.acquire(True, timeout)

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                batch = []
                while item is not _STOP:
                    batch.append(item)
                    if len(batch) >= 256:
                        break
                    try:
                        item = self._queue.get_nowait()
                    except _queue.Empty:
                        break
                lost = self.dropped - self._reported
                if lost:
                    self._reported += lost
                    batch.append(f"{lost} log line(s) dropped: the log's reader was not keeping up\n")
                try:
                    self.stream.write("".join(batch))
                    self.stream.flush()
                except (OSError, ValueError):  # a closed or broken stream: the lines are lost, serving goes on
                    pass
                if item is _STOP:
                    return
        finally:
            self._done.release()


__all__ = ["LogWriter", "MAX_QUEUED"]
