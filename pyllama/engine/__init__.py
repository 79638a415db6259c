"""The serving engine: one OS thread owns the model, the KV cache and the samplers,
and runs every request's prompt and generation in shared batches (slots,
continuous batching). `bridge` is the only code that crosses between that thread
and the server's greenlets."""

from .embedding_job import check_input as check_embedding_input
from .engine import Engine, EngineConfig
from .task import (CompletionResult, EmbeddingResult, EmbedParams, ErrorEvent, FinalEvent, PartialEvent,
                   ProgressEvent, SlotAction, Task, TaskRequest)

__all__ = ["CompletionResult", "EmbedParams", "EmbeddingResult", "Engine", "EngineConfig", "ErrorEvent",
           "check_embedding_input",
           "FinalEvent", "PartialEvent", "ProgressEvent", "SlotAction", "Task", "TaskRequest"]
