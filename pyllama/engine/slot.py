"""One slot: a sequence of the shared KV cache (its SlotCache) that serves one task
at a time (its Generation), and the immutable snapshot of it that /slots reads
from other threads."""

from __future__ import annotations

import time
from dataclasses import dataclass

from .generation import Generation
from .scheduler import IDLE, PROMPT
from .slot_cache import SlotCache
from .task import TaskRequest


@dataclass(frozen=True)
class SlotSnapshot:
    """A slot as the engine thread last published it (for /slots and /metrics)."""

    id: int
    is_processing: bool
    id_task: int | None = None            # the task served now, or last
    request: TaskRequest | None = None
    n_prompt_tokens_processed: int = 0
    n_prompt_tokens_cache: int = 0
    n_decoded: int = 0
    has_new_line: bool = False


class Slot:
    def __init__(self, slot_id: int, n_ctx: int, kv):
        self.id = slot_id
        self.n_ctx = n_ctx               # cells this slot may use
        self.cache = SlotCache(kv, slot_id)
        self.state = IDLE
        self.gen: Generation | None = None
        self.last: Generation | None = None  # the generation served now, or last (for /slots)
        self.last_used = 0.0

    @property
    def cached(self) -> list[int]:
        return self.cache.tokens

    @property
    def lora(self) -> tuple[float, ...]:
        return self.cache.lora

    @property
    def n_past(self) -> int:
        return self.cache.n_past

    @property
    def task(self):
        return self.gen.task if self.gen is not None else None

    def start(self, gen: Generation) -> None:
        self.gen = self.last = gen
        self.state = PROMPT

    def release(self) -> None:
        self.state = IDLE
        self.gen = None
        self.last_used = time.monotonic()

    def snapshot(self) -> SlotSnapshot:
        g = self.last
        if g is None:
            return SlotSnapshot(self.id, self.state != IDLE)
        return SlotSnapshot(self.id, self.state != IDLE, g.task.id, g.task.request, g.timings.prompt.n, g.n_cached,
                            g.n_decoded, "\n" in g.text)
