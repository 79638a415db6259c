"""Model speed and footprint: pp512 / tg128 (like llama-bench), peak RSS with the
model loaded, and the time from process start to the first generated token.

    python benchmarks/bench_model.py [-t 2] [-r 3] [models...]

Ratios are against llama.cpp's figures on this class of machine (DESIGN.md §5).
Each model is measured in a fresh subprocess so RSS and start-up time are its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

PEER = {  # llama-bench -t 2, tokens/s; llama-server ready-to-serve time, s
    "smollm2-135m": {"pp512": 194.0, "tg128": 86.0, "ready_s": 0.7},
    "gemma3-270m": {"pp512": 395.0, "tg128": 46.0, "ready_s": 2.3},
}

CHILD = r"""
import json, resource, sys, time
t_start = float(sys.argv[1])
from pyllama import Llama
from pyllama.bench import run_bench
from pyllama.model_registry import resolve_model
name, threads, reps = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
path = resolve_model(name)
llm = Llama(path, n_ctx=4096, n_threads=threads)
next(llm.generate("Hello", max_tokens=1))
first_token_s = time.time() - t_start
rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
del llm
rows = [r for r in run_bench(name, n_threads=threads, repetitions=reps) if not isinstance(r, str)]
print(json.dumps({"first_token_s": first_token_s, "rss_mib": rss_loaded,
                  **{r.test: [r.mean, r.stdev] for r in rows}}))
"""


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=list(PEER))
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-r", "--repetitions", type=int, default=3)
    args = ap.parse_args()
    print("| model | pp512 t/s | x llama.cpp | tg128 t/s | x llama.cpp | peak RSS MiB | first token s | llama-server ready s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name in args.models:
        t0 = time.time()
        out = subprocess.run([sys.executable, "-c", CHILD, str(t0), name, str(args.threads), str(args.repetitions)],
                             capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        peer = PEER.get(name, {})
        pp, tg = r["pp512"], r["tg128"]
        print(f"| {name} | {pp[0]:.1f} ± {pp[1]:.1f} | {pp[0] / peer.get('pp512', float('nan')):.2f} "
              f"| {tg[0]:.1f} ± {tg[1]:.1f} | {tg[0] / peer.get('tg128', float('nan')):.2f} "
              f"| {r['rss_mib']:.0f} | {r['first_token_s']:.2f} | {peer.get('ready_s', float('nan'))} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
