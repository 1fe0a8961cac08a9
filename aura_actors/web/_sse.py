"""Server-Sent Events on the wire: frames encoded once per event, and the one write loop."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import trio
from quart import Response
from quart.wrappers.response import ResponseBody

from ..protocol import SseEncoder
from ..runtime import Event, Subscription
from ._hypercorn import body_writer
from ._metrics import ServerMetrics

SSE_HEADERS = {
    "Content-Type": "text/event-stream",
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
}

_encoder = SseEncoder()

KEEPALIVE_FRAME = _encoder.comment("keep-alive")

#: An ASGI ``send``.
Send = Callable[[dict[str, Any]], Awaitable[None]]
#: Writes one chunk of the response body, whole: never cut by a cancellation.
Write = Callable[[bytes], Awaitable[None]]
#: Opens the subscription a stream sends (called once, when the stream starts).
Subscribe = Callable[[], Awaitable[Subscription]]


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


class EventStream(ResponseBody):
    """The body of an SSE response: ``retry:``, then events as they come, keep-alives between.

    Quart iterates a response body chunk by chunk; this one is not iterated
    but written: the app's HTTP connection class hands :meth:`write_to` the
    ASGI ``send`` once the headers are out (see ``_asgi.HttpConnection``), so
    every frame goes straight to the server, with nothing per frame between.
    """

    def __init__(
        self,
        subscribe: Subscribe,
        *,
        retry_ms: int,
        keepalive: float,
        metrics: ServerMetrics | None = None,
    ) -> None:
        self.subscribe = subscribe
        self.retry_ms = retry_ms
        self.keepalive = keepalive
        self.metrics = metrics

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise TypeError("an EventStream is written with write_to(send), not iterated")

    async def write_to(self, send: Send) -> None:
        """Subscribe and send the stream's frames until the subscription ends.

        The subscription is opened here and closed however this ends
        (terminal event, client gone, shutdown), so nothing outlives the
        response. Frames go straight to the connection where the server
        allows it (``_hypercorn.body_writer``), through ``send`` otherwise.
        A checkpoint throughout; cancelling it stops between two writes (a
        write itself is never cut).
        """
        metrics = self.metrics
        write = body_writer(send) or shielded_writer(send)
        with await self.subscribe() as subscription:
            if metrics is not None:
                metrics.stream_opened("sse")
            try:
                await write(_encoder.retry(self.retry_ms))
                await send_events(subscription, write, self.keepalive, metrics)
            finally:
                if metrics is not None:
                    metrics.stream_closed("sse")


def event_stream_response(
    subscribe: Subscribe,
    *,
    retry_ms: int,
    keepalive: float,
    metrics: ServerMetrics | None = None,
) -> Response:
    """A 200 ``text/event-stream`` response whose body is :class:`EventStream`."""
    body = EventStream(subscribe, retry_ms=retry_ms, keepalive=keepalive, metrics=metrics)
    response = Response(body, status=200, headers=SSE_HEADERS)
    response.timeout = None
    return response


def shielded_writer(send: Send) -> Write:
    """A :data:`Write` that sends each chunk as an ASGI body message, never cut half-way."""

    async def write(body: bytes) -> None:
        with trio.CancelScope(shield=True):
            await send({"type": "http.response.body", "body": body, "more_body": True})

    return write


async def send_events(
    subscription: Subscription,
    write: Write,
    keepalive: float,
    metrics: ServerMetrics | None = None,
) -> None:
    """Write ``subscription``'s events until it ends, a keep-alive whenever quiet that long.

    Each wakeup writes every event ready (``receive_batch``) in one write.
    ``write`` is never cut by a cancellation, so the keep-alive timer can only
    interrupt a wait (which loses nothing). The timer is one cancel scope per
    quiet spell, its deadline set once: when it fires after a write, a new
    spell starts from that write; when it fires with nothing written, the
    stream was quiet that long and gets a keep-alive.
    """
    last_write = trio.current_time()
    while True:
        wrote = False
        with trio.move_on_at(last_write + keepalive):
            while True:
                batch = await subscription.receive_batch()
                if not batch:
                    return
                await write(encode_batch(batch))
                last_write = trio.current_time()
                wrote = True
                if metrics is not None:
                    # The oldest event of the write: its lag bounds the others'.
                    metrics.delivered(batch[0].published_at, time.perf_counter())
        if not wrote:
            await write(KEEPALIVE_FRAME)
            last_write = trio.current_time()
