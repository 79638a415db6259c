"""The log never holds up requests: a reader that stops reading (a full pipe, a paused
terminal) costs log lines, counted, never /health or a completion."""

import os
import subprocess
import sys
import threading
import time

import requests

from helpers.server_process import RUN_DIR, free_port
from pyllama.server.log_writer import LogWriter


def test_a_stalled_reader_drops_lines_and_counts_them():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    writer = LogWriter(stream, max_queued=10)
    line = "x" * 1023 + "\n"
    t0 = time.monotonic()
    for _ in range(200):  # 200 KB: the pipe (64 KB) fills, the writer blocks, the queue fills
        writer.write(line)
    assert time.monotonic() - t0 < 1.0  # write() never waits for the reader
    assert writer.dropped > 0
    got = []
    reader = threading.Thread(target=lambda: got.append(os.read(r, 1 << 20)) or [got.append(b) for b in iter(lambda: os.read(r, 1 << 20), b"")])
    reader.start()
    assert writer.close(timeout=10)
    stream.close()
    reader.join(10)
    text = b"".join(got).decode()
    lines = text.splitlines()
    assert lines[-1] == f"{writer.dropped} log line(s) dropped: the log's reader was not keeping up"
    assert len(lines) - 1 + writer.dropped == 200
    assert writer.close() is True  # a second close is a no-op


def test_the_server_keeps_serving_while_nobody_reads_its_log(smollm2_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    # stdout is a pipe this test does not read until the end: every request's access-log
    # line goes into it, and the pipe holds 64 KB (about 700 lines)
    proc = subprocess.Popen([sys.executable, "-m", "pyllama.server.cli", "-m", str(smollm2_path), "--port", str(port),
                             "-c", "512", "-np", "1", "-t", "2"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            cwd=RUN_DIR)
    try:
        s = requests.Session()
        deadline = time.monotonic() + 120
        while True:
            try:
                if s.get(url + "/health", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            assert time.monotonic() < deadline, "server not ready"
            time.sleep(0.05)
        t0 = time.monotonic()
        for _ in range(3000):  # each answer within 5 s, not stuck behind a full pipe
            assert s.get(url + "/health?" + "p" * 200, timeout=5).status_code == 200
        out = s.post(url + "/completion", json={"prompt": "The capital of France is", "n_predict": 4,
                                                "temperature": 0}, timeout=60)
        assert out.status_code == 200 and out.json()["tokens_predicted"] == 4
        assert time.monotonic() - t0 < 120
    finally:
        proc.terminate()
        log = proc.communicate(timeout=30)[0].decode(errors="replace")
    assert proc.returncode == 0
    assert log.count("GET /health") > 2000  # the lines were kept (queued), not lost
    assert '"POST /completion HTTP/1.1" 200' in log
