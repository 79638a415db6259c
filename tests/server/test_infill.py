"""/infill end to end. SmolLM2's vocabulary has no FIM prefix/suffix/middle tokens
(llama-server answers 501), so a copy of it gets them with the gguf package's
gguf-new-metadata (ids 3, 4, 5); its "<reponame>" (id 4) is also found by its text as
the repository token, as llama.cpp finds it, and there is no file separator. On that
copy the prompt is assembled token for token as llama-server assembles it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers.server_process import ServerProcess
from pyllama.gguf_file import GGUFFile
from pyllama.tokenizer import Tokenizer

PRE, SUF, MID = 3, 4, 5


@pytest.fixture(scope="module")
def fim_model(smollm2_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("fim") / "smollm2-fim.gguf"
    subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", str(smollm2_path), str(out),
                    "--special-token-by-id", "fim_pre", str(PRE), "--special-token-by-id", "fim_suf", str(SUF),
                    "--special-token-by-id", "fim_mid", str(MID), "--force"],
                   check=True, capture_output=True)
    return out


@pytest.fixture(scope="module")
def server(fim_model):
    s = ServerProcess(fim_model, "-np", "2", "-c", "2048", "-b", "256", "-t", "2")
    yield s
    s.stop()


@pytest.fixture(scope="module")
def tok(fim_model):
    return Tokenizer.from_gguf(GGUFFile(fim_model))


def text(tok, s: str) -> list[int]:
    return tok.tokenize(s, add_special=False, parse_special=False)


BODY = {"input_prefix": "def add(a, b):\n    ", "input_suffix": "\n\nprint(add(1, 2))\n", "prompt": "return",
        "input_extra": [{"filename": "util.py", "text": "def sub(a, b):\n    return a - b\n"},
                        {"text": "X = 1\n"}],
        "n_predict": 12, "temperature": 0, "return_tokens": True}


def test_prompt_is_assembled_as_llama_server_does(server, tok):
    assert (tok.fim_pre, tok.fim_suf, tok.fim_mid, tok.fim_rep, tok.fim_sep) == (PRE, SUF, MID, 4, -1)
    r = server.post("/infill", BODY)
    assert r.status_code == 200, r.text
    res = r.json()
    sep = text(tok, "\n\n--- snippet ---\n\n")  # no FIM_SEP: chunks follow a plain-text separator
    extra = [4] + text(tok, "myproject\n") + sep + text(tok, BODY["input_extra"][0]["text"]) \
        + sep + text(tok, "X = 1\n")
    want = extra + [PRE] + text(tok, BODY["input_prefix"]) + tok.tokenize("return", add_special=False,
                                                                          parse_special=True) \
        + [SUF] + text(tok, BODY["input_suffix"]) + [MID]
    assert res["tokens_evaluated"] == len(want)
    assert server.post("/detokenize", {"tokens": want}).json()["content"] == res["prompt"]
    again = server.post("/infill", BODY).json()
    assert again["content"] == res["content"] and again["tokens"] == res["tokens"]  # greedy: deterministic
    assert res["tokens_predicted"] <= 12 and res["stop"] is True


def test_prefix_and_suffix_are_cut_to_the_batch(server, tok):
    """-b 256: at most the last 192 tokens of the prefix, of the suffix what 64 leave after the prompt."""
    long = {**BODY, "input_prefix": "x = 1\n" * 400, "input_suffix": "y = 2\n" * 400, "input_extra": [],
            "prompt": "", "n_predict": 1}
    res = server.post("/infill", long).json()
    prefix, suffix = text(tok, long["input_prefix"]), text(tok, long["input_suffix"])
    want = [4] + text(tok, "myproject\n") + [PRE] + prefix[-192:] + [SUF] + suffix[:62] + [MID]
    assert res["tokens_evaluated"] == len(want)
    assert server.post("/detokenize", {"tokens": want}).json()["content"] == res["prompt"]


def test_streamed(server):
    r = server.post("/infill", {**BODY, "stream": True})
    events = [json.loads(line[6:]) for line in r.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["stop"] is True
    whole = server.post("/infill", BODY).json()
    assert "".join(e["content"] for e in events) == whole["content"]


@pytest.mark.parametrize("body,message", [
    ({"input_suffix": ""}, "\"input_prefix\" is required"),
    ({"input_prefix": ""}, "\"input_suffix\" is required"),
    ({"input_prefix": "", "input_suffix": "", "prompt": 5}, "\"prompt\" must be a string"),
    ({"input_prefix": "", "input_suffix": "", "input_extra": {}}, "\"input_extra\" must be an array"),
    ({"input_prefix": "", "input_suffix": "", "input_extra": [{"filename": "a"}]}, "\"text\" field"),
    ({"input_prefix": "", "input_suffix": "", "input_extra": [{"text": "", "filename": 1}]}, "\"filename\" field"),
    ({"input_prefix": [1.5], "input_suffix": ""}, "input_prefix"),
    ({"input_prefix": [10 ** 9], "input_suffix": ""}, "input_prefix"),
])
def test_bad_requests(server, body, message):
    r = server.post("/infill", body)
    assert r.status_code == 400 and message in r.json()["error"]["message"], r.text
    assert server.get("/health").status_code == 200


def test_model_without_fim_tokens_is_501(smollm2_path):
    s = ServerProcess(smollm2_path, "-c", "512", "-t", "2")
    try:
        r = s.post("/infill", {"input_prefix": "a", "input_suffix": "b"})
        assert r.status_code == 501
        assert r.json()["error"] == {"code": 501, "type": "not_supported_error", "message":
                                     "Infill is not supported by this model: prefix token is missing. "
                                     "suffix token is missing. middle token is missing. "}
    finally:
        s.stop()


def test_spm_order(fim_model, tok):
    s = ServerProcess(fim_model, "--spm-infill", "-c", "1024", "-t", "2")
    try:
        body = {"input_prefix": "a = ", "input_suffix": "\nb = a\n", "n_predict": 1, "temperature": 0}
        res = s.post("/infill", body).json()
        # -c 1024 with the default -b 2048: no room is left for the extra context (not even its header)
        want = [SUF] + text(tok, "\nb = a\n") + [PRE] + text(tok, "a = ") + [MID]
        assert s.post("/detokenize", {"tokens": want}).json()["content"] == res["prompt"]
    finally:
        s.stop()


def test_prompt_token_ids_in_process(fim_model, tok):
    """The exact ids of the assembled prompt (the e2e tests above see its length and text):
    extra context, FIM_PRE prefix prompt, FIM_SUF suffix, FIM_MID."""
    from types import SimpleNamespace

    from pyllama import Llama
    from pyllama.server import schemas
    from pyllama.server.config import ServerConfig

    llm = Llama(fim_model, n_ctx=2048, n_threads=1)
    try:
        st = SimpleNamespace(config=ServerConfig(model=str(fim_model), ctx_size=2048, batch_size=256), llm=llm,
                             engine=SimpleNamespace(n_ctx_slot=2048), lora_infos=[], lora_scales=[])
        body = {"input_prefix": "def f():\n    ", "input_suffix": "\nf()\n", "prompt": "pass",
                "input_extra": [{"filename": "a.py", "text": "A = 1\n"}, {"text": "B = 2\n"}]}
        ids = schemas.infill(st, body).tasks[0].prompt
        sep = text(tok, "\n\n--- snippet ---\n\n")
        assert ids == ([4] + text(tok, "myproject\n") + sep + text(tok, "A = 1\n") + sep + text(tok, "B = 2\n")
                       + [PRE] + text(tok, "def f():\n    ") + tok.tokenize("pass", add_special=False, parse_special=True)
                       + [SUF] + text(tok, "\nf()\n") + [MID])
    finally:
        llm.close()
