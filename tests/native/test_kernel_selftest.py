"""The C++ kernel self-test (tests/native/selftest/): every block format's dequantize and
dot product on random blocks against the portable reference, built natively and
cross-compiled for aarch64 (Debian's g++-aarch64-linux-gnu) to run under qemu-user.

The aarch64 tests skip where the cross toolchain or qemu is missing (a developer's
machine); with PYLLAMA_REQUIRE_CROSS=1 (.ci/run and ci.yml, which install them) a
missing tool is a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pyllama import _native

ROOT = Path(__file__).resolve().parents[2]
SELFTEST = ROOT / "tests" / "native" / "selftest"
REQUIRED = os.environ.get("PYLLAMA_REQUIRE_CROSS") == "1"
TOOLS = "Debian's g++-aarch64-linux-gnu and qemu-user (apt-get install g++-aarch64-linux-gnu qemu-user; .ci/run does)"


def require(tool: str | None, what: str) -> str:
    if tool:
        return tool
    message = f"{what} not found: the aarch64 self-test needs {TOOLS}"
    if REQUIRED:
        pytest.fail(message + " (PYLLAMA_REQUIRE_CROSS=1)")
    pytest.skip(message)


def cmake() -> str:
    return require(shutil.which("cmake"), "cmake")


def build(build_dir: Path, *args: str) -> tuple[Path, str]:
    """Configure and build the self-test; (the executable, the configure output)."""
    conf = subprocess.run([cmake(), "-S", str(SELFTEST), "-B", str(build_dir), *args], capture_output=True, text=True)
    assert conf.returncode == 0, conf.stdout + conf.stderr
    made = subprocess.run([cmake(), "--build", str(build_dir), "-j", "2"], capture_output=True, text=True)
    assert made.returncode == 0, made.stdout + made.stderr
    return build_dir / "kernel_selftest", conf.stdout


def parse(out: str) -> dict:
    levels = re.search(r"^kernel self-test: levels (.+), \d+ values per row$", out, re.M)
    counts = re.search(r"^(\d+) passed, (\d+) failed$", out, re.M)
    digest = re.search(r"^digest ([0-9a-f]{16})$", out, re.M)
    assert levels and counts and digest, out
    return {"levels": levels.group(1).split(), "passed": int(counts.group(1)), "failed": int(counts.group(2)),
            "digest": digest.group(1)}


@pytest.fixture(scope="module")
def native(tmp_path_factory) -> dict:
    exe, _ = build(tmp_path_factory.mktemp("selftest-native"))
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout + run.stderr
    return parse(run.stdout)


def test_native_selftest_passes_at_every_level_this_cpu_runs(native):
    assert native["failed"] == 0 and native["passed"] > 1000
    levels = ["generic", "avx2", "avx512"]
    assert native["levels"] == levels[:levels.index(_native.best_isa()) + 1]


def test_aarch64_selftest_under_qemu(native, tmp_path):
    gxx = require(shutil.which("aarch64-linux-gnu-g++"), "aarch64-linux-gnu-g++")
    qemu = require(shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static"), "qemu-aarch64")
    exe, conf = build(tmp_path, "-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
                      f"-DCMAKE_CXX_COMPILER={gxx}", "-DPYLLAMA_SELFTEST_STATIC=ON")
    assert "kernel_selftest for aarch64: kernels generic" in conf, conf  # no x86 file in an ARM build
    header = exe.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    t0 = time.monotonic()
    run = subprocess.run([qemu, str(exe)], capture_output=True, text=True, timeout=600)
    elapsed = time.monotonic() - t0
    assert run.returncode == 0, run.stdout + run.stderr
    got = parse(run.stdout)
    print(f"aarch64 kernel self-test under {Path(qemu).name}: {elapsed:.2f} s, {got['passed']} checks")
    assert got["failed"] == 0 and got["levels"] == ["generic"]
    # -ffp-contract=off: the generic kernels give the same bits on both architectures
    # (with GCC's default, contraction into fused multiply-adds on aarch64, they do not).
    assert got["digest"] == native["digest"]


def test_every_native_source_compiles_for_aarch64():
    """The whole native core outside bindings/ (which is plain pybind11 glue), syntax-checked
    by the cross compiler: no x86-only code outside native/kernels/x86/."""
    gxx = require(shutil.which("aarch64-linux-gnu-g++"), "aarch64-linux-gnu-g++")
    sources = re.findall(r"^\s*(native/\S+\.cpp)\s*$", (ROOT / "CMakeLists.txt").read_text(), re.M)
    sources = [s for s in sources if not s.startswith("native/bindings/")]
    assert len(sources) > 20 and not any("/x86/" in s for s in sources)

    def check(src: str) -> str:
        r = subprocess.run([gxx, "-std=gnu++17", "-fsyntax-only", "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
                            "-DPYLLAMA_VERSION=\"0\"", str(ROOT / src)], capture_output=True, text=True)
        return "" if r.returncode == 0 else f"{src}:\n{r.stderr}"

    with ThreadPoolExecutor(2) as pool:
        errors = [e for e in pool.map(check, sources) if e]
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("apple, osx_archs, processor, expected", [
    (True, "x86_64", "arm64", "x86_64"),      # cibuildwheel's x86_64 wheels, built on an arm64 Mac
    (True, "arm64", "x86_64", "aarch64"),     # and the other way round
    (True, "arm64;x86_64", "arm64", "multi"),  # universal2: portable kernels only
    (True, "", "arm64", "aarch64"),           # no CMAKE_OSX_ARCHITECTURES: the compiler's own
    (False, "", "aarch64", "aarch64"),        # Linux: CMAKE_SYSTEM_PROCESSOR (a toolchain file's when cross)
    (False, "", "AMD64", "x86_64"),
])
def test_kernels_are_chosen_by_the_target_architecture(apple, osx_archs, processor, expected):
    args = [f"-DCMAKE_SYSTEM_PROCESSOR={processor}", f"-DCMAKE_OSX_ARCHITECTURES={osx_archs}"]
    if apple:
        args.append("-DAPPLE=1")
    r = subprocess.run([cmake(), *args, "-P", str(SELFTEST / "target_arch.cmake")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stderr.strip() == expected
