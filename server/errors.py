"""llama-server's error envelope: {"error": {"code", "message", "type"}}, HTTP status = code."""

from __future__ import annotations

from flask import Response, jsonify

from pyllama.errors import InvalidRequest, PromptTooLong, Unavailable

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


def unauthorized() -> ApiError:
    return ApiError(401, "Invalid API Key")


def not_found() -> ApiError:
    return ApiError(404, "File Not Found")


def not_supported(message: str) -> ApiError:
    return ApiError(501, message)


# chat content parts that need a multimodal projector, by the name llama-server's error gives
MEDIA_PARTS = {"image_url": "image", "input_audio": "audio", "input_video": "video", "video_url": "video"}


def media_unsupported(kind: str) -> ApiError:
    """Media input to a server without a multimodal projector: llama-server's 500."""
    return ApiError(500, f"{kind} input is not supported - hint: if this is unexpected, you may need to "
                         "provide the mmproj")


def unavailable(message: str) -> ApiError:
    return ApiError(503, message)


def http_error(code: int | None, description: str | None, max_body_bytes: int) -> ApiError:
    """Flask's own errors (no such route or method, a body too large) as llama-server
    tells them."""
    if code in (404, 405):
        return not_found()
    if code == 413:
        return bad_request(f"request body too large (at most {max_body_bytes >> 20} MB)")
    return ApiError(code or 500, description or "error")


# The library's exceptions as llama-server tells them: the first class that matches
# gives the status code and the error type. Everything else is a 500.
STATUS: tuple[tuple[type, int, str], ...] = (
    (PromptTooLong, 400, "exceed_context_size_error"),
    (InvalidRequest, 400, "invalid_request_error"),
    (Unavailable, 503, "unavailable_error"),
)


def api_error(e: BaseException) -> ApiError:
    """The client's view of an exception raised or delivered by the library."""
    if isinstance(e, ApiError):
        return e
    message = str(e) or type(e).__name__
    for cls, code, type_ in STATUS:
        if isinstance(e, cls):
            return ApiError(code, message, type_, **getattr(e, "extra", {}))
    return ApiError(500, message, "server_error", **getattr(e, "extra", {}))


def error_event_body(e: BaseException) -> dict:
    """The SSE payload that ends a stream with an error."""
    return api_error(e).body()
