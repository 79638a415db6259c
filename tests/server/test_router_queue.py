"""The router's queue for --models-max slots (server/router/sched.py), end to end, as
llama.cpp's test_router_queue_* tests check llama-server's: a real router over three
copies of SmolLM2 (a, b, c) with LLAMA_SERVER_DEBUG_FAKE_TIMING=1, llama-server's test
switch that adds 2 s to every load and to every proxied request (busy meanwhile), so
that requests overlap on cue.

- a request for a model that finds every slot busy waits; the busy model finishes its
  request and only then is given up;
- requests for one model share one place in the queue: one model is given up for all;
- a client that leaves while queued costs no running model its slot;
- the queue is served in arrival order;
- two requests that both want the one idle model's slot are both served;
- POST /models/load with every slot busy is refused at once (llama-server's 500);
- a model that left the model list (reload) holds its slot until its server has ended."""

from __future__ import annotations

import threading
import time

import psutil
import pytest
import requests

from helpers.server_process import ServerProcess

FAKE = {"LLAMA_SERVER_DEBUG_FAKE_TIMING": "1"}


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory, smollm2_path):
    folder = tmp_path_factory.mktemp("queue-models")
    for name in ("a", "b", "c"):
        (folder / f"{name}.gguf").symlink_to(smollm2_path)
    return folder


@pytest.fixture
def start(models_dir, tmp_path):
    started = []

    def run(models_max: int, folder=None) -> ServerProcess:
        srv = ServerProcess(None, "--models-dir", str(folder or models_dir), "--models-max", str(models_max), "-c", "2048",
                            "-t", "1", env={**FAKE, "HF_HUB_CACHE": str(tmp_path / "hf"),
                                            "PYLLAMA_CACHE": str(tmp_path / "cache")})
        started.append(srv)
        return srv
    yield run
    for srv in started:
        srv.stop()


class Background:
    """One request on a thread: its answer (or error) and when it ended."""

    def __init__(self, fn):
        self.result: requests.Response | None = None
        self.error: Exception | None = None
        self.done_at = 0.0
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self.thread.start()

    def _run(self, fn):
        try:
            self.result = fn()
        except Exception as e:  # noqa: BLE001 - kept for the assertion
            self.error = e
        self.done_at = time.monotonic()

    def ok(self, timeout: float = 120) -> requests.Response:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the request did not end"
        assert self.error is None, repr(self.error)
        assert self.result.status_code == 200, self.result.text
        return self.result


def tokenize(srv: ServerProcess, model: str, timeout: float = 120) -> requests.Response:
    return requests.post(srv.url + "/tokenize", json={"model": model, "content": "hello world"}, timeout=timeout)


def status(srv: ServerProcess) -> dict[str, str]:
    return {m["id"]: m["status"]["value"] for m in srv.get("/models").json()["data"] if m["id"] in "abc"}


def load(srv: ServerProcess, *names: str) -> None:
    for name in names:
        assert srv.post("/models/load", {"model": name}).status_code == 200
    wait_loaded(srv, *names)


def wait_loaded(srv: ServerProcess, *names: str) -> None:
    deadline = time.monotonic() + 120
    while any(status(srv)[n] != "loaded" for n in names):
        assert time.monotonic() < deadline, status(srv)
        time.sleep(0.1)


def test_a_busy_model_finishes_its_request_before_it_is_given_up(start):
    srv = start(1)
    load(srv, "a")
    busy = Background(lambda: tokenize(srv, "a"))
    time.sleep(0.5)  # its request holds "a" for 2 s
    queued = Background(lambda: tokenize(srv, "b"))
    assert busy.ok().json()["tokens"]  # "a" was not stopped under its request
    assert queued.ok().json()["tokens"] == busy.result.json()["tokens"]
    assert status(srv) == {"a": "unloaded", "b": "loaded", "c": "unloaded"}


def test_requests_for_one_model_share_one_eviction(start):
    srv = start(2)
    load(srv, "a", "b")
    busy = Background(lambda: tokenize(srv, "a"))
    time.sleep(0.5)
    waiters = [Background(lambda: tokenize(srv, "c")) for _ in range(3)]
    busy.ok()
    for w in waiters:
        w.ok()
    # one entry for three requests: only "b" (idle) was given up, "a" kept its slot
    assert status(srv) == {"a": "loaded", "b": "unloaded", "c": "loaded"}


def test_a_client_that_leaves_the_queue_costs_no_model_its_slot(start):
    srv = start(1)
    load(srv, "a")
    busy = Background(lambda: tokenize(srv, "a"))
    time.sleep(0.5)
    with pytest.raises(requests.exceptions.ReadTimeout):
        tokenize(srv, "b", timeout=1)
    busy.ok()
    time.sleep(3)  # a waiter still queued would have taken "a"'s slot by now
    assert status(srv) == {"a": "loaded", "b": "unloaded", "c": "unloaded"}
    assert tokenize(srv, "a").status_code == 200  # and the router still serves


def test_the_queue_is_served_in_arrival_order(start):
    srv = start(1)
    load(srv, "a")
    busy = Background(lambda: tokenize(srv, "a"))
    time.sleep(0.5)
    first = Background(lambda: tokenize(srv, "b"))
    time.sleep(1)
    second = Background(lambda: tokenize(srv, "c"))
    busy.ok()
    first.ok()
    second.ok()
    assert first.done_at < second.done_at
    assert status(srv) == {"a": "unloaded", "b": "unloaded", "c": "loaded"}


def test_two_requests_for_the_one_idle_slot_are_both_served(start):
    srv = start(1)
    load(srv, "a")
    first = Background(lambda: tokenize(srv, "b"))
    second = Background(lambda: tokenize(srv, "c"))
    first.ok()
    second.ok()
    assert status(srv)["a"] == "unloaded"


def test_an_explicit_load_with_every_slot_busy_is_refused(start):
    srv = start(1)
    load(srv, "a")
    # a long streamed answer keeps "a" busy for as long as the stream is open
    stream = requests.post(srv.url + "/completion", json={"model": "a", "prompt": "Once", "n_predict": 4000,
                                                          "ignore_eos": True, "stream": True}, stream=True, timeout=60)
    try:
        assert stream.status_code == 200
        lines = stream.iter_lines()  # kept: dropping the iterator would close the connection
        assert next(lines).startswith(b"data: ")
        r = srv.post("/models/load", {"model": "b"})
        assert r.status_code == 500, r.text
        assert r.json()["error"]["message"] == "model limit reached, try again later"
        assert status(srv) == {"a": "loaded", "b": "unloaded", "c": "unloaded"}
    finally:
        stream.close()
    # once "a" is idle, the least recently used model makes room for an explicit load
    load(srv, "b")
    assert status(srv) == {"a": "unloaded", "b": "loaded", "c": "unloaded"}


def test_a_model_that_left_the_list_holds_its_slot_until_its_server_ends(start, tmp_path, smollm2_path):
    folder = tmp_path / "models"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.gguf").symlink_to(smollm2_path)
    srv = start(1, folder)
    load(srv, "a")
    stream = requests.post(srv.url + "/completion", json={"model": "a", "prompt": "Once", "n_predict": 4000,
                                                          "ignore_eos": True, "stream": True}, stream=True, timeout=60)
    try:
        lines = stream.iter_lines()
        assert next(lines).startswith(b"data: ")
        (folder / "a.gguf").unlink()
        assert "a" not in [m["id"] for m in srv.get("/models?reload=1").json()["data"]]
        # "a" was told to stop, but its server finishes the stream first: the one slot is still taken
        with pytest.raises(requests.exceptions.ReadTimeout):
            tokenize(srv, "b", timeout=5)
        servers = [p for p in psutil.Process(srv.proc.pid).children() if "pyllama.server.cli" in " ".join(p.cmdline())]
        assert len(servers) == 1, [p.cmdline() for p in servers]
    finally:
        stream.close()
    assert tokenize(srv, "b").status_code == 200  # once it has ended, "b" gets the slot
