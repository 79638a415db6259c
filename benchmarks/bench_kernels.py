"""Kernel benchmark: matvec weight-read throughput per type against this machine's read
bandwidth (1 and 2 threads), and prefill matmul GFLOP/s at M=512.

    python benchmarks/bench_kernels.py [--types q4_0,q4_K,q8_0] [--isa avx2] [--mib 192]

The weight matrix is larger than the L3 cache, so matvec streams it from memory:
GB/s = weight bytes / time per matvec. Target (issue 2): Q4_0, Q4_K and Q8_0 at >= 70%
of the measured read bandwidth with 2 threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from pyllama import _native

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from helpers.blocks import WEIGHT_TYPES, random_rows, type_info  # noqa: E402


def best_time(fn, reps: int, min_time: float = 0.5) -> float:
    fn()
    best = float("inf")
    start = time.perf_counter()
    n = 0
    while n < reps or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        n += 1
    return best


def read_bandwidth(threads: int, mib: int) -> float:
    _native.set_num_threads(threads)
    buf = np.ones(mib * 2**20 // 8, dtype=np.uint64)
    t = best_time(lambda: _native.read_probe(buf), 5)
    return buf.nbytes / t / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--types", default="", help="comma-separated type names (default: all)")
    ap.add_argument("--isa", default=None, help="generic | avx2 | avx512 (default: active level)")
    ap.add_argument("--mib", type=int, default=192, help="matvec weight size in MiB (> L3)")
    ap.add_argument("--k", type=int, default=4096, help="row length K")
    args = ap.parse_args()
    wanted = {t.lower() for t in args.types.split(",") if t}
    types = [t for t in WEIGHT_TYPES if not wanted or type_info(t)[0].lower() in wanted]
    isa = args.isa or _native.active_isa()
    rng = np.random.default_rng(0)
    bw = {n: read_bandwidth(n, args.mib) for n in (1, 2)}
    print(f"ISA {isa}; read bandwidth: 1 thread {bw[1]:.1f} GB/s, 2 threads {bw[2]:.1f} GB/s")
    print(f"{'type':8} {'matvec 1T GB/s':>15} {'%bw':>5} {'matvec 2T GB/s':>15} {'%bw':>5} {'pp512 GFLOP/s 2T':>17}")
    k = args.k
    for t in types:
        name, bs, ts, _ = type_info(t)
        row_bytes = ts * k // bs
        n = max(1, args.mib * 2**20 // row_bytes)
        # random rows are slow to build: tile one random block of rows
        base = random_rows(t, 256, k, rng)
        w = np.tile(base, (n // 256 + 1, 1))[:n]
        x1 = rng.standard_normal((1, k)).astype(np.float32)
        res = {}
        for threads in (1, 2):
            _native.set_num_threads(threads)
            tm = best_time(lambda: _native.matmul(w, int(t), n, k, x1, isa=isa), 5)
            res[threads] = w.nbytes / tm / 1e9
        # prefill: M=512 against a 2048 x K slice of the same weights
        _native.set_num_threads(2)
        np_rows = min(2048, n)
        xp = rng.standard_normal((512, k)).astype(np.float32)
        tp = best_time(lambda: _native.matmul(w[:np_rows], int(t), np_rows, k, xp, isa=isa), 2, 0.2)
        gflops = 2 * 512 * np_rows * k / tp / 1e9
        print(f"{name:8} {res[1]:15.1f} {100 * res[1] / bw[1]:4.0f}% {res[2]:15.1f} {100 * res[2] / bw[2]:4.0f}% "
              f"{gflops:17.1f}", flush=True)


if __name__ == "__main__":
    main()
