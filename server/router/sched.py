"""The router's queue of requests waiting for a --models-max slot (llama-server's LRU
scheduler, server_lru_sched).

A request for a model that is not running joins the queue; requests for the same
model share one entry, so all of them need one slot and one load. Entries are served
in arrival order: only the entry at the head may load its model, and only once fewer
than --models-max models run. To make room, `tick` unloads idle models, least
recently used first, while the entries still waiting outnumber the slots that are
free or being freed. A model is never given up while it serves a request, while it
is still coming up, or while an entry waits for it (so a model just loaded for its
waiters is not taken before they use it). A waiter that leaves (its client went away,
its load failed) gives up its share; the last one to leave removes the entry.

Everything here runs on the router's event loop with no yield inside a call, so a
call sees and changes the models atomically."""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .instances import Instance, Models

log = logging.getLogger("pyllama.server.router")


@dataclass
class Entry:
    name: str
    waiters: int = 1
    loading: bool = False  # one of its waiters claimed the slot and is loading the model


class LoadQueue:
    def __init__(self, models: "Models"):
        self.models = models
        self.entries: deque[Entry] = deque()

    def find(self, name: str) -> Entry | None:
        return next((e for e in self.entries if e.name == name), None)

    def join(self, name: str) -> None:
        entry = self.find(name)
        if entry is not None:
            entry.waiters += 1
            log.info("a request for model %s joined the queue (%d waiting for it)", name, entry.waiters)
        else:
            self.entries.append(Entry(name))
            log.info("a request for model %s is queued at position %d", name, len(self.entries))

    def leave(self, name: str) -> None:
        entry = self.find(name)
        if entry is not None:
            entry.waiters -= 1
            if entry.waiters <= 0:
                self.entries.remove(entry)

    def _running(self) -> list["Instance"]:
        return [i for i in self.models.all() if i.running]

    def has_capacity(self) -> bool:
        limit = self.models.models_max
        return limit <= 0 or len(self._running()) < limit

    def try_claim(self, name: str) -> bool:
        """True if it is `name`'s turn to load (head of the queue, nobody loading it, a
        slot free); the entry is then marked loading."""
        if not self.entries or self.entries[0].name != name or self.entries[0].loading:
            return False
        if not self.has_capacity():
            return False
        self.entries[0].loading = True
        return True

    def claim_done(self, name: str, ok: bool) -> None:
        """After the claimed load: on failure the entry is back in line; on success it
        stays until its waiters leave (it shields the model from eviction until then)."""
        entry = self.find(name)
        if entry is not None and not ok:
            entry.loading = False

    def pick_victim(self) -> "Instance | None":
        """The least recently used model that may be given up, if any."""
        idle = [i for i in self._running() if i.active == 0 and i.status == "loaded" and not i.stopping
                and self.find(i.spec.name) is None]
        return min(idle, key=lambda i: i.last_used, default=None)

    def tick(self) -> None:
        """Unload idle models while the waiting entries outnumber the free slots (those
        free now, or being freed, less those claimed by a load not yet started)."""
        limit = self.models.models_max
        if limit <= 0 or not self.entries:
            return
        running = self._running()
        n_stopping = sum(i.stopping for i in running)
        needed = claimed = 0
        for e in self.entries:
            if not e.loading:
                needed += 1
                continue
            inst = self.models.instances.get(e.name)
            if inst is not None and not inst.running:
                claimed += 1
        free = limit - len(running) + n_stopping - claimed
        while free < needed:
            victim = self.pick_victim()
            if victim is None:
                return  # every other model is busy: the end of a request ticks again
            log.info("--models-max %d reached: unloading the least recently used idle model %s for a queued "
                     "request", limit, victim.spec.name)
            self.models.unload(victim)
            free += 1
