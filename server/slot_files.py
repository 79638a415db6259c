"""POST /slots/{id}?action=save|restore|erase: where slot files live (--slot-save-path)
and how a request runs a slot action on the engine.

A file name is accepted as llama-server's fs_validate_filename accepts it (one name,
no separators, no "..", no control or look-alike characters). On top of that a file
is only ever read from inside the directory (a symlink that leads out of it is
refused) and only ever written as a new file moved into place (a symlink there is
replaced, never followed: nothing outside the directory is written)."""

from __future__ import annotations

import os
import queue
import stat
import tempfile

from pyllama.engine import ErrorEvent, FinalEvent, SlotAction
from pyllama.engine.bridge import Channel
from pyllama.errors import PyllamaError

from .errors import api_error, bad_request

POLL_S = 0.25

# codepoints llama-server refuses in a file name besides separators and control characters
_FORBIDDEN = {0xFF0E, 0x2215, 0x2216, 0xFFFD, 0xFEFF} | {ord(c) for c in ':*?"<>|'}


def valid_filename(name: str) -> bool:
    """llama-server's fs_validate_filename (no sub-directories)."""
    if not name or len(name.encode("utf-8", "surrogatepass")) > 255:
        return False
    for ch in name:
        c = ord(ch)
        if c <= 0x1F or c == 0x7F or 0x80 <= c <= 0x9F or 0xD800 <= c <= 0xDFFF or c in _FORBIDDEN:
            return False
        if ch in "/\\":
            return False
    if name[0] == " " or name[-1] == " " or name[-1] == ".":
        return False
    return ".." not in name and name != "."


def read(directory: str, filename: str, limit: int) -> bytes:
    """The bytes of a slot file inside `directory` (at most `limit`); a 400 naming the
    problem otherwise."""
    real_dir = os.path.realpath(directory)
    real = os.path.realpath(os.path.join(real_dir, filename))
    if real == real_dir or os.path.commonpath([real, real_dir]) != real_dir:
        raise bad_request(f"slot file '{filename}' leads outside the slot directory")
    try:
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        raise bad_request(f"slot file '{filename}' does not exist") from None
    except OSError as e:
        raise bad_request(f"slot file '{filename}' cannot be read: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise bad_request(f"slot file '{filename}' is not a regular file")
        if st.st_size > limit:
            raise bad_request(f"slot file '{filename}' is too large for a slot of this server "
                              f"({st.st_size} bytes, at most {limit})")
        chunks, left = [], st.st_size + 1
        while left > 0:
            b = os.read(fd, min(left, 16 << 20))
            if not b:
                break
            chunks.append(b)
            left -= len(b)
        return b"".join(chunks)
    finally:
        os.close(fd)


def write(directory: str, filename: str, data: bytes) -> None:
    """Write the file atomically: a new temporary file in the directory, moved over the name."""
    os.makedirs(directory, exist_ok=True)
    real_dir = os.path.realpath(directory)
    target = os.path.join(real_dir, filename)
    if os.path.isdir(target) and not os.path.islink(target):
        raise bad_request(f"slot file '{filename}' is a directory")
    fd, tmp = tempfile.mkstemp(dir=real_dir, prefix=".slot-", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def run_action(engine, action: str, id_slot: int, state=None, gone=lambda: False):
    """Submit a slot action and wait for its result (the slot may be busy: it waits
    for the slot); an ApiError for what the engine refused."""
    channel = Channel()
    a = SlotAction(action, id_slot, channel.deliver, state)
    try:
        engine.submit_action(a)
    except PyllamaError as e:
        raise api_error(e) from None
    try:
        while True:
            try:
                ev = channel.get(timeout=POLL_S)
            except queue.Empty:
                if gone():
                    from .generation import ClientGone
                    raise ClientGone() from None
                if engine.failure is not None:
                    raise api_error(engine.stopped_error()) from None
                continue
            if isinstance(ev, ErrorEvent):
                raise api_error(ev.error)
            if isinstance(ev, FinalEvent):
                return ev.result
    finally:
        engine.cancel(a)


__all__ = ["read", "run_action", "valid_filename", "write"]
