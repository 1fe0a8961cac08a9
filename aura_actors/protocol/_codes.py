"""Machine-readable error codes and WebSocket close codes."""

from __future__ import annotations

import enum

__all__ = ["CloseCode", "ErrorCode"]


class ErrorCode(enum.StrEnum):
    """Every ``code`` the server puts in an error body, an ``error`` event or a job's errors.

    Pipelines may add their own codes to a failed job's ``errors`` (for
    instance ``synthetic_failure``), so a reader should accept any string
    where a code is expected; these are the ones the server itself uses.
    """

    # -- requests (the HTTP error body) --
    BAD_REQUEST = "bad_request"
    MALFORMED_JSON = "malformed_json"
    VALIDATION_ERROR = "validation_error"
    UNKNOWN_PIPELINE = "unknown_pipeline"
    INVALID_CURSOR = "invalid_cursor"
    INVALID_LAST_EVENT_ID = "invalid_last_event_id"
    INVALID_HOST = "invalid_host"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    URI_TOO_LONG = "uri_too_long"
    HEADERS_TOO_LARGE = "headers_too_large"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN_ORIGIN = "forbidden_origin"
    NOT_FOUND = "not_found"
    JOB_NOT_FOUND = "job_not_found"
    ARTIFACT_NOT_FOUND = "artifact_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    JOB_FINISHED = "job_finished"
    JOB_NOT_FINISHED = "job_not_finished"
    JOB_NOT_RETRYABLE = "job_not_retryable"
    QUEUE_FULL = "queue_full"
    USER_QUOTA_EXCEEDED = "user_quota_exceeded"
    TOO_MANY_REQUESTS = "too_many_requests"
    SHUTTING_DOWN = "shutting_down"
    STORAGE_UNAVAILABLE = "storage_unavailable"
    UNAVAILABLE = "unavailable"
    TOO_MANY_CONNECTIONS = "too_many_connections"
    INTERNAL_ERROR = "internal_error"
    HTTP_ERROR = "http_error"
    REFUSED = "refused"
    # -- streams (``error`` events and WebSocket messages) --
    SUBSCRIBER_OVERFLOW = "subscriber_overflow"
    HISTORY_TRUNCATED = "history_truncated"
    BAD_MESSAGE = "bad_message"
    # -- how a job can fail (``error.errors[].code``) --
    STAGE_ERROR = "stage_error"
    STALLED = "stalled"
    TIMEOUT = "timeout"
    INTERRUPTED = "interrupted"
    WORKER_LOST = "worker_lost"
    PIPELINE_UNAVAILABLE = "pipeline_unavailable"


class CloseCode(enum.IntEnum):
    """WebSocket close codes of ``GET /api/jobs/{id}/ws`` (RFC 6455 section 7.4, plus 4xxx)."""

    #: After the job's terminal event.
    NORMAL = 1000
    #: The stream ended before the terminal event (the server is going away): resume.
    GOING_AWAY = 1001
    #: The client broke a rule of the protocol.
    POLICY_VIOLATION = 1008
    #: A client frame over the size limit (64 KiB).
    MESSAGE_TOO_BIG = 1009
    #: An unexpected server error.
    INTERNAL_ERROR = 1011
    #: The client read too slowly (``subscriber_overflow``): resume with ``lastEventId``.
    TRY_AGAIN_LATER = 1013
    #: A malformed ``lastEventId``.
    BAD_REQUEST = 4400
    #: Missing or bad token while auth is on.
    UNAUTHORIZED = 4401
    #: Unknown job (or another user's).
    NOT_FOUND = 4404

    @property
    def is_final(self) -> bool:
        """Whether a client should not reconnect after this close.

        1000 ends the job's stream; the 4xxx codes and 1008/1009 would answer
        the same way again. 1001, 1011 and 1013 are worth a resume.
        """
        return self not in _RESUMABLE


_RESUMABLE = frozenset({CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, CloseCode.TRY_AGAIN_LATER})
