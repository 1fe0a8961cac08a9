"""A round-robin TCP proxy in trio: the load balancer in front of a cluster's API nodes.

Each new client connection goes to the next backend in turn (a backend that
refuses the connection is skipped, as a load balancer's health check would),
so consecutive connections, and so a client's reconnects, land on different
nodes. Bytes are copied both ways untouched; an end of stream on one side is
passed on as a half-close, an error closes both sides.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import trio


def _address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None, url
    return parts.hostname, parts.port


async def _pipe(source: trio.SocketStream, sink: trio.SocketStream) -> None:
    """Copy ``source`` to ``sink`` until ``source`` ends; then half-close ``sink``."""
    while data := await source.receive_some(65536):
        await sink.send_all(data)
    await sink.send_eof()


@dataclass
class RoundRobinProxy:
    """Listen on ``127.0.0.1`` (a free port); hand each connection to the next backend URL."""

    backends: Sequence[str]
    #: ``http://127.0.0.1:<port>`` once :meth:`serve` has started.
    url: str = ""
    #: How many connections each backend URL got.
    connections: Counter[str] = field(default_factory=Counter)
    _next: int = 0

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Accept and forward connections until cancelled."""
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _connect(self) -> tuple[str, trio.SocketStream] | None:
        start, self._next = self._next, self._next + 1
        for offset in range(len(self.backends)):  # each backend once, from this turn's on
            backend = self.backends[(start + offset) % len(self.backends)]
            try:
                return backend, await trio.open_tcp_stream(*_address(backend))
            except OSError:
                continue
        return None

    async def _handle(self, client: trio.SocketStream) -> None:
        async with client:
            connected = await self._connect()
            if connected is None:
                return  # every backend down: the client sees the connection close
            backend, upstream = connected
            self.connections[backend] += 1
            async with upstream:
                try:
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_pipe, client, upstream)
                        nursery.start_soon(_pipe, upstream, client)
                except* (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass  # one side went away: closing both (leaving the blocks) ends it
