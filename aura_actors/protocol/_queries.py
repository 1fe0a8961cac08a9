"""The query strings: the job listing's, and the streams' (for clients that cannot set headers)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field

from ._base import WireModel
from ._status import JobStatus

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "JobListQuery", "StreamQuery"]

#: What a listing cursor looks like (the runtime's sequence number; empty: none).
CURSOR_PATTERN = r"^[0-9]{0,18}$"
#: An event id ``<millis>-<counter>``, or empty for none.
LAST_EVENT_ID_PATTERN = r"^((0|[1-9][0-9]{0,17})-(0|[1-9][0-9]{0,17}))?$"

#: Jobs per page of ``GET /api/jobs`` when ``limit`` is not given, and at most.
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


def _ascii_digits(value: Any) -> Any:
    """A query number is ASCII digits only: no sign, space, underscore or other script."""
    if isinstance(value, str) and not (value.isascii() and value.isdigit()):
        raise ValueError("must be a whole number written in ASCII digits")
    return value


#: A number in a query string (``limit=20``), as text on the wire.
QueryInt = Annotated[int, BeforeValidator(_ascii_digits)]


class JobListQuery(WireModel):
    """``GET /api/jobs`` query: newest first, ``limit`` per page, after ``cursor``."""

    status: JobStatus | None = Field(default=None, description="Only jobs in this status.")
    limit: QueryInt = Field(
        default=DEFAULT_PAGE_SIZE,
        ge=1,
        le=MAX_PAGE_SIZE,
        description=f"Jobs per page, 1 to {MAX_PAGE_SIZE}.",
    )
    cursor: str | None = Field(
        default=None,
        description="The `nextCursor` of the previous page (empty: the first page).",
        # Checked by the runtime (422 invalid_cursor); documented here.
        json_schema_extra={"pattern": CURSOR_PATTERN},
    )


class StreamQuery(WireModel):
    """The streams' query, for clients that cannot set headers (EventSource, WebSocket)."""

    last_event_id: str | None = Field(
        default=None,
        description="Resume after this id (as the `Last-Event-ID` header, which wins).",
        # Checked by the route (400 invalid_last_event_id); documented here.
        json_schema_extra={"pattern": LAST_EVENT_ID_PATTERN},
    )
    access_token: str | None = Field(
        default=None,
        alias="access_token",
        description="The bearer token (as `Authorization: Bearer`, which wins).",
    )
