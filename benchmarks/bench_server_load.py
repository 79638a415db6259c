"""Load generator for any OpenAI-compatible server: N concurrent clients stream
/v1/chat/completions for T seconds, each starting a new request as soon as the
last one ends. Reports aggregate generated tokens/s, time to first token and
inter-token latency (p50 / p99).

    python benchmarks/bench_server_load.py --url http://127.0.0.1:8080 -c 4 -t 60 [--max-tokens 128]

Start the server first, e.g. `pyllama-server -m smollm2-135m -c 8192 -np 4 -t 2` (or
llama-server with the same flags); run both the same way to compare.
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time

import requests

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle stays upright.",
    "List some facts about the Moon.",
    "Describe a busy market in the morning.",
]


def client(url: str, idx: int, stop_at: float, max_tokens: int, out: dict, lock: threading.Lock) -> None:
    n = 0
    while time.monotonic() < stop_at:
        body = {"model": "x", "messages": [{"role": "user", "content": PROMPTS[(idx + n) % len(PROMPTS)]}],
                "max_tokens": max_tokens, "stream": True, "temperature": 0.8, "seed": idx * 1000 + n}
        n += 1
        t0 = time.monotonic()
        last = None
        ttft = None
        gaps = []
        tokens = 0
        with requests.post(url + "/v1/chat/completions", json=body, stream=True, timeout=600) as r:
            for line in r.iter_lines():
                if not line.startswith(b"data: ") or line == b"data: [DONE]":
                    continue
                ev = json.loads(line[6:])
                if not ev.get("choices") or not ev["choices"][0].get("delta", {}).get("content"):
                    continue
                now = time.monotonic()
                if ttft is None:
                    ttft = now - t0
                else:
                    gaps.append(now - last)
                last = now
                tokens += 1
                if now > stop_at + 60:
                    break
        with lock:
            if ttft is not None:
                out["ttft"].append(ttft)
            out["gaps"].extend(gaps)
            out["tokens"] += tokens
            out["requests"] += 1


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("-c", "--clients", type=int, default=4)
    ap.add_argument("-t", "--seconds", type=float, default=60)
    ap.add_argument("--max-tokens", type=int, default=128)
    a = ap.parse_args()
    out = {"ttft": [], "gaps": [], "tokens": 0, "requests": 0}
    lock = threading.Lock()
    t0 = time.monotonic()
    stop_at = t0 + a.seconds
    threads = [threading.Thread(target=client, args=(a.url, i, stop_at, a.max_tokens, out, lock))
               for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - t0
    print(f"{a.url}: {a.clients} clients, {wall:.1f} s, {out['requests']} requests")
    print(f"aggregate: {out['tokens'] / wall:.1f} tokens/s")
    print(f"TTFT p50 {1000 * pct(out['ttft'], 0.5):.0f} ms  p99 {1000 * pct(out['ttft'], 0.99):.0f} ms")
    print(f"inter-token p50 {1000 * pct(out['gaps'], 0.5):.1f} ms  p99 {1000 * pct(out['gaps'], 0.99):.1f} ms")
    if out["ttft"]:
        print(f"(mean TTFT {1000 * statistics.mean(out['ttft']):.0f} ms)")


if __name__ == "__main__":
    main()
