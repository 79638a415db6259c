"""Router mode's model downloads against a fake Hugging Face Hub (helpers/fake_hf.py),
with the real huggingface_hub client in the router's download child: POST /models
fetches `user/model:QUANT` in the background with its progress on GET /models/sse, a
loaded model keeps its --models-max room meanwhile, the downloaded model is listed,
served and removable (DELETE /models deletes its cached files); /models/unload cancels
a download that is still running; bad names are llama-server's errors."""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import psutil
import pytest
import requests

from helpers.fake_hf import FakeHub, env_for
from helpers.server_process import ServerProcess

REPO = "pyllama-test/SmolLM2-135M-Instruct-GGUF"
SLOW = "pyllama-test/Slow-GGUF"
NAME = f"{REPO}:Q4_1"


class Events:
    """GET /models/sse, read on a thread."""

    def __init__(self, srv: ServerProcess):
        self.items: list[dict] = []
        self.resp = requests.get(srv.url + "/models/sse", stream=True, timeout=60)
        assert self.resp.status_code == 200
        assert self.resp.headers["Content-Type"].startswith("text/event-stream")
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for line in self.resp.iter_lines():
                if line.startswith(b"data: "):
                    self.items.append(json.loads(line[6:]))
        except Exception:  # noqa: BLE001 - closed by the test
            pass

    def wait(self, event: str, model: str, timeout: float = 60) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for e in self.items:
                if e["event"] == event and e["model"] == model:
                    return e
            time.sleep(0.02)
        raise AssertionError(f"no {event} event for {model}: {self.items}")

    def close(self) -> None:
        self.resp.close()


@pytest.fixture(scope="module")
def hub(smollm2_path, tmp_path_factory):
    big = tmp_path_factory.mktemp("slow") / "slow-Q8_0.gguf"
    big.write_bytes(b"GGUF" + bytes(40 << 20))
    h = FakeHub({REPO: {"README.md": b"# test\n", "SmolLM2-135M-Instruct-Q4_1.gguf": smollm2_path},
                 SLOW: {"slow-Q8_0.gguf": big}}, slow={"slow-Q8_0.gguf": 0.5})
    yield h
    h.close()


@pytest.fixture(scope="module")
def router(hub, smollm2_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("router-dl")
    (root / "models").mkdir()
    (root / "models" / "smol.gguf").symlink_to(smollm2_path)
    srv = ServerProcess(None, "--models-dir", str(root / "models"), "--models-max", "1", "-c", "1024",
                        "-t", "1", "--temp", "0", env=env_for(hub, root / "hf"))
    srv.hf_cache = root / "hf"
    yield srv
    srv.stop()


def models(srv) -> dict[str, dict]:
    return {m["id"]: m for m in srv.get("/models").json()["data"]}


def fetch_children(srv) -> list[psutil.Process]:
    return [p for p in psutil.Process(srv.proc.pid).children() if "router.fetch" in " ".join(p.cmdline())]


def test_download_list_serve_and_delete(router, hub):
    r = router.post("/models/load", {"model": "smol"})
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 120
    while models(router)["smol"]["status"]["value"] != "loaded":
        assert time.monotonic() < deadline
        time.sleep(0.1)

    events = Events(router)
    try:
        r = router.post("/models", {"model": NAME})
        assert r.status_code == 200 and r.json() == {"success": True}, r.text
        assert events.wait("model_status", NAME)["data"] == {"status": "downloading"}
        events.wait("download_finished", NAME, timeout=120)
        progress = [e["data"] for e in events.items if e["event"] == "download_progress" and e["model"] == NAME]
        assert progress, events.items
        url = f"{hub.url}/{REPO}/resolve/main/SmolLM2-135M-Instruct-Q4_1.gguf"
        size = hub._size(hub.repos[REPO]["SmolLM2-135M-Instruct-Q4_1.gguf"])
        assert progress[-1] == {url: {"done": size, "total": size}}
        assert "data" not in events.wait("download_finished", NAME)

        listed = models(router)
        events.wait("models_reload", "*")  # the list was read again
        assert listed[NAME]["status"]["value"] == "unloaded"
        assert listed[NAME]["source"] == "cache" and listed[NAME]["can_remove"] is True
        assert listed["smol"]["status"]["value"] == "loaded"  # the download took no --models-max room
        assert listed["smol"]["can_remove"] is False
        assert not fetch_children(router)

        r = router.post("/models", {"model": NAME})
        assert r.status_code == 400 and r.json()["error"]["message"] == f"model '{NAME}' already exists"

        r = router.post("/completion", {"model": NAME, "prompt": "The capital of France is", "n_predict": 4})
        assert r.status_code == 200 and r.json()["content"], r.text
        assert events.wait("status_change", NAME)["data"]["status"] == "loaded"

        files = list(router.hf_cache.rglob("*Q4_1.gguf"))
        assert files
        r = requests.delete(router.url + "/models", params={"model": NAME}, timeout=60)
        assert r.status_code == 200 and r.json() == {"success": True}, r.text
        events.wait("model_remove", NAME)
        assert NAME not in models(router)
        assert not list(router.hf_cache.rglob("*Q4_1.gguf"))
        assert not [p for p in router.hf_cache.rglob("blobs/*") if p.stat().st_size > 1000]
        assert router.get("/health").status_code == 200
    finally:
        events.close()


def test_unload_cancels_a_download(router):
    name = f"{SLOW}:Q8_0"
    events = Events(router)
    try:
        r = router.post("/models", {"model": name})
        assert r.status_code == 200, r.text
        events.wait("download_progress", name)
        entry = models(router)[name]
        assert entry["status"]["value"] == "downloading"
        assert list(entry["status"]["progress"].values())[0]["total"] == (40 << 20) + 4
        assert fetch_children(router)
        r = router.post("/models/unload", {"model": name})
        assert r.status_code == 200 and r.json() == {"success": True}
        events.wait("download_failed", name)
        assert name not in models(router)
        assert not fetch_children(router)
        # as llama-server, a cancelled download leaves no partial file behind
        assert not list(router.hf_cache.rglob("*.incomplete"))
        assert not [p for p in router.hf_cache.rglob("blobs/*") if p.stat().st_size > 1 << 20]
    finally:
        events.close()


@pytest.mark.parametrize("body, message", [
    ({}, "model must be a non-empty string"),
    ({"model": 5}, "model must be a non-empty string"),
    ({"model": "no-slash"}, "model validation failed, unable to download: invalid Hugging Face repository"),
    ({"model": "pyllama-test/missing"}, "model validation failed, unable to download: Hugging Face repository "
                                        "'pyllama-test/missing' not found"),
    ({"model": f"{REPO}:Q2_K"}, "model validation failed, unable to download: no GGUF model file for quant 'Q2_K'"),
    ({"model": "a/" + "b" * 5000}, "model name is too long"),
    ({"model": f"{REPO}:x:Q4_1"}, "model validation failed, unable to download: invalid Hugging Face model name"),
    ("[" * 100000 + "]" * 100000, "JSON parse error: the body is nested too deeply"),
])
def test_download_errors(router, body, message):
    r = router.post("/models", body) if isinstance(body, dict) else requests.post(
        router.url + "/models", data=body, headers={"Content-Type": "application/json"}, timeout=60)
    assert r.status_code == 400, r.text
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error" and err["message"].startswith(message), err


@pytest.mark.parametrize("query, code, message", [
    ({}, 400, "model must be a non-empty string"),
    ({"model": "nope"}, 500, "model name=nope is not found"),
    ({"model": "smol"}, 500, "model name=smol is not removable (not from cache)"),
])
def test_delete_errors(router, query, code, message):
    r = requests.delete(router.url + "/models", params=query, timeout=30)
    assert r.status_code == code and r.json()["error"]["message"] == message, r.text
    assert "smol" in models(router)


def test_no_download_outlives_the_router(hub, tmp_path):
    (tmp_path / "models").mkdir()
    srv = ServerProcess(None, "--models-dir", str(tmp_path / "models"), env=env_for(hub, tmp_path / "hf"))
    try:
        events = Events(srv)
        assert srv.post("/models", {"model": f"{SLOW}:Q8_0"}).status_code == 200
        events.wait("download_progress", f"{SLOW}:Q8_0")
        pids = [p.pid for p in fetch_children(srv)]
        assert len(pids) == 1
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait(30)
        _, alive = psutil.wait_procs([psutil.Process(p) for p in pids if psutil.pid_exists(p)], timeout=10)
        assert not alive
    finally:
        if srv.proc.poll() is None:
            srv.proc.kill()


def test_head_of_the_event_stream_leaves_no_subscriber(tmp_path):
    """A HEAD of /models/sse (Flask answers it from the GET route) never starts the stream."""
    from pyllama.server.config import ServerConfig
    from pyllama.server.router.app import create_router_app
    (tmp_path / "models").mkdir()
    app = create_router_app(ServerConfig(models_dir=str(tmp_path / "models")), {})
    c = app.test_client()
    for _ in range(3):
        assert c.head("/models/sse").status_code == 200
    assert app.config["PYLLAMA_ROUTER"].events.subscribers == []
