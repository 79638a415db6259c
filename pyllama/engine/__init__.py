"""The serving engine: one OS thread owns the model, the KV cache and the samplers,
and runs every request's prompt and generation in shared batches (slots,
continuous batching). `bridge` is the only code that crosses between that thread
and the server's greenlets."""

from .engine import Engine, EngineConfig
from .task import (CompletionResult, EmbeddingResult, EmbedParams, ErrorEvent, FinalEvent, PartialEvent,
                   ProgressEvent, SlotAction, Task, TaskRequest)

__all__ = ["CompletionResult", "EmbedParams", "EmbeddingResult", "Engine", "EngineConfig", "ErrorEvent",
           "FinalEvent", "PartialEvent", "ProgressEvent", "SlotAction", "Task", "TaskRequest"]
