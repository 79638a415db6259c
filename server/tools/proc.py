"""Child processes for the tools and the MCP servers, driven from greenlets.

A child is started with the original (unpatched) `os.posix_spawnp` in a process
group of its own, its pipes are read and written through the gevent loop
(non-blocking fds, `gevent.os.nb_read`), and it is reaped with the original
`os.waitpid` polled with WNOHANG. So a child never blocks the loop, whatever it
prints, and no gevent child watcher is created: libev's SIGCHLD handler would
otherwise reap the router's model servers behind its back (router/instances.py
waits for those the same way).

Every live child's process group is remembered: kill_all() (at shutdown and at
exit) kills them, grandchildren included, so none outlives the server."""

from __future__ import annotations

import atexit
import codecs
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

import gevent
from gevent import os as gos

from pyllama.unpatched import original

READ_CHUNK = 64 * 1024
_live: dict[int, "Child"] = {}  # pid (= its process group) -> child, while it runs

# `cd` in the child itself: posix_spawn has no working-directory action
_CD = 'cd "$1" || exit 127; shift; exec "$@"'


class Child:
    """A spawned process: its pid (also its process group) and the parent's pipe ends (-1: none)."""

    def __init__(self, pid: int, stdin: int, stdout: int, stderr: int):
        self.pid, self.stdin, self.stdout, self.stderr = pid, stdin, stdout, stderr
        self.exit_code: int | None = None  # once reaped: the code, 1 when killed by a signal, -1 unknown
        _live[pid] = self
        # gevent's SIGCHLD handling may reap any child of the process (libev's waitpid(-1)) before
        # our own waitpid: a child watcher, started before anything yields, keeps its status
        self._watch = None
        try:
            loop = gevent.get_hub().loop
            if loop.default:
                self._watch = loop.child(pid, False)
                self._watch.start(_ignore)
        except Exception:  # noqa: BLE001 - no child watchers here: waitpid alone
            self._watch = None

    def kill(self) -> None:
        """SIGKILL the child's whole process group (a no-op once it is reaped)."""
        if self.exit_code is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass

    def poll(self) -> int | None:
        if self.exit_code is not None:
            return self.exit_code
        try:
            done, status = original("os", "waitpid")(self.pid, os.WNOHANG)
        except ChildProcessError:  # reaped by gevent's loop (its watcher has the status), or by someone else
            watch = self._watch
            done, status = self.pid, (watch.rstatus if watch is not None and watch.rpid == self.pid else -1)
        if not done:
            return None
        if status == -1:
            self.exit_code = -1
        else:
            # as llama-server (subprocess.h): a child killed by a signal exits with EXIT_FAILURE
            self.exit_code = os.WEXITSTATUS(status) if os.WIFEXITED(status) else 1
        # the group may still hold grandchildren that held on to nothing we read; end them too
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        _live.pop(self.pid, None)
        if self._watch is not None:
            self._watch.stop()
            self._watch = None
        return self.exit_code

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code, polling cooperatively; None if still running after `timeout` s."""
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = 0.001
        while self.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                return None
            gevent.sleep(delay)
            delay = min(delay * 2, 0.05)
        return self.exit_code

    def close_stdin(self) -> None:
        if self.stdin >= 0:
            _close(self.stdin)
            self.stdin = -1

    def close(self) -> None:
        """Kill, reap, close the pipes. Never blocks for long: a SIGKILLed child ends at once."""
        self.kill()
        self.wait(5.0)
        for name in ("stdin", "stdout", "stderr"):
            fd = getattr(self, name)
            if fd >= 0:
                _close(fd)
                setattr(self, name, -1)


def _ignore() -> None:
    """A child watcher's callback: only its recorded status matters."""


def _os_close(fd: int) -> None:
    """Close at once. gevent's patched os.close (>= 25.8) defers the close to the loop's next
    turn: the child's end of a pipe would stay open in the parent while we wait on the loop
    for the end of file that only its close can bring."""
    try:
        original("os", "close")(fd)
    except OSError:
        pass


def _close(fd: int) -> None:
    # tell the loop first (no greenlet waits on fd by now): libev must forget the fd before
    # a new pipe can get its number
    try:
        gevent.get_hub().loop.closing_fd(fd)
    except Exception:  # noqa: BLE001 - an older loop without it
        pass
    _os_close(fd)


def spawn(argv: list[str], *, cwd: str = "", env: dict[str, str] | None = None,
          stderr: str = "stdout") -> Child:
    """Start argv (argv[0] searched on PATH) with piped stdin/stdout; stderr: "stdout"
    (merged), "pipe" or "null". OSError when it cannot be started."""
    if cwd:
        argv = ["sh", "-c", _CD, "sh", cwd, *argv]
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r = err_w = -1
    actions = [(os.POSIX_SPAWN_DUP2, in_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1)]
    if stderr == "stdout":
        actions.append((os.POSIX_SPAWN_DUP2, out_w, 2))
    elif stderr == "pipe":
        err_r, err_w = os.pipe()
        actions.append((os.POSIX_SPAWN_DUP2, err_w, 2))
    else:
        actions.append((os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0))
    try:
        pid = original("os", "posix_spawnp")(argv[0], argv, dict(os.environ if env is None else env),
                                             file_actions=actions, setpgroup=0)
    except BaseException:
        for fd in (in_w, out_r, err_r):
            if fd >= 0:
                _os_close(fd)
        raise
    finally:
        for fd in (in_r, out_w, err_w):  # the child's ends
            if fd >= 0:
                _os_close(fd)
    for fd in (in_w, out_r, err_r):
        if fd >= 0:
            gos.make_nonblocking(fd)
    return Child(pid, in_w, out_r, err_r)


def write_all(fd: int, data: bytes) -> bool:
    """Write every byte through the loop; False when the reader is gone."""
    view = memoryview(data)
    while view:
        try:
            n = gos.nb_write(fd, view)
        except OSError:
            return False
        view = view[n:]
    return True


@dataclass
class ExecResult:
    output: str           # the kept output as text (invalid UTF-8 replaced), "[output truncated]" noted
    exit_code: int = -1
    timed_out: bool = False
    raw: bytes = b""      # the kept output's bytes, as the child wrote them


def run(argv: list[str], *, max_output: int, timeout: float, cwd: str = "",
        on_chunk: Callable[[str], bool] | None = None, combine_stderr: bool = True,
        stdin_data: bytes | None = None) -> ExecResult:
    """Run argv to its end (or `timeout` s, then its process group is killed), keeping
    the first `max_output` bytes of its output (the rest is read and dropped, so the
    child never blocks on a full pipe). on_chunk gets each kept piece as it arrives;
    returning False kills the child (the client went away). Never raises for the
    child's sake: a start failure is the output "failed to spawn process"."""
    if cwd and not os.path.isdir(cwd):
        return ExecResult("failed to spawn process")
    try:
        child = spawn(argv, cwd=cwd, stderr="stdout" if combine_stderr else "null")
    except OSError:
        return ExecResult("failed to spawn process")
    timed_out = []

    def on_timeout() -> None:
        timed_out.append(True)
        child.kill()

    watchdog = gevent.spawn_later(max(timeout, 0.0), on_timeout)
    feeder = None
    if stdin_data:
        def feed() -> None:
            write_all(child.stdin, stdin_data)
            child.close_stdin()
        feeder = gevent.spawn(feed)
    else:
        child.close_stdin()  # a child reading stdin must see its end, never wait on us
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    kept = bytearray()
    truncated = False
    reads = 0
    try:
        # the backstop: a grandchild that left the group may hold the pipe open past the kill
        with gevent.Timeout(max(timeout, 0.0) + 5, False):
            while True:
                try:
                    data = gos.nb_read(child.stdout, READ_CHUNK)
                except OSError:
                    break
                if not data:
                    break
                reads += 1
                if reads % 8 == 0:
                    gevent.sleep(0)  # a child that always has output must not hold the loop
                if truncated:
                    continue
                room = max_output - len(kept)
                piece = data if len(data) <= room else data[:room]
                truncated = len(data) > room
                kept += piece
                if on_chunk is not None and piece:
                    if not on_chunk(decoder.decode(piece)):
                        child.kill()
                        break
        child.wait(max(timeout, 0.0) + 5)
    finally:
        watchdog.kill()
        if feeder is not None:
            feeder.kill()
        child.close()
    text = bytes(kept).decode("utf-8", errors="replace")
    if truncated:
        text += "\n[output truncated]"
    return ExecResult(text, child.exit_code if child.exit_code is not None else -1, bool(timed_out), bytes(kept))


def kill_all(keep: tuple[int, ...] = ()) -> None:
    """Kill every child still running (their process groups) but those in `keep`, from any thread."""
    for pid in list(_live):
        if pid in keep:
            continue
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


atexit.register(kill_all)
