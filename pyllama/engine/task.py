"""What a request asks of the engine (TaskRequest), its handle (Task), and the
events the engine sends back: partial tokens, the final result, or an error."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from ..sampling import SamplingParams, TokenProbs

if TYPE_CHECKING:
    import numpy as np

_ids = itertools.count()


@dataclass
class TaskRequest:
    """One completion: the prompt as tokens and how to continue it (llama-server's fields)."""

    prompt: list[int]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    n_predict: int = -1           # -1: until the end of generation or of the context
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    cache_prompt: bool = True
    n_cache_reuse: int = 0        # > 0: also reuse cached chunks this long by shifting them (--cache-reuse)
    id_slot: int = -1             # -1: any slot
    n_keep: int = 0               # prompt tokens kept on a context shift (-1: all; BOS not counted)
    n_discard: int = 0            # tokens dropped per context shift (0: half of what may go)
    n_indent: int = 0             # stop at a line indented less than this (code completion)
    t_max_predict_ms: int = -1
    ignore_eos: bool = False
    grammar: object = None        # a parsed grammar (pyllama.grammar.compile_grammar) the output must follow
    grammar_text: str = ""        # its GBNF source, as reported back
    grammar_lazy: bool = False    # the grammar waits for a trigger
    trigger_tokens: list[int] = field(default_factory=list)
    trigger_patterns: list = field(default_factory=list)   # compiled (pyllama.grammar.compile_trigger)
    grammar_triggers: list[dict] = field(default_factory=list)  # as reported back
    preserved_tokens: list[int] = field(default_factory=list)   # special tokens shown in the text
    special: bool = False         # every special token shown in the text (llama-server -sp)
    return_progress: bool = False  # stream: report prompt processing progress (ProgressEvent)
    timings_per_token: bool = False  # stream: the timings so far with every partial and progress event
    dry_breakers: list | None = None  # processed DRY breakers (pyllama.sampling.dry_breakers), if DRY is on
    chat_format: str = "Content-only"  # how a chat's output is read (reported back, as llama-server)
    reasoning_format: str = "none"     # the reasoning format it is read with (reported back)
    reasoning_budget: object = None    # a reasoning_budget.ReasoningBudget: thinking ends after that many tokens
    embedding: "EmbedParams | None" = None  # an embedding task: no sampling, the prompt's states pooled
    lora: tuple[float, ...] = ()       # the scale of each loaded LoRA adapter, by id; () when none applies


@dataclass(frozen=True)
class EmbedParams:
    """What an embedding task returns: the prompt's final hidden states pooled as
    `pooling` says ("none": every token's, "rank": the classifier's scores) and, when
    pooled, normalized (pyllama.embedding.normalize's modes)."""

    pooling: str            # none | mean | cls | last | rank
    normalize: int = 2      # -1 none, 0 max-abs int16, 1 taxicab, 2 euclidean, >2 p-norm


@dataclass
class Span:
    """Tokens and the wall time they took (prompt processing or generation)."""

    n: int = 0
    ms: float = 0.0

    def add(self, n: int, ms: float) -> None:
        self.n += n
        self.ms += ms

    def per_token_ms(self) -> float:
        return self.ms / self.n if self.n else 0.0

    def per_second(self) -> float:
        return 1000.0 * self.n / self.ms if self.ms > 0 else 0.0


@dataclass
class Timings:
    """One task's llama-server `timings` object."""

    prompt: Span = field(default_factory=Span)
    predicted: Span = field(default_factory=Span)
    cache_n: int = 0

    def to_json(self) -> dict:
        """As llama-server's: the generation rates count decode steps, one fewer than the
        tokens (the first token comes from the prompt's last batch, at no cost)."""
        p, g = self.prompt, self.predicted
        steps = Span(max(g.n - 1, 0), g.ms)
        return {"cache_n": self.cache_n, "prompt_n": p.n, "prompt_ms": p.ms,
                "prompt_per_token_ms": p.per_token_ms(), "prompt_per_second": p.per_second(), "predicted_n": g.n,
                "predicted_ms": g.ms, "predicted_per_token_ms": steps.per_token_ms(),
                "predicted_per_second": steps.per_second()}


@dataclass
class PartialEvent:
    """Text that is final (stream mode): stop-string prefixes and split characters held back."""

    content: str
    tokens: list[int]
    probs: list[TokenProbs]
    n_decoded: int
    n_prompt: int
    id_slot: int
    n_cached: int = 0  # prompt tokens found in the slot's cache (Anthropic's usage opens the stream)
    timings: "Timings | None" = None  # so far (the request's timings_per_token)


@dataclass
class ProgressEvent:
    """Prompt processing so far (a streamed task with return_progress): once when it starts
    (processed = cache), then after every batch that held its prompt tokens."""

    total: int        # prompt tokens
    cache: int        # of them found in the slot's cache
    processed: int    # of them in the cache now (cached + decoded)
    time_ms: int      # since prompt processing started
    id_slot: int
    timings: "Timings | None" = None  # so far (the request's timings_per_token)


@dataclass
class CompletionResult:
    content: str
    tokens: list[int]
    id_slot: int
    n_decoded: int
    n_prompt: int
    n_cached: int
    stop_type: str                # "eos" | "limit" | "word"
    stopping_word: str
    truncated: bool
    has_new_line: bool
    timings: Timings
    probs: list[TokenProbs]
    seed: int


@dataclass
class EmbeddingResult:
    """An embedding task's answer: one row per token for pooling "none", else one
    (pooled, normalized) row; for "rank" the classifier's scores."""

    vectors: "np.ndarray"   # (rows, n) float32
    id_slot: int
    n_prompt: int
    timings: Timings


@dataclass
class FinalEvent:
    result: "CompletionResult | EmbeddingResult"


@dataclass
class ErrorEvent:
    """The task ended with an error: a typed exception (pyllama.errors), which the
    server maps to llama-server's error envelope."""

    error: Exception


@dataclass
class SlotAction:
    """A control operation on one slot, carried out by the engine thread between two
    steps, once the slot is idle (a busy slot's action waits, as llama-server defers
    it; meanwhile no new task starts in that slot):

      save     hand over the slot's cache: result is a SlotState (pyllama.slot_file)
      restore  replace the slot's cache with `state` (its tokens, KV state, adapters
               as (fingerprint, scale)); result is the number of tokens restored
      erase    drop the slot's cache; result is the number of tokens it held

    `deliver` gets a FinalEvent(result) or an ErrorEvent (InvalidRequest for a slot id
    that does not exist or a state that cannot be restored)."""

    action: str
    id_slot: int
    deliver: Callable[[object], None]
    state: object = None
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


class Task:
    """A request in flight. `deliver` is called on the engine thread with each event
    (the bridge makes it thread-safe); `cancel()` may be called from any thread."""

    def __init__(self, request: TaskRequest, deliver: Callable[[object], None]):
        self.id = next(_ids)
        self.request = request
        self.deliver = deliver
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True
