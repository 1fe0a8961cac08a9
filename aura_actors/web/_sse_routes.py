"""The SSE routes: one job's stream, and every job of the caller multiplexed."""

from __future__ import annotations

from quart import Quart, Response, request
from quart_schema import document_querystring, document_response

from ..protocol import ErrorBody, StreamQuery
from ..runtime import EventId, Runtime
from ._context import ServerContext, parse_last_event_id
from ._errors import ApiError
from ._sse import Subscribe, event_stream_response


async def plan_job_stream(
    runtime: Runtime, job_id: str, *, user: str | None, after: EventId | None
) -> Subscribe | None:
    """How to stream one job's events, or ``None`` when there is nothing more to say (204).

    ``None`` when the job has ended and ``after`` is its terminal event (or
    later), or its history is gone. Raises ``JobNotFound``.
    """
    job = await runtime.get(job_id, owner=user)
    if job.status.is_terminal:
        terminal_id = None if job.history_expired else job.last_event_id
        if terminal_id is None or (after is not None and after >= terminal_id):
            return None
    return lambda: runtime.subscribe_job(job.id, owner=user, after=after)


def plan_all_stream(runtime: Runtime, *, user: str | None, after: EventId | None) -> Subscribe:
    """How to stream every job of ``user``: after ``after``, or from this moment.

    Raises a 503 :class:`ApiError` while shutting down.
    """
    if runtime.shutting_down:
        raise ApiError(503, "shutting_down", "the server is shutting down")
    # Without a last event id, "history since connect": live events from now on.
    return lambda: runtime.subscribe_all(owner=user, after=after)


def register_sse_routes(app: Quart, context: ServerContext) -> None:
    """Add ``/api/jobs/<id>/events`` and ``/api/events`` to ``app``."""
    runtime = context.runtime
    settings = context.settings

    def last_event_id() -> EventId | None:
        return parse_last_event_id(
            request.headers.get("Last-Event-ID"), request.args.get("lastEventId")
        )

    @app.get("/api/jobs/<job_id>/events")
    @document_querystring(StreamQuery)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 404)
    async def job_events(job_id: str) -> Response:
        """One job's events as SSE: history (or what follows the last id), then live.

        204 when the last event id is the job's terminal event (or later), so
        an EventSource stops reconnecting.
        """
        subscribe = await plan_job_stream(
            runtime, job_id, user=context.current_user(), after=last_event_id()
        )
        if subscribe is None:
            return Response(b"", status=204)
        return event_stream_response(
            subscribe,
            retry_ms=settings.sse_retry_ms,
            keepalive=settings.keepalive,
            metrics=context.metrics,
        )

    @app.get("/api/events")
    @document_querystring(StreamQuery)
    @document_response(ErrorBody, 400)
    @document_response(ErrorBody, 503)
    async def all_events() -> Response:
        """Every job of the caller as one SSE stream; never ends on its own."""
        subscribe = plan_all_stream(runtime, user=context.current_user(), after=last_event_id())
        return event_stream_response(
            subscribe,
            retry_ms=settings.sse_retry_ms,
            keepalive=settings.keepalive,
            metrics=context.metrics,
        )
