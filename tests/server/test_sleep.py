"""--sleep-idle-seconds: an idle server unloads its model (its memory goes back to the
system, /props says is_sleeping, /health stays 200), /health, /props, /models and
/metrics do not wake it, and the next request wakes it and gets the same answer."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.server_process import ServerProcess, sse_events

PROMPT = "The capital of France is"
IDLE_S = 2


@pytest.fixture(scope="module")
def srv(smollm2_path, tmp_path_factory):
    s = ServerProcess("smollm2-135m", "-np", "2", "-c", "4096", "-t", "2", "--metrics", "--sleep-idle-seconds",
                      str(IDLE_S), "--slot-save-path", str(tmp_path_factory.mktemp("slots")))
    yield s
    s.stop()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def sleeping(srv) -> bool:
    return srv.get("/props").json()["is_sleeping"]


def wait_asleep(srv, timeout: float = 30) -> float:
    t0 = time.monotonic()
    while not sleeping(srv):
        assert time.monotonic() - t0 < timeout, "the server did not go to sleep"
        time.sleep(0.2)
    return time.monotonic() - t0


def complete(srv, **kw) -> dict:
    r = srv.post("/completion", {"prompt": PROMPT, "n_predict": 12, "temperature": 0, "return_tokens": True, **kw})
    assert r.status_code == 200, r.text
    return r.json()


def test_sleep_frees_memory_and_a_request_wakes_it(srv):
    awake = complete(srv)
    assert not sleeping(srv)
    rss_awake = rss_kb(srv.proc.pid)
    wait_asleep(srv)
    time.sleep(0.5)  # the unload runs on a worker thread
    rss_asleep = rss_kb(srv.proc.pid)
    assert rss_awake - rss_asleep > 100_000, (rss_awake, rss_asleep)  # weights, packed copies, KV cache
    for path in ("/health", "/v1/health", "/props", "/models", "/v1/models", "/metrics"):  # none of these wakes it
        r = srv.get(path)
        assert r.status_code == 200, (path, r.text)
    assert srv.get("/health").json() == {"status": "ok"}
    props = srv.get("/props").json()
    assert props["is_sleeping"] is True and props["total_slots"] == 2
    assert props["default_generation_settings"]["n_ctx"] == 2048
    assert srv.get("/v1/models").json()["data"][0]["meta"]["n_vocab"] == 49152
    time.sleep(IDLE_S)
    assert sleeping(srv)

    again = complete(srv)  # waits for the model to load
    assert again["tokens"] == awake["tokens"] and again["content"] == awake["content"]
    assert not sleeping(srv)
    assert rss_kb(srv.proc.pid) - rss_asleep > 100_000
    metrics = srv.get("/metrics").text
    assert "llamacpp:tokens_predicted_total 24" in metrics  # the counters survived the sleep


def test_many_requests_wake_it_once_and_all_get_answers(srv):
    wait_asleep(srv)
    results: list = []
    threads = [threading.Thread(target=lambda: results.append(complete(srv)["tokens"])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and all(r == results[0] for r in results)
    assert not sleeping(srv)


def test_a_running_request_keeps_it_awake(srv):
    """A long stream outlasts the idle time: the server does not sleep under it."""
    wait_asleep(srv)
    t0 = time.monotonic()
    r = srv.post("/completion", {"prompt": "Once upon a time", "n_predict": 500, "temperature": 0,
                                 "ignore_eos": True, "stream": True}, stream=True)
    events = sse_events(r)
    assert time.monotonic() - t0 > IDLE_S + 0.5  # longer than the idle time ...
    assert events[-1]["stop"] and events[-1]["tokens_predicted"] == 500  # ... and never cut short
    assert not any("error" in e for e in events)


def test_slot_actions_wake_it(srv):
    wait_asleep(srv)
    complete(srv, id_slot=0)
    wait_asleep(srv)  # the slot's cache went with the model
    r = srv.post("/slots/0?action=erase")
    assert r.status_code == 200 and r.json() == {"id_slot": 0, "n_erased": 0}
    assert not sleeping(srv)
