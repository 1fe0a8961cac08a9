"""Bare ASGI apps on :func:`~aura_actors.web._hypercorn.serve_app` (our copy of Hypercorn's
trio worker), for the tests of its workarounds, and a server stopped while its write to a
client that stopped reading (:func:`~support.streams.stuck_client`) is blocked.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import trio
import trio.testing
from hypercorn.config import Config

from aura_actors.web._hypercorn import Connections, serve_app

from .streams import wait_until

App = Callable[[Any, Any, Any], Awaitable[None]]


@dataclass
class Served:
    url: str
    connections: Connections
    #: Set: serve_app shuts down (its graceful wait, then its cut).
    stop: trio.Event
    #: Cancelled: serve_app is cancelled, not shut down.
    scope: trio.CancelScope
    #: Set once serve_app has returned.
    stopped: trio.Event


@asynccontextmanager
async def serving(app: App, **config: Any) -> AsyncIterator[Served]:
    """``app`` served on a free port of 127.0.0.1, no logs, Hypercorn's ``config`` set as
    given, until the block ends, or ``stop`` or ``scope`` ends it."""
    settings = Config()
    settings.bind = ["127.0.0.1:0"]
    settings.accesslog = settings.errorlog = None
    for name, value in config.items():
        setattr(settings, name, value)
    connections = Connections()
    stop, scope, stopped = trio.Event(), trio.CancelScope(), trio.Event()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        with scope:
            try:
                await serve_app(
                    app,  # type: ignore[arg-type]
                    settings,
                    shutdown_trigger=stop.wait,
                    connections=connections,
                    task_status=task_status,
                )
            finally:
                stopped.set()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(run)
        served = Served(binds[0], connections, stop, scope, stopped)
        try:
            yield served
        finally:
            stop.set()


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        await send({"type": message["type"] + ".complete"})
        if message["type"] == "lifespan.shutdown":
            return


async def stopped_with_a_write_blocked(served: Served, stop: Callable[[], object]) -> bool:
    """Once ``served`` holds one connection and its app's write to it blocks (the app
    writes until both socket buffers are full, then its write blocks, shielded), ``stop()``
    it (``served.stop.set``, ``served.scope.cancel``): whether it stopped within 10 s.

    Its connections are cut then either way: a server that hung ends the test, not hangs it.
    """
    await wait_until(lambda: len(served.connections) == 1)
    await trio.testing.wait_all_tasks_blocked(cushion=0.05)
    stop()
    with trio.move_on_after(10):
        await served.stopped.wait()
    ended = served.stopped.is_set()
    served.connections.abort()
    return ended
