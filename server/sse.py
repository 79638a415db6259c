"""Server-sent events: `data: <json>\n\n` per event."""

from __future__ import annotations

import json
from typing import Iterable

from flask import Response


def event(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"


def stream_response(events: Iterable[str]) -> Response:
    return Response(events, mimetype="text/event-stream", headers={"Cache-Control": "no-cache"})
