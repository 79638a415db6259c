"""The child side of router mode: a pyllama-server started by a router (which sets
PYLLAMA_ROUTER_PID) ends when the router does, however the router ended.

- PR_SET_PDEATHSIG: the kernel sends this process SIGKILL when its parent dies (Linux;
  the router starts children from its main thread, whose end is the process's end).
- The router holds the write end of a pipe on this process's stdin: end of file on
  stdin means the router is gone (any platform; also covers a router that died
  before prctl ran, which getppid() shows too)."""

from __future__ import annotations

import ctypes
import json
import os
import signal
import sys

from pyllama.unpatched import original

from .instances import CHILD_PREFIX, ROUTER_PID_ENV

PR_SET_PDEATHSIG = 1


def guard() -> None:
    """When started by a router: die with it. A no-op otherwise."""
    router = os.environ.get(ROUTER_PID_ENV)
    if not router:
        return
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if str(os.getppid()) != router:  # the router died before prctl: nobody will stop us
        os._exit(1)
    original("_thread", "start_new_thread")(_watch_stdin, ())


def report(**status) -> None:
    """Tell the router something about this server (`sleeping=True|False`): one line on the
    output it reads. A no-op when no router started this process."""
    if not os.environ.get(ROUTER_PID_ENV):
        return
    try:
        os.write(1, (CHILD_PREFIX + json.dumps(status) + "\n").encode())  # one write: never cut by a log line
    except OSError:
        pass


def _watch_stdin() -> None:
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(1)
