"""Reading a tool call's params as llama-server does: a required key that is missing
or of the wrong type is the client's error (400, ParamError); an optional one of the
wrong type falls back to its default (json_value)."""

from __future__ import annotations

from typing import Any

INT_MIN, INT_MAX = -(2 ** 31), 2 ** 31 - 1

_JSON_TYPES = ((bool, "boolean"), (str, "string"), (int, "number"), (float, "number"), (list, "array"),
               (dict, "object"), (type(None), "null"))


class ParamError(ValueError):
    """A request the tool cannot read: llama-server's 400 invalid_request_error."""


def json_type(v: Any) -> str:
    for t, name in _JSON_TYPES:
        if isinstance(v, t):
            return name
    return type(v).__name__


def required_str(params: dict, key: str) -> str:
    if key not in params:
        raise ParamError(f"key '{key}' not found")
    v = params[key]
    if not isinstance(v, str):
        raise ParamError(f"type must be string, but is {json_type(v)}")
    return v


def opt_str(params: dict, key: str, default: str) -> str:
    v = params.get(key)
    return v if isinstance(v, str) else default


def opt_bool(params: dict, key: str, default: bool) -> bool:
    v = params.get(key)
    return v if isinstance(v, bool) else default


def opt_int(params: dict, key: str, default: int) -> int:
    """An integer (a float is truncated, as nlohmann's get<int>), clamped to a C int."""
    v = params.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return default
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return default
        v = int(v)
    return max(INT_MIN, min(INT_MAX, v))
