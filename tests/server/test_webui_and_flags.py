"""The web UI and --path, --no-webui, --timeout, n_cmpl, and flags from the environment."""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from helpers.server_process import ServerProcess


def test_builtin_web_ui(server):
    r = server.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["Content-Type"]
    assert "/v1/chat/completions" in r.text
    assert server.get("/nope.html").status_code == 404


@pytest.fixture(scope="module")
def custom(smollm2_path, tmp_path_factory):
    root = tmp_path_factory.mktemp("www")
    (root / "index.html").write_text("<p>custom</p>")
    (root / "app.js").write_text("let x = 1;")
    s = ServerProcess(smollm2_path, "--path", str(root), "--timeout", "1", "-c", "512", "-np", "2",
                      env={"LLAMA_ARG_ALIAS": "from-env", "LLAMA_ARG_N_PARALLEL": "1"})
    yield s
    s.stop()


def test_static_path_and_traversal(custom):
    assert custom.get("/").text == "<p>custom</p>"
    assert custom.get("/app.js").text == "let x = 1;"
    for path in ("/../../etc/passwd", "/..%2f..%2fetc%2fpasswd", "//etc/passwd"):
        conn = http.client.HTTPConnection("127.0.0.1", custom.port, timeout=5)
        conn.request("GET", path)  # sent as written, no client-side normalising
        r = conn.getresponse()
        assert r.status == 404 and b"root:" not in r.read(), path
        conn.close()


def test_flags_beat_environment(custom):
    props = custom.get("/props").json()
    assert props["model_alias"] == "from-env"       # LLAMA_ARG_ALIAS applies
    assert props["total_slots"] == 2                 # -np 2 beats LLAMA_ARG_N_PARALLEL=1


def test_idle_connections_time_out(custom):
    sock = socket.create_connection(("127.0.0.1", custom.port))
    sock.settimeout(5)
    t0 = time.monotonic()
    assert sock.recv(1) == b""  # the server closes the idle connection
    assert time.monotonic() - t0 < 4


def test_no_webui(smollm2_path):
    s = ServerProcess(smollm2_path, "--no-webui", "-c", "256")
    try:
        assert s.get("/").status_code == 404
    finally:
        s.stop()


def test_n_cmpl(server):
    r = server.post("/completion", {"prompt": ["Hello", "Once upon a time"], "n_cmpl": 2, "n_predict": 3,
                                    "temperature": 0}).json()
    assert [x["index"] for x in r] == [0, 1, 2, 3]
    assert r[0]["content"] == r[1]["content"] and r[2]["content"] == r[3]["content"]
    assert server.post("/completion", {"prompt": "x", "n_cmpl": 3}).status_code == 400  # above --parallel


def test_no_jinja_uses_the_builtin_format_the_template_matches(smollm2_path):
    s = ServerProcess(smollm2_path, "--no-jinja", "-c", "256")
    try:
        msgs = [{"role": "user", "content": "Hi"}]
        # SmolLM2's Jinja template adds a default system prompt; plain chatml does not
        assert s.post("/apply-template", {"messages": msgs}).json()["prompt"] == \
            "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
    finally:
        s.stop()
