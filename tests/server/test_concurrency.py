"""Several clients at once: queueing beyond the slots, batch invariance of the
answers, a disconnect freeing its slot, /slots and /metrics while busy."""

from __future__ import annotations

import json
import socket
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


def busy(server) -> bool:
    return any(s["is_processing"] for s in server.get("/slots").json())


def wait_idle(server, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not busy(server):
            return True
        time.sleep(0.05)
    return False


def raw_request(server, body: dict) -> socket.socket:
    """Send a request on a raw socket (the caller closes it without reading)."""
    data = json.dumps(body).encode()
    sock = socket.create_connection(("127.0.0.1", server.port))
    sock.sendall(b"POST /completion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    return sock


def test_a_disconnect_frees_its_slot(server):
    long = {"prompt": "Tell me a long story.", "n_predict": 2000, "ignore_eos": True}
    for stream in (True, False):
        sock = raw_request(server, {**long, "stream": stream})
        deadline = time.monotonic() + 10
        while not busy(server) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert busy(server)
        sock.close()
        assert wait_idle(server, 1.5), f"slot still busy after the client left (stream={stream})"


def test_a_queued_request_that_disconnects_never_runs(server):
    server.post("/completion", {"prompt": "probe", "n_predict": 1, "id_slot": 0})
    probe = server.get("/slots").json()[0]["id_task"]  # task ids are given out in order
    long = {"prompt": "Tell me a long story.", "n_predict": 300, "ignore_eos": True, "stream": True}
    holders = []
    for _ in range(2):  # both slots busy
        holders.append(raw_request(server, long))
        time.sleep(0.2)
    queued = raw_request(server, {**long, "prompt": "A queued request"})  # task probe + 3
    deadline = time.monotonic() + 10  # a loaded machine may take a while to queue it
    while "llamacpp:requests_deferred 1" not in server.get("/metrics").text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "llamacpp:requests_deferred 1" in server.get("/metrics").text
    queued.close()
    time.sleep(0.6)
    for h in holders:
        h.close()
    assert wait_idle(server, 1.5)
    assert max(s["id_task"] for s in server.get("/slots").json()) <= probe + 2
    assert "llamacpp:requests_deferred 0" in server.get("/metrics").text


def test_slots_endpoint_shape(server):
    server.post("/completion", {"prompt": "Hi", "n_predict": 2, "temperature": 0, "id_slot": 0})
    s0 = server.get("/slots").json()[0]
    assert {"id", "n_ctx", "speculative", "is_processing", "id_task", "params", "next_token"} <= set(s0)
    assert s0["n_ctx"] == 2048 and s0["params"]["n_predict"] == 2
    assert server.get("/slots?fail_on_no_slot=1").status_code == 200
