"""The built-in server tools (--tools) at /tools, end to end, as llama-server's: one
router (pyllama-server without -m, an empty --models-dir) with --tools all for most
tests; then servers for the other set-ups (no tools, start-up errors, an explicit
--cors-origins with an API key, a model server with two tools). Container runtimes
need docker: those tests skip without it (the ssh runtime: test_tools_ssh.py)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from helpers.server_process import ServerProcess, sse_events

ALL = ["read_file", "file_glob_search", "grep_search", "exec_shell_command", "write_file", "edit_file", "get_info"]


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    s = ServerProcess(None, "--models-dir", str(models), "--tools", "all")
    yield s
    s.stop()


def call(srv, tool: str, params: dict | None = None, headers: dict | None = None) -> dict:
    r = srv.post("/tools", {"tool": tool, "params": params or {}}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def ok(srv, tool: str, params: dict | None = None, headers: dict | None = None) -> dict:
    body = call(srv, tool, params, headers)
    assert "error" not in body, body
    return body


def error_of(r: requests.Response, status: int) -> str:
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert err["code"] == status and err["type"] == ("server_error" if status == 500 else "invalid_request_error")
    return err["message"]


# -- the list ---------------------------------------------------------------------------------

def test_listing(srv):
    tools = srv.get("/tools").json()
    assert [t["tool"] for t in tools] == ALL
    by = {t["tool"]: t for t in tools}
    assert by["read_file"]["display_name"] == "Read file"
    assert {k for k, t in by.items() if t["permissions"]["write"]} == {"exec_shell_command", "write_file",
                                                                       "edit_file"}
    for t in tools:
        assert list(t) == ["display_name", "tool", "type", "permissions", "uses_cwd", "definition"]
        assert t["type"] == "server" and t["uses_cwd"] is True
        fn = t["definition"]["function"]
        assert t["definition"]["type"] == "function" and fn["name"] == t["tool"]
        assert fn["parameters"]["type"] == "object"
    assert by["grep_search"]["definition"]["function"]["parameters"]["required"] == ["path", "pattern"]
    assert "required" not in by["get_info"]["definition"]["function"]["parameters"]


# -- files ----------------------------------------------------------------------------------

def test_read_file(srv, tmp_path):
    f = tmp_path / "a.txt"
    f.write_text("one\ntwo\nthree\nfour")
    assert ok(srv, "read_file", {"path": str(f)}) == {"plain_text_response": "one\ntwo\nthree\nfour\n"}
    r = ok(srv, "read_file", {"path": str(f), "start_line": 2, "end_line": 3, "append_loc": True})
    assert r["plain_text_response"] == "2\u2192two\n3\u2192three\n"
    # an optional param of the wrong type takes its default, as llama-server's json_value
    assert ok(srv, "read_file", {"path": str(f), "start_line": "x", "end_line": 1.9})["plain_text_response"] == "one\n"
    assert call(srv, "read_file", {"path": str(tmp_path / "nope")}) == {"error": f"cannot stat file: {tmp_path}/nope"}
    assert call(srv, "read_file", {"path": str(tmp_path)})["error"].startswith("cannot stat file")
    big = tmp_path / "big.txt"
    big.write_text("x" * 100 + "\n" + ("y" * 99 + "\n") * 400)
    assert call(srv, "read_file", {"path": str(big)}) == {
        "error": "file too large (40101 bytes, max 16384). Use start_line/end_line to read a portion."}
    text = ok(srv, "read_file", {"path": str(big), "start_line": 1, "end_line": 1000})["plain_text_response"]
    assert text.endswith("[output truncated]") and len(text.encode()) <= 16384 + len("[output truncated]")
    # x-resp-type: base64 (a header: the model cannot ask for it)
    data = bytes(range(256)) * 3
    (tmp_path / "bin").write_bytes(data)
    r = ok(srv, "read_file", {"path": str(tmp_path / "bin"), "resp_type": "text"}, {"x-resp-type": "base64"})
    assert base64.b64decode(r["base64"]) == data and r["size_bytes"] == len(data)


def test_write_then_edit(srv, tmp_path):
    p = str(tmp_path / "sub" / "test.log")
    assert ok(srv, "write_file", {"path": p, "content": "line1\nline2\nline3\n"}) == {
        "result": "file written successfully", "path": p, "bytes": 18}
    r = ok(srv, "edit_file", {"path": p, "edits": [{"old_text": "line2", "new_text": "line2-edited"},
                                                   {"old_text": "line3\n", "new_text": "line3\nline4\n"}]})
    assert r == {"result": "file edited successfully", "path": p, "edits_applied": 2}
    assert open(p).read() == "line1\nline2-edited\nline3\nline4\n"
    # typographic quotes and trailing spaces still match; the other lines stay as they were
    (tmp_path / "q.txt").write_text("keep  \nsay \u201chi\u201d \u2014 ok\t\nend\n")
    ok(srv, "edit_file", {"path": str(tmp_path / "q.txt"), "edits": [{"old_text": 'say "hi" - ok',
                                                                      "new_text": "said"}]})
    assert (tmp_path / "q.txt").read_text() == "keep  \nsaid\nend\n"


def test_edit_errors(srv, tmp_path):
    p = str(tmp_path / "e.txt")
    ok(srv, "write_file", {"path": p, "content": "dup\ndup\nline1\nline2\n"})
    err = lambda edits: call(srv, "edit_file", {"path": p, "edits": edits})["error"]  # noqa: E731
    assert "unique" in err([{"old_text": "dup", "new_text": "x"}])
    assert "overlap" in err([{"old_text": "line1\nline2", "new_text": "a"}, {"old_text": "line2", "new_text": "b"}])
    assert "could not find edits[0].old_text" in err([{"old_text": "absent", "new_text": "x"}])
    assert err([{"old_text": "", "new_text": "x"}]) == "edits[0].old_text must not be empty"
    assert err([]) == '"edits" must be a non-empty array'
    assert err([{"old_text": "line1", "new_text": "line1"}]).startswith("no changes made")
    assert call(srv, "edit_file", {"path": p + ".none", "edits": [{"old_text": "a", "new_text": "b"}]}) == {
        "error": f"failed to open file: {p}.none"}
    # an edit that is not an object, or misses new_text: the request is at fault
    r = srv.post("/tools", {"tool": "edit_file", "params": {"path": p, "edits": [{"old_text": "dup"}]}})
    assert error_of(r, 400) == "key 'new_text' not found"


def test_file_glob_search(srv, tmp_path):
    (tmp_path / "project-alpha" / "src").mkdir(parents=True)
    (tmp_path / "project-alpha" / "README.md").write_text("alpha")
    (tmp_path / "project-alpha" / "src" / "main.cpp").write_text("int main() {}")
    (tmp_path / "node_modules" / "pkg").mkdir(parents=True)
    (tmp_path / "node_modules" / "pkg" / "index.js").write_text("x")
    (tmp_path / "top.txt").write_text("top")
    r = ok(srv, "file_glob_search", {"path": str(tmp_path)})
    assert r["base"] == str(tmp_path)
    # without git: a directory's own entries (sorted), then its subdirectories'
    assert r["plain_text_response"] == ("top.txt\nproject-alpha/README.md\nproject-alpha/src/main.cpp\n\n---\n"
                                        "Total matches: 3\n")
    assert r["entries"][0] == {"path": "top.txt", "type": "file"}
    r = ok(srv, "file_glob_search", {"path": str(tmp_path), "type": "dir"})
    assert [e["path"] for e in r["entries"]] == ["node_modules", "project-alpha", "project-alpha/src"]
    assert "project-alpha/src/\n" in r["plain_text_response"]
    assert [e["path"] for e in ok(srv, "file_glob_search", {"path": str(tmp_path), "include": "src/*.cpp"})[
        "entries"]] == ["project-alpha/src/main.cpp"]
    assert [e["path"] for e in ok(srv, "file_glob_search", {"path": str(tmp_path), "exclude": "*.md",
                                                            "max_depth": 1})["entries"]] == ["top.txt"]
    r = ok(srv, "file_glob_search", {"path": str(tmp_path), "limit": 1})
    assert len(r["entries"]) == 1 and "[1 results limit reached (3 total matches)." in r["plain_text_response"]
    assert call(srv, "file_glob_search", {"path": str(tmp_path), "limit": 0}) == {
        "error": "invalid limit: 0 (expected 1 or more)"}
    assert "invalid type" in call(srv, "file_glob_search", {"path": str(tmp_path), "type": "bogus"})["error"]
    assert call(srv, "file_glob_search", {"path": "/no/such/dir"}) == {
        "error": "path does not exist or is not a directory: /no/such/dir"}


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_glob_and_grep_follow_gitignore(srv, tmp_path):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("ignored.txt\n")
    (tmp_path / "ignored.txt").write_text("needle\n")
    (tmp_path / "kept.txt").write_text("needle\n")
    paths = [e["path"] for e in ok(srv, "file_glob_search", {"path": str(tmp_path)})["entries"]]
    assert sorted(paths) == [".gitignore", "kept.txt"]
    text = ok(srv, "grep_search", {"path": str(tmp_path), "pattern": "needle"})["plain_text_response"]
    assert text == "kept.txt:needle\n\n---\nTotal matches: 1\n"


def test_grep_search(srv, tmp_path):
    (tmp_path / "a.py").write_text("alpha\nBeta(1)\ngamma\ndelta\n")
    (tmp_path / "b.txt").write_text("beta(1) here\n")
    base = {"path": str(tmp_path)}
    t = ok(srv, "grep_search", {**base, "pattern": "Beta"})["plain_text_response"]
    assert t == "a.py:Beta(1)\n\n---\nTotal matches: 1\n"
    t = ok(srv, "grep_search", {**base, "pattern": "beta(1)", "literal": True, "ignore_case": True,
                                "return_line_numbers": True})["plain_text_response"]
    assert t == "a.py:2:Beta(1)\nb.txt:1:beta(1) here\n\n---\nTotal matches: 2\n"
    t = ok(srv, "grep_search", {**base, "pattern": "^gam", "context_lines": 1, "include": "*.py"})[
        "plain_text_response"]
    assert t == "a.py-2-Beta(1)\na.py:3:gamma\na.py-4-delta\n--\n\n---\nTotal matches: 1\n"
    # a single file: its path as given
    t = ok(srv, "grep_search", {"path": str(tmp_path / "b.txt"), "pattern": "here"})["plain_text_response"]
    assert t.startswith(f"{tmp_path}/b.txt:beta(1) here\n")
    assert call(srv, "grep_search", {**base, "pattern": "("})["error"].startswith("invalid regex")
    assert call(srv, "grep_search", {"path": "/no/such", "pattern": "x"}) == {"error": "path does not exist: /no/such"}
    (tmp_path / "many.txt").write_text("hit\n" * 150)
    t = ok(srv, "grep_search", {**base, "pattern": "hit"})["plain_text_response"]
    assert "Total matches: 100\n[100 matches limit reached." in t


def test_cwd_header(srv, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    (work / "rel.txt").write_text("relative-content")
    h = {"x-tool-cwd": str(work)}
    # a "cwd" in the params (the model's) is dropped: the header decides
    assert "relative-content" in ok(srv, "read_file", {"path": "rel.txt", "cwd": "/nope"}, h)["plain_text_response"]
    ok(srv, "write_file", {"path": "sub/out.txt", "content": "written"}, h)
    assert (work / "sub" / "out.txt").read_text() == "written"
    assert "rel.txt" in ok(srv, "file_glob_search", {"path": ".", "include": "*.txt"}, h)["plain_text_response"]
    ok(srv, "exec_shell_command", {"command": "echo hi > made.txt"}, h)
    assert (work / "made.txt").read_text() == "hi\n"
    assert ok(srv, "get_info", {}, h)["cwd"] == str(work)
    info = ok(srv, "get_info")
    assert info["os"].startswith("Linux") and info["cwd"]


# -- commands -------------------------------------------------------------------------------

def test_exec_shell_command(srv):
    r = ok(srv, "exec_shell_command", {"command": "echo out; echo err >&2; exit 3"})
    assert r == {"plain_text_response": "out\nerr\n\n[exit code: 3]"}
    t0 = time.monotonic()
    r = ok(srv, "exec_shell_command", {"command": "echo start; sleep 30", "timeout": 1})
    assert r["plain_text_response"] == "start\n\n[exit code: 1] [exit due to timed out]"
    assert time.monotonic() - t0 < 3
    r = ok(srv, "exec_shell_command", {"command": "printf 'abcdefghij'", "max_output_size": 4})
    assert r["plain_text_response"] == "abcd\n[output truncated]\n[exit code: 0]"


def test_huge_output_blocks_nobody(srv):
    """A command that prints 300 MB: capped at 16 KB, and /health answers meanwhile."""
    with ThreadPoolExecutor(1) as pool:
        job = pool.submit(lambda: call(srv, "exec_shell_command",
                                       {"command": "head -c 300000000 /dev/zero | tr '\\0' x", "timeout": 30}))
        lags = []
        while not job.done():
            t0 = time.monotonic()
            assert srv.get("/health").status_code == 200
            lags.append(time.monotonic() - t0)
            time.sleep(0.05)
        text = job.result()["plain_text_response"]
    assert text == "x" * 16384 + "\n[output truncated]\n[exit code: 0]"
    assert max(lags) < 0.5, lags


def test_stream(srv):
    r = requests.post(srv.url + "/tools", json={"tool": "exec_shell_command", "stream": True,
                                                "params": {"command": "echo hello; sleep 0.2; echo world"}},
                      stream=True, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/event-stream")
    events = sse_events(r)
    assert events[-1] == {"done": True}
    assert "".join(e["chunk"] for e in events[:-1]) == "hello\nworld\n\n[exit code: 0]"
    # a tool that cannot stream: 404
    r = srv.post("/tools", {"tool": "read_file", "params": {"path": "x"}, "stream": True})
    assert error_of(r, 404) == 'tool "read_file" does not support stream = true'
    # an error while streaming ends the stream with it
    r = requests.post(srv.url + "/tools", json={"tool": "exec_shell_command", "stream": True, "params": {}},
                      stream=True, timeout=30)
    assert sse_events(r) == [{"done": True, "error": "key 'command' not found"}]


def test_stream_client_gone_kills_the_command(srv):
    marker = f"{time.time_ns() % 100000}.5"
    r = requests.post(srv.url + "/tools", json={"tool": "exec_shell_command", "stream": True,
                                                "params": {"command": f"echo started; exec sleep {marker}",
                                                           "timeout": 60}},
                      stream=True, timeout=30)
    next(r.iter_lines())
    sleepers = lambda: [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", marker]]  # noqa
    assert sleepers()
    r.close()
    deadline = time.monotonic() + 5
    while sleepers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not sleepers()


# -- bad requests -----------------------------------------------------------------------------

def test_bad_requests(srv):
    post = lambda data, **kw: requests.post(srv.url + "/tools", data=data, timeout=10, **kw)  # noqa: E731
    assert error_of(post("{not json"), 400).startswith("JSON parse error")
    assert error_of(post("[1]"), 400) == "the request body must be a JSON object, not array"
    assert error_of(post("{}"), 400) == "key 'tool' not found"
    assert error_of(post('{"tool": 5}'), 400) == '"tool" must be a string, not number'
    assert error_of(post('{"tool": "get_info", "params": [1]}'), 400) == '"params" must be an object, not array'
    assert error_of(post('{"tool": "get_info", "stream": "yes"}'), 400) == '"stream" must be a boolean, not string'
    assert error_of(post('{"tool": "nope"}'), 404) == 'unknown tool "nope"'
    assert error_of(post('{"tool": "read_file", "params": {}}'), 400) == "key 'path' not found"
    assert error_of(post('{"tool": "read_file", "params": {"path": 1}}'), 400) == "type must be string, but is number"
    # params null or absent: {}
    assert post('{"tool": "get_info", "params": null}').status_code == 200


def test_runtime_header_errors(srv):
    def runtime_error(runtime: str) -> str:
        r = srv.post("/tools", {"tool": "exec_shell_command", "params": {"command": "echo hi"}},
                     headers={"x-tool-runtime": runtime})
        return error_of(r, 500)
    # never the host instead of the isolate asked for
    assert runtime_error("fake:does-not-exist") == "unknown tool runtime: fake:does-not-exist"
    assert runtime_error("ssh:-oProxyCommand=touch /tmp/pwned") == "invalid ssh target: -oProxyCommand=touch /tmp/pwned"
    assert runtime_error("docker-container:--privileged") == "invalid container id: --privileged"
    assert runtime_error("podman-container:-x") == "invalid container id: -x"
    assert runtime_error("docker:busybox") == "tool runtime must name a running container: docker:busybox"


@pytest.mark.skipif(shutil.which("ssh") is None, reason="ssh is not installed")
def test_ssh_runtime_unreachable_host(srv):
    # BatchMode: no prompt ever hangs the call; an unreachable host is a failed command
    r = ok(srv, "exec_shell_command", {"command": "echo hi", "timeout": 5}, {"x-tool-runtime": "ssh:nobody@127.0.0.9"})
    assert "[exit code: 255]" in r["plain_text_response"]


# -- other servers ----------------------------------------------------------------------------

def test_disabled_and_cors_default(tmp_path):
    s = ServerProcess(None, "--models-dir", str(tmp_path))
    try:
        for r in (s.get("/tools"), s.post("/tools", {"tool": "read_file", "params": {"path": "x"}})):
            assert r.status_code == 403
            assert r.json() == {"error": {"message": "this feature is disabled", "type": "feature_disabled"}}
        origin = s.get("/health", headers={"Origin": "http://evil.example"}).headers
        assert origin.get("Access-Control-Allow-Origin") == "http://evil.example"  # no tools: '*'
    finally:
        s.stop()


def test_startup_errors(tmp_path):
    with pytest.raises(RuntimeError) as e:
        ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "read_file,nope")
    assert 'unknown tool "nope". available tools: ' + ", ".join(ALL) in str(e.value)
    with pytest.raises(RuntimeError, match="unknown tool runtime: fake:x"):
        ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "all", "--tools-runtime", "fake:x")
    with pytest.raises(RuntimeError, match="invalid ssh target: -oX"):
        ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "all", "--tools-runtime", "ssh:-oX")
    for spec in ("docker:--privileged", "podman:-v/:/host", "docker:ima ge"):
        with pytest.raises(RuntimeError, match="invalid image: "):
            ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "all", "--tools-runtime", spec)


def test_explicit_cors_and_api_key(tmp_path):
    s = ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "get_info", "--cors-origins", "*",
                      "--api-key", "k1")
    try:
        assert s.get("/tools").status_code == 401
        r = s.get("/tools", headers={"Authorization": "Bearer k1", "Origin": "http://evil.example"})
        assert [t["tool"] for t in r.json()] == ["get_info"]
        assert r.headers.get("Access-Control-Allow-Origin") == "http://evil.example"  # explicit --cors-origins wins
    finally:
        s.stop()


def test_model_server_tools(smollm2_path):
    """The model server (not the router) serves /tools too; --agent is --tools all."""
    s = ServerProcess(smollm2_path, "-c", "256", "-np", "1", "-t", "1", "--tools", "read_file,get_info")
    try:
        assert [t["tool"] for t in s.get("/tools").json()] == ["read_file", "get_info"]
        assert s.post("/tools", {"tool": "get_info", "params": {}}).json()["os"].startswith("Linux")
        assert s.get("/health", headers={"Origin": "http://evil.example"}).headers.get(
            "Access-Control-Allow-Origin") is None
    finally:
        s.stop()


def _docker_reason() -> str | None:
    if shutil.which("docker") is None:
        return "docker is not installed"
    try:
        subprocess.run(["docker", "run", "--rm", "busybox", "true"], capture_output=True, timeout=60, check=True)
    except Exception as e:  # noqa: BLE001
        return f"docker cannot run busybox: {e}"
    return None


def test_docker_runtime_container_removed_at_exit(tmp_path):
    reason = _docker_reason()
    if reason:
        pytest.skip(reason)
    s = ServerProcess(None, "--models-dir", str(tmp_path), "--tools", "all", "--tools-runtime", "docker:busybox")
    try:
        cid = ok(s, "exec_shell_command", {"command": "hostname"})["plain_text_response"].splitlines()[0].strip()
        ok(s, "write_file", {"path": "/tmp/t.log", "content": "hello container\n"})
        assert ok(s, "read_file", {"path": "/tmp/t.log"})["plain_text_response"] == "hello container\n"
    finally:
        s.stop()
    assert subprocess.run(["docker", "inspect", cid], capture_output=True).returncode != 0
