"""A model downloaded from a URL (llama-server's -mu / --model-url) into the model
cache, as llama.cpp does it: the file is named by the URL's last path component;
its ETag is kept beside it (`<file>.etag`), so a later start reuses the file unless
the server now has another one; a download in progress lives in
`<file>.downloadInProgress` and is resumed with a Range request (when the server
accepts ranges) after a broken connection or on the next start. Offline, only the
cached file is used. Plain HTTP(S) through urllib: proxies from the environment apply."""

from __future__ import annotations

import fcntl
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from .errors import ModelLoadError
from .hf_hub import ByteProgress

ATTEMPTS = 3
CHUNK = 1 << 20
TIMEOUT_S = 60.0


def cached_path(url: str, cache: Path) -> Path:
    name = urllib.parse.urlsplit(url).path.rstrip("/").rsplit("/", 1)[-1]
    name = urllib.parse.unquote(name)
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ModelLoadError(f"--model-url {url}: the URL names no file")
    return cache / name


def download(url: str, cache: Path, *, offline: bool = False, token: str | None = None,
             progress: ByteProgress | None = None, name: str = "") -> Path:
    """The cached file of `url` (named `name`, else after the URL), downloaded first when
    needed. ModelLoadError in one line."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ModelLoadError(f"--model-url {url}: only http and https URLs are supported")
    path = cache / name if name else cached_path(url, cache)
    if offline:
        if not path.exists():
            raise ModelLoadError(f"--model-url {url}: {path} is not in the cache (offline mode)")
        return path
    try:
        cache.mkdir(parents=True, exist_ok=True)
        lock = open(cache / f".{path.name}.lock", "a+b")
    except OSError as e:
        raise ModelLoadError(f"--model-url {url}: the model cache {cache} is not writable ({e.strerror or e})") \
            from None
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two servers on one cache: one downloads, the other waits
        return _fetch(url, path, token, progress)


class _KeepCredentialsHome(urllib.request.HTTPRedirectHandler):
    """Redirects are followed, but the token is not sent on to another host (a registry's
    or the Hub's download redirects to a CDN with a signed URL, which refuses a second
    authorization)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and urllib.parse.urlsplit(newurl).netloc != urllib.parse.urlsplit(req.full_url).netloc:
            new.remove_header("Authorization")
        return new


_opener = urllib.request.build_opener(_KeepCredentialsHome)


def open_url(req: urllib.request.Request):
    """urlopen with the timeout, and without sending the token to another host a redirect names."""
    return _opener.open(req, timeout=TIMEOUT_S)


def _headers(token: str | None) -> dict:
    h = {"User-Agent": "pyllama"}
    if token:
        h["Authorization"] = f"Bearer {token}"
    return h


def _fetch(url: str, path: Path, token: str | None, progress: ByteProgress | None) -> Path:
    etag_file = path.with_name(path.name + ".etag")
    try:
        with open_url(urllib.request.Request(url, method="HEAD", headers=_headers(token))) as head:
            etag = head.headers.get("ETag", "")
            total = _int(head.headers.get("Content-Length"))
            ranges = head.headers.get("Accept-Ranges", "none") != "none"
    except (urllib.error.URLError, OSError) as e:
        if path.exists():
            return path  # the server cannot be reached: the cached file serves, as in llama.cpp
        raise ModelLoadError(f"--model-url {url}: {reason(e)}") from None
    if path.exists():
        if not etag or (etag_file.exists() and etag_file.read_text().strip() == etag):
            return path
        path.unlink()  # the server has another file now
    partial = path.with_name(path.name + ".downloadInProgress")
    error = "no attempt"
    for attempt in range(ATTEMPTS):
        if attempt:
            time.sleep(2 ** attempt)
        if partial.exists() and not ranges:
            partial.unlink()
        have = partial.stat().st_size if partial.exists() else 0
        try:
            _pull(url, partial, have, total, token, progress)
        except (urllib.error.URLError, OSError, ValueError) as e:
            error = reason(e)
            continue
        if total is not None and partial.stat().st_size != total:
            error = f"got {partial.stat().st_size} bytes of {total}"
            continue
        os.replace(partial, path)
        if etag:
            etag_file.write_text(etag)
        return path
    raise ModelLoadError(f"--model-url {url}: download failed after {ATTEMPTS} attempts ({error})")


def _pull(url: str, partial: Path, have: int, total: int | None, token: str | None,
          progress: ByteProgress | None) -> None:
    headers = _headers(token)
    if have:
        headers["Range"] = f"bytes={have}-"
    with open_url(urllib.request.Request(url, headers=headers)) as resp:
        if have and resp.status != 206:
            have = 0  # the server sent the whole file again
        with open(partial, "ab" if have else "wb") as out:
            done = have
            if progress:
                progress(partial.name[:-len(".downloadInProgress")], done, total)
            while chunk := resp.read(CHUNK):
                out.write(chunk)
                done += len(chunk)
                if progress:
                    progress(partial.name[:-len(".downloadInProgress")], done, total)


def _int(v: str | None) -> int | None:
    try:
        return int(v) if v is not None else None
    except ValueError:
        return None


def reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.HTTPError):
        return f"HTTP {e.code} {e.reason}"
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return " ".join(str(e).split()) or type(e).__name__
