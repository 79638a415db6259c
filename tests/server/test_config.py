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
    resolved = {"cors_origins": "*"}  # declared unset (""): '*', or 'localhost' with tools (test_cors_default)
    for name, _, default, _ in declared(ServerConfig):
        assert getattr(c, name) == resolved.get(name, default), name
    assert c == ServerConfig()
    assert c.api_keys == [] and c.n_threads == 0 and c.default_grammar == ""
    # llama-server's defaults: the model's context, 4 slots over one unified cache
    assert (c.ctx_size, c.parallel, c.n_slots, c.unified_kv) == (0, -1, 4, True)
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
    assert config("--no-webui", LLAMA_ARG_UI="on").webui is False
    assert config(LLAMA_ARG_NO_UI="1").webui is False
    assert config(LLAMA_ARG_SHUTDOWN_GRACE="2.5").shutdown_grace == 2.5
    with pytest.raises(ValueError):
        config(LLAMA_ARG_PORT="abc")


def test_derived_values():
    c = config("--api-key", "a, b,,c", "-t", "2", "-tb", "4", "--temp", "0", "--repeat-last-n", "-1")
    assert c.api_keys == ["a", "b", "c"] and c.n_threads == 4
    assert c.sampling.temperature == 0.0 and c.sampling.repeat_last_n == -1
    assert "root ::=" in config("-j", "{}").default_grammar


@pytest.mark.parametrize("argv, message", [
    (["-np", "65"], "--parallel must be -1 (auto) or between 1 and 64 (the KV cache's sequences)"),
    (["-np", "0"], "--parallel must be -1 (auto) or between 1 and 64 (the KV cache's sequences)"),
    (["-ctk", "q2_K"], "--cache-type-k must be one of f32, f16, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0, q5_1 "
                       "(got 'q2_K')"),
    (["--rope-scaling", "ntk"], "--rope-scaling must be one of none, linear, yarn (got 'ntk')"),
    (["-C", "xyz"], "--cpu-mask must be a hexadecimal CPU mask"),
    (["-Cr", "5-2"], "--cpu-range must be a range of CPUs, lo-hi"),
    (["--prio", "4"], "--prio must be between -1 and 3"),
    (["--override-kv", "a=long:3"], "--override-kv must be KEY=TYPE:VALUE with TYPE int, float, bool or str"),
    (["-l", "15*2"], "--logit-bias must be TOKEN_ID+BIAS or TOKEN_ID-BIAS"),
    (["--api-prefix", "/v1/"], "--api-prefix must start with / and not end with /"),
    (["--sse-ping-interval", "0"], "--sse-ping-interval must be -1 (no pings) or a positive number"),
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


def test_slots_and_the_unified_cache():
    assert (config("-np", "2").n_slots, config("-np", "2").unified_kv) == (2, False)   # an explicit -np splits it
    assert config("-np", "2", "-kvu").unified_kv and not config("-no-kvu").unified_kv
    c = config("-np", "3", "--kv-unified-per-slot", "256")
    from pyllama.server.state import n_ctx
    assert (n_ctx(c), n_ctx(config("-c", "1000", "--kv-unified-per-slot", "256")), n_ctx(config())) == (768, 1000, 0)


def test_sampling_flags_become_the_default_sampling_parameters():
    c = config("--samplers", "top_k;temperature", "--top-nsigma", "1.5", "--xtc-probability", "0.5", "--typical", "0.9",
               "--dynatemp-range", "0.2", "--dynatemp-exp", "1.5", "--mirostat", "2", "--mirostat-lr", "0.2",
               "--mirostat-ent", "4", "--dry-multiplier", "0.8", "--dry-base", "2", "--dry-allowed-length", "3",
               "--dry-penalty-last-n", "-1", "--dry-sequence-breaker", "\\n", "--dry-sequence-breaker", "x",
               "-l", "15+1", "-l", "16-0.5", "--ignore-eos", "--temperature", "0.3")
    s = c.sampling
    assert s.samplers == ("top_k", "temperature") and s.temperature == 0.3 and s.ignore_eos
    assert (s.top_n_sigma, s.xtc_probability, s.typical_p, s.dynatemp_range, s.dynatemp_exponent) == \
        (1.5, 0.5, 0.9, 0.2, 1.5)
    assert (s.mirostat, s.mirostat_eta, s.mirostat_tau) == (2, 0.2, 4.0)
    assert (s.dry_multiplier, s.dry_base, s.dry_allowed_length, s.dry_penalty_last_n) == (0.8, 2.0, 3, -1)
    assert s.dry_sequence_breakers == ("\n", "x")        # escapes processed (-e, on by default)
    assert s.logit_bias == [(15, 1.0), (16, -0.5)]
    assert config("--sampler-seq", "kt").sampling.samplers == ("top_k", "temperature")
    assert config("--dry-sequence-breaker", "none").sampling.dry_sequence_breakers == ()
    assert config("--no-escape", "--dry-sequence-breaker", "\\n").sampling.dry_sequence_breakers == ("\\n",)
    assert config("--dry-base", "0.5").sampling.dry_base == 1.75  # below 1: ignored, as llama.cpp


def test_parsed_flags(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# comment\nk1\n  # indented comment\nk2\n")
    c = config("--api-key-file", str(keys), "-a", "zeta,alpha, beta", "--tags", "chat, small", "-C", "0x5",
               "-Cr", "8-9", "--override-kv", "a=int:3,b=bool:false", "--override-kv", "c=str:x", "-r", "User:",
               "-r", "\\nEnd", "--ui-config", '{"theme": "dark"}')
    assert c.api_keys == ["k1", "k2"]
    assert c.aliases == ["alpha", "beta", "zeta"] and c.tag_list == ["chat", "small"]
    assert c.cpus == [0, 2, 8, 9]
    assert c.kv_overrides == {"a": 3, "b": False, "c": "x"}
    assert c.reverse_prompts == ["User:", "\nEnd"]
    assert c.ui_settings == {"theme": "dark"}
    assert config("-v").verbose_answers and config("-lv", "10").verbose_answers and not config().verbose_answers
    assert config("--mlock").lock_model and config("-lm", "mmap+mlock").lock_model and not config().lock_model
    for argv in (["--ui-config", "[1]"], ["--ui-config", "{x"]):
        with pytest.raises(ValueError):
            config(*argv)


def test_batch_placement_flags_warn_only_when_they_differ():
    assert config("-C", "3", "-Cb", "3", "--prio", "1", "--prio-batch", "1").warnings == []
    assert [w.split()[0] for w in config("-C", "3", "-Cb", "c").warnings] == ["--cpu-mask-batch"]


def test_cors_default():
    """As llama-server: tools or MCP servers make the default 'localhost'; an explicit value wins."""
    assert config().cors_origins == "*"
    assert config("--tools", "all").cors_origins == "localhost"
    assert config("--agent").cors_origins == "localhost"
    assert config(LLAMA_ARG_MCP_SERVERS_JSON='{"mcpServers": {}}').cors_origins == "localhost"
    assert config("--mcp-servers-config", "x.json").cors_origins == "localhost"
    assert config("--tools", "all", "--cors-origins", "*").cors_origins == "*"
    assert config("--tools", "all", LLAMA_ARG_CORS_ORIGINS="http://a.example").cors_origins == "http://a.example"
