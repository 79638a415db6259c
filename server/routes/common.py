"""Helpers every route uses: the server state, the JSON body."""

from __future__ import annotations

import json

from flask import current_app, request

from ..errors import ApiError, bad_request


def state():
    st = current_app.config["PYLLAMA_STATE"]
    if not st.ready:
        if st.load_error:
            raise ApiError(503, f"Loading model failed: {st.load_error}", "unavailable_error")
        raise ApiError(503, "Loading model", "unavailable_error")
    return st


def json_body() -> dict:
    data = request.get_data(cache=True)
    try:
        body = json.loads(data or b"{}")
    except (ValueError, UnicodeDecodeError) as e:
        raise bad_request(f"JSON parse error: {e}") from None
    except RecursionError:
        raise bad_request("JSON parse error: the body is nested too deeply") from None
    if not isinstance(body, dict):
        raise bad_request("the request body must be a JSON object")
    return body
