"""Server-sent events: `data: <json>\n\n` per event."""

from __future__ import annotations

import json


def event(payload: dict | str) -> str:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n"
