"""The container tool runtime (--tools-runtime podman:<image>, or a request's
x-tool-runtime: podman-container:<id>) end to end, with a real podman: the server
spawns `podman run --rm -i <image> sh` at start-up, runs every tool in it through
`podman exec`, and removes it at exit.

No registry is reached: the image is built by the test with `podman import` from a
root filesystem of Debian's busybox-static (/bin/busybox and a link per applet), the
POSIX environment the runtime needs (sh, cat, wc, mkdir, dirname, find, timeout).
podman is pointed at a storage and a configuration of the test's own, through
CONTAINERS_STORAGE_CONF and CONTAINERS_CONF (the server inherits them), so no global
configuration is needed or changed (podman itself still keeps its blob-info cache in
/var/lib/containers/cache, and runc leaves empty libpod_parent cgroups):
- storage: the vfs driver, graphroot and runroot in the test's temporary directory;
- network: none (the tools need none, and no bridge or firewall is set up);
- OCI runtime: runc with cgroupfs (crun refuses a host with hybrid cgroups v1 + v2);
- ulimits: ones that only lower the caller's (podman as root asks for nofile 1048576
  and nproc above its own hard limit, which runc may not raise without
  CAP_SYS_RESOURCE);
- libpod's tmp_dir and the events log in the test's directory (not /run/libpod)."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import resource
import shutil
import socket
import struct
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import requests

from helpers.server_process import ServerProcess, sse_events

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/pyllama-tools-busybox:test"
RUNC = shutil.which("runc") or ("/usr/sbin/runc" if os.path.exists("/usr/sbin/runc") else None)


def _static_elf(path: str) -> bool:
    """An ELF binary without a program interpreter (runs in an empty root filesystem)."""
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only: Debian's amd64/arm64
            return False
        phoff, = struct.unpack_from("<Q", head, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", head, 0x36)
        for i in range(phnum):
            f.seek(phoff + i * phentsize)
            if struct.unpack("<I", f.read(4))[0] == 3:  # PT_INTERP
                return False
    return True


def _skip_reason() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed (.ci/run installs it)"
    if RUNC is None:
        return "runc is not installed (.ci/run installs it)"
    if not os.path.exists(BUSYBOX) or not _static_elf(BUSYBOX):
        return "busybox-static is not installed (.ci/run installs it)"
    return None


SKIP = _skip_reason()
pytestmark = pytest.mark.skipif(SKIP is not None, reason=SKIP or "")


def _rootfs_tar(path: Path) -> None:
    """A tarball of a minimal root filesystem: busybox and a symlink per applet."""
    applets = subprocess.run([BUSYBOX, "--list"], capture_output=True, text=True, check=True).stdout.split()
    with tarfile.open(path, "w") as tar:
        for d, mode in (("bin", 0o755), ("etc", 0o755), ("tmp", 0o1777), ("root", 0o700), ("proc", 0o555),
                        ("sys", 0o555), ("dev", 0o755), ("run", 0o755)):
            info = tarfile.TarInfo(d)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        tar.add(BUSYBOX, "bin/busybox")
        for name in applets:
            if name == "busybox":
                continue
            info = tarfile.TarInfo(f"bin/{name}")
            info.type, info.linkname, info.mode = tarfile.SYMTYPE, "busybox", 0o777
            tar.addfile(info)
        for name, text in (("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"), ("etc/group", "root:x:0:\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))


def _nproc_limit() -> int:
    # podman lowers its own RLIMIT_NPROC to 32768 (when it can): more would be a raise for runc
    hard = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    return 32768 if hard == resource.RLIM_INFINITY else min(hard, 32768)


@pytest.fixture(scope="module")
def podman_env(tmp_path_factory):
    root = tmp_path_factory.mktemp("podman")
    (root / "storage.conf").write_text(f"""[storage]
driver = "vfs"
graphroot = "{root}/graph"
runroot = "{root}/run"
""")
    nproc = _nproc_limit()
    (root / "containers.conf").write_text(f"""[containers]
netns = "none"
default_ulimits = ["nofile=1024:1024", "nproc={nproc}:{nproc}"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "{root}/libpod-tmp"
""")
    (root / "tmp").mkdir()
    env = {"CONTAINERS_CONF": str(root / "containers.conf"), "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
           "TMPDIR": str(root / "tmp")}
    full_env = {**os.environ, **env}

    def podman(*args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess:
        res = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=full_env)
        if check and res.returncode != 0:
            pytest.fail(f"podman {' '.join(args)} failed ({res.returncode}): {res.stderr.strip()}")
        return res

    _rootfs_tar(root / "rootfs.tar")
    # podman itself must work on this machine (its kernel, cgroups and capabilities): if it
    # cannot import an image or run a container, that is the machine's limit, not pyllama's
    for args in (("import", "-q", str(root / "rootfs.tar"), IMAGE), ("run", "--rm", IMAGE, "sh", "-c", "echo ready")):
        res = podman(*args, check=False)
        if res.returncode != 0:
            pytest.skip(f"podman cannot {args[0]} here: {res.stderr.strip()[-300:]}")
    assert podman("run", "--rm", IMAGE, "sh", "-c", "echo ready").stdout == "ready\n"
    try:
        yield env, podman
    finally:
        podman("rm", "-a", "-f", "-t", "0", check=False)
        podman("rmi", "-a", "-f", check=False)
        shutil.rmtree(root / "graph", ignore_errors=True)


def _start(podman_env, tmp_path_factory) -> ServerProcess:
    env, _ = podman_env
    models = tmp_path_factory.mktemp("models")  # empty: a router with no model, the tools only
    return ServerProcess(None, "--models-dir", str(models), "--tools", "all", "--tools-runtime", f"podman:{IMAGE}",
                         env=env)


@pytest.fixture(scope="module")
def srv(podman_env, tmp_path_factory):
    s = _start(podman_env, tmp_path_factory)
    yield s
    s.stop()


def call(srv, tool: str, params: dict, headers: dict | None = None) -> dict:
    r = srv.post("/tools", {"tool": tool, "params": params}, headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def ok(srv, tool: str, params: dict, headers: dict | None = None) -> dict:
    body = call(srv, tool, params, headers)
    assert "error" not in body, body
    return body


def sh(srv, command: str, headers: dict | None = None, **params) -> str:
    return ok(srv, "exec_shell_command", {"command": command, **params}, headers)["plain_text_response"]


def read_bytes(srv, path: str, headers: dict | None = None) -> bytes:
    r = ok(srv, "read_file", {"path": path}, {**(headers or {}), "x-resp-type": "base64"})
    data = base64.b64decode(r["base64"])
    assert r["size_bytes"] == len(data)
    return data


# -- where the tools run ------------------------------------------------------------------------

def test_tools_run_in_the_container(srv, tmp_path):
    cid = sh(srv, "hostname").split("\n")[0]
    assert len(cid) == 12 and cid != socket.gethostname()
    info = ok(srv, "get_info", {})
    assert info["os"].startswith(f"Linux {cid} ") and info["cwd"] == "/"
    assert ok(srv, "get_info", {}, {"x-tool-cwd": "/tmp"})["cwd"] == "/tmp"
    # the image's shell is busybox (the host's /bin/sh is not); pid 1 is the runtime's `sh`
    assert sh(srv, "readlink /bin/sh; cat /proc/1/comm") == "busybox\nsh\n\n[exit code: 0]"
    # a file written by the tools is in the container, not on the host, and the other way round
    inside = str(tmp_path / "written-in-container.txt")
    assert ok(srv, "write_file", {"path": inside, "content": "inside\n"})["bytes"] == 7
    assert not os.path.exists(inside)
    assert ok(srv, "read_file", {"path": inside})["plain_text_response"] == "inside\n"
    (tmp_path / "host-only.txt").write_text("host")
    assert call(srv, "read_file", {"path": str(tmp_path / "host-only.txt")}) == {
        "error": f"cannot stat file: {tmp_path}/host-only.txt"}


# -- files ----------------------------------------------------------------------------------

NASTY_DIR = "/data/dir with space/it's \"quoted\""
NASTY_NAME = NASTY_DIR + "/$HOME `id` -x; rm -rf ẞ.txt"


def test_write_read_round_trip(srv):
    text = "héllo wörld ✓ 😀\nsecond line\r\n\ttabbed \\ back'slash \"q\"\nno newline at end"
    r = ok(srv, "write_file", {"path": NASTY_NAME, "content": text})
    assert r == {"result": "file written successfully", "path": NASTY_NAME, "bytes": len(text.encode())}
    assert read_bytes(srv, NASTY_NAME) == text.encode()
    assert ok(srv, "read_file", {"path": NASTY_NAME})["plain_text_response"] == (
        "héllo wörld ✓ 😀\nsecond line\r\n\ttabbed \\ back'slash \"q\"\nno newline at end\n")
    r = ok(srv, "read_file", {"path": NASTY_NAME, "start_line": 2, "end_line": 3, "append_loc": True})
    assert r["plain_text_response"] == "2\u2192second line\r\n3\u2192\ttabbed \\ back'slash \"q\"\n"
    # the name reached the container as one word: no expansion, no word splitting
    assert sh(srv, "find /data/dir*space -type f") == NASTY_NAME + "\n\n[exit code: 0]"
    # a relative name, against x-tool-cwd; an empty file; control characters and a NUL
    h = {"x-tool-cwd": NASTY_DIR}
    assert ok(srv, "write_file", {"path": "sub/empty", "content": ""}, h)["bytes"] == 0
    assert read_bytes(srv, NASTY_DIR + "/sub/empty") == b""
    assert ok(srv, "read_file", {"path": "sub/empty"}, h) == {"plain_text_response": ""}
    binary = "a\x00b\x01\x1b[0m\x7f\u00ff end"
    ok(srv, "write_file", {"path": "/data/bin.dat", "content": binary})
    assert read_bytes(srv, "/data/bin.dat") == binary.encode()
    assert sh(srv, "wc -c < /data/bin.dat").split()[0] == str(len(binary.encode()))
    # rewriting replaces the whole file
    ok(srv, "write_file", {"path": "/data/bin.dat", "content": "short"})
    assert read_bytes(srv, "/data/bin.dat") == b"short"


def test_large_files(srv):
    # 300 KB of text through write_file's stdin, checked by the container's own md5sum
    text = "".join(f"line {i} ünïcødé\n" for i in range(15000))
    data = text.encode()
    assert len(data) > 300_000
    ok(srv, "write_file", {"path": "/data/big.txt", "content": text})
    assert sh(srv, "md5sum /data/big.txt").split()[0] == hashlib.md5(data).hexdigest()
    assert call(srv, "read_file", {"path": "/data/big.txt"}) == {
        "error": f"file too large ({len(data)} bytes, max 16384). Use start_line/end_line to read a portion."}
    r = ok(srv, "read_file", {"path": "/data/big.txt", "start_line": 14999, "end_line": 15000})
    assert r["plain_text_response"] == "line 14998 ünïcødé\nline 14999 ünïcødé\n"
    # random bytes made in the container come back exact through cat (stderr kept apart)
    out = sh(srv, "head -c 200000 /dev/urandom > /data/random.bin && md5sum /data/random.bin")
    got = read_bytes(srv, "/data/random.bin")
    assert len(got) == 200000 and hashlib.md5(got).hexdigest() == out.split()[0]


def test_missing_files(srv):
    assert call(srv, "read_file", {"path": "/no/such/file"}) == {"error": "cannot stat file: /no/such/file"}
    assert call(srv, "read_file", {"path": "/data"}) == {"error": "cannot stat file: /data"}
    # a directory in the way of the file: the write fails, and says so
    ok(srv, "write_file", {"path": "/data/plain", "content": "x"})
    assert call(srv, "write_file", {"path": "/data/plain/under", "content": "y"}) == {
        "error": "failed to write file: /data/plain/under"}


def test_edit_file(srv):
    p = "/data/edit me/notes.txt"
    ok(srv, "write_file", {"path": p, "content": "line1\nline2 ü\nline3\n"})
    r = ok(srv, "edit_file", {"path": p, "edits": [{"old_text": "line2 ü", "new_text": "line2 → edited"},
                                                   {"old_text": "line3\n", "new_text": "line3\nline4\n"}]})
    assert r == {"result": "file edited successfully", "path": p, "edits_applied": 2}
    assert read_bytes(srv, p) == "line1\nline2 → edited\nline3\nline4\n".encode()
    # bytes that are not UTF-8 elsewhere in the file survive an edit
    sh(srv, r"printf 'keep \377\376 raw\nchange me\n' > /data/raw.txt")
    ok(srv, "edit_file", {"path": "/data/raw.txt", "edits": [{"old_text": "change me", "new_text": "changed"}]})
    assert read_bytes(srv, "/data/raw.txt") == b"keep \xff\xfe raw\nchanged\n"
    # relative to x-tool-cwd
    ok(srv, "edit_file", {"path": "notes.txt", "edits": [{"old_text": "line1", "new_text": "first"}]},
       {"x-tool-cwd": "/data/edit me"})
    assert read_bytes(srv, p).startswith(b"first\n")
    # errors come from the file in the container
    ok(srv, "write_file", {"path": "/data/dup.txt", "content": "dup\ndup\n"})
    assert "unique" in call(srv, "edit_file", {"path": "/data/dup.txt",
                                               "edits": [{"old_text": "dup", "new_text": "x"}]})["error"]
    assert call(srv, "edit_file", {"path": "/data/none.txt", "edits": [{"old_text": "a", "new_text": "b"}]}) == {
        "error": "failed to open file: /data/none.txt"}
    assert read_bytes(srv, "/data/dup.txt") == b"dup\ndup\n"


@pytest.fixture(scope="module")
def project(srv):
    files = {"a.txt": "alpha\nBeta(1)\ngamma\n", "src/main.c": "int main() { return 0; }\n",
             "src/deep/x.c": "/* beta(1) */\n", "node_modules/pkg/index.js": "Beta(1)\n",
             "with space/f 'q'.txt": "beta here\n"}
    for rel, content in files.items():
        ok(srv, "write_file", {"path": f"/proj/{rel}", "content": content})
    return "/proj"


def paths(r: dict) -> list[str]:
    return sorted(e["path"] for e in r["entries"])


def test_file_glob_search(srv, project):
    r = ok(srv, "file_glob_search", {"path": project})
    assert r["base"] == project
    # no git in the image: find lists the files, never entering a junk directory
    assert paths(r) == ["a.txt", "src/deep/x.c", "src/main.c", "with space/f 'q'.txt"]
    assert r["plain_text_response"].endswith("\n---\nTotal matches: 4\n")
    assert sorted(r["plain_text_response"].split("\n---\n")[0].split("\n")[:-1]) == paths(r)
    assert paths(ok(srv, "file_glob_search", {"path": project, "include": "*.c"})) == ["src/deep/x.c",
                                                                                         "src/main.c"]
    # a pattern with '/' matches below some directory ("**/" prefixed, as llama-server's)
    assert paths(ok(srv, "file_glob_search", {"path": project, "include": "deep/*.c"})) == ["src/deep/x.c"]
    assert paths(ok(srv, "file_glob_search", {"path": project, "exclude": "*.c"})) == ["a.txt",
                                                                                       "with space/f 'q'.txt"]
    assert paths(ok(srv, "file_glob_search", {"path": project, "max_depth": 1})) == ["a.txt"]
    r = ok(srv, "file_glob_search", {"path": project, "type": "dir"})
    assert paths(r) == ["node_modules", "src", "src/deep", "with space"]  # reported, not entered
    assert all(e["type"] == "dir" for e in r["entries"])
    r = ok(srv, "file_glob_search", {"path": project, "type": "all", "max_depth": 1})
    assert sorted((e["path"], e["type"]) for e in r["entries"]) == [
        ("a.txt", "file"), ("node_modules", "dir"), ("src", "dir"), ("with space", "dir")]
    r = ok(srv, "file_glob_search", {"path": "src"}, {"x-tool-cwd": project})
    assert r["base"] == "/proj/src" and paths(r) == ["deep/x.c", "main.c"]
    assert call(srv, "file_glob_search", {"path": "/no/such/dir"}) == {
        "error": "path does not exist or is not a directory: /no/such/dir"}


def test_grep_search(srv, project):
    t = ok(srv, "grep_search", {"path": project, "pattern": "Beta"})["plain_text_response"]
    assert t == "a.txt:Beta(1)\n\n---\nTotal matches: 1\n"  # node_modules is not searched
    t = ok(srv, "grep_search", {"path": project, "pattern": "beta(1)", "literal": True, "ignore_case": True,
                                "return_line_numbers": True})["plain_text_response"]
    lines, tail = t.split("\n\n---\n")
    assert sorted(lines.split("\n")) == ["a.txt:2:Beta(1)", "src/deep/x.c:1:/* beta(1) */"]
    assert tail == "Total matches: 2\n"
    t = ok(srv, "grep_search", {"path": project, "pattern": "^gam", "context_lines": 1, "include": "*.txt"})[
        "plain_text_response"]
    assert t == "a.txt-2-Beta(1)\na.txt:3:gamma\n--\n\n---\nTotal matches: 1\n"
    t = ok(srv, "grep_search", {"path": "with space/f 'q'.txt", "pattern": "here"}, {"x-tool-cwd": project})[
        "plain_text_response"]
    assert t == "with space/f 'q'.txt:beta here\n\n---\nTotal matches: 1\n"
    assert call(srv, "grep_search", {"path": "/no/such", "pattern": "x"}) == {"error": "path does not exist: /no/such"}


# -- commands -------------------------------------------------------------------------------

def test_exec_shell_command(srv):
    assert sh(srv, "echo out; echo err >&2; exit 3") == "out\nerr\n\n[exit code: 3]"
    assert sh(srv, "pwd", {"x-tool-cwd": "/tmp"}) == "/tmp\n\n[exit code: 0]"
    assert sh(srv, "pwd", {"x-tool-cwd": "/no/such"}).endswith("[exit code: 127]")
    # stdin is closed: a command reading it ends at once
    assert sh(srv, "cat; echo done") == "done\n\n[exit code: 0]"
    assert sh(srv, "printf 'abcdefghij'", max_output_size=4) == "abcd\n[output truncated]\n[exit code: 0]"
    # the timeout runs in the container (busybox `timeout` ends the command with SIGTERM: 143),
    # and nothing of the command is left running there
    t0 = time.monotonic()
    out = sh(srv, "echo start; exec sleep 31.5", timeout=1)
    assert time.monotonic() - t0 < 4
    assert out.startswith("start\n\n[exit code: ") and not out.endswith("[exit code: 0]"), out
    assert "sleep 31.5" not in sh(srv, "ps -o args")
    # streamed
    r = requests.post(srv.url + "/tools", json={"tool": "exec_shell_command", "stream": True,
                                                "params": {"command": "echo hello; sleep 0.3; echo world"}},
                      stream=True, timeout=30)
    events = sse_events(r)
    assert events[-1] == {"done": True} and len(events) >= 3
    assert "".join(e["chunk"] for e in events[:-1]) == "hello\nworld\n\n[exit code: 0]"


# -- x-tool-runtime: a container of the client's --------------------------------------------

def test_runtime_header_attaches_to_another_container(srv, podman_env):
    _, podman = podman_env
    other = podman("run", "-d", IMAGE, "sleep", "600").stdout.strip()
    try:
        h = {"x-tool-runtime": f"podman-container:{other}"}
        assert sh(srv, "hostname", h) == f"{other[:12]}\n\n[exit code: 0]"
        assert ok(srv, "get_info", {}, h)["os"].startswith(f"Linux {other[:12]} ")
        assert sh(srv, "hostname") != sh(srv, "hostname", h)
        ok(srv, "write_file", {"path": "/only/in/other.txt", "content": "other ✓\n"}, h)
        assert read_bytes(srv, "/only/in/other.txt", h) == "other ✓\n".encode()
        assert podman("exec", other, "cat", "/only/in/other.txt").stdout == "other ✓\n"
        # the server's own container does not have it
        assert call(srv, "read_file", {"path": "/only/in/other.txt"}) == {
            "error": "cannot stat file: /only/in/other.txt"}
        r = ok(srv, "file_glob_search", {"path": "/only"}, h)
        assert paths(r) == ["in/other.txt"]
        assert ok(srv, "grep_search", {"path": "/only", "pattern": "✓"}, h)["plain_text_response"].startswith(
            "in/other.txt:other ✓\n")
        ok(srv, "edit_file", {"path": "/only/in/other.txt", "edits": [{"old_text": "other", "new_text": "edited"}]},
           h)
        assert podman("exec", other, "cat", "/only/in/other.txt").stdout == "edited ✓\n"
    finally:
        podman("rm", "-f", "-t", "0", other, check=False)
    # a container that is gone: the calls fail, they do not fall back to another one
    assert call(srv, "read_file", {"path": "/only/in/other.txt"}, h) == {
        "error": "cannot stat file: /only/in/other.txt"}
    assert not sh(srv, "true", h).endswith("[exit code: 0]")


# -- the spawned container's life --------------------------------------------------------------

def _exists(podman, cid: str) -> bool:
    return podman("container", "exists", cid, check=False).returncode == 0


def _stop(s: ServerProcess) -> None:
    s.proc.terminate()  # SIGTERM, as a service manager stops it
    code = s.proc.wait(30)
    assert code == 0, s.proc.stdout.read().decode(errors="replace")


def test_spawned_container_removed_at_exit(podman_env, tmp_path_factory):
    _, podman = podman_env
    s = _start(podman_env, tmp_path_factory)
    try:
        cid = sh(s, "hostname").split("\n")[0]
        assert _exists(podman, cid)
        assert podman("inspect", "--format", "{{.State.Running}} {{.Config.Image}}", cid).stdout.strip() == (
            f"true {IMAGE}")
    finally:
        _stop(s)
    # gone by the time the server has exited, not some time later
    assert not _exists(podman, cid)


def test_spawned_container_respawned_when_it_dies(podman_env, tmp_path_factory):
    _, podman = podman_env
    s = _start(podman_env, tmp_path_factory)
    try:
        first = sh(s, "hostname").split("\n")[0]
        ok(s, "write_file", {"path": "/state.txt", "content": "first"})
        # killed from outside: --rm removes it, the next calls get a new container
        podman("kill", first)
        deadline = time.monotonic() + 20
        second = first
        while time.monotonic() < deadline:
            out = sh(s, "hostname")
            if out.endswith("[exit code: 0]") and out.split("\n")[0] != first:
                second = out.split("\n")[0]
                break
            time.sleep(0.2)
        assert second != first, "no new container after the first one was killed"
        assert not _exists(podman, first)
        assert _exists(podman, second)
        assert call(s, "read_file", {"path": "/state.txt"}) == {"error": "cannot stat file: /state.txt"}
        ok(s, "write_file", {"path": "/state.txt", "content": "second"})
        assert ok(s, "read_file", {"path": "/state.txt"}) == {"plain_text_response": "second\n"}
    finally:
        _stop(s)
    assert not _exists(podman, second)
