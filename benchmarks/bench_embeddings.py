"""Embeddings per second for all-MiniLM-L6-v2 (F16) on short sentences, batch by batch,
pyllama-server against llama-server: both started here on free ports with the same
flags (`-m MODEL --embedding -t 2 -np 4`; -np 4 is llama-server's default), both asked
the same batches over /v1/embeddings by the same client, alternately (the order flips
every round) so that both see the same load on a shared machine. Reports, per batch
size, the median rate of each over the rounds and the median of the per-round ratios.

    python benchmarks/bench_embeddings.py --peer-bin /work/peer/build/bin/llama-server \\
        [-m MODEL] [-t 2] [-np 4] [-b 1 8 32 64] [--rounds 5] [--seconds 3]

--peer-url uses a llama-server already running instead; without either only pyllama is
measured. --library measures Llama.embed in-process (tokenize, one forward pass over the
batch, mean pooling, euclidean norm) instead of pyllama-server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

WORDS = ("the cat dog bird sits runs on under a mat rug sofa quickly slowly today red small large old new "
         "house garden river city near far happy quiet bright dark").split()


def sentences(n: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 12))).capitalize() + "." for _ in range(n)]


def rate(fn, batch: list[str], seconds: float) -> float:
    fn(batch)  # warm-up
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0)


class Client:
    """/v1/embeddings over one kept-alive connection (reopened when the server closes it)."""

    def __init__(self, url: str):
        u = urllib.parse.urlsplit(url)
        self.host, self.port = u.hostname, u.port or 80
        self.conn: http.client.HTTPConnection | None = None

    def __call__(self, batch: list[str]) -> None:
        body = json.dumps({"input": batch, "model": "x"}).encode()
        for attempt in (0, 1):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
            try:
                self.conn.request("POST", "/v1/embeddings", body, {"Content-Type": "application/json"})
                r = self.conn.getresponse()
                data = r.read()
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
                continue
            if r.status != 200:
                raise RuntimeError(f"HTTP {r.status}: {data[:300]!r}")
            assert len(json.loads(data)["data"]) == len(batch)
            if r.getheader("Connection", "").lower() == "close":
                self.conn.close()
                self.conn = None
            return


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(cmd: list[str], port: int, log_path: Path, limit: float = 120.0) -> subprocess.Popen:
    # from a temporary directory: from the checkout, `python -m` would import the source tree
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=tempfile.gettempdir(), stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[0]} exited; see {log_path}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return proc
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    raise TimeoutError(f"{cmd[0]} not ready after {limit:.0f} s; see {log_path}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def default_model() -> str:
    shared = Path(os.environ["PYLLAMA_SHARED"]) if os.environ.get("PYLLAMA_SHARED") else \
        Path(__file__).resolve().parents[2] / "shared"
    return str(shared / "models" / "all-MiniLM-L6-v2-f16.gguf")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-m", "--model", default=default_model())
    ap.add_argument("-t", "--threads", type=int, default=2)
    ap.add_argument("-np", "--parallel", type=int, default=4, help="slots of both servers")
    ap.add_argument("-b", "--batches", type=int, nargs="*", default=[1, 8, 32, 64])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    peer = ap.add_mutually_exclusive_group()
    peer.add_argument("--peer-bin", help="a llama-server binary to start the same way")
    peer.add_argument("--peer-url", help="a running llama-server --embedding, e.g. http://127.0.0.1:8080")
    ap.add_argument("--library", action="store_true", help="pyllama in-process (Llama.embed), not pyllama-server")
    ap.add_argument("--logs", default=tempfile.gettempdir(), help="where the servers' logs go")
    args = ap.parse_args()

    flags = ["-m", args.model, "--embedding", "-t", str(args.threads), "-np", str(args.parallel)]
    procs: list[subprocess.Popen] = []
    try:
        if args.library:
            from pyllama import Llama

            llm = Llama(args.model, embedding=True, n_threads=args.threads)
            ours = llm.embed
        else:
            port = free_port()
            procs.append(start_server([sys.executable, "-m", "pyllama.server.cli", *flags, "--port", str(port)],
                                      port, Path(args.logs) / "bench-embeddings-pyllama.log"))
            ours = Client(f"http://127.0.0.1:{port}")
        theirs = None
        if args.peer_bin:
            port = free_port()
            procs.append(start_server([args.peer_bin, *flags, "--port", str(port), "--host", "127.0.0.1"],
                                      port, Path(args.logs) / "bench-embeddings-llama-server.log"))
            theirs = Client(f"http://127.0.0.1:{port}")
        elif args.peer_url:
            theirs = Client(args.peer_url)

        rates: dict[int, tuple[list[float], list[float]]] = {b: ([], []) for b in args.batches}
        for rnd in range(args.rounds):
            for size in args.batches:
                batch = sentences(size, seed=size)
                pair = [(0, ours)] + ([(1, theirs)] if theirs else [])
                for side, fn in (pair if rnd % 2 == 0 else pair[::-1]):
                    rates[size][side].append(rate(fn, batch, args.seconds))
                line = f"round {rnd + 1}/{args.rounds} batch {size}: pyllama {rates[size][0][-1]:.1f}"
                if theirs:
                    line += f" llama-server {rates[size][1][-1]:.1f} emb/s"
                print(line, file=sys.stderr, flush=True)
    finally:
        for p in procs:
            stop(p)

    what = "pyllama (library)" if args.library else "pyllama-server"
    print(f"{Path(args.model).name}, {'Llama.embed' if args.library else '/v1/embeddings'}, "
          f"-t {args.threads} -np {args.parallel}, "
          f"{args.rounds} rounds x {args.seconds:g} s, medians")
    print(f"| batch | {what} emb/s{' | llama-server emb/s | ratio' if theirs else ''} |")
    print(f"| --- | ---{' | --- | ---' if theirs else ''} |")
    for size in args.batches:
        mine, peer = rates[size]
        row = f"| {size} | {statistics.median(mine):.1f}"
        if theirs:
            ratio = statistics.median(a / b for a, b in zip(mine, peer))
            row += f" | {statistics.median(peer):.1f} | {ratio:.2f}"
        print(row + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
