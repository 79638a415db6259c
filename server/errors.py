"""llama-server's error envelope: {"error": {"code", "message", "type"}}, HTTP status = code."""

from __future__ import annotations

from flask import Response, jsonify

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 500: "server_error", 501: "not_supported_error", 503: "unavailable_error"}


class ApiError(Exception):
    def __init__(self, code: int, message: str, type_: str | None = None, **extra):
        super().__init__(message)
        self.code, self.message = code, message
        self.type = type_ or TYPES.get(code, "server_error")
        self.extra = extra

    def body(self) -> dict:
        err = {"code": self.code, "message": self.message, "type": self.type}
        err.update(self.extra)
        return {"error": err}

    def response(self) -> Response:
        r = jsonify(self.body())
        r.status_code = self.code
        return r


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)
