"""ServerConfig, and one from resolved flag values (checks that need no model)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pyllama.engine.engine import MAX_SLOTS
from pyllama.grammar import GrammarError, compile_grammar
from pyllama.sampling import SamplingParams
from pyllama.schema import SchemaError, schema_to_grammar


@dataclass
class ServerConfig:
    model: str = ""
    alias: str = ""
    host: str = "127.0.0.1"
    port: int = 8080
    ctx_size: int = 4096
    parallel: int = 1
    threads: int = 0
    threads_batch: int = 0
    batch_size: int = 2048
    ubatch_size: int = 512
    n_predict: int = -1
    keep: int = 0
    cont_batching: bool = True
    cache_reuse: int = 0
    context_shift: bool = False
    cache_type_k: str = "f16"
    cache_type_v: str = "f16"
    api_keys: list[str] = field(default_factory=list)
    ssl_key_file: str = ""
    ssl_cert_file: str = ""
    timeout: int = 600
    metrics: bool = False
    slots: bool = True
    props: bool = False
    chat_template: str = ""
    chat_template_file: str = ""
    jinja: bool = True
    webui: bool = True
    path: str = ""
    log_disable: bool = False
    verbose: bool = False
    sampling: SamplingParams = field(default_factory=SamplingParams)
    grammar: str = ""             # GBNF for requests that bring no constraint (--grammar, --json-schema)
    max_queue: int = 128          # tasks waiting for a slot; more are refused with 503 (-1: no bound)
    shutdown_grace: float = 30.0  # seconds running requests get after SIGTERM/SIGINT


def default_grammar(v: dict) -> str:
    """The grammar for requests that bring none: --grammar(-file) or --json-schema(-file)."""
    text = v["grammar"]
    if v["grammar_file"]:
        with open(v["grammar_file"], encoding="utf-8") as f:
            text = f.read()
    schema_text = v["json_schema"]
    if v["json_schema_file"]:
        with open(v["json_schema_file"], encoding="utf-8") as f:
            schema_text = f.read()
    if schema_text:
        if text:
            raise ValueError("--grammar and --json-schema exclude each other")
        try:
            schema = json.loads(schema_text)
            text = schema_to_grammar({"type": "object"} if schema == {} else schema)
        except (json.JSONDecodeError, SchemaError) as e:
            raise ValueError(f"--json-schema: {e}") from None
    if text and "<" not in text:  # token references need the model's vocabulary: checked per request
        try:
            compile_grammar(text)
        except GrammarError as e:
            raise ValueError(f"--grammar: {e}") from None
    return text


def build_config(v: dict) -> ServerConfig:
    keys = [k.strip() for k in v["api_key"].split(",") if k.strip()] if v["api_key"] else []
    if v["api_key_file"]:
        with open(v["api_key_file"], encoding="utf-8") as f:
            keys += [line.strip() for line in f if line.strip()]
    if not 1 <= v["parallel"] <= MAX_SLOTS:
        raise ValueError(f"--parallel must be between 1 and {MAX_SLOTS} (the KV cache's sequences)")
    if v["max_queue"] < -1:
        raise ValueError("--max-queue must be -1 (no bound) or more")
    if not v["shutdown_grace"] >= 0:
        raise ValueError("--shutdown-grace must be 0 or more seconds")
    if v["ctx_size"] < v["parallel"]:
        raise ValueError("--ctx-size must be at least --parallel")
    if v["repeat_last_n"] < -1:
        raise ValueError("--repeat-last-n must be -1 or more")
    sampling = SamplingParams(seed=v["seed"], temperature=v["temp"], top_k=v["top_k"], top_p=v["top_p"],
                              min_p=v["min_p"], repeat_penalty=v["repeat_penalty"],
                              repeat_last_n=v["repeat_last_n"], presence_penalty=v["presence_penalty"],
                              frequency_penalty=v["frequency_penalty"])
    return ServerConfig(
        model=v["model"], alias=v["alias"], host=v["host"], port=v["port"], ctx_size=v["ctx_size"],
        parallel=v["parallel"], threads=max(v["threads"], v["threads_batch"]), threads_batch=v["threads_batch"],
        batch_size=v["batch_size"], ubatch_size=v["ubatch_size"], n_predict=v["n_predict"], keep=v["keep"],
        cont_batching=v["cont_batching"], cache_reuse=v["cache_reuse"], context_shift=v["context_shift"],
        cache_type_k=v["cache_type_k"], cache_type_v=v["cache_type_v"], api_keys=keys,
        ssl_key_file=v["ssl_key_file"], ssl_cert_file=v["ssl_cert_file"], timeout=v["timeout"],
        metrics=v["metrics"], slots=v["slots"], props=v["props"], chat_template=v["chat_template"],
        chat_template_file=v["chat_template_file"], jinja=v["jinja"], webui=v["webui"], path=v["path"],
        log_disable=v["log_disable"], verbose=v["verbose"], sampling=sampling, grammar=default_grammar(v),
        max_queue=v["max_queue"], shutdown_grace=v["shutdown_grace"])
