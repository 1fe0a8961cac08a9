"""A job's events over WebSocket, with cancel over the same socket."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode

import trio
from pydantic import ValidationError
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from ..protocol import CloseCode, EventMessage
from ._errors import (
    AuraError,
    NotFound,
    ProtocolError,
    Unauthorized,
    ValidationFailed,
    api_error,
)
from ._events import Event, parse_event
from ._resume import OnReconnect, ReconnectPolicy, Resume, StreamDropped

__all__ = ["JobSocket"]

#: No close frame at all (RFC 6455 section 7.1.5); never sent on the wire.
_ABNORMAL_CLOSURE = 1006


class JobSocket:
    """One job's events over ``GET /api/jobs/{id}/ws``; made by
    :meth:`AuraClient.websocket_events <aura_actors.client.AuraClient.websocket_events>`.

    Iterate it for typed events (the same ids and data as the SSE stream); call
    :meth:`cancel` to cancel the job over the socket. It reconnects like an
    :class:`~aura_actors.client.EventStream` (same :class:`ReconnectPolicy`
    and the same resume logic), resuming with ``lastEventId``, and ends after
    the terminal event or when the server closes with 1000. Close 4404 raises
    :class:`~aura_actors.client.NotFound`, 4401
    :class:`~aura_actors.client.Unauthorized`, exhausted tries
    :class:`~aura_actors.client.ConnectionLost`.

    The connection is run by a task in the ``async with`` block's nursery;
    leaving the block (or cancelling it) closes the socket.

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
        self._resume = Resume(
            f"WebSocket of job {job_id}",
            policy,
            last_event_id=last_event_id,
            on_reconnect=on_reconnect,
        )
        self.connections = 0
        self._ws: WebSocketConnection | None = None
        self._connecting = True  # until the first try ends
        self._changed = trio.Event()
        self._error: AuraError | None = None
        self._send, self._receive = trio.open_memory_channel[Event](0)

    @property
    def last_event_id(self) -> str | None:
        """The id of the last event delivered."""
        return self._resume.last_event_id

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
        last_event_id = self._resume.last_event_id
        if last_event_id is None:
            return self._url
        return f"{self._url}?{urlencode({'lastEventId': last_event_id})}"

    async def _reconnect_loop(self) -> None:
        while True:
            try:
                await self._one_connection()
                return
            except StreamDropped as drop:
                reason = str(drop)
            except (HandshakeError, OSError, trio.BrokenResourceError) as error:
                reason = _refusal(error)
            await self._resume.backoff(reason)

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
                event = _parse_message(raw)
                if not self._resume.accept(event):
                    continue
                await self._send.send(event)
                if event.is_terminal:
                    return

    def _closed(self, closed: ConnectionClosed) -> None:
        """Return if the server has nothing more to send; raise what the close code means."""
        code = closed.reason.code if closed.reason is not None else _ABNORMAL_CLOSURE
        reason = (closed.reason.reason if closed.reason is not None else None) or ""
        if code == CloseCode.NORMAL:
            return
        if code == CloseCode.NOT_FOUND:
            raise NotFound(404, "job_not_found", reason or f"job {self.job_id!r} not found")
        if code == CloseCode.UNAUTHORIZED:
            raise Unauthorized(401, "unauthorized", reason or "missing or bad token")
        if code == CloseCode.BAD_REQUEST:
            raise ValidationFailed(400, reason or "bad_request", "the server refused the socket")
        if code in (CloseCode.POLICY_VIOLATION, CloseCode.MESSAGE_TOO_BIG):
            raise ProtocolError(f"the server closed the socket with {code} {reason}".strip())
        raise StreamDropped(f"socket closed with {code} {reason}".strip())


def _refusal(error: HandshakeError | OSError | trio.BrokenResourceError) -> str:
    """Why a connection could not be opened; raises for a refusal that is final (4xx)."""
    if isinstance(error, ConnectionRejected) and error.status_code < 500:
        status = error.status_code
        body = (error.body or b"").decode("utf-8", errors="replace")[:200]
        raise api_error(status, f"http_{status}", body or "rejected") from error
    return f"{type(error).__name__}: {error}"


def _parse_message(raw: str | bytes) -> Event:
    """One server frame as its typed event; :class:`ProtocolError` if it is not one."""
    try:
        message = EventMessage.model_validate_json(raw)
    except ValidationError as exc:
        raise ProtocolError(f"WebSocket message is not an event: {str(raw)[:200]!r}") from exc
    return parse_event(message.id, message.event, message.data)
