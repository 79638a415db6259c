"""A small stand-in for the Hugging Face Hub over HTTP, enough for the real
huggingface_hub client (HF_ENDPOINT pointed at it): the file listing of a repository
(GET /api/models/{repo}/tree/{revision}, as list_repo_files asks it), and its files
(HEAD and GET /{repo}/resolve/{revision}/{path}) with the headers the client checks:
X-Repo-Commit, ETag (X-Linked-Etag), X-Linked-Size / Content-Length, Accept-Ranges,
and Range requests answered 206. Unknown repositories are 404 with the Hub's
X-Error-Code. Plain URLs under /files/ serve the same files (for --model-url).

`slow`: the named files are sent a MiB at a time with a pause before each (a download
that is still running when a test wants it to be).

`cut_first_get`: the first GET of each file named in it sends only that many bytes and
drops the connection, so the client must resume it with a Range request."""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

from .http_thread import get_head_handler, serve, stop

COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, dict[str, Path | bytes]], cut_first_get: dict[str, int] | None = None,
                 slow: dict[str, float] | None = None):
        self.repos = repos
        self.cut = dict(cut_first_get or {})
        self.slow = dict(slow or {})   # file -> seconds to wait before each MiB of it
        self.requests: list[tuple[str, str, str]] = []   # (method, path, Range header)
        self._etags: dict[tuple[str, str], str] = {}
        self.server = serve(get_head_handler(lambda h, head: self._serve(h, head=head)))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        stop(self.server)

    # -- content ---------------------------------------------------------------------
    def _size(self, data: Path | bytes) -> int:
        return data.stat().st_size if isinstance(data, Path) else len(data)

    def etag(self, repo: str, path: str) -> str:
        key = (repo, path)
        if key not in self._etags:
            data = self.repos[repo][path]
            h = hashlib.sha256()
            if isinstance(data, Path):
                with open(data, "rb") as f:
                    while chunk := f.read(1 << 22):
                        h.update(chunk)
            else:
                h.update(data)
            self._etags[key] = h.hexdigest()
        return self._etags[key]

    def _tree(self, repo: str) -> list[dict]:
        out = []
        for path, data in self.repos[repo].items():
            size = self._size(data)
            entry = {"type": "file", "oid": hashlib.sha1(path.encode()).hexdigest(), "size": size, "path": path}
            if path.endswith(".gguf"):
                entry["lfs"] = {"oid": self.etag(repo, path), "size": size, "pointerSize": 134}
            out.append(entry)
        return out

    # -- HTTP ---------------------------------------------------------------------------
    def _serve(self, h: BaseHTTPRequestHandler, head: bool) -> None:
        path = h.path.split("?", 1)[0]
        self.requests.append((h.command, path, h.headers.get("Range", "")))
        m = re.match(r"^/api/models/([^/]+/[^/]+)/tree/([^/]+)$", path)
        if m:
            if m.group(1) not in self.repos:
                return self._error(h, 404, "RepoNotFound", "Repository not found")
            body = json.dumps(self._tree(m.group(1))).encode()
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            if not head:
                h.wfile.write(body)
            return
        m = re.match(r"^/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        if m:
            repo, file = m.group(1), m.group(3)
            if repo not in self.repos:
                return self._error(h, 404, "RepoNotFound", "Repository not found")
            if file not in self.repos[repo]:
                return self._error(h, 404, "EntryNotFound", "Entry not found", commit=True)
            return self._file(h, head, repo, file, hub_headers=True)
        m = re.match(r"^/files/([^/]+/[^/]+)/(.+)$", path)
        if m and m.group(1) in self.repos and m.group(2) in self.repos[m.group(1)]:
            return self._file(h, head, m.group(1), m.group(2), hub_headers=False)
        self._error(h, 404, "EntryNotFound", "not found")

    def _error(self, h, code: int, kind: str, message: str, commit: bool = False) -> None:
        body = json.dumps({"error": message}).encode()
        h.send_response(code)
        h.send_header("X-Error-Code", kind)
        h.send_header("X-Error-Message", message)
        if commit:
            h.send_header("X-Repo-Commit", COMMIT)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _file(self, h, head: bool, repo: str, file: str, hub_headers: bool) -> None:
        data = self.repos[repo][file]
        size = self._size(data)
        etag = f'"{self.etag(repo, file)}"'
        start = 0
        rng = h.headers.get("Range", "")
        m = re.match(r"bytes=(\d+)-$", rng)
        if m and not head:
            start = int(m.group(1))
        h.send_response(206 if start else 200)
        if hub_headers:
            h.send_header("X-Repo-Commit", COMMIT)
            h.send_header("X-Linked-Etag", etag)
            h.send_header("X-Linked-Size", str(size))
        h.send_header("ETag", etag)
        h.send_header("Accept-Ranges", "bytes")
        h.send_header("Content-Type", "application/octet-stream")
        h.send_header("Content-Length", str(size - start))
        if start:
            h.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        h.end_headers()
        if head:
            return
        limit = None
        if file in self.cut and not start:
            limit = self.cut.pop(file)
        sent = start
        if isinstance(data, bytes):
            chunk = data[start:] if limit is None else data[start:limit]
            h.wfile.write(chunk)
        else:
            with open(data, "rb") as f:
                f.seek(start)
                while True:
                    want = 1 << 20 if limit is None else min(1 << 20, limit - sent)
                    if want <= 0:
                        break
                    chunk = f.read(want)
                    if not chunk:
                        break
                    if file in self.slow:
                        time.sleep(self.slow[file])
                    h.wfile.write(chunk)
                    sent += len(chunk)
        if limit is not None:  # drop the connection mid-file
            h.wfile.flush()
            h.close_connection = True
            try:
                h.connection.shutdown(2)
            except OSError:
                pass


def env_for(hub: FakeHub, cache: Path) -> dict[str, str]:
    """The environment that points huggingface_hub (in a child process) at `hub` and `cache`."""
    return {"HF_ENDPOINT": hub.url, "HF_HUB_CACHE": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1",
            **({"HOME": os.environ["HOME"]} if "HOME" in os.environ else {})}
