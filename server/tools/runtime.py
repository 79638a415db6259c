"""Tools run in an isolate (--tools-runtime, or a request's x-tool-runtime header):
every file operation becomes a command run in a container (`docker|podman exec`) or
on a remote host (`ssh`), which must offer a POSIX environment (sh, cat, wc, mkdir,
dirname, find, timeout), exactly as llama-server drives them.

Runtime specs:
  docker:<image> | podman:<image>                 --tools-runtime only: a container
                                                  spawned at start-up, removed at exit
  docker-container:<id> | podman-container:<id>   an existing container
  ssh:<target>                                    a remote host (key-based auth only)"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time

import gevent

from . import proc
from .fsio import FILES, GIT_LS_FILES_MAX_OUTPUT, JUNK_DIR_NAMES, DIRS, ALL, Listing, LocalIO, ToolIO, entry_depth

log = logging.getLogger("pyllama.server.tools")

ISOLATE_EXEC_TIMEOUT = 15                       # seconds, the auxiliary commands (stat, cat, find, ...)
ISOLATE_READ_FILE_MAX_SIZE = 64 * 1024 * 1024  # bytes
ENGINES = ("docker", "podman")


class ToolRuntimeError(RuntimeError):
    """A runtime that cannot be used (unknown, invalid target): llama-server's 500."""


def shell_quote_join(argv: list[str]) -> str:
    """One string that a POSIX shell parses back into exactly argv."""
    return " ".join("'" + a.replace("'", "'\\''") + "'" for a in argv)


def _split_lines(text: str, strip_dot_slash: bool) -> list[str]:
    out = []
    for line in text.split("\n"):
        line = line.rstrip("\r")
        if not line:
            continue
        if strip_dot_slash and line.startswith("./"):
            line = line[2:]
        out.append(line.replace("\\", "/"))
    return out


class IsolateIO(ToolIO):
    """Every operation as a command in the isolate; build_argv() wraps a POSIX argv into
    the host command that runs it there."""

    def __init__(self, cwd: str = ""):
        self.cwd = cwd

    def build_argv(self, inner: list[str], needs_stdin: bool) -> list[str]:
        raise NotImplementedError

    def resolve(self, path: str) -> str:
        if not self.cwd or path.startswith("/"):
            return path
        return self.cwd + "/" + path

    def _exec(self, inner: list[str], max_output: int, combine_stderr: bool = True) -> proc.ExecResult:
        return proc.run(self.build_argv(inner, False), max_output=max_output, timeout=ISOLATE_EXEC_TIMEOUT,
                        combine_stderr=combine_stderr)

    def _test(self, flag: str, path: str) -> bool:
        res = self._exec(["sh", "-c", f'[ {flag} "$1" ]', "_", path], 4096)
        return res.exit_code == 0 and not res.timed_out

    def is_directory(self, path: str) -> bool:
        return self._test("-d", self.resolve(path))

    def is_regular_file(self, path: str) -> bool:
        return self._test("-f", self.resolve(path))

    def file_size(self, path: str) -> int | None:
        res = self._exec(["sh", "-c", 'wc -c < "$1"', "_", self.resolve(path)], 64)
        if res.exit_code != 0 or res.timed_out:
            return None
        m = re.match(r"\s*(\d+)", res.output)
        return int(m.group(1)) if m else None

    def read_file(self, path: str) -> bytes | None:
        # stderr apart: it must not be spliced into the file's bytes
        res = self._exec(["cat", "--", self.resolve(path)], ISOLATE_READ_FILE_MAX_SIZE, combine_stderr=False)
        if res.exit_code != 0 or res.timed_out:
            return None
        return res.raw

    def write_file(self, path: str, content: bytes) -> bool:
        # the content travels on stdin: no argv for the far side to parse, no temporary file on the host
        argv = self.build_argv(["sh", "-c", 'mkdir -p "$(dirname "$1")" && cat > "$1"', "_", self.resolve(path)],
                               True)
        res = proc.run(argv, max_output=4096, timeout=ISOLATE_EXEC_TIMEOUT, stdin_data=content or None)
        return res.exit_code == 0 and not res.timed_out

    def list_entries(self, base: str, max_depth: int, kind: str) -> Listing:
        abs_base = self.resolve(base)
        if not self.is_directory(base):
            return Listing(err="path does not exist or is not a directory")
        if kind == FILES:
            res = self._exec(["sh", "-c", 'cd "$1" && git ls-files --cached --others --exclude-standard', "_",
                              abs_base], GIT_LS_FILES_MAX_OUTPUT)
            if res.exit_code == 0 and not res.timed_out:
                return Listing(entries=[(r, False) for r in _split_lines(res.output, False)
                                        if max_depth <= 0 or entry_depth(r) <= max_depth])
        out = Listing()
        if kind in (DIRS, ALL):
            out.entries += [(r, True) for r in self._find(abs_base, max_depth, True, out)]
        if kind in (FILES, ALL):
            out.entries += [(r, False) for r in self._find(abs_base, max_depth, False, out)]
        return out

    def _find(self, abs_base: str, max_depth: int, dirs: bool, out: Listing) -> list[str]:
        # junk directories are reported but never entered; -mindepth/-maxdepth work on busybox too
        prune = " -o ".join(f"-name {n}" for n in sorted(JUNK_DIR_NAMES))
        cmd = 'cd "$1" && find . -mindepth 1'
        if max_depth > 0:
            cmd += f" -maxdepth {max_depth}"
        cmd += f" \\( {prune} \\) -prune"
        cmd += " -print -o -type d -print" if dirs else " -o -type f -print"
        res = self._exec(["sh", "-c", cmd, "_", abs_base], GIT_LS_FILES_MAX_OUTPUT)
        out.truncated = out.truncated or res.timed_out
        return _split_lines(res.output, True)

    def run(self, args: list[str], max_output: int, timeout: float, on_chunk=None) -> proc.ExecResult:
        # a `timeout` inside the isolate: killing the host-side client does not end what runs there;
        # the host waits 5 s longer so the inner one can finish cleanly
        inner = ["timeout", f"{int(timeout)}s", *args]
        if self.cwd:  # not every transport has a -w: the command changes directory itself
            inner = ["sh", "-c", 'cd "$1" || exit 127; shift; exec "$@"', "_", self.cwd, *inner]
        return proc.run(self.build_argv(inner, True), max_output=max_output, timeout=timeout + 5,
                        on_chunk=on_chunk)


class ContainerIO(IsolateIO):
    """A running container, through `<engine> exec` (docker and podman take the same verbs)."""

    def __init__(self, engine: str, container_id: str, cwd: str = ""):
        super().__init__(cwd)
        self.engine, self.container_id = engine, container_id

    def build_argv(self, inner: list[str], needs_stdin: bool) -> list[str]:
        return [self.engine, "exec", *(["-i"] if needs_stdin else []), self.container_id, *inner]


SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "PasswordAuthentication=no", "-o", "KbdInteractiveAuthentication=no",
               "-o", "StrictHostKeyChecking=yes"]


class SshIO(IsolateIO):
    """A remote host over ssh: remoting, not isolation (the tools can do what its account can).
    No console: a prompt would hang the call, so key-based auth and a trusted host key only."""

    def __init__(self, target: str, cwd: str = ""):
        super().__init__(cwd)
        self.target = target

    def build_argv(self, inner: list[str], needs_stdin: bool) -> list[str]:
        # the remote shell parses the command line again: the argv travels as one quoted word
        return ["ssh", *SSH_OPTIONS, *([] if needs_stdin else ["-n"]), self.target, shell_quote_join(inner)]


def valid_ssh_target(target: str) -> bool:
    # ssh reads options from its argv: a target starting with '-' (-oProxyCommand=...) would be one
    return bool(target) and target[0] != "-" and re.fullmatch(r"[A-Za-z0-9._@-]+", target) is not None


def valid_container_id(cid: str) -> bool:
    # likewise for the engine's command line (--privileged): it starts with a letter or digit
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", cid) is not None


def valid_image(image: str) -> bool:
    # an image reference (registry/name:tag@digest); like a container id, never an option
    return re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*", image) is not None


def parse_container(spec: str) -> tuple[str, str, bool] | None:
    """(engine, image or id, attach) for "<engine>:<image>" / "<engine>-container:<id>", else None."""
    for engine in ENGINES:
        if spec.startswith(engine + "-container:"):
            return engine, spec[len(engine) + len("-container:"):], True
        if spec.startswith(engine + ":"):
            return engine, spec[len(engine) + 1:], False
    return None


def make_io(runtime: str = "", cwd: str = "") -> ToolIO:
    """The IO for a tool call; ToolRuntimeError for a runtime that cannot be used (never the host instead)."""
    if not runtime:
        return LocalIO(cwd)
    container = parse_container(runtime)
    if container is not None:
        engine, arg, attach = container
        if not attach:  # spawning belongs to --tools-runtime, a call only attaches
            raise ToolRuntimeError(f"tool runtime must name a running container: {runtime}")
        if not valid_container_id(arg):
            raise ToolRuntimeError(f"invalid container id: {arg}")
        return ContainerIO(engine, arg, cwd)
    if runtime.startswith("ssh:"):
        target = runtime[len("ssh:"):]
        if not valid_ssh_target(target):
            raise ToolRuntimeError(f"invalid ssh target: {target}")
        return SshIO(target, cwd)
    raise ToolRuntimeError(f"unknown tool runtime: {runtime}")


class StaticRuntime:
    """An existing target (container id, ssh host): checked once at start-up, used as given."""

    def __init__(self, spec: str):
        make_io(spec)  # nothing to own: refuse a bad spec now
        self._spec = spec

    def spec(self) -> str:
        return self._spec

    def close(self) -> None:
        pass


class ContainerRuntime:
    """--tools-runtime <engine>:<image>: `<engine> run --rm -i <image> sh` with its stdin
    kept open (the shell waits on it, so the container lives); respawned if it dies;
    at exit its stdin is closed, the shell ends and --rm removes the container."""

    SPAWN_WAIT_S = 10.0

    def __init__(self, engine: str, image: str):
        if not image:
            raise ToolRuntimeError(f"--tools-runtime {engine}:<image> requires an image name")
        if not valid_image(image):  # `run ... --privileged sh` would read it as an option
            raise ToolRuntimeError(f"invalid image: {image}")
        self.engine, self.image = engine, image
        self.child: proc.Child | None = None
        self.container_id = ""
        self._lock = None
        self._spawn()

    def _spawn(self) -> None:
        if self.child is not None:
            self.child.close()
            self.child = None
        fd, cidfile = tempfile.mkstemp(prefix="pyllama-tools-runtime-cid-", suffix=".tmp")
        os.close(fd)
        os.unlink(cidfile)  # the engine refuses an existing cidfile
        try:
            try:
                self.child = proc.spawn([self.engine, "run", "--rm", "-i", "--cidfile", cidfile, self.image, "sh"],
                                        stderr="null")
            except OSError as e:
                raise ToolRuntimeError(f"failed to spawn {self.engine} container for tools runtime "
                                       f"(image: {self.image}): {e}") from None
            cid = ""
            deadline = time.monotonic() + self.SPAWN_WAIT_S
            while not cid and time.monotonic() < deadline and self.child.poll() is None:
                try:
                    with open(cidfile, encoding="utf-8") as f:
                        cid = f.readline().strip()
                except OSError:
                    pass
                if not cid:
                    gevent.sleep(0.1)
        finally:
            try:
                os.unlink(cidfile)
            except OSError:
                pass
        if not cid:
            self.child.close()
            self.child = None
            raise ToolRuntimeError(f"timed out waiting for {self.engine} container to start (image: {self.image})")
        self.container_id = cid

    def spec(self) -> str:
        from gevent.lock import Semaphore
        if self._lock is None:
            self._lock = Semaphore()
        with self._lock:
            if self.child is None or self.child.poll() is not None:
                log.warning("%s tools runtime container \"%s\" died, respawning", self.engine, self.container_id)
                self._spawn()
            return f"{self.engine}-container:{self.container_id}"

    def close(self) -> None:
        """Close the shell's stdin (it ends, --rm removes the container); kill the client if it lingers."""
        child, self.child = self.child, None
        if child is None:
            return
        child.close_stdin()
        if child.wait(10.0) is None:
            child.close()
            # the client is gone but the container may not be: ask the engine to remove it
            if self.container_id:
                proc.run([self.engine, "rm", "-f", self.container_id], max_output=4096, timeout=10)
        else:
            child.close()


def make_runtime(spec: str):
    """--tools-runtime: a spawned container we own, or a static target."""
    container = parse_container(spec)
    if container is not None and not container[2]:
        return ContainerRuntime(container[0], container[1])
    return StaticRuntime(spec)
