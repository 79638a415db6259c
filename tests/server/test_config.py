"""pyllama-server's flags, in process: each declared once on ServerConfig, and the
parser, -h, the environment and the checks all agree with that declaration."""

from __future__ import annotations

import dataclasses

import pytest

from pyllama.server.cli import parser
from pyllama.server.config import ServerConfig, resolve
from pyllama.server.flags import declared


def config(*argv: str, **environ: str) -> ServerConfig:
    return resolve(parser().parse_args(list(argv)), environ)


def test_defaults_are_the_declared_ones():
    c = config()
    for name, _, default, _ in declared(ServerConfig):
        assert getattr(c, name) == default, name
    assert c == ServerConfig()
    assert c.api_keys == [] and c.n_threads == 0 and c.default_grammar == ""
    assert (c.sampling.temperature, c.sampling.top_k, c.sampling.seed) == (0.8, 40, -1)


def test_help_lists_every_flag_with_its_variable():
    text = " ".join(parser().format_help().split())  # unwrapped
    for _, _, _, f in declared(ServerConfig):
        for name in (*f.names, *f.off):
            assert name in text, name
        if f.env:
            assert f"(env: {f.env})" in text, f.env


def test_flag_beats_variable_beats_default():
    assert config(LLAMA_ARG_N_PARALLEL="3").parallel == 3
    assert config("-np", "2", LLAMA_ARG_N_PARALLEL="3").parallel == 2
    assert config(LLAMA_ARG_CONT_BATCHING="0").cont_batching is False
    assert config("-cb", LLAMA_ARG_CONT_BATCHING="0").cont_batching is True
    assert config("--no-webui", LLAMA_ARG_WEBUI="on").webui is False
    assert config(LLAMA_ARG_SHUTDOWN_GRACE="2.5").shutdown_grace == 2.5
    with pytest.raises(ValueError):
        config(LLAMA_ARG_PORT="abc")


def test_derived_values():
    c = config("--api-key", "a, b,,c", "-t", "2", "-tb", "4", "--temp", "0", "--repeat-last-n", "-1")
    assert c.api_keys == ["a", "b", "c"] and c.n_threads == 4
    assert c.sampling.temperature == 0.0 and c.sampling.repeat_last_n == -1
    assert "root ::=" in config("-j", "{}").default_grammar


@pytest.mark.parametrize("argv, message", [
    (["-np", "65"], "--parallel must be between 1 and 64 (the KV cache's sequences)"),
    (["--max-queue", "-2"], "--max-queue must be -1 (no bound) or more"),
    (["--shutdown-grace", "nan"], "--shutdown-grace must be 0 or more seconds"),
    (["--repeat-last-n", "-2"], "--repeat-last-n must be -1 or more"),
    (["-c", "1", "-np", "2"], "--ctx-size must be at least --parallel"),
    (["--grammar", 'root ::= "a"', "-j", "{}"], "--grammar and --json-schema exclude each other"),
])
def test_checks(argv, message):
    with pytest.raises(ValueError) as e:
        config(*argv)
    assert str(e.value) == message


def test_a_config_made_in_code_is_checked_too():
    with pytest.raises(ValueError, match="--parallel"):
        ServerConfig(parallel=0)
    assert dataclasses.replace(ServerConfig(), parallel=4).parallel == 4


def test_chat_flags():
    c = config(LLAMA_ARG_CHAT_TEMPLATE_KWARGS='{"enable_thinking": false}', LLAMA_ARG_THINK="deepseek")
    assert c.template_kwargs == {"enable_thinking": False} and c.reasoning_format == "deepseek"
    assert config("--reasoning-format", "none", "--reasoning-budget", "0").reasoning_budget == 0
    c = config("--reasoning-budget", "100", "--reasoning-budget-message", " Enough.")
    assert (c.reasoning_budget, c.reasoning_budget_message) == (100, " Enough.")
    assert config().reasoning_format == "auto" and config().prefill_assistant
    assert not config("--no-prefill-assistant").prefill_assistant
    assert config("-rea", "off", "--reasoning-effort", "high", "--no-reasoning-preserve").reasoning == "off"
    assert config(LLAMA_ARG_REASONING_EFFORT="low").reasoning_effort == "low"
    for argv in (["--chat-template-kwargs", "[]"], ["--chat-template-kwargs", "{x"], ["--reasoning-format", "loud"],
                 ["--reasoning-budget", "-2"], ["--reasoning", "maybe"]):
        with pytest.raises(ValueError):
            config(*argv)
