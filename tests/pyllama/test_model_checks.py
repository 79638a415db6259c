"""--override-kv, --check-tensors and warm-up on small random-weight models."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.tiny_models import write_tiny_decoder

from pyllama import Llama, ModelLoadError
from pyllama.gguf_file import GGUFFile


def test_metadata_overrides_apply_before_anything_reads_them(tmp_path):
    path = write_tiny_decoder(tmp_path / "m.gguf", "llama")
    llm = Llama(path, n_ctx=0, kv_overrides={"llama.context_length": 64, "tokenizer.ggml.add_bos_token": False,
                                             "some.new.key": "x"})
    assert llm.n_ctx == 64 and llm.hparams.n_ctx_train == 64 and llm.metadata["some.new.key"] == "x"
    with pytest.raises(ModelLoadError, match="bad metadata override for key llama.context_length"):
        Llama(path, kv_overrides={"llama.context_length": 64.5})


def test_check_tensors_finds_a_nan(tmp_path):
    path = write_tiny_decoder(tmp_path / "nan.gguf", "llama")
    with GGUFFile(path) as f:
        t = f.tensors["blk.1.ffn_up.weight"]
        offset, nbytes = t.offset, t.nbytes
    data = bytearray(path.read_bytes())
    data[offset + 8:offset + 12] = np.array([np.nan], np.float32).tobytes()
    path.write_bytes(bytes(data))
    Llama(path, n_ctx=16)  # loads without the check
    with pytest.raises(ModelLoadError, match="blk.1.ffn_up.weight.*NaN at element 2"):
        Llama(path, n_ctx=16, check_tensors=True)
    assert nbytes > 12


def test_check_tensors_passes_a_good_quantized_model(tmp_path):
    from helpers.tiny_models import T
    Llama(write_tiny_decoder(tmp_path / "q.gguf", "qwen2", weight_type=T.Q4_0), n_ctx=16, check_tensors=True)


def test_warmup_leaves_the_cache_empty(tmp_path):
    llm = Llama(write_tiny_decoder(tmp_path / "w.gguf", "qwen3"), n_ctx=16)
    llm.warmup()
    assert llm.kv.n_used == 0
