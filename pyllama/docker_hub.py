"""A model from Docker Hub's model registry (llama-server's -dr / --docker-repo), as
llama.cpp fetches it: `[<namespace>/]<model>[:tag]`, the namespace `ai/` by default and
the tag `latest`. An anonymous pull token comes from the registry's auth service; the
image manifest names the GGUF layer (media type application/vnd.docker.ai.gguf.v3, or
any media type that says gguf); that blob is downloaded into the model cache as
`<namespace>_<model>_<tag>.gguf`, with model_url's ETag, resume and lock. Unlike
llama.cpp, the file's SHA-256 is checked against the layer's digest (a damaged or
swapped blob is an error, and is not kept; `<file>.digest` records the digest a file
was checked against, so a tag that still names it costs no download and no hashing; a
tag moved to a new digest is fetched under another name and replaces the file once
checked, the old file serving while the new one cannot be fetched), and --offline uses
the cached file alone.

The registry's addresses can be changed for a mirror (and tests) with
PYLLAMA_DOCKER_REGISTRY (default https://registry-1.docker.io) and
PYLLAMA_DOCKER_AUTH (default https://auth.docker.io/token)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from . import model_url
from .errors import ModelLoadError
from .hf_hub import ByteProgress

log = logging.getLogger(__name__)
REGISTRY = "https://registry-1.docker.io"
AUTH = "https://auth.docker.io/token"
MANIFEST_TYPES = "application/vnd.docker.distribution.manifest.v2+json,application/vnd.oci.image.manifest.v1+json"
GGUF_TYPE = "application/vnd.docker.ai.gguf.v3"
MAX_JSON = 4 << 20  # bytes of a token or manifest answer
# Docker's reference grammar: lowercase path components, a tag of at most 128 characters
REPO = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST = re.compile(r"sha256:([0-9a-fA-F]{64})")


def split_name(name: str) -> tuple[str, str]:
    """(repository, tag) of `[<namespace>/]<model>[:tag]`; ValueError when it is no valid name."""
    repo, _, tag = name.strip().partition(":")
    tag = tag or "latest"
    if "/" not in repo:
        repo = "ai/" + repo
    if len(repo) > 255 or not REPO.fullmatch(repo):
        raise ValueError(f"invalid Docker repository '{name[:300]}': expected [<namespace>/]<model>[:tag], "
                         "lowercase letters, digits and . _ -")
    if not TAG.fullmatch(tag):
        raise ValueError(f"invalid Docker tag '{tag[:300]}'")
    return repo, tag


def cached_path(name: str, cache: Path) -> Path:
    repo, tag = split_name(name)
    return cache / f"{repo.replace('/', '_')}_{tag}.gguf"


def download(name: str, cache: Path, *, offline: bool = False, progress: ByteProgress | None = None) -> Path:
    """The cached GGUF file of Docker model `name`, fetched first when needed. ModelLoadError in one line."""
    try:
        repo, tag = split_name(name)
    except ValueError as e:
        raise ModelLoadError(f"--docker-repo: {e}") from None
    path = cached_path(name, cache)
    if offline:
        if not path.exists():
            raise ModelLoadError(f"--docker-repo {repo}:{tag}: {path} is not in the cache (offline mode)")
        return path
    registry = os.environ.get("PYLLAMA_DOCKER_REGISTRY", REGISTRY).rstrip("/")
    where = f"--docker-repo {repo}:{tag}"
    try:
        token = _token(repo)
        digest = _gguf_digest(f"{registry}/v2/{repo}/manifests/{urllib.parse.quote(tag)}", token)
    except (urllib.error.URLError, OSError) as e:
        if path.exists():
            return path  # the registry cannot be reached: the cached file serves
        raise ModelLoadError(f"{where}: {model_url.reason(e)}") from None
    except ValueError as e:
        raise ModelLoadError(f"{where}: {e}") from None
    stamp = path.with_name(path.name + ".digest")  # the digest the cached file was checked against
    if path.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return path
    # fetched under a name of its own and checked before it takes the cached file's place:
    # a failed download of a moved tag leaves the file of its previous digest serving
    part = f"{path.stem}.{digest[7:23]}.gguf"
    try:
        got = model_url.download(f"{registry}/v2/{repo}/blobs/{digest}", cache, token=token, progress=progress,
                                 name=part)
    except ModelLoadError as e:  # said as "--model-url <blob URL>: why"
        why = str(e).split(": ", 1)[-1]
        if path.exists():
            log.warning("%s: cannot fetch %s (%s); using the cached file of an earlier digest", where, digest, why)
            return path
        raise ModelLoadError(f"{where}: {why}") from None
    got.with_name(got.name + ".etag").unlink(missing_ok=True)
    if not _verified(got, digest):
        got.unlink(missing_ok=True)
        raise ModelLoadError(f"{where}: the downloaded file does not match the manifest's digest {digest} "
                             "(it was deleted)")
    os.replace(got, path)
    stamp.write_text(digest)
    return path


def _get_json(url: str, headers: dict) -> dict:
    req = urllib.request.Request(url, headers={"User-Agent": "pyllama", **headers})
    try:
        with model_url.open_url(req) as resp:
            body = resp.read(MAX_JSON + 1)
    except urllib.error.HTTPError as e:
        raise ValueError(f"{url.split('?')[0]}: HTTP {e.code} {e.reason}") from None
    if len(body) > MAX_JSON:
        raise ValueError(f"{url.split('?')[0]}: the answer is larger than {MAX_JSON >> 20} MiB")
    try:
        value = json.loads(body)
    except ValueError:
        raise ValueError(f"{url.split('?')[0]}: the answer is not JSON") from None
    if not isinstance(value, dict):
        raise ValueError(f"{url.split('?')[0]}: the answer is not a JSON object")
    return value


def _token(repo: str) -> str:
    """An anonymous pull token for `repo` (as llama.cpp: no credentials are sent)."""
    auth = os.environ.get("PYLLAMA_DOCKER_AUTH", AUTH)
    query = urllib.parse.urlencode({"service": "registry.docker.io", "scope": f"repository:{repo}:pull"})
    answer = _get_json(f"{auth}?{query}", {})
    token = answer.get("token") or answer.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the registry's token answer has no 'token' field")
    return token


def _gguf_digest(url: str, token: str) -> str:
    """The digest of the manifest's GGUF layer, normalised to lowercase."""
    manifest = _get_json(url, {"Authorization": f"Bearer {token}", "Accept": MANIFEST_TYPES})
    layers = manifest.get("layers")
    for layer in layers if isinstance(layers, list) else []:
        if not isinstance(layer, dict):
            continue
        media = layer.get("mediaType")
        if isinstance(media, str) and (media == GGUF_TYPE or "gguf" in media):
            digest = layer.get("digest")
            m = DIGEST.fullmatch(digest) if isinstance(digest, str) else None
            if m is None:
                raise ValueError(f"invalid digest in the manifest: {str(digest)[:100]!r}")
            return "sha256:" + m.group(1).lower()
    raise ValueError("no GGUF layer in the Docker manifest")


def _verified(path: Path, digest: str) -> bool:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(model_url.CHUNK):
            h.update(chunk)
    return "sha256:" + h.hexdigest() == digest
