"""Prompt caches kept in host memory (llama-server's --cache-ram): when a slot is about
to be reused for a prompt that would throw most of its cache away, its KV state is kept
here first, and when a prompt arrives whose prefix an entry holds better than its slot
does, that entry is loaded into the slot instead of decoding the prefix again. An agent
or several users taking turns on fewer slots than conversations keep their prompts.

Plain data and policy, as llama-server's server_prompt_cache decides:
- `save`: nothing when an entry already holds the whole prompt, or the state alone is
  over the limit; entries the new one holds entirely are dropped; the oldest go first
  until it fits.
- `best`: the entry that keeps more of itself (f_keep: common prefix / its length) and
  covers more of the new prompt (f_sim: common prefix / the prompt's length) than the
  slot's own cache does, never one that would keep under a quarter of itself.
- the limit is in bytes of KV state (0 or less: none)."""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Callable, Sequence

from .scheduler import common_prefix


@dataclass(eq=False)
class Entry:
    tokens: tuple[int, ...]
    state: bytes            # the sequence's KV state (KvCache.seq_save)
    lora: tuple             # the LoRA scales it was computed with (SlotCache.lora)

    @property
    def size(self) -> int:
        return len(self.state)


class PromptCache:
    def __init__(self, limit_bytes: int):
        self.limit = limit_bytes
        self.entries: collections.deque[Entry] = collections.deque()  # oldest first

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    def holds(self, tokens: Sequence[int], lora: tuple) -> bool:
        """Whether an entry already holds all of `tokens` (under the same adapters)."""
        n = len(tokens)
        return any(e.lora == lora and common_prefix(e.tokens, tokens) == n for e in self.entries)

    def save(self, tokens: Sequence[int], read_state: Callable[[], bytes], lora: tuple) -> bool:
        """Keep a slot's cache; False when it was not kept (see the module's notes).
        read_state copies the slot's KV state, only when it is to be kept."""
        if not tokens or self.holds(tokens, lora):
            return False
        state = read_state()
        if 0 < self.limit < len(state):
            return False
        self.entries = collections.deque(e for e in self.entries
                                         if not (e.lora == lora and common_prefix(e.tokens, tokens) == len(e.tokens)))
        if self.limit > 0:
            while self.entries and self.size + len(state) > self.limit:
                self.entries.popleft()
        self.entries.append(Entry(tuple(tokens), state, lora))
        return True

    def best(self, slot_tokens: Sequence[int], prompt: Sequence[int], lora: tuple) -> Entry | None:
        """The entry to load into a slot holding slot_tokens (already under `lora`, else
        pass ()) for `prompt`, if one is better than what the slot holds."""
        if not prompt:
            return None
        lcp = common_prefix(slot_tokens, prompt)
        f_keep_best = lcp / len(slot_tokens) if slot_tokens else -1.0  # an empty slot: any entry wins
        f_sim_best = lcp / len(prompt)
        found = None
        for e in self.entries:
            if e.lora != lora:
                continue
            n = common_prefix(e.tokens, prompt)
            f_keep, f_sim = n / len(e.tokens), n / len(prompt)
            if f_keep < 0.25:  # don't trash large prompts
                continue
            if f_keep_best < f_keep and f_sim_best < f_sim:
                f_keep_best, f_sim_best, found = f_keep, f_sim, e
        return found

    def take(self, entry: Entry) -> None:
        """An entry loaded into a slot leaves the cache (the slot holds it now)."""
        self.entries = collections.deque(e for e in self.entries if e is not entry)
