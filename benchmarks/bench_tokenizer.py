"""Tokenizer benchmark: tokenization throughput on 1 MB of English text with the
SmolLM2 BPE vocabulary (cold: a fresh tokenizer; warm: the same text again), the
same with gemma-3's SPM vocabulary (6,414 special tokens, newlines among them), and
the time to build the tokenizers of SmolLM2 and gemma-3 (262,144 tokens) from
their already opened GGUF files. Targets (issue 3): >= 5 MB/s, < 0.3 s.

    python benchmarks/bench_tokenizer.py

The English text is the docstrings of this Python's standard library (deterministic
for a given Python version), cut to 1,000,000 bytes.
"""

from __future__ import annotations

import ast
import statistics
import sysconfig
import time
from pathlib import Path

from pyllama.gguf_file import GGUFFile
from pyllama.model_registry import resolve_model
from pyllama.tokenizer import Tokenizer

SIZE = 1_000_000


def english_text() -> str:
    parts, total = [], 0
    for path in sorted(Path(sysconfig.get_paths()["stdlib"]).rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    parts.append(doc)
                    total += len(doc.encode()) + 2
        if total >= SIZE:
            break
    return "\n\n".join(parts).encode()[:SIZE].decode("utf-8", "ignore")


def main() -> None:
    text = english_text()
    smollm = GGUFFile(resolve_model("smollm2-135m"))
    gemma = GGUFFile(resolve_model("gemma3-270m"))
    cold, warm = [], []
    for _ in range(5):
        tok = Tokenizer.from_gguf(smollm)
        t0 = time.perf_counter()
        ids = tok.tokenize(text, add_special=False)
        t1 = time.perf_counter()
        tok.tokenize(text, add_special=False)
        t2 = time.perf_counter()
        cold.append(t1 - t0)
        warm.append(t2 - t1)
    mb = len(text.encode()) / 1e6
    print(f"text: {mb:.2f} MB, {len(ids)} SmolLM2 tokens")
    print(f"tokenize cold: {mb / statistics.median(cold):6.1f} MB/s   warm: {mb / statistics.median(warm):6.1f} MB/s"
          f"   (median of 5, one thread)")
    spm = []
    tok = Tokenizer.from_gguf(gemma)
    for _ in range(5):
        t0 = time.perf_counter()
        n_spm = len(tok.tokenize(text, add_special=False))
        spm.append(time.perf_counter() - t0)
    print(f"gemma-3 SPM tokenize: {mb / statistics.median(spm):6.1f} MB/s  ({n_spm} tokens, median of 5)")
    for name, f in (("smollm2-135m", smollm), ("gemma3-270m", gemma)):
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            tok = Tokenizer.from_gguf(f)
            times.append(time.perf_counter() - t0)
        print(f"build {name:13} ({tok.n_vocab} tokens): {1000 * statistics.median(times):6.1f} ms (median of 5)")


if __name__ == "__main__":
    main()
