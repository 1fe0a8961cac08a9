"""An SSE stream that reconnects on its own and resumes with ``Last-Event-ID``."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass
from types import TracebackType

import httpx
import trio

from ..protocol import SseComment, SseDecoder
from ..runtime import EventId
from ._errors import ConnectionLost, ProtocolError, api_error_from_response
from ._events import Event, parse_event, parse_event_id
from ._reconnect import ReconnectPolicy

__all__ = ["EventStream", "Reconnecting"]

logger = logging.getLogger("aura_actors.client")


@dataclass(frozen=True, slots=True)
class Reconnecting:
    """Passed to an ``on_reconnect`` callback just before the client waits to reconnect.

    :ivar attempt: the try about to be made (1 to ``max_attempts``).
    :ivar max_attempts: the policy's limit.
    :ivar delay: seconds the client now waits before trying.
    :ivar reason: why the connection is being replaced (an exception or a description).
    :ivar last_event_id: where the stream will resume.
    """

    attempt: int
    max_attempts: int
    delay: float
    reason: str
    last_event_id: str | None


OnReconnect = Callable[[Reconnecting], None]


class _Drop(Exception):
    """A connection ended in a way that calls for a reconnect."""


class EventStream:
    """An SSE stream of typed events: an async iterator and an async context manager.

    Use it as ``async with client.events(job_id) as stream: async for event in
    stream: ...`` so that leaving the block closes the connection at once
    (``async for`` alone also works; the connection then closes when the
    stream ends, or when the iterator is garbage collected).

    Behaviour (see :class:`ReconnectPolicy`): reconnects after a drop with
    exponential backoff, resuming after the last event delivered, so every
    event is delivered once, in order (an event whose id is not greater than
    the last one delivered is dropped). A job's stream ends after the job's
    terminal event, or at once when the server answers 204 (nothing more to
    send). ``401``/``404``/other ``4xx`` raise the matching
    :class:`~aura_actors.client.ApiError`; exhausted tries raise
    :class:`~aura_actors.client.ConnectionLost`.

    Iterating is a checkpoint. Cancelling the task that iterates (or a scope
    around it) interrupts a read or a backoff wait at once and closes the
    connection; the stream is then finished.

    :ivar last_event_id: the id of the last event delivered (resume from it later).
    :ivar connections: connections that delivered the stream (200) so far.
    :ivar duplicates_dropped: events dropped because their id was not new.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        path: str,
        *,
        last_event_id: str | None,
        policy: ReconnectPolicy,
        ends_with_job: bool,
        on_reconnect: OnReconnect | None = None,
    ) -> None:
        self._http = http
        self._path = path
        self._policy = policy
        self._ends_with_job = ends_with_job
        self._on_reconnect = on_reconnect
        self.last_event_id: str | None = last_event_id or None
        self._last_key: EventId | None = (
            None if self.last_event_id is None else parse_event_id(self.last_event_id)
        )
        self.connections = 0
        self.duplicates_dropped = 0
        self._server_retry: float | None = None
        self._agen = self._run()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        """The next event (a checkpoint); ``StopAsyncIteration`` when the stream is over."""
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Close the connection (if open); the stream is then finished. Idempotent."""
        await self._agen.aclose()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # -- internals -------------------------------------------------------------------------

    def _timeout(self) -> httpx.Timeout:
        policy = self._policy
        return httpx.Timeout(policy.connect_timeout, read=policy.idle_timeout)

    async def _run(self) -> AsyncGenerator[Event, None]:
        failures = 0
        while True:
            try:
                async with aclosing(self._connection()) as connection:
                    async for event in connection:
                        if event.id is not None:
                            failures = 0
                        yield event
                        if self._ends_with_job and event.is_terminal:
                            return
                return  # 204: nothing more to send
            except (_Drop, httpx.TransportError) as drop:
                reason = _describe(drop)
            failures += 1
            if failures > self._policy.max_attempts:
                tries = self._policy.max_attempts
                raise ConnectionLost(
                    f"{self._path}: connection lost ({reason}); gave up after {tries} "
                    f"reconnection {'try' if tries == 1 else 'tries'}",
                    attempts=tries,
                    last_event_id=self.last_event_id,
                )
            delay = self._policy.delay(failures, self._server_retry)
            logger.info(
                "stream dropped; reconnecting",
                extra={"path": self._path, "attempt": failures, "delay": delay, "reason": reason},
            )
            if self._on_reconnect is not None:
                self._on_reconnect(
                    Reconnecting(
                        failures, self._policy.max_attempts, delay, reason, self.last_event_id
                    )
                )
            await trio.sleep(delay)

    async def _connection(self) -> AsyncGenerator[Event, None]:
        """One connection's new events; ends quietly on 204, raises :class:`_Drop` to retry."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        async with self._http.stream(
            "GET", self._path, headers=headers, timeout=self._timeout()
        ) as response:
            if response.status_code == 204:
                return
            if response.status_code != 200:
                await response.aread()
                error = api_error_from_response(response)
                if response.status_code >= 500:
                    raise _Drop(str(error)) from error
                raise error
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                raise ProtocolError(f"{self._path}: expected an event stream, got {content_type!r}")
            self.connections += 1
            previous = self.last_event_id or ""
            decoder = SseDecoder(previous)
            async for chunk in response.aiter_bytes():
                items = decoder.feed_events(chunk)
                if decoder.retry is not None:
                    self._server_retry = decoder.retry / 1000
                for item in items:
                    if isinstance(item, SseComment):
                        continue
                    # The decoder's last-event-id buffer persists across blocks, so a
                    # block without an ``id:`` line shows the previous id again. Such a
                    # block is a stream error (the only events without ids), or else a
                    # repeated id, which is a duplicate.
                    fresh_id = item.last_event_id != previous
                    previous = item.last_event_id
                    if not fresh_id and item.event != "error":
                        self.duplicates_dropped += 1
                        continue
                    event_id = (item.last_event_id or None) if fresh_id else None
                    event = parse_event(event_id, item.event, item.data)
                    if event.id is not None:
                        key = parse_event_id(event.id)
                        if self._last_key is not None and key <= self._last_key:
                            self.duplicates_dropped += 1
                            continue
                        self._last_key = key
                        self.last_event_id = event.id
                    yield event
            raise _Drop("the server ended the stream before the job's terminal event")


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.TransportError):
        return f"{type(error).__name__}: {text}"
    return text
