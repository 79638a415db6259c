"""--cache-ram end to end: with one slot and two conversations taking turns, each turn
finds its prompt in the host-memory cache (llama-server's prompt cache) instead of
decoding it again, and answers exactly as it did the first time; --cache-ram 0 keeps
nothing."""

from __future__ import annotations

import pytest

from helpers.server_process import ServerProcess

A = "Here is a long story about a lighthouse keeper who lived alone on a rocky island. " * 6
B = "A completely different text about cooking pasta with tomatoes and basil in summer. " * 6


@pytest.fixture(scope="module", params=["8192", "0"], ids=["cache-ram", "no-cache-ram"])
def one_slot(request, smollm2_path):
    s = ServerProcess(smollm2_path, "-np", "1", "-c", "2048", "-t", "2", "--cache-ram", request.param)
    s.cache_ram = request.param != "0"
    yield s
    s.stop()


def complete(server, prompt: str) -> dict:
    r = server.post("/completion", {"prompt": prompt, "n_predict": 6, "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()


def test_conversations_taking_turns_on_one_slot(one_slot):
    a1 = complete(one_slot, A)
    b1 = complete(one_slot, B)
    a2 = complete(one_slot, A)
    b2 = complete(one_slot, B)
    assert a1["tokens_cached"] == 0 and b1["tokens_cached"] == 0
    assert (a2["content"], b2["content"]) == (a1["content"], b1["content"])
    if one_slot.cache_ram:  # all but the last prompt token (decoded again for its logits)
        assert a2["tokens_cached"] == a2["tokens_evaluated"] - 1
        assert b2["tokens_cached"] == b2["tokens_evaluated"] - 1
        assert a2["timings"]["prompt_n"] == 1
    else:
        assert a2["tokens_cached"] == 0 and b2["tokens_cached"] == 0
    # a prompt that continues a conversation still reuses the slot or the cache
    a3 = complete(one_slot, A + a1["content"] + " Then")
    assert a3["tokens_cached"] > (a1["tokens_evaluated"] if one_slot.cache_ram else -1)
