"""MCP servers (--mcp-servers-json / --mcp-servers-config) end to end: a real router
(pyllama-server without -m, an empty --models-dir) and real MCP children
(tests/helpers/mcp_stdio_server.py), as llama-server's tests run them.

One router for most tests; its servers: "echo" (the test server), "slow" (the same with
timeout_ms 500), "where" (env and cwd), "read" (its tool "file" collides with the
built-in read_file), "nocmd" (no command: skipped) and "bad" (a command that does not
exist). Then start-up errors and the stop of a server with calls in flight."""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest
import requests

from helpers.server_process import ServerProcess

MCP_SERVER = str(Path(__file__).resolve().parent.parent / "helpers" / "mcp_stdio_server.py")
TAG = f"mcp-test-{uuid.uuid4().hex[:8]}"  # an argument that finds this module's MCP children


def server_entry(**kw) -> dict:
    return {"command": sys.executable, "args": [MCP_SERVER, TAG], **kw}


def tagged(tag: str = TAG) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            if tag in (p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.Error:
            pass
    return out


def wait_until(cond, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    root = tmp_path_factory.mktemp("mcp")
    (root / "models").mkdir()
    (root / "work").mkdir()
    config = {"mcpServers": {
        "echo": server_entry(),
        "slow": server_entry(timeout_ms=500),
        "where": server_entry(cwd=str(root / "work"), env={"PYLLAMA_MCP_TEST": "yes"}),
        "read": server_entry(),
        "nocmd": {"args": ["x"]},
        "bad": {"command": "pyllama-no-such-command-12345"},
    }}
    s = ServerProcess(None, "--models-dir", str(root / "models"), "--mcp-servers-json", json.dumps(config))
    s.root = root
    yield s
    s.stop()


def call(srv, tool: str, params: dict | None = None, **kw) -> requests.Response:
    return srv.post("/tools", {"tool": tool, "params": params or {}}, **kw)


def test_warm_up_children_are_stopped(srv):
    # every server was started once to list its tools, then stopped: none runs before a call
    assert wait_until(lambda: not tagged())


def test_listing(srv):
    r = srv.get("/tools")
    assert r.status_code == 200
    tools = r.json()
    names = [t["tool"] for t in tools]
    # no --tools: the MCP servers' tools only, "<server>_<tool>", in the config's order
    assert names[:3] == ["echo_echo", "echo_add", "echo_fail"]
    assert "slow_sleep" in names and "where_where" in names
    assert not any(n.startswith(("nocmd_", "bad_")) for n in names)
    echo = tools[0]
    assert echo == {"display_name": "echo_echo", "tool": "echo_echo", "type": "mcp", "permissions": {"write": False},
                    "uses_cwd": False,
                    "definition": {"type": "function", "function": {
                        "name": "echo_echo", "description": "Echo back the input message",
                        "parameters": {"type": "object", "properties": {"message": {"type": "string"}},
                                       "required": ["message"]}}}}
    # a tool without an inputSchema gets {} as its parameters
    fail = next(t for t in tools if t["tool"] == "echo_fail")
    assert fail["definition"]["function"]["parameters"] == {}
    # "read" + "file" is the name of nothing built in here (no --tools): it is offered
    assert "read_file" in names


def test_calls(srv):
    r = call(srv, "echo_echo", {"message": "hello world"})
    assert r.status_code == 200 and r.json() == {"plain_text_response": "echo: hello world"}
    assert call(srv, "echo_add", {"a": 3, "b": 5}).json() == {"plain_text_response": "8"}
    # an isError result, a JSON-RPC error: the tool-error shape, status 200
    assert call(srv, "echo_fail").json() == {"error": "it failed"}
    # respawned on demand and kept: fail_once fails once per process
    assert call(srv, "echo_fail_once").json() == {"error": "first call fails"}
    assert call(srv, "echo_fail_once").json() == {"plain_text_response": "ok"}
    assert len(tagged()) == 1  # the echo server, kept for the next call


def test_env_cwd_and_arguments(srv):
    # the x-tool-cwd header is the built-in tools' business: it is not an argument of an MCP tool
    r = call(srv, "where_where", {"k": 1, "cwd": "/model/says"}, headers={"x-tool-cwd": "/tmp"})
    info = json.loads(r.json()["plain_text_response"])
    assert info == {"cwd": str(srv.root / "work"), "env": "yes", "args": ["k"]}


def test_timeout_does_not_block_others(srv):
    with ThreadPoolExecutor(2) as pool:
        t0 = time.monotonic()
        slow = pool.submit(call, srv, "slow_sleep", {"seconds": 2})
        time.sleep(0.1)
        health = srv.get("/health")  # a hung child blocks nobody else
        assert health.status_code == 200 and time.monotonic() - t0 < 0.5
        r = slow.result()
    assert r.status_code == 200 and r.json() == {"error": "request timed out"}
    assert time.monotonic() - t0 < 1.5
    # the server is still usable after a timed-out call (its late answer is dropped)
    time.sleep(2)
    assert call(srv, "slow_echo", {"message": "late"}).json() == {"plain_text_response": "echo: late"}


def test_concurrent_calls(srv):
    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(lambda i: call(srv, "echo_echo", {"message": f"m{i}"}), range(20)))
    assert [r.json() for r in results] == [{"plain_text_response": f"echo: m{i}"} for i in range(20)]


def test_respawn_after_crash(srv):
    r = call(srv, "echo_exit")
    assert r.status_code == 200 and r.json() == {"error": "transport closed"}
    assert call(srv, "echo_echo", {"message": "again"}).json() == {"plain_text_response": "echo: again"}


def test_unknown_mcp_tool_and_bad_server(srv):
    # a name the server does not list is not a tool here
    r = call(srv, "echo_nope")
    assert r.status_code == 404 and r.json()["error"]["message"] == 'unknown tool "echo_nope"'


def test_startup_errors(tmp_path):
    (tmp_path / "models").mkdir()
    base = ["--models-dir", str(tmp_path / "models")]
    with pytest.raises(RuntimeError, match="failed to parse MCP config JSON"):
        ServerProcess(None, *base, "--mcp-servers-json", "not valid json")
    with pytest.raises(RuntimeError, match="failed to open MCP config file"):
        ServerProcess(None, *base, "--mcp-servers-config", str(tmp_path / "missing.json"))
    with pytest.raises(RuntimeError, match="args must be strings"):
        ServerProcess(None, *base, "--mcp-servers-json", json.dumps({"mcpServers": {"x": {"command": "a",
                                                                                         "args": [1]}}}))


def test_config_file_collision_and_stop(tmp_path):
    """--mcp-servers-config, a name colliding with a built-in tool, CORS narrowed, and a stop
    with a call in flight: prompt, and no MCP child or grandchild left behind."""
    tag = f"mcp-stop-{uuid.uuid4().hex[:8]}"
    (tmp_path / "models").mkdir()
    cfg = tmp_path / "mcp.json"
    cfg.write_text(json.dumps({"mcpServers": {
        "read": {"command": sys.executable, "args": [MCP_SERVER, tag]},
        "gc": {"command": sys.executable, "args": [MCP_SERVER, tag], "timeout_ms": 60000}}}))
    s = ServerProcess(None, "--models-dir", str(tmp_path / "models"), "--mcp-servers-config", str(cfg),
                      "--tools", "read_file")
    try:
        tools = {t["tool"]: t["type"] for t in s.get("/tools").json()}
        assert tools["read_file"] == "server"  # the MCP "read" + "file" was skipped
        assert "read_echo" in tools and "gc_grandchild" in tools
        # --cors-origins defaults to localhost once MCP servers are configured
        assert s.get("/health", headers={"Origin": "http://evil.example"}).headers.get(
            "Access-Control-Allow-Origin") is None
        assert s.get("/health", headers={"Origin": "http://localhost:5173"}).headers.get(
            "Access-Control-Allow-Origin") == "http://localhost:5173"
        grandchild = int(call(s, "gc_grandchild").json()["plain_text_response"])
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(lambda: call(s, "gc_sleep", {"seconds": 30}))
            assert wait_until(lambda: len(tagged(tag)) == 1)
            time.sleep(0.3)
            t0 = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            s.proc.wait(10)
            assert time.monotonic() - t0 < 3, "the call in flight held the stop back"
            try:
                r = pending.result(5)
                assert r.json() == {"error": "cancelled"}
            except requests.RequestException:
                pass
        assert wait_until(lambda: not tagged(tag), 3)
        assert wait_until(lambda: not psutil.pid_exists(grandchild) or
                          psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE, 3)
    finally:
        s.stop()
