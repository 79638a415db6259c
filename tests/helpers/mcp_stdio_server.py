"""A small MCP server over stdio (one JSON-RPC message per line) for the tests.

Tools: echo {message}, add {a, b}, fail (an isError result), fail_once (fails on its
first call in this process), sleep {seconds}, exit (the process ends without an
answer), where (its cwd and $PYLLAMA_MCP_TEST), pid (its process id), grandchild (starts
a child that inherits stdout/stderr and sleeps; its pid), file (collides with the
built-in read_file when the server is named "read").

Before each reply it writes a notification, a line of garbage and an empty line (the
client must skip them), and a line on stderr. Extra arguments (e.g. a tag to find the
process by) are ignored."""

import json
import os
import subprocess
import sys
import time

TOOLS = [
    {"name": "echo", "description": "Echo back the input message",
     "inputSchema": {"type": "object", "properties": {"message": {"type": "string"}}, "required": ["message"]}},
    {"name": "add", "description": "Add two numbers",
     "inputSchema": {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}}}},
    {"name": "fail", "description": "Always an error result"},
    {"name": "fail_once", "description": "Fails on its first call", "inputSchema": {"type": "object", "properties": {}}},
    {"name": "sleep", "description": "Sleeps", "inputSchema": {"type": "object",
                                                               "properties": {"seconds": {"type": "number"}}}},
    {"name": "exit", "description": "Ends the process without answering"},
    {"name": "where", "description": "cwd and $PYLLAMA_MCP_TEST"},
    {"name": "pid", "description": "the process id"},
    {"name": "grandchild", "description": "starts a grandchild holding the pipes"},
    {"name": "file", "description": "collides as read_file"},
]
state = {"failed_once": False}


def text(t: str, error: bool = False) -> dict:
    r = {"content": [{"type": "text", "text": t}]}
    if error:
        r["isError"] = True
    return r


def call(name: str, args: dict) -> dict:
    if name == "echo":
        return text(f"echo: {args.get('message', '')}")
    if name == "add":
        return text(str(args.get("a", 0) + args.get("b", 0)))
    if name == "fail":
        return text("it failed", error=True)
    if name == "fail_once":
        if not state["failed_once"]:
            state["failed_once"] = True
            return text("first call fails", error=True)
        return text("ok")
    if name == "sleep":
        time.sleep(float(args.get("seconds", 1)))
        return text("slept")
    if name == "exit":
        os._exit(3)
    if name == "where":
        return text(json.dumps({"cwd": os.getcwd(), "env": os.environ.get("PYLLAMA_MCP_TEST"),
                                "args": sorted(args)}))
    if name == "pid":
        return text(str(os.getpid()))
    if name == "grandchild":
        p = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        return text(str(p.pid))
    if name == "file":
        return text("file")
    raise KeyError(name)


def main() -> None:
    out = sys.stdout
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        req = json.loads(line)
        rid, method = req.get("id"), req.get("method")
        if rid is None:
            continue  # a notification
        if method == "initialize":
            resp = {"protocolVersion": "2024-11-05", "capabilities": {"tools": {}},
                    "serverInfo": {"name": "pyllama-test", "version": "1"}}
        elif method == "tools/list":
            resp = {"tools": TOOLS}
        elif method == "tools/call":
            params = req.get("params", {})
            try:
                resp = call(params.get("name"), params.get("arguments") or {})
            except KeyError:
                msg = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "no such tool"}}
                out.write(json.dumps(msg) + "\n")
                out.flush()
                continue
        else:
            msg = {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": "Method not found"}}
            out.write(json.dumps(msg) + "\n")
            out.flush()
            continue
        print(f"answering {method}", file=sys.stderr, flush=True)
        # noise first, then the answer, in one write
        out.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/message", "params": {"data": "hi"}})
                  + "\nnot json at all\n\n" + json.dumps({"jsonrpc": "2.0", "id": rid, "result": resp}) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
