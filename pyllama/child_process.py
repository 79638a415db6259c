"""Run a child process from any thread, gevent-patched or not.

gevent's patched `subprocess` (and its patched `os.posix_spawn`) registers a
child watcher, which only the main thread's default loop supports: called from
the model loader's OS thread it fails with "child watchers are only available on
the default loop". So the child is started with the original `os.posix_spawn`,
its output goes to a file (no pipes, no selector), and it is waited for with the
original `os.waitpid` polled with WNOHANG, which lets the caller report progress
between polls and never blocks an event loop.

If something else reaps the child first (libev's SIGCHLD handler does so once a
gevent child watcher exists anywhere in the process), the exit status is lost:
`wait` then returns None and the caller judges by what the child left behind.
"""

from __future__ import annotations

import os
import time
from typing import Callable

from .unpatched import original


def spawn(argv: list[str], *, output: str, env: dict[str, str] | None = None) -> int:
    """Start argv[0] (a path) with stdin from /dev/null and stdout+stderr into the file `output`."""
    posix_spawn = original("os", "posix_spawn")
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_DUP2, 1, 2),
    ]
    return posix_spawn(argv[0], argv, dict(os.environ if env is None else env), file_actions=actions)


def wait(pid: int, *, poll: Callable[[], None] | None = None, interval: float = 0.25,
         timeout: float | None = None) -> int | None:
    """The child's exit code (negative: killed by that signal), calling `poll` every
    `interval` seconds while it runs; None if someone else reaped it. After `timeout`
    seconds the child is killed and TimeoutError raised."""
    waitpid = original("os", "waitpid")
    sleep = original("time", "sleep")
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            done, status = waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if done:
            return os.waitstatus_to_exitcode(status)
        if deadline is not None and time.monotonic() > deadline:
            kill(pid)
            raise TimeoutError(f"child process {pid} still running after {timeout:.0f} s")
        if poll is not None:
            poll()
        sleep(interval)


def kill(pid: int) -> None:
    """SIGKILL the child and reap it (no zombie left behind)."""
    import signal
    try:
        os.kill(pid, signal.SIGKILL)
        original("os", "waitpid")(pid, 0)
    except (ProcessLookupError, ChildProcessError):
        pass
