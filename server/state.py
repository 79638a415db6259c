"""What the app holds: its configuration, the loaded model, the engine thread,
the chat template, the LoRA adapters and their global scales, and the load state
/health reports. With --sleep-idle-seconds the model and engine come and go
(sleep.py): what /props, /models and /metrics read survives in `info` and `stats`."""

from __future__ import annotations

import gc
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable

from pyllama.chat import ChatTemplate
from pyllama.engine import Engine, EngineConfig
from pyllama.engine.bridge import original
from pyllama.llama import Llama
from pyllama.lora import LoraInfo
from pyllama.model_fetch import log_progress
from pyllama.control_vectors import parse_specs
from pyllama.hf_hub import log_bytes
from pyllama.model_registry import resolve_source
from pyllama.rope import RopeOptions
from pyllama.slot_file import KvLayout

from . import placement
from .config import ServerConfig
from .memory import trim
from .metrics import Scrapes

log = logging.getLogger("pyllama.server")


def exit_process(code: int = 3) -> Callable[[str], None]:
    """The default reaction to a model that cannot be loaded: the process ends with
    `code`, as llama-server exits when its model fails. 3 is gunicorn's "worker failed
    to boot", which makes the arbiter stop instead of restarting the worker forever."""
    def fatal(message: str) -> None:
        logging.shutdown()  # flush the error line first
        sys.stderr.flush()
        os._exit(code)
    return fatal


@dataclass(frozen=True)
class ModelInfo:
    """What the server reports of its model without touching it (it may be asleep)."""

    n_ctx_slot: int
    n_vocab: int
    n_ctx_train: int
    n_embd: int
    n_params: int
    vocab_type: int          # 1 spm, 2 bpe, 3 wpm
    bos_token: str
    eos_token: str
    size: int                # bytes of the model file
    fingerprint: str         # Llama.fingerprint: what a slot file must have been saved from
    kv_layout: KvLayout      # and with


class ServerState:
    def __init__(self, config: ServerConfig, on_fatal: Callable[[str], None] | None = None):
        self.config = config
        self.on_fatal = on_fatal or exit_process()
        self.llm: Llama | None = None
        self.engine: Engine | None = None
        self.template: ChatTemplate | None = None
        self.load_error: str | None = None
        self.model_path = ""
        self.t_start = time.time()
        self.scrapes = Scrapes()  # /metrics: the counters at the previous scrape
        self.info: ModelInfo | None = None
        self.stats = None          # the engine's counters, kept across sleep
        self.loaded = False        # the model loaded once (it may be asleep now)
        self.sleeping = False
        self.lora_infos: list[LoraInfo] = []
        # the global scale of each adapter (POST /lora-adapters): requests without `lora` use them
        self.lora_scales: list[float] = [scale for _, scale in config.lora_adapters]

    @property
    def ready(self) -> bool:
        """The model has loaded (it may be asleep: a request wakes it)."""
        return self.loaded

    @property
    def alias(self) -> str:
        """The model's name in the API: the first --alias in sorted order (as llama-server's set), else the
        Hugging Face repository, else the file's name."""
        aliases = self.config.aliases
        return aliases[0] if aliases else self.config.hf_repo or os.path.basename(self.model_path or self.config.model)

    def load_in_background(self) -> None:
        """Load the model on an OS thread (the port is already open; /health says 503)."""
        original("_thread", "start_new_thread")(self._load, ())

    def _load(self) -> None:
        try:
            self.load_model()
        except Exception as e:  # noqa: BLE001 - whatever it was, the server cannot serve without a model
            self.load_error = " ".join(str(e).split()) or type(e).__name__
            log.error("failed to load the model: %s", self.load_error)
            self.on_fatal(self.load_error)

    def load_model(self) -> None:
        """Load the model and its LoRA adapters and start the engine (on any thread but the
        loop's); also how a sleeping server wakes. Raises whatever went wrong."""
        cfg = self.config
        if not self.model_path:
            self.model_path = str(resolve_source(cfg.model, hf_repo=cfg.hf_repo, hf_file=cfg.hf_file,
                                                 hf_token=cfg.hf_token, model_url=cfg.model_url,
                                                 docker_repo=cfg.docker_repo, offline=cfg.offline,
                                                 progress=log_progress(log),
                                                 byte_progress=log_bytes(log, cfg.hf_repo or cfg.docker_repo
                                                                         or cfg.model_url)))
        llm = Llama(self.model_path, n_ctx=n_ctx(cfg), n_threads=cfg.n_threads or None,
                    n_ubatch=cfg.ubatch_size, cache_type_k=cfg.cache_type_k, cache_type_v=cfg.cache_type_v,
                    embedding=cfg.embedding, pooling=cfg.pooling or None, rope=rope_options(cfg),
                    kv_overrides=cfg.kv_overrides, check_tensors=cfg.check_tensors, mlock=cfg.lock_model,
                    poll=cfg.poll, cpus=placement.strict_cpus(cfg),
                    control_vectors=parse_specs(cfg.control_vector, cfg.control_vector_scaled),
                    control_vector_layers=tuple(int(x) for x in cfg.control_vector_layer_range) or (0, 0))
        try:
            for w in llm.warnings:
                log.warning("%s", w)
            for path, _ in cfg.lora_adapters:
                llm.load_lora(path)
            if cfg.warmup:
                log.info("warming up the model with an empty run (--no-warmup to disable)")
                llm.warmup()
            if self.template is None:
                self.template = self._chat_template(llm)
            engine = Engine(llm, EngineConfig(n_parallel=cfg.n_slots, n_batch=cfg.batch_size,
                                              cont_batching=cfg.cont_batching, context_shift=cfg.context_shift,
                                              max_queue=cfg.max_queue, unified_kv=cfg.unified_kv,
                                              n_ctx_slot=cfg.kv_unified_per_slot,
                                              slot_prompt_similarity=cfg.slot_prompt_similarity,
                                              prompt_cache_mib=0 if cfg.embedding else cfg.cache_ram,
                                              cache_idle_slots=cfg.cache_idle_slots))
        except BaseException:
            llm.close()
            raise
        if self.stats is not None:
            engine.stats = self.stats  # /metrics counts since the server started, across sleeps
        self.stats = engine.stats
        self.lora_infos = list(llm.lora_adapters)
        self.info = self._info(llm, engine)
        engine.start()
        self.llm = llm
        self.engine = engine
        self.loaded = True
        self.sleeping = False
        log.info("model loaded: %s (%d slots, n_ctx %d, %d per slot%s%s)", self.model_path, cfg.n_slots, llm.n_ctx,
                 engine.n_ctx_slot, ", unified KV cache" if cfg.unified_kv else "",
                 f", {len(self.lora_infos)} LoRA adapters" if self.lora_infos else "")

    def unload(self, engine: Engine, llm: Llama) -> None:
        """Stop the engine and free the model (a sleeping server): its weights, KV cache and
        adapters are given back to the system."""
        if not engine.shutdown(wait_s=60):
            log.warning("the engine thread did not stop within 60 s; freeing the model anyway is unsafe, kept it")
            return
        for s in engine.slots:  # the slots' caches hold the native KV cache
            s.cache.kv = None
        engine.llm = None
        llm.close()
        del engine, llm
        gc.collect()
        trim()

    def _info(self, llm: Llama, engine: Engine) -> ModelInfo:
        tok, hp = llm.tokenizer, llm.hparams
        return ModelInfo(n_ctx_slot=engine.n_ctx_slot, n_vocab=llm.n_vocab, n_ctx_train=hp.n_ctx_train,
                         n_embd=hp.n_embd, n_params=llm.n_params,
                         vocab_type={"spm": 1, "bpe": 2, "wpm": 3}.get(tok.kind, 0),
                         bos_token=tok.tokens[tok.bos] if tok.bos >= 0 else "",
                         eos_token=tok.tokens[tok.eos] if tok.eos >= 0 else "",
                         size=os.path.getsize(self.model_path), fingerprint=llm.fingerprint,
                         kv_layout=KvLayout.of(llm.kv))

    def _chat_template(self, llm: Llama) -> ChatTemplate:
        """--chat-template-file, else --chat-template (Jinja text or a built-in name),
        else the model's template; chatml when there is none. Without --jinja only the
        built-in formats are used: the model's template picks one by its markers."""
        from pyllama.chat.builtin import BUILTIN, CHATML_JINJA, detect_format

        cfg = self.config
        if cfg.chat_template_file:
            with open(cfg.chat_template_file, encoding="utf-8") as f:
                source = f.read()
        elif cfg.chat_template:
            source = cfg.chat_template
        else:
            source = llm.metadata.get("tokenizer.chat_template")
        if cfg.jinja and (not source or source.strip() == "chatml"):
            # llama.cpp: with --jinja, "chatml" (or no template) is the model's tool_use
            # template, else a ChatML Jinja template, so that tools work with it
            source = llm.metadata.get("tokenizer.chat_template.tool_use") or CHATML_JINJA
        if not cfg.jinja and source and source.strip() not in BUILTIN:
            name = detect_format(source)
            if name is None:
                log.warning("the chat template is not one of the built-in formats; using chatml (try --jinja)")
            source = name or "chatml"
        tok = llm.tokenizer
        bos = tok.tokens[tok.bos] if tok.bos >= 0 else ""
        eos = tok.tokens[tok.eos] if tok.eos >= 0 else ""
        return ChatTemplate(source, bos_token=bos, eos_token=eos)


def n_ctx(cfg: ServerConfig) -> int:
    """The KV cache's cells: -c, else --parallel times --kv-unified-per-slot, else 0 (the
    model's training context)."""
    if cfg.ctx_size:
        return cfg.ctx_size
    if cfg.kv_unified_per_slot:
        return cfg.n_slots * cfg.kv_unified_per_slot
    return 0


def rope_options(cfg: ServerConfig) -> RopeOptions:
    """--rope-freq-scale, else 1 / --rope-scale; the rest as given (0 / -1: the model's)."""
    scale = cfg.rope_freq_scale or (1.0 / cfg.rope_scale if cfg.rope_scale > 0 else 0.0)
    return RopeOptions(scaling_type=cfg.rope_scaling, freq_base=cfg.rope_freq_base, freq_scale=scale,
                       yarn_ext_factor=cfg.yarn_ext_factor, yarn_attn_factor=cfg.yarn_attn_factor,
                       yarn_beta_fast=cfg.yarn_beta_fast, yarn_beta_slow=cfg.yarn_beta_slow,
                       yarn_orig_ctx=cfg.yarn_orig_ctx)
