"""GET /tools (the tools' list) and POST /tools {"tool", "params", "stream"} (one call),
as llama-server's (README-dev.md, "API for tools"); 403 "this feature is disabled"
when the server has no tools.

A call's answer is the tool's JSON with status 200, failures the model should see
included ({"error": "..."}); a request the server cannot serve is an error in the
envelope: 400 (unreadable body or params), 404 (unknown tool, or stream = true for a
tool that cannot stream), 500 (an unusable runtime, anything unexpected). With
"stream": true the output arrives as SSE {"chunk": ...} events, then {"done": true}
(with "error" if the tool failed). Headers set what the model cannot: x-tool-cwd (the
working directory), x-tool-runtime (an isolate), x-resp-type (base64, for read_file)."""

from __future__ import annotations

import json
import logging

import gevent
from flask import Blueprint, Response, current_app, jsonify, request
from gevent.queue import Empty, Queue

from ..disconnect import watcher
from ..errors import ApiError
from ..offload import json_response
from ..sse import event, stream_response
from .builtin import Stream
from .params import ParamError, json_type
from .runtime import ToolRuntimeError

log = logging.getLogger("pyllama.server.tools")
bp = Blueprint("tools", __name__)
GONE_POLL_S = 0.5  # how often a silent stream checks that its client is still there


def _disabled() -> Response:
    r = jsonify({"error": {"message": "this feature is disabled", "type": "feature_disabled"}})
    r.status_code = 403
    return r


def _invalid(message: str, status: int = 400) -> ApiError:
    return ApiError(status, message, "invalid_request_error")


@bp.get("/tools")
def list_tools():
    ts = current_app.config.get("PYLLAMA_TOOLS")
    if ts is None:
        return _disabled()
    return jsonify([t.to_json() for t in ts.tools])


@bp.post("/tools")
def call_tool():
    ts = current_app.config.get("PYLLAMA_TOOLS")
    if ts is None:
        return _disabled()
    try:
        body = json.loads(request.get_data() or b"")
    except (ValueError, UnicodeDecodeError) as e:
        raise _invalid(f"JSON parse error: {e}") from None
    if not isinstance(body, dict):
        raise _invalid(f"the request body must be a JSON object, not {json_type(body)}")
    if "tool" not in body:
        raise _invalid("key 'tool' not found")
    name = body["tool"]
    if not isinstance(name, str):
        raise _invalid(f"\"tool\" must be a string, not {json_type(name)}")
    params = body.get("params")
    if params is None:
        params = {}
    if not isinstance(params, dict):
        raise _invalid(f"\"params\" must be an object, not {json_type(params)}")
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise _invalid(f"\"stream\" must be a boolean, not {json_type(stream)}")

    # what the server decides, never the model: the params' own values are dropped
    for key in ("cwd", "runtime", "resp_type"):
        params.pop(key, None)
    if request.headers.get("x-tool-cwd"):
        params["cwd"] = request.headers["x-tool-cwd"]
    try:
        runtime = request.headers.get("x-tool-runtime") or ts.runtime_spec()
    except ToolRuntimeError as e:
        raise ApiError(500, str(e), "server_error") from None
    if runtime:
        params["runtime"] = runtime
    if request.headers.get("x-resp-type"):
        params["resp_type"] = request.headers["x-resp-type"]

    tool = ts.by_name.get(name)
    if tool is None:
        raise _invalid(f'unknown tool "{name}"', 404)
    if stream:
        if not tool.support_stream:
            raise _invalid(f'tool "{name}" does not support stream = true', 404)
        return _stream(ts, tool, params)
    try:
        with ts.slots:
            result = tool.invoke(params)
    except ParamError as e:
        raise _invalid(str(e)) from None
    except ToolRuntimeError as e:
        raise ApiError(500, str(e), "server_error") from None
    big = "base64" in result
    return json_response(lambda: result, inline=not big)


def _stream(ts, tool, params: dict) -> Response:
    gone = watcher(request.environ)
    q: Queue = Queue()

    def work() -> None:
        error = ""
        try:
            with ts.slots:
                tool.invoke(params, Stream(lambda text: q.put(("chunk", text)), lambda: not gone()))
        except Exception as e:  # noqa: BLE001 - the stream's last event says what went wrong
            if not isinstance(e, (ParamError, ToolRuntimeError)):
                log.exception("tool %s failed", tool.name)
            error = str(e) or type(e).__name__
        q.put(("done", error))

    worker = gevent.spawn(work)

    def events():
        try:
            while True:
                try:
                    kind, value = q.get(timeout=GONE_POLL_S)
                except Empty:  # a silent command: is anyone still listening?
                    if gone():
                        return
                    continue
                if kind == "chunk":
                    yield event({"chunk": value})
                    continue
                yield event({"done": True, "error": value} if value else {"done": True})
                return
        finally:
            worker.kill(block=False)  # the client went away: proc.run kills the command
    return stream_response(events())
