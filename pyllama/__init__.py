"""pyllama: llama.cpp's llama-server, re-implemented on our own quantized CPU kernels."""

from .errors import ModelLoadError, PyllamaError
from .gguf_file import GGUFFile, HParams, TensorInfo
from .tokenizer import StreamDecoder, Tokenizer

__version__ = "0.1.0"

__all__ = ["GGUFFile", "HParams", "ModelLoadError", "PyllamaError", "StreamDecoder", "TensorInfo", "Tokenizer",
           "__version__"]
