"""What ships and how it is built: the distribution's metadata, the license files, the CI
workflows (valid, and building what the issue asks for), cibuildwheel's build matrix, the
checked-in stubs of the native module, and the Windows decision.

The wheel and the sdist themselves are built and installed in tests/e2e/test_wheel.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
WORKFLOWS = ROOT / ".github" / "workflows"
PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def workflow(name: str) -> dict:
    # PyYAML reads the key `on` as True (YAML 1.1); GitHub reads it as "on".
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    data["on"] = data.pop(True, data.get("on"))
    return data


def steps_text(job: dict) -> str:
    return "\n".join(str(s.get("run", "")) + str(s.get("uses", "")) for s in job["steps"])


def test_distribution_metadata():
    p = PYPROJECT["project"]
    assert p["name"] == "pyllama-cpu"  # "pyllama" and "pyllama-server" on PyPI are other projects
    assert p["dynamic"] == ["version"] and "version" not in p
    assert PYPROJECT["tool"]["scikit-build"]["metadata"]["version"]["input"] == "pyllama/_version.py"
    assert p["license"] == "MIT" and p["license-files"] == ["LICENSE", "NOTICE"]  # PEP 639
    assert p["scripts"] == {"pyllama": "pyllama.cli:main", "pyllama-server": "pyllama.server.cli:main"}
    classifiers = set(p["classifiers"])
    assert not any(c.startswith("License ::") for c in classifiers)  # PEP 639: the expression alone
    assert {"Operating System :: POSIX :: Linux", "Operating System :: MacOS", "Typing :: Typed"} <= classifiers
    versions = sorted(c.rsplit(" ", 1)[1] for c in classifiers if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c))
    assert versions == PYTHONS
    assert any(c.startswith("Topic :: ") for c in classifiers)
    assert {"llama.cpp", "gguf"} <= set(p["keywords"])
    assert {"Homepage", "Source", "Issues"} <= set(p["urls"])
    assert p["requires-python"] == ">=3.10"


def test_license_and_notice():
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    notice = (ROOT / "NOTICE").read_text()
    assert "llama.cpp" in notice and "ggml" in notice and "The ggml authors" in notice


def test_windows_is_declared_unsupported():
    """Decision: no Windows build. The native code uses GCC/Clang flags and builtins and is
    tested on Linux and macOS only, so CMake refuses Windows with a clear message, the
    classifiers name no Windows, and the README says so."""
    assert not any("Windows" in c for c in PYPROJECT["project"]["classifiers"])
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(r"if\(WIN32\)\s*\n\s*message\(FATAL_ERROR \"pyllama does not support Windows", cmake)
    assert "Windows is not supported" in (ROOT / "README.md").read_text()
    ci = PYPROJECT["tool"]["cibuildwheel"]
    assert "windows" not in str(ci).lower()


def test_ci_workflow():
    ci = workflow("ci.yml")
    assert set(ci["on"]) >= {"push", "pull_request"}
    test = ci["jobs"]["test"]
    assert test["strategy"]["matrix"]["python"] == PYTHONS and test["runs-on"].startswith("ubuntu")
    readme_test_command = (ROOT / "README.md").read_text().split("```bash\n")[1].splitlines()[1].split("  #")[0].strip()
    assert readme_test_command == "pip install '.[test]' && pytest"
    assert readme_test_command in steps_text(test)
    assert test["env"]["PYLLAMA_REQUIRE_CROSS"] == "1"
    assert "g++-aarch64-linux-gnu" in steps_text(test) and "qemu-user" in steps_text(test)
    generic = [j for j in ci["jobs"].values() if j.get("env", {}).get("PYLLAMA_ISA") == "generic"]
    assert len(generic) == 1 and "pytest" in steps_text(generic[0])


def test_wheels_workflow():
    wf = workflow("wheels.yml")
    assert wf["on"]["push"]["tags"] == ["v*"]
    jobs = wf["jobs"]
    builds = {(m["platform"], m["arch"]): m["os"] for m in jobs["wheels"]["strategy"]["matrix"]["include"]}
    assert set(builds) == {("linux", "x86_64"), ("linux", "aarch64"), ("macos", "arm64"), ("macos", "x86_64")}
    assert builds[("linux", "aarch64")].endswith("-arm")  # a native arm runner, no emulation
    assert builds[("macos", "x86_64")].endswith("-intel")
    cibw = [s["uses"] for s in jobs["wheels"]["steps"] if "cibuildwheel" in s.get("uses", "")]
    pinned = next(r for r in PYPROJECT["project"]["optional-dependencies"]["test"] if r.startswith("cibuildwheel"))
    assert cibw == [f"pypa/cibuildwheel@v{pinned.split('==')[1].split(';')[0].strip()}"]  # as the test below
    assert "build --sdist" in steps_text(jobs["sdist"]) and "pip install dist/*.tar.gz" in steps_text(jobs["sdist"])
    publish = jobs["publish"]
    assert set(publish["needs"]) == {"wheels", "sdist"}
    assert "refs/tags/v" in publish["if"] and publish["permissions"] == {"id-token": "write"}  # trusted publishing
    assert "pypa/gh-action-pypi-publish@release/v1" in steps_text(publish)
    assert "password" not in str(publish) and "secrets." not in str(publish)


@pytest.mark.parametrize("name", ["ci.yml", "wheels.yml"])
def test_workflows_match_githubs_schema(name):
    if sys.version_info < (3, 11):
        pytest.skip("check-jsonschema needs Python >= 3.11 (the 3.11+ CI jobs run this)")
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent)) or shutil.which("check-jsonschema")
    assert exe, "check-jsonschema is a test extra"
    r = subprocess.run([exe, "--builtin-schema", "vendor.github-workflows", str(WORKFLOWS / name)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


BUILDS = {  # (platform, arch) of wheels.yml -> what cibuildwheel must build there
    ("linux", "x86_64"): [f"cp3{v}-manylinux_x86_64" for v in range(10, 14)],
    ("linux", "aarch64"): [f"cp3{v}-manylinux_aarch64" for v in range(10, 14)],
    ("macos", "arm64"): [f"cp3{v}-macosx_arm64" for v in range(10, 14)],
    ("macos", "x86_64"): [f"cp3{v}-macosx_x86_64" for v in range(10, 14)],
}


@pytest.mark.parametrize("platform, arch", list(BUILDS))
def test_cibuildwheel_build_identifiers(platform, arch):
    if sys.version_info < (3, 11):
        pytest.skip("cibuildwheel needs Python >= 3.11 (the 3.11+ CI jobs run this)")
    exe = shutil.which("cibuildwheel", path=str(Path(sys.executable).parent)) or shutil.which("cibuildwheel")
    assert exe, "cibuildwheel is a test extra"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CIBW_")}
    r = subprocess.run([exe, "--print-build-identifiers", "--platform", platform, "--archs", arch], cwd=ROOT,
                       capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    print(f"{platform} {arch}: {' '.join(r.stdout.split())}")
    assert r.stdout.split() == BUILDS[(platform, arch)]


def test_native_stubs_are_current():
    r = subprocess.run([sys.executable, str(ROOT / "tools" / "gen_stubs.py"), "--check"], capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr
