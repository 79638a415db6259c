"""A process started in a fresh virtual environment, and the chat request that proves its
server works: shared by the end-to-end tests of installing pyllama (tests/e2e)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import requests


class Running:
    def __init__(self, cmd: str, env: dict, cwd: Path, log: Path):
        self.log = log
        self.proc = subprocess.Popen(["bash", "-c", cmd], env=env, cwd=cwd, stdout=open(log, "w"),
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_healthy(self, url: str, timeout: float) -> list[tuple[int, str]]:
        """/health answers until 200; the non-200 answers seen on the way."""
        seen = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}:\n{self.output()[-4000:]}"
            try:
                r = requests.get(url + "/health", timeout=2)
                if r.status_code == 200:
                    return seen
                seen.append((r.status_code, r.json()["error"]["message"]))
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        raise TimeoutError(self.output()[-4000:])

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)


def chat(url: str) -> dict:
    r = requests.post(url + "/v1/chat/completions", timeout=120, json={
        "messages": [{"role": "user", "content": "What is the capital of France?"}], "max_tokens": 8,
        "temperature": 0})
    assert r.status_code == 200, r.text
    return r.json()
