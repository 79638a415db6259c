"""Slot files: the format (pyllama.slot_file) refuses anything but a whole, untouched
file of this model and KV layout, and the engine's slot actions (save / restore /
erase, run between steps) give back a slot that continues exactly as if it had
never been saved."""

from __future__ import annotations

import queue
import struct
import threading
import time

import pytest

from pyllama import slot_file
from pyllama.engine import Engine, EngineConfig, ErrorEvent, FinalEvent, SlotAction, Task, TaskRequest
from pyllama.errors import InvalidRequest
from pyllama.llama import Llama
from pyllama.sampling import SamplingParams
from pyllama.slot_file import KvLayout, SlotFileError, SlotState

GREEDY = SamplingParams(temperature=0.0)
FP = "ab" * 32
LAYOUT = KvLayout(type_k=1, type_v=1, n_layer=2, cell_bytes=64)


def state(n: int = 5) -> SlotState:
    n_cells_state = b"PKV1" + bytes(16) + bytes(16 * 2) + bytes(n * (4 + 64))  # shaped like the native blob
    return SlotState(tokens=list(range(10, 10 + n)), state=n_cells_state, lora=(("cd" * 32, 0.5),))


def unpack(data, **kw):
    args = dict(n_vocab=100, n_ctx=64)
    args.update(kw)
    return slot_file.unpack(data, FP, LAYOUT, **args)


# -- the format ------------------------------------------------------------------------
def test_round_trip():
    s = state()
    data = slot_file.pack(s, FP, LAYOUT)
    assert data[:8] == b"PYLLSLOT" and len(data) == 128 + 36 + 4 * 5 + len(s.state)
    assert unpack(data) == s
    assert len(data) <= slot_file.max_size(LAYOUT, 5, n_lora=1)


def test_damaged_and_foreign_files_are_clear_errors():
    data = slot_file.pack(state(), FP, LAYOUT)
    flipped = bytearray(data)
    flipped[-3] ^= 0x40
    other_model = slot_file.pack(state(), "ef" * 32, LAYOUT)
    other_layout = slot_file.pack(state(), FP, KvLayout(0, 0, 2, 128))
    v2 = bytearray(data)
    v2[8:12] = struct.pack("<I", 2)
    cases = [
        (data[:100], "truncated"),
        (data[:-1], "truncated"),
        (data + b"\0", "past its end"),
        (bytes(flipped), "checksum"),
        (b"GGUF" + data[4:], "not a pyllama slot file"),
        (b"", "not a pyllama slot file"),
        (bytes(v2), "version 2"),
        (other_model, "another model"),
        (other_layout, "another layout"),
    ]
    for blob, message in cases:
        with pytest.raises(SlotFileError, match=message):
            unpack(blob)
    with pytest.raises(SlotFileError, match="more than a slot's context"):
        unpack(data, n_ctx=4)
    with pytest.raises(SlotFileError, match="vocabulary"):
        unpack(data, n_vocab=12)
    assert issubclass(SlotFileError, InvalidRequest)  # a 400 on the server


def test_a_rewritten_header_with_a_fresh_checksum_cannot_overrun():
    """Sizes in a crafted header are checked against the file before anything is read."""
    data = bytearray(slot_file.pack(state(), FP, LAYOUT))
    data[60:64] = struct.pack("<I", 0xFFFFFFFF)  # n_tokens
    with pytest.raises(SlotFileError, match="truncated"):
        unpack(bytes(data))


# -- the engine --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def llm(smollm2_path):
    return Llama(smollm2_path, n_ctx=512, n_threads=2)


@pytest.fixture()
def engine(llm):
    llm.kv.clear()
    e = Engine(llm, EngineConfig(n_parallel=2))
    e.start()
    yield e
    assert e.shutdown(wait_s=30)


def run(engine, *reqs, timeout: float = 120):
    q: queue.Queue = queue.Queue()
    tasks = [Task(r, lambda ev, i=i: q.put((i, ev))) for i, r in enumerate(reqs)]
    engine.submit(*tasks)
    last: dict = {}
    while len(last) < len(tasks):
        i, ev = q.get(timeout=timeout)
        if isinstance(ev, (FinalEvent, ErrorEvent)):
            last[i] = ev
    return [last[i].result if isinstance(last[i], FinalEvent) else last[i] for i in range(len(tasks))]


def act(engine, action: str, id_slot: int, state=None, timeout: float = 60):
    q: queue.Queue = queue.Queue()
    engine.submit_action(SlotAction(action, id_slot, q.put, state))
    ev = q.get(timeout=timeout)
    if isinstance(ev, ErrorEvent):
        raise ev.error
    return ev.result


def req(llm, ids, n=16, id_slot=0) -> TaskRequest:
    return TaskRequest(prompt=list(ids), sampling=GREEDY, n_predict=n, id_slot=id_slot)


def test_restored_slot_continues_exactly_as_if_never_saved(llm, engine):
    prompt = llm.tokenize("The three primary colors are red, yellow and")
    first = run(engine, req(llm, prompt))[0]
    follow = prompt + first.tokens + llm.tokenize(" Then the secondary colors are", add_special=False)
    saved = act(engine, "save", 0)
    assert saved.tokens == prompt + first.tokens[:-1]  # the last token sampled is not decoded yet
    layout = KvLayout.of(llm.kv)
    data = slot_file.pack(saved, llm.fingerprint, layout)

    kept = run(engine, req(llm, follow, 24))[0]                  # the slot as it was, never saved
    assert kept.n_cached == len(saved.tokens)
    assert act(engine, "erase", 0) == len(follow) + kept.n_decoded - 1
    cold = run(engine, req(llm, follow, 24))[0]
    assert cold.n_cached == 0 and cold.tokens == kept.tokens   # batch invariance: the cache is only a shortcut

    act(engine, "erase", 0)
    back = slot_file.unpack(data, llm.fingerprint, layout, n_vocab=llm.n_vocab, n_ctx=engine.n_ctx_slot)
    assert act(engine, "restore", 0, back) == len(saved.tokens)
    assert engine.slots[0].cached == saved.tokens
    warm = run(engine, req(llm, follow, 24))[0]
    assert warm.n_cached == len(saved.tokens) and warm.tokens == kept.tokens

    assert act(engine, "restore", 1, back) == len(saved.tokens)  # into another slot too
    other = run(engine, req(llm, follow, 24, id_slot=1))[0]
    assert other.n_cached == len(saved.tokens) and other.tokens == kept.tokens


def test_bad_slot_ids_and_states_fail_alone(llm, engine):
    with pytest.raises(InvalidRequest, match="Invalid slot ID"):
        act(engine, "save", 2)
    with pytest.raises(InvalidRequest, match="Invalid slot ID"):
        act(engine, "erase", -1)
    run(engine, req(llm, llm.tokenize("Hello there"), 4))
    saved = act(engine, "save", 0)
    broken = SlotState(tokens=saved.tokens, state=saved.state[:-10])
    with pytest.raises(SlotFileError, match="cannot be restored"):
        act(engine, "restore", 1, broken)
    assert engine.slots[1].cached == [] and llm.kv.seq_n_cells(1) == 0
    short = SlotState(tokens=saved.tokens[:-1], state=saved.state)   # tokens and cells disagree
    with pytest.raises(SlotFileError, match="positions"):
        act(engine, "restore", 1, short)
    assert engine.slots[1].cached == [] and llm.kv.seq_n_cells(1) == 0
    lora = SlotState(tokens=saved.tokens, state=saved.state, lora=(("00" * 32, 1.0),))
    with pytest.raises(SlotFileError, match="not loaded"):
        act(engine, "restore", 1, lora)
    assert run(engine, req(llm, llm.tokenize("Hello there"), 4))[0].n_decoded == 4  # the engine goes on


def test_an_action_on_a_busy_slot_waits_for_it(llm, engine):
    """As llama-server defers it: the save happens once the slot's task has ended, and no
    new task takes the slot meanwhile."""
    long = req(llm, llm.tokenize("Once upon a time"), 48)
    results: list = []
    t = threading.Thread(target=lambda: results.extend(run(engine, long)))
    t.start()
    while not engine.snapshots[0].is_processing:
        time.sleep(0.001)
    saved = act(engine, "save", 0)
    t.join()
    assert results[0].n_decoded == 48
    assert saved.tokens == long.prompt + results[0].tokens[:-1]
