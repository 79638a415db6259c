"""Write a vocabulary-only GGUF (the tokenizer.* and general.* metadata of a model,
no tensors), like llama.cpp's ggml-vocab-*.gguf test files.

    python tools/make_vocab_gguf.py MODEL.gguf OUT.gguf
"""

import sys

import numpy as np
from gguf import GGUFWriter

from pyllama.gguf_file import GGUFFile


def main(src: str, dst: str) -> None:
    f = GGUFFile(src)
    w = GGUFWriter(dst, f.architecture)
    for key, value in f.metadata.items():
        if not key.startswith(("tokenizer.", "general.")) or key == "general.architecture":
            continue
        if isinstance(value, np.ndarray):
            w.add_array(key, value.tolist())
        elif isinstance(value, list):
            w.add_array(key, value)
        elif isinstance(value, bool):
            w.add_bool(key, value)
        elif isinstance(value, int):
            w.add_uint32(key, value)
        elif isinstance(value, float):
            w.add_float32(key, value)
        else:
            w.add_string(key, value)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
