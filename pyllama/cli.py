"""Command line: `pyllama info|run|bench -m MODEL ...`."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from ._version import __version__
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


def _load(args: argparse.Namespace, **kw):
    from .llama import Llama
    from .model_registry import resolve_model

    return Llama(resolve_model(args.model), n_threads=args.threads, **kw)


def cmd_run(args: argparse.Namespace) -> int:
    import sys as _sys

    llm = _load(args, n_ctx=args.ctx_size, cache_type_k=args.cache_type_k, cache_type_v=args.cache_type_v)
    decoder = llm.tokenizer.stream_decoder()
    print(args.prompt, end="", flush=True)
    for tok in llm.generate(args.prompt, max_tokens=args.n_predict, temperature=args.temp, seed=args.seed,
                            top_k=args.top_k, top_p=args.top_p, min_p=args.min_p):
        print(decoder.feed(tok), end="", flush=True)
    print(decoder.flush())
    t = llm.timings
    print(f"\nprompt:     {t.n_prompt} tokens in {t.prompt_s * 1000:.0f} ms ({t.prompt_per_second:.1f} tokens/s)",
          file=_sys.stderr)
    print(f"generation: {t.n_generated} tokens in {t.generate_s * 1000:.0f} ms ({t.generate_per_second:.1f} tokens/s)",
          file=_sys.stderr)
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from .bench import run_bench

    for row in run_bench(args.model, n_prompt=args.n_prompt, n_gen=args.n_gen, n_threads=args.threads,
                         repetitions=args.repetitions):
        print(row)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="pyllama", description="pyllama command line")
    parser.add_argument("--version", action="version", version=f"pyllama {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser("info", help="fetch (if needed) and describe a GGUF model")
    p_info.add_argument("-m", "--model", required=True, help="GGUF path or default model name (smollm2-135m, gemma3-270m)")
    p_info.set_defaults(func=cmd_info)

    p_run = sub.add_parser("run", help="generate a continuation of a prompt and report its speed")
    p_run.add_argument("-m", "--model", required=True, help="GGUF path or default model name")
    p_run.add_argument("-p", "--prompt", required=True)
    p_run.add_argument("-n", "--n-predict", type=int, default=128, help="tokens to generate (default 128)")
    p_run.add_argument("-t", "--threads", type=int, default=None)
    p_run.add_argument("-c", "--ctx-size", type=int, default=4096)
    p_run.add_argument("--temp", type=float, default=0.0, help="temperature; 0 = greedy (default)")
    p_run.add_argument("--top-k", type=int, default=40)
    p_run.add_argument("--top-p", type=float, default=0.95)
    p_run.add_argument("--min-p", type=float, default=0.05)
    p_run.add_argument("-s", "--seed", type=int, default=None)
    p_run.add_argument("-ctk", "--cache-type-k", default="f16", choices=["f16", "f32", "q8_0"])
    p_run.add_argument("-ctv", "--cache-type-v", default="f16", choices=["f16", "f32", "q8_0"])
    p_run.set_defaults(func=cmd_run)

    p_bench = sub.add_parser("bench", help="prompt processing and generation speed, like llama-bench")
    p_bench.add_argument("-m", "--model", required=True)
    p_bench.add_argument("-p", "--n-prompt", type=int, default=512)
    p_bench.add_argument("-n", "--n-gen", type=int, default=128)
    p_bench.add_argument("-t", "--threads", type=int, default=None)
    p_bench.add_argument("-r", "--repetitions", type=int, default=5)
    p_bench.set_defaults(func=cmd_bench)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except PyllamaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
