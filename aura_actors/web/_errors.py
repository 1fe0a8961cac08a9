"""API errors: every failure answers ``{"error": {"code", "message"}}`` with a fitting status."""

from __future__ import annotations

from typing import Any

from quart import Quart, Response, jsonify
from werkzeug.exceptions import HTTPException

from ..runtime import (
    InvalidCursor,
    InvalidJobRequest,
    JobAlreadyFinished,
    JobIsLive,
    JobNotFound,
    JobNotRetryable,
    QueueFull,
    RuntimeRefusal,
    ShuttingDown,
    StorageFailing,
    UserQuotaExceeded,
)


class ApiError(Exception):
    """Raise from a route to answer ``status`` with the contract's error body."""

    def __init__(
        self, status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details


_REFUSAL_STATUS: dict[type[RuntimeRefusal], int] = {
    JobNotFound: 404,
    JobAlreadyFinished: 409,
    JobIsLive: 409,
    JobNotRetryable: 409,
    QueueFull: 429,
    UserQuotaExceeded: 429,
    StorageFailing: 503,
    ShuttingDown: 503,
    InvalidJobRequest: 422,
    InvalidCursor: 422,
}

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "unavailable",
}


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    """The contract's error body with ``status``."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details:
        body["details"] = details
    response = jsonify({"error": body})
    response.status_code = status
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="aura-actors"'
    return response


def refusal_to_api_error(refusal: RuntimeRefusal) -> ApiError:
    """Map a runtime refusal onto its HTTP status."""
    status = 400
    for cls in type(refusal).__mro__:
        if cls in _REFUSAL_STATUS:
            status = _REFUSAL_STATUS[cls]
            break
    details = refusal.errors if isinstance(refusal, InvalidJobRequest) else None
    return ApiError(status, refusal.code, str(refusal), details)


def install_error_handlers(app: Quart) -> None:
    """Make every error, ours or the framework's, answer in the contract's shape."""

    @app.errorhandler(ApiError)
    async def _api_error(error: ApiError) -> Response:
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(RuntimeRefusal)
    async def _refusal(refusal: RuntimeRefusal) -> Response:
        error = refusal_to_api_error(refusal)
        return error_response(error.status, error.code, error.message, error.details)

    @app.errorhandler(HTTPException)
    async def _http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code = _HTTP_CODES.get(status, "http_error")
        message = error.description or error.name
        if status == 413:
            message = "request body is larger than 1 MiB"
        response = error_response(status, code, message)
        if status == 405 and hasattr(error, "valid_methods") and error.valid_methods:
            response.headers["Allow"] = ", ".join(error.valid_methods)
        return response
