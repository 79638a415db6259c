"""One slot's sequence in the shared KV cache, together with the record of the
tokens it holds: every change goes through here, so the record and the cells
cannot drift apart (a prompt served from a record the cache does not bear out is
a silently wrong answer). The record's length is the slot's n_past: position i
holds tokens[i]."""

from __future__ import annotations

from typing import Sequence

from .scheduler import ReusePlan


class SlotCache:
    def __init__(self, kv, seq_id: int):
        self.kv = kv
        self.seq = seq_id
        self.tokens: list[int] = []
        # the LoRA scales its cells were computed with (TaskRequest.lora): a prompt under
        # other adapters reuses none of them
        self.lora: tuple[float, ...] = ()

    @property
    def n_past(self) -> int:
        return len(self.tokens)

    def reuse(self, plan: ReusePlan) -> None:
        """Keep what a new prompt reuses (scheduler.plan_reuse), drop the rest."""
        for m in plan.moves:
            self.kv.seq_rm(self.seq, m.dst, m.src)
            self.kv.seq_add(self.seq, m.src, m.src + m.n, m.dst - m.src)
            self.tokens[m.dst:m.dst + m.n] = self.tokens[m.src:m.src + m.n]
        self.truncate(plan.n_cached)

    def planned(self, tokens: Sequence[int]) -> None:
        """Tokens a batch is about to write at the end of the sequence; if its decode
        fails, truncate back to the n_past of before."""
        self.tokens.extend(tokens)

    def truncate(self, n: int) -> None:
        self.kv.seq_rm(self.seq, n, -1)
        del self.tokens[n:]

    def clear(self) -> None:
        self.kv.seq_rm(self.seq, -1, -1)
        self.tokens.clear()
        self.lora = ()

    def shift(self, n_keep: int, n_discard: int) -> None:
        """Drop n_discard positions after the first n_keep; later ones move down."""
        n_past = self.n_past
        self.kv.seq_rm(self.seq, n_keep, n_keep + n_discard)
        self.kv.seq_add(self.seq, n_keep + n_discard, n_past, -n_discard)
        del self.tokens[n_keep:n_keep + n_discard]

    def consistent(self) -> bool:
        """The sequence holds exactly positions 0 .. n_past - 1."""
        n = self.n_past
        return self.kv.seq_n_cells(self.seq) == n and self.kv.seq_pos_max(self.seq) == n - 1
