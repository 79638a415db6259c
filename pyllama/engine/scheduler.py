"""The engine's policy, decided without a model: which waiting task goes to which
slot, how much of a slot's cache a new prompt reuses (its common prefix, then
--cache-reuse chunks moved into place), how far a full context shifts, and what
one batch decodes. Every answer is plain data (a plan) that the engine carries
out on the KV cache and the model; nothing here touches either, so all of it is
tested with a few lists (tests/pyllama/test_scheduler.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

IDLE, PROMPT, GENERATING = "idle", "prompt", "generating"


class SlotView(Protocol):
    """What the policy reads of a slot."""

    id: int
    state: str          # IDLE, PROMPT or GENERATING
    last_used: float    # when its last task ended (least recently used goes first)
    lora: tuple         # the LoRA scales its cache was computed with

    @property
    def cached(self) -> Sequence[int]:
        """The tokens its KV sequence holds, position by position."""


class RequestView(Protocol):
    prompt: Sequence[int]
    id_slot: int        # -1: any slot
    cache_prompt: bool
    lora: tuple         # the LoRA scales it runs with


class TaskView(Protocol):
    request: RequestView


def reusable(slot: SlotView, request: RequestView) -> Sequence[int]:
    """What of a slot's cache a request could reuse: nothing when it was computed
    with other LoRA adapters or scales."""
    return slot.cached if slot.lora == request.lora else ()


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


# -- admission ----------------------------------------------------------------------
def choose_slot(slots: Sequence[SlotView], request: RequestView, taken: frozenset[int] = frozenset(),
                similarity: float = 0.1) -> SlotView | None:
    """llama-server's choice: the slot the request names (when idle), else the idle
    slot whose cache shares the longest prefix with the prompt (ties: the least
    recently used) if that prefix is more than `similarity` of the prompt
    (--slot-prompt-similarity; 0: never), else the least recently used idle slot. Only
    a cache computed under the request's LoRA scales counts as shared (`reusable`)."""
    if request.id_slot >= 0:
        s = slots[request.id_slot % len(slots)]
        return s if s.state == IDLE and s.id not in taken else None
    idle = [s for s in slots if s.state == IDLE and s.id not in taken]
    if not idle:
        return None
    if request.cache_prompt and similarity > 0 and request.prompt:
        best = max(idle, key=lambda s: (common_prefix(reusable(s, request), request.prompt), -s.last_used))
        n = common_prefix(reusable(best, request), request.prompt)
        if n > 0 and n / len(request.prompt) > similarity:
            return best
    return min(idle, key=lambda s: s.last_used)


def admit(waiting: Sequence[TaskView], slots: Sequence[SlotView], cont_batching: bool = True,
          similarity: float = 0.1, reserved: frozenset[int] = frozenset()) -> list[tuple[TaskView, SlotView]]:
    """Which waiting tasks start now, in arrival order, and in which slot. A task
    whose slot is busy is deferred without holding up those behind it. An empty
    prompt is answered at once and takes no slot. Without continuous batching no
    task starts while any slot is generating. `reserved` slots (a slot action waits
    for them) take no task."""
    if not cont_batching and any(s.state == GENERATING for s in slots):
        return []
    out: list[tuple[TaskView, SlotView]] = []
    taken: set[int] = set(reserved)
    for task in waiting:
        slot = choose_slot(slots, task.request, frozenset(taken), similarity)
        if slot is None:
            continue
        if task.request.prompt:
            taken.add(slot.id)
        out.append((task, slot))
    return out


# -- prompt cache reuse ---------------------------------------------------------------
@dataclass(frozen=True)
class Move:
    """Cached tokens [src, src + n) move down to positions [dst, dst + n)."""

    src: int
    dst: int
    n: int


@dataclass(frozen=True)
class ReusePlan:
    n_prefix: int                # the common prefix, kept where it is
    moves: tuple[Move, ...]      # --cache-reuse chunks after it, in order
    n_cached: int                # prompt tokens the cache holds afterwards; the rest is dropped


def plan_reuse(cached: Sequence[int], prompt: Sequence[int], *, cache_prompt: bool = True,
               n_cache_reuse: int = 0) -> ReusePlan:
    """What of a slot's cache a prompt keeps. Past the common prefix, runs of at
    least n_cache_reuse cached tokens that the prompt repeats further on are moved
    to their new positions instead of being decoded again (llama-server's
    --cache-reuse). The last prompt token is always decoded again, for its logits."""
    if not cache_prompt:
        return ReusePlan(0, (), 0)
    n_past = common_prefix(cached, prompt)
    n_prefix = n_past
    moves: list[Move] = []
    if n_cache_reuse > 0:
        head_c = head_p = n_past
        while head_c < len(cached) and head_p < len(prompt):
            n = 0
            while head_c + n < len(cached) and head_p + n < len(prompt) and cached[head_c + n] == prompt[head_p + n]:
                n += 1
            if n >= n_cache_reuse:
                moves.append(Move(head_c, head_p, n))
                n_past += n
                head_c += n
                head_p += n
            else:
                head_c += 1
    n_cached = min(n_past, len(prompt) - 1)
    while moves and moves[-1].dst >= n_cached:  # a move wholly past what is kept is pointless
        moves.pop()
    return ReusePlan(min(n_prefix, n_cached), tuple(moves), max(0, n_cached))


# -- context shift ----------------------------------------------------------------------
@dataclass(frozen=True)
class ShiftPlan:
    n_keep: int      # first positions kept
    n_discard: int   # positions after them dropped; the rest moves down by this much


def plan_shift(n_past: int, n_ctx: int, *, n_prompt: int, n_keep: int, n_discard: int,
               add_bos: bool) -> ShiftPlan | None:
    """llama-server's context shift for a generating slot whose next token would not
    fit: keep n_keep tokens (-1: the whole prompt; BOS added), drop n_discard after
    them (0: half of the rest), slide the remainder down. None while it fits."""
    if n_past + 1 < n_ctx:
        return None
    keep = n_prompt if n_keep < 0 else n_keep
    if add_bos:
        keep += 1
    keep = min(n_ctx - 4, keep)
    n_left = n_past - keep
    discard = n_discard if n_discard else n_left // 2
    discard = max(0, min(discard, max(0, n_left - 1)))
    return ShiftPlan(keep, discard)


# -- one batch ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Work:
    """What a busy slot wants decoded: the next generated token, or the rest of its
    prompt from position n_past on."""

    slot: int
    n_past: int
    token: int | None = None          # generating: the token sampled last
    prompt: Sequence[int] = ()        # processing its prompt: all of it
    rows: str = "last"                # the prompt's tokens whose output comes back: last | first | all
    whole: bool = False               # the rest of the prompt goes in one batch or waits (non-causal, pooled)


@dataclass(frozen=True)
class Piece:
    """Tokens of one slot in a batch, at positions pos, pos + 1, ..."""

    slot: int
    tokens: tuple[int, ...]
    pos: int
    logits: bool     # an output comes back (a generated token's, the prompt end's, an embedding's rows)
    prompt: bool     # prompt tokens (else one generated token)
    out: tuple[int, ...] = ()  # which of its tokens give an output row (offsets; () with logits: the last)

    @property
    def outputs(self) -> tuple[int, ...]:
        if self.out:
            return self.out
        return (len(self.tokens) - 1,) if self.logits else ()


@dataclass(frozen=True)
class BatchPlan:
    pieces: tuple[Piece, ...]

    @property
    def rows(self) -> tuple[Piece, ...]:
        """Row i of the decode's output belongs to rows[i]: each piece once per output
        row it asked for, in batch order."""
        return tuple(p for p in self.pieces for _ in p.outputs)

    @property
    def n_tokens(self) -> int:
        return sum(len(p.tokens) for p in self.pieces)


def plan_batch(work: Sequence[Work], n_batch: int) -> BatchPlan:
    """Continuous batching: one token for every generating slot, then prompt chunks
    in slot order within the n_batch token budget (a prompt longer than what is
    left goes on in the next batch; a `whole` one waits for a batch with room)."""
    pieces = [Piece(w.slot, (w.token,), w.n_past, True, False) for w in work if w.token is not None]
    budget = n_batch - len(pieces)
    for w in work:
        if w.token is not None or budget <= 0:
            continue
        if w.whole and len(w.prompt) - w.n_past > budget:
            continue
        chunk = tuple(w.prompt[w.n_past:w.n_past + budget])
        if not chunk:
            continue
        ends = w.n_past + len(chunk) == len(w.prompt)
        out = _outputs(w, len(chunk), ends)
        pieces.append(Piece(w.slot, chunk, w.n_past, bool(out), True, out))
        budget -= len(chunk)
    return BatchPlan(tuple(pieces))


def _outputs(w: Work, n: int, ends: bool) -> tuple[int, ...]:
    """Offsets in a prompt chunk of n tokens whose output rows come back."""
    if w.rows == "all":
        return tuple(range(n))
    if w.rows == "first":
        return (0,) if w.n_past == 0 else ()
    return (n - 1,) if ends else ()
