"""llama-server's flags on a running pyllama-server: a command line copied from
llama-server's README (GPU flags included), --host with several addresses and a UNIX
socket, --reuse-port, --api-prefix, --cors-*, the logging flags, -v's __verbose,
-sp, -r, --alias/--tags, --ui-config, --log-prompts-dir, --no-cache-prompt,
--skip-chat-parsing, -np auto, /metrics's Process-Start-Time-Unix, return_progress
and SSE pings."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest
import requests
from helpers.server_process import RUN_DIR, ServerProcess, free_port, healthy, sse_events, wait_until

PROMPT = "The capital of France is"


def wait_health(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    wait_until(lambda: healthy(url, timeout=5), proc, timeout, url, interval=0.1)


def test_a_command_line_from_llama_servers_readme_starts_and_answers(smollm2_path):
    """The README's Docker example (with CUDA: --n-gpu-layers 99), plus -fa on and the flags
    llama.cpp's own test suite passes: each flag without effect says so in one line."""
    port = free_port()
    argv = [sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "-c", "512", "--host", "0.0.0.0",
            "--port", str(port), "--n-gpu-layers", "99", "-fa", "on", "--temp", "0.8", "--seed", "42",
            "--no-slots", "--no-jinja", "--kv-unified", "--swa-full", "--cont-batching", "-t", "2", "--mlock",
            "--no-mmap", "--numa", "distribute", "-sm", "row", "-ts", "3,1", "--spec-type", "none"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=RUN_DIR)
    try:
        wait_health(f"http://127.0.0.1:{port}", proc)
        r = requests.post(f"http://127.0.0.1:{port}/completion",
                          json={"prompt": PROMPT, "n_predict": 3, "temperature": 0}, timeout=60).json()
        assert r["content"].startswith(" Paris")
        assert requests.get(f"http://127.0.0.1:{port}/slots", timeout=10).status_code == 501  # --no-slots
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0
    warned = [line for line in out.splitlines() if "has no effect in pyllama" in line]
    for name in ("--n-gpu-layers", "--flash-attn", "--mmap", "--split-mode", "--tensor-split"):
        assert sum(name + " has no effect" in line for line in warned) == 1, (name, out)
    assert len(warned) == 5 and "Traceback" not in out


def unix_get(path: str, route: str) -> tuple[int, bytes]:
    class UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(path)
    conn = UnixConnection("localhost", timeout=30)
    conn.request("GET", route)
    r = conn.getresponse()
    return r.status, r.read()


def test_several_hosts_ipv4_ipv6_and_a_unix_socket(smollm2_path, tmp_path):
    sock = str(tmp_path / "pyllama.sock")
    s = ServerProcess(smollm2_path, "--host", f"127.0.0.1,::1,{sock}", "--reuse-port", "-np", "1", "-c", "256",
                      "-t", "2")
    try:
        assert s.get("/health").json() == {"status": "ok"}
        assert requests.get(f"http://[::1]:{s.port}/health", timeout=10).json() == {"status": "ok"}
        status, body = unix_get(sock, "/health")
        assert status == 200 and json.loads(body) == {"status": "ok"}
        # --reuse-port: another socket may bind the port too (both set SO_REUSEPORT)
        other = socket.socket()
        other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        other.bind(("127.0.0.1", s.port))
        other.close()
    finally:
        s.stop()
    assert not os.path.exists(sock)  # removed at exit


def test_a_busy_address_is_an_error_at_once(smollm2_path):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    port = holder.getsockname()[1]
    try:
        res = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "--host",
                              "127.0.0.1,::1", "--port", str(port)], capture_output=True, text=True, cwd=RUN_DIR,
                             timeout=60)
    finally:
        holder.close()
    assert res.returncode == 1 and "cannot listen on 127.0.0.1" in res.stderr and "Traceback" not in res.stderr


@pytest.fixture(scope="module")
def flagged(smollm2_path, tmp_path_factory):
    d = tmp_path_factory.mktemp("flagged")
    s = ServerProcess(smollm2_path, "-c", "1024", "-t", "2", "-a", "zeta,alpha", "--tags", "chat,small",
                      "--ui-config", '{"theme": "dark"}', "-v", "-sp", "-r", ".", "--metrics",
                      "--log-prompts-dir", str(d / "prompts"), "--no-cache-prompt", "--skip-chat-parsing",
                      "--api-prefix", "/llm", "--cors-origins", "localhost", "--cors-methods", "GET, POST",
                      "--log-file", str(d / "log.txt"), "-ctk", "q8_0", "-ctv", "q4_0", "--no-warmup",
                      "-n", "5", prefix="/llm")
    s.dir = d
    yield s
    s.stop()


def test_n_predict_is_only_the_default(flagged):
    """-n 5 is what a request without a limit gets; a request's own n_predict wins, above
    or below it (llama-server: n_predict_max = the task's unless -1, else the server's)."""
    def limit(**extra):
        r = flagged.post("/completion", {"prompt": "Hi", "response_fields": ["generation_settings/n_predict"],
                                         **extra})
        assert r.status_code == 200
        return r.json()["generation_settings/n_predict"]
    assert limit() == 5 and limit(n_predict=-1) == 5 and limit(max_tokens=-1) == 5
    assert limit(n_predict=9) == 9 and limit(n_predict=2) == 2 and limit(max_tokens=7) == 7


def test_api_prefix(flagged):
    root = f"http://127.0.0.1:{flagged.port}"
    assert requests.get(root + "/llm/health", timeout=10).status_code == 200
    r = requests.get(root + "/health", timeout=10)
    assert r.status_code == 404 and r.json()["error"]["message"] == "File Not Found"


def test_auto_slots_share_one_unified_cache_and_aliases_tags_ui(flagged):
    props = flagged.get("/props").json()
    assert props["total_slots"] == 4                             # -np -1: four slots ...
    assert props["default_generation_settings"]["n_ctx"] == 1024  # ... each may use the whole cache
    assert props["model_alias"] == "alpha" and props["ui_settings"] == {"theme": "dark"}
    model = flagged.get("/v1/models").json()["data"][0]
    assert (model["id"], model["aliases"], model["tags"]) == ("alpha", ["alpha", "zeta"], ["chat", "small"])


def test_cors_flags(flagged):
    ok = requests.options(flagged.url + "/completion", headers={"Origin": "http://localhost:5173"}, timeout=10)
    assert ok.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
    assert ok.headers["Access-Control-Allow-Methods"] == "GET, POST"
    assert ok.headers["Access-Control-Allow-Credentials"] == "true"
    other = requests.options(flagged.url + "/completion", headers={"Origin": "https://evil.example"}, timeout=10)
    assert other.status_code == 200 and "Access-Control-Allow-Origin" not in other.headers


def test_verbose_special_reverse_prompt_and_no_prompt_cache(flagged):
    body = {"prompt": PROMPT, "n_predict": 8, "temperature": 0}
    r = flagged.post("/completion", body).json()
    assert r["content"] == " Paris" and r["stop_type"] == "word" and r["stopping_word"] == "."   # -r .
    assert flagged.post("/completion", body).json()["tokens_cached"] == 0                         # --no-cache-prompt
    # -sp: a special token shows in the text (<|im_start|> forced by a bias)
    r = flagged.post("/completion", {"prompt": "Hi", "n_predict": 1, "logit_bias": [[1, 100]]}).json()
    assert r["content"] == "<|im_start|>"
    # -v: OpenAI answers carry the native result; the chat is read as plain content (--skip-chat-parsing)
    c = flagged.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2}).json()
    assert c["__verbose"]["prompt"].startswith("<|im_start|>system")
    assert c["__verbose"]["generation_settings"]["chat_format"] == "Content-only"
    t = flagged.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2}).json()
    assert t["__verbose"]["prompt"] == PROMPT and list(t)[-1] == "timings"
    chunks = sse_events(flagged.post("/v1/completions", {"prompt": PROMPT, "max_tokens": 2, "stream": True},
                                     stream=True))
    assert all("__verbose" in c for c in chunks if c != "[DONE]")
    prompts = sorted((flagged.dir / "prompts").iterdir())
    assert prompts and any(p.read_text() == PROMPT for p in prompts)


def test_metrics_start_time_header(flagged):
    r = flagged.get("/metrics")
    assert r.status_code == 200 and abs(int(r.headers["Process-Start-Time-Unix"]) - time.time()) < 3600


def test_log_file(flagged):
    text = (flagged.dir / "log.txt").read_text()
    assert "listening on http://127.0.0.1" in text and "warming up" not in text  # --no-warmup


def test_return_progress_native_and_chat(flagged):
    prompt = "This is a test. " * 40
    ev = sse_events(flagged.post("/completion", {"prompt": prompt, "n_predict": 2, "stream": True,
                                                 "return_progress": True, "cache_prompt": False}, stream=True))
    progress = [e["prompt_progress"] for e in ev if "prompt_progress" in e]
    assert progress[0]["cache"] == progress[0]["processed"] == 0 and progress[-1]["processed"] == progress[-1]["total"]
    assert all(p["total"] == progress[0]["total"] for p in progress) and len(progress) >= 2
    assert [p["processed"] for p in progress] == sorted({p["processed"] for p in progress})
    # not asked: no progress
    ev = sse_events(flagged.post("/completion", {"prompt": prompt, "n_predict": 2, "stream": True}, stream=True))
    assert not any("prompt_progress" in e for e in ev)
    chat = sse_events(flagged.post("/v1/chat/completions", {"messages": [{"role": "user", "content": prompt}],
                                                           "max_tokens": 2, "stream": True,
                                                           "return_progress": True}, stream=True))
    progress = [e["prompt_progress"] for e in chat if e != "[DONE]" and "prompt_progress" in e]
    assert progress and progress[-1]["processed"] == progress[-1]["total"]


def test_sse_ping_interval_field_is_checked(flagged):
    r = flagged.post("/completion", {"prompt": "x", "n_predict": 1, "stream": True, "sse_ping_interval": "soon"})
    assert r.status_code == 400
    r = flagged.post("/completion", {"prompt": "x", "n_predict": 1, "stream": True, "sse_ping_interval": -1})
    assert r.status_code == 200


def test_logging_flags(smollm2_path, tmp_path):
    """--log-jsonl: JSON lines on stdout; -lv 2: warnings and errors only."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "-c", "256",
                             "--port", str(port), "--log-jsonl", "-lv", "2", "-ngl", "99", "-t", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=RUN_DIR)
    try:
        wait_health(f"http://127.0.0.1:{port}", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    lines = [json.loads(line) for line in out.decode().splitlines() if line.strip()]
    assert lines and {x["level"] for x in lines} == {"warning"}
    assert any("--n-gpu-layers has no effect" in x["msg"] for x in lines)
    assert b"listening on" not in out + err  # info is below -lv 2


def proc_status(pid: int, tid: int | None = None) -> dict:
    path = f"/proc/{pid}/status" if tid is None else f"/proc/{pid}/task/{tid}/status"
    with open(path) as f:
        return dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)


def test_cpu_placement(smollm2_path):
    """--cpu-mask: the process's affinity (every thread inherits it); --cpu-strict 1: each compute
    thread pinned to one CPU of it; --prio -1: nice 5."""
    cpus = sorted(os.sched_getaffinity(0))
    mask = hex(sum(1 << c for c in cpus[:2]))
    s = ServerProcess(smollm2_path, "-C", mask, "--cpu-strict", "1", "--prio", "-1", "--poll", "0", "-t", "2",
                      "-c", "256", "-np", "1")
    try:
        pid = s.proc.pid
        assert s.post("/completion", {"prompt": "Hi", "n_predict": 2}).status_code == 200
        allowed = {proc_status(pid, int(t))["Cpus_allowed_list"] for t in os.listdir(f"/proc/{pid}/task")}
        want = ",".join(map(str, cpus[:2])) if len(cpus) > 1 and cpus[1] != cpus[0] + 1 else \
            (f"{cpus[0]}-{cpus[1]}" if len(cpus) > 1 else str(cpus[0]))
        assert want in allowed                           # threads that are not compute threads
        if len(cpus) > 1:                                # compute threads: one CPU each
            assert {str(cpus[0]), str(cpus[1])} <= allowed
        assert allowed <= {want, str(cpus[0])} | ({str(cpus[1])} if len(cpus) > 1 else set())
        assert os.getpriority(os.PRIO_PROCESS, pid) == 5
    finally:
        s.stop()


def test_chat_input_tokens(flagged):
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    r = flagged.post("/v1/chat/completions/input_tokens", body).json()
    prompt = flagged.post("/apply-template", body).json()["prompt"]
    n = len(flagged.post("/tokenize", {"content": prompt, "add_special": True, "parse_special": True}).json()["tokens"])
    assert r == {"object": "response.input_tokens", "input_tokens": n}


def test_numa_plans(tmp_path):
    """--numa on a two-node topology (a fake /sys/devices/system/node)."""
    from pyllama.server.placement import numa_nodes, numa_plan, parse_cpulist
    for i, cpus in enumerate(["0-1,4", "2-3,5", ""]):
        (tmp_path / f"node{i}").mkdir()
        (tmp_path / f"node{i}" / "cpulist").write_text(cpus + "\n")
    (tmp_path / "possible").write_text("0-2\n")
    assert parse_cpulist("0-3,8,10-11") == [0, 1, 2, 3, 8, 10, 11]
    nodes = numa_nodes(tmp_path)
    assert nodes == [[0, 1, 4], [2, 3, 5]]
    every = set(range(6))
    assert numa_plan("isolate", [[0, 1]], every, 0) == ([], []) == numa_plan("distribute", [[0, 1]], every, 0)
    assert numa_plan("isolate", nodes, every, 3) == ([2, 3, 5], [])
    assert numa_plan("isolate", nodes, every, None) == ([0, 1, 4], [])
    assert numa_plan("distribute", nodes, every, 0) == ([], [0, 2, 1, 3, 4, 5])
    assert numa_plan("distribute", nodes, {0, 1, 2}, 0) == ([], [0, 2, 1])  # inside --cpu-mask
    assert numa_plan("isolate", nodes, {2, 3, 4}, 3) == ([2, 3], [])         # where the process may run
    assert numa_plan("isolate", nodes, {2, 3, 4}, 0) == ([4], [])            # (started outside: the first node)
    assert numa_plan("isolate", nodes, {2, 3}, 0) == ([], [])                # one node left: nothing to do
    assert numa_plan("numactl", nodes, every, 0) == ([], [])
    assert numa_nodes(tmp_path / "absent") == []


@pytest.mark.parametrize("mode", ["isolate", "distribute"])
def test_numa_flag_places_the_threads(smollm2_path, tmp_path, mode):
    """On a two-node topology (one CPU each, read from a fake sysfs): isolate keeps every
    thread on the CPU of the node the server started on; distribute pins the two compute
    threads one to each node."""
    mine = sorted(os.sched_getaffinity(0))
    if len(mine) < 2:
        pytest.skip("needs two CPUs")
    for i, cpu in enumerate(mine[:2]):
        (tmp_path / f"node{i}").mkdir()
        (tmp_path / f"node{i}" / "cpulist").write_text(f"{cpu}\n")
    s = ServerProcess(smollm2_path, "--numa", mode, "-t", "2", "-c", "256", "-np", "1",
                      env={"PYLLAMA_SYSFS_NODES": str(tmp_path)})
    try:
        pid = s.proc.pid
        assert s.post("/completion", {"prompt": "Hi", "n_predict": 2}).status_code == 200
        sets = {frozenset(parse_list(proc_status(pid, int(t))["Cpus_allowed_list"]))
                for t in os.listdir(f"/proc/{pid}/task")}
        if mode == "isolate":
            assert sets in ({frozenset({mine[0]})}, {frozenset({mine[1]})}), sets
        else:
            assert {frozenset({mine[0]}), frozenset({mine[1]})} <= sets, sets
    finally:
        s.stop()


def parse_list(text: str) -> list[int]:
    from pyllama.server.placement import parse_cpulist
    return parse_cpulist(text)
