"""Typed exceptions raised inside pyllama (mapped to HTTP errors by the server)."""


class PyllamaError(Exception):
    """Base class of pyllama's own errors."""


class ModelLoadError(PyllamaError):
    """A model file cannot be opened or is malformed; the message names the problem."""


class ContextOverflow(PyllamaError):
    """The KV cache has no room for the tokens of a batch (the cache is unchanged)."""
