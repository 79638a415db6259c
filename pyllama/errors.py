"""Typed exceptions raised inside pyllama (mapped to HTTP errors by the server)."""


class PyllamaError(Exception):
    """Base class of pyllama's own errors."""


class ModelLoadError(PyllamaError):
    """A model file cannot be opened or is malformed; the message names the problem."""
