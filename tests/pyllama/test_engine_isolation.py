"""The engine with a real model, in-process: a failure in one task ends that task
alone; a failed batch is undone and retried slot by slot; the KV cache and every
slot's cached-prompt record stay consistent; a dying engine thread fails every
waiting task instead of leaving it waiting."""

from __future__ import annotations

import queue

import pytest

from helpers.engine_runs import last_events
from pyllama.engine import Engine, EngineConfig, ErrorEvent, FinalEvent, Task, TaskRequest
from pyllama.errors import EngineFailed, QueueFull, TaskFailed
from pyllama.llama import Batch, Llama
from pyllama.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0.0)


@pytest.fixture(scope="module")
def llm(smollm2_path):
    return Llama(smollm2_path, n_ctx=256, n_threads=2)


def make_engine(llm, **kw) -> Engine:
    llm.kv.clear()
    e = Engine(llm, EngineConfig(**kw))
    e.start()
    return e


run = last_events  # the last event of each request, in order


def consistent(engine: Engine) -> bool:
    kv = engine.llm.kv
    return all(kv.seq_n_cells(s.id) == len(s.cached) and kv.seq_pos_max(s.id) == len(s.cached) - 1
               for s in engine.slots)


def req(llm, text: str, n: int = 8, **kw) -> TaskRequest:
    return TaskRequest(prompt=llm.tokenize(text), sampling=GREEDY, n_predict=n, **kw)


def test_empty_prompt_is_an_empty_answer_and_leaves_the_cache(llm):
    e = make_engine(llm, n_parallel=1)
    try:
        [ref] = run(e, req(llm, "The capital of France is", 12))
        cached = list(e.slots[0].cached)
        [empty] = run(e, TaskRequest(prompt=[], sampling=GREEDY, n_predict=4))
        assert isinstance(empty, FinalEvent)
        assert (empty.result.content, empty.result.n_decoded, empty.result.stop_type) == ("", 0, "none")
        assert e.slots[0].cached == cached and consistent(e)
        [again] = run(e, req(llm, "The capital of France is", 12))
        assert again.result.tokens == ref.result.tokens
        assert again.result.n_cached > 0  # the prefix was reused, and it was right to reuse it
    finally:
        assert e.shutdown(wait_s=30)


def test_a_task_whose_setup_fails_fails_alone(llm):
    """A sampler that cannot be built (a sampler name the native chain lacks) fails its
    task on the engine thread; the task beside it runs to the end."""
    e = make_engine(llm, n_parallel=2)
    try:
        bad = req(llm, "Hello", 4)
        bad.sampling = GREEDY.replace(samplers=("no-such-sampler",))
        good = req(llm, "The capital of France is", 8)
        [ref] = run(e, req(llm, "The capital of France is", 8))
        err, ok = run(e, bad, good)
        assert isinstance(err, ErrorEvent) and isinstance(err.error, TaskFailed)
        assert isinstance(ok, FinalEvent) and ok.result.tokens == ref.result.tokens
        assert consistent(e)
    finally:
        assert e.shutdown(wait_s=30)


def test_a_failed_batch_is_undone_and_retried_slot_by_slot(llm):
    """Fill the KV cache with a foreign sequence so that two prompts decoded together do
    not fit but one does: the batch fails, is undone, and each slot decodes alone; the
    one without room fails, the other finishes with the tokens it gets alone."""
    e = make_engine(llm, n_parallel=2)
    try:
        a = req(llm, "The capital of France is a city that many people visit every year because", 6)
        [ref] = run(e, a)
        assert e.shutdown(wait_s=30)
        e = make_engine(llm, n_parallel=2)
        n_prompt = len(a.prompt)
        filler = 256 - n_prompt - 8  # room for one prompt and a few tokens, not two prompts
        b = Batch()
        for p in range(filler):
            b.add(1, p, 40, False)
        llm.decode(b)
        first, second = run(e, a, req(llm, "Once upon a time there was a king who lived in a castle by the sea and", 6))
        events = [first, second]
        assert sum(isinstance(x, FinalEvent) for x in events) == 1, events
        assert sum(isinstance(x, ErrorEvent) and "KV cache full" in str(x.error) for x in events) == 1, events
        if isinstance(first, FinalEvent):
            assert first.result.tokens == ref.result.tokens
        llm.kv.seq_rm(40, -1, -1)
        assert consistent(e)
    finally:
        assert e.shutdown(wait_s=30)


def test_the_wait_queue_is_bounded(llm):
    e = Engine(llm, EngineConfig(n_parallel=1, max_queue=2))  # not started: nothing leaves the queue
    e.submit(Task(req(llm, "a"), lambda ev: None), Task(req(llm, "b"), lambda ev: None))
    with pytest.raises(QueueFull, match="2 requests are already waiting for a slot"):
        e.submit(Task(req(llm, "c"), lambda ev: None))
    assert e.n_pending() == 2  # all or nothing


def test_a_dead_engine_thread_fails_every_task(llm):
    """An exception that escapes a step (here BaseException from a task's delivery)
    ends the thread: the running and the waiting tasks get an error, submit refuses."""
    e = make_engine(llm, n_parallel=1)
    q: queue.Queue = queue.Queue()

    def deliver_then_die(ev):
        raise SystemExit("delivery failed")

    e.submit(Task(req(llm, "Hello", 3), deliver_then_die), Task(req(llm, "Waiting", 4), q.put))
    ev = q.get(timeout=300)
    assert isinstance(ev, ErrorEvent) and isinstance(ev.error, EngineFailed) and "SystemExit" in str(ev.error)
    assert e.failure is not None and "the engine thread stopped" in e.failure
    with pytest.raises(EngineFailed):
        e.submit(Task(req(llm, "late"), q.put))
    assert e.shutdown(wait_s=30)
