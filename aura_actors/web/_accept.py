"""The accept loop: every connection waiting in the kernel's queue taken at once.

``trio.serve_listeners`` accepts one connection per turn of the scheduler:
with hundreds of tasks runnable (a flood of requests being answered), a turn
takes tens of milliseconds, the kernel's listen queue fills, and every new
client's connect, everyone's, is dropped and retried a second later.
:func:`serve_listeners` takes every waiting connection (up to :data:`BATCH`)
each time the listening socket is readable, and serves them fairly by client
address: :data:`PER_TURN` of one address per turn of the loop, the rest of
that address waiting (a flood from one address delays that address, not a
client from another, which is served on the turn it arrives). It asks
``admits`` about each before it costs a task: a connection it turns away (an
address in the penalty box) is closed there and then.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections import deque
from collections.abc import Awaitable, Callable

import trio

logger = logging.getLogger("aura_actors.server")

#: Connections accepted in one go before the loop lets other tasks run.
BATCH = 256
#: Connections of one client address served per turn of the loop; the rest wait.
PER_TURN = 16
#: Accepted connections of one address waiting their turn at most; more are closed.
MAX_WAITING = 4096

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
    waiting: dict[object, deque[tuple[trio.SocketStream, object]]] = {}
    # A duplicate of the listening socket (the same queue) that accepts without a checkpoint.
    with socket.fromfd(own.fileno(), own.family, own.type) as sock:
        sock.setblocking(False)
        try:
            while True:
                accepted = _accept_batch(sock, waiting)
                _admit_turn(waiting, handler, handler_nursery, admits)
                if accepted is None:
                    await trio.sleep(0.1)
                elif accepted < BATCH and not waiting:
                    await trio.lowlevel.wait_readable(sock)
                else:
                    await trio.lowlevel.checkpoint()
        finally:
            for queue in waiting.values():
                for stream, _address in queue:
                    stream.socket.close()
            own.close()  # as trio's serve_listeners does: the port is free once serving ends


def _accept_batch(
    sock: socket.socket, waiting: dict[object, deque[tuple[trio.SocketStream, object]]]
) -> int | None:
    """Accept up to :data:`BATCH` into ``waiting`` by client address; how many
    (``None``: out of descriptors or memory)."""
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
        queue = waiting.setdefault(address[0] if isinstance(address, tuple) else address, deque())
        if len(queue) >= MAX_WAITING:
            stream.socket.close()
        else:
            queue.append((stream, address))
    return BATCH


def _admit_turn(
    waiting: dict[object, deque[tuple[trio.SocketStream, object]]],
    handler: Callable[[trio.SocketStream], Awaitable[object]],
    handler_nursery: trio.Nursery,
    admits: Admits,
) -> None:
    """Serve up to :data:`PER_TURN` waiting connections of each address (those ``admits``
    turns away do not count)."""
    for key in list(waiting):
        queue = waiting[key]
        served = 0
        while queue and served < PER_TURN:
            stream, address = queue.popleft()
            if admits(stream, address):
                handler_nursery.start_soon(handler, stream)
                served += 1
        if not queue:
            del waiting[key]
