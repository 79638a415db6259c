"""The engine's policy with no model at all: slots are a few lists, plans are data."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyllama.engine.scheduler import (GENERATING, IDLE, PROMPT, Move, Work, admit, choose_slot, plan_batch,
                                      plan_reuse, plan_shift)


@dataclass
class FakeSlot:
    id: int
    cached: list[int] = field(default_factory=list)
    state: str = IDLE
    last_used: float = 0.0
    lora: tuple = ()


@dataclass
class Req:
    prompt: list[int]
    id_slot: int = -1
    cache_prompt: bool = True
    lora: tuple = ()


@dataclass
class FakeTask:
    request: Req


class FakeCache:
    """A KV sequence as positions -> tokens, changed the way SlotCache changes the real one."""

    def __init__(self, tokens):
        self.cells = dict(enumerate(tokens))

    def seq_rm(self, p0, p1):
        for p in [p for p in self.cells if p >= p0 and (p1 < 0 or p < p1)]:
            del self.cells[p]

    def seq_add(self, p0, p1, delta):
        moved = {p + delta: t for p, t in self.cells.items() if p0 <= p < p1}
        for p in [p for p in self.cells if p0 <= p < p1]:
            del self.cells[p]
        assert not set(moved) & set(self.cells), "a move onto occupied cells"
        self.cells.update(moved)

    def apply(self, plan):
        for m in plan.moves:
            self.seq_rm(m.dst, m.src)
            self.seq_add(m.src, m.src + m.n, m.dst - m.src)
        self.seq_rm(plan.n_cached, -1)
        return [self.cells[p] for p in sorted(self.cells)]


# -- slot choice ------------------------------------------------------------------------
def test_longest_common_prefix_wins():
    slots = [FakeSlot(0, [1, 2, 9]), FakeSlot(1, [1, 2, 3, 4]), FakeSlot(2, [])]
    assert choose_slot(slots, Req([1, 2, 3, 4, 5])).id == 1
    assert choose_slot(slots, Req([1, 2, 9, 9])).id == 0


def test_without_a_shared_prefix_the_least_recently_used_idle_slot():
    slots = [FakeSlot(0, [7], last_used=5.0), FakeSlot(1, [8], last_used=1.0), FakeSlot(2, [9], last_used=3.0)]
    assert choose_slot(slots, Req([1, 2])).id == 1
    slots[1].state = GENERATING
    assert choose_slot(slots, Req([1, 2])).id == 2
    assert choose_slot(slots, Req([7, 1], cache_prompt=False)).id == 2  # no prefix matching without cache_prompt


def test_equal_prefixes_go_to_the_least_recently_used():
    slots = [FakeSlot(0, [1, 2], last_used=9.0), FakeSlot(1, [1, 2], last_used=2.0)]
    assert choose_slot(slots, Req([1, 2, 3])).id == 1


def test_id_slot_names_the_slot_and_waits_for_it():
    slots = [FakeSlot(0, [1, 2, 3]), FakeSlot(1, [])]
    assert choose_slot(slots, Req([1, 2, 3], id_slot=1)).id == 1
    slots[1].state = PROMPT
    assert choose_slot(slots, Req([5], id_slot=1)) is None


# -- admission -----------------------------------------------------------------------------
def test_admission_in_arrival_order_and_deferral():
    slots = [FakeSlot(0, last_used=1.0), FakeSlot(1, last_used=2.0, state=GENERATING)]
    a, b, c = FakeTask(Req([1], id_slot=1)), FakeTask(Req([2])), FakeTask(Req([3]))
    started = admit([a, b, c], slots)
    # a waits for its busy slot without holding up b; c finds no slot left this step
    assert [(t, s.id) for t, s in started] == [(b, 0)]


def test_empty_prompts_take_no_slot():
    slots = [FakeSlot(0)]
    e, x = FakeTask(Req([])), FakeTask(Req([4]))
    assert [(t, s.id) for t, s in admit([e, x], slots)] == [(e, 0), (x, 0)]


def test_without_continuous_batching_nothing_starts_while_a_slot_generates():
    slots = [FakeSlot(0, state=GENERATING), FakeSlot(1)]
    assert admit([FakeTask(Req([1]))], slots, cont_batching=False) == []
    assert len(admit([FakeTask(Req([1]))], slots, cont_batching=True)) == 1
    slots[0].state = PROMPT  # prompts being processed do not block (llama-server's -nocb)
    assert len(admit([FakeTask(Req([1]))], slots, cont_batching=False)) == 1


# -- batches ----------------------------------------------------------------------------------
def test_generating_slots_first_then_prompt_chunks_within_the_batch():
    work = [Work(0, 10, prompt=list(range(100))), Work(1, 5, token=42), Work(2, 0, prompt=[7, 8, 9])]
    plan = plan_batch(work, n_batch=64)
    assert [(p.slot, len(p.tokens), p.pos, p.logits, p.prompt) for p in plan.pieces] == \
        [(1, 1, 5, True, False), (0, 63, 10, False, True)]
    assert plan.n_tokens == 64
    # the rows of logits: the generated token only (slot 0's prompt is not finished)
    assert [p.slot for p in plan.rows] == [1]
    plan = plan_batch(work, n_batch=200)
    assert [(p.slot, len(p.tokens)) for p in plan.pieces] == [(1, 1), (0, 90), (2, 3)]
    assert [p.slot for p in plan.rows] == [1, 0, 2]  # batch order: the decode's logits rows


def test_a_small_batch_spreads_a_prompt_over_steps():
    prompt = list(range(10))
    n_past, steps = 0, []
    while n_past < len(prompt):
        [piece] = plan_batch([Work(0, n_past, prompt=prompt)], n_batch=4).pieces
        steps.append(piece.tokens)
        n_past += len(piece.tokens)
    assert steps == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9)]
    assert plan_batch([Work(0, 8, prompt=prompt)], n_batch=4).pieces[0].logits


def test_generating_slots_are_never_starved_by_the_budget():
    work = [Work(i, 3, token=i) for i in range(5)] + [Work(5, 0, prompt=[1, 2, 3])]
    plan = plan_batch(work, n_batch=4)
    assert [p.slot for p in plan.pieces] == [0, 1, 2, 3, 4]  # no room left for the prompt this step


# -- prompt cache reuse --------------------------------------------------------------------------
def test_prefix_reuse_keeps_the_last_token_for_its_logits():
    plan = plan_reuse([1, 2, 3, 4], [1, 2, 3, 4])
    assert (plan.n_prefix, plan.moves, plan.n_cached) == (3, (), 3)
    assert plan_reuse([1, 2, 3, 4], [1, 2, 5]).n_cached == 2
    assert plan_reuse([1, 2, 3], [1, 2, 3, 4], cache_prompt=False).n_cached == 0


def test_cache_reuse_moves_chunks_into_place():
    cached = [1, 2, 3, 10, 11, 20, 21, 22, 23, 30]
    prompt = [1, 2, 3, 20, 21, 22, 23, 40, 41]
    plan = plan_reuse(cached, prompt, n_cache_reuse=3)
    assert plan.n_prefix == 3 and plan.moves == (Move(5, 3, 4),) and plan.n_cached == 7
    assert FakeCache(cached).apply(plan) == prompt[:7]
    assert plan_reuse(cached, prompt, n_cache_reuse=5).n_cached == 3  # the chunk is too short to move


def test_cache_reuse_of_several_chunks_matches_the_prompt():
    cached = [9, 1, 1, 5, 6, 7, 0, 0, 8, 9, 10, 11, 3]
    prompt = [9, 5, 6, 7, 8, 9, 10, 11, 4]
    plan = plan_reuse(cached, prompt, n_cache_reuse=2)
    assert len(plan.moves) == 2 and plan.n_cached == 8
    assert FakeCache(cached).apply(plan) == prompt[:8]


# -- context shift ---------------------------------------------------------------------------------
def test_context_shift_plan():
    assert plan_shift(50, 64, n_prompt=10, n_keep=0, n_discard=0, add_bos=False) is None
    s = plan_shift(63, 64, n_prompt=10, n_keep=0, n_discard=0, add_bos=True)
    assert (s.n_keep, s.n_discard) == (1, 31)  # BOS kept, half of the rest dropped
    s = plan_shift(63, 64, n_prompt=10, n_keep=-1, n_discard=8, add_bos=False)
    assert (s.n_keep, s.n_discard) == (10, 8)  # the whole prompt kept
    s = plan_shift(63, 64, n_prompt=70, n_keep=-1, n_discard=0, add_bos=False)
    assert s.n_keep == 60  # never more than n_ctx - 4
