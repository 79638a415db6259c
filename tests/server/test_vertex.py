"""Vertex AI's custom-container contract (AIP_MODE=PREDICTION), as llama-server serves
it: the port from AIP_HTTP_PORT, a health alias, and the predict route running each
instance as a request of the route its @requestFormat names."""

from __future__ import annotations

import pytest

from helpers.server_process import ServerProcess, free_port
from pyllama.server.vertex import request_format


@pytest.fixture(scope="module")
def vertex(smollm2_path):
    port = free_port()
    env = {"AIP_MODE": "PREDICTION", "AIP_HTTP_PORT": str(port), "AIP_HEALTH_ROUTE": "isalive",
           "AIP_PREDICT_ROUTE": "/v1/endpoints/predict"}
    s = ServerProcess(smollm2_path, "--port", "1", "-np", "2", "-c", "1024", "-t", "2", "--api-key", "k",
                      env=env, port=port)
    yield s
    s.stop()


AUTH = {"Authorization": "Bearer k"}


def test_aliases():
    assert request_format("/v1/chat/completions") == "chatCompletions"
    assert request_format("/apply-template") == "applyTemplate"
    assert request_format("/completion") == "completion"
    assert request_format("/slots/<int:id_slot>") == "slots"


def test_port_and_health_alias(vertex):
    assert vertex.get("/isalive").json() == {"status": "ok"}  # (AIP_HTTP_PORT, not --port 1)


def test_predict_runs_each_instance_on_its_route(vertex):
    chat = {"@requestFormat": "chatCompletions", "max_tokens": 4, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "Say hello"}]}
    done = {"@requestFormat": "/completion", "prompt": "The capital of France is", "n_predict": 2,
            "temperature": 0}
    bad = [5, {"max_tokens": 1}, {"@requestFormat": "noSuchRoute"},
           {"@requestFormat": "chatCompletions", "messages": "hi"}]
    r = vertex.post("/v1/endpoints/predict", {"instances": [chat, done, *bad]}, headers=AUTH)
    assert r.status_code == 200, r.text
    p = r.json()["predictions"]
    assert len(p) == 6
    assert p[0].get("object") == "chat.completion", p[0]
    assert p[0]["choices"][0]["message"]["role"] == "assistant"
    assert p[0]["usage"]["completion_tokens"] == 4
    alone = vertex.post("/completion", {k: v for k, v in done.items() if k[0] != "@"}, headers=AUTH).json()
    assert p[1]["content"] == alone["content"] and p[1]["tokens_predicted"] == 2
    assert p[2]["error"]["message"] == "each instance must be a JSON object"
    assert p[3]["error"]["message"] == "each instance must include a string @requestFormat"
    assert p[4]["error"]["message"] == "no handler registered for @requestFormat: noSuchRoute"
    assert p[5]["error"]["code"] == 400 and p[5]["error"]["type"] == "invalid_request_error"


def test_predict_errors(vertex):
    assert vertex.post("/v1/endpoints/predict", {"instances": []}).status_code == 401  # the key is checked
    for body, message in (({}, "instances"), ({"instances": {}}, "instances"),
                          ({"instances": [{}] * 129}, "maximum size of 128")):
        r = vertex.post("/v1/endpoints/predict", body, headers=AUTH)
        assert r.status_code == 400 and message in r.json()["error"]["message"]
    assert vertex.post("/v1/endpoints/predict", {"instances": []}, headers=AUTH).json() == {"predictions": []}
