"""Hypercorn, run our way: the one module that knows Hypercorn's insides.

Hypercorn's trio worker (``hypercorn.trio.run.worker_serve``) makes each
connection's handler from a class it names itself, so the one way to change
how a connection behaves without replacing attributes of Hypercorn's modules
is to run the worker ourselves. :func:`serve_app` is that worker, for one
process and plain TCP, put together from Hypercorn's own parts (its lifespan,
its worker context, its ``TCPServer``), with these workarounds:

1. **A write that never ends.** Hypercorn writes to a socket inside a
   cancel-shielded scope, so a client that stopped reading keeps its
   connection's task blocked in that write through the graceful timeout's
   cancellation, and the server never exits. Closing the socket is the one
   thing that wakes such a write: :class:`Connections` knows every open
   connection, and shutdown aborts those still open ``CUT_MARGIN`` seconds
   after the graceful timeout.
2. **The cost of the send path.** Every SSE frame and WebSocket message of
   every subscriber goes through ``TCPServer.protocol_send``; Hypercorn's
   (a lock, a shielding cancel scope, trio's ``SocketStream.send_all`` and its
   conflict detector and error translation) costs a third of the server's CPU
   per event. :class:`_Connection` writes what the socket takes at once with
   one plain ``os.write`` (nothing can cancel it half-way, so it needs no
   shield) and only the rest, if any, the shielded way.
3. **A closed connection held open by its ping loop.** When the peer has
   gone, Hypercorn's WebSocket ping task still sleeps out its interval (20 s)
   before it looks, and holds the connection (its socket, its task) open
   meanwhile. :class:`_Connection` cancels what is left of a connection once
   its reader has seen the end.
4. **WebSocket frames built once per event.** A server's frames are not
   masked, so one event's text frame is the same bytes for every subscriber:
   :func:`text_frame` builds them (once per event, through ``Event.encoded``)
   and :func:`frame_writer` writes them to the connection directly, past
   Quart's ``websocket.send``, Hypercorn's ``WSStream.app_send`` and
   wsproto's framing, which would otherwise frame the same text again for
   every subscriber. Limits: whole (``FIN``) text frames only, never
   compressed (``permessage-deflate`` lets any message go uncompressed, RSV1
   clear), written only while wsproto's connection is open and no fragmented
   message of its own is half-sent; anything else (other servers, HTTP/2
   WebSockets) gets no writer and the caller sends through Quart as before.
   A write may carry several whole frames (a batch: one syscall).
5. **SSE chunks written straight to the connection.** Between a body
   chunk's ``send`` and the socket, Hypercorn's ``HTTPStream`` and
   ``H11Protocol`` and h11 build three event objects and run h11's state
   machine for ``<hex size>\r\n<data>\r\n``, and the write lock is a trip
   through the scheduler: more than the socket write. :func:`body_writer`
   (asked once the headers are out) frames the chunk itself and writes it
   with :meth:`_Connection.write_raw`. h11 is not told, and need not be: a
   chunked body's data leaves its state as it was, so the end of the
   response (sent the usual way), keep-alive and close behave as before.
   Limits: HTTP/1.1 chunked bodies on this module's connections only (it
   reads h11's private ``_writer`` to know; renamed, there is no writer);
   HTTP/2, HTTP/1.0, a ``Content-Length``, a ``HEAD``, another server or a
   response not started get no writer, and the caller sends through ASGI.
   Once the client is gone (Hypercorn closed the stream) a chunk is dropped.

Each relies on Hypercorn's insides as they are in :data:`TESTED_VERSIONS`;
:func:`check_version` refuses any other version at startup, loudly. The tests
of these workarounds are in ``tests/test_web_hypercorn.py`` (of 5:
``tests/test_web_hypercorn_sse.py``).
"""

from __future__ import annotations

import contextlib
import errno
import importlib.metadata
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from functools import partial

import h11
import trio
from h11._writers import ChunkedWriter
from hypercorn.config import Config
from hypercorn.events import Closed, RawData
from hypercorn.events import Event as HypercornEvent
from hypercorn.protocol.events import Data
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import ASGIHTTPState, HTTPStream
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app
from wsproto.connection import ConnectionState as WsState

from ._accept import serve_listeners

logger = logging.getLogger("aura_actors.server")

#: Hypercorn release series whose insides this module was written and tested against.
TESTED_VERSIONS = ("0.18",)

#: Seconds past the graceful timeout before connections still open are aborted.
CUT_MARGIN = 0.25


class UntestedHypercorn(RuntimeError):
    """The installed Hypercorn is not one this server's workarounds were tested with."""


def installed_version() -> str:
    """The version of the installed Hypercorn distribution."""
    return importlib.metadata.version("hypercorn")


def check_version(version: str | None = None) -> None:
    """Raise :class:`UntestedHypercorn` unless ``version`` (default: installed) is tested."""
    version = installed_version() if version is None else version
    series = ".".join(version.split(".")[:2])
    if series not in TESTED_VERSIONS:
        tested = ", ".join(f"{tested}.x" for tested in TESTED_VERSIONS)
        raise UntestedHypercorn(
            f"Hypercorn {version} is untested: aura_actors.web._hypercorn works around "
            f"the insides of Hypercorn {tested} only. Install a tested version "
            f"(pip install 'hypercorn[trio]>=0.18,<0.19'), or re-check each workaround "
            f"there against the new version and add it to TESTED_VERSIONS."
        )


class _Connection(TCPServer):
    """Hypercorn's handler of one connection, with a cheaper write and an early end."""

    async def protocol_send(self, event: HypercornEvent) -> None:
        """Hypercorn's write, minus the layers a plain TCP socket does not need (workaround 2).

        The semantics are Hypercorn's: one write at a time (its lock), never
        cut half-way by a cancellation, a broken or closed socket closes the
        protocol. Taking the lock is a checkpoint, so every write yields to the
        scheduler once and the tasks that make the events run between writes.
        """
        stream: object = self.stream
        if type(event) is not RawData or not isinstance(stream, trio.SocketStream):
            await super().protocol_send(event)
            return
        async with self.send_lock:
            try:
                data = event.data
                sent = _write_now(stream.socket, data)
                if sent < len(data):
                    with trio.CancelScope(shield=True):
                        await _send_all(stream.socket, memoryview(data)[sent:])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())

    async def write_raw(self, data: bytes) -> None:
        """Write ``data`` whole, after any write under way; never cut (workaround 5).

        Not a checkpoint when no other write holds the lock and the socket
        takes every byte at once (then it is one plain ``os.write``);
        otherwise it waits its turn and for the socket, shielded, as
        :meth:`protocol_send` does. A broken or closed socket closes the
        protocol, as there.
        """
        stream: object = self.stream
        lock = self.send_lock
        if not isinstance(stream, trio.SocketStream) or lock.locked():
            with trio.CancelScope(shield=True):
                await self.protocol_send(RawData(data))
            return
        lock.acquire_nowait()  # no checkpoint between the check and the write
        try:
            sent = _write_now(stream.socket, data)
            if sent < len(data):
                with trio.CancelScope(shield=True):
                    await _send_all(stream.socket, memoryview(data)[sent:])
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            lock.release()
        with trio.CancelScope(shield=True):
            await self.protocol.handle(Closed())

    async def _read_data(self) -> None:
        await super()._read_data()
        # The peer is gone (or the connection was closed) and every stream on it
        # has been told so: what is left, such as the WebSocket ping loop sleeping
        # out its interval, must not hold the connection open (workaround 3).
        nursery = self._task_group._nursery
        if nursery is not None:
            nursery.cancel_scope.cancel()


def _write_now(sock: trio.socket.SocketType, data: bytes) -> int:
    """Write what the non-blocking socket takes at once; how many bytes, or the stream error."""
    if sock.did_shutdown_SHUT_WR:
        raise trio.ClosedResourceError("can't send data after sending EOF")
    try:
        return os.write(sock.fileno(), data)
    except BlockingIOError:
        return 0
    except OSError as exc:
        if exc.errno in _CLOSED_SOCKET_ERRNOS:
            raise trio.ClosedResourceError("this socket was already closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


async def _send_all(sock: trio.socket.SocketType, data: memoryview) -> None:
    """``SocketStream.send_all`` for one writer: every byte, or the stream error."""
    try:
        sent = 0
        while sent < len(data):
            sent += await sock.send(data[sent:])
    except OSError as exc:
        if exc.errno in _CLOSED_SOCKET_ERRNOS:
            raise trio.ClosedResourceError("this socket was already closed") from None
        raise trio.BrokenResourceError(f"socket connection broken: {exc}") from exc


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


#: What a write to a socket closed under it fails with (as trio's ``SocketStream``).
_CLOSED_SOCKET_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


class Connections:
    """The open connections of one server, so that shutdown can abort those that hang."""

    def __init__(self) -> None:
        self._streams: set[trio.SocketStream] = set()

    def __len__(self) -> int:
        return len(self._streams)

    def admits(self, stream: trio.SocketStream, address: object) -> bool:
        """Whether to serve a connection just accepted from ``address`` (a hook: yes)."""
        return True

    async def serve(
        self, connection: Callable[[trio.SocketStream], TCPServer], stream: trio.SocketStream
    ) -> None:
        """Run the connection made for ``stream`` to its end, known meanwhile."""
        self._streams.add(stream)
        try:
            await connection(stream).run()
        finally:
            self._streams.discard(stream)

    def abort(self) -> int:
        """Reset every open connection (workaround 1); return how many there were."""
        aborted = 0
        for stream in list(self._streams):
            sock = stream.socket
            if sock.fileno() == -1:
                continue
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()  # wakes a write blocked on it, even a shielded one
            aborted += 1
        return aborted

    async def abort_after(self, seconds: float) -> None:
        """Sleep ``seconds`` (a checkpoint; cancellation ends it), then :meth:`abort`."""
        await trio.sleep(seconds)
        aborted = self.abort()
        if aborted:
            logger.warning("cut connections that did not finish in time", extra={"count": aborted})


def _listen(config: Config) -> tuple[list[trio.SocketListener], list[str]]:
    if config.ssl_enabled:
        raise ValueError("this server serves plain HTTP only (put TLS in front of it)")
    sockets = config.create_sockets()
    listeners: list[trio.SocketListener] = []
    binds: list[str] = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
    return listeners, binds


async def serve_app(
    app: ASGIFramework,
    config: Config,
    *,
    shutdown_trigger: Callable[[], Awaitable[None]],
    connections: Connections | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` as Hypercorn's trio worker does, until ``shutdown_trigger`` returns.

    Started with ``nursery.start``, it reports the URLs it listens on. On
    shutdown it stops accepting, gives open connections
    ``config.graceful_timeout`` seconds, cancels them, and aborts any still
    open ``CUT_MARGIN`` seconds later; then it runs the app's lifespan
    shutdown and returns. Cancelling it cancels everything inside at once.
    Raises :class:`UntestedHypercorn` before doing anything on an untested
    Hypercorn, :class:`OSError` when the address cannot be bound.
    """
    check_version()
    connections = Connections() if connections is None else connections
    wrapped = wrap_app(app, config.wsgi_max_body_size, "asgi")
    config.set_statsd_logger_class(StatsdLogger)
    lifespan_state: LifespanState = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    state = ConnectionState(lifespan_state.copy())

    # Hypercorn annotates the stream as TLS, and takes a plain one as well.
    connection = partial(_Connection, wrapped, config, context, state)
    handle = partial(connections.serve, connection)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            listeners, binds = _listen(config)
            task_status.started(binds)
            try:
                async with trio.open_nursery() as accepting:
                    accepting.start_soon(
                        serve_listeners, handle, listeners, server_nursery, connections.admits
                    )
                    await shutdown_trigger()
                    accepting.cancel_scope.cancel()
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
                lifespan_nursery.start_soon(
                    connections.abort_after, config.graceful_timeout + CUT_MARGIN
                )
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
