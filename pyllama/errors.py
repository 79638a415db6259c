"""Typed exceptions raised inside pyllama. The library and the engine never build a
client's answer: they raise (or, on the engine thread, deliver) these, and the
server maps each class to llama-server's status code and error type in one table
(its errors module)."""

from __future__ import annotations


class PyllamaError(Exception):
    """Base class of pyllama's own errors. `extra` holds fields a client is told
    besides the message (e.g. the sizes of a prompt that does not fit)."""

    extra: dict = {}


class ModelLoadError(PyllamaError):
    """A model file cannot be opened or is malformed; the message names the problem."""


class InvalidRequest(PyllamaError, ValueError):
    """What was asked is wrong, whatever the server's state: the client's error.
    Subclassed by the sampling, schema, grammar (the native GrammarError), chat
    template and prompt-length errors."""


class PromptTooLong(InvalidRequest):
    """A prompt that leaves no room in a slot's context (llama-server's
    exceed_context_size_error). `shown` is how the prompt's size is told (a bound
    when the text was not tokenized)."""

    def __init__(self, n_prompt_tokens: int, n_ctx: int, shown: str | None = None, *, message: str = ""):
        super().__init__(message or f"request ({shown or n_prompt_tokens} tokens) exceeds the available context "
                                    f"size ({n_ctx} tokens), try increasing it")
        self.extra = {"n_prompt_tokens": n_prompt_tokens, "n_ctx": n_ctx}


def check_fits(n_prompt_tokens: int, n_ctx_slot: int) -> None:
    """A prompt must leave at least one cell of its slot's context for generating."""
    if n_prompt_tokens >= n_ctx_slot:
        raise PromptTooLong(n_prompt_tokens, n_ctx_slot)


class InputTooLarge(PyllamaError):
    """An embedding or rerank input that must be computed in one micro-batch and is
    longer than it (llama-server: "input is too large to process. increase the
    physical batch size", a server error)."""

    def __init__(self, n_prompt_tokens: int, n_ubatch: int, shown: str | None = None):
        super().__init__(f"input is too large to process. increase the physical batch size "
                         f"({shown or n_prompt_tokens} tokens, the batch holds {n_ubatch})")
        self.extra = {"n_prompt_tokens": n_prompt_tokens, "n_ubatch": n_ubatch}


class ContextOverflow(PyllamaError):
    """The KV cache has no room for the tokens of a batch (the cache is unchanged)."""


class TaskFailed(PyllamaError):
    """A task ended on the engine thread for a reason that is not the client's
    (a failed decode, a cache lost after an engine error, output that left its
    grammar)."""


class Unavailable(PyllamaError):
    """The engine takes no task now; the client may try again later."""


class QueueFull(Unavailable):
    """submit() refused: that many tasks already wait for a slot."""


class ShuttingDown(Unavailable):
    """The engine is stopping (or stopped) on request."""


class EngineFailed(PyllamaError):
    """The engine thread died; no task will run again in this process."""
