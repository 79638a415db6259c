"""API keys, CORS, the loading state, HTTPS, and running under gunicorn."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from helpers.server_process import RUN_DIR, ServerProcess, free_port, self_signed_cert


@pytest.fixture(scope="module")
def keyed(smollm2_path, tmp_path_factory):
    keyfile = tmp_path_factory.mktemp("keys") / "keys.txt"
    keyfile.write_text("from-file\n")
    s = ServerProcess(smollm2_path, "--api-key", "k1,k2", "--api-key-file", str(keyfile), "-c", "1024")
    yield s
    s.stop()


def test_api_keys(keyed):
    body = {"prompt": "Hi", "n_predict": 1}
    r = keyed.post("/completion", body)
    assert r.status_code == 401
    assert r.json()["error"] == {"code": 401, "message": "Invalid API Key", "type": "authentication_error"}
    assert keyed.post("/completion", body, headers={"Authorization": "Bearer wrong"}).status_code == 401
    for headers in ({"Authorization": "Bearer k1"}, {"Authorization": "Bearer k2"}, {"X-Api-Key": "k2"},
                    {"Authorization": "Bearer from-file"}):
        assert keyed.post("/completion", body, headers=headers).status_code == 200, headers
    assert keyed.get("/health").status_code == 200 and keyed.get("/v1/health").status_code == 200
    assert keyed.get("/v1/models").status_code == 401
    assert keyed.get("/").status_code == 200 and keyed.get("/slots").status_code == 401  # the web UI page is public


def test_cors_preflight_needs_no_key(keyed):
    r = requests.options(keyed.url + "/v1/chat/completions", headers={
        "Origin": "http://example.com", "Access-Control-Request-Method": "POST"}, timeout=10)
    assert r.status_code == 200
    assert r.headers["Access-Control-Allow-Methods"] == "GET, POST, DELETE, OPTIONS"
    assert r.headers["Access-Control-Allow-Headers"] == "*"


def test_loading_state_answers_503():
    from pyllama.server import create_app
    from pyllama.server.config import ServerConfig
    app = create_app(ServerConfig(model="unused"), load=False)
    c = app.test_client()
    r = c.get("/health")
    assert r.status_code == 503
    assert r.get_json() == {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    assert c.post("/completion", json={"prompt": "x"}).status_code == 503


def test_loading_state_answers_503_before_the_key_check_on_every_route(tmp_path):
    """Routes that need no model (/tools, /cors-proxy) are no way around the key while loading."""
    from pyllama.server import create_app
    from pyllama.server.config import ServerConfig
    app = create_app(ServerConfig(model="unused", api_key="k", tools="all", ui_mcp_proxy=True), load=False)
    c = app.test_client()
    loading = {"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}}
    for method, path, body in [("post", "/tools", {"tool": "exec_shell_command", "params": {"command": "id"}}),
                               ("get", "/tools", None), ("get", "/cors-proxy?url=http://127.0.0.1:1/", None),
                               ("get", "/props", None), ("get", "/v1/models", None)]:
        r = getattr(c, method)(path, json=body)
        assert (r.status_code, r.get_json()) == (503, loading), path


def test_https(smollm2_path, tmp_path):
    key, cert = self_signed_cert(tmp_path)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "--port",
                             str(port), "--ssl-key-file", str(key), "--ssl-cert-file", str(cert), "-c", "512"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=RUN_DIR)
    try:
        deadline, ok = time.monotonic() + 30, False
        while time.monotonic() < deadline and not ok:
            try:
                ok = requests.get(f"https://127.0.0.1:{port}/health", verify=str(cert), timeout=1).status_code == 200
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine answers late
                time.sleep(0.1)
        assert ok
    finally:
        proc.terminate()
        proc.wait(10)


def test_runs_under_gunicorn(smollm2_path):
    port = free_port()
    env = {**os.environ, "LLAMA_ARG_MODEL": str(smollm2_path), "LLAMA_ARG_CTX_SIZE": "1024",
           "LLAMA_ARG_N_PARALLEL": "2"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b",
                             f"127.0.0.1:{port}", "pyllama.server:create_app()"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=RUN_DIR)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(url + "/health", timeout=1).status_code == 200:
                    break
            except (requests.ConnectionError, requests.Timeout):  # a loaded machine answers late
                pass
            time.sleep(0.1)
        r = requests.post(url + "/completion", json={"prompt": "The capital of France is", "n_predict": 3,
                                                     "temperature": 0}, timeout=60)
        assert r.status_code == 200 and r.json()["content"].startswith(" Paris")
        props = requests.get(url + "/props", timeout=10).json()
        assert props["total_slots"] == 2 and props["default_generation_settings"]["n_ctx"] == 512
    finally:
        proc.terminate()
        proc.wait(10)
