"""LoRA adapters on the server: --lora / --lora-scaled / --lora-init-without-apply,
GET and POST /lora-adapters in llama-server's shapes, a request's own `lora`, requests
with different adapters in one batch, and an adapter that cannot be used ending the
process with one error line."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from helpers.lora_adapters import random_pairs, weight_shapes, write_lora
from helpers.server_process import RUN_DIR, ServerProcess, free_port
from pyllama import Llama

PROMPT = "The capital of France is"


@pytest.fixture(scope="module")
def adapter(smollm2_path, tmp_path_factory):
    targets = [f"blk.{i}.{n}" for i in range(0, 30, 3)
               for n in ("attn_q.weight", "attn_v.weight", "ffn_up.weight", "ffn_down.weight")]
    pairs = random_pairs(weight_shapes(smollm2_path, targets), rank=8, seed=5, scale_a=0.1, scale_b=0.1)
    return write_lora(tmp_path_factory.mktemp("lora") / "smol-lora.gguf", pairs, alpha=16.0, dtype=np.float16)


@pytest.fixture(scope="module")
def expected(smollm2_path, adapter):
    """Greedy tokens of the library, per scale of the adapter."""
    llm = Llama(smollm2_path, n_ctx=512, n_threads=2, lora=[adapter])
    ids = llm.tokenize(PROMPT)
    return {s: list(llm.generate(ids, max_tokens=12, lora={0: s}, stop_at_eog=False)) for s in (0.0, 0.5, 1.0)}


@pytest.fixture(scope="module")
def srv(smollm2_path, adapter):
    s = ServerProcess("smollm2-135m", "-np", "3", "-c", "1536", "-t", "2", "--lora", str(adapter))
    yield s
    s.stop()


def tokens(srv, **kw) -> list[int]:
    r = srv.post("/completion", {"prompt": PROMPT, "n_predict": 12, "temperature": 0, "return_tokens": True,
                                 "ignore_eos": True, **kw})
    assert r.status_code == 200, r.text
    return r.json()["tokens"]


def test_adapters_listed_and_applied(srv, adapter, expected):
    assert expected[0.0] != expected[1.0]  # the adapter changes the answer
    assert srv.get("/lora-adapters").json() == [{"id": 0, "path": str(adapter), "scale": 1.0, "task_name": "",
                                                 "prompt_prefix": ""}]
    assert tokens(srv) == expected[1.0]                                   # the global scale
    assert tokens(srv, lora=[{"id": 0, "scale": 0.5}]) == expected[0.5]   # the request's own
    assert tokens(srv, lora=[{"id": 0, "scale": 0}]) == expected[0.0]
    assert tokens(srv, lora=[]) == expected[1.0]                          # empty: the global scales
    r = srv.post("/completion", {"prompt": PROMPT, "n_predict": 1, "lora": [{"id": 0, "scale": 0.5}]})
    assert r.json()["generation_settings"]["lora"] == [{"id": 0, "scale": 0.5}]
    r = srv.post("/v1/chat/completions", {"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4,
                                          "lora": [{"id": 0, "scale": 0.25}]})
    assert r.status_code == 200, r.text


def test_global_scales_are_set_by_post(srv, expected):
    try:
        r = srv.post("/lora-adapters", [{"id": 0, "scale": 0.5}])
        assert r.status_code == 200 and r.json() == {"success": True}
        assert srv.get("/lora-adapters").json()[0]["scale"] == 0.5
        assert tokens(srv) == expected[0.5]
        assert srv.post("/lora-adapters", []).status_code == 200           # left out: 0
        assert srv.get("/lora-adapters").json()[0]["scale"] == 0.0
        assert tokens(srv) == expected[0.0]
    finally:
        srv.post("/lora-adapters", [{"id": 0, "scale": 1.0}])


def test_bad_lora_fields_are_400s(srv):
    for bad in ({"id": 0, "scale": 0.5}, [{"id": 1, "scale": 1}], [{"id": -1, "scale": 1}], [{"id": "0"}],
                [{"id": 0, "scale": "big"}], [3]):
        r = srv.post("/completion", {"prompt": PROMPT, "n_predict": 1, "lora": bad})
        assert r.status_code == 400, bad
    assert srv.post("/lora-adapters", {"id": 0, "scale": 1}).json()["error"]["message"] == \
        "Request body must be an array"
    assert srv.post("/lora-adapters", [{"id": 5, "scale": 1}]).status_code == 400
    assert srv.get("/lora-adapters").json()[0]["scale"] == 1.0


def test_requests_with_different_adapters_share_batches(srv, expected):
    """Three at once, each with its own scale: each answer is what it is alone (the
    adapters apply per sequence, so they need not wait for each other)."""
    results: dict = {}

    def one(scale):
        results[scale] = tokens(srv, lora=[{"id": 0, "scale": scale}], n_predict=12)

    threads = [threading.Thread(target=one, args=(s,)) for s in (0.0, 0.5, 1.0)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == expected


def test_a_cached_prompt_is_reused_only_under_the_same_adapters(srv):
    # (a prompt no other test sends: the prompt cache in host memory may hold those, computed
    # under other tests' scales, and rightly serve them)
    body = {"prompt": "Quartz watches keep time because", "n_predict": 2, "temperature": 0, "id_slot": 2}
    srv.post("/completion", {**body, "lora": [{"id": 0, "scale": 1}]})
    same = srv.post("/completion", {**body, "lora": [{"id": 0, "scale": 1}]}).json()
    assert same["timings"]["cache_n"] > 0
    other = srv.post("/completion", {**body, "lora": [{"id": 0, "scale": 0.5}]}).json()
    assert other["timings"]["cache_n"] == 0


def test_flags_set_the_initial_scales(smollm2_path, adapter):
    s = ServerProcess("smollm2-135m", "-c", "256", "-t", "1", "--lora-scaled", f"{adapter}:0.5", "--lora",
                      str(adapter))
    try:
        assert [a["scale"] for a in s.get("/lora-adapters").json()] == [1.0, 0.5]  # --lora's first
    finally:
        s.stop()
    s = ServerProcess("smollm2-135m", "-c", "256", "-t", "1", "--lora", f"{adapter},{adapter}",
                      "--lora-init-without-apply")
    try:
        assert [a["scale"] for a in s.get("/lora-adapters").json()] == [0.0, 0.0]
    finally:
        s.stop()


def test_an_unusable_adapter_ends_the_process(smollm2_path, gemma3_path, adapter, tmp_path):
    for bad, message in ((gemma3_path, "general.type"), (tmp_path / "none.gguf", "cannot open")):
        out = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-m", "smollm2-135m", "--port",
                              str(free_port()), "--lora", str(bad)], cwd=RUN_DIR, capture_output=True, text=True,
                             timeout=60, env=dict(os.environ))
        assert out.returncode == 1
        last = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.startswith("error: ")][-1]
        assert message in last, last
    out = subprocess.run([sys.executable, "-m", "pyllama.server.cli", "-m", "smollm2-135m", "--lora-scaled",
                          str(adapter)], cwd=RUN_DIR, capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "FNAME:SCALE" in out.stderr
