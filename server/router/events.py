"""The router's live events (GET /models/sse), as llama-server's router sends them:
each is `data: {"model", "event"[, "data"]}` followed by a blank line.

Events: `model_status` (a load begins: {"status": "loading"} or, for a download,
{"status": "downloading"}), `status_change` (a model's server came up, {"status":
"loaded", "info": its /v1/models entry}, or ended, {"status": "unloaded", "exit_code"}),
`download_progress` ({url: {"done", "total"}} for every file being fetched),
`download_finished` / `download_failed`, `model_remove` (DELETE /models), and
`models_reload` for model "*" (the model list was read again).

A subscriber that has not read its events for a while does not hold the router: its
queue keeps the newest MAX_PENDING events and drops older progress events first."""

from __future__ import annotations

import json
from collections import deque
from typing import Iterator

MAX_PENDING = 1000
KEEPALIVE_S = 15.0


class Subscriber:
    def __init__(self) -> None:
        import gevent.event
        self.pending: deque[dict] = deque()
        self.ready = gevent.event.Event()
        self.closed = False

    def push(self, event: dict) -> None:
        if len(self.pending) >= MAX_PENDING:
            progress = next((e for e in self.pending if e.get("event") == "download_progress"), None)
            if progress is not None:
                self.pending.remove(progress)
            else:
                self.pending.popleft()
        self.pending.append(event)
        self.ready.set()


class ModelEvents:
    """Every open /models/sse stream, and the broadcast to them (on the router's event loop)."""

    def __init__(self) -> None:
        self.subscribers: list[Subscriber] = []

    def broadcast(self, event: str, model: str, data: dict | None = None) -> None:
        message: dict = {"model": model, "event": event}
        if data is not None:
            message["data"] = data
        for sub in list(self.subscribers):
            sub.push(message)

    def subscribe(self) -> Subscriber:
        sub = Subscriber()
        self.subscribers.append(sub)
        return sub

    def stream(self) -> Iterator[bytes]:
        """A new subscriber's events as SSE lines until the client goes away (the generator
        is closed) or the router stops; a comment line every KEEPALIVE_S keeps proxies
        from closing an idle stream and notices a client that has gone. It subscribes when
        the body starts, inside the try: a response never sent (HEAD) leaves nothing behind."""
        sub = None
        try:
            sub = self.subscribe()
            yield b": connected\n\n"
            while not sub.closed:
                if not sub.ready.wait(KEEPALIVE_S):
                    yield b": keep-alive\n\n"
                    continue
                sub.ready.clear()
                while sub.pending:
                    event = sub.pending.popleft()
                    yield b"data: " + json.dumps(event, separators=(",", ":")).encode() + b"\n\n"
        finally:
            if sub is not None:
                self.unsubscribe(sub)

    def unsubscribe(self, sub: Subscriber) -> None:
        sub.closed = True
        sub.ready.set()
        if sub in self.subscribers:
            self.subscribers.remove(sub)

    def close_all(self) -> None:
        for sub in list(self.subscribers):
            self.unsubscribe(sub)
