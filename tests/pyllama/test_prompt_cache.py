"""The prompt cache's policy (llama-server's server_prompt_cache), without a model."""

from __future__ import annotations

from pyllama.engine.prompt_cache import PromptCache

A = list(range(100, 200))
B = list(range(500, 540))


def state(data: bytes):
    """What a slot's KV state read gives (read only when an entry is kept)."""
    return lambda: data


def test_save_skips_what_it_holds_and_drops_what_the_new_entry_holds():
    pc = PromptCache(0)
    assert pc.save(A[:50], state(b"x" * 50), ())
    assert not pc.save(A[:30], state(b"x" * 30), ())          # an entry holds all of it
    assert pc.save(A[:30], state(b"x" * 30), (0.5,))          # ... but not under other adapters
    assert pc.save(A, state(b"x" * 100), ())                  # holds the first entry: that one goes
    assert [len(e.tokens) for e in pc.entries] == [30, 100]
    assert not pc.save([], state(b""), ())


def test_the_limit_drops_the_oldest_and_refuses_what_cannot_fit():
    pc = PromptCache(100)
    pc.save(A[:10], state(b"a" * 40), ())
    pc.save(B[:10], state(b"b" * 40), ())
    pc.save(list(range(900, 910)), state(b"c" * 40), ())
    assert [e.tokens[0] for e in pc.entries] == [500, 900] and pc.size == 80
    assert not pc.save(list(range(1000, 1010)), state(b"d" * 101), ())  # over the limit alone
    assert pc.size == 80


def test_best_beats_the_slot_on_both_counts_and_keeps_a_quarter():
    pc = PromptCache(0)
    pc.save(A, state(b"a"), ())
    pc.save(B, state(b"b"), ())
    prompt = A[:80] + [7, 8]
    assert pc.best(B, prompt, ()).tokens == tuple(A)     # the slot holds B: A serves the prompt better
    assert pc.best([], prompt, ()).tokens == tuple(A)    # an empty slot: any entry that serves it
    assert pc.best(A[:90], prompt, ()) is None           # the slot already keeps as much
    assert pc.best(B, A[:20], ()) is None                # A would keep under a quarter of itself
    assert pc.best(B, prompt, (1.0,)) is None            # computed under other adapters
    e = pc.best(B, prompt, ())
    pc.take(e)
    assert [x.tokens for x in pc.entries] == [tuple(B)]
