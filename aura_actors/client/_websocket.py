"""A job's events over WebSocket, with cancel over the same socket."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from ..runtime import EventId
from ._errors import (
    AuraError,
    ConnectionLost,
    NotFound,
    ProtocolError,
    Unauthorized,
    ValidationFailed,
    api_error,
)
from ._events import Event, parse_event, parse_event_id
from ._reconnect import ReconnectPolicy
from ._stream import OnReconnect, Reconnecting

__all__ = ["JobSocket"]

#: Close codes of the server (contract section 5).
CLOSE_NORMAL = 1000
CLOSE_BAD_REQUEST = 4400
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404


class _Drop(Exception):
    pass


class JobSocket:
    """One job's events over ``GET /api/jobs/{id}/ws``; made by
    :meth:`AuraClient.websocket_events <aura_actors.client.AuraClient.websocket_events>`.

    Iterate it for typed events (the same ids and data as the SSE stream); call
    :meth:`cancel` to cancel the job over the socket. It reconnects like an
    :class:`~aura_actors.client.EventStream` (same :class:`ReconnectPolicy`),
    resuming with ``lastEventId``, and ends after the terminal event or when
    the server closes with 1000. Close 4404 raises
    :class:`~aura_actors.client.NotFound`, 4401
    :class:`~aura_actors.client.Unauthorized`, exhausted tries
    :class:`~aura_actors.client.ConnectionLost`.

    The connection is run by a task in the ``async with`` block's nursery;
    leaving the block (or cancelling it) closes the socket.

    :ivar last_event_id: the id of the last event delivered.
    :ivar connections: WebSocket connections opened so far.
    """

    def __init__(
        self,
        *,
        job_id: str,
        url: str,
        headers: list[tuple[bytes, bytes]],
        last_event_id: str | None,
        policy: ReconnectPolicy,
        rest_cancel: Callable[[], Awaitable[object]],
        on_reconnect: OnReconnect | None = None,
    ) -> None:
        self.job_id = job_id
        self._url = url
        self._headers = headers
        self._policy = policy
        self._rest_cancel = rest_cancel
        self._on_reconnect = on_reconnect
        self.last_event_id: str | None = last_event_id or None
        self._last_key: EventId | None = (
            None if self.last_event_id is None else parse_event_id(self.last_event_id)
        )
        self.connections = 0
        self._ws: WebSocketConnection | None = None
        self._connecting = True  # until the first try ends
        self._changed = trio.Event()
        self._failures = 0
        self._error: AuraError | None = None
        self._send, self._receive = trio.open_memory_channel[Event](0)

    def __aiter__(self) -> JobSocket:
        return self

    async def __anext__(self) -> Event:
        """The next event (a checkpoint); ``StopAsyncIteration`` after the last one."""
        try:
            return await self._receive.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            if self._error is not None:
                raise self._error from self._error.__cause__
            raise StopAsyncIteration from None

    async def cancel(self) -> None:
        """Ask the server to cancel the job: ``{"action": "cancel"}`` over the socket.

        If a connection is being opened, the request waits for it. When none
        is open or opening (waiting to reconnect, or the stream is over) the
        request goes over HTTP instead (``POST /api/jobs/{id}/cancel``, which
        raises :class:`~aura_actors.client.Conflict` if the job already ended;
        over the socket the server answers that with an ``error`` event). The
        job's ``job-cancelled`` event then arrives on the stream. A checkpoint.
        """
        while True:
            ws = self._ws
            if ws is not None and not ws.closed:
                try:
                    await ws.send_message(json.dumps({"action": "cancel"}))
                    return
                except ConnectionClosed:
                    pass
            if not self._connecting:
                break
            await self._changed.wait()  # a connection is being opened: use it
        await self._rest_cancel()

    def _set_state(self, *, connecting: bool, ws: WebSocketConnection | None) -> None:
        self._connecting = connecting
        self._ws = ws
        self._changed.set()
        self._changed = trio.Event()

    # -- the connection task ----------------------------------------------------------------

    async def run(self) -> None:
        """Keep a connection open until the job's stream ends; then close the channel."""
        async with self._send:
            try:
                await self._reconnect_loop()
            except AuraError as error:
                self._error = error
            finally:
                self._set_state(connecting=False, ws=None)

    def _connect_url(self) -> str:
        if self.last_event_id is None:
            return self._url
        return f"{self._url}?{urlencode({'lastEventId': self.last_event_id})}"

    async def _reconnect_loop(self) -> None:
        self._failures = 0
        while True:
            try:
                await self._one_connection()
                return
            except _Drop as drop:
                reason = str(drop)
            except (HandshakeError, OSError, trio.BrokenResourceError) as error:
                if isinstance(error, ConnectionRejected):
                    status = error.status_code
                    if status < 500:
                        body = (error.body or b"").decode("utf-8", errors="replace")[:200]
                        raise api_error(status, f"http_{status}", body or "rejected") from error
                reason = f"{type(error).__name__}: {error}"
            self._failures += 1
            failures = self._failures
            if failures > self._policy.max_attempts:
                tries = self._policy.max_attempts
                raise ConnectionLost(
                    f"WebSocket of job {self.job_id}: connection lost ({reason}); gave up "
                    f"after {tries} reconnection {'try' if tries == 1 else 'tries'}",
                    attempts=tries,
                    last_event_id=self.last_event_id,
                )
            delay = self._policy.delay(failures)
            if self._on_reconnect is not None:
                self._on_reconnect(
                    Reconnecting(
                        failures, self._policy.max_attempts, delay, reason, self.last_event_id
                    )
                )
            await trio.sleep(delay)

    async def _one_connection(self) -> None:
        self._set_state(connecting=True, ws=None)
        try:
            await self._connected_session()
        finally:
            self._set_state(connecting=False, ws=None)

    async def _connected_session(self) -> None:
        async with open_websocket_url(
            self._connect_url(),
            extra_headers=self._headers,
            connect_timeout=self._policy.connect_timeout,
            disconnect_timeout=self._policy.connect_timeout,
        ) as ws:
            self.connections += 1
            self._set_state(connecting=False, ws=ws)
            while True:
                try:
                    raw = await ws.get_message()
                except ConnectionClosed as closed:
                    self._closed(closed)
                    return
                event = self._parse(raw)
                if event is None:
                    continue
                if event.id is not None:
                    self._failures = 0  # a connection that delivers resets the count
                await self._send.send(event)
                if event.is_terminal:
                    return

    def _closed(self, closed: ConnectionClosed) -> None:
        code = closed.reason.code if closed.reason is not None else 1006
        reason = (closed.reason.reason if closed.reason is not None else None) or ""
        if code == CLOSE_NORMAL:
            return  # the server has nothing more to send
        if code == CLOSE_NOT_FOUND:
            raise NotFound(404, "job_not_found", reason or f"job {self.job_id!r} not found")
        if code == CLOSE_UNAUTHORIZED:
            raise Unauthorized(401, "unauthorized", reason or "missing or bad token")
        if code == CLOSE_BAD_REQUEST:
            raise ValidationFailed(400, reason or "bad_request", "the server refused the socket")
        raise _Drop(f"socket closed with {code} {reason}".strip())

    def _parse(self, raw: str | bytes) -> Event | None:
        try:
            message = json.loads(raw)
        except ValueError:
            raise ProtocolError(f"WebSocket message is not JSON: {raw[:200]!r}") from None
        if not isinstance(message, dict):
            raise ProtocolError(f"WebSocket message should be an object: {message!r}")
        event_id = message.get("id")
        if event_id is not None and not isinstance(event_id, str):
            raise ProtocolError(f"bad event id {event_id!r}")
        event = parse_event(event_id, str(message.get("event", "")), message.get("data"))
        if event.id is not None:
            key = parse_event_id(event.id)
            if self._last_key is not None and key <= self._last_key:
                return None
            self._last_key = key
            self.last_event_id = event.id
        return event
