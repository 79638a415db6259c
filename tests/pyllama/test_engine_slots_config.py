"""How llama-server sizes and fills slots, on the engine with a real model: each
slot's context (an even share, the whole unified cache, or --kv-unified-per-slot),
idle slots' cached prompts giving way in a full unified cache, the prompt similarity
that picks a slot, and prompt-processing progress events."""

from __future__ import annotations

import queue

import pytest

from pyllama.engine import Engine, EngineConfig, ErrorEvent, FinalEvent, ProgressEvent, Task, TaskRequest
from pyllama.engine.engine import slot_context
from pyllama.llama import Llama
from pyllama.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0.0)


@pytest.fixture(scope="module")
def llm(smollm2_path):
    return Llama(smollm2_path, n_ctx=96, n_threads=2)


def events(engine: Engine, *reqs: TaskRequest, timeout: float = 120) -> list[list]:
    q: queue.Queue = queue.Queue()
    tasks = [Task(r, lambda ev, i=i: q.put((i, ev))) for i, r in enumerate(reqs)]
    engine.submit(*tasks)
    out: list[list] = [[] for _ in reqs]
    done = 0
    while done < len(tasks):
        i, ev = q.get(timeout=timeout)
        out[i].append(ev)
        done += isinstance(ev, (FinalEvent, ErrorEvent))
    return out


def test_slot_context_sizes():
    assert slot_context(4096, EngineConfig(n_parallel=4)) == 1024
    assert slot_context(4096, EngineConfig(n_parallel=4, unified_kv=True)) == 4096
    assert slot_context(4096, EngineConfig(n_parallel=4, unified_kv=True, n_ctx_slot=512)) == 512
    assert slot_context(4096, EngineConfig(n_parallel=1), n_ctx_train=2048) == 2048  # capped, as llama-server


def test_a_full_unified_cache_clears_idle_slots_first(llm):
    llm.kv.clear()
    e = Engine(llm, EngineConfig(n_parallel=2, unified_kv=True))
    e.start()
    try:
        text = "one two three four five six seven eight nine ten " * 8
        first = TaskRequest(prompt=llm.tokenize(text)[:60], sampling=GREEDY, n_predict=4, id_slot=0)
        [[*_, a]] = events(e, first)
        assert isinstance(a, FinalEvent) and e.slots[0].n_past >= 60
        # slot 1 needs more cells than are free (96 - 63): slot 0's idle cache gives way
        second = TaskRequest(prompt=llm.tokenize("The capital of France is " * 12)[:50], sampling=GREEDY,
                             n_predict=4, id_slot=1)
        [[*_, b]] = events(e, second)
        assert isinstance(b, FinalEvent), b
        assert e.slots[0].n_past == 0 and llm.kv.seq_n_cells(0) == 0
    finally:
        e.shutdown(5)


def test_progress_events_of_a_streamed_prompt(llm):
    llm.kv.clear()
    e = Engine(llm, EngineConfig(n_parallel=1, n_batch=16))
    e.start()
    try:
        prompt = llm.tokenize("a b c d e f g h i j k l m n o p q r s t u v w x y z " * 2)
        [evs] = events(e, TaskRequest(prompt=prompt, sampling=GREEDY, n_predict=2, stream=True,
                                      return_progress=True))
        progress = [ev for ev in evs if isinstance(ev, ProgressEvent)]
        assert [p.processed for p in progress] == [0] + list(range(16, len(prompt), 16)) + [len(prompt)]
        assert all(p.total == len(prompt) and p.cache == 0 for p in progress)
        [again] = events(e, TaskRequest(prompt=prompt, sampling=GREEDY, n_predict=2, stream=True,
                                        return_progress=True))
        progress = [ev for ev in again if isinstance(ev, ProgressEvent)]
        assert progress[0].cache == progress[0].processed == len(prompt) - 1   # the cached prefix
        assert progress[-1].processed == len(prompt) and len(progress) == 2
        [quiet] = events(e, TaskRequest(prompt=prompt, sampling=GREEDY, n_predict=2, stream=True))
        assert not any(isinstance(ev, ProgressEvent) for ev in quiet)
    finally:
        e.shutdown(5)


class _Slot:
    def __init__(self, i, cached, last_used):
        self.id, self.cached, self.last_used, self.state = i, cached, last_used, "idle"
        self.lora = ()


class _Req:
    def __init__(self, prompt):
        self.prompt, self.id_slot, self.cache_prompt = prompt, -1, True
        self.lora = ()


def test_slot_prompt_similarity_threshold():
    from pyllama.engine.scheduler import choose_slot

    slots = [_Slot(0, [1, 2, 3], 5.0), _Slot(1, [], 1.0)]
    prompt = _Req([1] + list(range(10, 19)))              # shares 1 token of 10 with slot 0
    assert choose_slot(slots, prompt, similarity=0.05).id == 0
    assert choose_slot(slots, prompt, similarity=0.1).id == 1  # 0.1 is not above 0.1: least recently used
    assert choose_slot(slots, _Req([1, 2, 3, 4]), similarity=0.0).id == 1  # 0: similarity is not used
