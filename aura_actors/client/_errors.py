"""The client's exceptions: one hierarchy under :class:`AuraError`.

::

    AuraError
    ├── ApiError(status, code, message, details)   the server answered with an error
    │   ├── ValidationFailed      400, 413, 422: the request itself is wrong
    │   ├── Unauthorized          401: missing or bad token
    │   ├── NotFound              404: unknown job (or another user's)
    │   ├── Conflict              409: cancel of an ended job, delete of a live one, retry
    │   │                             of one that is not Failed or Canceled
    │   ├── QueueFull             429: too many jobs waiting
    │   └── ServerUnavailable     502, 503, 504: shutting down or not reachable behind a proxy
    ├── ConnectionFailed          the server could not be reached (one request)
    │   └── ConnectionLost        a stream gave up after its reconnection tries
    └── ProtocolError             the server sent something this client cannot read
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import httpx

from ..protocol import ErrorCode

__all__ = [
    "ApiError",
    "AuraError",
    "Conflict",
    "ConnectionFailed",
    "ConnectionLost",
    "NotFound",
    "ProtocolError",
    "QueueFull",
    "ServerUnavailable",
    "Unauthorized",
    "ValidationFailed",
    "api_error",
    "api_error_from_response",
]


class AuraError(Exception):
    """Base class of every error this client raises."""


class ApiError(AuraError):
    """The server answered with an error status.

    :ivar status: the HTTP status (or the HTTP equivalent of a WebSocket close code).
    :ivar code: the machine-readable ``error.code`` of the body (e.g. ``"job_not_found"``).
    :ivar message: the human-readable ``error.message``.
    :ivar details: ``error.details`` when the server gave them (validation errors:
        ``[{"field": ..., "message": ...}]``), else an empty tuple.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Sequence[Mapping[str, Any]] = (),
    ) -> None:
        super().__init__(status, code, message)
        self.status = status
        self.code = code
        self.message = message
        self.details: tuple[Mapping[str, Any], ...] = tuple(details)

    @property
    def error_code(self) -> ErrorCode | None:
        """``code`` as an :class:`~aura_actors.protocol.ErrorCode` (``None`` if not one of them)."""
        try:
            return ErrorCode(self.code)
        except ValueError:
            return None

    def __str__(self) -> str:
        text = f"{self.status} {self.code}: {self.message}"
        for item in self.details:
            field = item.get("field")
            line = f"{field}: {item.get('message')}" if field else str(item)
            if line not in self.message:
                text += f"\n  {line}"
        return text


class ValidationFailed(ApiError):
    """400, 413 or 422: malformed JSON, a body too large, or params that fail validation."""


class Unauthorized(ApiError):
    """401: the token is missing or unknown."""


class NotFound(ApiError):
    """404: no such job, or a job of another user (the two look the same on purpose)."""


class Conflict(ApiError):
    """409: the request conflicts with the job's state.

    ``code`` says which: ``job_finished`` (cancel of a job that ended),
    ``job_not_finished`` (delete of a ``Queued`` or ``Running`` job),
    ``job_not_retryable`` (retry of a job that is not ``Failed`` or ``Canceled``).
    """


class QueueFull(ApiError):
    """429: the server's queue of waiting jobs is full; try again later."""


class ServerUnavailable(ApiError):
    """502, 503 or 504: the server is shutting down or unreachable behind a proxy."""


class ConnectionFailed(AuraError):
    """The server could not be reached, or the connection broke during a request.

    The underlying :mod:`httpx` / :mod:`trio_websocket` / :class:`OSError` is the
    ``__cause__``.
    """


class ConnectionLost(ConnectionFailed):
    """A stream lost its connection and every reconnection try failed.

    :ivar attempts: how many reconnection tries were made in a row.
    :ivar last_event_id: the id of the last event delivered, to resume from later
        (``None`` if none was).
    """

    def __init__(self, message: str, *, attempts: int, last_event_id: str | None) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last_event_id = last_event_id


class ProtocolError(AuraError):
    """The server sent something that does not follow the protocol (bad JSON, bad id...)."""


_BY_STATUS: dict[int, type[ApiError]] = {
    400: ValidationFailed,
    401: Unauthorized,
    404: NotFound,
    409: Conflict,
    413: ValidationFailed,
    422: ValidationFailed,
    429: QueueFull,
    502: ServerUnavailable,
    503: ServerUnavailable,
    504: ServerUnavailable,
}


def api_error(
    status: int, code: str, message: str, details: Sequence[Mapping[str, Any]] = ()
) -> ApiError:
    """The :class:`ApiError` subclass fitting ``status``."""
    return _BY_STATUS.get(status, ApiError)(status, code, message, details)


def api_error_from_response(response: httpx.Response) -> ApiError:
    """Read the contract's ``{"error": {"code", "message"}}`` body (the body must be read).

    Bodies that are not in that shape (a proxy's HTML page, say) still give an
    error with a generic code and the start of the body as its message.
    """
    code = f"http_{response.status_code}"
    message = response.reason_phrase or "error"
    details: list[Mapping[str, Any]] = []
    try:
        body = json.loads(response.content)
    except (ValueError, UnicodeDecodeError):
        body = None
        text = response.content[:200].decode("utf-8", errors="replace").strip()
        if text:
            message = text
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        error = body["error"]
        code = str(error.get("code", code))
        message = str(error.get("message", message))
        raw_details = error.get("details")
        if isinstance(raw_details, list):
            details = [item for item in raw_details if isinstance(item, dict)]
    return api_error(response.status_code, code, message, details)
