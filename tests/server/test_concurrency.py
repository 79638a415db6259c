"""Several clients at once: queueing beyond the slots, batch invariance of the
answers, a disconnect freeing its slot, /slots and /metrics while busy."""

from __future__ import annotations

import threading
import time

import requests

from helpers.server_process import sse_events

PROMPTS = ["The capital of France is", "Once upon a time", "The best way to learn is", "In 1492,"]


def stream(server, prompt: str, n: int, out: dict) -> None:
    r = requests.post(server.url + "/completion", json={"prompt": prompt, "n_predict": n, "temperature": 0,
                                                        "stream": True, "return_tokens": True},
                      stream=True, timeout=120)
    out[prompt] = sse_events(r)


def test_four_streams_on_two_slots(server):
    alone = {p: server.post("/completion", {"prompt": p, "n_predict": 24, "temperature": 0,
                                            "return_tokens": True}).json()["tokens"] for p in PROMPTS}
    out: dict = {}
    threads = [threading.Thread(target=stream, args=(server, p, 24, out)) for p in PROMPTS]
    for t in threads:
        t.start()
    seen_deferred = seen_busy = False
    deadline = time.monotonic() + 60
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        m = server.get("/metrics").text
        seen_deferred |= "llamacpp:requests_deferred 1" in m or "llamacpp:requests_deferred 2" in m
        seen_busy |= sum(s["is_processing"] for s in server.get("/slots").json()) == 2
        time.sleep(0.01)
    for t in threads:
        t.join()
    for p in PROMPTS:
        events = out[p]
        assert events[-1]["stop"] is True
        assert [t for e in events[:-1] for t in e["tokens"]] == alone[p]  # same tokens as alone
    assert seen_busy and seen_deferred
    m = server.get("/metrics").text
    assert "# TYPE llamacpp:prompt_tokens_total counter" in m and "llamacpp:n_decode_total" in m


def test_a_disconnect_frees_its_slot(server):
    for use_stream in (True, False):
        r = requests.post(server.url + "/completion", json={"prompt": "Tell me a long story.", "n_predict": 2000,
                                                            "stream": use_stream, "ignore_eos": True},
                          stream=True, timeout=60)
        if use_stream:
            next(r.iter_lines())
        else:
            time.sleep(0.5)
        r.close()
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if not any(s["is_processing"] for s in server.get("/slots").json()):
                break
            time.sleep(0.05)
        assert not any(s["is_processing"] for s in server.get("/slots").json()), use_stream


def test_slots_endpoint_shape(server):
    server.post("/completion", {"prompt": "Hi", "n_predict": 2, "temperature": 0, "id_slot": 0})
    s0 = server.get("/slots").json()[0]
    assert {"id", "n_ctx", "speculative", "is_processing", "id_task", "params", "next_token"} <= set(s0)
    assert s0["n_ctx"] == 2048 and s0["params"]["n_predict"] == 2
    assert server.get("/slots?fail_on_no_slot=1").status_code == 200
