"""The tools a server offers: the built-in ones chosen by --tools, then the MCP
servers' (`<server>_<tool>`, a name already taken is skipped), and the
--tools-runtime every call runs in unless its x-tool-runtime header names another."""

from __future__ import annotations

import logging

from . import proc
from .builtin import BUILTIN, NAMES, Stream, Tool
from .mcp import McpManager, McpToolDef
from .runtime import make_runtime

log = logging.getLogger("pyllama.server.tools")

# keys of a call's params that the server sets (from headers), never the model: not an MCP tool's arguments
INJECTED = ("cwd", "runtime", "resp_type")


class McpTool(Tool):
    type = "mcp"

    def __init__(self, d: McpToolDef, manager: McpManager):
        self.d, self.manager = d, manager
        self.name = self.display_name = f"{d.server_name}_{d.name}"

    def definition(self) -> dict:
        schema = self.d.input_schema if isinstance(self.d.input_schema, dict) else {}
        return {"type": "function", "function": {"name": self.name, "description": self.d.description,
                                                 "parameters": schema}}

    def invoke(self, params: dict, stream: Stream | None = None) -> dict:
        args = {k: v for k, v in params.items() if k not in INJECTED}
        return self.manager.call_tool(self.d.server_name, self.d.name, args)


def parse_tool_names(value: str) -> list[str]:
    """--tools' comma-separated names ("all": every tool); ValueError for an unknown one."""
    names = [n.strip() for n in value.split(",") if n.strip()]
    for n in names:
        if n != "all" and n not in NAMES:
            raise ValueError(f'unknown tool "{n}". available tools: {", ".join(NAMES)}')
    return names


class ToolSet:
    def __init__(self, tool_names: list[str], mcp: McpManager | None, runtime_spec: str):
        self.mcp = mcp
        self.runtime = make_runtime(runtime_spec) if runtime_spec else None
        wanted = set(tool_names)
        self.tools: list[Tool] = [cls() for cls in BUILTIN if "all" in wanted or cls.name in wanted]
        if mcp is not None and not mcp.empty():
            seen = {t.name for t in self.tools}
            added = 0
            for d in mcp.registry:
                name = f"{d.server_name}_{d.name}"
                if name in seen:
                    log.warning('MCP tool "%s" from server "%s" collides with an existing tool, skipping', name,
                                d.server_name)
                    continue
                seen.add(name)
                self.tools.append(McpTool(d, mcp))
                added += 1
            if added:
                log.info("Added %d MCP tools", added)
        self.by_name = {t.name: t for t in self.tools}

    def runtime_spec(self) -> str:
        return self.runtime.spec() if self.runtime is not None else ""

    def shutdown(self) -> None:
        """At a stop signal: MCP calls in flight return, every tool child is killed."""
        if self.mcp is not None:
            self.mcp.shutdown()
        # not the --tools-runtime container's client: close() ends it gently, so --rm removes the container
        child = getattr(self.runtime, "child", None)
        proc.kill_all(keep=(child.pid,) if child is not None else ())

    def close(self) -> None:
        """At exit (on a greenlet): the --tools-runtime container goes too."""
        self.shutdown()
        if self.runtime is not None:
            runtime, self.runtime = self.runtime, None
            runtime.close()
