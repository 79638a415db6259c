"""The `pyllama` command line, run as a real process."""

import subprocess
import sys


def test_info_on_default_model(smollm2_path, tmp_path):
    # cwd outside the checkout, so the installed package (with its native module) is imported
    out = subprocess.run([sys.executable, "-m", "pyllama.cli", "info", "-m", str(smollm2_path)],
                         capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert "architecture:  llama" in out and "49152 tokens" in out and "Q4_1 x210" in out
    assert "[19556, 28, 905, 17]" in out  # "Hello, world!" tokenized


def test_info_on_bad_model(tmp_path):
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a model")
    res = subprocess.run([sys.executable, "-m", "pyllama.cli", "info", "-m", str(bad)], capture_output=True, text=True,
                         cwd=tmp_path)
    assert res.returncode == 1 and "bad magic" in res.stderr and "Traceback" not in res.stderr


def test_run_prints_the_greedy_continuation_and_speeds(smollm2_path, tmp_path):
    res = subprocess.run([sys.executable, "-m", "pyllama.cli", "run", "-m", str(smollm2_path), "-p",
                          "The capital of France is", "-n", "8", "-t", "2"],
                         capture_output=True, text=True, check=True, cwd=tmp_path)
    assert res.stdout.startswith("The capital of France is Paris.\n\nThe United States")  # llama.cpp's answer
    assert "prompt:     5 tokens" in res.stderr and "generation: 8 tokens" in res.stderr
    assert "tokens/s" in res.stderr


def test_bench_prints_pp_and_tg_rows(smollm2_path, tmp_path):
    res = subprocess.run([sys.executable, "-m", "pyllama.cli", "bench", "-m", str(smollm2_path), "-p", "32", "-n", "4",
                          "-r", "2", "-t", "2"], capture_output=True, text=True, check=True, cwd=tmp_path)
    rows = [line for line in res.stdout.splitlines() if "SmolLM2" in line]
    assert len(rows) == 2 and "pp32" in rows[0] and "tg4" in rows[1] and "±" in rows[0]


def test_run_on_unsupported_model_is_a_clean_error(tmp_path):
    from helpers.tiny_models import write_tiny_bert

    path = write_tiny_bert(tmp_path / "bert.gguf")
    res = subprocess.run([sys.executable, "-m", "pyllama.cli", "run", "-m", str(path), "-p", "hi", "-n", "2"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert res.returncode == 1 and "'bert'" in res.stderr and "Traceback" not in res.stderr
