"""Models from a Hugging Face repository (llama-server's -hf, -hff, -hft, --offline),
fetched with `huggingface_hub` (the optional extra: pip install 'pyllama-cpu[hf]'), so
its cache (HF_HUB_CACHE / HF_HOME), its resumed downloads, HF_ENDPOINT and the saved
login all apply.

Which file `-hf user/model[:quant]` means, as llama.cpp picks it: the repository's
files are listed (from the Hub, or from the cache when offline or when the Hub cannot
be reached); `--hf-file` names one (case-insensitively); else the first model GGUF
whose name holds the quant followed by `.` or `-` (case-insensitive; default Q4_K_M,
then Q8_0), else, without a quant, the first model GGUF. Projector, imatrix and
speculative-decoding files are never the model; of a split model (`-00001-of-0000N`)
the first part is chosen and every part fetched.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import time
from pathlib import Path
from typing import Callable

from .errors import ModelLoadError
from .unpatched import stdlib_for_import

DEFAULT_TAGS = ("Q4_K_M", "Q8_0")
NOT_MODELS = ("mmproj", "imatrix", "mtp-", "eagle3-", "dflash-", "dspark-")
_SPLIT = re.compile(r"^(.+)-([0-9]{5})-of-([0-9]{5})$", re.I)
_TAG = re.compile(r"[-.]([A-Z0-9_]+)$", re.I)

# (file name, bytes so far, total bytes or None) -> None
ByteProgress = Callable[[str, int, "int | None"], None]


def split_repo_tag(repo_with_tag: str) -> tuple[str, str]:
    """"user/model:Q4_K_M" -> ("user/model", "Q4_K_M"); ValueError for anything not <user>/<model>[:quant]."""
    parts = repo_with_tag.split(":")
    repo, tag = parts[0], (parts[-1] if len(parts) > 1 else "")
    if len(repo.split("/")) != 2 or not all(repo.split("/")):
        raise ValueError(f"invalid Hugging Face repository '{repo_with_tag}': expected <user>/<model>[:quant]")
    return repo, tag


def split_info(path: str) -> tuple[str, str, int, int]:
    """(prefix, quant tag in upper case or "", part index, part count) of a GGUF file name."""
    if not path.endswith(".gguf"):
        return "", "", 0, 0
    prefix, index, count = path[:-len(".gguf")], 1, 1
    m = _SPLIT.match(prefix)
    if m:
        prefix, index, count = m.group(1), int(m.group(2)), int(m.group(3))
    m = _TAG.search(prefix)
    return prefix, (m.group(1).upper() if m else ""), index, count


def is_model_file(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return path.endswith(".gguf") and not any(k in name for k in NOT_MODELS)


def pick_model(files: list[str], tag: str = "") -> str | None:
    """The model file of a repository for `tag` (see the module's docstring), or None."""
    for t in ([tag] if tag else list(DEFAULT_TAGS)):
        pattern = re.compile(re.escape(t) + r"[.-]", re.I)
        for f in files:
            if is_model_file(f) and pattern.search(f):
                _, _, index, count = split_info(f)
                if count <= 1 or index == 1:
                    return f
    if not tag:
        for f in files:
            if is_model_file(f):
                _, _, index, count = split_info(f)
                if count <= 1 or index == 1:
                    return f
    return None


def model_parts(files: list[str], primary: str) -> list[str]:
    """Every part of a split model (in order), or the file alone."""
    prefix, _, _, count = split_info(primary)
    if count <= 1:
        return [primary]
    parts = [f for f in files if split_info(f)[0] == prefix and split_info(f)[3] == count]
    return sorted(parts, key=lambda f: split_info(f)[2])


def _where() -> dict:
    """The endpoint and cache as the environment says now (huggingface_hub reads them once, at import)."""
    return {"endpoint": os.environ.get("HF_ENDPOINT") or None, "cache_dir": os.environ.get("HF_HUB_CACHE") or None}


def _hub():
    try:
        with stdlib_for_import():  # its HTTP stack may import trio, which probes the OS
            import huggingface_hub
            for name in ("HfApi", "errors", "hf_hub_download", "snapshot_download"):
                getattr(huggingface_hub, name)  # lazily imported otherwise: on first use, on any thread
    except ImportError:
        raise ModelLoadError("Hugging Face models need the huggingface_hub package: "
                             "pip install 'pyllama-cpu[hf]' (or pip install huggingface_hub)") from None
    return huggingface_hub


def list_files(repo: str, *, token: str | None = None, offline: bool = False) -> list[str]:
    """The repository's files: from the Hub, else (offline, or the Hub unreachable) those in the cache."""
    hub = _hub()
    if not offline:
        try:
            return hub.HfApi(endpoint=_where()["endpoint"]).list_repo_files(repo, token=token or None)
        except hub.errors.RepositoryNotFoundError:
            raise ModelLoadError(f"Hugging Face repository '{repo}' not found (or it is private: give "
                                 f"--hf-token)") from None
        except Exception as e:  # noqa: BLE001 - no network: the cache may have it
            logging.getLogger(__name__).warning("cannot list %s on the Hub (%s); looking in the cache", repo,
                                                _one_line(e))
    return cached_files(repo)


def drop_connections() -> None:
    """Close huggingface_hub's shared HTTP client (the next call opens a new one)."""
    try:
        from huggingface_hub.utils import close_session
    except ImportError:  # absent, or a release without a shared client
        return
    close_session()


def cached_files(repo: str) -> list[str]:
    """The files of the repository's cached snapshot of `main` (relative paths), or []."""
    hub = _hub()
    try:
        folder = hub.snapshot_download(repo, local_files_only=True, cache_dir=_where()["cache_dir"])
    except Exception:  # noqa: BLE001 - not in the cache
        return []
    root = Path(folder)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() or p.is_symlink())


def download(repo_with_tag: str, filename: str = "", *, token: str | None = None, offline: bool = False,
             progress: ByteProgress | None = None) -> Path:
    """The local path of the model -hf repo_with_tag (and -hff filename) names, fetched
    into the Hugging Face cache if it is not there (every part of a split model).
    ModelLoadError, in one line, when it cannot be found or fetched."""
    hub = _hub()
    try:
        repo, tag = split_repo_tag(repo_with_tag)
    except ValueError as e:
        raise ModelLoadError(str(e)) from None
    files = list_files(repo, token=token, offline=offline)
    if not files:
        where = "in the cache (offline)" if offline else "on the Hub or in the cache"
        raise ModelLoadError(f"Hugging Face repository '{repo}': no files found {where}")
    if filename:
        primary = next((f for f in files if f.lower() == filename.lower()), None)
        if primary is None:
            raise ModelLoadError(f"Hugging Face repository '{repo}' has no file '{filename}' "
                                 f"(GGUF files: {', '.join(f for f in files if f.endswith('.gguf')) or 'none'})")
    else:
        primary = pick_model(files, tag)
        if primary is None:
            wanted = f"for quant '{tag}'" if tag else ""
            raise ModelLoadError(f"Hugging Face repository '{repo}': no GGUF model file {wanted} "
                                 f"(GGUF files: {', '.join(f for f in files if f.endswith('.gguf')) or 'none'})")
    paths = []
    for name in model_parts(files, primary):
        kw = {"token": token or None, "local_files_only": offline, **_where()}
        try:
            try:
                paths.append(hub.hf_hub_download(repo, name, **kw,
                                                 tqdm_class=_bar_class(name, progress) if progress else None))
            except TypeError as e:  # a huggingface_hub without tqdm_class: its own bar, on stderr
                if "tqdm_class" not in str(e):
                    raise
                paths.append(hub.hf_hub_download(repo, name, **kw))
        except Exception as e:  # noqa: BLE001 - the hub's errors, network errors, a full disk: one line
            raise ModelLoadError(f"cannot fetch {name} from Hugging Face repository '{repo}': {_one_line(e)}") from None
    return Path(paths[0])


def matching_file(repo: str, pattern: str, *, token: str | None = None, offline: bool = False) -> str:
    """The repository's file named `pattern`, or the first model GGUF matching it as a
    glob (llama-cpp-python's from_pretrained takes "*Q4_K_M.gguf")."""
    files = list_files(repo, token=token, offline=offline)
    if pattern in files:
        return pattern
    hits = [f for f in files if fnmatch.fnmatch(f, pattern) and (not f.endswith(".gguf") or is_model_file(f))]
    if not hits:
        raise ModelLoadError(f"Hugging Face repository '{repo}' has no file matching '{pattern}' "
                             f"(files: {', '.join(files) or 'none'})")
    return hits[0]


def _bar_class(name: str, progress: ByteProgress):
    """A tqdm class for huggingface_hub that draws nothing and reports bytes to `progress`."""
    from huggingface_hub.utils import tqdm as hub_tqdm

    class Bar(hub_tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["disable"] = True
            self._done, self._total = int(kwargs.get("initial") or 0), kwargs.get("total")
            super().__init__(*args, **kwargs)
            progress(name, self._done, self._total)

        def update(self, n=1):
            self._done += int(n or 0)
            progress(name, self._done, self._total)

    return Bar


def log_bytes(logger: logging.Logger, label: str, every_s: float = 2.0) -> ByteProgress:
    """Progress as log lines: the start, then at most one line per `every_s` (and one per
    10%), and the end."""
    last: dict = {"t": 0.0, "pct": -1, "name": None}

    def report(name: str, done: int, total: int | None) -> None:
        now = time.monotonic()
        pct = int(100 * done / total) // 10 * 10 if total else -1
        amount = (f"{done / 1e6:.1f} of {total / 1e6:.1f} MB ({min(100.0, 100 * done / total):.0f}%)" if total
                  else f"{done / 1e6:.1f} MB")
        if name != last["name"]:
            logger.info("fetching %s: %s from %s", label, name, os.environ.get("HF_ENDPOINT") or "huggingface.co")
        elif total and done >= total:
            logger.info("fetched %s: %s: %s", label, name, amount)
        elif now - last["t"] >= every_s or pct > last["pct"]:
            logger.info("fetching %s: %s: %s", label, name, amount)
        else:
            return
        last.update(t=now, pct=pct, name=name)

    return report


def _one_line(e: BaseException) -> str:
    return " ".join(str(e).split())[:400] or type(e).__name__
