"""Generation speed when the cores are shared: tokens/s of a greedy generation with
the compute pool at its default size, alone and next to N busy-looping processes.

A fork/join pool whose threads wait for each other by spinning collapses when the
OS deschedules one of them (every op then waits a scheduler time slice): on 2 cores
with one other busy process, SmolLM2 fell from ~40 to under 1 token/s. The pool
now lets the caller run the calls of workers that have not started, and yields the
core while it waits for a preempted one.

    python benchmarks/bench_oversubscribed.py --hogs 0 1 2 --tokens 32
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def tokens_per_s(llm, ids, n: int) -> float:
    llm.kv.clear()
    t = time.perf_counter()
    for _ in llm.generate(ids, max_tokens=n, stop_at_eog=False):
        pass
    return n / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--hogs", type=int, nargs="+", default=[0, 1, 2], help="busy processes beside the generation")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()

    from pyllama import Llama
    from pyllama.model_registry import resolve_model

    llm = Llama(resolve_model(a.model), n_ctx=512)
    ids = llm.tokenize("The capital of France is")
    tokens_per_s(llm, ids, 4)  # warm-up
    base = None
    for n in a.hogs:
        hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
        try:
            time.sleep(0.3)
            best = max(tokens_per_s(llm, ids, a.tokens) for _ in range(a.repeat))
        finally:
            for h in hogs:
                h.kill()
        base = base or best
        print(f"{n} busy processes: {best:7.1f} tokens/s  ({best / base:.2f} of the first)")


if __name__ == "__main__":
    main()
