"""Kernel benchmark: matvec weight-read throughput per type against this machine's read
bandwidth (1 and 2 threads), and prefill matmul GFLOP/s at M=512.

    python benchmarks/bench_kernels.py [--types q4_0,q4_K,q8_0] [--isa avx2] [--mib 192]

The weight matrix is larger than the L3 cache, so matvec streams it from memory:
GB/s = weight bytes / time per matvec. Target (issue 2): Q4_0, Q4_K and Q8_0 at >= 70%
of the measured read bandwidth with 2 threads. Types with a packed (row-interleaved)
layout get a second line, "/pk", measured on the packed copy a loaded model reads.
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


def probe_buffer(mib: int) -> np.ndarray:
    return np.ones(mib * 2**20 // 8, dtype=np.uint64)


def matvec_and_bandwidth(fn, nbytes: int, probe: np.ndarray, rounds: int = 6) -> tuple[float, float]:
    """Best GB/s of fn and of the read probe, measured alternately so both see the
    same background load (memory bandwidth on a shared host drifts minute to minute)."""
    fn()
    best_fn = best_probe = float("inf")
    for _ in range(rounds):
        best_probe = min(best_probe, best_time(lambda: _native.read_probe(probe), 2, 0.05))
        best_fn = min(best_fn, best_time(fn, 2, 0.05))
    return nbytes / best_fn / 1e9, probe.nbytes / best_probe / 1e9


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
    probe = probe_buffer(args.mib)
    print(f"ISA {isa}; %bw = matvec GB/s / read-probe GB/s, the two measured alternately")
    print(f"{'type':8} {'matvec 1T GB/s':>15} {'%bw':>5} {'matvec 2T GB/s':>15} {'%bw':>5} "
          f"{'probe 2T':>9} {'pp512 GFLOP/s 2T':>17}")
    k = args.k
    for t in types:
        name, bs, ts, _ = type_info(t)
        row_bytes = ts * k // bs
        n = max(1, args.mib * 2**20 // row_bytes)
        # random rows are slow to build: tile one random block of rows
        base = random_rows(t, 256, k, rng)
        w = np.tile(base, (n // 256 + 1, 1))[:n]
        x1 = rng.standard_normal((1, k)).astype(np.float32)
        xp = rng.standard_normal((512, k)).astype(np.float32)
        np_rows = min(2048, n)
        variants = [(name, None, None)]
        packed = _native.pack_rows(w, int(t), n, k)
        if packed is not None:  # the layout a loaded model uses for this type
            variants.append((name + "/pk", packed, _native.pack_rows(w[:np_rows], int(t), np_rows, k)))
        for label, pk, pk_prefill in variants:
            res, bw = {}, {}
            for threads in (1, 2):
                _native.set_num_threads(threads)
                res[threads], bw[threads] = matvec_and_bandwidth(
                    lambda: _native.matmul(w, int(t), n, k, x1, packed=pk, isa=isa), w.nbytes, probe)
            # prefill: M=512 against a 2048 x K slice of the same weights
            _native.set_num_threads(2)
            tp = best_time(
                lambda: _native.matmul(w[:np_rows], int(t), np_rows, k, xp, packed=pk_prefill, isa=isa), 2, 0.2)
            gflops = 2 * 512 * np_rows * k / tp / 1e9
            print(f"{label:8} {res[1]:15.1f} {100 * res[1] / bw[1]:4.0f}% {res[2]:15.1f} "
                  f"{100 * res[2] / bw[2]:4.0f}% {bw[2]:9.1f} {gflops:17.1f}", flush=True)

if __name__ == "__main__":
    main()
