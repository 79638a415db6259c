"""MCP servers (--mcp-servers-config FILE, --mcp-servers-json JSON; Cursor's
{"mcpServers": {name: {command, args, env, cwd, timeout_ms}}}), stdio transport only:
a child process reading JSON-RPC messages on stdin, one per line, answering on stdout.

As llama-server: every server is started once at start-up (initialize, tools/list,
at most 10 s each), then stopped; its tools become `<server>_<tool>`; a tool call
starts the server again on demand and keeps it for later calls, restarting it if it
died (after a failed start, the server is left alone for 5 s). Every call has the
server's timeout_ms; shutdown() makes calls in flight return at once.

Here the children are driven from greenlets: a reader greenlet per child matches
replies to requests by id (notifications, stale and malformed lines are dropped),
so calls to one server may overlap and a hung child costs no thread."""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import gevent
from gevent import os as gos
from gevent.event import AsyncResult, Event
from gevent.lock import Semaphore

from pyllama import __version__

from . import proc

log = logging.getLogger("pyllama.server.tools")

PROTOCOL_VERSION = "2024-11-05"
DEFAULT_TIMEOUT_MS = 30000
WARMUP_TIMEOUT_S = 10
COOLDOWN_S = 5
MAX_LINE = 8 * 1024 * 1024  # a longer line from a child is dropped
ERR_TAIL_MAX = 4096


@dataclass
class McpServerConfig:
    name: str
    command: str
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)  # merged over the server's environment
    cwd: str = ""
    timeout_ms: int = DEFAULT_TIMEOUT_MS                # per tool call


@dataclass
class McpToolDef:
    server_name: str
    name: str             # the server's own name for it
    description: str
    input_schema: Any     # JSON Schema of the arguments, or None


class McpConfigError(ValueError):
    """A config that cannot be read: the server does not start."""


def _get(obj: dict, key: str, typ: type, default, where: str):
    v = obj.get(key)
    if v is None:
        return default
    if typ is int and isinstance(v, float) and v == v and abs(v) < 2 ** 63:
        v = int(v)
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise McpConfigError(f"{where}.{key} must be a {typ.__name__}")
    return v


def parse_config(text: str) -> list[McpServerConfig]:
    """The servers of one JSON document; entries without a command are skipped (warning)."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise McpConfigError(f"failed to parse MCP config JSON: {e}") from None
    servers = doc.get("mcpServers") if isinstance(doc, dict) else None
    if not isinstance(servers, dict):
        return []
    out = []
    for name, cfg in servers.items():
        where = f"mcpServers.{name}"
        if not isinstance(cfg, dict):
            raise McpConfigError(f"failed to parse MCP config JSON: {where} must be an object")
        try:
            sc = McpServerConfig(name=name, command=_get(cfg, "command", str, "", where),
                                 cwd=_get(cfg, "cwd", str, "", where),
                                 timeout_ms=_get(cfg, "timeout_ms", int, DEFAULT_TIMEOUT_MS, where))
            args = cfg.get("args")
            if isinstance(args, list):
                if not all(isinstance(a, str) for a in args):
                    raise McpConfigError(f"{where}.args must be strings")
                sc.args = list(args)
            env = cfg.get("env")
            if isinstance(env, dict):
                if not all(isinstance(v, str) for v in env.values()):
                    raise McpConfigError(f"{where}.env values must be strings")
                sc.env = dict(env)
        except McpConfigError as e:
            raise McpConfigError(f"failed to parse MCP config JSON: {e}") from None
        if not sc.command:
            log.warning("MCP server '%s' has no command, skipping", name)
            continue
        out.append(sc)
    return out


def _rpc_error_message(resp: dict) -> str:
    e = resp.get("error")
    if isinstance(e, dict):
        m = e.get("message", "unknown error")
        return m if isinstance(m, str) else json.dumps(m)
    if isinstance(e, str):
        return e
    return "unknown error"


def result_to_response(result: Any) -> dict:
    """A tools/call result as /tools answers it: the text parts joined by newlines in
    plain_text_response; an isError result as {"error": text}."""
    texts = []
    content = result.get("content") if isinstance(result, dict) else None
    if isinstance(content, list):
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                t = part.get("text", "")
                texts.append(t if isinstance(t, str) else json.dumps(t))
    text = "\n".join(texts)
    if isinstance(result, dict) and result.get("isError") is True:
        return {"error": text or "MCP tool returned an error"}
    return {"plain_text_response": text}


class StdioTransport:
    """One MCP server session over a child's stdin/stdout."""

    def __init__(self, config: McpServerConfig, stopping: Event):
        self.config, self.name = config, config.name
        self.timeout_s = config.timeout_ms / 1000.0
        self.stopping = stopping
        self.child: proc.Child | None = None
        self.alive = False
        self.next_id = 1
        self.pending: dict[int, AsyncResult] = {}
        self.initialized = False
        self.last_error = ""
        self.err_tail = ""
        self.tools: list[McpToolDef] = []
        self._write_lock = Semaphore()
        self._init_lock = Semaphore()
        self._greenlets: list = []

    # -- the child ------------------------------------------------------------------------
    def start(self) -> bool:
        env = None
        if self.config.env:
            env = {**os.environ, **self.config.env}
        if self.config.cwd and not os.path.isdir(self.config.cwd):
            log.warning("MCP '%s': failed to spawn '%s': no directory %s", self.name, self.config.command,
                        self.config.cwd)
            return False
        try:
            self.child = proc.spawn([self.config.command, *self.config.args], cwd=self.config.cwd, env=env,
                                    stderr="pipe")
        except OSError as e:
            log.warning("MCP '%s': failed to spawn '%s': %s", self.name, self.config.command, e)
            return False
        self.alive = True
        self._greenlets = [gevent.spawn(self._read_loop), gevent.spawn(self._stderr_loop)]
        return True

    def _lines(self, fd: int):
        buf = b""
        skipping = False
        while True:
            try:
                data = gos.nb_read(fd, proc.READ_CHUNK)
            except OSError:
                return
            if not data:
                return
            buf += data
            if skipping:
                nl = buf.find(b"\n")
                if nl < 0:
                    if len(buf) > MAX_LINE:
                        buf = b""
                    continue
                buf, skipping = buf[nl + 1:], False
            while True:
                nl = buf.find(b"\n")
                if nl < 0:
                    break
                line, buf = buf[:nl].rstrip(b"\r"), buf[nl + 1:]
                if line:
                    yield line
            if len(buf) > MAX_LINE:
                log.warning("MCP '%s': dropping an oversized line (> %d bytes)", self.name, MAX_LINE)
                buf, skipping = b"", True
            gevent.sleep(0)

    def _read_loop(self) -> None:
        try:
            for line in self._lines(self.child.stdout):
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue  # a malformed line
                if not isinstance(msg, dict):
                    continue
                waiter = self.pending.get(msg.get("id")) if isinstance(msg.get("id"), int) else None
                if waiter is not None and ("result" in msg or "error" in msg):
                    waiter.set(msg)
                # else: a notification, a request from the server, or a stale reply
        finally:
            self.alive = False
            for waiter in list(self.pending.values()):
                if not waiter.ready():
                    waiter.set(None)

    def _stderr_loop(self) -> None:
        for line in self._lines(self.child.stderr):
            text = line.decode("utf-8", errors="replace")
            log.debug("MCP '%s' stderr: %s", self.name, text)
            self.err_tail = (self.err_tail + text + "\n")[-ERR_TAIL_MAX:]

    def diagnostics(self) -> str:
        out = self.last_error
        if self.err_tail:
            out += ("; " if out else "") + "last stderr: " + self.err_tail
        return out

    def close(self) -> None:
        self.alive = False
        child, self.child = self.child, None
        if child is None:
            return
        child.kill()
        for g in self._greenlets:  # no greenlet may wait on an fd that is closed next
            g.kill(block=True, timeout=1)
        child.close()
        for waiter in list(self.pending.values()):
            if not waiter.ready():
                waiter.set(None)

    # -- JSON-RPC -------------------------------------------------------------------------
    def _send(self, msg: dict, deadline: float) -> bool:
        if not self.alive or self.child is None or self.child.stdin < 0:
            return False
        data = (json.dumps(msg, ensure_ascii=False) + "\n").encode("utf-8", errors="surrogatepass")
        with gevent.Timeout(max(0.0, deadline - time.monotonic()), False):
            with self._write_lock:
                return proc.write_all(self.child.stdin, data)
        return False

    def rpc(self, method: str, params: dict | None, deadline: float) -> dict:
        """The reply to one request, or {"error": {"code", "message"}} (closed, timed out, cancelled)."""
        rid = self.next_id
        self.next_id += 1
        msg: dict = {"jsonrpc": "2.0", "id": rid, "method": method}
        if params is not None:
            msg["params"] = params
        waiter = AsyncResult()
        self.pending[rid] = waiter
        try:
            if not self._send(msg, deadline):
                return _rpc_failure("request timed out" if time.monotonic() >= deadline else "transport closed")
            gevent.wait([waiter, self.stopping], timeout=max(0.0, deadline - time.monotonic()), count=1)
            if waiter.ready() and waiter.value is not None:
                return waiter.value
            if self.stopping.is_set():
                return _rpc_failure("cancelled")
            if time.monotonic() >= deadline:
                return _rpc_failure("request timed out")
            return _rpc_failure("transport closed")
        finally:
            self.pending.pop(rid, None)

    def ensure_init(self, deadline: float) -> bool:
        with self._init_lock:
            if self.initialized:
                return True
            resp = self.rpc("initialize", {"protocolVersion": PROTOCOL_VERSION, "capabilities": {},
                                           "clientInfo": {"name": "pyllama", "version": __version__}}, deadline)
            if "result" not in resp:
                self.last_error = "initialize failed: " + _rpc_error_message(resp)
                return False
            self._send({"jsonrpc": "2.0", "method": "notifications/initialized"}, deadline)
            self.initialized = True
            return True

    def list_tools(self, deadline: float) -> list[McpToolDef]:
        if not self.ensure_init(deadline):
            return []
        if self.tools:
            return self.tools
        resp = self.rpc("tools/list", None, deadline)
        if "result" not in resp:
            self.last_error = "tools/list failed: " + _rpc_error_message(resp)
            return []
        result = resp["result"]
        tools = result.get("tools") if isinstance(result, dict) else None
        for t in tools if isinstance(tools, list) else []:
            if not isinstance(t, dict):
                continue
            name, desc = t.get("name", ""), t.get("description", "")
            if not isinstance(name, str) or not name:
                continue
            self.tools.append(McpToolDef(self.name, name, desc if isinstance(desc, str) else "",
                                         t.get("inputSchema")))
        return self.tools

    def call_tool(self, tool: str, arguments: dict) -> dict:
        deadline = time.monotonic() + self.timeout_s
        if not self.ensure_init(deadline):
            return {"error": self.last_error}
        resp = self.rpc("tools/call", {"name": tool, "arguments": arguments}, deadline)
        if "error" in resp:
            return {"error": _rpc_error_message(resp)}
        if "result" in resp:
            return result_to_response(resp["result"])
        return {"error": "invalid response from MCP server"}


def _rpc_failure(message: str) -> dict:
    return {"error": {"code": -32603, "message": message}}


class McpManager:
    """The configured servers, their tools (found at start-up) and their live sessions."""

    def __init__(self, configs: list[McpServerConfig]):
        self.configs = {c.name: c for c in configs}
        self.registry: list[McpToolDef] = []
        self.transports: dict[str, StdioTransport] = {}
        self.dead_until: dict[str, float] = {}
        self.stopping = Event()
        self._lock = Semaphore()

    @classmethod
    def from_flags(cls, config_file: str, config_json: str) -> "McpManager":
        """The servers of --mcp-servers-config then --mcp-servers-json (a name seen twice: the first wins)."""
        sources = []
        if config_file:
            try:
                with open(config_file, encoding="utf-8") as f:
                    sources.append(f.read())
            except (OSError, UnicodeDecodeError) as e:
                raise McpConfigError(f"failed to open MCP config file: {config_file} ({e})") from None
        if config_json:
            sources.append(config_json)
        configs: dict[str, McpServerConfig] = {}
        for text in sources:
            parsed = parse_config(text)
            if not parsed:
                log.warning("MCP config: no servers found in JSON")
            for c in parsed:
                if c.name in configs:
                    log.warning("MCP config: duplicate server name '%s', skipping", c.name)
                    continue
                configs[c.name] = c
        return cls(list(configs.values()))

    def empty(self) -> bool:
        return not self.configs

    def warm_up(self) -> None:
        """Start every server, list its tools, stop it (all at once, at most WARMUP_TIMEOUT_S each)."""
        def one(cfg: McpServerConfig) -> list[McpToolDef]:
            t = StdioTransport(cfg, self.stopping)
            if not t.start():
                return []
            try:
                tools = t.list_tools(time.monotonic() + min(t.timeout_s, WARMUP_TIMEOUT_S))
                if not tools and t.last_error:
                    log.warning("MCP warmup: '%s': %s", cfg.name, t.diagnostics())
                log.info("MCP warmup: '%s' discovered %d tools", cfg.name, len(tools))
                return tools
            finally:
                t.close()
        jobs = [gevent.spawn(one, cfg) for cfg in self.configs.values()]
        gevent.joinall(jobs)
        self.registry = [d for j in jobs for d in (j.value or [])]

    def _get_or_create(self, name: str) -> StdioTransport | None:
        with self._lock:
            if self.stopping.is_set():
                return None
            now = time.monotonic()
            if self.dead_until.get(name, 0) > now:
                return None
            self.dead_until.pop(name, None)
            t = self.transports.get(name)
            if t is not None:
                if t.alive:
                    return t
                log.warning("MCP '%s' is no longer alive: %s", name, t.diagnostics())
                del self.transports[name]
                t.close()
            cfg = self.configs.get(name)
            if cfg is None:
                return None
            fresh = StdioTransport(cfg, self.stopping)
            if fresh.start():
                self.transports[name] = fresh
                return fresh
            log.warning("MCP '%s': failed to start: %s", name, fresh.diagnostics())
            fresh.close()
            self.dead_until[name] = now + COOLDOWN_S
            return None

    def call_tool(self, server: str, tool: str, arguments: dict) -> dict:
        t = self._get_or_create(server)
        if t is None:
            return {"error": f"MCP server unavailable: {server}"}
        return t.call_tool(tool, arguments)

    def shutdown(self) -> None:
        """Calls in flight return ("cancelled") and every child is killed, at once (callable
        from the loop itself, e.g. a signal handler); the pipes are closed on a greenlet. Idempotent."""
        self.stopping.set()
        transports, self.transports = list(self.transports.values()), {}
        for t in transports:
            t.alive = False
            if t.child is not None:
                t.child.kill()
        if transports:
            gevent.spawn(lambda: [t.close() for t in transports])
