"""Google Cloud Vertex AI's custom-container contract, as llama-server serves it when the
environment says AIP_MODE=PREDICTION:

- the port is AIP_HTTP_PORT (default 8080), over --port (with a warning);
- AIP_HEALTH_ROUTE, when set, answers as /health does;
- AIP_PREDICT_ROUTE (default /predict) takes {"instances": [...]} (at most 128), each an
  object naming its route in "@requestFormat": a camelCase alias of a route
  ("chatCompletions" for /v1/chat/completions, "applyTemplate" for /apply-template) or
  the route itself; the rest of it is that route's body (never streamed). The instances
  run at once, each as a request of its own (the same key check, the same errors), and
  the answer is {"predictions": [...]}: each route's JSON answer, or its error object.
"""

from __future__ import annotations

import json
import os

from flask import Flask, jsonify, request

from .errors import bad_request
from .routes.common import json_body

MAX_INSTANCES = 128


def enabled() -> bool:
    return os.environ.get("AIP_MODE", "") == "PREDICTION"


def _route_env(name: str, default: str) -> str:
    value = os.environ.get(name) or default
    return value if not value or value.startswith("/") else "/" + value


def http_port(port: int) -> tuple[int, str | None]:
    """The port to listen on, and a warning when AIP_HTTP_PORT overrides --port."""
    try:
        aip = int(os.environ.get("AIP_HTTP_PORT") or 8080)
    except ValueError:
        return port, f"AIP_HTTP_PORT={os.environ['AIP_HTTP_PORT']!r} is not a port: keeping {port}"
    if aip == port:
        return port, None
    return aip, f"Google Cloud Platform compat: overriding server port {port} with AIP_HTTP_PORT {aip}"


def request_format(path: str) -> str:
    """A route's camelCase alias: /v1/chat/completions -> chatCompletions."""
    s = path[3:] if path.startswith("/v1") and len(path) > 3 else path
    s = s.lstrip("/")
    out, cap = [], False
    for c in s:
        if c in "<:":  # stop before path parameters
            break
        if c in "/-_":
            cap = True
        else:
            out.append(c.upper() if cap else c)
            cap = False
    return "".join(out)


def install(app: Flask) -> None:
    """The predict route (and the health alias) on a Flask app whose routes exist."""
    post_routes: dict[str, str] = {}  # path -> endpoint
    aliases: dict[str, str] = {}      # camelCase -> path (the first route wins)
    for rule in app.url_map.iter_rules():
        if "POST" in (rule.methods or ()) and not rule.arguments:
            post_routes.setdefault(rule.rule, rule.endpoint)
            aliases.setdefault(request_format(rule.rule), rule.rule)
    predict = _route_env("AIP_PREDICT_ROUTE", "/predict")
    if predict in post_routes:
        raise SystemExit(f"AIP_PREDICT_ROUTE={predict} conflicts with an existing route")
    health = _route_env("AIP_HEALTH_ROUTE", "")
    if health:
        app.add_url_rule(health, "vertex_health", app.view_functions["misc.health"], methods=["GET"])

    def run_instance(instance, environ: dict, headers: dict) -> object:
        """One instance, on a greenlet of its own, as a request of its own."""
        if not isinstance(instance, dict):
            return _error("each instance must be a JSON object")
        fmt = instance.get("@requestFormat")
        if not isinstance(fmt, str):
            return _error("each instance must include a string @requestFormat")
        path = aliases.get(fmt) or (fmt if fmt in post_routes else None)
        if path is None:
            return _error(f"no handler registered for @requestFormat: {fmt}")
        payload = {k: v for k, v in instance.items() if k != "@requestFormat"}
        if "stream" in payload:
            payload["stream"] = False  # the predict route does not stream
        with app.test_request_context(path, method="POST", data=json.dumps(payload), headers=headers,
                                      content_type="application/json", environ_base=environ):
            res = app.full_dispatch_request()
            if res.is_streamed:
                return _error("predict route does not support streaming responses")
            data = res.get_data()
        if not data:
            return None
        try:
            return json.loads(data)
        except ValueError:
            return data.decode("utf-8", "replace")

    def predict_view():
        body = json_body()
        instances = body.get("instances")
        if not isinstance(instances, list):
            raise bad_request("request body must include an array field named instances")
        if len(instances) > MAX_INSTANCES:
            raise bad_request(f"instances array exceeds maximum size of {MAX_INSTANCES}")
        import gevent

        environ = {k: v for k, v in request.environ.items()
                   if k in ("REMOTE_ADDR", "pyllama.socket", "gunicorn.socket")}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("content-length", "content-type")}
        jobs = [gevent.spawn(run_instance, inst, environ, headers) for inst in instances]
        gevent.joinall(jobs)
        out = []
        for job in jobs:
            if job.successful():
                out.append(job.value)
            else:
                out.append(_error(f"{type(job.exception).__name__}: {job.exception}", 500))
        return jsonify({"predictions": out})

    app.add_url_rule(predict, "vertex_predict", predict_view, methods=["POST"])


def _error(message: str, code: int = 400) -> dict:
    return {"error": {"code": code, "message": message,
                      "type": "invalid_request_error" if code == 400 else "server_error"}}

