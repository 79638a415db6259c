"""Embeddings per second for all-MiniLM-L6-v2 (F16) on short sentences, batch by batch:
pyllama's library (Llama.embed: tokenize, one forward pass over the batch's sequences,
mean pooling, euclidean norm) and, with --peer-url, a running llama-server
(`llama-server -m all-MiniLM-L6-v2-f16.gguf --embedding -t 2`) over /v1/embeddings with
the same batches.

    python benchmarks/bench_embeddings.py [-m MODEL] [-t 2] [-b 1 8 32 64] [--seconds 5] [--peer-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
from pathlib import Path

WORDS = ("the cat dog bird sits runs on under a mat rug sofa quickly slowly today red small large old new "
         "house garden river city near far happy quiet bright dark").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    import random

    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "." for _ in range(n)]


def rate(fn, batch: list[str], seconds: float) -> float:
    fn(batch)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0)


def peer_embed(url: str):
    def run(batch: list[str]) -> None:
        req = urllib.request.Request(url.rstrip("/") + "/v1/embeddings", data=json.dumps({"input": batch}).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert len(json.load(r)["data"]) == len(batch)
    return run


def main() -> int:
    default = Path(__file__).resolve().parents[2] / "shared" / "models" / "all-MiniLM-L6-v2-f16.gguf"
    if os.environ.get("PYLLAMA_SHARED"):
        default = Path(os.environ["PYLLAMA_SHARED"]) / "models" / "all-MiniLM-L6-v2-f16.gguf"
    ap = argparse.ArgumentParser()
    ap.add_argument("-m", "--model", default=str(default))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-b", "--batches", type=int, nargs="*", default=[1, 8, 32, 64])
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--peer-url", help="a running llama-server --embedding, e.g. http://127.0.0.1:8080")
    args = ap.parse_args()

    from pyllama import Llama

    llm = Llama(args.model, embedding=True, n_threads=args.threads)
    peer = peer_embed(args.peer_url) if args.peer_url else None
    print(f"| batch | pyllama emb/s{' | llama-server emb/s | ratio' if peer else ''} |")
    print(f"| --- | ---{' | --- | ---' if peer else ''} |")
    for size in args.batches:
        batch = sentences(size, seed=size)
        ours = rate(llm.embed, batch, args.seconds)
        row = f"| {size} | {ours:.0f}"
        if peer:
            theirs = rate(peer, batch, args.seconds)
            row += f" | {theirs:.0f} | {ours / theirs:.2f}"
        print(row + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
