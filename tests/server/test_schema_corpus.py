"""The schema corpus end to end: with both real models, every schema in
helpers/schema_corpus, asked through the OpenAI chat route's response_format
with several seeds (and through /completion's json_schema), gives output that
ends because the grammar is complete and validates against the schema."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from helpers.schema_corpus import CORPUS, UNBOUNDED, validate
from helpers.server_process import ServerProcess
from pyllama import _native
from pyllama.grammar import compile_grammar
from pyllama.model_registry import resolve_model
from pyllama.schema import schema_to_grammar

SEEDS = (1, 2)
N_PREDICT = 400


@pytest.fixture(scope="module", params=["smollm2-135m", "gemma3-270m"])
def model_server(request):
    resolve_model(request.param, progress=False)
    s = ServerProcess(request.param, "-np", "4", "-c", "8192", "-t", "2")
    yield s
    s.stop()


def _chat(server, schema, prompt, seed):
    r = server.post("/v1/chat/completions", {
        "messages": [{"role": "user", "content": prompt}], "seed": seed, "max_tokens": N_PREDICT,
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}})
    assert r.status_code == 200, r.text
    choice = r.json()["choices"][0]
    return choice["message"]["content"], choice["finish_reason"]


def _completion(server, schema, prompt, seed):
    r = server.post("/completion", {"prompt": prompt + "\n", "json_schema": schema, "seed": seed,
                                    "n_predict": N_PREDICT})
    assert r.status_code == 200, r.text
    body = r.json()
    return body["content"], {"eos": "stop", "limit": "length"}.get(body["stop_type"], body["stop_type"])


def test_every_output_validates(model_server):
    jobs = [(name, schema, prompt, seed, _chat) for name, schema, prompt in CORPUS for seed in SEEDS]
    jobs += [(name, schema, prompt, 3, _completion) for name, schema, prompt in CORPUS[::3]]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda j: (j[0], j[1], *j[4](model_server, j[1], j[2], j[3])), jobs))
    failures = []
    n_stopped = 0
    for name, schema, content, finish in results:
        try:
            if finish == "length" and name in UNBOUNDED:
                assert _is_prefix(content, schema), "not a prefix of the grammar"
                continue
            assert finish == "stop", f"ended by {finish}"
            validate(content, schema)
            n_stopped += 1
        except Exception as e:  # noqa: BLE001 -- every failure is reported together
            failures.append(f"{name}: {e}\n  {content[:300]!r}")
    assert not failures, "\n".join(failures)
    assert n_stopped >= len(results) - 2 * len(UNBOUNDED) * len(SEEDS)


def _is_prefix(text: str, schema) -> bool:
    """The text is where the grammar could be after some tokens (a cut-off but valid start)."""
    m = _native.GrammarMatcher(compile_grammar(schema_to_grammar(schema)), _native.GrammarVocab([b"x"], []))
    return m.accept_text(text.encode())
