"""Shared fixtures: real models fetched from PyPI into the cache on first use.

A model that cannot be fetched is a test error, never a silent skip.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers

from pyllama.model_registry import resolve_model

SHARED = Path(__file__).resolve().parents[2] / "shared"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return resolve_model("smollm2-135m", progress=False)


@pytest.fixture(scope="session")
def gemma3_path() -> Path:
    return resolve_model("gemma3-270m", progress=False)


@pytest.fixture(scope="session", params=["smollm2-135m", "gemma3-270m"])
def real_model_path(request) -> Path:
    return resolve_model(request.param, progress=False)


MINILM = "all-MiniLM-L6-v2-f16.gguf"


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    """all-MiniLM-L6-v2 F16 (bert, WordPiece, mean pooling) from ../shared/models (or
    $PYLLAMA_SHARED/models when the checkout is elsewhere), else converted from its PyPI
    package into the model cache (tests/helpers/bert_convert.py)."""
    from helpers.bert_convert import minilm_path as convert_or_find

    candidates = [SHARED / "models"]
    if os.environ.get("PYLLAMA_SHARED"):
        candidates.insert(0, Path(os.environ["PYLLAMA_SHARED"]) / "models")
    for folder in candidates:
        if (folder / MINILM).exists():
            return folder / MINILM
    return convert_or_find(candidates[-1])
