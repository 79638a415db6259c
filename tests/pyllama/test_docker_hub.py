"""-dr / --docker-repo against a fake Docker Hub registry (helpers/fake_registry.py):
names as llama.cpp parses them, the GGUF layer of the manifest fetched with a pull
token, the token kept from the CDN the blob redirects to, the digest checked, the
cache reused, offline mode, and one-line errors."""

from __future__ import annotations

import pytest

from helpers.fake_registry import GGUF_TYPE, FakeRegistry
from pyllama import docker_hub
from pyllama.errors import ModelLoadError

GGUF = b"GGUF" + bytes(range(256)) * 64


@pytest.fixture
def registry(monkeypatch):
    reg = FakeRegistry({"ai/smollm2:135M-Q4_0": GGUF, "ai/gemma3:latest": GGUF[:1000],
                        "me/swapped:v1": GGUF + b"v1"},
                       layers={"ai/nolayer:latest": []}, swap={"me/swapped:v1": GGUF[::-1]})
    reg.manifests[("ai/nolayer", "latest")] = {"schemaVersion": 2, "mediaType": "x",
                                               "layers": [{"mediaType": "text/plain", "digest": "sha256:" + "1" * 64}]}
    reg.manifests[("ai/baddigest", "latest")] = {"schemaVersion": 2, "mediaType": "x",
                                                 "layers": [{"mediaType": GGUF_TYPE, "digest": "md5:abc"}]}
    for k, v in reg.env().items():
        monkeypatch.setenv(k, v)
    yield reg
    reg.close()


@pytest.mark.parametrize("name, repo, tag", [
    ("smollm2", "ai/smollm2", "latest"),
    ("smollm2:135M-Q4_0", "ai/smollm2", "135M-Q4_0"),
    ("someone/model:v2", "someone/model", "v2"),
])
def test_names_as_llama_cpp(name, repo, tag, tmp_path):
    assert docker_hub.split_name(name) == (repo, tag)
    assert docker_hub.cached_path(name, tmp_path).name == f"{repo.replace('/', '_')}_{tag}.gguf"


@pytest.mark.parametrize("name", ["", "Upper/Case", "a/../b", "ai/x:bad tag", "ai/x:" + "t" * 200, "a//b",
                                  "x" * 300])
def test_bad_names(name):
    with pytest.raises(ValueError):
        docker_hub.split_name(name)


def test_download_verify_and_reuse(registry, tmp_path):
    path = docker_hub.download("smollm2:135M-Q4_0", tmp_path)
    assert path == tmp_path / "ai_smollm2_135M-Q4_0.gguf" and path.read_bytes() == GGUF
    cdn = [r for r in registry.requests if r[1].startswith("/cdn/")]
    assert cdn and all(auth == "" for _, _, auth in cdn)  # the pull token stays with the registry
    assert any(p.startswith("/v2/ai/smollm2/blobs/") and auth for _, p, auth in registry.requests)

    n = len(registry.requests)
    assert docker_hub.download("smollm2:135M-Q4_0", tmp_path) == path
    assert not [r for r in registry.requests[n:] if "/blobs/" in r[1] or r[1].startswith("/cdn/")]

    registry.close()  # unreachable: the cached file serves, and offline needs no registry
    assert docker_hub.download("smollm2:135M-Q4_0", tmp_path) == path
    assert docker_hub.download("smollm2:135M-Q4_0", tmp_path, offline=True) == path
    with pytest.raises(ModelLoadError, match="not in the cache"):
        docker_hub.download("gemma3", tmp_path, offline=True)


def test_a_moved_tag(registry, tmp_path):
    """The tag names a new digest: the new file replaces the cached one once it is checked;
    while it cannot be fetched, the cached file serves."""
    import hashlib
    path = docker_hub.download("smollm2:135M-Q4_0", tmp_path)
    new = GGUF + b"new"
    digest = "sha256:" + hashlib.sha256(new).hexdigest()
    registry.manifests[("ai/smollm2", "135M-Q4_0")] = {"schemaVersion": 2, "mediaType": "x", "layers": [
        {"mediaType": GGUF_TYPE, "digest": digest, "size": len(new)}]}
    assert docker_hub.download("smollm2:135M-Q4_0", tmp_path) == path and path.read_bytes() == GGUF
    registry.blobs[digest] = new
    assert docker_hub.download("smollm2:135M-Q4_0", tmp_path) == path and path.read_bytes() == new
    assert sorted(p.name for p in tmp_path.glob("*.gguf")) == [path.name]


@pytest.mark.parametrize("name, message", [
    ("ai/missing", "HTTP 404"),
    ("nolayer", "no GGUF layer in the Docker manifest"),
    ("baddigest", "invalid digest in the manifest"),
    ("me/swapped:v1", "does not match the manifest's digest"),
    ("Bad Name", "invalid Docker repository"),
])
def test_errors(registry, tmp_path, name, message):
    with pytest.raises(ModelLoadError) as e:
        docker_hub.download(name, tmp_path)
    assert message in str(e.value) and "\n" not in str(e.value) and str(e.value).startswith("--docker-repo")
    assert not list(tmp_path.glob("*.gguf"))  # nothing half-checked is kept
