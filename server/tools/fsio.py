"""Where a tool's file operations and commands happen: ToolIO is the interface,
LocalIO the host (runtime.py has the isolates: containers, ssh). Methods are called
from the request's greenlet; LocalIO does its disk work on the tools' thread pool
and runs commands through proc.run (on the loop)."""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field

from . import proc
from .threads import in_thread

GIT_LS_FILES_MAX_OUTPUT = 8 * 1024 * 1024  # bytes
LIST_ENTRIES_TIMEOUT = 15                   # seconds, one listing (git or the walker)
# directories a listing reports but never descends into: they can be enormous
JUNK_DIR_NAMES = frozenset({".git", ".svn", ".hg", "node_modules", "__pycache__", ".venv", "venv", "dist",
                            "build", "target", ".cache", ".idea", ".vscode"})
# pyllama's bound on one file read into memory (llama-server reads any size on the host)
LOCAL_READ_MAX = 64 * 1024 * 1024

FILES, DIRS, ALL = "files", "dirs", "all"


@dataclass
class Listing:
    entries: list[tuple[str, bool]] = field(default_factory=list)  # ('/'-separated path relative to base, is_dir)
    err: str = ""             # set when base is not a directory
    truncated: bool = False   # the walk could not see everything (time budget, unreadable directory)


def entry_depth(rel: str) -> int:
    return 1 + rel.count("/")


class ToolIO:
    """The operations the tools need. Paths may be relative: resolve() joins them to the IO's cwd."""

    cwd: str = ""

    def resolve(self, path: str) -> str: ...
    def is_directory(self, path: str) -> bool: ...
    def is_regular_file(self, path: str) -> bool: ...
    def file_size(self, path: str) -> int | None: ...
    def read_file(self, path: str) -> bytes | None: ...
    def write_file(self, path: str, content: bytes) -> bool: ...
    def list_entries(self, base: str, max_depth: int, kind: str) -> Listing: ...

    def run(self, args: list[str], max_output: int, timeout: float, on_chunk=None) -> proc.ExecResult: ...


def expand_home(path: str) -> str:
    if not path.startswith("~") or (len(path) > 1 and path[1] not in "/\\"):
        return path
    home = os.environ.get("HOME", "")
    return home + path[1:] if home else path


class LocalIO(ToolIO):
    """The host, relative paths against `cwd` (else the server's working directory)."""

    def __init__(self, cwd: str = ""):
        self.cwd = cwd

    def resolve(self, path: str) -> str:
        p = expand_home(path)
        if not os.path.isabs(p):
            try:
                p = os.path.join(self.cwd or os.getcwd(), p)
            except OSError:
                return p
        return os.path.normpath(p)  # no "." or ".." reaches git or the client

    def is_directory(self, path: str) -> bool:
        return in_thread(os.path.isdir, self.resolve(path))

    def is_regular_file(self, path: str) -> bool:
        return in_thread(os.path.isfile, self.resolve(path))

    def file_size(self, path: str) -> int | None:
        def size(p: str) -> int | None:
            try:
                st = os.stat(p)
            except (OSError, ValueError):
                return None
            return st.st_size if stat.S_ISREG(st.st_mode) else None
        return in_thread(size, self.resolve(path))

    def read_file(self, path: str) -> bytes | None:
        return in_thread(read_local, self.resolve(path))

    def write_file(self, path: str, content: bytes) -> bool:
        def write(p: str) -> bool:
            try:
                parent = os.path.dirname(p)
                if parent:
                    os.makedirs(parent, exist_ok=True)
                with open(p, "wb") as f:
                    f.write(content)
                return True
            except (OSError, ValueError):
                return False
        return in_thread(write, self.resolve(path))

    def list_entries(self, base: str, max_depth: int, kind: str) -> Listing:
        if not in_thread(os.path.isdir, base):
            return Listing(err="path does not exist or is not a directory")
        deadline = time.monotonic() + LIST_ENTRIES_TIMEOUT
        if kind == FILES:  # git knows what is ignored; it cannot list directories
            res = self.run(["git", "-C", base, "ls-files", "--cached", "--others", "--exclude-standard"],
                           GIT_LS_FILES_MAX_OUTPUT, LIST_ENTRIES_TIMEOUT)
            if res.exit_code == 0 and not res.timed_out:
                lines = [ln.rstrip("\r").replace("\\", "/") for ln in res.output.split("\n")]
                lines = [ln for ln in lines if ln and (max_depth <= 0 or entry_depth(ln) <= max_depth)]
                return Listing(entries=in_thread(_existing_files, base, lines))
        return in_thread(walk, base, max_depth, kind, deadline)

    def run(self, args: list[str], max_output: int, timeout: float, on_chunk=None) -> proc.ExecResult:
        return proc.run(args, max_output=max_output, timeout=timeout, cwd=self.cwd, on_chunk=on_chunk)


def read_local(p: str) -> bytes | None:
    try:
        with open(p, "rb") as f:
            if os.fstat(f.fileno()).st_size > LOCAL_READ_MAX:
                return None
            data = f.read(LOCAL_READ_MAX + 1)
        return data if len(data) <= LOCAL_READ_MAX else None
    except (OSError, ValueError):
        return None


def _existing_files(base: str, rels: list[str]) -> list[tuple[str, bool]]:
    return [(r, False) for r in rels if os.path.isfile(os.path.join(base, r))]


def walk(base: str, max_depth: int, kind: str, deadline: float) -> Listing:
    """The listing without git: links are reported, never followed; junk directories
    are reported, never entered; stops (truncated) at the deadline."""
    out = Listing()
    stack: list[tuple[str, str, int]] = [(base, "", 0)]
    while stack:
        if time.monotonic() >= deadline:
            out.truncated = True
            return out
        directory, rel_dir, depth = stack.pop()
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except PermissionError:
            continue  # as std::filesystem's skip_permission_denied
        except OSError:
            out.truncated = True
            continue
        subdirs = []
        for e in entries:
            rel = f"{rel_dir}/{e.name}" if rel_dir else e.name
            try:
                is_dir = e.is_dir()
                is_file = not is_dir and e.is_file()
                is_link = e.is_symlink()
            except OSError:
                continue
            if is_dir:
                if kind in (DIRS, ALL):
                    out.entries.append((rel, True))
                if e.name in JUNK_DIR_NAMES or is_link:
                    continue
                if max_depth <= 0 or depth + 1 < max_depth:
                    subdirs.append((e.path, rel, depth + 1))
            elif is_file and kind in (FILES, ALL):
                out.entries.append((rel, False))
        stack.extend(reversed(subdirs))
    return out
