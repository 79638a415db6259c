"""Hugging Face models with the real huggingface_hub client against a fake Hub
(helpers/fake_hf.py): llama.cpp's choice of file for -hf repo[:quant], -hff, the cache,
a download broken off and resumed, offline use of the cache, Llama.from_pretrained;
and --model-url downloads (resumed, kept by ETag)."""

from __future__ import annotations

import pytest

from helpers.fake_hf import FakeHub
from pyllama import Llama
from pyllama.errors import ModelLoadError
from pyllama.hf_hub import download, pick_model, split_info, split_repo_tag
from pyllama import model_url

REPO = "pyllama-test/SmolLM2-135M-Instruct-GGUF"


def test_file_choice_as_llama_cpp():
    files = ["README.md", "mmproj-model-Q4_K_M.gguf", "m-imatrix-Q4_K_M.gguf", "m-Q8_0.gguf", "m-Q4_K_M.gguf",
             "m-q4_1.gguf", "big-Q2_K-00002-of-00003.gguf", "big-Q2_K-00001-of-00003.gguf",
             "big-Q2_K-00003-of-00003.gguf", "mtp-m-Q4_K_M.gguf"]
    assert pick_model(files) == "m-Q4_K_M.gguf"                      # Q4_K_M first, never a projector
    assert pick_model([f for f in files if "Q4_K_M" not in f]) == "m-Q8_0.gguf"  # then Q8_0
    assert pick_model(["README.md", "x-F16.gguf", "y-Q5_0.gguf"]) == "x-F16.gguf"  # then the first model
    assert pick_model(files, "Q4_1") == "m-q4_1.gguf"               # case-insensitive
    assert pick_model(files, "Q2_K") == "big-Q2_K-00001-of-00003.gguf"  # the first part of a split model
    assert pick_model(files, "IQ1_S") is None                       # a quant the repository lacks
    assert split_info("big-Q2_K-00002-of-00003.gguf") == ("big-Q2_K", "Q2_K", 2, 3)
    assert split_repo_tag("user/model:q4_k_m") == ("user/model", "q4_k_m")
    with pytest.raises(ValueError, match="expected <user>/<model>"):
        split_repo_tag("model-only")


@pytest.fixture(scope="module")
def hub(smollm2_path):
    h = FakeHub({REPO: {"README.md": b"# SmolLM2\n", "SmolLM2-135M-Instruct-Q8_0.gguf": b"not this one",
                        "SmolLM2-135M-Instruct-Q4_1.gguf": smollm2_path,
                        "mmproj-SmolLM2-Q4_1.gguf": b"a projector"}},
                cut_first_get={"SmolLM2-135M-Instruct-Q4_1.gguf": 30_000_000})
    yield h
    h.close()


@pytest.fixture
def hf_env(hub, tmp_path_factory, monkeypatch):
    cache = tmp_path_factory.getbasetemp() / "hf-cache"
    monkeypatch.setenv("HF_ENDPOINT", hub.url)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return cache


def test_download_picks_the_quant_and_resumes_a_broken_download(hub, hf_env, smollm2_path):
    seen = []
    path = download(f"{REPO}:Q4_1", progress=lambda name, done, total: seen.append((name, done, total)))
    assert path.name == "SmolLM2-135M-Instruct-Q4_1.gguf" and str(path).startswith(str(hf_env))
    assert path.read_bytes() == smollm2_path.read_bytes()
    gets = [(m, p, r) for m, p, r in hub.requests if m == "GET" and p.endswith("Q4_1.gguf")]
    # broken off at 30 MB; resumed from what the client had written (it writes in 10 MiB pieces)
    assert len(gets) == 2 and gets[0][2] == "", gets
    assert 10_000_000 <= int(gets[1][2].removeprefix("bytes=").rstrip("-")) <= 30_000_000, gets
    assert seen[-1] == ("SmolLM2-135M-Instruct-Q4_1.gguf", 98362432, 98362432)
    assert not any(p.endswith("Q8_0.gguf") or "mmproj" in p for _, p, _ in hub.requests if _ == "GET")
    n = len(hub.requests)
    assert download(f"{REPO}:q4_1") == path  # cached: a listing and a HEAD, no download
    assert all(m != "GET" or "/api/" in p for m, p, _ in hub.requests[n:])


def test_offline_uses_the_cache(hub, hf_env, monkeypatch):
    download(f"{REPO}:Q4_1")
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    n = len(hub.requests)
    path = download(f"{REPO}:Q4_1", offline=True)
    assert path.name == "SmolLM2-135M-Instruct-Q4_1.gguf" and len(hub.requests) == n
    assert download(REPO, "smollm2-135m-instruct-q4_1.GGUF", offline=True) == path  # -hff, any case
    with pytest.raises(ModelLoadError, match="no GGUF model file for quant 'Q5_0'"):
        download(f"{REPO}:Q5_0", offline=True)
    with pytest.raises(ModelLoadError, match="no files found in the cache"):
        download("someone/else", offline=True)


def test_errors_are_one_line(hub, hf_env):
    with pytest.raises(ModelLoadError, match="Hugging Face repository 'nobody/nothing' not found"):
        download("nobody/nothing")
    with pytest.raises(ModelLoadError, match="has no file 'other.gguf'"):
        download(REPO, "other.gguf")


def test_from_pretrained(hub, hf_env):
    llm = Llama.from_pretrained(REPO, "*Q4_1.gguf", n_ctx=256, n_threads=1)
    try:
        assert llm.path.endswith("SmolLM2-135M-Instruct-Q4_1.gguf") and llm.n_vocab == 49152
    finally:
        llm.close()
    with pytest.raises(ModelLoadError, match="no file matching"):
        Llama.from_pretrained(REPO, "*Q6_K.gguf")


def test_model_url_resumes_and_keeps_the_file_by_etag(tmp_path):
    data = bytes(range(256)) * 4096  # 1 MB
    h = FakeHub({"u/r": {"model.gguf": data}}, cut_first_get={"model.gguf": 300_000})
    try:
        url = f"{h.url}/files/u/r/model.gguf"
        path = model_url.download(url, tmp_path)
        assert path == tmp_path / "model.gguf" and path.read_bytes() == data
        assert [r for m, _, r in h.requests if m == "GET"] == ["", "bytes=300000-"]
        assert (tmp_path / "model.gguf.etag").read_text() == f'"{h.etag("u/r", "model.gguf")}"'
        n = len(h.requests)
        assert model_url.download(url, tmp_path) == path and [m for m, _, _ in h.requests[n:]] == ["HEAD"]
        with pytest.raises(ModelLoadError, match="not in the cache"):
            model_url.download(f"{h.url}/files/u/r/other.gguf", tmp_path, offline=True)
        with pytest.raises(ModelLoadError, match="HTTP 404"):
            model_url.download(f"{h.url}/files/u/r/other.gguf", tmp_path)
    finally:
        h.close()
