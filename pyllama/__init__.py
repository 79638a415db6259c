"""pyllama: llama.cpp's llama-server, re-implemented on our own quantized CPU kernels."""

from .errors import ContextOverflow, ModelLoadError, PyllamaError
from .gguf_file import GGUFFile, HParams, TensorInfo
from .llama import Batch, Llama
from .sampling import Sampler, SamplingError, SamplingParams
from .tokenizer import StreamDecoder, Tokenizer

__version__ = "0.1.0"

__all__ = ["Batch", "ContextOverflow", "GGUFFile", "HParams", "Llama", "ModelLoadError", "PyllamaError", "Sampler", "SamplingError", "SamplingParams",
           "StreamDecoder", "TensorInfo", "Tokenizer", "__version__"]
