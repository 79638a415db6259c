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


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process, all its threads (Linux /proc), or of this one."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(fn, batch: list[str], seconds: float, pid: int | None = None) -> tuple[float, float]:
    """(embeddings per second, CPU milliseconds per embedding of the process doing the work)."""
    fn(batch)  # warm-up
    n, t0, c0 = 0, time.perf_counter(), cpu_seconds(pid)
    while time.perf_counter() - t0 < seconds:
        fn(batch)
        n += len(batch)
    return n / (time.perf_counter() - t0), 1e3 * (cpu_seconds(pid) - c0) / n


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
        pids: list[int | None] = [None, None]  # whose CPU time is the work's (None: this process)
        if args.library:
            from pyllama import Llama

            llm = Llama(args.model, embedding=True, n_threads=args.threads)
            ours = llm.embed
        else:
            port = free_port()
            procs.append(start_server([sys.executable, "-m", "pyllama.server.cli", *flags, "--port", str(port)],
                                      port, Path(args.logs) / "bench-embeddings-pyllama.log"))
            ours, pids[0] = Client(f"http://127.0.0.1:{port}"), procs[-1].pid
        theirs = None
        if args.peer_bin:
            port = free_port()
            procs.append(start_server([args.peer_bin, *flags, "--port", str(port), "--host", "127.0.0.1"],
                                      port, Path(args.logs) / "bench-embeddings-llama-server.log"))
            theirs, pids[1] = Client(f"http://127.0.0.1:{port}"), procs[-1].pid
        elif args.peer_url:
            theirs = Client(args.peer_url)

        # per batch size and side: (emb/s, CPU ms per embedding) of every round
        runs: dict[int, tuple[list, list]] = {b: ([], []) for b in args.batches}
        for rnd in range(args.rounds):
            for size in args.batches:
                batch = sentences(size, seed=size)
                pair = [(0, ours)] + ([(1, theirs)] if theirs else [])
                for side, fn in (pair if rnd % 2 == 0 else pair[::-1]):
                    runs[size][side].append(rate(fn, batch, args.seconds, pids[side]))
                line = f"round {rnd + 1}/{args.rounds} batch {size}: pyllama {runs[size][0][-1][0]:.1f}"
                if theirs:
                    line += f" llama-server {runs[size][1][-1][0]:.1f}"
                print(line + " emb/s", file=sys.stderr, flush=True)
    finally:
        for p in procs:
            stop(p)

    what = "pyllama (library)" if args.library else "pyllama-server"
    cpu_peer = theirs is not None and pids[1] is not None
    print(f"{Path(args.model).name}, {'Llama.embed' if args.library else '/v1/embeddings'}, "
          f"-t {args.threads} -np {args.parallel}, {args.rounds} rounds x {args.seconds:g} s: medians over the "
          "rounds; ratio = median of the rounds' ratios; best = the best round; CPU = CPU ms per embedding")
    head = f"| batch | {what} emb/s"
    if theirs:
        head += " | llama-server emb/s | ratio | best: pyllama / llama-server"
    head += " | CPU ms: pyllama" + (" / llama-server" if cpu_peer else "") + " |"
    print(head)
    print("|" + " --- |" * (head.count("|") - 1))
    for size in args.batches:
        mine, peer = runs[size]
        row = f"| {size} | {statistics.median(r for r, _ in mine):.1f}"
        if theirs:
            ratio = statistics.median(a[0] / b[0] for a, b in zip(mine, peer))
            row += (f" | {statistics.median(r for r, _ in peer):.1f} | {ratio:.2f}"
                    f" | {max(r for r, _ in mine):.1f} / {max(r for r, _ in peer):.1f}")
        row += f" | {statistics.median(c for _, c in mine):.2f}"
        if cpu_peer:
            row += f" / {statistics.median(c for _, c in peer):.2f}"
        print(row + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
