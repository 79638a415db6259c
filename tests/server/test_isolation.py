"""One request never hurts another (issue 15), through real HTTP: every hostile
request gets its own clear answer, /health keeps answering within a second while
they run, and a greedy control request with cache_prompt gives the same tokens
before and after them."""

from __future__ import annotations

import json
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

import pytest
import requests

from helpers.server_process import RUN_DIR, ServerProcess, free_port, self_signed_cert, sse_events

CONTROL = {"prompt": "The capital of France is", "n_predict": 16, "temperature": 0, "cache_prompt": True,
           "return_tokens": True}
EXP_GRAMMAR = 'root ::= e e e e e e e e e e e e "x"\ne ::= ' + " | ".join(['"="'] * 8)


@pytest.fixture(scope="module")
def srv(smollm2_path):
    s = ServerProcess(smollm2_path, "-np", "2", "-c", "4096", "-t", "2")
    yield s
    s.stop()


def control(srv) -> list[int]:
    r = srv.post("/completion", CONTROL)
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def raw_post(srv, path: str, data: bytes, timeout: float = 60) -> requests.Response:
    return requests.post(srv.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=timeout)


def error_of(r: requests.Response) -> dict:
    err = r.json()["error"]
    assert set(err) >= {"code", "message", "type"} and err["code"] == r.status_code
    return err


def big_grammar() -> str:
    return 'root ::= "' + "a" * (1 << 20) + '"{2000}'


def ambiguous_grammar(depth: int = 15) -> str:
    """2**depth starting stacks: each level's two alternatives differ by what follows."""
    lines = ["root ::= a0"] + [f'a{i} ::= a{i + 1} "y" | a{i + 1} "z"' for i in range(depth)]
    return "\n".join(lines + [f'a{depth} ::= "x"'])


# (name, path, body or raw bytes, expected status, a piece of the message)
HOSTILE = [
    ("empty token prompt", "/completion", {"prompt": [[]], "n_predict": 4}, 200, None),
    ("n_probs 1e30", "/completion", {"prompt": "Hi", "n_predict": 1, "n_probs": 1e30}, 200, None),
    ("top_logprobs 1e30", "/v1/chat/completions",
     {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "logprobs": True, "top_logprobs": 1e30},
     200, None),
    ("2^15 starting stacks", "/completion", {"prompt": "x", "grammar": ambiguous_grammar()}, 400, "ambiguous"),
    ("2^15 equal alternatives", "/completion",
     {"prompt": "x", "n_predict": 4, "grammar": "root ::= " + " ".join(["a"] * 15) + '\na ::= "x" | "x"'}, 200, None),
    ("1 MB literal x2000", "/completion", {"prompt": "x", "grammar": big_grammar()}, 400, "grammar"),
    ("lone surrogate", "/completion", b'{"prompt": "a\\ud800b", "n_predict": 2}', 400, "lone surrogate"),
    ("NaN", "/completion", b'{"prompt": "x", "temperature": NaN}', 400, "NaN"),
    ("Infinity", "/completion", b'{"prompt": "x", "top_p": -Infinity}', 400, "Infinity"),
    ("1e400", "/completion", b'{"prompt": "x", "temperature": 1e400}', 400, "out of range"),
    ("65 stop strings", "/completion", {"prompt": "x", "stop": [f"s{i}" for i in range(65)]}, 400, "at most 64"),
    ("a long stop string", "/completion", {"prompt": "x", "stop": ["s" * 257]}, 400, "at most 256"),
    ("65 DRY breakers", "/completion",
     {"prompt": "x", "dry_multiplier": 0.8, "dry_sequence_breakers": [f"b{i}" for i in range(65)]}, 400,
     "dry_sequence_breakers"),
    ("65 triggers", "/completion",
     {"prompt": "x", "grammar": 'root ::= "a"', "grammar_lazy": True,
      "grammar_triggers": [{"type": 2, "value": f"t{i}"} for i in range(65)]}, 400, "at most 64 triggers"),
    ("257 prompts", "/completion", {"prompt": ["x"] * 257, "n_predict": 1}, 400, "at most 256 prompts"),
    ("schema fanning out", "/completion",
     {"prompt": "x", "json_schema": {"$defs": {f"d{i}": {"allOf": [{"$ref": f"#/$defs/d{i + 1}"}] * 2}
                                              for i in range(40)} | {"d40": {"type": "string"}},
                                     "$ref": "#/$defs/d0"}}, 400, "json_schema"),
    ("12 MB prompt", "/completion", {"prompt": "word " * ((12 << 20) // 5), "n_predict": 1}, 400,
     "exceeds the available"),
    ("20 MB body", "/completion", {"prompt": "word " * (4 << 20), "n_predict": 1}, 400, "at most 16 MB"),
]


def test_each_hostile_request_gets_its_own_answer_and_nothing_else_changes(srv):
    before = control(srv)
    stop = threading.Event()
    health: list[float] = []

    def poll_health():
        while not stop.is_set():
            t0 = time.monotonic()
            r = requests.get(srv.url + "/health", timeout=10)
            health.append(time.monotonic() - t0)
            assert r.status_code == 200
            time.sleep(0.1)

    poller = threading.Thread(target=poll_health)
    poller.start()
    failures = []
    try:
        for name, path, body, status, piece in HOSTILE:
            t0 = time.monotonic()
            r = raw_post(srv, path, body) if isinstance(body, bytes) else srv.post(path, body)
            took = time.monotonic() - t0
            if r.status_code != status:
                failures.append(f"{name}: {r.status_code} {r.text[:300]}")
                continue
            if status != 200:
                err = error_of(r)
                if piece and piece.lower() not in err["message"].lower():
                    failures.append(f"{name}: message {err['message']!r}")
            if took > 10:
                failures.append(f"{name}: took {took:.1f} s")
    finally:
        stop.set()
        poller.join()
    assert not failures, "\n".join(failures)
    assert max(health) < 1.0, f"/health took {max(health):.2f} s"
    assert control(srv) == before


def test_empty_prompt_answer_and_the_cache_it_leaves(srv):
    """The repro of issue 15: an empty token prompt used to corrupt the slot's cache."""
    before = srv.post("/completion", {**CONTROL, "id_slot": 0}).json()["tokens"]
    r = srv.post("/completion", {"prompt": [[]], "n_predict": 4, "id_slot": 0})
    assert r.status_code == 200
    body = r.json()
    assert (body["content"], body["tokens_predicted"], body["tokens_evaluated"], body["stop"]) == ("", 0, 0, True)
    r = srv.post("/completion", {**CONTROL, "id_slot": 0})
    assert r.json()["tokens"] == before
    assert r.json()["tokens_cached"] > 0


def test_huge_n_probs_clamps_to_the_vocabulary(srv):
    r = srv.post("/completion", {"prompt": "Hi", "n_predict": 1, "n_probs": 1e30})
    probs = r.json()["completion_probabilities"][0]["top_logprobs"]
    n_vocab = srv.get("/v1/models").json()["data"][0]["meta"]["n_vocab"]
    assert len(probs) == n_vocab


def test_exponential_grammar_fails_alone(srv):
    """A grammar whose masks would take exponential work fails its own request (a clear
    error), while a request beside it on the other slot finishes with its usual tokens."""
    before = control(srv)
    out: dict = {}

    def hostile():
        out["r"] = srv.post("/completion", {"prompt": "=" * 64, "n_predict": 8, "grammar": EXP_GRAMMAR})

    t = threading.Thread(target=hostile)
    t.start()
    time.sleep(0.2)
    assert control(srv) == before
    t.join(120)
    r = out["r"]
    assert r.status_code == 400, r.text
    assert "too complex" in error_of(r)["message"]
    assert control(srv) == before


def test_full_wait_queue_is_503_at_once(smollm2_path):
    s = ServerProcess(smollm2_path, "-np", "1", "-c", "1024", "-t", "2", "--max-queue", "1")
    try:
        long = {"prompt": "Tell me a story.", "n_predict": 400, "ignore_eos": True}
        def hold():
            try:
                s.post("/completion", long)
            except requests.ConnectionError:  # still generating when the server is stopped (a slow machine)
                pass
        holders = [threading.Thread(target=hold) for _ in range(2)]
        for h in holders:
            h.start()
            time.sleep(0.5)  # one runs, one waits
        t0 = time.monotonic()
        r = s.post("/completion", {"prompt": "x", "n_predict": 1})
        assert time.monotonic() - t0 < 2
        assert r.status_code == 503
        err = error_of(r)
        assert err["type"] == "unavailable_error" and "limit 1" in err["message"]
        assert s.get("/health").status_code == 200
    finally:
        s.stop()
        for h in holders:
            h.join(10)


def test_sigterm_lets_a_running_stream_finish_then_exits_0(smollm2_path):
    s = ServerProcess(smollm2_path, "-np", "1", "-c", "1024", "-t", "2", "--shutdown-grace", "120")
    r = requests.post(s.url + "/completion", json={"prompt": "Count: 1, 2, 3,", "n_predict": 24,
                                                    "ignore_eos": True, "stream": True}, stream=True, timeout=120)
    lines = r.iter_lines()
    first = next(line for line in lines if line)
    s.proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(s.url + "/health", timeout=5)  # no new connections
    rest = [json.loads(line[6:]) for line in lines if line.startswith(b"data: ")]
    assert rest[-1]["stop"] is True and rest[-1]["tokens_predicted"] == 24
    assert first.startswith(b"data: ")
    assert s.proc.wait(60) == 0


def test_too_many_slots_is_refused_at_start():
    out = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-m", "smollm2-135m", "-np", "65",
                          "--port", str(free_port())], capture_output=True, text=True, timeout=60, cwd=RUN_DIR)
    assert out.returncode == 2
    assert "--parallel must be -1 (auto) or between 1 and 64" in out.stderr


def test_disconnect_is_seen_under_tls(smollm2_path, tmp_path):
    key, cert = self_signed_cert(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "--port",
                             str(port), "--ssl-key-file", str(key), "--ssl-cert-file", str(cert), "-c", "1024",
                             "-t", "2"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=RUN_DIR)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/health", verify=False, timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
        body = json.dumps({"prompt": "Tell me a long story.", "n_predict": 2000, "ignore_eos": True}).encode()
        ctx = ssl.create_default_context()
        ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
        sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
        sock.sendall(b"POST /completion HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

        def busy() -> bool:
            return requests.get(url + "/slots", verify=False, timeout=5).json()[0]["is_processing"]

        deadline = time.monotonic() + 20
        while not busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert busy()
        sock.close()
        deadline = time.monotonic() + 5
        while busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not busy(), "the slot kept working for a client that left"
    finally:
        proc.terminate()
        proc.wait(30)


def test_streams_survive_hostile_neighbours(srv):
    """A stream runs while hostile requests arrive; it ends normally with every token."""
    r = requests.post(srv.url + "/completion", json={**CONTROL, "stream": True}, stream=True, timeout=120)
    for _, path, body, _, _ in HOSTILE[3:9]:
        raw_post(srv, path, body) if isinstance(body, bytes) else srv.post(path, body)
    events = sse_events(r)
    assert events[-1]["stop"] is True
    assert [t for e in events[:-1] for t in e["tokens"]] == control(srv)


def test_server_alive_at_the_end(srv):
    assert srv.get("/health").status_code == 200
    assert all(not s["is_processing"] for s in srv.get("/slots").json())
