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
