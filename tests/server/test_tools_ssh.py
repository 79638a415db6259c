"""The ssh tool runtime (--tools-runtime ssh:<target>, or a request's x-tool-runtime
header) end to end: a real sshd on a free port of 127.0.0.1 with a host key and an
authorized key made for the test, and the real ssh client. The server finds the host
through an ssh config of the test's (an `ssh` on PATH that runs /usr/bin/ssh with `-F`
that file), as an admin would declare the host in ~/.ssh/config: the target is a host
alias, since llama-server's (and our) target syntax has no port.

Every tool runs on the "remote" side over ssh: files written there are read, edited,
listed and searched there; a command's output and exit code come back; names with
spaces and quotes survive the remote shell's second parse; a host key that is not
trusted is refused, never accepted (StrictHostKeyChecking=yes, BatchMode)."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess

import pytest

from helpers.server_process import ServerProcess, free_port, wait_until

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH = shutil.which("ssh")
pytestmark = pytest.mark.skipif(SSHD is None or SSH is None or shutil.which("ssh-keygen") is None,
                                reason="openssh-server and openssh-client are not installed (.ci/run installs them)")
HOST = "pyllama-test-host"
UNTRUSTED = "pyllama-untrusted-host"


def _keygen(path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def sshd(tmp_path_factory):
    root = tmp_path_factory.mktemp("ssh")
    os.chmod(root, 0o700)
    _keygen(root / "host_key")
    _keygen(root / "client_key")
    (root / "authorized_keys").write_text((root / "client_key.pub").read_text())
    os.chmod(root / "authorized_keys", 0o600)
    port = free_port()
    (root / "sshd_config").write_text(f"""Port {port}
ListenAddress 127.0.0.1
HostKey {root / "host_key"}
AuthorizedKeysFile {root / "authorized_keys"}
PidFile {root / "sshd.pid"}
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
""")
    if os.geteuid() == 0:
        os.makedirs("/run/sshd", mode=0o755, exist_ok=True)  # its privilege separation directory
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(root / "sshd_config")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        wait_until(lambda: _listening(port), proc, 20, "sshd is not listening")
        host_key = (root / "host_key.pub").read_text().split()
        (root / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        user = getpass.getuser()
        common = f"""  HostName 127.0.0.1
  Port {port}
  User {user}
  IdentityFile {root / "client_key"}
  IdentitiesOnly yes
  GlobalKnownHostsFile /dev/null
  LogLevel ERROR
"""
        (root / "config").write_text(f"Host {HOST}\n{common}  UserKnownHostsFile {root / 'known_hosts'}\n\n"
                                     f"Host {UNTRUSTED}\n{common}  UserKnownHostsFile /dev/null\n")
        bin_dir = root / "bin"
        bin_dir.mkdir()
        (bin_dir / "ssh").write_text(f'#!/bin/sh\nexec "{SSH}" -F "{root / "config"}" "$@"\n')
        os.chmod(bin_dir / "ssh", 0o755)
        env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        # the set-up itself works: a plain ssh to the host
        out = subprocess.run(["ssh", "-o", "BatchMode=yes", HOST, "echo ready"], capture_output=True, text=True,
                             timeout=30, env={**os.environ, **env})
        assert out.stdout.strip() == "ready", out.stderr
        yield env
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def srv(sshd, tmp_path_factory):
    models = tmp_path_factory.mktemp("models")
    s = ServerProcess(None, "--models-dir", str(models), "--tools", "all", "--tools-runtime", f"ssh:{HOST}",
                      env=sshd)
    yield s
    s.stop()


def ok(srv, tool: str, params: dict, headers: dict | None = None) -> dict:
    r = srv.post("/tools", {"tool": tool, "params": params}, headers=headers)
    assert r.status_code == 200, r.text
    body = r.json()
    assert "error" not in body, body
    return body


def text(srv, tool: str, params: dict, headers: dict | None = None) -> str:
    return ok(srv, tool, params, headers)["plain_text_response"]


def test_files_are_written_and_read_on_the_far_side(srv, tmp_path):
    # the "remote" host is this machine, so the file is also visible here: it got there over ssh
    folder = tmp_path / "far side"
    path = folder / "it's \"quoted\" $HOME.txt"
    content = "first line\nsecond: ünïcödé ✓\n$(touch /tmp/never) `x`\n"
    assert "error" not in ok(srv, "write_file", {"path": str(path), "content": content})
    assert path.read_text() == content  # written, through the remote shell, byte for byte
    assert not os.path.exists("/tmp/never")
    assert text(srv, "read_file", {"path": str(path)}) == content
    got = text(srv, "read_file", {"path": str(path), "start_line": 2, "end_line": 2})
    assert "second: ünïcödé ✓" in got and "first line" not in got


def test_edit_glob_and_grep_over_ssh(srv, tmp_path):
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("def alpha():\n    return 1\n")
    (tmp_path / "src" / "b.txt").write_text("nothing here\n")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "junk.py").write_text("def alpha(): pass\n")
    r = ok(srv, "edit_file", {"path": str(tmp_path / "src" / "a.py"),
                              "edits": [{"old_text": "return 1", "new_text": "return 2"}]})
    assert r["edits_applied"] == 1
    assert (tmp_path / "src" / "a.py").read_text() == "def alpha():\n    return 2\n"
    found = text(srv, "file_glob_search", {"path": str(tmp_path), "include": "**/*.py"})
    assert "src/a.py" in found and "junk.py" not in found and "b.txt" not in found
    hits = text(srv, "grep_search", {"path": str(tmp_path), "pattern": "def alpha"})
    assert "a.py" in hits and "junk.py" not in hits


def test_commands_run_over_ssh(srv):
    out = text(srv, "exec_shell_command", {"command": "echo \"$SSH_CONNECTION\"; exit 3"})
    assert "127.0.0.1" in out  # run by sshd's session
    assert "[exit code: 3]" in out
    info = ok(srv, "get_info", {})
    assert info["os"].startswith("Linux"), info  # asked with uname over ssh


def test_the_header_picks_the_runtime_per_request(srv, sshd):
    r = ok(srv, "exec_shell_command", {"command": "echo \"[$SSH_CONNECTION]\""}, {"x-tool-runtime": f"ssh:{HOST}"})
    assert "[127.0.0.1 " in r["plain_text_response"]


def test_an_untrusted_host_key_is_refused(srv):
    # BatchMode and StrictHostKeyChecking=yes: no prompt, no trust on first use
    out = text(srv, "exec_shell_command", {"command": "echo reached", "timeout": 10},
               {"x-tool-runtime": f"ssh:{UNTRUSTED}"})
    assert "reached" not in out and "[exit code: 255]" in out
    r = srv.post("/tools", {"tool": "read_file", "params": {"path": "/etc/hostname"}},
                 headers={"x-tool-runtime": f"ssh:{UNTRUSTED}"})
    assert r.status_code == 200 and "error" in r.json()
