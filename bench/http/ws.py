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
:meth:`WsStream.receive`, and whole text frames are decoded without wsproto
(see :class:`WsStream`).

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


#: A server's whole, unfragmented, unmasked text frame starts with this byte (FIN, text).
_FIN_TEXT = 0x81


def _frame_end(buffer: bytes, pos: int) -> int:
    """Where the frame starting at ``pos`` ends, or ``-1`` while it is incomplete."""
    size = len(buffer)
    if pos + 2 > size:
        return -1
    length = buffer[pos + 1] & 0x7F
    head = 2
    if length == 126:
        head = 4
        if pos + head > size:
            return -1
        length = int.from_bytes(buffer[pos + 2 : pos + 4], "big")
    elif length == 127:
        head = 10
        if pos + head > size:
            return -1
        length = int.from_bytes(buffer[pos + 2 : pos + 10], "big")
    if buffer[pos + 1] & 0x80:
        head += 4  # masked: wsproto will say a server must not
    end = pos + head + length
    return end if end <= size else -1


class WsStream:
    """One open WebSocket. Create with :func:`open_ws`; read with :meth:`receive`.

    The common frame, a whole unmasked text frame from the server, is
    decoded here (its header is two to ten bytes); every other frame (ping,
    close, a fragment, anything unexpected) goes to ``wsproto`` whole, in
    order, so wsproto's buffer is empty between frames and its state (a
    fragmented message, the close) stays its own. Measured (20,000 frames
    of a progress event, in-process): 87 µs of CPU per frame received with
    wsproto decoding each, 52 µs this way; at 7,500 events/s that is a
    quarter of a core of the load process, which ran at 57-89 % of its core
    there: close to saturation, where its own queueing adds to the latency
    it measures.
    """

    def __init__(
        self, stream: trio.abc.Stream, connection: WSConnection, data: bytes = b""
    ) -> None:
        self.stream = stream
        self.status = 101
        self._connection = connection
        self._buffer = data
        self._text: list[str] = []
        self.closed = False
        self.close_code: int | None = None

    async def receive(self) -> list[WsEvent]:
        """Wait for more bytes; return the messages they complete. ``closed`` is set at the end."""
        buffer = self._buffer
        if _frame_end(buffer, 0) < 0:
            data = await self.stream.receive_some(65536)
            if not data:
                self.closed = True
                return []
            buffer = buffer + data if buffer else bytes(data)
        out: list[WsEvent] = []
        pos = 0
        while (end := _frame_end(buffer, pos)) >= 0:
            if buffer[pos] == _FIN_TEXT and not buffer[pos + 1] & 0x80 and not self._text:
                head = 2 if buffer[pos + 1] < 126 else (4 if buffer[pos + 1] == 126 else 10)
                out.append(parse_message(buffer[pos + head : end].decode()))
            else:
                self._connection.receive_data(buffer[pos:end])
                await self._handle(list(self._connection.events()), out)
            pos = end
        self._buffer = buffer[pos:]
        return out

    async def _handle(self, frames: list[Event], out: list[WsEvent]) -> None:
        for frame in frames:
            if isinstance(frame, TextMessage):
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
        received = b""
        while b"\r\n\r\n" not in received:
            data = await stream.receive_some(65536)
            if not data:
                raise WsHandshakeError("connection closed during the WebSocket handshake")
            received += data
        head, _, rest = received.partition(b"\r\n\r\n")
        # Only the response's head to wsproto: the frames after it are read by WsStream.
        connection.receive_data(head + b"\r\n\r\n")
        for event in connection.events():
            if isinstance(event, RejectConnection):
                raise WsHandshakeError(f"WebSocket upgrade refused with {event.status_code}")
            if isinstance(event, AcceptConnection):
                return WsStream(stream, connection, rest)
        raise WsHandshakeError("no WebSocket handshake answer")
    except BaseException:
        await stream.aclose()
        raise
