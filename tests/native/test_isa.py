"""Run-time ISA selection and the PYLLAMA_ISA override."""

import subprocess
import sys

import pytest

from pyllama import _native

LEVELS = ["generic", "avx2", "avx512"]


def active_isa_with(env_value: str, tmp_path) -> str:
    code = "from pyllama import _native; print(_native.active_isa())"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path,
                          env={"PYLLAMA_ISA": env_value, "PATH": "/usr/bin:/bin"}).stdout.strip()


def test_default_is_best_supported():
    assert _native.active_isa() in LEVELS and _native.best_isa() in LEVELS


@pytest.mark.parametrize("forced", LEVELS)
def test_env_caps_the_level(forced, tmp_path):
    best = LEVELS.index(_native.best_isa())
    expected = LEVELS[min(LEVELS.index(forced), best)]  # never above what the CPU runs
    assert active_isa_with(forced, tmp_path) == expected


def test_unsupported_level_refused_explicitly():
    if _native.best_isa() == "avx512":
        pytest.skip("this CPU runs every level")
    with pytest.raises(ValueError, match="does not support avx512"):
        _native.vec_dot(8, 32, bytes(34), bytes(34), isa="avx512")


def test_best_level_is_what_the_kernel_reports(tmp_path):
    """native/kernels/isa.cpp reads CPUID and XCR0 itself; Linux lists the same features
    (those the CPU has and the OS enables) in /proc/cpuinfo."""
    import re
    from pathlib import Path

    info = Path("/proc/cpuinfo")
    if not info.exists():
        pytest.skip("no /proc/cpuinfo (not Linux)")
    m = re.search(r"^flags\s*:(.*)$", info.read_text(), re.M)  # x86; ARM lists "Features"
    flags = set(m.group(1).split()) if m else set()
    avx2 = {"avx", "avx2", "fma", "f16c"} <= flags
    avx512 = avx2 and {"avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_vnni"} <= flags
    assert _native.best_isa() == ("avx512" if avx512 else "avx2" if avx2 else "generic")
