"""llama-server's built-in server tools (--tools, --tools-runtime) and MCP servers
(--mcp-servers-config, --mcp-servers-json), served at /tools (routes.py) by the model
server and the router alike. As llama-server, the tools are offered through that REST
API only (the web UI calls them and sends their results back as tool messages): they
are not added to chat requests.

  builtin.py   the seven built-in tools      edit.py     edit_file's replacement
  fsio.py      host file operations          runtime.py  isolates (docker, podman, ssh)
  proc.py      child processes on the loop   threads.py  the tools' thread pool
  mcp.py       MCP stdio servers             registry.py the tools a server offers
  globs.py     llama.cpp's glob matching     params.py   reading a call's params"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger("pyllama.server.tools")

MAX_CONCURRENT_CALLS = 16  # tool calls running at once; more wait their turn


def install(app: Flask, config) -> None:
    """GET/POST /tools on `app`, with the tools `config` enables (403 without any).
    ValueError when they cannot be set up (unknown tool, bad MCP config, runtime):
    the server does not start, as llama-server."""
    from . import routes
    from .mcp import McpManager
    from .registry import ToolSet, parse_tool_names
    from .runtime import ToolRuntimeError

    app.register_blueprint(routes.bp)
    app.config["PYLLAMA_TOOLS"] = None
    names = parse_tool_names(config.tools)
    if getattr(config, "agent", False):  # --agent: every built-in tool
        names = ["all"]
    mcp = None
    if config.mcp_servers_config or config.mcp_servers_json:
        mcp = McpManager.from_flags(config.mcp_servers_config, config.mcp_servers_json)
        if not mcp.empty():
            mcp.warm_up()
    if not names and (mcp is None or mcp.empty()):
        return
    try:
        ts = ToolSet(names, mcp, config.tools_runtime)
    except ToolRuntimeError as e:
        raise ValueError(f"tools setup failed: {e}") from None
    from gevent.lock import BoundedSemaphore
    ts.slots = BoundedSemaphore(MAX_CONCURRENT_CALLS)
    app.config["PYLLAMA_TOOLS"] = ts
    features = []
    if names:
        features.append("server tools (experimental)")
    if config.tools_runtime:
        features.append("tools runtime (experimental)")
    if mcp is not None and not mcp.empty():
        features.append("MCP servers (experimental)")
    log.warning("security: %s enabled - do not expose to untrusted environments", ", ".join(features))
    if config.cors_origins == "localhost":
        log.warning("server tools or MCP servers are enabled: CORS allows localhost origins only unless "
                    "--cors-origins says otherwise")


def shutdown(app: Flask) -> None:
    """A stop signal: MCP calls in flight return at once, tool commands are killed."""
    ts = app.config.get("PYLLAMA_TOOLS")
    if ts is not None:
        ts.shutdown()


def close(app: Flask) -> None:
    """At exit: the above, and the --tools-runtime container is removed."""
    ts = app.config.get("PYLLAMA_TOOLS")
    if ts is not None:
        app.config["PYLLAMA_TOOLS"] = None
        ts.close()
