"""The router's model servers: one child `pyllama-server` process per loaded model,
on a free port of 127.0.0.1, started with the model's flags (presets.py).

Lifecycle of a model: unloaded -> loading (spawned; its /health polled) -> loaded
(proxied to) -> unloaded (its process ended: asked to with SIGTERM, killed with
SIGKILL after the model's stop-timeout, or it exited by itself; a non-zero exit code
marks it failed). A request for a model that is not running waits in the queue for a
--models-max slot (sched.py), which gives up idle models, least recently used first;
POST /models/load unloads the least recently used idle model when none is free, and
is refused when every model is busy.

A model fetched with POST /models is an instance too, while its download runs:
downloading (a `fetch.py` child, which takes no --models-max room) -> downloaded (the
entry is replaced by the cache's at the next look at the model list); unloading it
cancels the download. Every change is an event for GET /models/sse (events.py).

A child never outlives the router:
- the router stops every child when it exits (SIGTERM/SIGINT, or the end of main);
- if the router dies without doing so (SIGKILL, a crash), each child notices at once:
  it asked the kernel for SIGKILL on its parent's death (PR_SET_PDEATHSIG, Linux),
  and it reads a pipe from the router on stdin, whose end of file means the router
  is gone (child.py, started by PYLLAMA_ROUTER_PID);
- each child leads its own process group, so stopping it reaches what it started
  (pip fetching a default model).

Everything here runs on the router's event loop (greenlets) except one OS thread
per child that copies its output into the router's log."""

from __future__ import annotations

import http.client
import json
import logging
import os
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable

from pyllama.unpatched import original

from .events import ModelEvents
from .fetch import PREFIX as FETCH_PREFIX
from .presets import ModelSpec, child_args
from .sched import LoadQueue

log = logging.getLogger("pyllama.server.router")

CHILD_HOST = "127.0.0.1"
POLL_S = 0.1
OUTPUT_DRAIN_S = 5.0    # how long an ended child's last lines may take to arrive
MAX_FETCH_FILES = 256   # files a download may report progress for
ROUTER_PID_ENV = "PYLLAMA_ROUTER_PID"
CHILD_PREFIX = "PYLLAMA_CHILD "  # a model server's word to its router, one JSON line on its output (child.report)
# LLAMA_ARG_* variables the router sets through flags: a child must not also read them
CHILD_ENV_DROP = ("LLAMA_ARG_MODEL", "LLAMA_ARG_HF_REPO", "LLAMA_ARG_HF_FILE", "LLAMA_ARG_MODEL_URL", "LLAMA_ARG_ALIAS",
                  "LLAMA_ARG_DOCKER_REPO", "LLAMA_ARG_HOST", "LLAMA_ARG_PORT", "LLAMA_ARG_MODELS_DIR",
                  "LLAMA_ARG_MODELS_PRESET", "LLAMA_ARG_MODELS_MAX", "LLAMA_ARG_MODELS_AUTOLOAD", "LLAMA_API_KEY",
                  "LLAMA_ARG_SSL_KEY_FILE", "LLAMA_ARG_SSL_CERT_FILE")

UNLOADED, LOADING, LOADED = "unloaded", "loading", "loaded"
DOWNLOADING, DOWNLOADED = "downloading", "downloaded"
SLEEPING = "sleeping"  # shown for a loaded model whose server sleeps (never an Instance.status)
# llama-server's switch for its router tests: 2 s more in every load and in every
# proxied request (counted as busy meanwhile), so that requests overlap on cue
FAKE_TIMING_ENV = "LLAMA_SERVER_DEBUG_FAKE_TIMING"
FAKE_TIMING_S = 2.0


class ModelLimit(RuntimeError):
    """--models-max models run and none of them can be given up now."""


class Cancelled(RuntimeError):
    """The request's client went away while it waited for its model."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind((CHILD_HOST, 0))
        return s.getsockname()[1]


def _sleep(s: float) -> None:
    time.sleep(s)  # gevent's, under the router's patched event loop: other greenlets run meanwhile


@dataclass
class Instance:
    """One model and, while it runs, its server process."""

    spec: ModelSpec
    status: str = UNLOADED
    port: int = 0
    pid: int = 0
    args: list[str] = field(default_factory=list)
    exit_code: int = 0
    last_used: float = 0.0
    active: int = 0               # proxied requests in flight
    stopping: bool = False        # asked to stop (not a failure when it exits)
    info: dict = field(default_factory=dict)   # the child's /v1/models entry once loaded
    stdin_w: int = -1             # the router's end of the child's stdin pipe
    output: deque = field(default_factory=lambda: deque(maxlen=20))  # its last lines
    # a download's files (url -> {"done", "total"}), written by its output thread;
    # `fetched` counts the reports, `result` is the child's last word
    # (replaced whole, never changed in place: the loop may be reading the old one)
    progress: dict = field(default_factory=dict)
    fetched: int = 0
    result: str = ""
    output_open: bool = False     # its output thread still reads (a last report may be on its way)
    sleeping: bool = False        # its server said it sleeps (--sleep-idle-seconds); set by the output thread
    removing: bool = False        # DELETE /models is under way: no new request may have it
    spawns: int = 0               # how many times its server was started
    partials: list = field(default_factory=list)  # a cancelled download's unfinished files, deleted once it ended

    @property
    def running(self) -> bool:
        return self.status in (LOADING, LOADED)

    @property
    def failed(self) -> bool:
        return self.status == UNLOADED and self.exit_code != 0

    def error_line(self) -> str:
        """The child's own reason for failing: its last `error:` line, else its last line."""
        lines = list(self.output)
        errors = [ln for ln in lines if ln.startswith("error:")]
        return (errors or lines or [f"exit code {self.exit_code}"])[-1]


class Models:
    """The router's models by name (and alias), and their processes."""

    def __init__(self, specs: dict[str, ModelSpec], *, models_max: int, python: str = sys.executable,
                 sources: Callable[[], dict[str, ModelSpec]] | None = None):
        self.instances = {name: Instance(spec) for name, spec in specs.items()}
        self.aliases = {a: name for name, spec in specs.items() for a in spec.aliases}
        self.models_max = models_max
        self.python = python
        self.events = ModelEvents()
        self.sources = sources          # reads the model list again (after a download)
        self.need_reload = False
        self.queue = LoadQueue(self)
        self.retiring: list[Instance] = []  # left the model list while their server still runs (reload)
        self.fake_timing = bool(os.environ.get(FAKE_TIMING_ENV))
        for inst in self.instances.values():
            inst.args = self._argv(inst)

    def reload(self, specs: dict[str, ModelSpec]) -> None:
        """A new model list (GET /models?reload=1): a running model that left its source or
        whose flags changed is unloaded; the others take their new flags; new ones are added."""
        self.need_reload = False
        for name, inst in list(self.instances.items()):
            if inst.status == DOWNLOADING:
                continue  # not in any source yet
            if inst.status == DOWNLOADED:
                del self.instances[name]  # the cache's entry, when the files are there, takes its place
            new = specs.get(name)
            if name not in self.instances:
                continue
            if new is None or new.options != inst.spec.options:
                if inst.running:
                    log.info("(reload) unloading model %s: %s", name, "removed" if new is None else "changed")
                    self.unload(inst)
                if new is None:
                    if inst.pid:  # still counted against --models-max, and stopped at exit, until it ends
                        self.retiring.append(inst)
                    del self.instances[name]
        for name, spec in specs.items():
            inst = self.instances.get(name)
            if inst is not None and inst.status == DOWNLOADING:
                continue
            if inst is None:
                inst = self.instances[name] = Instance(spec)
            elif inst.running and spec.options == inst.spec.options:
                inst.spec = spec
                continue
            inst.spec = spec
            if not inst.running:
                inst.exit_code = 0  # a failed model may be tried again
                inst.args = self._argv(inst)
        self.aliases = {a: name for name, spec in specs.items() for a in spec.aliases}
        self.events.broadcast("models_reload", "*")

    # -- lookup ----------------------------------------------------------------------
    def refresh(self) -> None:
        """The model list read again if a download finished since it was last read."""
        if self.need_reload and self.sources is not None:
            try:
                self.reload(self.sources())
            except ValueError as e:
                log.error("cannot read the model list again: %s", e)
                self.need_reload = False

    def all(self) -> list[Instance]:
        """Every instance, those that left the model list but still run included."""
        return [*self.instances.values(), *self.retiring]

    def get(self, name: str) -> Instance | None:
        self.refresh()
        inst = self.instances.get(name)
        if inst is None and name in self.aliases:
            inst = self.instances.get(self.aliases[name])
        return None if inst is not None and inst.removing else inst

    def _argv(self, inst: Instance) -> list[str]:
        options = {**inst.spec.options, "host": CHILD_HOST, "port": str(inst.port), "alias": inst.spec.name}
        return [self.python, "-m", "pyllama.server.cli", *child_args(options)]

    # -- loading -----------------------------------------------------------------------
    def load(self, inst: Instance, *, claimed: bool = False) -> None:
        """Spawn the model's server (status: loading); returns once it is started.
        Unless the queue gave it a slot (`claimed`), the least recently used idle model is
        unloaded first (and waited for) when --models-max models run; ModelLimit if
        there is still no room."""
        if self.fake_timing:
            _sleep(FAKE_TIMING_S)
        if inst.running or inst.status in (DOWNLOADING, DOWNLOADED) or inst.removing:
            return
        if not claimed:
            self._unload_lru()
            if inst.running or inst.removing:  # another request loaded it, or DELETE came, while we waited
                return
        if not self.queue.has_capacity():
            raise ModelLimit("model limit reached, try again later")
        inst.port = free_port()
        inst.args = self._argv(inst)
        inst.status, inst.exit_code, inst.stopping, inst.info = LOADING, 0, False, {}
        inst.last_used = time.monotonic()
        inst.output.clear()
        inst.sleeping = False
        inst.spawns += 1
        try:
            self._spawn(inst, inst.args)
        except OSError as e:
            inst.status, inst.exit_code = UNLOADED, 1
            inst.output.append(f"error: cannot start the model's server: {e}")
            log.error("model %s: cannot start its server: %s", inst.spec.name, e)
            self.events.broadcast("status_change", inst.spec.name, {"status": UNLOADED, "exit_code": 1})
            return
        log.info("model %s: starting its server on port %d (pid %d)", inst.spec.name, inst.port, inst.pid)
        self.events.broadcast("model_status", inst.spec.name, {"status": LOADING})
        import gevent
        gevent.spawn(self._monitor, inst)

    def _unload_lru(self) -> None:
        """At --models-max, the least recently used idle model unloaded, and waited for."""
        if self.queue.has_capacity():
            return
        lru = self.queue.pick_victim()
        if lru is not None:
            log.info("--models-max %d reached: unloading the least recently used model %s", self.models_max,
                     lru.spec.name)
            pid = lru.pid
            self.unload(lru)
            self.wait(lambda: lru.pid != pid, timeout=None)  # that process ended (a queued request may reload it)

    def ensure_ready(self, inst: Instance, gone: Callable[[], bool] = lambda: False) -> None:
        """Returns once `inst` serves requests, or once it is clear that it will not (the
        caller looks at its status). A model that is not running is loaded through the
        queue, in turn; Cancelled if `gone()` turns true while waiting."""
        if inst.status == LOADED and not inst.stopping:
            return
        name, queue = inst.spec.name, self.queue
        queued = False

        def enter() -> None:
            nonlocal queued
            if not queued:
                queue.join(name)
                queue.tick()
                queued = True
        if inst.status == UNLOADED:
            enter()
        spawns = inst.spawns
        try:
            while self.instances.get(name) is inst and not inst.removing:
                if inst.stopping:  # a stopping server takes no new request: the next one will
                    enter()
                elif inst.status in (LOADED, DOWNLOADING, DOWNLOADED):
                    break
                elif inst.status == UNLOADED and (inst.spawns != spawns or not queued):
                    break  # it was started and ended again (failed, or unloaded meanwhile)
                if gone():
                    raise Cancelled(f"request cancelled while waiting for model name={name}")
                if inst.status == UNLOADED and not inst.stopping and queue.try_claim(name):
                    ok = False
                    try:
                        log.info("a slot is free: loading the queued model %s", name)
                        self.load(inst, claimed=True)
                        ok = True
                    except ModelLimit as e:  # lost the slot to an explicit load: stay in line
                        log.warning("the queued load of model %s did not go through: %s", name, e)
                    finally:  # whatever went wrong, the entry is back in line for its other waiters
                        queue.claim_done(name, ok)
                        queue.tick()
                    if not ok:
                        _sleep(POLL_S / 2)
                    continue
                _sleep(POLL_S / 2)
        except BaseException:
            if queued:
                queue.leave(name)
            queue.tick()  # a slot freed for this request goes to the next one
            raise
        if queued:
            queue.leave(name)

    def _spawn(self, inst: Instance, argv: list[str]) -> None:
        posix_spawn = original("os", "posix_spawn")
        stdin_r, stdin_w = os.pipe()
        out_r, out_w = os.pipe()
        env = {k: v for k, v in os.environ.items() if k not in CHILD_ENV_DROP}
        env[ROUTER_PID_ENV] = str(os.getpid())
        env["PYTHONUNBUFFERED"] = "1"
        actions = [(os.POSIX_SPAWN_DUP2, stdin_r, 0), (os.POSIX_SPAWN_DUP2, out_w, 1),
                   (os.POSIX_SPAWN_DUP2, out_w, 2)]
        try:
            inst.pid = posix_spawn(self.python, argv, env, file_actions=actions, setpgroup=0)
        except BaseException:
            os.close(stdin_w)
            os.close(out_r)
            raise
        finally:
            os.close(stdin_r)
            os.close(out_w)
        inst.stdin_w = stdin_w  # kept open while the child runs: its end of file tells the child we are gone
        inst.output_open = True
        original("_thread", "start_new_thread")(_copy_output, (out_r, inst))

    @staticmethod
    def _drain(inst: Instance) -> None:
        """Wait (a little) for the output thread to pass on the child's last lines."""
        deadline = time.monotonic() + OUTPUT_DRAIN_S
        while inst.output_open and time.monotonic() < deadline:
            _sleep(0.01)

    def _monitor(self, inst: Instance) -> None:
        """Until the child ends: poll its /health while it loads; then record how it ended."""
        pid = inst.pid
        waitpid = original("os", "waitpid")
        code = None
        asleep = False
        while code is None:
            try:
                done, status = waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                code = os.waitstatus_to_exitcode(status)
                break
            if inst.status == LOADING and not inst.stopping and _healthy(inst.port):
                inst.info = _model_info(inst.port)
                inst.status = LOADED
                log.info("model %s: loaded (port %d)", inst.spec.name, inst.port)
                self.events.broadcast("status_change", inst.spec.name, {"status": LOADED, "info": inst.info})
                self.queue.tick()  # one more model that may be given up
            if inst.status == LOADED and inst.sleeping != asleep:  # as llama-server: waking sends no info
                asleep = inst.sleeping
                log.info("model %s: %s", inst.spec.name, "sleeping" if asleep else "awake")
                self.events.broadcast("model_status", inst.spec.name, {"status": SLEEPING if asleep else LOADED})
            _sleep(POLL_S)
        self._drain(inst)
        if inst.stdin_w >= 0:
            os.close(inst.stdin_w)
            inst.stdin_w = -1
        inst.exit_code = 0
        if not inst.stopping and code != 0:
            inst.exit_code = code if code > 0 else 128 - code  # killed by a signal: the shell's 128 + N
            log.error("model %s: its server exited with %d: %s", inst.spec.name, code, inst.error_line())
        else:
            log.info("model %s: unloaded", inst.spec.name)
        inst.status, inst.pid, inst.stopping = UNLOADED, 0, False
        self.retiring = [i for i in self.retiring if i is not inst]
        self.events.broadcast("status_change", inst.spec.name, {"status": UNLOADED, "exit_code": inst.exit_code})
        self.queue.tick()

    # -- downloading -------------------------------------------------------------------
    def download(self, name: str) -> Instance:
        """Start fetching Hugging Face model `name` (user/model[:quant]) into the cache in a
        child process (status: downloading); returns at once. It takes no --models-max room."""
        inst = Instance(ModelSpec(name, "cache", {"hf_repo": name}))
        inst.args = [self.python, "-m", f"{__package__}.fetch", name]
        inst.status, inst.last_used = DOWNLOADING, time.monotonic()
        self.instances[name] = inst
        try:
            self._spawn(inst, inst.args)
        except OSError as e:
            del self.instances[name]
            raise RuntimeError(f"cannot start the download: {e}") from None
        log.info("model %s: downloading (pid %d)", name, inst.pid)
        self.events.broadcast("model_status", name, {"status": DOWNLOADING})
        import gevent
        gevent.spawn(self._monitor_fetch, inst)
        return inst

    def _monitor_fetch(self, inst: Instance) -> None:
        """Until the download's child ends: its progress as events; then its result."""
        name, pid, seen = inst.spec.name, inst.pid, 0
        waitpid = original("os", "waitpid")
        while True:
            try:
                done, status = waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                done, status = pid, 0
            if done:
                self._drain(inst)
            if inst.fetched != seen:
                seen = inst.fetched
                self.events.broadcast("download_progress", name, inst.progress)  # replaced whole, never changed
            if done:
                break
            _sleep(POLL_S)
        code = os.waitstatus_to_exitcode(status)
        if inst.stdin_w >= 0:
            os.close(inst.stdin_w)
            inst.stdin_w = -1
        ok = code == 0 and inst.result == "download_finished"
        repo = name.split(":")[0]
        sharing = any(i is not inst and i.status == DOWNLOADING and i.spec.name.split(":")[0] == repo
                      for i in self.instances.values())  # it may resume the same blob
        if inst.stopping and not sharing:  # as llama-server: a cancelled download leaves no partial file
            for path in inst.partials:  # (a failed one does, for the next try to resume)
                try:
                    os.unlink(path)
                    log.info("model %s: deleted the partial file %s", name, path)
                except OSError:
                    pass
        if ok:
            log.info("model %s: downloaded", name)
        else:
            log.error("model %s: download %s: %s", name, "cancelled" if inst.stopping else "failed",
                      inst.error_line())
        inst.status, inst.pid, inst.stopping = DOWNLOADED, 0, False
        inst.exit_code = 0 if ok else (code if code > 0 else 128 - code)
        self.need_reload = True
        self.events.broadcast("download_finished" if ok else "download_failed", name)

    def remove(self, inst: Instance, delete_files: Callable[[str], bool]) -> None:
        """Stop the model (cancel its download), then delete its files from the cache with
        `delete_files(name)` and forget it. RuntimeError unless it came from the cache."""
        name = inst.spec.name
        if inst.spec.source != "cache":
            raise RuntimeError(f"model name={name} is not removable (not from cache)")
        inst.removing = True  # from here on, no request loads it again
        self.unload(inst)
        self.wait(lambda: inst.status in (UNLOADED, DOWNLOADED), timeout=None)
        ok = delete_files(name)
        log.info("model %s: removed from the cache (%s)", name, "done" if ok else "no files were there")
        if self.instances.get(name) is inst:
            del self.instances[name]
        self.aliases = {a: n for a, n in self.aliases.items() if n != name}
        self.events.broadcast("model_remove", name)

    # -- unloading -----------------------------------------------------------------------
    def unload(self, inst: Instance) -> None:
        """Ask the model's server to stop (SIGTERM; a loading one is killed at once), and
        kill it if it is still there after its stop-timeout; a download is cancelled (its
        child killed). Returns at once."""
        if inst.status == DOWNLOADING:
            if inst.pid and not inst.stopping:
                inst.stopping = True
                log.info("model %s: cancelling its download", inst.spec.name)
                inst.partials = _partial_files(inst.pid)
                _signal(inst.pid, signal.SIGKILL)
            return
        if not inst.running or inst.stopping:
            return
        inst.stopping = True
        pid = inst.pid
        if inst.status == LOADING:
            _signal(pid, signal.SIGKILL)
            return
        _signal(pid, signal.SIGTERM)

        def force() -> None:
            deadline = time.monotonic() + inst.spec.stop_timeout
            while inst.pid == pid and time.monotonic() < deadline:
                _sleep(POLL_S)
            if inst.pid == pid:
                log.warning("model %s: still running %.0f s after SIGTERM; killing it", inst.spec.name,
                            inst.spec.stop_timeout)
                _signal(pid, signal.SIGKILL)
        import gevent
        gevent.spawn(force)

    def stop_all(self, timeout: float | None = None) -> None:
        """Stop every child and wait until all have ended (each killed after its stop-timeout,
        or after `timeout` seconds when given)."""
        self.events.close_all()
        for inst in self.all():
            if inst.status == DOWNLOADING:
                self.unload(inst)
            elif inst.running:
                self.unload(inst)
                if timeout is not None and inst.pid:
                    pid = inst.pid

                    def kill_later(pid=pid) -> None:
                        _sleep(timeout)
                        _signal(pid, signal.SIGKILL)
                    import gevent
                    gevent.spawn(kill_later)
        self.wait(lambda: not any(i.pid for i in self.all()), timeout=None)

    def kill_all(self) -> None:
        """The last resort at exit, from any thread: SIGKILL every child still running."""
        for inst in self.all():
            if inst.pid:
                _signal(inst.pid, signal.SIGKILL)

    # -- waiting -----------------------------------------------------------------------
    @staticmethod
    def wait(done: Callable[[], bool], timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not done():
            if deadline is not None and time.monotonic() > deadline:
                return False
            _sleep(POLL_S / 2)
        return True


def _signal(pid: int, sig: int) -> None:
    """The signal to the child's process group (it leads one), else to the child alone."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


PARTIAL_SUFFIX = ".incomplete"  # huggingface_hub's name for a blob being written


def _partial_files(pid: int) -> list[str]:
    """The unfinished blobs a download child is writing: its open files (Linux's
    /proc/PID/fd) named *.incomplete. Read before it is killed; nothing where /proc is
    missing."""
    found = []
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for fd in fds:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.endswith(PARTIAL_SUFFIX) and os.path.isabs(target) and target not in found:
            found.append(target)
    return found


def _healthy(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=2)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        finally:
            conn.close()
    except (OSError, http.client.HTTPException):
        return False


def _model_info(port: int) -> dict:
    """The child's own /v1/models entry (its meta), merged into the router's /models."""
    try:
        conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=5)
        try:
            conn.request("GET", "/v1/models")
            resp = conn.getresponse()
            data = json.loads(resp.read()) if resp.status == 200 else {}
        finally:
            conn.close()
        entry = (data.get("data") or [{}])[0]
        return {k: v for k, v in entry.items() if k not in ("id", "object", "created", "owned_by")}
    except (OSError, ValueError, http.client.HTTPException, AttributeError, IndexError):
        return {}


def _copy_output(fd: int, inst: Instance) -> None:
    """On an OS thread: the child's output, line by line, into the router's log (and the
    last lines kept, for the reason of a failure; a download's reports go to the
    instance). Ends at the child's end of output."""
    buf = b""
    name, port, tail = inst.spec.name, inst.port, inst.output
    child_log = logging.getLogger(f"pyllama.server.router.{name}")
    try:
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            *lines, buf = buf.split(b"\n")
            for raw in lines:
                line = raw.decode("utf-8", "replace").rstrip()
                if line.startswith(FETCH_PREFIX) and inst.status == DOWNLOADING:
                    _fetch_report(inst, line[len(FETCH_PREFIX):])
                    continue
                if line.startswith(CHILD_PREFIX):
                    _child_report(inst, line[len(CHILD_PREFIX):])
                    continue
                tail.append(line)
                child_log.info("[%5d] %s", port, line)
        if buf:
            tail.append(buf.decode("utf-8", "replace").rstrip())
    except OSError:
        pass
    finally:
        os.close(fd)
        inst.output_open = False


def _child_report(inst: Instance, text: str) -> None:
    try:
        report = json.loads(text)
    except ValueError:
        return
    if isinstance(report, dict) and isinstance(report.get("sleeping"), bool):
        inst.sleeping = report["sleeping"]


def _count(v) -> int:
    try:
        return max(0, int(v or 0))
    except (TypeError, ValueError, OverflowError):
        return 0


def _fetch_report(inst: Instance, text: str) -> None:
    try:
        report = json.loads(text)
    except ValueError:
        return
    if not isinstance(report, dict):
        return
    p = report.get("progress")
    if isinstance(p, dict) and isinstance(p.get("url"), str) and len(inst.progress) < MAX_FETCH_FILES:
        inst.progress = {**inst.progress, p["url"][:2048]: {"done": _count(p.get("done")),
                                                            "total": _count(p.get("total"))}}
        inst.fetched += 1
    if isinstance(report.get("result"), str):
        inst.result = report["result"]
        if report.get("error"):
            inst.output.append(f"error: {report['error']}")
