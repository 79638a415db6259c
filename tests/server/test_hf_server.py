"""pyllama-server -hf against a fake Hugging Face Hub (helpers/fake_hf.py), with the
real huggingface_hub client in the server process: the quant's file fetched into the
Hugging Face cache with its progress in the log, the model served under the
repository's name; then LLAMA_ARG_HF_REPO with --offline and the Hub gone: the cache
serves; and a router lists what the Hugging Face cache holds."""

from __future__ import annotations

import pytest

from helpers.fake_hf import FakeHub, env_for
from helpers.server_process import ServerProcess

REPO = "pyllama-test/SmolLM2-135M-Instruct-GGUF"


@pytest.fixture(scope="module")
def hub(smollm2_path):
    h = FakeHub({REPO: {"README.md": b"# test\n", "SmolLM2-135M-Instruct-Q8_0.gguf": b"not this one",
                        "SmolLM2-135M-Instruct-Q4_1.gguf": smollm2_path}})
    yield h
    h.close()


def test_hf_repo_then_offline_from_the_cache(hub, tmp_path):
    env = env_for(hub, tmp_path / "hf")
    srv = ServerProcess(None, "-hf", f"{REPO}:Q4_1", "-c", "1024", "-t", "2", env=env)
    try:
        r = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4})
        assert r.status_code == 200 and r.json()["model"] == f"{REPO}:Q4_1"
        props = srv.get("/props").json()
        assert props["model_path"].startswith(str(tmp_path / "hf"))
        assert props["model_path"].endswith("SmolLM2-135M-Instruct-Q4_1.gguf")
    finally:
        srv.stop()
    log = srv.proc.stdout.read().decode(errors="replace")
    assert f"fetching {REPO}:Q4_1: SmolLM2-135M-Instruct-Q4_1.gguf from {hub.url}" in log, log
    assert f"fetched {REPO}:Q4_1: SmolLM2-135M-Instruct-Q4_1.gguf: 98.4 of 98.4 MB (100%)" in log, log
    assert not any(p.endswith("Q8_0.gguf") for m, p, _ in hub.requests if m == "GET")

    offline = {**env, "HF_ENDPOINT": "http://127.0.0.1:9", "LLAMA_ARG_HF_REPO": f"{REPO}:Q4_1"}
    srv = ServerProcess(None, "--offline", "-c", "1024", "-t", "2", env=offline)
    try:
        assert srv.post("/completion", {"prompt": "Hi", "n_predict": 2}).status_code == 200
    finally:
        srv.stop()

    router = ServerProcess(None, env={**offline, "LLAMA_ARG_HF_REPO": ""})
    try:
        ids = [m["id"] for m in router.get("/models").json()["data"]]
        assert f"{REPO}:Q4_1" in ids, ids
        r = router.post("/completion", {"model": f"{REPO}:Q4_1", "prompt": "Hi", "n_predict": 2})
        assert r.status_code == 200, r.text
    finally:
        router.stop()


def test_unknown_repository_is_one_error_line(hub, tmp_path):
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-hf", "nobody/nothing", "--port", "0"],
                         env={**__import__("os").environ, **env_for(hub, tmp_path / "hf")}, capture_output=True,
                         text=True, timeout=120, cwd=str(tmp_path))
    assert out.returncode == 1
    assert "Hugging Face repository 'nobody/nothing' not found" in out.stderr.splitlines()[-1], out.stderr
