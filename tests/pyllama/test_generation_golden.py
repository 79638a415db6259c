"""Greedy continuations of the reference prompts on the two real models,
against llama.cpp's recorded answers (tests/data/reference).

Agreement is bounded by activation quantization noise: llama.cpp's own
logprobs sit 0.07-0.18 nats (top-5 mean) from an exact float64 forward of the
same weights, and ours as far on the other side, so the thresholds below are
set at that noise floor (see the issue notes); a wrong forward pass misses
them by nats, not hundredths.
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers.golden import completion_records, greedy_outcomes

from pyllama import Batch, Llama
from pyllama.model_registry import resolve_model

MODELS = ["smollm2-135m", "gemma3-270m"]


@pytest.fixture(scope="module", params=MODELS)
def model(request):
    name = request.param
    return name, Llama(resolve_model(name, progress=False), n_ctx=4096, n_threads=2)


@pytest.fixture(scope="module")
def outcomes(model):
    name, llm = model
    recs = completion_records(name)
    return greedy_outcomes(llm, recs, batched=False), greedy_outcomes(llm, recs, batched=True)


def test_prompts_tokenize_to_the_reference_counts(model):
    name, llm = model
    for r in completion_records(name):
        assert len(llm.tokenize(r["prompt"])) == int(r["n_prompt_tokens"]), r["prompt"][:40]


def test_greedy_continuations_follow_llama_cpp(outcomes):
    alone, _ = outcomes
    summary = [(o.departure, round(o.gap, 3), round(o.mean_error, 3)) for o in alone]
    assert sum(o.matches for o in alone) >= 3, summary
    assert sum(o.departure is None or o.departure >= 8 for o in alone) >= 10, summary
    for o in alone:
        assert o.mean_error < 0.25, summary          # top-5 logprobs, steps before any departure
        if o.departure is not None:
            assert o.gap < 0.6, summary               # a near-tie where we part ways


def test_sixteen_prompts_in_one_batch_give_the_same_answers(outcomes):
    alone, batched = outcomes
    for a, b in zip(alone, batched):
        assert a.tokens == b.tokens
        assert a.errors == b.errors                   # the logits are bit-identical


def _last_logits(llm, prompts, seqs):
    llm.kv.clear()
    b = Batch()
    for p, s in zip(prompts, seqs):
        b.add_sequence(p, 0, s)
    return llm.decode(b)


def test_batch_and_thread_invariance(model):
    name, llm = model
    prompts = [llm.tokenize(r["prompt"]) for r in completion_records(name)[:5]]
    alone = _last_logits(llm, prompts[:1], [0])[0]
    mixed = _last_logits(llm, prompts[1:3] + prompts[:1] + prompts[3:], [1, 2, 7, 3, 4])
    np.testing.assert_array_equal(mixed[2], alone)
    one_thread = Llama(llm.path, n_ctx=256, n_threads=1, n_ubatch=7)   # other threads and micro-batches
    np.testing.assert_array_equal(one_thread.eval(prompts[0]), alone)


def test_cached_prefix_then_suffix(model):
    name, llm = model
    recs = completion_records(name)
    long = llm.tokenize(recs[-1]["prompt"])       # the 1,346-token prompt (gemma3: past the sliding window)
    other = llm.tokenize(recs[6]["prompt"], add_special=False)
    llm.kv.clear()
    want_a = llm.eval(long)
    llm.kv.clear()
    want_b = llm.eval(long[:-5] + other)
    llm.kv.clear()
    llm.eval(long[:-5], seq_id=0)
    llm.kv.seq_cp(0, 1, -1, -1)
    np.testing.assert_array_equal(llm.eval(long[-5:], seq_id=0), want_a)
    np.testing.assert_array_equal(llm.eval(other, seq_id=1), want_b)
