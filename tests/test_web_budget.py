"""The connection budget (``web/_budget.py``) on its own: spent in the order connections came."""

from __future__ import annotations

from typing import cast

import trio
import trio.testing
from hypercorn.trio.tcp_server import TCPServer

from aura_actors.web._budget import ConnectionBudget


async def test_the_budget_is_spent_in_accept_order_whatever_order_their_tasks_start(
    autojump_clock: trio.testing.MockClock,
) -> None:
    budget = ConnectionBudget(2)
    pairs = [trio.socket.socketpair() for _ in range(3)]
    streams = [trio.SocketStream(ours) for ours, _theirs in pairs]
    for stream in streams:  # accepted in this order
        assert budget.admits(stream, ("127.0.0.1", 40000))
    served: list[trio.SocketStream] = []
    release = trio.Event()

    class Held:
        def __init__(self, stream: trio.SocketStream) -> None:
            self.stream = stream

        async def run(self) -> None:
            served.append(self.stream)
            await release.wait()

    def held(stream: trio.SocketStream) -> TCPServer:
        return cast(TCPServer, Held(stream))

    async with trio.open_nursery() as nursery:
        for stream in reversed(streams):  # the last accepted starts first
            nursery.start_soon(budget.serve, held, stream)
        await trio.testing.wait_all_tasks_blocked()
        assert set(served) == set(streams[:2])
        assert budget.refused == 1
        refused_peer = pairs[2][1]
        answer = await refused_peer.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503")
        refused_peer.close()
        release.set()
    for ours, theirs in pairs:
        ours.close()
        theirs.close()
