"""Hypercorn's trio worker, ours: one process, plain TCP, our connections and accept loop."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from functools import partial

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ASGIFramework, ConnectionState, LifespanState
from hypercorn.utils import repr_socket_addr, wrap_app

from .._accept import serve_listeners
from ._connection import Connections, _Connection
from ._version import check_version

#: Seconds past the graceful timeout before connections still open are aborted.
CUT_MARGIN = 0.25


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
    shutdown and returns. Cancelling it cancels everything inside at once (and
    aborts open connections at once, so a write blocked on a client that stopped
    reading ends too).
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
                with trio.CancelScope(shield=True):
                    await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
                if trio.current_effective_deadline() == -math.inf:
                    # Cancelled, not shut down: no graceful wait, so cut at once what a
                    # shielded write to a client that stopped reading would hold forever.
                    connections.abort()
                else:
                    lifespan_nursery.start_soon(
                        connections.abort_after, config.graceful_timeout + CUT_MARGIN
                    )
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()
