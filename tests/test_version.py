"""One version everywhere, and the typing files, in the installed package (the wheel's test
command runs this file against each built wheel)."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest

import pyllama
from pyllama import _native

DIST = "pyllama-cpu"


def test_version_of_the_package_the_distribution_and_the_native_module():
    v = pyllama.__version__
    assert _native.__version__ == v  # compiled in from pyllama/_version.py by CMakeLists.txt
    assert importlib.metadata.version(DIST) == v  # pyproject.toml reads the same file


@pytest.mark.parametrize("command", ["pyllama", "pyllama-server"])
def test_commands_report_the_version(command, tmp_path):
    exe = Path(sys.executable).parent / command  # the console script installed with the package
    assert exe.exists(), f"{command} is not installed next to {sys.executable}"
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == f"{command} {pyllama.__version__}"


def test_console_scripts_are_the_documented_ones():
    scripts = {ep.name: ep.value for ep in importlib.metadata.distribution(DIST).entry_points
               if ep.group == "console_scripts"}
    assert scripts == {"pyllama": "pyllama.cli:main", "pyllama-server": "pyllama.server.cli:main"}


def test_package_is_typed():
    here = Path(pyllama.__file__).parent
    assert (here / "py.typed").is_file()
    stubs = (here / "_native.pyi").read_text()
    assert "class GrammarMatcher" in stubs and "def vec_dot(" in stubs
    import ast
    ast.parse(stubs)
