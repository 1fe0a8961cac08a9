"""API errors: every failure answers ``{"error": {"code", "message"}}`` with a fitting status."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from quart import Quart, Response
from werkzeug.exceptions import HTTPException

from ..protocol import ErrorBody, ErrorInfo, FieldProblem, dump_json_bytes
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


#: Problems an error body lists at most, and how many its message names.
MAX_PROBLEMS = 20
SUMMARY_PROBLEMS = 5


def error_response(
    status: int, code: str, message: str, details: list[dict[str, Any]] | None = None
) -> Response:
    """The contract's error body (:class:`~aura_actors.protocol.ErrorBody`) with ``status``."""
    problems = (
        [FieldProblem.model_validate(item) for item in details[:MAX_PROBLEMS]] if details else None
    )
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=problems))
    response = Response(dump_json_bytes(body), status=status, content_type="application/json")
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="aura-actors"'
    return response


Model = TypeVar("Model", bound=BaseModel)


def parse_model(model: type[Model], data: object, what: str) -> Model:
    """``data`` validated into ``model``, or a 422 :class:`ApiError` naming each problem."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        problems = [
            {"field": ".".join(str(part) for part in item["loc"]) or what, "message": _said(item)}
            for item in error.errors(include_url=False)[:MAX_PROBLEMS]
        ]
        summary = "; ".join(
            problem["message"]
            if problem["field"] == what
            else f"{problem['field']}: {problem['message']}"
            for problem in problems[:SUMMARY_PROBLEMS]
        )
        more = error.error_count() - SUMMARY_PROBLEMS
        if more > 0:
            summary += f"; and {more} more"
        raise ApiError(422, "validation_error", f"invalid {what}: {summary}", problems) from None


def _said(item: Any) -> str:
    """Pydantic's message, in the wire's terms where it names Python's."""
    if item["type"] in {"model_type", "dict_type"}:
        return "must be a JSON object"
    return str(item["msg"])


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
