"""The accept loop: every connection waiting in the kernel's queue taken at once.

``trio.serve_listeners`` accepts one connection per turn of the scheduler:
with hundreds of tasks runnable (a flood of requests being answered), a turn
takes tens of milliseconds, the kernel's listen queue fills, and every new
client's connect, everyone's, is dropped and retried a second later.
:func:`serve_listeners` takes every waiting connection (up to :data:`BATCH`)
each time the listening socket is readable, and asks ``admits`` about each
before it costs a task: a connection it turns away (an address in the penalty
box) is closed there and then.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import Awaitable, Callable

import trio

logger = logging.getLogger("aura_actors.server")

#: Connections accepted in one go before the loop lets other tasks run.
BATCH = 256

#: Accept errors of one connection that was gone already (skip it).
_GONE = frozenset({errno.ECONNABORTED, errno.EPROTO, errno.EPERM})
#: Accept errors of the process being out of something (wait a little, try again).
_OUT_OF = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})

#: Asked about each accepted connection and its peer address before it is served.
Admits = Callable[[trio.SocketStream, object], bool]


async def serve_listeners(
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    listeners: list[trio.SocketListener],
    handler_nursery: trio.Nursery,
    admits: Admits,
) -> None:
    """Run ``handler`` in ``handler_nursery`` for each connection ``admits``; forever."""
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, handler, listener, handler_nursery, admits)


async def _accept_loop(
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    listener: trio.SocketListener,
    handler_nursery: trio.Nursery,
    admits: Admits,
) -> None:
    own = listener.socket
    # A duplicate of the listening socket (the same queue) that accepts without a checkpoint.
    with socket.fromfd(own.fileno(), own.family, own.type) as sock:
        sock.setblocking(False)
        while True:
            accepted = _accept_batch(sock, handler, handler_nursery, admits)
            if accepted is None:
                await trio.sleep(0.1)
            elif accepted < BATCH:
                await trio.lowlevel.wait_readable(sock)
            else:
                await trio.lowlevel.checkpoint()


def _accept_batch(
    sock: socket.socket,
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    handler_nursery: trio.Nursery,
    admits: Admits,
) -> int | None:
    """Accept up to :data:`BATCH`; how many (``None``: out of descriptors or memory)."""
    for count in range(BATCH):
        try:
            connection, address = sock.accept()
        except BlockingIOError:
            return count
        except OSError as error:
            if error.errno in _GONE:
                continue
            if error.errno in _OUT_OF:
                logger.warning("accept failed, retrying shortly", extra={"error": str(error)})
                return None
            raise
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(connection))
        if admits(stream, address):
            handler_nursery.start_soon(handler, stream)
    return BATCH
