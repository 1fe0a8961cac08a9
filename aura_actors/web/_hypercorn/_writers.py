"""WebSocket frames and SSE chunks written straight to the connection (workarounds 4, 5)."""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable

import h11
import trio
from h11._writers import ChunkedWriter
from hypercorn.protocol.events import Data
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from wsproto.connection import ConnectionState as WsState

from ._connection import _Connection


def text_frame(text: str) -> bytes:
    """``text`` as one whole, unmasked WebSocket text frame (a server's frame, RFC 6455 5.2)."""
    payload = text.encode()
    size = len(payload)
    if size < 126:
        head = struct.pack("!BB", 0x81, size)
    elif size < 1 << 16:
        head = struct.pack("!BBH", 0x81, 126, size)
    else:
        head = struct.pack("!BBQ", 0x81, 127, size)
    return head + payload


#: Writes prebuilt whole frames; ``False`` if it could not (send them the usual way).
FrameWriter = Callable[[bytes], Awaitable[bool]]


def frame_writer(send: object) -> FrameWriter | None:
    """A writer of prebuilt frames to the WebSocket behind the ASGI ``send``, if Hypercorn's.

    ``send`` is the ASGI send Hypercorn gave the app (``WSStream.app_send``);
    for anything else there is no writer (``None``). On this module's
    connections the frames go out with :meth:`_Connection.write_raw` (a
    checkpoint only when it waits), elsewhere with Hypercorn's write. The
    writer answers ``False``, writing nothing, when the frames may not go
    directly (see workaround 4). After the connection closed it drops them
    and answers ``True``, as Hypercorn does with a message sent then.
    """
    stream = getattr(send, "__self__", None)
    if type(stream) is not WSStream or getattr(send, "__name__", "") != "app_send":
        return None
    ws_stream: WSStream = stream
    protocol = getattr(ws_stream.send, "__self__", None)
    server = getattr(protocol.send, "__self__", None) if type(protocol) is H11Protocol else None
    tcp = server if isinstance(server, _Connection) else None

    async def write(frame: bytes) -> bool:
        if ws_stream.closed:
            return True
        if ws_stream.state is not ASGIWebsocketState.CONNECTED:
            return False
        connection = ws_stream.connection
        if connection.state is not WsState.OPEN or connection._proto._outbound_opcode is not None:
            return False
        if tcp is not None:
            await tcp.write_raw(frame)
        else:
            await ws_stream.send(Data(stream_id=ws_stream.stream_id, data=frame))
        return True

    return write


#: Writes one chunk of a response body straight to the connection (workaround 5).
BodyWriter = Callable[[bytes], Awaitable[None]]


def body_writer(send: object) -> BodyWriter | None:
    """A writer of body chunks past Hypercorn's send path, if ``send`` allows one.

    ``send`` is the ASGI send Hypercorn gave the app (``HTTPStream.app_send``)
    and the response's headers must be out already; ``None`` where the
    chunks must go through ``send`` (see workaround 5 for when). The
    writer sends every chunk whole, never cut by a cancellation, and is a
    checkpoint when it has to wait (see :meth:`_Connection.write_raw`) and
    when it drops the chunk (the client is gone). An empty chunk writes
    nothing (it would read as the body's end).
    """
    stream = getattr(send, "__self__", None)
    if type(stream) is not HTTPStream or getattr(send, "__name__", "") != "app_send":
        return None
    http: HTTPStream = stream
    protocol = getattr(http.send, "__self__", None)
    if type(protocol) is not H11Protocol or getattr(http.send, "__name__", "") != "stream_send":
        return None
    connection = protocol.connection
    server = getattr(protocol.send, "__self__", None)
    if (
        type(connection) is not h11.Connection
        or not isinstance(server, _Connection)
        or http.state is not ASGIHTTPState.RESPONSE
        or http.scope["method"] == "HEAD"
        or connection.our_state is not h11.SEND_BODY
        or type(getattr(connection, "_writer", None)) is not ChunkedWriter
    ):
        return None
    tcp: _Connection = server
    h11_connection: h11.Connection = connection

    async def write(data: bytes) -> None:
        if http.closed or h11_connection.our_state is not h11.SEND_BODY:
            await trio.lowlevel.checkpoint()  # dropped; a loop of these stays cancellable
            return
        if data:
            await tcp.write_raw(b"%x\r\n%b\r\n" % (len(data), data))

    return write
