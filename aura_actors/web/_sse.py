"""Server-Sent Events on the wire: frames encoded once per event, and the one write loop."""

from __future__ import annotations

import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any

import trio
from quart import Response
from quart.wrappers.response import ResponseBody

from ..protocol import SseEncoder
from ..runtime import Event, Subscription
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
        response. A checkpoint throughout; cancelling it stops between two
        writes (a write itself is never cut: the server shields it).
        """
        metrics = self.metrics
        with await self.subscribe() as subscription:
            if metrics is not None:
                metrics.stream_opened("sse")
            try:
                await send(_chunk(_encoder.retry(self.retry_ms)))
                await send_events(subscription, send, self.keepalive, metrics)
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


async def send_events(
    subscription: Subscription,
    send: Send,
    keepalive: float,
    metrics: ServerMetrics | None = None,
) -> None:
    """Send ``subscription``'s events until it ends, a keep-alive whenever quiet that long.

    The keep-alive timer is one cancel scope per quiet spell, not one per wait:
    its deadline is pushed forward before each wait and lifted (``inf``) before
    each write, so it can only ever interrupt a wait (which loses nothing)
    and never a write (which would lose the frame h11 has already framed).
    """
    while True:
        held: bytes | None = None
        with trio.CancelScope() as quiet:
            while True:
                quiet.deadline = trio.current_time() + keepalive
                batch = await subscription.receive_batch()
                quiet.deadline = math.inf
                if not batch:
                    return
                frame = encode_batch(batch)
                if quiet.cancel_called:
                    # The timer fired after the batch was taken: its Cancelled is
                    # pending, so write outside the scope.
                    held = frame
                    break
                await send(_chunk(frame))
                if metrics is not None:
                    # The oldest event of the write: its lag bounds the others'.
                    metrics.delivered(batch[0].published_at, time.perf_counter())
        if held is not None:
            await send(_chunk(held))
        elif quiet.cancelled_caught:
            await send(_chunk(KEEPALIVE_FRAME))


def _chunk(body: bytes) -> dict[str, Any]:
    return {"type": "http.response.body", "body": body, "more_body": True}
