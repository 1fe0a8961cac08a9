"""An SSE stream that reconnects on its own and resumes with ``Last-Event-ID``."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from types import TracebackType

import httpx

from ..protocol import SseComment, SseDecoder, SseMessage
from ._errors import ProtocolError, api_error_from_response
from ._events import Event, parse_event
from ._resume import OnReconnect, ReconnectPolicy, Resume, StreamDropped

__all__ = ["EventStream"]


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

    :ivar connections: connections that delivered the stream (200) so far.
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
        self._resume = Resume(path, policy, last_event_id=last_event_id, on_reconnect=on_reconnect)
        self.connections = 0
        self._agen = self._run()

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event delivered (resume from it later)."""
        return self._resume.last_event_id

    @property
    def duplicates_dropped(self) -> int:
        """Events dropped because their id was not new."""
        return self._resume.duplicates_dropped

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

    async def _run(self) -> AsyncGenerator[Event, None]:
        while True:
            try:
                async with aclosing(self._connection()) as connection:
                    async for event in connection:
                        yield event
                        if self._ends_with_job and event.is_terminal:
                            return
                return  # 204: nothing more to send
            except (StreamDropped, httpx.TransportError) as drop:
                reason = _describe(drop)
            await self._resume.backoff(reason)

    async def _connection(self) -> AsyncGenerator[Event, None]:
        """One connection's new events; ends quietly on 204, raises ``StreamDropped`` to retry."""
        policy = self._policy
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if self._resume.last_event_id is not None:
            headers["Last-Event-ID"] = self._resume.last_event_id
        timeout = httpx.Timeout(policy.connect_timeout, read=policy.idle_timeout)
        async with self._http.stream("GET", self._path, headers=headers, timeout=timeout) as answer:
            if answer.status_code == 204:
                return
            await self._check_answer(answer)
            self.connections += 1
            async for event in self._events(answer):
                yield event
            raise StreamDropped("the server ended the stream before the job's terminal event")

    async def _check_answer(self, answer: httpx.Response) -> None:
        if answer.status_code != 200:
            await answer.aread()
            error = api_error_from_response(answer)
            if answer.status_code >= 500:
                raise StreamDropped(str(error)) from error
            raise error
        content_type = answer.headers.get("content-type", "")
        if not content_type.startswith("text/event-stream"):
            raise ProtocolError(f"{self._path}: expected an event stream, got {content_type!r}")

    async def _events(self, answer: httpx.Response) -> AsyncGenerator[Event, None]:
        """The new events of one answer's body, in order."""
        previous = self._resume.last_event_id or ""
        decoder = SseDecoder(previous)
        async for chunk in answer.aiter_bytes():
            items = decoder.feed_events(chunk)
            if decoder.retry is not None:
                self._resume.server_retry = decoder.retry / 1000
            for item in items:
                if isinstance(item, SseComment):
                    continue
                event = self._event(item, previous)
                previous = item.last_event_id
                if event is not None and self._resume.accept(event):
                    yield event

    def _event(self, item: SseMessage, previous: str) -> Event | None:
        """The event of one SSE block (``None`` for a repeat of the previous id).

        The decoder's last-event-id buffer persists across blocks, so a block
        without an ``id:`` line shows the previous id again. Such a block is a
        stream error (the only events without ids), or else a repeated id,
        which is a duplicate.
        """
        fresh_id = item.last_event_id != previous
        if not fresh_id and item.event != "error":
            self._resume.duplicates_dropped += 1
            return None
        event_id = (item.last_event_id or None) if fresh_id else None
        return parse_event(event_id, item.event, item.data)


def _describe(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    if isinstance(error, httpx.TransportError):
        return f"{type(error).__name__}: {text}"
    return text
