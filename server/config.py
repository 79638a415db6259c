"""ServerConfig: pyllama-server's flags, each declared once (llama-server's names and
LLAMA_ARG_* variables), and what the server derives from them. Making one checks
it (the checks that need no model): ValueError, naming the flag at fault."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
from dataclasses import dataclass, field
from typing import Mapping

from pyllama.chat.output_parser import REASONING_FORMATS
from pyllama.engine.engine import MAX_SLOTS
from pyllama.grammar import GrammarError, compile_grammar
from pyllama.llama import CACHE_TYPES
from pyllama.sampling import SamplingParams, parse_samplers
from pyllama.schema import SchemaError, schema_to_grammar

from .flags import ANY, check, declared, flag, given, no_effect_warnings


GPU = "no GPU: every layer runs on the CPU"
SPEC = "speculative decoding is not implemented"
MTMD = "multimodal input is not supported"
PRESET = "this preset downloads a model pyllama cannot run as given; start with -m, or -hf "


@dataclass
class ServerConfig:
    model: str = flag("-m", "--model", default="", env="LLAMA_ARG_MODEL", metavar="FNAME",
                      help="model path, or a default model name fetched on first use (smollm2-135m, gemma3-270m)")
    alias: str = flag("-a", "--alias", default="", env="LLAMA_ARG_ALIAS",
                      help="model name aliases reported by the API, comma-separated (the first in sorted order "
                           "is the model's id)")
    tags: str = flag("--tags", default="", env="LLAMA_ARG_TAGS",
                     help="model tags, comma-separated (informational: listed by /v1/models)")
    host: str = flag("--host", default="127.0.0.1", env="LLAMA_ARG_HOST", metavar="HOST",
                     help="addresses to listen on, comma-separated (IPv4, IPv6, host names), or UNIX socket paths "
                          "ending in .sock; with several TCP addresses, :: binds IPv6 only")
    port: int = flag("--port", default=8080, env="LLAMA_ARG_PORT", help="port to listen on (0: any free port)",
                     check=lambda v: 0 <= v <= 65535, must="be between 0 and 65535")
    ctx_size: int = flag("-c", "--ctx-size", default=0, env="LLAMA_ARG_CTX_SIZE",
                         help="KV cache cells, shared by all slots (0: the model's training context)",
                         check=lambda v: v >= 0, must="be 0 (the model's) or more")
    parallel: int = flag("-np", "--parallel", default=-1, env="LLAMA_ARG_N_PARALLEL",
                         help="number of slots (-1: auto, 4 slots sharing one unified KV cache)",
                         check=lambda v: v == -1 or 1 <= v <= MAX_SLOTS,
                         must=f"be -1 (auto) or between 1 and {MAX_SLOTS} (the KV cache's sequences)")
    threads: int = flag("-t", "--threads", default=-1, env="LLAMA_ARG_THREADS",
                        help="compute threads (<= 0: all hardware threads)")
    threads_batch: int = flag("-tb", "--threads-batch", default=-1,
                              help="threads for prompt batches (one pool serves both here: the larger of -t and "
                                   "-tb is used)", default_text="same as --threads")
    cpu_mask: str = flag("-C", "--cpu-mask", default="", metavar="M",
                         help="CPU affinity mask, arbitrarily long hex (bit i: CPU i); complements --cpu-range",
                         check=lambda v: not v or _cpu_set(v, "") is not None, must="be a hexadecimal CPU mask")
    cpu_range: str = flag("-Cr", "--cpu-range", default="", metavar="lo-hi",
                          help="range of CPUs for affinity; complements --cpu-mask",
                          check=lambda v: not v or _cpu_set("", v) is not None, must="be a range of CPUs, lo-hi")
    cpu_strict: int = flag("--cpu-strict", default=0, choices=(0, 1), metavar="<0|1>",
                           help="strict CPU placement: each compute thread pinned to its own CPU of the mask")
    prio: int = flag("--prio", default=0, metavar="N",
                     help="process priority: low(-1), normal(0), medium(1), high(2), realtime(3) (the nice value "
                          "llama.cpp sets: 5, 0, -5, -10, -20)",
                     check=lambda v: -1 <= v <= 3, must="be between -1 and 3")
    poll: int = flag("--poll", default=50, metavar="<0...100>",
                     help="how long idle compute threads poll for work before they sleep (0: sleep at once; "
                          "50: about a millisecond)",
                     check=lambda v: 0 <= v <= 100, must="be between 0 and 100")
    cpu_mask_batch: str = flag("-Cb", "--cpu-mask-batch", default="", metavar="M",
                               help="CPU affinity mask for batches", default_text="same as --cpu-mask",
                               check=lambda v: not v or _cpu_set(v, "") is not None, must="be a hexadecimal CPU mask",
                               noeffect="one compute pool serves generation and batches: --cpu-mask applies")
    cpu_range_batch: str = flag("-Crb", "--cpu-range-batch", default="", metavar="lo-hi",
                                help="range of CPUs for batches", default_text="same as --cpu-range",
                                check=lambda v: not v or _cpu_set("", v) is not None, must="be a range of CPUs, lo-hi",
                                noeffect="one compute pool serves generation and batches: --cpu-range applies")
    cpu_strict_batch: int = flag("--cpu-strict-batch", default=-1, metavar="<0|1>",
                                 help="strict CPU placement for batches", default_text="same as --cpu-strict",
                                 noeffect="one compute pool serves generation and batches: --cpu-strict applies")
    prio_batch: int = flag("--prio-batch", default=0, metavar="N", help="priority for batches",
                           noeffect="one compute pool serves generation and batches: --prio applies")
    poll_batch: int = flag("--poll-batch", default=-1, metavar="<0|1>", help="polling for batches",
                           default_text="same as --poll",
                           noeffect="one compute pool serves generation and batches: --poll applies")
    batch_size: int = flag("-b", "--batch-size", default=2048, env="LLAMA_ARG_BATCH", help="tokens per engine step")
    ubatch_size: int = flag("-ub", "--ubatch-size", default=512, env="LLAMA_ARG_UBATCH",
                            help="tokens per forward pass")
    n_predict: int = flag("-n", "--predict", "--n-predict", default=-1, env="LLAMA_ARG_N_PREDICT",
                          help="cap on tokens per request (-1: none)")
    keep: int = flag("--keep", default=0, help="prompt tokens kept on a context shift (-1: all)",
                     check=lambda v: v >= -1, must="be -1 (all) or more")
    rope_scaling: str = flag("--rope-scaling", default="", env="LLAMA_ARG_ROPE_SCALING_TYPE",
                             metavar="{none,linear,yarn}", choices=("none", "linear", "yarn"),
                             help="RoPE frequency scaling method", default_text="the model's, else linear")
    rope_scale: float = flag("--rope-scale", default=0.0, env="LLAMA_ARG_ROPE_SCALE",
                             help="RoPE context scaling factor: expands the context by a factor of N",
                             default_text="the model's", check=lambda v: v >= 0, must="be positive")
    rope_freq_base: float = flag("--rope-freq-base", default=0.0, env="LLAMA_ARG_ROPE_FREQ_BASE",
                                 help="RoPE base frequency, used by NTK-aware scaling", default_text="the model's",
                                 check=lambda v: v >= 0, must="be positive")
    rope_freq_scale: float = flag("--rope-freq-scale", default=0.0, env="LLAMA_ARG_ROPE_FREQ_SCALE",
                                  help="RoPE frequency scaling factor: expands the context by a factor of 1/N",
                                  default_text="the model's", check=lambda v: v >= 0, must="be positive")
    yarn_orig_ctx: int = flag("--yarn-orig-ctx", default=0, env="LLAMA_ARG_YARN_ORIG_CTX",
                              help="YaRN: original context size of the model (0: the model's training context)",
                              check=lambda v: v >= 0, must="be 0 or more")
    yarn_ext_factor: float = flag("--yarn-ext-factor", default=-1.0, env="LLAMA_ARG_YARN_EXT_FACTOR",
                                  help="YaRN: extrapolation mix factor (0.0: full interpolation; -1: 1.0 with "
                                       "--rope-scaling yarn, else 0.0)")
    yarn_attn_factor: float = flag("--yarn-attn-factor", default=-1.0, env="LLAMA_ARG_YARN_ATTN_FACTOR",
                                   help="YaRN: scale sqrt(t) or attention magnitude (-1: the model's)")
    yarn_beta_slow: float = flag("--yarn-beta-slow", default=-1.0, env="LLAMA_ARG_YARN_BETA_SLOW",
                                 help="YaRN: high correction dim or alpha (-1: the model's, else 1.0)")
    yarn_beta_fast: float = flag("--yarn-beta-fast", default=-1.0, env="LLAMA_ARG_YARN_BETA_FAST",
                                 help="YaRN: low correction dim or beta (-1: the model's, else 32.0)")
    override_kv: tuple[str, ...] = flag("--override-kv", default=(), repeat=True, metavar="KEY=TYPE:VALUE,...",
                                        help="override model metadata by key; comma-separated or repeated; types: "
                                             "int, float, bool, str (e.g. tokenizer.ggml.add_bos_token=bool:false)",
                                        check=lambda v: _kv_overrides(v) is not None,
                                        must="be KEY=TYPE:VALUE with TYPE int, float, bool or str")
    spm_infill: bool = flag("--spm-infill", default=False,
                            help="/infill prompts in suffix/prefix/middle order (as some models were trained)")
    max_queue: int = flag("--max-queue", default=128, env="LLAMA_ARG_MAX_QUEUE",
                          help="requests that may wait for a slot; more get 503 at once (-1: no bound, as "
                               "llama-server)",
                          check=lambda v: v >= -1, must="be -1 (no bound) or more")
    shutdown_grace: float = flag("--shutdown-grace", default=30.0, env="LLAMA_ARG_SHUTDOWN_GRACE",
                                 help="seconds running requests get to finish after SIGTERM/SIGINT",
                                 check=lambda v: v >= 0, must="be 0 or more seconds")  # NaN fails too
    seed: int = flag("-s", "--seed", default=-1, help="default sampling seed (-1: random)", sampling="seed",
                     metavar="SEED")
    samplers: str = flag("--samplers", default="", metavar="SAMPLERS",
                         help="default samplers, in order, separated by ';'",
                         default_text="penalties;dry;top_n_sigma;top_k;typ_p;top_p;min_p;xtc;temperature")
    sampler_seq: str = flag("--sampler-seq", "--sampling-seq", default="", metavar="SEQUENCE",
                            help="default samplers as one letter each (e:penalties d:dry s:top_n_sigma k:top_k "
                                 "y:typ_p p:top_p m:min_p x:xtc t:temperature)", default_text="edskypmxt")
    temp: float = flag("--temp", "--temperature", default=0.8, env="LLAMA_ARG_TEMPERATURE",
                       help="default temperature", sampling="temperature")
    top_k: int = flag("--top-k", default=40, env="LLAMA_ARG_TOP_K", help="default top-k (0: disabled)",
                      sampling="top_k")
    top_p: float = flag("--top-p", default=0.95, env="LLAMA_ARG_TOP_P", help="default top-p (1.0: disabled)",
                        sampling="top_p")
    min_p: float = flag("--min-p", default=0.05, env="LLAMA_ARG_MIN_P", help="default min-p (0.0: disabled)",
                        sampling="min_p")
    top_nsigma: float = flag("--top-nsigma", "--top-n-sigma", default=-1.0,
                             help="default top-n-sigma (-1.0: disabled)", sampling="top_n_sigma")
    xtc_probability: float = flag("--xtc-probability", default=0.0, help="default XTC probability (0.0: disabled)",
                                  sampling="xtc_probability")
    xtc_threshold: float = flag("--xtc-threshold", default=0.1, help="default XTC threshold (1.0: disabled)",
                                sampling="xtc_threshold")
    typical: float = flag("--typical", "--typical-p", default=1.0,
                          help="default locally typical sampling p (1.0: disabled)", sampling="typical_p")
    repeat_penalty: float = flag("--repeat-penalty", default=1.0, env="LLAMA_ARG_REPEAT_PENALTY",
                                 help="default repeat penalty (1.0: disabled)", sampling="repeat_penalty")
    repeat_last_n: int = flag("--repeat-last-n", default=64, help="default penalty window (0: disabled, -1: context)",
                              sampling="repeat_last_n", check=lambda v: v >= -1, must="be -1 or more")
    presence_penalty: float = flag("--presence-penalty", default=0.0, env="LLAMA_ARG_PRESENCE_PENALTY",
                                   help="default presence penalty", sampling="presence_penalty")
    frequency_penalty: float = flag("--frequency-penalty", default=0.0, env="LLAMA_ARG_FREQUENCY_PENALTY",
                                    help="default frequency penalty", sampling="frequency_penalty")
    dry_multiplier: float = flag("--dry-multiplier", default=0.0, help="default DRY multiplier (0.0: disabled)",
                                 sampling="dry_multiplier")
    dry_base: float = flag("--dry-base", default=1.75, help="default DRY base (values below 1 are ignored)")
    dry_allowed_length: int = flag("--dry-allowed-length", default=2, help="default DRY allowed length",
                                   sampling="dry_allowed_length", check=lambda v: v >= 0, must="be 0 or more")
    dry_penalty_last_n: int = flag("--dry-penalty-last-n", default=64,
                                   help="default DRY window (0: disabled, -1: context)",
                                   sampling="dry_penalty_last_n", check=lambda v: v >= -1, must="be -1 or more")
    dry_sequence_breaker: tuple[str, ...] = flag("--dry-sequence-breaker", default=(), repeat=True,
                                                 metavar="STRING",
                                                 help="a DRY sequence breaker, replacing the defaults; repeat for "
                                                      "more; 'none' for none",
                                                 default_text="'\\n', ':', '\"', '*'")
    adaptive_target: float = flag("--adaptive-target", default=-1.0, sampling="adaptive_target",
                                  help="default adaptive-p target: select tokens near this probability, 0.0 to 1.0 "
                                       "(negative: disabled); the sampler runs when --samplers names adaptive_p")
    adaptive_decay: float = flag("--adaptive-decay", default=0.9, sampling="adaptive_decay",
                                 help="default adaptive-p decay of the target adaptation, 0.0 to 0.99 (lower: more "
                                      "reactive)", check=lambda v: 0.0 <= v <= 0.99, must="be between 0.0 and 0.99")
    dynatemp_range: float = flag("--dynatemp-range", default=0.0, help="default dynamic temperature range",
                                 sampling="dynatemp_range")
    dynatemp_exp: float = flag("--dynatemp-exp", default=1.0, help="default dynamic temperature exponent",
                               sampling="dynatemp_exponent")
    mirostat: int = flag("--mirostat", default=0, choices=(0, 1, 2),
                         help="default Mirostat (0: off, 1: Mirostat, 2: Mirostat 2.0; replaces top-k, top-p, "
                              "typical)", sampling="mirostat")
    mirostat_lr: float = flag("--mirostat-lr", default=0.1, help="default Mirostat learning rate, eta",
                              sampling="mirostat_eta")
    mirostat_ent: float = flag("--mirostat-ent", default=5.0, help="default Mirostat target entropy, tau",
                               sampling="mirostat_tau")
    logit_bias: tuple[str, ...] = flag("-l", "--logit-bias", default=(), repeat=True, metavar="TOKEN_ID(+/-)BIAS",
                                       help="default bias of a token's logit, e.g. 15043+1 or 15043-1; repeat for "
                                            "more", check=lambda v: all(_logit_bias(x) for x in v),
                                       must="be TOKEN_ID+BIAS or TOKEN_ID-BIAS")
    cache_reuse: int = flag("--cache-reuse", default=0, env="LLAMA_ARG_CACHE_REUSE",
                            help="min chunk to reuse by KV shifting")
    cache_type_k: str = flag("-ctk", "--cache-type-k", default="f16", env="LLAMA_ARG_CACHE_TYPE_K", metavar="TYPE",
                             choices=CACHE_TYPES, help="K cache type")
    cache_type_v: str = flag("-ctv", "--cache-type-v", default="f16", env="LLAMA_ARG_CACHE_TYPE_V", metavar="TYPE",
                             choices=CACHE_TYPES, help="V cache type")
    kv_unified_per_slot: int = flag("--kv-unified-per-slot", default=0, env="LLAMA_ARG_KV_UNIFIED_PER_SLOT",
                                    help="context limit per slot; without -c the shared KV cache holds "
                                         "--parallel times N cells", default_text="unset",
                                    check=lambda v: v >= 0, must="be 0 (unset) or more")
    slot_prompt_similarity: float = flag("-sps", "--slot-prompt-similarity", default=0.10, metavar="SIMILARITY",
                                         help="how much of a request's prompt a slot's cache must share for the "
                                              "request to go there rather than to the least recently used slot "
                                              "(0.0: always the least recently used)",
                                         check=lambda v: 0.0 <= v <= 1.0, must="be between 0.0 and 1.0")
    reverse_prompt: tuple[str, ...] = flag("-r", "--reverse-prompt", default=(), repeat=True, metavar="PROMPT",
                                           help="stop string of requests that give none; repeat for more")
    api_key: str = flag("--api-key", default="", env="LLAMA_API_KEY", help="API keys, comma-separated",
                        metavar="KEY")
    api_key_file: str = flag("--api-key-file", default="", env="LLAMA_ARG_API_KEY_FILE", metavar="FNAME",
                             help="file with one API key per line (lines starting with # are comments)")
    ssl_key_file: str = flag("--ssl-key-file", default="", env="LLAMA_ARG_SSL_KEY_FILE", metavar="FNAME",
                             help="PEM private key (HTTPS)")
    ssl_cert_file: str = flag("--ssl-cert-file", default="", env="LLAMA_ARG_SSL_CERT_FILE", metavar="FNAME",
                              help="PEM certificate (HTTPS)")
    timeout: int = flag("-to", "--timeout", default=3600, env="LLAMA_ARG_TIMEOUT",
                        help="read/write timeout, seconds")
    sse_ping_interval: int = flag("--sse-ping-interval", default=30, env="LLAMA_ARG_SSE_PING_INTERVAL",
                                  help="seconds between SSE comment pings while a stream is silent (-1: none; a "
                                       "request's sse_ping_interval overrides it)",
                                  check=lambda v: v == -1 or v > 0, must="be -1 (no pings) or a positive number")
    threads_http: int = flag("--threads-http", default=-1, env="LLAMA_ARG_THREADS_HTTP",
                             help="HTTP handlers: requests are served on greenlets; N > 0 bounds them at N + 1024, "
                                  "as llama-server's thread pool (-1: no bound)")
    cors_origins: str = flag("--cors-origins", default="", env="LLAMA_ARG_CORS_ORIGINS", metavar="ORIGINS",
                             help="origins allowed by CORS, comma-separated; 'localhost': an Origin header is "
                                  "reflected only when it is on localhost; '*': any Origin is reflected",
                             default_text="*, or localhost when tools or MCP servers are enabled")
    cors_methods: str = flag("--cors-methods", default="GET, POST, DELETE, OPTIONS", env="LLAMA_ARG_CORS_METHODS",
                             metavar="METHODS", help="methods allowed by CORS, comma-separated")
    cors_headers: str = flag("--cors-headers", default="*", env="LLAMA_ARG_CORS_HEADERS", metavar="HEADERS",
                             help="headers allowed by CORS, comma-separated")
    api_prefix: str = flag("--api-prefix", default="", env="LLAMA_ARG_API_PREFIX", metavar="PREFIX",
                           help="path prefix the server serves from, without the trailing slash",
                           check=lambda v: v == "" or (v.startswith("/") and not v.endswith("/")),
                           must="start with / and not end with /")
    ui_config: str = flag("--ui-config", "--webui-config", default="", env="LLAMA_ARG_UI_CONFIG", metavar="JSON",
                          help="JSON object of default web UI settings (reported by /props as ui_settings)")
    ui_config_file: str = flag("--ui-config-file", "--webui-config-file", default="", env="LLAMA_ARG_UI_CONFIG_FILE",
                               metavar="PATH", help="file with the JSON of default web UI settings")
    chat_template: str = flag("--chat-template", default="", env="LLAMA_ARG_CHAT_TEMPLATE", metavar="JINJA_TEMPLATE",
                              help="a Jinja chat template")
    chat_template_file: str = flag("--chat-template-file", default="", env="LLAMA_ARG_CHAT_TEMPLATE_FILE",
                                   metavar="JINJA_TEMPLATE_FILE", help="file with a Jinja chat template")
    chat_template_kwargs: str = flag("--chat-template-kwargs", default="", env="LLAMA_ARG_CHAT_TEMPLATE_KWARGS",
                                     help="extra variables for the Jinja chat template, a JSON object "
                                          "(a request's chat_template_kwargs override them)")
    reasoning_format: str = flag("--reasoning-format", default="auto", env="LLAMA_ARG_THINK", metavar="FORMAT",
                                 help="where thoughts go: none (left in content), deepseek (reasoning_content), "
                                      "deepseek-legacy (both), auto",
                                 check=lambda v: v in REASONING_FORMATS,
                                 must="be one of " + ", ".join(REASONING_FORMATS))
    reasoning_budget: int = flag("--reasoning-budget", default=-1, env="LLAMA_ARG_THINK_BUDGET",
                                 help="token budget for thinking: -1 unrestricted, 0 no thinking, N>0: after N "
                                      "tokens of reasoning its end is forced",
                                 check=lambda v: v >= -1, must="be -1 (unrestricted), 0 or a number of tokens")
    reasoning_budget_message: str = flag("--reasoning-budget-message", default="",
                                         env="LLAMA_ARG_THINK_BUDGET_MESSAGE", metavar="MESSAGE",
                                         help="text forced before the end of thinking when the budget runs out")
    reasoning: str = flag("-rea", "--reasoning", default="auto", env="LLAMA_ARG_REASONING", metavar="[on|off|auto]",
                          help="thinking in chats: on, off, or auto (on where the template reacts to it)",
                          check=lambda v: v in ("on", "off", "auto"), must="be on, off or auto")
    reasoning_effort: str = flag("--reasoning-effort", default="default", env="LLAMA_ARG_REASONING_EFFORT",
                                 metavar="LEVEL",
                                 help="reasoning effort given to the chat template ('default': the template's own)")
    pooling: str = flag("--pooling", default="", env="LLAMA_ARG_POOLING", metavar="{none,mean,cls,last,rank}",
                        help="pooling of embeddings: none, mean, cls, last or rank (default: the model's)",
                        check=lambda v: v in ("", "none", "mean", "cls", "last", "rank"),
                        must="be one of none, mean, cls, last, rank")
    embd_normalize: int = flag("--embd-normalize", default=2,
                               help="normalization of pooled embeddings: -1 none, 0 max absolute (int16), "
                                    "1 taxicab, 2 euclidean, >2 p-norm",
                               check=lambda v: v >= -1, must="be -1 or more")
    path: str = flag("--path", default="", env="LLAMA_ARG_STATIC_PATH", metavar="PATH",
                     help="directory of static files to serve")
    grammar: str = flag("--grammar", default="", metavar="GRAMMAR",
                        help="default GBNF grammar for requests that bring no constraint")
    grammar_file: str = flag("--grammar-file", default="", metavar="FNAME", help="file with the default GBNF grammar")
    json_schema: str = flag("-j", "--json-schema", default="", metavar="SCHEMA",
                            help="default JSON schema (e.g. {} for any JSON object)")
    json_schema_file: str = flag("-jf", "--json-schema-file", default="", metavar="FILE",
                                 help="file with the default JSON schema")
    load_mode: str = flag("-lm", "--load-mode", default="auto", env="LLAMA_ARG_LOAD_MODE", metavar="MODE",
                          choices=("auto", "none", "mmap", "mlock", "mmap+mlock", "dio"),
                          help="model loading: the file is always memory-mapped; mlock and mmap+mlock also lock "
                               "it in RAM", noeffect="the model is always memory-mapped (none and dio do not apply)",
                          quiet=("auto", "mmap", "mlock", "mmap+mlock"))
    log_file: str = flag("--log-file", default="", env="LLAMA_ARG_LOG_FILE", metavar="FNAME",
                         help="also write the log to this file")
    log_colors: str = flag("--log-colors", default="auto", env="LLAMA_ARG_LOG_COLORS", metavar="[on|off|auto]",
                           choices=("on", "off", "auto", "true", "false", "1", "0", "-1", "enabled", "disabled"),
                           help="colored log levels ('auto': when the log goes to a terminal)")
    verbosity: int = flag("-lv", "--verbosity", "--log-verbosity", default=3, env="LLAMA_ARG_LOG_VERBOSITY",
                          help="log threshold: 0 generic output, 1 errors, 2 warnings, 3 info, 4 trace, 5 debug; "
                               "above 9 answers carry a __verbose field")
    # accepted, no effect here (each says why, in a warning when given)
    flash_attn: str = flag("-fa", "--flash-attn", default="auto", env="LLAMA_ARG_FLASH_ATTN", metavar="[on|off|auto]",
                           choices=("on", "off", "auto", "true", "false", "1", "0", "-1", "enabled", "disabled"),
                           help="Flash Attention",
                           noeffect="attention always runs as one pass with a running softmax, as ggml's CPU "
                                    "flash attention")
    defrag_thold: float = flag("-dt", "--defrag-thold", default=-1.0, env="LLAMA_ARG_DEFRAG_THOLD",
                               help="KV cache defragmentation threshold (deprecated in llama-server)",
                               noeffect="deprecated; the KV cache is compacted when holes dominate it")
    rpc: str = flag("--rpc", default="", env="LLAMA_ARG_RPC", metavar="SERVERS",
                    help="RPC servers, comma-separated", noeffect="no RPC backends: everything runs in this process")
    lazy_mode: str = flag("-lzm", "--lazy-mode", default="auto", env="LLAMA_ARG_LAZY_MODE", metavar="MODE",
                          choices=("on", "auto", "off"), help="on-demand reading of large tensors",
                          noeffect="tensors are memory-mapped and read on demand anyway", quiet=("auto", "on"))
    numa: str = flag("--numa", default="", env="LLAMA_ARG_NUMA", metavar="TYPE",
                     choices=("distribute", "isolate", "numactl"),
                     help="NUMA placement: distribute (compute threads spread evenly over every node), "
                          "isolate (the CPUs of the node the server started on), numactl (the CPU set "
                          "numactl gave the process)")
    device: str = flag("-dev", "--device", default="", env="LLAMA_ARG_DEVICE", metavar="<dev1,dev2,..>",
                       help="devices to offload to", noeffect=GPU, quiet=("none",))
    override_tensor: str = flag("-ot", "--override-tensor", default="", env="LLAMA_ARG_OVERRIDE_TENSOR",
                                metavar="<tensor name pattern>=<buffer type>,...", help="tensor buffer types",
                                noeffect=GPU)
    n_cpu_moe: int = flag("-ncmoe", "--n-cpu-moe", default=0, env="LLAMA_ARG_N_CPU_MOE",
                          help="MoE weights of the first N layers kept in CPU memory",
                          noeffect="every weight is in CPU memory", quiet=(ANY,))
    n_cpu_ffn: int = flag("-ncffn", "--n-cpu-ffn", default=0, env="LLAMA_ARG_N_CPU_FFN",
                          help="dense FFN weights of the first N layers kept in CPU memory",
                          noeffect="every weight is in CPU memory", quiet=(ANY,))
    n_gpu_layers: str = flag("-ngl", "--gpu-layers", "--n-gpu-layers", default="auto", env="LLAMA_ARG_N_GPU_LAYERS",
                             metavar="N", help="layers stored in VRAM (a number, auto or all)", noeffect=GPU,
                             quiet=("0", "auto"))
    split_mode: str = flag("-sm", "--split-mode", default="layer", env="LLAMA_ARG_SPLIT_MODE",
                           metavar="{none,layer,row,tensor}", choices=("none", "layer", "row", "tensor"),
                           help="how to split the model across GPUs", noeffect=GPU, quiet=("none",))
    tensor_split: str = flag("-ts", "--tensor-split", default="", env="LLAMA_ARG_TENSOR_SPLIT", metavar="N0,N1,N2,...",
                             help="fraction of the model on each GPU", noeffect=GPU)
    main_gpu: int = flag("-mg", "--main-gpu", default=0, env="LLAMA_ARG_MAIN_GPU", metavar="INDEX",
                         help="the GPU for the model", noeffect=GPU)
    fit: str = flag("-fit", "--fit", default="on", env="LLAMA_ARG_FIT", metavar="[on|off]",
                    choices=("on", "off", "true", "false", "1", "0", "enabled", "disabled"),
                    help="adjust unset arguments to fit in device memory",
                    noeffect="nothing is fitted to device memory: -c and -np are what they say",
                    quiet=("off", "false", "0", "disabled"))
    fit_target: str = flag("-fitt", "--fit-target", default="1024", env="LLAMA_ARG_FIT_TARGET",
                           metavar="MiB0,MiB1,MiB2,...", help="memory margin per device for --fit",
                           noeffect="nothing is fitted to device memory")
    fit_ctx: int = flag("-fitc", "--fit-ctx", default=4096, env="LLAMA_ARG_FIT_CTX",
                        help="smallest context --fit may choose", noeffect="nothing is fitted to device memory")
    control_vector: tuple[str, ...] = flag("--control-vector", default=(), repeat=True, metavar="FNAME",
                                           help="a control vector (GGUF of direction.N tensors) added to the "
                                                "layers' outputs; comma-separated or repeated")
    control_vector_scaled: tuple[str, ...] = flag("--control-vector-scaled", default=(), repeat=True,
                                                  metavar="FNAME:SCALE,...",
                                                  help="a control vector with its scale; comma-separated or repeated",
                                                  check=lambda v: all(":" in p for x in v for p in x.split(",")
                                                                      if p.strip()),
                                                  must="be FNAME:SCALE,...")
    control_vector_layer_range: tuple[str, ...] = flag("--control-vector-layer-range", default=(), nargs=2,
                                                       metavar="START END",
                                                       help="the layers control vectors apply to, both included",
                                                       check=lambda v: not v or all(x.lstrip("-").isdigit()
                                                                                    for x in v),
                                                       must="be two layer numbers")
    docker_repo: str = flag("-dr", "--docker-repo", default="", env="LLAMA_ARG_DOCKER_REPO",
                            metavar="[<repo>/]<model>[:quant]",
                            help="Docker Hub model repository (repo defaults to ai/, quant to :latest), e.g. "
                                 "gemma3")
    grp_attn_n: int = flag("-gan", "--grp-attn-n", default=1, env="LLAMA_ARG_GRP_ATTN_N",
                           help="group-attention factor (older llama.cpp; self-extend)",
                           noeffect="group attention (self-extend) is not implemented", quiet=(1,))
    grp_attn_w: int = flag("-gaw", "--grp-attn-w", default=512, env="LLAMA_ARG_GRP_ATTN_W",
                           help="group-attention width (older llama.cpp)",
                           noeffect="group attention (self-extend) is not implemented")
    cache_type_k_draft: str = flag("--spec-draft-type-k", "-ctkd", "--cache-type-k-draft", default="f16",
                                   env="LLAMA_ARG_SPEC_DRAFT_CACHE_TYPE_K", metavar="TYPE",
                                   help="K cache type of the draft model", noeffect=SPEC)
    cache_type_v_draft: str = flag("--spec-draft-type-v", "-ctvd", "--cache-type-v-draft", default="f16",
                                   env="LLAMA_ARG_SPEC_DRAFT_CACHE_TYPE_V", metavar="TYPE",
                                   help="V cache type of the draft model", noeffect=SPEC)
    lookup_cache_static: str = flag("-lcs", "--lookup-cache-static", default="", metavar="FNAME",
                                    help="static lookup cache for lookup decoding", noeffect=SPEC)
    lookup_cache_dynamic: str = flag("-lcd", "--lookup-cache-dynamic", default="", metavar="FNAME",
                                     help="dynamic lookup cache for lookup decoding", noeffect=SPEC)
    ctx_checkpoints: int = flag("-ctxcp", "--ctx-checkpoints", "--swa-checkpoints", default=32,
                                env="LLAMA_ARG_CTX_CHECKPOINTS", help="context checkpoints per slot",
                                noeffect="the KV cache keeps every position of every layer: no checkpoints are "
                                         "needed", quiet=(ANY,))
    checkpoint_min_step: int = flag("-cms", "--checkpoint-min-step", default=8192,
                                    env="LLAMA_ARG_CHECKPOINT_MIN_SPACING_NT",
                                    help="minimum spacing of context checkpoints, tokens",
                                    noeffect="the KV cache keeps every position of every layer: no checkpoints are "
                                             "needed", quiet=(ANY,))
    cache_ram: int = flag("-cram", "--cache-ram", default=8192, env="LLAMA_ARG_CACHE_RAM",
                          help="prompt cache size in host memory, MiB (-1: no limit, 0: disabled): a slot's "
                               "cache is kept there before another prompt replaces it, and loaded back for a "
                               "prompt it serves better than the slot's own", check=lambda v: v >= -1,
                          must="be -1 (no limit), 0 (none) or more")
    mmproj: str = flag("-mm", "--mmproj", default="", env="LLAMA_ARG_MMPROJ", metavar="FILE",
                       help="multimodal projector file", noeffect=MTMD)
    mmproj_url: str = flag("-mmu", "--mmproj-url", default="", env="LLAMA_ARG_MMPROJ_URL", metavar="URL",
                           help="URL of a multimodal projector file", noeffect=MTMD)
    mmproj_device: str = flag("-mmdev", "--mmproj-device", default="", env="MTMD_BACKEND_DEVICE", metavar="DEVICE",
                              help="device of the multimodal projector", noeffect=MTMD)
    image_min_tokens: int = flag("--image-min-tokens", default=0, env="LLAMA_ARG_IMAGE_MIN_TOKENS",
                                 help="minimum tokens per image", noeffect=MTMD, default_text="the model's")
    image_max_tokens: int = flag("--image-max-tokens", default=0, env="LLAMA_ARG_IMAGE_MAX_TOKENS",
                                 help="maximum tokens per image", noeffect=MTMD, default_text="the model's")
    mtmd_batch_max_tokens: int = flag("--mtmd-batch-max-tokens", default=1024, env="LLAMA_ARG_MTMD_BATCH_MAX_TOKENS",
                                      help="image tokens per batch", noeffect=MTMD)
    video_fps: float = flag("--video-fps", default=4.0, env="LLAMA_ARG_VIDEO_FPS", help="video frame rate",
                            noeffect=MTMD)
    video_timestamp_interval: int = flag("--video-timestamp-interval", default=5000,
                                         env="LLAMA_ARG_VIDEO_TIMESTAMP_INTERVAL",
                                         help="milliseconds between video text timestamps", noeffect=MTMD)
    video_ffmpeg_dir: str = flag("--video-ffmpeg-dir", default="", env="LLAMA_ARG_VIDEO_FFMPEG_DIR", metavar="DIR",
                                 help="directory of ffmpeg and ffprobe", noeffect=MTMD)
    media_path: str = flag("--media-path", default="", metavar="PATH", help="directory of local media files",
                           noeffect=MTMD)
    tools: str = flag("--tools", default="", env="LLAMA_ARG_TOOLS", metavar="TOOL1,TOOL2,...",
                      help="experimental: built-in tools for AI agents at /tools, comma-separated, or 'all' "
                           "(read_file, file_glob_search, grep_search, exec_shell_command, write_file, edit_file, "
                           "get_info); do not enable in untrusted environments; --cors-origins then defaults to "
                           "localhost", default_text="no tools")
    tools_runtime: str = flag("--tools-runtime", default="", env="LLAMA_ARG_TOOLS_RUNTIME", metavar="OPTION",
                              help="experimental: where the tools run: 'docker:<image>', 'podman:<image>' (a "
                                   "container started now, removed at exit), 'docker-container:<id>', "
                                   "'podman-container:<id>' (an existing container), 'ssh:<target>' (a remote POSIX "
                                   "host; key-based auth and a trusted host key)", default_text="the host")
    mcp_servers_config: str = flag("--mcp-servers-config", default="", env="LLAMA_ARG_MCP_SERVERS_CONFIG",
                                   metavar="PATH", help="experimental: JSON file of MCP servers (Cursor's "
                                   "mcpServers format, stdio) whose tools /tools offers as <server>_<tool>; "
                                   "--cors-origins then defaults to localhost", default_text="none")
    mcp_servers_json: str = flag("--mcp-servers-json", default="", env="LLAMA_ARG_MCP_SERVERS_JSON", metavar="JSON",
                                 help="experimental: the same MCP server definitions as inline JSON; --cors-origins "
                                      "then defaults to localhost", default_text="none")
    log_prompts_dir: str = flag("--log-prompts-dir", default="", metavar="PATH",
                                help="write every prompt to a file in this directory (debugging)")
    spec_draft_hf: str = flag("--spec-draft-hf", "-hfd", "-hfrd", "--hf-repo-draft", default="",
                              env="LLAMA_ARG_SPEC_DRAFT_HF_REPO", metavar="<user>/<model>[:quant]",
                              help="draft model repository", noeffect=SPEC)
    spec_draft_threads: int = flag("--spec-draft-threads", "-td", "--threads-draft", default=-1,
                                   help="draft model threads", noeffect=SPEC)
    spec_draft_threads_batch: int = flag("--spec-draft-threads-batch", "-tbd", "--threads-batch-draft", default=-1,
                                         help="draft model batch threads", noeffect=SPEC)
    spec_draft_cpu_mask: str = flag("--spec-draft-cpu-mask", "-Cd", "--cpu-mask-draft", default="", metavar="M",
                                    help="draft model CPU mask", noeffect=SPEC)
    spec_draft_cpu_range: str = flag("--spec-draft-cpu-range", "-Crd", "--cpu-range-draft", default="",
                                     metavar="lo-hi", help="draft model CPU range", noeffect=SPEC)
    spec_draft_cpu_strict: int = flag("--spec-draft-cpu-strict", "--cpu-strict-draft", default=0, metavar="<0|1>",
                                      help="draft model strict CPU placement", noeffect=SPEC)
    spec_draft_prio: int = flag("--spec-draft-prio", "--prio-draft", default=0, help="draft model priority",
                                noeffect=SPEC)
    spec_draft_poll: int = flag("--spec-draft-poll", "--poll-draft", default=-1, metavar="<0|1>",
                                help="draft model polling", noeffect=SPEC)
    spec_draft_cpu_mask_batch: str = flag("--spec-draft-cpu-mask-batch", "-Cbd", "--cpu-mask-batch-draft", default="",
                                          metavar="M", help="draft model batch CPU mask", noeffect=SPEC)
    spec_draft_cpu_strict_batch: int = flag("--spec-draft-cpu-strict-batch", "--cpu-strict-batch-draft", default=0,
                                            metavar="<0|1>", help="draft model batch strict placement",
                                            noeffect=SPEC)
    spec_draft_prio_batch: int = flag("--spec-draft-prio-batch", "--prio-batch-draft", default=0,
                                      help="draft model batch priority", noeffect=SPEC)
    spec_draft_poll_batch: int = flag("--spec-draft-poll-batch", "--poll-batch-draft", default=-1, metavar="<0|1>",
                                      help="draft model batch polling", noeffect=SPEC)
    spec_draft_override_tensor: str = flag("--spec-draft-override-tensor", "-otd", "--override-tensor-draft",
                                           default="", metavar="<tensor name pattern>=<buffer type>,...",
                                           help="draft model tensor buffer types", noeffect=SPEC)
    spec_draft_n_cpu_moe: int = flag("--spec-draft-n-cpu-moe", "--spec-draft-ncmoe", "-ncmoed", "--n-cpu-moe-draft",
                                     default=0, env="LLAMA_ARG_SPEC_DRAFT_N_CPU_MOE",
                                     help="draft model MoE layers in CPU memory", noeffect=SPEC)
    spec_draft_n_max: int = flag("--spec-draft-n-max", default=3, env="LLAMA_ARG_SPEC_DRAFT_N_MAX",
                                 help="tokens to draft", noeffect=SPEC)
    spec_draft_n_min: int = flag("--spec-draft-n-min", default=0, env="LLAMA_ARG_SPEC_DRAFT_N_MIN",
                                 help="minimum draft tokens", noeffect=SPEC)
    spec_synth_len: float = flag("--spec-synth-len", default=0.0, env="LLAMA_ARG_SPEC_SYNTH_LEN", metavar="L",
                                 help="synthetic acceptance length (benchmarking)", noeffect=SPEC)
    spec_synth_rates: str = flag("--spec-synth-rates", default="", env="LLAMA_ARG_SPEC_SYNTH_RATES",
                                 metavar="P0,P1,...", help="synthetic acceptance probabilities (benchmarking)",
                                 noeffect=SPEC)
    spec_draft_p_split: float = flag("--spec-draft-p-split", "--draft-p-split", default=0.1,
                                     env="LLAMA_ARG_SPEC_DRAFT_P_SPLIT", metavar="P",
                                     help="speculative decoding split probability", noeffect=SPEC)
    spec_draft_p_min: float = flag("--spec-draft-p-min", "--draft-p-min", default=0.0,
                                   env="LLAMA_ARG_SPEC_DRAFT_P_MIN", metavar="P",
                                   help="minimum speculative decoding probability", noeffect=SPEC)
    spec_draft_device: str = flag("--spec-draft-device", "-devd", "--device-draft", default="",
                                  metavar="<dev1,dev2,..>", help="draft model devices", noeffect=SPEC)
    spec_draft_ngl: str = flag("--spec-draft-ngl", "-ngld", "--gpu-layers-draft", "--n-gpu-layers-draft",
                               default="auto", env="LLAMA_ARG_N_GPU_LAYERS_DRAFT", metavar="N",
                               help="draft model layers in VRAM", noeffect=SPEC)
    spec_draft_model: str = flag("--spec-draft-model", "-md", "--model-draft", default="",
                                 env="LLAMA_ARG_SPEC_DRAFT_MODEL", metavar="FNAME",
                                 help="draft model for speculative decoding", noeffect=SPEC)
    spec_type: str = flag("--spec-type", default="none", env="LLAMA_ARG_SPEC_TYPE", metavar="TYPES",
                          help="speculative decoding types, comma-separated", noeffect=SPEC, quiet=("none",))
    spec_ngram_mod_n_min: int = flag("--spec-ngram-mod-n-min", default=48, help="ngram-mod minimum tokens",
                                     noeffect=SPEC)
    spec_ngram_mod_n_max: int = flag("--spec-ngram-mod-n-max", default=64, help="ngram-mod maximum tokens",
                                     noeffect=SPEC)
    spec_ngram_mod_n_match: int = flag("--spec-ngram-mod-n-match", default=24, help="ngram-mod lookup length",
                                       noeffect=SPEC)
    spec_ngram_simple_size_n: int = flag("--spec-ngram-simple-size-n", default=12, help="ngram-simple N",
                                         noeffect=SPEC)
    spec_ngram_simple_size_m: int = flag("--spec-ngram-simple-size-m", default=48, help="ngram-simple M",
                                         noeffect=SPEC)
    spec_ngram_simple_min_hits: int = flag("--spec-ngram-simple-min-hits", default=1, help="ngram-simple hits",
                                           noeffect=SPEC)
    spec_ngram_map_k_size_n: int = flag("--spec-ngram-map-k-size-n", default=12, help="ngram-map-k N",
                                        noeffect=SPEC)
    spec_ngram_map_k_size_m: int = flag("--spec-ngram-map-k-size-m", default=48, help="ngram-map-k M",
                                        noeffect=SPEC)
    spec_ngram_map_k_min_hits: int = flag("--spec-ngram-map-k-min-hits", default=1, help="ngram-map-k hits",
                                          noeffect=SPEC)
    spec_ngram_map_k4v_size_n: int = flag("--spec-ngram-map-k4v-size-n", default=12, help="ngram-map-k4v N",
                                          noeffect=SPEC)
    spec_ngram_map_k4v_size_m: int = flag("--spec-ngram-map-k4v-size-m", default=48, help="ngram-map-k4v M",
                                          noeffect=SPEC)
    spec_ngram_map_k4v_min_hits: int = flag("--spec-ngram-map-k4v-min-hits", default=1, help="ngram-map-k4v hits",
                                            noeffect=SPEC)
    draft_max: int = flag("--draft", "--draft-n", "--draft-max", default=16, env="LLAMA_ARG_DRAFT_MAX",
                          help="removed from llama-server (use --spec-draft-n-max)", noeffect=SPEC)
    draft_min: int = flag("--draft-min", "--draft-n-min", default=0, env="LLAMA_ARG_DRAFT_MIN",
                          help="removed from llama-server (use --spec-draft-n-min)", noeffect=SPEC)
    spec_ngram_size_n: int = flag("--spec-ngram-size-n", default=12, help="removed from llama-server",
                                  noeffect=SPEC)
    spec_ngram_size_m: int = flag("--spec-ngram-size-m", default=48, help="removed from llama-server",
                                  noeffect=SPEC)
    spec_ngram_min_hits: int = flag("--spec-ngram-min-hits", default=1, help="removed from llama-server",
                                    noeffect=SPEC)
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
    webui: bool = flag("--ui", "--webui", off=("--no-ui", "--no-webui"), default=True, env="LLAMA_ARG_UI",
                       help="serve the web UI")
    log_disable: bool = flag("--log-disable", default=False, help="no logging")
    verbose: bool = flag("-v", "--verbose", "--log-verbose", default=False,
                         help="log everything (verbosity infinite); answers carry a __verbose field")
    swa_full: bool = flag("--swa-full", default=False, env="LLAMA_ARG_SWA_FULL",
                          help="full-size cache for sliding-window layers (pyllama's cache always is)")
    ignore_eos: bool = flag("--ignore-eos", default=False, sampling="ignore_eos",
                            help="ignore the end of generation and go on (bans the end-of-generation tokens)")
    escape: bool = flag("-e", "--escape", off=("--no-escape",), default=True,
                        help="process escapes (\\n, \\r, \\t, \\', \\\", \\\\) in -r and --dry-sequence-breaker")
    check_tensors: bool = flag("--check-tensors", default=False,
                               help="check the model's tensor data for NaN and infinite values at load")
    warmup: bool = flag("--warmup", off=("--no-warmup",), default=True,
                        help="run the model once on an empty prompt at load")
    special: bool = flag("-sp", "--special", default=False, help="special tokens shown in the output text")
    cache_prompt: bool = flag("--cache-prompt", off=("--no-cache-prompt",), default=True, env="LLAMA_ARG_CACHE_PROMPT",
                              help="reuse a slot's cached prompt (a request's cache_prompt overrides it)")
    kv_unified: bool | None = flag("-kvu", "--kv-unified", off=("-no-kvu", "--no-kv-unified"), default=None,
                                   env="LLAMA_ARG_KV_UNIFIED",
                                   help="one KV cache that every slot may fill (each slot's context is the whole "
                                        "cache); off: the cache is split evenly between slots",
                                   default_text="enabled if --parallel is auto")
    skip_chat_parsing: bool = flag("--skip-chat-parsing", off=("--no-skip-chat-parsing",), default=False,
                                   env="LLAMA_ARG_SKIP_CHAT_PARSING",
                                   help="chat output is all content: no reasoning or tool calls are parsed out")
    reuse_port: bool = flag("--reuse-port", default=False, env="LLAMA_ARG_REUSE_PORT",
                            help="let several sockets bind the same port (SO_REUSEPORT)")
    cors_credentials: bool = flag("--cors-credentials", off=("--no-cors-credentials",), default=True,
                                  env="LLAMA_ARG_CORS_CREDENTIALS",
                                  help="CORS allows credentials (with --cors-origins *, the Origin is reflected)")
    log_jsonl: bool = flag("--log-jsonl", off=("--no-log-jsonl",), default=False, env="LLAMA_ARG_LOG_JSONL",
                           help="log as JSON lines on stdout (no colors)")
    log_prefix: bool = flag("--log-prefix", off=("--no-log-prefix",), default=False, env="LLAMA_ARG_LOG_PREFIX",
                            help="a level letter before each log line (I, W, E, D)")
    log_timestamps: bool = flag("--log-timestamps", off=("--no-log-timestamps",), default=False,
                                env="LLAMA_ARG_LOG_TIMESTAMPS",
                                help="the time since start before each log line (with --log-prefix)")
    mlock: bool = flag("--mlock", default=False, env="LLAMA_ARG_MLOCK",
                       help="lock the model in RAM (older llama.cpp; as --load-mode mlock)")
    mmap: bool = flag("--mmap", off=("--no-mmap",), default=True, env="LLAMA_ARG_MMAP",
                      help="memory-map the model (older llama.cpp)",
                      noeffect="the model is always memory-mapped", quiet=(True,))
    perf: bool = flag("--perf", off=("--no-perf",), default=False, env="LLAMA_ARG_PERF",
                      help="internal libllama performance timings",
                      noeffect="no libllama timings to print (every answer carries its timings)", quiet=(False,))
    kv_offload: bool = flag("-kvo", "--kv-offload", off=("-nkvo", "--no-kv-offload"), default=True,
                            env="LLAMA_ARG_KV_OFFLOAD", help="KV cache offloading", noeffect=GPU)
    repack: bool = flag("--repack", off=("-nr", "--no-repack"), default=True, env="LLAMA_ARG_REPACK",
                        help="weight repacking", noeffect="Q4_0 and Q4_1 weights are always repacked at load")
    no_host: bool = flag("--no-host", default=False, env="LLAMA_ARG_NO_HOST", help="bypass the host buffer",
                         noeffect=GPU)
    cpu_moe: bool = flag("-cmoe", "--cpu-moe", default=False, env="LLAMA_ARG_CPU_MOE",
                         help="keep all MoE weights in CPU memory", noeffect="every weight is in CPU memory",
                         quiet=(ANY,))
    op_offload: bool = flag("--op-offload", off=("--no-op-offload",), default=True,
                            help="offload host tensor operations to the device", noeffect=GPU)
    backend_sampling: bool = flag("-bs", "--backend-sampling", default=False, env="LLAMA_ARG_BACKEND_SAMPLING",
                                  help="sampling on the backend", noeffect="sampling runs in native code on the CPU")
    mmproj_auto: bool = flag("--mmproj-auto", off=("--no-mmproj", "--no-mmproj-auto"), default=True,
                             env="LLAMA_ARG_MMPROJ_AUTO", help="use a multimodal projector when there is one",
                             noeffect=MTMD, quiet=(False,))
    mmproj_offload: bool = flag("--mmproj-offload", off=("--no-mmproj-offload",), default=True,
                                env="LLAMA_ARG_MMPROJ_OFFLOAD", help="GPU offloading of the projector",
                                noeffect=MTMD)
    cache_idle_slots: bool = flag("--cache-idle-slots", off=("--no-cache-idle-slots",), default=True,
                                  env="LLAMA_ARG_CACHE_IDLE_SLOTS",
                                  help="save idle slots to the prompt cache (with --cache-ram)")
    ui_mcp_proxy: bool = flag("--ui-mcp-proxy", "--webui-mcp-proxy", off=("--no-ui-mcp-proxy", "--no-webui-mcp-proxy"),
                              default=False, env="LLAMA_ARG_UI_MCP_PROXY",
                              help="experimental: the web UI's MCP CORS proxy at /cors-proxy, which forwards "
                                   "requests to any http(s) URL - do not enable in untrusted environments")
    agent: bool = flag("-ag", "--agent", off=("-no-ag", "--no-agent"), default=False, env="LLAMA_ARG_AGENT",
                       help="all built-in tools (--tools all) and the MCP CORS proxy (--ui-mcp-proxy); "
                            "--cors-origins then defaults to localhost")
    spec_draft_cpu_moe: bool = flag("--spec-draft-cpu-moe", "-cmoed", "--cpu-moe-draft", default=False,
                                    env="LLAMA_ARG_SPEC_DRAFT_CPU_MOE", help="draft model MoE weights in CPU memory",
                                    noeffect=SPEC)
    spec_draft_backend_sampling: bool = flag("--spec-draft-backend-sampling",
                                             off=("--no-spec-draft-backend-sampling",), default=True,
                                             env="LLAMA_ARG_SPEC_DRAFT_BACKEND_SAMPLING",
                                             help="draft sampling on the backend", noeffect=SPEC)
    spec_default: bool = flag("--spec-default", default=False, help="default speculative decoding", noeffect=SPEC)
    embd_gemma_default: bool = flag("--embd-gemma-default", default=False, help="EmbeddingGemma preset",
                                    noeffect=PRESET + "ggml-org/embeddinggemma-300M-qat-q4_0-GGUF --embedding")
    fim_qwen_1_5b_default: bool = flag("--fim-qwen-1.5b-default", default=False, help="Qwen 2.5 Coder 1.5B preset",
                                       noeffect=PRESET + "ggml-org/Qwen2.5-Coder-1.5B-Q8_0-GGUF")
    fim_qwen_3b_default: bool = flag("--fim-qwen-3b-default", default=False, help="Qwen 2.5 Coder 3B preset",
                                     noeffect=PRESET + "ggml-org/Qwen2.5-Coder-3B-Q8_0-GGUF")
    fim_qwen_7b_default: bool = flag("--fim-qwen-7b-default", default=False, help="Qwen 2.5 Coder 7B preset",
                                     noeffect=PRESET + "ggml-org/Qwen2.5-Coder-7B-Q8_0-GGUF")
    fim_qwen_7b_spec: bool = flag("--fim-qwen-7b-spec", default=False, help="Qwen 2.5 Coder 7B + draft preset",
                                  noeffect=PRESET + "ggml-org/Qwen2.5-Coder-7B-Q8_0-GGUF")
    fim_qwen_14b_spec: bool = flag("--fim-qwen-14b-spec", default=False, help="Qwen 2.5 Coder 14B + draft preset",
                                   noeffect=PRESET + "ggml-org/Qwen2.5-Coder-14B-Q8_0-GGUF")
    fim_qwen_30b_default: bool = flag("--fim-qwen-30b-default", default=False, help="Qwen 3 Coder 30B preset",
                                      noeffect=PRESET + "ggml-org/Qwen3-Coder-30B-A3B-Instruct-Q8_0-GGUF")
    gpt_oss_20b_default: bool = flag("--gpt-oss-20b-default", default=False, help="gpt-oss-20b preset",
                                     noeffect=PRESET + "ggml-org/gpt-oss-20b-GGUF")
    gpt_oss_120b_default: bool = flag("--gpt-oss-120b-default", default=False, help="gpt-oss-120b preset",
                                      noeffect=PRESET + "ggml-org/gpt-oss-120b-GGUF")
    vision_gemma_4b_default: bool = flag("--vision-gemma-4b-default", default=False, help="Gemma 3 4B preset",
                                         noeffect=PRESET + "ggml-org/gemma-3-4b-it-qat-GGUF")
    vision_gemma_12b_default: bool = flag("--vision-gemma-12b-default", default=False, help="Gemma 3 12B preset",
                                          noeffect=PRESET + "ggml-org/gemma-3-12b-it-qat-GGUF")
    # router mode and Hugging Face
    models_dir: str = flag("--models-dir", default="", env="LLAMA_ARG_MODELS_DIR", metavar="PATH",
                           help="router mode (no -m): a directory of GGUF files (or of folders of them), one model "
                                "each")
    models_preset: str = flag("--models-preset", default="", env="LLAMA_ARG_MODELS_PRESET", metavar="PATH",
                              help="router mode (no -m): an INI file of model presets ([name] sections of flags; "
                                   "[*] for all)")
    models_max: int = flag("--models-max", default=4, env="LLAMA_ARG_MODELS_MAX",
                           help="router mode: models loaded at once; loading one more unloads the least recently "
                                "used (0: no limit)", metavar="N",
                           check=lambda v: v >= 0, must="be 0 (no limit) or more")
    models_autoload: bool = flag("--models-autoload", off=("--no-models-autoload",), default=True,
                                 env="LLAMA_ARG_MODELS_AUTOLOAD",
                                 help="router mode: load a model on its first request")
    hf_repo: str = flag("-hf", "-hfr", "--hf-repo", default="", env="LLAMA_ARG_HF_REPO",
                        metavar="<user>/<model>[:quant]",
                        help="Hugging Face repository <user>/<model>[:quant] (quant: default Q4_K_M, else Q8_0, else "
                             "the first GGUF file); needs the hf extra (pip install 'pyllama-cpu[hf]')")
    hf_file: str = flag("-hff", "--hf-file", default="", env="LLAMA_ARG_HF_FILE", metavar="FILE",
                        help="the file of --hf-repo to use (overrides its quant)")
    hf_token: str = flag("-hft", "--hf-token", default="", env="HF_TOKEN", metavar="TOKEN",
                         help="Hugging Face access token",
                         default_text="HF_TOKEN, else huggingface_hub's saved login")
    model_url: str = flag("-mu", "--model-url", default="", env="LLAMA_ARG_MODEL_URL", metavar="MODEL_URL",
                          help="download the model from this URL into the model cache (resumed, kept by its ETag)")
    offline: bool = flag("--offline", default=False, env="LLAMA_ARG_OFFLINE",
                         help="use only models already in the caches: no network access")
    # slot files, LoRA, sleep
    slot_save_path: str = flag("--slot-save-path", default="", metavar="PATH",
                               help="directory of slot files (POST /slots/{id}?action=save|restore|erase)",
                               default_text="disabled",
                               check=lambda v: not v or not os.path.exists(v) or os.path.isdir(v),
                               must="be a directory")
    lora: tuple[str, ...] = flag("--lora", default=(), repeat=True, metavar="FNAME",
                                 help="LoRA adapter (GGUF) applied at scale 1; comma-separated or repeated")
    lora_scaled: tuple[str, ...] = flag("--lora-scaled", default=(), repeat=True, metavar="FNAME:SCALE,...",
                                        help="LoRA adapter with its scale; comma-separated or repeated",
                                        check=lambda v: _lora_scaled(v) is not None, must="be FNAME:SCALE,...")
    lora_init_without_apply: bool = flag("--lora-init-without-apply", default=False,
                                         help="load LoRA adapters at scale 0 (set their scales later with "
                                              "POST /lora-adapters)")
    sleep_idle_seconds: int = flag("--sleep-idle-seconds", default=-1, metavar="SECONDS",
                                   help="seconds without requests after which the model is unloaded until the next "
                                        "one (-1: never)",
                                   check=lambda v: v == -1 or v > 0, must="be -1 (disabled) or a number of seconds")

    # derived from the flags when the config is made
    api_keys: list[str] = field(init=False, default_factory=list)  # --api-key's, then --api-key-file's
    n_threads: int = field(init=False, default=0)                   # the one pool's size: the larger of -t, -tb
    sampling: SamplingParams = field(init=False, default_factory=SamplingParams)  # the flags marked sampling=
    default_grammar: str = field(init=False, default="")  # GBNF for requests that bring no constraint
    template_kwargs: dict = field(init=False, default_factory=dict)  # --chat-template-kwargs, parsed
    n_slots: int = field(init=False, default=4)          # --parallel, -1 resolved (4)
    unified_kv: bool = field(init=False, default=True)   # every slot may use the whole KV cache
    aliases: list[str] = field(init=False, default_factory=list)    # --alias, split, sorted, unique
    tag_list: list[str] = field(init=False, default_factory=list)   # --tags, split
    cpus: list[int] | None = field(init=False, default=None)        # --cpu-mask | --cpu-range, or None: all
    kv_overrides: dict = field(init=False, default_factory=dict)    # --override-kv: key -> typed value
    reverse_prompts: list[str] = field(init=False, default_factory=list)  # -r, escapes processed
    ui_settings: dict = field(init=False, default_factory=dict)     # --ui-config(-file), parsed
    warnings: list[str] = field(init=False, default_factory=list)   # flags given that have no effect here
    lora_adapters: list = field(init=False, default_factory=list)   # (path, initial scale): --lora, then --lora-scaled

    @property
    def is_router(self) -> bool:
        """No model given (-m, -hf, -dr, -mu): the server routes requests to a child server per model."""
        return not (self.model or self.hf_repo or self.docker_repo or self.model_url)

    def __post_init__(self) -> None:
        check(self)
        if self.ctx_size and self.parallel > 0 and self.ctx_size < self.parallel:
            raise ValueError("--ctx-size must be at least --parallel")
        self.api_keys = [k.strip() for k in self.api_key.split(",") if k.strip()]
        if self.api_key_file:
            with open(self.api_key_file, encoding="utf-8") as f:
                self.api_keys += [line.strip() for line in f if line.strip() and not line.lstrip().startswith("#")]
        self.n_threads = max(self.threads, self.threads_batch, 0)
        if self.rerank:  # as llama-server: reranking is embeddings with rank pooling
            self.embedding, self.pooling = True, "rank"
        # as llama-server: -np -1 is 4 slots over one unified cache; an explicit -np splits it, unless -kvu
        self.n_slots = 4 if self.parallel < 0 else self.parallel
        self.unified_kv = self.kv_unified if self.kv_unified is not None else self.parallel < 0
        self.sampling = _sampling(self)
        self.default_grammar = _default_grammar(self)
        self.template_kwargs = _template_kwargs(self.chat_template_kwargs)
        self.aliases = sorted({a.strip() for a in self.alias.split(",") if a.strip()})
        self.tag_list = [t.strip() for t in self.tags.split(",") if t.strip()]
        self.cpus = _cpu_set(self.cpu_mask, self.cpu_range)
        self.kv_overrides = _kv_overrides(self.override_kv)
        self.reverse_prompts = [_escapes(r) if self.escape else r for r in self.reverse_prompt if r]
        self.ui_settings = _ui_settings(self)
        if not self.cors_origins:  # as llama-server: tools or MCP servers narrow the default to this machine
            tools_on = self.tools or self.agent or self.mcp_servers_config or self.mcp_servers_json
            self.cors_origins = "localhost" if tools_on else "*"
        # a batch variant that says what its generation flag says is honoured by the one pool
        same = {f"--{n.replace('_', '-')}" for n in ("cpu_mask", "cpu_range", "cpu_strict", "prio", "poll")
                if getattr(self, n + "_batch") == getattr(self, n)}
        self.warnings = [w for w in no_effect_warnings(self) if w.split(" ", 1)[0][:-len("-batch")] not in same
                         or not w.split(" ", 1)[0].endswith("-batch")]
        self.lora_adapters = _lora_adapters(self)

    @property
    def verbose_answers(self) -> bool:
        """llama-server adds a __verbose field to answers when its verbosity is above 9 (-v)."""
        return self.verbose or self.verbosity > 9

    @property
    def lock_model(self) -> bool:
        return self.mlock or self.load_mode in ("mlock", "mmap+mlock")


def _sampling(cfg: ServerConfig) -> SamplingParams:
    """The server-wide sampling defaults: the flags marked sampling=, then the ones that need parsing."""
    params = {f.sampling: getattr(cfg, name) for name, _, _, f in declared(ServerConfig) if f.sampling}
    if cfg.dry_base >= 1.0:  # as llama.cpp: a base below 1 is ignored
        params["dry_base"] = cfg.dry_base
    if cfg.dry_sequence_breaker:
        breakers = [] if "none" in cfg.dry_sequence_breaker else list(cfg.dry_sequence_breaker)
        params["dry_sequence_breakers"] = tuple(_escapes(b) if cfg.escape else b for b in breakers)
    if cfg.sampler_seq:
        params["samplers"] = parse_samplers(cfg.sampler_seq)
    if cfg.samplers:
        params["samplers"] = parse_samplers([s for s in cfg.samplers.split(";") if s])
    params["logit_bias"] = [_logit_bias(x) for x in cfg.logit_bias]
    return SamplingParams(**params)


def _logit_bias(text: str) -> tuple[int, float] | None:
    """llama.cpp's -l TOKEN_ID(+/-)BIAS: "15043+1", "15043-0.5"."""
    m = re.fullmatch(r"\s*(\d+)\s*([+-])\s*(\S+)\s*", text)
    if not m:
        return None
    try:
        bias = float(m.group(3))
    except ValueError:
        return None
    return int(m.group(1)), -bias if m.group(2) == "-" else bias


def _escapes(text: str) -> str:
    r"""llama.cpp's string_process_escapes: \n \r \t \' \" \\ and \xHH; any other stays as written."""
    def one(m: re.Match) -> str:
        s = m.group(0)
        if s[1] == "x":
            return chr(int(s[2:], 16))
        return {"n": "\n", "r": "\r", "t": "\t", "'": "'", '"': '"', "\\": "\\"}[s[1]]
    return re.sub(r"\\(?:[nrt'\"\\]|x[0-9a-fA-F]{2})", one, text)


def _cpu_set(mask: str, cpu_range: str) -> list[int] | None:
    """The CPUs of --cpu-mask (hex, bit i: CPU i) and --cpu-range (lo-hi, either end may be
    left out) together, or None when neither is given. Invalid: None from a non-empty
    argument is told apart by the flag's check (an empty set is returned as [])."""
    if not mask and not cpu_range:
        return None
    cpus: set[int] = set()
    if mask:
        digits = mask[2:] if mask.lower().startswith("0x") else mask
        if not digits or not re.fullmatch(r"[0-9a-fA-F]+", digits):
            return None
        bits = int(digits[:128], 16)
        cpus |= {i for i in range(bits.bit_length()) if bits >> i & 1}
    if cpu_range:
        m = re.fullmatch(r"(\d*)-(\d*)", cpu_range.strip())
        if not m:
            return None
        lo = int(m.group(1)) if m.group(1) else 0
        hi = int(m.group(2)) if m.group(2) else (os.cpu_count() or 1) - 1
        if lo > hi:
            return None
        cpus |= set(range(lo, hi + 1))
    return sorted(cpus)


_KV_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _kv_overrides(items) -> dict | None:
    """--override-kv KEY=TYPE:VALUE (comma-separated, or repeated) as {key: typed value};
    None when one is malformed."""
    out = {}
    for item in items:
        for part in (p for p in item.split(",") if p.strip()):
            key, eq, rest = part.partition("=")
            kind, colon, value = rest.partition(":")
            if not eq or not colon or not key.strip() or kind not in _KV_TYPES or len(key) >= 128:
                return None
            try:
                if kind == "bool":
                    if value not in ("true", "false"):
                        return None
                    typed = value == "true"
                else:
                    typed = _KV_TYPES[kind](value)
            except ValueError:
                return None
            out[key.strip()] = typed
    return out


def _ui_settings(cfg: ServerConfig) -> dict:
    text = cfg.ui_config
    if not text and cfg.ui_config_file:
        with open(cfg.ui_config_file, encoding="utf-8") as f:
            text = f.read()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--ui-config: {e}") from None
    if not isinstance(value, dict):
        raise ValueError("--ui-config must be a JSON object")
    return value


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
    out = [(p.strip(), 1.0) for x in cfg.lora for p in x.split(",") if p.strip()]
    out += _lora_scaled(cfg.lora_scaled) or []
    if cfg.lora_init_without_apply:
        out = [(p, 0.0) for p, _ in out]
    return out


def _lora_scaled(items) -> list[tuple[str, float]] | None:
    """--lora-scaled FNAME:SCALE (comma-separated, or repeated) as (path, scale); None when
    one is malformed."""
    out = []
    for item in (p.strip() for x in items for p in x.split(",")):
        if not item:
            continue
        path, sep, scale = item.rpartition(":")
        try:
            value = float(scale)
        except ValueError:
            return None
        if not sep or not path or not math.isfinite(value):
            return None
        out.append((path, value))
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
