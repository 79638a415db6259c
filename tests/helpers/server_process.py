"""A real pyllama-server process on a free port, and SSE parsing for the tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from typing import Callable

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(url: str, timeout: float = 1) -> bool:
    try:
        return requests.get(url + "/health", timeout=timeout).status_code == 200
    except requests.ConnectionError:
        return False


def wait_until(ready: Callable[[], bool], proc: subprocess.Popen, timeout: float, what: str,
               interval: float = 0.05) -> None:
    """Poll ready() until it holds; RuntimeError with the process's output if `proc`
    exits first, TimeoutError(what) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out = proc.stdout or proc.stderr
            raise RuntimeError("server exited:\n" + (out.read().decode(errors="replace") if out else ""))
        if ready():
            return
        time.sleep(interval)
    raise TimeoutError(what)


# Servers start outside the checkout: from its root, `python -m` would import the
# source tree's pyllama (no compiled _native) instead of the installed package.
RUN_DIR = tempfile.gettempdir()


class ServerProcess:
    """`prefix`: the server's --api-prefix, which the URL then includes; `port`: where
    the server will listen when something other than the --port given here says so."""

    def __init__(self, model, *args: str, env: dict | None = None, prefix: str = "", port: int | None = None):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}{prefix}"
        model_args = ["-m", str(model)] if model is not None else []  # None: no -m (router mode, -hf, -mu)
        cmd = [sys.executable, "-m", "pyllama.server.cli", *model_args, "--port", str(self.port), *args]
        self.t_start = time.monotonic()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=RUN_DIR,
                                     env={**os.environ, **(env or {})})
        self.ready_s = self.wait_ready()

    def wait_ready(self, timeout: float = 120.0) -> float:
        wait_until(lambda: healthy(self.url), self.proc, timeout, "server not ready")
        return time.monotonic() - self.t_start

    def post(self, path: str, body=None, **kw):
        return requests.post(self.url + path, json=body, timeout=120, **kw)

    def get(self, path: str, **kw):
        return requests.get(self.url + path, timeout=30, **kw)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def self_signed_cert(folder) -> tuple[str, str]:
    """(key, cert) PEM files for 127.0.0.1, made with openssl (a test failure if it is missing)."""
    import shutil

    if shutil.which("openssl") is None:
        raise RuntimeError("openssl is needed to make a test certificate")
    key, cert = f"{folder}/key.pem", f"{folder}/cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return key, cert


def sse_events(resp) -> list:
    """The `data:` payloads of an SSE response, in order (JSON decoded, [DONE] kept as a string)."""
    import json
    out = []
    for line in resp.iter_lines(decode_unicode=True):
        if line and line.startswith("data: "):
            payload = line[len("data: "):]
            out.append(payload if payload == "[DONE]" else json.loads(payload))
    return out
