"""Router mode end to end: a real router (pyllama-server without -m) with SmolLM2 (from
--models-dir), gemma-3 and MiniLM (from --models-preset, MiniLM as an embedding
server), --models-max 2. The tests run in file order on one router: listing, errors,
autoload on the first request with a streamed answer relayed as it is generated,
/models/load and /models/unload, the eviction of the least recently used model; then
routers that are killed (SIGKILL) or stopped (SIGTERM) leave no model's server behind."""

from __future__ import annotations

import json
import re
import os
import signal
import time

import psutil
import pytest
import requests

from helpers.server_process import ServerProcess


def wait_status(srv, name: str, value: str, timeout: float = 120.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        models = {m["id"]: m for m in srv.get("/models").json()["data"]}
        if models[name]["status"]["value"] == value:
            return models[name]
        time.sleep(0.1)
    raise TimeoutError(f"{name} never became {value}: {models[name]['status']}")


def children(srv) -> list[psutil.Process]:
    return [p for p in psutil.Process(srv.proc.pid).children() if "pyllama.server.cli" in " ".join(p.cmdline())]


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pids: list[int], timeout: float) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if all(gone(p) for p in pids):
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"still running after {timeout} s: {[p for p in pids if not gone(p)]}")


@pytest.fixture(scope="module")
def setup(tmp_path_factory, smollm2_path, gemma3_path, minilm_path):
    root = tmp_path_factory.mktemp("router")
    models = root / "models"
    models.mkdir()
    (models / "smol.gguf").symlink_to(smollm2_path)
    preset = root / "presets.ini"
    preset.write_text(f"""version = 1
; every model
[*]
c = 1024
LLAMA_ARG_THREADS = 1

[gemma]
model = gemma3-270m
np = 2

[minilm]
model = {minilm_path}
embeddings = true
""")
    env = {"HF_HUB_CACHE": str(root / "hf-empty")}  # no Hugging Face models in this router's list
    return models, preset, env


@pytest.fixture(scope="module")
def router(setup):
    models, preset, env = setup
    srv = ServerProcess(None, "--models-dir", str(models), "--models-preset", str(preset), "--models-max", "2",
                        "--temp", "0", env=env)
    yield srv
    srv.stop()


def test_lists_the_models_of_every_source(router):
    data = router.get("/models").json()
    assert data["object"] == "list"
    models = {m["id"]: m for m in data["data"]}
    assert {"smol", "gemma", "minilm", "smollm2-135m", "gemma3-270m"} <= set(models)
    smol = models["smol"]
    assert list(smol)[:10] == ["id", "aliases", "tags", "object", "owned_by", "created", "status", "architecture",
                               "source", "can_remove"]
    assert smol["status"]["value"] == "unloaded" and smol["source"] == "models_dir"
    assert smol["architecture"] == {"input_modalities": ["text"], "output_modalities": ["text"]}
    assert models["smollm2-135m"]["source"] == "cache"
    gemma = models["gemma"]
    assert gemma["source"] == "preset" and gemma["status"]["preset"].startswith("[gemma]\n")
    args = gemma["status"]["args"]
    # [*] then the section, then the router's own command line; host, port and alias set by the router
    for flag, value in (("--model", "gemma3-270m"), ("--alias", "gemma"), ("--host", "127.0.0.1"),
                        ("--ctx-size", "1024"), ("--parallel", "2"), ("--threads", "1"), ("--temperature", "0.0")):
        assert args[args.index(flag) + 1] == value, args
    assert "--embeddings" in models["minilm"]["status"]["args"]
    assert [m["id"] for m in router.get("/v1/models").json()["data"]] == [m["id"] for m in data["data"]]
    props = router.get("/props").json()
    assert props["role"] == "router" and props["max_instances"] == 2 and props["models_autoload"] is True
    assert re.fullmatch(r"b[0-9.]+-pyllama", props["build_info"])  # llama-server's "b<build>-<commit>"
    assert router.get("/health").json() == {"status": "ok"}


def test_reload_reads_the_sources_again(router, setup, smollm2_path):
    models_dir = setup[0]
    (models_dir / "later.gguf").symlink_to(smollm2_path)
    try:
        assert "later" not in [m["id"] for m in router.get("/models").json()["data"]]
        listed = {m["id"]: m for m in router.get("/models?reload=1").json()["data"]}
        assert listed["later"]["status"]["value"] == "unloaded" and listed["later"]["source"] == "models_dir"
    finally:
        (models_dir / "later.gguf").unlink()
    assert "later" not in [m["id"] for m in router.get("/models?reload=1").json()["data"]]


@pytest.mark.parametrize("path, body, code, message", [
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}]}, 400,
     "model name is missing from the request"),
    ("/v1/chat/completions", {"model": "nope", "messages": []}, 400, "model 'nope' not found"),
    ("/completion", {"model": "nope", "prompt": "x"}, 400, "model 'nope' not found"),
    ("/models/load", {"model": "nope"}, 404, "model is not found"),
    ("/models/unload", {"model": "nope"}, 400, "model is not found"),
    ("/models/unload", {"model": "gemma"}, 400, "model is not running"),
])
def test_errors_as_llama_server_gives_them(router, path, body, code, message):
    r = router.post(path, body)
    assert r.status_code == code, r.text
    assert r.json()["error"]["message"] == message
    assert r.json()["error"]["type"] == ("not_found_error" if code == 404 else "invalid_request_error")


def test_no_autoload_for_a_request_that_says_so(router):
    r = requests.post(router.url + "/completion?autoload=false", json={"model": "smol", "prompt": "x"}, timeout=30)
    assert r.status_code == 400 and r.json()["error"]["message"] == "model is not loaded"
    assert router.get("/slots").status_code == 400  # a GET names its model with ?model=


def test_first_request_loads_the_model_and_streams_as_generated(router):
    t0 = time.monotonic()
    r = requests.post(router.url + "/v1/chat/completions", stream=True, timeout=120, json={
        "model": "smol", "messages": [{"role": "user", "content": "Tell me about Paris."}], "max_tokens": 48,
        "temperature": 0, "stream": True, "stream_options": {"include_usage": True}})
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    arrivals, events = [], []
    for line in r.iter_lines(chunk_size=1, decode_unicode=True):
        if line.startswith("data: "):
            arrivals.append(time.monotonic())
            payload = line[len("data: "):]
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    assert events[-1] == "[DONE]" and events[-2]["usage"]["completion_tokens"] == 48
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-2] if e["choices"])
    assert text.strip()
    # relayed as generated, not buffered: the chunks came over the generation's whole time
    content = arrivals[1:-3]
    assert len(content) >= 40
    assert content[-1] - content[0] > 0.2, (content[-1] - content[0])
    gaps = [b - a for a, b in zip(content, content[1:])]
    assert sum(g > 0.002 for g in gaps) > len(gaps) // 2, gaps
    assert wait_status(router, "smol", "loaded")["meta"]["n_vocab"] == 49152  # the child's own /v1/models meta
    assert time.monotonic() - t0 < 120
    # the same answer as the model's server gives directly, and the child got the router's --temp 0
    whole = router.post("/v1/chat/completions", {"model": "smol", "max_tokens": 48, "messages": [
        {"role": "user", "content": "Tell me about Paris."}]}).json()
    assert whole["choices"][0]["message"]["content"] == text and whole["model"] == "smol"
    slots = requests.get(router.url + "/slots?model=smol", timeout=30)
    assert slots.status_code == 200 and len(slots.json()) == 4  # -np -1 (auto): 4 slots


def test_load_and_unload(router):
    r = router.post("/models/load", {"model": "gemma"})
    assert r.status_code == 200 and r.json() == {"success": True}
    assert router.post("/models/load", {"model": "gemma"}).json()["error"]["message"] == "model is already running"
    info = wait_status(router, "gemma", "loaded")
    assert info["status"]["args"][info["status"]["args"].index("--port") + 1] != "0"
    out = router.post("/completion", {"model": "gemma", "prompt": "The capital of France is", "n_predict": 4})
    assert out.status_code == 200 and out.json()["model"] == "gemma"
    assert router.get("/props?model=gemma").json()["total_slots"] == 2
    assert len(children(router)) == 2  # smol and gemma


def test_models_max_unloads_the_least_recently_used(router):
    # smol (used before gemma was loaded) is the least recently used of the two running
    pid_smol = next(p.pid for p in children(router) if "--alias smol " in " ".join(p.cmdline()) + " ")
    r = router.post("/v1/embeddings", {"model": "minilm", "input": ["The cat sits on the mat.", "A feline rests."]})
    assert r.status_code == 200, r.text
    data = r.json()["data"]
    assert len(data) == 2 and len(data[0]["embedding"]) == 384
    models = {m["id"]: m["status"]["value"] for m in router.get("/models").json()["data"]}
    assert (models["smol"], models["gemma"], models["minilm"]) == ("unloaded", "loaded", "loaded")
    wait_gone([pid_smol], 15)
    assert router.post("/completion", {"model": "minilm", "prompt": "x"}).status_code == 501  # an embedding server


def test_unload_stops_the_models_server(router):
    pid = next(p.pid for p in children(router) if "--alias gemma " in " ".join(p.cmdline()) + " ")
    assert router.post("/models/unload", {"model": "gemma"}).json() == {"success": True}
    wait_status(router, "gemma", "unloaded", timeout=30)
    wait_gone([pid], 15)
    status = {m["id"]: m["status"] for m in router.get("/models").json()["data"]}["gemma"]
    assert "failed" not in status  # asked to stop: not a failure


def test_a_model_that_fails_to_load(setup, tmp_path):
    models, _, env = setup
    bad = tmp_path / "models"
    bad.mkdir()
    (bad / "broken.gguf").write_bytes(b"GGUF" + b"\0" * 60)
    srv = ServerProcess(None, "--models-dir", str(bad), env=env)
    try:
        r = srv.post("/completion", {"model": "broken", "prompt": "x"})
        assert r.status_code == 500 and r.json()["error"]["message"].startswith("model name=broken failed to load")
        status = {m["id"]: m["status"] for m in srv.get("/models").json()["data"]}["broken"]
        assert status["value"] == "unloaded" and status["failed"] is True and status["exit_code"] == 1
    finally:
        srv.stop()


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_no_models_server_outlives_the_router(setup, how):
    models, preset, env = setup
    srv = ServerProcess(None, "--models-dir", str(models), "--models-preset", str(preset), env=env)
    try:
        assert srv.post("/models/load", {"model": "minilm"}).status_code == 200
        r = srv.post("/completion", {"model": "smol", "prompt": "Hello", "n_predict": 2})
        assert r.status_code == 200
        wait_status(srv, "minilm", "loaded")
        pids = [p.pid for p in children(srv)]
        assert len(pids) == 2
        os.kill(srv.proc.pid, how)
        srv.proc.wait(30)
        took = wait_gone(pids, 10)
        assert took < 5, took
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


def test_a_sleeping_models_server_is_shown_sleeping(smollm2_path, tmp_path):
    """--sleep-idle-seconds reaches the model's server; when it sleeps, /models says
    "sleeping" and /models/sse sends model_status sleeping; a request wakes it (loaded)."""
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "smol.gguf").symlink_to(smollm2_path)
    srv = ServerProcess(None, "--models-dir", str(tmp_path / "m"), "--sleep-idle-seconds", "1", "-c", "256",
                        "-t", "1")
    seen: list[dict] = []
    stream = requests.get(srv.url + "/models/sse", stream=True, timeout=60)

    def read():
        try:
            for line in stream.iter_lines():
                if line.startswith(b"data: "):
                    seen.append(json.loads(line[6:]))
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    import threading
    threading.Thread(target=read, daemon=True).start()
    try:
        ask = {"model": "smol", "prompt": "Hi", "n_predict": 2}
        assert srv.post("/completion", ask).status_code == 200
        wait_status(srv, "smol", "sleeping", timeout=30)
        assert srv.get("/props", params={"model": "smol"}).json()["is_sleeping"] is True
        assert srv.post("/completion", ask).status_code == 200
        smol = {m["id"]: m for m in srv.get("/models").json()["data"]}["smol"]
        assert smol["status"]["value"] in ("loaded", "sleeping")
        deadline = time.monotonic() + 10
        statuses = []
        while time.monotonic() < deadline:
            statuses = [e["data"]["status"] for e in seen if e["event"] == "model_status" and e["model"] == "smol"]
            if statuses[-2:] == ["sleeping", "loaded"] or statuses.count("sleeping") >= 2:
                break
            time.sleep(0.05)
        assert statuses[:3] == ["loading", "sleeping", "loaded"], seen
    finally:
        stream.close()
        srv.stop()
