"""The end of a slot's context: stop with `truncated`, or shift the context and go
on (--context-shift, n_keep, n_discard); code-completion limits (n_indent)."""

from __future__ import annotations

import pytest

from helpers.server_process import ServerProcess
from pyllama.engine.generation import under_indented


@pytest.fixture(scope="module")
def small(smollm2_path):
    s = ServerProcess(smollm2_path, "-c", "128", "-np", "1")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def shifting(smollm2_path):
    s = ServerProcess(smollm2_path, "-c", "128", "-np", "1", "--context-shift")
    yield s
    s.stop()


BODY = {"prompt": "Write a very long story about the sea.", "n_predict": 300, "ignore_eos": True,
        "temperature": 0, "return_tokens": True}


def test_generation_stops_at_the_context_end(small):
    r = small.post("/completion", BODY).json()
    assert r["truncated"] is True and r["stop_type"] == "limit"
    assert r["tokens_evaluated"] + r["tokens_predicted"] == 128


def test_context_shift_keeps_going(shifting):
    r = shifting.post("/completion", BODY).json()
    assert r["tokens_predicted"] == 300 and r["truncated"] is True
    kept = shifting.post("/completion", {**BODY, "n_keep": -1, "n_discard": 10}).json()
    assert kept["tokens_predicted"] == 300
    assert shifting.post("/completion", {**BODY, "n_discard": -1}).status_code == 400
    # the first tokens, before any shift, equal a run that never needed one
    short = shifting.post("/completion", {**BODY, "n_predict": 40}).json()
    assert r["tokens"][:40] == short["tokens"]


def test_n_indent_cuts_an_underindented_line():
    text = "def f():\n    return 1\n  x"
    assert text[:under_indented(text, 4)] == "def f():\n    return 1\n  "
    assert under_indented("def f():\n    return 1\n      ", 4) is None
    assert under_indented("no newline yet", 4) is None


def test_cache_reuse_shifts_cached_chunks(small):
    """A prompt that drops a middle piece of the cached one reuses the rest by
    shifting it (n_cache_reuse), instead of decoding it again."""
    head = "The old lighthouse stood on the rocks. "
    middle = "Storms came often that year. "
    tail = "Every night the keeper climbed the stairs and lit the great lamp for the ships."
    small.post("/completion", {"prompt": head + middle + tail, "n_predict": 1, "id_slot": 0})
    plain = small.post("/completion", {"prompt": head + tail, "n_predict": 8, "temperature": 0, "id_slot": 0,
                                       "return_tokens": True}).json()
    small.post("/completion", {"prompt": head + middle + tail, "n_predict": 1, "id_slot": 0})
    reused = small.post("/completion", {"prompt": head + tail, "n_predict": 8, "temperature": 0, "id_slot": 0,
                                        "n_cache_reuse": 4, "return_tokens": True}).json()
    n_tail = len(small.post("/tokenize", {"content": tail}).json()["tokens"])
    assert reused["tokens_cached"] >= plain["tokens_cached"] + n_tail - 2
    assert reused["timings"]["prompt_n"] <= 2
    assert small.post("/completion", {"prompt": "x", "n_cache_reuse": -1}).status_code == 400
