"""pyllama-server -dr: a model from a (fake) Docker Hub registry is fetched into the
model cache and served; a bad name stops the server with a one-line error."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers.fake_registry import FakeRegistry
from helpers.server_process import RUN_DIR, ServerProcess


def test_docker_model_is_fetched_and_served(smollm2_path, tmp_path):
    reg = FakeRegistry({"ai/smollm2:135M-Q4_1": smollm2_path})
    env = {**reg.env(), "PYLLAMA_CACHE": str(tmp_path)}
    srv = ServerProcess(None, "-dr", "smollm2:135M-Q4_1", "-c", "512", "-t", "1", env=env)
    try:
        r = srv.post("/completion", {"prompt": "The capital of France is", "n_predict": 4, "temperature": 0})
        assert r.status_code == 200 and r.json()["content"], r.text
        cached = tmp_path / "models" / "ai_smollm2_135M-Q4_1.gguf"
        assert cached.stat().st_size == smollm2_path.stat().st_size
        assert srv.get("/props").json()["model_path"] == str(cached)
    finally:
        srv.stop()
        reg.close()


def test_bad_docker_name_is_one_line(tmp_path):
    out = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-dr", "Not A Name", "--port", "0"],
                         capture_output=True, text=True, timeout=120, cwd=RUN_DIR,
                         env={**os.environ, "PYLLAMA_CACHE": str(tmp_path)})
    assert out.returncode != 0
    assert "--docker-repo: invalid Docker repository 'Not A Name'" in out.stdout + out.stderr
