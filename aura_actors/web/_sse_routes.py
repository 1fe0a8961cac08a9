"""The SSE routes: one job's stream, and every job of the caller multiplexed."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import trio
from quart import Quart, Response, request
from quart_schema import document_querystring, document_response

from ..protocol import SseEncoder
from ..runtime import Event, EventId, Runtime, Subscription
from ._context import ServerContext, parse_last_event_id
from ._errors import ApiError
from ._schemas import ErrorResponse, StreamQuery

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

_encoder = SseEncoder()

KEEPALIVE_FRAME = _encoder.comment("keep-alive")


def sse_retry_frame(retry_ms: int) -> bytes:
    """The ``retry:`` line a stream opens with."""
    return _encoder.retry(retry_ms)


def _encode_frame(event: Event) -> bytes:
    data = event.data_json
    if event.id is not None and "\n" not in data and "\r" not in data:
        # The usual case, byte for byte what the encoder makes of it, without its
        # general line splitting and checks: an id's text and an event type never
        # hold CR or LF, and compact JSON escapes them.
        try:
            return f"id: {event.id}\nevent: {event.type.value}\ndata: {data}\n\n".encode()
        except UnicodeEncodeError:
            pass  # a lone surrogate: the encoder says so in its own terms
    return _encoder.event(data, event=event.type.value, id=event.id_text)


def encode_event(event: Event) -> bytes:
    """One event as an SSE frame: ``id:`` (when it has one), ``event:``, ``data:``.

    Encoded once per event and shared by every stream that sends it.
    """
    return event.encoded(_encode_frame)


def encode_batch(batch: list[Event]) -> bytes:
    """The SSE frames of ``batch``, back to back."""
    if len(batch) == 1:
        return batch[0].encoded(_encode_frame)
    return b"".join([event.encoded(_encode_frame) for event in batch])


async def sse_body(
    subscribe: Callable[[], Awaitable[Subscription]], *, retry_ms: int, keepalive: float
) -> AsyncIterator[bytes]:
    """The bytes of one SSE response: ``retry:``, then events as they come, keep-alives between.

    The subscription is made on the first iteration and closed however the
    body ends (terminal event, client gone, shutdown), so nothing outlives
    the response.
    """
    with await subscribe() as subscription:
        yield _encoder.retry(retry_ms)
        while True:
            # A bare scope: ``move_on_after`` adds a generator-based context manager.
            quiet = trio.CancelScope(deadline=trio.current_time() + keepalive)
            with quiet:
                batch = await subscription.receive_batch()
            if quiet.cancelled_caught:
                yield KEEPALIVE_FRAME
            elif not batch:
                return
            else:
                yield encode_batch(batch)


Subscribe = Callable[[], Awaitable[Subscription]]


async def plan_job_stream(
    runtime: Runtime, job_id: str, *, user: str | None, after: EventId | None
) -> Subscribe | None:
    """How to stream one job's events, or ``None`` when there is nothing more to say (204).

    ``None`` when the job has ended and ``after`` is its terminal event (or
    later), or its history is gone. Raises ``JobNotFound``. Shared by the
    Quart route and the fast path, so both answer alike.
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


def _stream_response(body: AsyncIterator[bytes]) -> Response:
    response = Response(body, status=200, headers=SSE_HEADERS)
    response.timeout = None
    return response


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
    @document_response(ErrorResponse, 400)
    @document_response(ErrorResponse, 404)
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
        return _stream_response(
            sse_body(subscribe, retry_ms=settings.sse_retry_ms, keepalive=settings.keepalive)
        )

    @app.get("/api/events")
    @document_querystring(StreamQuery)
    @document_response(ErrorResponse, 400)
    @document_response(ErrorResponse, 503)
    async def all_events() -> Response:
        """Every job of the caller as one SSE stream; never ends on its own."""
        subscribe = plan_all_stream(runtime, user=context.current_user(), after=last_event_id())
        return _stream_response(
            sse_body(subscribe, retry_ms=settings.sse_retry_ms, keepalive=settings.keepalive)
        )
