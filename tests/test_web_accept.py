"""The accept loop's fairness (``web/_accept.py``): a flood from one address waits, others don't.

Real sockets on loopback: the flood comes from 127.0.0.2, a lone client from
127.0.0.3 (all of 127/8 is loopback on Linux), and the kernel's listen queue
holds them all before the loop accepts.
"""

from __future__ import annotations

import socket
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import pytest
import trio

from aura_actors.web import _accept


class RecordingNursery:
    """Stands in for the handler nursery: records who would be served, in order."""

    def __init__(self) -> None:
        self.served: list[str] = []

    def start_soon(self, handler: Callable[..., Awaitable[object]], stream: Any) -> None:
        self.served.append(stream.socket.getpeername()[0])
        stream.socket.close()


async def _never(_stream: trio.SocketStream) -> None:  # pragma: no cover - never run
    raise AssertionError("the recording nursery runs nothing")


@contextmanager
def listening() -> Iterator[socket.socket]:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(512)
        server.setblocking(False)
        yield server


def connect_from(stack: ExitStack, address: str, port: int) -> None:
    client = stack.enter_context(socket.socket())
    client.bind((address, 0))
    client.connect(("127.0.0.1", port))


def accept_all(
    server: socket.socket, waiting: dict[object, deque[tuple[trio.SocketStream, object]]]
) -> None:
    while _accept._accept_batch(server, waiting) == _accept.BATCH:
        pass


async def test_a_flood_from_one_address_waits_while_another_address_is_served_at_once() -> None:
    flood = 2 * _accept.PER_TURN + 5
    with listening() as server, ExitStack() as clients:
        port = server.getsockname()[1]
        for _ in range(flood):
            connect_from(clients, "127.0.0.2", port)
        connect_from(clients, "127.0.0.3", port)  # arrives last, behind the whole flood
        waiting: dict[object, deque[tuple[trio.SocketStream, object]]] = {}
        accept_all(server, waiting)
        nursery = RecordingNursery()
        turns: list[list[str]] = []
        while waiting:
            before = len(nursery.served)
            _accept._admit_turn(
                waiting, _never, cast(trio.Nursery, nursery), lambda stream, address: True
            )
            turns.append(nursery.served[before:])
    assert sorted(turns[0]) == ["127.0.0.2"] * _accept.PER_TURN + ["127.0.0.3"]
    assert turns[1:] == [["127.0.0.2"] * _accept.PER_TURN, ["127.0.0.2"] * 5]


async def test_connections_turned_away_do_not_count_against_the_turn() -> None:
    with listening() as server, ExitStack() as clients:
        port = server.getsockname()[1]
        for _ in range(_accept.PER_TURN + 4):
            connect_from(clients, "127.0.0.2", port)
        waiting: dict[object, deque[tuple[trio.SocketStream, object]]] = {}
        accept_all(server, waiting)
        refused: list[object] = []

        def admits(stream: trio.SocketStream, address: object) -> bool:
            if len(refused) < 4:
                refused.append(address)
                stream.socket.close()
                return False
            return True

        nursery = RecordingNursery()
        _accept._admit_turn(waiting, _never, cast(trio.Nursery, nursery), admits)
    assert len(refused) == 4
    assert len(nursery.served) == _accept.PER_TURN
    assert not waiting


async def test_an_address_with_too_many_waiting_has_the_rest_closed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_accept, "MAX_WAITING", 3)
    with listening() as server, ExitStack() as clients:
        port = server.getsockname()[1]
        for _ in range(7):
            connect_from(clients, "127.0.0.2", port)
        waiting: dict[object, deque[tuple[trio.SocketStream, object]]] = {}
        accept_all(server, waiting)
        assert [len(queue) for queue in waiting.values()] == [3]
        for queue in waiting.values():
            for stream, _address in queue:
                stream.socket.close()
