"""pyllama: llama.cpp's llama-server, re-implemented on our own quantized CPU kernels."""

from ._version import __version__
from .errors import ContextOverflow, ModelLoadError, PyllamaError
from .gguf_file import GGUFFile, HParams, TensorInfo
from .llama import Batch, Llama
from .sampling import Sampler, SamplingError, SamplingParams
from .tokenizer import StreamDecoder, Tokenizer

__all__ = ["Batch", "ContextOverflow", "GGUFFile", "HParams", "Llama", "ModelLoadError", "PyllamaError", "Sampler", "SamplingError", "SamplingParams",
           "StreamDecoder", "TensorInfo", "Tokenizer", "__version__"]
