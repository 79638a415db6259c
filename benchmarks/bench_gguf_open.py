"""Time to open a GGUF model (header, metadata, tensor table, tensor views) and RSS growth.

    python benchmarks/bench_gguf_open.py [MODEL ...] [--reader]

MODEL is a path or a default model name (smollm2-135m, gemma3-270m: both by default).
--reader also times gguf.GGUFReader for comparison (slow: ~6-17 s per file).
Target (issue 2): under 0.3 s for either reference model.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CHILD = r"""
import os, sys, time
def rss():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE')
t0 = time.perf_counter(); r0 = rss()
if sys.argv[2] == 'reader':
    import gguf
    f = gguf.GGUFReader(sys.argv[1])
else:
    from pyllama import GGUFFile
    f = GGUFFile(sys.argv[1]); f.hparams
print(time.perf_counter() - t0, rss() - r0)
"""


def measure(path: str, kind: str, reps: int) -> tuple[float, float, float]:
    """Median and best seconds, and RSS growth, each in a fresh process (imports excluded)."""
    times, rss = [], 0.0
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", "import numpy, gguf, pyllama\n" + CHILD, path, kind],
                             capture_output=True, text=True, check=True).stdout.split()
        times.append(float(out[0]))
        rss = float(out[1])
    return statistics.median(times), min(times), rss


def main() -> None:
    from pyllama.model_registry import resolve_model

    ap = argparse.ArgumentParser()
    ap.add_argument("models", nargs="*", default=["smollm2-135m", "gemma3-270m"])
    ap.add_argument("--reader", action="store_true", help="also time gguf.GGUFReader")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    for m in args.models:
        path = str(resolve_model(m))
        size = os.path.getsize(path) / 2**20
        med, best, rss = measure(path, "pyllama", args.reps)
        print(f"{m:14} {size:6.0f} MiB  pyllama open: median {med * 1000:6.1f} ms, best {best * 1000:6.1f} ms, "
              f"RSS +{rss / 2**20:.1f} MiB")
        if args.reader:
            med, best, rss = measure(path, "reader", 1)
            print(f"{'':14} {'':10} GGUFReader:   {med * 1000:8.1f} ms, RSS +{rss / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
