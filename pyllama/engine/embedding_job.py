"""One embedding task in a slot: its prompt goes through the model like any other
(same slots, same batches), the output rows its pooling needs are kept, and at the
prompt's end they are pooled into its result. No sampling; the slot's cache is
dropped afterwards.

Which rows: every token's for pooling none and mean, the first token's for cls and
rank, the last one's for last. Only last pooling on a causal model can take a prompt
in several batches (the KV cache carries it); any other needs the whole prompt in one
batch, and a non-causal encoder in one micro-batch (as llama-server refuses longer
inputs: "input is too large to process")."""

from __future__ import annotations

import numpy as np

from ..embedding import normalize
from ..errors import InputTooLarge, PromptTooLong
from .task import EmbeddingResult, Task, Timings

ROWS = {"none": "all", "mean": "all", "cls": "first", "rank": "first", "last": "last"}


def splittable(pooling: str, causal: bool) -> bool:
    return pooling == "last" and causal


def check_input(llm, n: int, *, pooling: str, n_ctx: int, shown: str | None = None) -> None:
    """llama-server's checks of an embedding input against the slot's context, in its
    order, then the model's own (an encoder's position embeddings). `shown`: how n is
    told when it is a lower bound of a text's size."""
    if splittable(pooling, not llm.is_encoder):
        if n >= n_ctx:
            raise PromptTooLong(n, n_ctx, shown)
    else:
        if n > llm.n_ubatch:
            raise InputTooLarge(n, llm.n_ubatch, shown)
        if n > n_ctx:
            raise PromptTooLong(n, n_ctx, message="input is larger than the max context size. skipping")
    llm.check_embedding_input(n, pooling)


class EmbeddingJob:
    """The slot's work for an embedding task (what a Generation is for a completion;
    the fields /slots reads are the same)."""

    def __init__(self, task: Task, causal: bool):
        req = task.request
        self.task = task
        self.prompt = req.prompt
        self.params = req.embedding
        self.rows_wanted = ROWS[self.params.pooling]
        self.whole = not splittable(self.params.pooling, causal)
        self.rows: list[np.ndarray] = []
        self.timings = Timings()
        self.n_cached = 0
        self.n_decoded = 0
        self.text = ""
        self.tokens: list[int] = []

    def prompt_done(self) -> None:
        pass

    def add_rows(self, rows: np.ndarray) -> None:
        self.rows.append(np.array(rows, dtype=np.float32, copy=True))

    def result(self, llm, slot_id: int) -> EmbeddingResult:
        """The task's vectors: every token's (none, unnormalized), the classifier's scores
        (rank), else the pooled vector normalized as asked."""
        pooling = self.params.pooling
        pooled = llm.pool(np.concatenate(self.rows), pooling)
        if pooling == "none":
            vectors = pooled
        elif pooling == "rank":
            vectors = pooled[None]
        else:
            vectors = normalize(pooled, self.params.normalize)[None]
        return EmbeddingResult(np.asarray(vectors, np.float32), slot_id, len(self.prompt), self.timings)
