"""A request forwarded to a model's server, and its answer relayed back: the body as
received, the answer's status and headers, and a stream (text/event-stream) relayed
piece by piece as the child writes it (nothing is buffered: each chunk the child
sends is written to the client when it arrives). A client that goes away closes the
connection to the child, whose own disconnect watch then cancels the request."""

from __future__ import annotations

import http.client
from typing import Callable, Iterator

from flask import Response, request

from ..errors import ApiError
from .instances import CHILD_HOST

# hop-by-hop headers, and those the router sets itself (CORS, its server name, the length)
DROP_RESPONSE = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}
FORWARD_REQUEST = ("Content-Type", "Accept", "Accept-Language", "User-Agent")
CHUNK = 65536


def forward(port: int, timeout: float | None, on_done: Callable[[], None]) -> Response:
    """The current request sent to the child on `port`; `on_done` is called once its
    answer has been relayed (or failed)."""
    path = request.full_path if request.query_string else request.path
    headers = {k: request.headers[k] for k in FORWARD_REQUEST if k in request.headers}
    body = request.get_data(cache=True)
    conn = http.client.HTTPConnection(CHILD_HOST, port, timeout=timeout)
    try:
        conn.request(request.method, path, body=body if request.method != "GET" else None, headers=headers)
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException) as e:
        conn.close()
        on_done()
        raise ApiError(500, f"the model's server did not answer: {e}") from None
    out_headers = [(k, v) for k, v in resp.getheaders() if k.lower() not in DROP_RESPONSE
                   and not k.lower().startswith("access-control-")]
    if not (resp.getheader("Content-Type") or "").startswith("text/event-stream"):
        try:
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            raise ApiError(500, f"the model's server broke off its answer: {e}") from None
        finally:
            conn.close()
            on_done()
        return Response(data, status=resp.status, headers=out_headers)
    return Response(_relay(conn, resp, on_done), status=resp.status, headers=out_headers)


def _relay(conn: http.client.HTTPConnection, resp: http.client.HTTPResponse,
           on_done: Callable[[], None]) -> Iterator[bytes]:
    try:
        while True:
            try:
                piece = resp.read1(CHUNK)  # what has arrived, without waiting for more
            except (OSError, http.client.HTTPException):
                break
            if not piece:
                break
            yield piece
    finally:  # also when the client went away (the generator is closed)
        conn.close()
        on_done()
