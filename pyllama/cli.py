"""Command line: `pyllama info -m MODEL` (more subcommands arrive with the engine)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from .errors import PyllamaError


def cmd_info(args: argparse.Namespace) -> int:
    from .gguf_file import GGUFFile
    from .tokenizer import Tokenizer
    from .model_registry import resolve_model
    from . import _native

    path = resolve_model(args.model)
    t0 = time.perf_counter()
    with GGUFFile(path) as f:
        opened = time.perf_counter() - t0
        hp = f.hparams
        print(f"file:          {path}")
        print(f"opened in:     {opened * 1000:.1f} ms (GGUF v{f.version}, {len(f.metadata)} keys, {len(f.tensors)} tensors)")
        print(f"name:          {f.get('general.name', '?')}")
        print(f"architecture:  {hp.arch} (family {hp.family})")
        print(f"layers:        {hp.n_layer}, n_embd {hp.n_embd}, heads {hp.n_head}/{hp.n_head_kv}, n_ff {hp.n_ff}")
        print(f"context:       {hp.n_ctx_train} (trained)")
        tok = Tokenizer.from_gguf(f)
        pre = f" pre-tokenizer {tok.pre}" if tok.kind == "bpe" else ""
        print(f"vocabulary:    {tok.n_vocab} tokens ({tok.kind.upper()}{pre}), BOS {tok.bos}, EOS {tok.eos}, "
              f"{len(tok.eog_ids)} end-of-generation tokens")
        sample = "Hello, world!"
        print(f"tokenize:      {sample!r} -> {tok.tokenize(sample, add_special=True)}")
        types = Counter(t.type_name for t in f.tensors.values())
        print("tensor types:  " + ", ".join(f"{k} x{v}" for k, v in sorted(types.items())))
        size = sum(t.nbytes for t in f.tensors.values())
        print(f"weights:       {size / 2**20:.1f} MiB")
    print(f"kernels:       {_native.active_isa()} (best supported: {_native.best_isa()}), {_native.num_threads()} threads")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyllama", description="pyllama command line")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="fetch (if needed) and describe a GGUF model")
    p_info.add_argument("-m", "--model", required=True, help="GGUF path or default model name (smollm2-135m, gemma3-270m)")
    p_info.set_defaults(func=cmd_info)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PyllamaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
