"""The connection handler with a cheaper write and an early end (workarounds 1–3)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import socket
import struct
from collections.abc import Callable

import trio
from hypercorn.events import Closed, RawData
from hypercorn.events import Event as HypercornEvent
from hypercorn.trio.tcp_server import TCPServer

logger = logging.getLogger("aura_actors.server")

#: What a write to a socket closed under it fails with (as trio's ``SocketStream``).
_CLOSED_SOCKET_ERRNOS = frozenset({errno.EBADF, errno.ENOTSOCK})


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
        takes every byte at once (then it is one plain ``os.write``, and the
        lock is not even taken: nothing else runs during it); otherwise it
        waits its turn and for the socket, shielded, as :meth:`protocol_send`
        does. A broken or closed socket closes the protocol, as there.
        """
        stream: object = self.stream
        lock = self.send_lock
        if not isinstance(stream, trio.SocketStream) or lock.locked():
            with trio.CancelScope(shield=True):
                await self.protocol_send(RawData(data))
            return
        try:
            sent = _write_now(stream.socket, data)
            if sent == len(data):
                return
            # The rest waits for the socket: hold the lock (still free, no checkpoint
            # since the check) so that later writes go after it.
            lock.acquire_nowait()
            try:
                with trio.CancelScope(shield=True):
                    await _send_all(stream.socket, memoryview(data)[sent:])
            finally:
                lock.release()
            return
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
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
