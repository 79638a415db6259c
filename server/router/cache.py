"""The router's side of the model cache: checking a Hugging Face model before POST
/models fetches it, and deleting a cached model's files for DELETE /models.

Deleting `user/model:QUANT` removes the repository's cached files whose quant is QUANT
(every part of a split model) and the blobs nothing else in the cache points to, as
llama-server does; `user/model` without a quant removes the whole repository. A default
model's name (smollm2-135m) removes its file from pyllama's own cache."""

from __future__ import annotations

import shutil
from pathlib import Path

from pyllama import hf_hub
from pyllama.errors import ModelLoadError
from pyllama.model_registry import DEFAULT_MODELS, cache_dir
from pyllama.unpatched import original, stdlib_for_import

from .presets import hf_cache_dir


# One listing at a time, and each on a fresh HTTP client: huggingface_hub shares one
# client between threads, and a pooled connection opened on a pool thread that has since
# ended belongs to a destroyed gevent loop ("operation on destroyed loop").
_listing = original("threading", "Lock")()


def check_downloadable(name: str, *, token: str = "", offline: bool = False) -> str:
    """The file `name` (user/model[:quant]) names on the Hub; ValueError when it names
    none (a bad name, a repository that does not exist, no GGUF for the quant). Runs on a
    worker thread."""
    try:
        repo, tag = hf_hub.split_repo_tag(name)
        with _listing:
            try:
                files = hf_hub.list_files(repo, token=token or None, offline=offline)
            finally:
                hf_hub.drop_connections()
    except (ValueError, ModelLoadError) as e:
        raise ValueError(str(e)) from None
    primary = hf_hub.pick_model(files, tag)
    if primary is None:
        raise ValueError(f"no GGUF model file{' for quant ' + repr(tag) if tag else ''} in '{repo}'")
    return primary


def delete_cached(name: str) -> bool:
    """Delete model `name` from the cache; False when no file of it was there."""
    if name in DEFAULT_MODELS:
        path = cache_dir() / "models" / DEFAULT_MODELS[name].filename
        if path.is_file():
            path.unlink()
            return True
        return False
    try:
        repo, tag = hf_hub.split_repo_tag(name)
    except ValueError:
        return False
    root = _repo_dir(repo)
    if root is None:
        return False
    if not tag:
        shutil.rmtree(root, ignore_errors=True)
        return True
    snapshots = root / "snapshots"
    chosen = [p for p in _entries(snapshots) if hf_hub.split_info(p.name)[1] == tag.upper()]
    if not chosen:
        return False
    blobs = {(p.parent / p.readlink()).resolve() for p in chosen if p.is_symlink()}
    for p in chosen:
        p.unlink(missing_ok=True)
    kept = {p.resolve() for p in _entries(snapshots) if p.is_symlink()}
    for blob in blobs - kept:
        blob.unlink(missing_ok=True)
    return True


def _entries(snapshots: Path) -> list[Path]:
    """Every file (or link to a blob) under the repository's snapshots."""
    if not snapshots.is_dir():
        return []
    return [p for p in snapshots.glob("*/**/*") if p.is_file() or p.is_symlink()]


def _repo_dir(repo: str) -> Path | None:
    folder = hf_cache_dir()
    if folder is None:
        try:
            with stdlib_for_import():
                from huggingface_hub import constants
            folder = constants.HF_HUB_CACHE
        except ImportError:
            return None
    path = Path(folder) / ("models--" + repo.replace("/", "--"))
    return path if path.is_dir() else None
