"""ServerConfig: pyllama-server's flags, each declared once (llama-server's names and
LLAMA_ARG_* variables), and what the server derives from them. Making one checks
it (the checks that need no model): ValueError, naming the flag at fault."""

from __future__ import annotations

import argparse
import json
import math
import os
from dataclasses import dataclass, field
from typing import Mapping

from pyllama.chat.output_parser import REASONING_FORMATS
from pyllama.engine.engine import MAX_SLOTS
from pyllama.grammar import GrammarError, compile_grammar
from pyllama.sampling import SamplingParams
from pyllama.schema import SchemaError, schema_to_grammar

from .flags import check, declared, flag, given


@dataclass
class ServerConfig:
    model: str = flag("-m", "--model", default="", env="LLAMA_ARG_MODEL",
                      help="model path, or a default model name fetched on first use (smollm2-135m, gemma3-270m)")
    alias: str = flag("-a", "--alias", default="", env="LLAMA_ARG_ALIAS", help="model name reported by the API")
    host: str = flag("--host", default="127.0.0.1", env="LLAMA_ARG_HOST", help="address to listen on")
    port: int = flag("--port", default=8080, env="LLAMA_ARG_PORT", help="port to listen on")
    ctx_size: int = flag("-c", "--ctx-size", default=4096, env="LLAMA_ARG_CTX_SIZE",
                         help="KV cache cells, shared by all slots")
    parallel: int = flag("-np", "--parallel", default=1, env="LLAMA_ARG_N_PARALLEL", help="number of slots",
                         check=lambda v: 1 <= v <= MAX_SLOTS,
                         must=f"be between 1 and {MAX_SLOTS} (the KV cache's sequences)")
    threads: int = flag("-t", "--threads", default=0, env="LLAMA_ARG_THREADS", help="compute threads (0: all cores)")
    threads_batch: int = flag("-tb", "--threads-batch", default=0, env="LLAMA_ARG_THREADS_BATCH",
                              help="threads for prompt batches (one pool serves both here: the larger of -t and "
                                   "-tb is used)")
    batch_size: int = flag("-b", "--batch-size", default=2048, env="LLAMA_ARG_BATCH", help="tokens per engine step")
    ubatch_size: int = flag("-ub", "--ubatch-size", default=512, env="LLAMA_ARG_UBATCH",
                            help="tokens per forward pass")
    n_predict: int = flag("-n", "--n-predict", default=-1, env="LLAMA_ARG_N_PREDICT",
                          help="cap on tokens per request (-1: none)")
    keep: int = flag("--keep", default=0, help="prompt tokens kept on a context shift")
    spm_infill: bool = flag("--spm-infill", default=False, env="LLAMA_ARG_SPM_INFILL",
                            help="/infill prompts in suffix/prefix/middle order (as some models were trained)")
    max_queue: int = flag("--max-queue", default=128, env="LLAMA_ARG_MAX_QUEUE",
                          help="requests that may wait for a slot; more get 503 at once (-1: no bound, as "
                               "llama-server)",
                          check=lambda v: v >= -1, must="be -1 (no bound) or more")
    shutdown_grace: float = flag("--shutdown-grace", default=30.0, env="LLAMA_ARG_SHUTDOWN_GRACE",
                                 help="seconds running requests get to finish after SIGTERM/SIGINT",
                                 check=lambda v: v >= 0, must="be 0 or more seconds")  # NaN fails too
    seed: int = flag("-s", "--seed", default=-1, help="default sampling seed (-1: random)", sampling="seed")
    temp: float = flag("--temp", default=0.8, help="default temperature", sampling="temperature")
    top_k: int = flag("--top-k", default=40, help="default top-k", sampling="top_k")
    top_p: float = flag("--top-p", default=0.95, help="default top-p", sampling="top_p")
    min_p: float = flag("--min-p", default=0.05, help="default min-p", sampling="min_p")
    repeat_penalty: float = flag("--repeat-penalty", default=1.0, help="default repeat penalty",
                                 sampling="repeat_penalty")
    repeat_last_n: int = flag("--repeat-last-n", default=64, help="default penalty window", sampling="repeat_last_n",
                              check=lambda v: v >= -1, must="be -1 or more")
    presence_penalty: float = flag("--presence-penalty", default=0.0, help="default presence penalty",
                                   sampling="presence_penalty")
    frequency_penalty: float = flag("--frequency-penalty", default=0.0, help="default frequency penalty",
                                    sampling="frequency_penalty")
    cache_reuse: int = flag("--cache-reuse", default=0, env="LLAMA_ARG_CACHE_REUSE",
                            help="min chunk to reuse by KV shifting")
    cache_type_k: str = flag("-ctk", "--cache-type-k", default="f16", env="LLAMA_ARG_CACHE_TYPE_K", help="K cache type")
    cache_type_v: str = flag("-ctv", "--cache-type-v", default="f16", env="LLAMA_ARG_CACHE_TYPE_V", help="V cache type")
    api_key: str = flag("--api-key", default="", env="LLAMA_API_KEY", help="API keys, comma-separated")
    api_key_file: str = flag("--api-key-file", default="", help="file with one API key per line")
    ssl_key_file: str = flag("--ssl-key-file", default="", env="LLAMA_ARG_SSL_KEY_FILE",
                             help="PEM private key (HTTPS)")
    ssl_cert_file: str = flag("--ssl-cert-file", default="", env="LLAMA_ARG_SSL_CERT_FILE",
                              help="PEM certificate (HTTPS)")
    timeout: int = flag("-to", "--timeout", default=600, env="LLAMA_ARG_TIMEOUT", help="read/write timeout, seconds")
    chat_template: str = flag("--chat-template", default="", env="LLAMA_ARG_CHAT_TEMPLATE",
                              help="a Jinja chat template")
    chat_template_file: str = flag("--chat-template-file", default="", env="LLAMA_ARG_CHAT_TEMPLATE_FILE",
                                   help="file with a Jinja chat template")
    chat_template_kwargs: str = flag("--chat-template-kwargs", default="", env="LLAMA_ARG_CHAT_TEMPLATE_KWARGS",
                                     help="extra variables for the Jinja chat template, a JSON object "
                                          "(a request's chat_template_kwargs override them)")
    reasoning_format: str = flag("--reasoning-format", default="auto", env="LLAMA_ARG_THINK",
                                 help="where thoughts go: none (left in content), deepseek (reasoning_content), "
                                      "deepseek-legacy (both), auto",
                                 check=lambda v: v in REASONING_FORMATS,
                                 must="be one of " + ", ".join(REASONING_FORMATS))
    reasoning_budget: int = flag("--reasoning-budget", default=-1, env="LLAMA_ARG_THINK_BUDGET",
                                 help="token budget for thinking: -1 unrestricted, 0 no thinking, N>0: after N "
                                      "tokens of reasoning its end is forced",
                                 check=lambda v: v >= -1, must="be -1 (unrestricted), 0 or a number of tokens")
    reasoning_budget_message: str = flag("--reasoning-budget-message", default="",
                                         env="LLAMA_ARG_THINK_BUDGET_MESSAGE",
                                         help="text forced before the end of thinking when the budget runs out")
    reasoning: str = flag("-rea", "--reasoning", default="auto", env="LLAMA_ARG_REASONING",
                          help="thinking in chats: on, off, or auto (on where the template reacts to it)",
                          check=lambda v: v in ("on", "off", "auto"), must="be on, off or auto")
    reasoning_effort: str = flag("--reasoning-effort", default="default", env="LLAMA_ARG_REASONING_EFFORT",
                                 help="reasoning effort given to the chat template ('default': the template's own)")
    pooling: str = flag("--pooling", default="", env="LLAMA_ARG_POOLING",
                        help="pooling of embeddings: none, mean, cls, last or rank (default: the model's)",
                        check=lambda v: v in ("", "none", "mean", "cls", "last", "rank"),
                        must="be one of none, mean, cls, last, rank")
    embd_normalize: int = flag("--embd-normalize", default=2,
                               help="normalization of pooled embeddings: -1 none, 0 max absolute (int16), "
                                    "1 taxicab, 2 euclidean, >2 p-norm",
                               check=lambda v: v >= -1, must="be -1 or more")
    path: str = flag("--path", default="", env="LLAMA_ARG_STATIC_PATH", help="directory of static files to serve")
    grammar: str = flag("--grammar", default="", help="default GBNF grammar for requests that bring no constraint")
    grammar_file: str = flag("--grammar-file", default="", help="file with the default GBNF grammar")
    json_schema: str = flag("-j", "--json-schema", default="",
                            help="default JSON schema (e.g. {} for any JSON object)")
    json_schema_file: str = flag("-jf", "--json-schema-file", default="", help="file with the default JSON schema")
    # switches (-h lists them last)
    cont_batching: bool = flag("-cb", "--cont-batching", off=("-nocb", "--no-cont-batching"), default=True,
                               env="LLAMA_ARG_CONT_BATCHING", help="continuous batching")
    context_shift: bool = flag("--context-shift", off=("--no-context-shift",), default=False,
                               env="LLAMA_ARG_CONTEXT_SHIFT", help="shift the context when it fills")
    metrics: bool = flag("--metrics", default=False, env="LLAMA_ARG_ENDPOINT_METRICS", help="enable /metrics")
    embedding: bool = flag("--embedding", "--embeddings", default=False, env="LLAMA_ARG_EMBEDDINGS",
                           help="only embeddings (/embedding, /v1/embeddings); use with dedicated embedding models")
    rerank: bool = flag("--rerank", "--reranking", default=False, env="LLAMA_ARG_RERANKING",
                        help="enable reranking (/rerank): embeddings with rank pooling")
    slots: bool = flag("--slots", off=("--no-slots",), default=True, env="LLAMA_ARG_ENDPOINT_SLOTS",
                       help="enable /slots")
    props: bool = flag("--props", default=False, env="LLAMA_ARG_ENDPOINT_PROPS", help="allow POST /props")
    prefill_assistant: bool = flag("--prefill-assistant", off=("--no-prefill-assistant",), default=True,
                                   env="LLAMA_ARG_PREFILL_ASSISTANT",
                                   help="continue a conversation that ends with an assistant message")
    reasoning_preserve: bool = flag("--reasoning-preserve", off=("--no-reasoning-preserve",), default=True,
                                    env="LLAMA_ARG_REASONING_PRESERVE",
                                    help="keep the reasoning of every past assistant turn (off: only the last one's)")
    jinja: bool = flag("--jinja", off=("--no-jinja",), default=True, env="LLAMA_ARG_JINJA", help="Jinja chat templates")
    webui: bool = flag("--webui", off=("--no-webui",), default=True, env="LLAMA_ARG_WEBUI", help="serve the web UI")
    log_disable: bool = flag("--log-disable", default=False, help="no logging")
    verbose: bool = flag("-v", "--verbose", default=False, help="verbose logging")
    # router mode and Hugging Face
    models_dir: str = flag("--models-dir", default="", env="LLAMA_ARG_MODELS_DIR",
                           help="router mode (no -m): a directory of GGUF files (or of folders of them), one model "
                                "each")
    models_preset: str = flag("--models-preset", default="", env="LLAMA_ARG_MODELS_PRESET",
                              help="router mode (no -m): an INI file of model presets ([name] sections of flags; "
                                   "[*] for all)")
    models_max: int = flag("--models-max", default=4, env="LLAMA_ARG_MODELS_MAX",
                           help="router mode: models loaded at once; loading one more unloads the least recently "
                                "used (0: no limit)",
                           check=lambda v: v >= 0, must="be 0 (no limit) or more")
    models_autoload: bool = flag("--models-autoload", off=("--no-models-autoload",), default=True,
                                 env="LLAMA_ARG_MODELS_AUTOLOAD",
                                 help="router mode: load a model on its first request")
    hf_repo: str = flag("-hf", "-hfr", "--hf-repo", default="", env="LLAMA_ARG_HF_REPO",
                        help="Hugging Face repository <user>/<model>[:quant] (quant: default Q4_K_M, else Q8_0, else "
                             "the first GGUF file); needs the hf extra (pip install 'pyllama-cpu[hf]')")
    hf_file: str = flag("-hff", "--hf-file", default="", env="LLAMA_ARG_HF_FILE",
                        help="the file of --hf-repo to use (overrides its quant)")
    hf_token: str = flag("-hft", "--hf-token", default="", env="HF_TOKEN",
                         help="Hugging Face access token (default: HF_TOKEN, else huggingface_hub's saved login)")
    model_url: str = flag("-mu", "--model-url", default="", env="LLAMA_ARG_MODEL_URL",
                          help="download the model from this URL into the model cache (resumed, kept by its ETag)")
    offline: bool = flag("--offline", default=False, env="LLAMA_ARG_OFFLINE",
                         help="use only models already in the caches: no network access")
    # slot files, LoRA, sleep
    slot_save_path: str = flag("--slot-save-path", default="",
                               help="directory of slot files (POST /slots/{id}?action=save|restore|erase); "
                                    "default: disabled",
                               check=lambda v: not v or not os.path.exists(v) or os.path.isdir(v),
                               must="be a directory")
    lora: str = flag("--lora", default="", repeat=True,
                     help="LoRA adapter (GGUF) applied at scale 1 (comma-separated values for several)")
    lora_scaled: str = flag("--lora-scaled", default="", repeat=True,
                            help="LoRA adapter with its scale, FNAME:SCALE (comma-separated values for several)")
    lora_init_without_apply: bool = flag("--lora-init-without-apply", default=False,
                                         help="load LoRA adapters at scale 0 (set their scales later with "
                                              "POST /lora-adapters)")
    sleep_idle_seconds: int = flag("--sleep-idle-seconds", default=-1,
                                   help="seconds without requests after which the model is unloaded until the next "
                                        "one (-1: never)",
                                   check=lambda v: v == -1 or v > 0, must="be -1 (disabled) or a number of seconds")

    # derived from the flags when the config is made
    api_keys: list[str] = field(init=False, default_factory=list)  # --api-key's, then --api-key-file's
    n_threads: int = field(init=False, default=0)                   # the one pool's size: the larger of -t, -tb
    sampling: SamplingParams = field(init=False, default_factory=SamplingParams)  # the flags marked sampling=
    default_grammar: str = field(init=False, default="")  # GBNF for requests that bring no constraint
    template_kwargs: dict = field(init=False, default_factory=dict)  # --chat-template-kwargs, parsed
    lora_adapters: list = field(init=False, default_factory=list)   # (path, initial scale): --lora, then --lora-scaled

    @property
    def is_router(self) -> bool:
        """No model given (-m, -hf, -mu): the server routes requests to a child server per model."""
        return not (self.model or self.hf_repo or self.model_url)

    def __post_init__(self) -> None:
        check(self)
        if self.ctx_size < self.parallel:
            raise ValueError("--ctx-size must be at least --parallel")
        self.api_keys = [k.strip() for k in self.api_key.split(",") if k.strip()]
        if self.api_key_file:
            with open(self.api_key_file, encoding="utf-8") as f:
                self.api_keys += [line.strip() for line in f if line.strip()]
        self.n_threads = max(self.threads, self.threads_batch)
        if self.rerank:  # as llama-server: reranking is embeddings with rank pooling
            self.embedding, self.pooling = True, "rank"
        self.sampling = SamplingParams(**{f.sampling: getattr(self, name)
                                          for name, _, _, f in declared(ServerConfig) if f.sampling})
        self.default_grammar = _default_grammar(self)
        self.template_kwargs = _template_kwargs(self.chat_template_kwargs)
        self.lora_adapters = _lora_adapters(self)


def _template_kwargs(text: str) -> dict:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--chat-template-kwargs: {e}") from None
    if not isinstance(value, dict):
        raise ValueError("--chat-template-kwargs must be a JSON object")
    return value


def _lora_adapters(cfg: ServerConfig) -> list[tuple[str, float]]:
    """(path, scale) of every adapter: --lora's at 1, then --lora-scaled's at theirs; all at
    0 with --lora-init-without-apply (as llama-server reports them then)."""
    out = [(p.strip(), 1.0) for p in cfg.lora.split(",") if p.strip()]
    for item in (x.strip() for x in cfg.lora_scaled.split(",")):
        if not item:
            continue
        path, sep, scale = item.rpartition(":")
        try:
            value = float(scale)
        except ValueError:
            value = math.nan
        if not sep or not path or not math.isfinite(value):
            raise ValueError(f"--lora-scaled: {item!r} is not FNAME:SCALE")
        out.append((path, value))
    if cfg.lora_init_without_apply:
        out = [(p, 0.0) for p, _ in out]
    return out


def _default_grammar(cfg: ServerConfig) -> str:
    """--grammar(-file) or --json-schema(-file), as GBNF."""
    text = cfg.grammar
    if cfg.grammar_file:
        with open(cfg.grammar_file, encoding="utf-8") as f:
            text = f.read()
    schema_text = cfg.json_schema
    if cfg.json_schema_file:
        with open(cfg.json_schema_file, encoding="utf-8") as f:
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


def resolve(ns: argparse.Namespace | None = None, environ: Mapping[str, str] = os.environ) -> ServerConfig:
    """Flag, else environment variable, else default."""
    return ServerConfig(**given(ServerConfig, ns, environ))


def config_from_env(environ: Mapping[str, str] = os.environ) -> ServerConfig:
    """The config of a server started without a command line (gunicorn)."""
    return resolve(None, environ)
