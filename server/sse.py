"""Server-sent events: `data: <json>\n\n` per event."""

from __future__ import annotations

from typing import Iterable

from flask import Response

from .json_text import dumps


def event(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else dumps(payload)  # piece by piece: it may be megabytes
    return f"data: {data}\n\n"


def stream_response(events: Iterable[str]) -> Response:
    return Response(events, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
