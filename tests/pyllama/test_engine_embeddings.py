"""Embedding tasks in the engine, in-process: they run in the same slots as generation
(-np 4), a batch is all logits or all hidden states (the engine takes turns), and
neither kind disturbs the other: the same vectors and the same greedy tokens as
each alone. An embedding task drops its slot's cache; the limits are llama-server's."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.engine_runs import last_events
from pyllama.engine import EmbedParams, Engine, EngineConfig, ErrorEvent, FinalEvent, TaskRequest
from pyllama.errors import InputTooLarge, PromptTooLong
from pyllama.llama import Llama
from pyllama.sampling import SamplingParams

GREEDY = SamplingParams(temperature=0.0)
TEXTS = ["The cat sits on the mat.", "Stock markets fell sharply today.", "How do I bake bread?"]


@pytest.fixture(scope="module")
def llm(smollm2_path):
    return Llama(smollm2_path, n_ctx=1024, n_threads=2, embedding=True, pooling="mean", n_ubatch=64)


run = last_events  # the last event of each request, in order (all submitted at once)


def engine(llm, n: int) -> Engine:
    llm.kv.clear()
    e = Engine(llm, EngineConfig(n_parallel=n))
    e.start()
    return e


def gen(llm, text: str) -> TaskRequest:
    return TaskRequest(prompt=llm.tokenize(text), sampling=GREEDY, n_predict=10)


def emb(llm, text: str, pooling: str = "mean") -> TaskRequest:
    return TaskRequest(prompt=llm.tokenize(text), cache_prompt=False, n_predict=0,
                       embedding=EmbedParams(pooling, 2))


def test_mixed_with_generation_as_each_alone(llm):
    e = engine(llm, 4)
    try:
        alone_tokens = [run(e, gen(llm, t))[0].result.tokens for t in TEXTS[:2]]
        alone_vectors = [run(e, emb(llm, t))[0].result.vectors for t in TEXTS]
        mixed = run(e, gen(llm, TEXTS[0]), emb(llm, TEXTS[0]), gen(llm, TEXTS[1]), emb(llm, TEXTS[1]),
                    emb(llm, TEXTS[2]))
        assert [mixed[0].result.tokens, mixed[2].result.tokens] == alone_tokens
        for ev, want in zip([mixed[1], mixed[3], mixed[4]], alone_vectors):
            assert np.array_equal(ev.result.vectors, want)
        library = llm.embed(TEXTS)
        assert np.abs(np.concatenate(alone_vectors) - library).max() < 1e-5
        for s in e.slots:  # an embedding task leaves nothing in its slot
            if s.last is not None and s.last.task.request.embedding is not None:
                assert not s.cached
    finally:
        e.shutdown(5)


def test_pooling_kinds_and_last_pooling_across_batches(llm):
    e = engine(llm, 2)
    try:
        long = "word " * 100  # more than n_ubatch (64): only last pooling may take it, in pieces
        [last] = run(e, emb(llm, long, "last"))
        assert isinstance(last, FinalEvent) and last.result.vectors.shape == (1, llm.n_embd)
        want = llm.embed([long], pooling="last")
        assert np.abs(last.result.vectors - want).max() < 1e-4
        [none] = run(e, emb(llm, TEXTS[0], "none"))
        assert none.result.vectors.shape == (len(llm.tokenize(TEXTS[0])), llm.n_embd)
        [too_big] = run(e, emb(llm, long, "mean"))
        assert isinstance(too_big, ErrorEvent) and isinstance(too_big.error, InputTooLarge)
        [too_long] = run(e, emb(llm, "word " * 600, "last"))  # the slot holds 512
        assert isinstance(too_long, ErrorEvent) and isinstance(too_long.error, PromptTooLong)
        [after] = run(e, gen(llm, TEXTS[0]))  # the engine goes on
        assert isinstance(after, FinalEvent)
    finally:
        e.shutdown(5)
