"""The load generator's WebSocket client: its own decoding of text frames, wsproto for the rest."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from bench.http.ws import WsEvent, WsStream, parse_message


def open_pair() -> tuple[WSConnection, WSConnection]:
    """A client and a server wsproto connection, past the opening handshake."""
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="x", target="/")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


def message(number: int, size: int = 10) -> str:
    return f'{{"id":"1700000000000-{number}","event":"step-progress","data":"{"é" * size}"}}'


@pytest.mark.parametrize("piece", [5, 97, 65536])
async def test_every_frame_is_read_whatever_pieces_the_bytes_come_in(piece: int) -> None:
    client, server = open_pair()
    texts = [message(1), message(2, 100), message(3, 33_000), message(4), message(5)]
    wire = server.send(TextMessage(texts[0])) + server.send(TextMessage(texts[1]))
    wire += server.send(Ping(b"are you there")) + server.send(TextMessage(texts[2]))
    # A fragmented message goes through wsproto, and what follows it is read as before.
    wire += server.send(TextMessage(texts[3][:7], message_finished=False))
    wire += server.send(TextMessage(texts[3][7:])) + server.send(TextMessage(texts[4]))
    wire += server.send(CloseConnection(1000))
    ours, theirs = trio.testing.memory_stream_pair()
    stream = WsStream(ours, client, wire[:5])  # some bytes came with the handshake
    received: list[WsEvent] = []

    async def serve() -> None:
        for start in range(5, len(wire), piece):
            await theirs.send_all(wire[start : start + piece])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve)
        while not stream.closed:
            received.extend(await stream.receive())
    assert received == [parse_message(text) for text in texts]
    assert stream.close_code == 1000
    server.receive_data(bytes(await theirs.receive_some()))  # the pong, then the close's answer
    answers = list(server.events())
    assert isinstance(answers[0], Pong) and answers[0].payload == b"are you there"
    assert isinstance(answers[1], CloseConnection) and answers[1].code == 1000
