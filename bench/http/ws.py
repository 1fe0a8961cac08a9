"""A minimal WebSocket client for the load generator: raw trio sockets + wsproto.

The counterpart of :mod:`bench.http.wire`'s SSE client, with the same shape
(:func:`open_ws` returns a :class:`WsStream` whose :meth:`WsStream.receive`
returns the events a read completes, ``closed`` is set when the server ends the
stream), so the load generator's readers treat both transports alike. One
connection is one socket and one ``wsproto`` state machine, with no background
task and no queue. ``trio-websocket`` adds a reader task and a memory channel
per connection: measured against the peer with 100 jobs × 1,000 clients (~9k
events/s), it took the load process ~80% of a core against ~50% for this client,
and its own queueing raised the measured p99. Pings are answered inside
:meth:`WsStream.receive`.

Each text frame is ``{"id": ..., "event": TYPE, "data": {...}}`` (CONTRACT.md
section 5). Like the SSE parser, the client does not decode the JSON of a
frame that starts in the servers' compact form: the ``id`` and ``event`` are
read from its head; any other frame is decoded with :func:`json.loads`.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)

from bench.http.wire import HttpError, SseEvent

#: Events carry the same fields as SSE events; the data is the frame's raw text.
WsEvent = SseEvent


class WsHandshakeError(HttpError, RuntimeError):
    """The server refused the upgrade or closed the connection during the handshake."""


_HEAD = re.compile(r'\{\s*"id"\s*:\s*"([^"]*)"\s*,\s*"event"\s*:\s*"([^"]*)"')


def parse_message(text: str) -> WsEvent:
    """The ``id`` (``""`` if none) and ``event`` of one message; ``data`` is the whole text."""
    head = _HEAD.match(text)
    if head is not None:
        return WsEvent(head.group(1), head.group(2), text)
    message: Any = json.loads(text)
    if not isinstance(message, dict):
        return WsEvent("", "message", text)
    event_id = message.get("id")
    return WsEvent("" if event_id is None else str(event_id), str(message.get("event")), text)


class WsStream:
    """One open WebSocket. Create with :func:`open_ws`; read with :meth:`receive`."""

    def __init__(self, stream: trio.SocketStream, connection: WSConnection) -> None:
        self.stream = stream
        self.status = 101
        self._connection = connection
        self._pending: list[Event] = []
        self._text: list[str] = []
        self.closed = False
        self.close_code: int | None = None

    async def receive(self) -> list[WsEvent]:
        """Wait for more bytes; return the messages they complete. ``closed`` is set at the end."""
        if self._pending:
            frames, self._pending = self._pending, []
        else:
            data = await self.stream.receive_some(65536)
            self._connection.receive_data(data or None)
            frames = list(self._connection.events())
            if not data:
                self.closed = True
        out: list[WsEvent] = []
        for frame in frames:
            if isinstance(frame, TextMessage):
                if frame.message_finished and not self._text:
                    out.append(parse_message(frame.data))
                else:
                    self._text.append(frame.data)
                    if frame.message_finished:
                        out.append(parse_message("".join(self._text)))
                        self._text.clear()
            elif isinstance(frame, Ping):
                await self.stream.send_all(self._connection.send(frame.response()))
            elif isinstance(frame, CloseConnection):
                self.close_code = frame.code
                self.closed = True
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await self.stream.send_all(self._connection.send(frame.response()))
            elif isinstance(frame, BytesMessage):
                continue  # not part of the protocol
        return out

    async def send_text(self, text: str) -> None:
        """Send one text message (e.g. ``{"action": "cancel"}``)."""
        await self.stream.send_all(self._connection.send(TextMessage(data=text)))

    async def aclose(self) -> None:
        """Close the connection (without the closing handshake)."""
        await self.stream.aclose()


async def open_ws(host: str, port: int, path: str) -> WsStream:
    """Connect and complete the opening handshake for ``path``.

    Raises :class:`WsHandshakeError` when the server refuses the upgrade or closes
    the connection during the handshake.
    """
    stream = await trio.open_tcp_stream(host, port)
    connection = WSConnection(ConnectionType.CLIENT)
    try:
        await stream.send_all(connection.send(Request(host=f"{host}:{port}", target=path)))
        pending: list[Event] = []
        accepted = False
        while not accepted:
            data = await stream.receive_some(65536)
            if not data:
                raise WsHandshakeError("connection closed during the WebSocket handshake")
            connection.receive_data(data)
            for event in connection.events():
                if accepted:
                    pending.append(event)
                elif isinstance(event, AcceptConnection):
                    accepted = True
                elif isinstance(event, RejectConnection):
                    raise WsHandshakeError(f"WebSocket upgrade refused with {event.status_code}")
    except BaseException:
        await stream.aclose()
        raise
    ws = WsStream(stream, connection)
    ws._pending = pending
    return ws
