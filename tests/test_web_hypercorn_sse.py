"""Workaround 5 of ``aura_actors.web._hypercorn``: body chunks written straight to the connection.

Bare ASGI apps on :func:`serve_app`, read off raw sockets: the bytes must be
HTTP/1.1 chunked framing exactly, h11 must stay in step (the end of the
response, keep-alive), and a client gone or stuck must end things as before.
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from hypercorn.config import Config
from support.hypercorn import lifespan, serving, stopped_with_a_write_blocked
from support.streams import RawHttp, stuck_client, wait_until

from aura_actors.web import _hypercorn, _sse
from aura_actors.web._hypercorn import BodyWriter, body_writer

START = {"type": "http.response.start", "status": 200, "headers": [(b"x-test", b"1")]}
END = {"type": "http.response.body", "body": b"", "more_body": False}
BIG = bytes(range(256)) * 16_384  # 4 MiB: more than the socket buffers hold


def app_of(body: Callable[[BodyWriter, Any], Awaitable[None]]) -> Any:
    """An app that starts a 200, hands ``body`` its direct writer and ``send``, and ends."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        assert body_writer(send) is None, "no writer before the headers are out"
        await send(START)
        write = body_writer(send)
        assert write is not None
        await body(write, send)
        await send(END)

    return app


async def read_until(sock: trio.socket.SocketType, marker: bytes, count: int) -> bytes:
    wire = bytearray()
    while wire.count(marker) < count:
        chunk = await sock.recv(65536)
        assert chunk, f"connection closed early: {bytes(wire[-300:])!r}"
        wire.extend(chunk)
    return bytes(wire)


async def test_direct_chunks_are_exact_chunked_framing_and_the_connection_is_reused() -> None:
    async def body(write: BodyWriter, send: Any) -> None:
        await write(b"abc")
        await write(b"")  # nothing at all: an empty chunk would end the body
        await send({"type": "http.response.body", "body": b"via asgi", "more_body": True})
        await write(BIG)
        await write(b"\r\n0\r\n\r\n")  # data, not framing

    async with serving(app_of(body)) as served:
        host, port = served.url.removeprefix("http://").split(":")
        sock = trio.socket.socket()
        await sock.connect((host, int(port)))
        request = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
        with trio.fail_after(20):
            await sock.send(request + request)  # two requests on one keep-alive connection
            wire = await read_until(sock, b"\r\n0\r\n\r\n", 4)
        sock.close()
    head, _, rest = wire.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 \r\n") and b"\r\nTransfer-Encoding: chunked" in head
    expected = (
        b"3\r\nabc\r\n"
        + b"8\r\nvia asgi\r\n"
        + b"%x\r\n" % len(BIG)
        + BIG
        + b"\r\n"
        + b"7\r\n\r\n0\r\n\r\n\r\n"
        + b"0\r\n\r\n"
    )
    assert rest[: len(expected)] == expected
    second = rest[len(expected) :]
    assert second.startswith(b"HTTP/1.1 200 \r\n"), "h11 recycled the connection for request 2"
    assert second.endswith(b"\r\n\r\n" + expected)


@pytest.mark.parametrize(
    ("request_line", "headers", "why"),
    [
        (b"HEAD / HTTP/1.1", [], "HEAD: no body"),
        (b"GET / HTTP/1.0", [], "HTTP/1.0: a close-delimited body, not chunked"),
        (b"GET / HTTP/1.1", [(b"content-length", b"3")], "a Content-Length body"),
    ],
)
async def test_no_direct_writer_where_the_body_is_not_chunked(
    request_line: bytes, headers: list[tuple[bytes, bytes]], why: str
) -> None:
    writers: list[BodyWriter | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        writers.append(body_writer(send))
        await send({"type": "http.response.body", "body": b"abc", "more_body": False})

    async with serving(app) as served:
        host, port = served.url.removeprefix("http://").split(":")
        sock = trio.socket.socket()
        await sock.connect((host, int(port)))
        with trio.fail_after(10):
            await sock.send(request_line + b"\r\nHost: x\r\nConnection: close\r\n\r\n")
            while await sock.recv(65536):
                pass
        sock.close()
    assert writers == [None], why


def test_no_direct_writer_for_a_send_that_is_not_hypercorns() -> None:
    async def send(message: Any) -> None:
        pass

    assert body_writer(send) is None
    assert body_writer(object()) is None


async def test_a_client_gone_mid_stream_ends_the_handler_and_drops_what_follows() -> None:
    ended = trio.Event()

    async def body(write: BodyWriter, send: Any) -> None:
        try:
            while True:
                await write(b"x" * 1000)
                await trio.lowlevel.checkpoint()
        finally:
            ended.set()

    async with serving(app_of(body)) as served:
        raw = await RawHttp.connect(served.url)
        await raw.send_request("GET", "/")
        await raw.read_head()
        assert await raw.read_data()
        raw.stream.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        await raw.aclose()  # a reset, mid-stream
        with trio.fail_after(5):
            await ended.wait()
        await wait_until(lambda: len(served.connections) == 0, within=5)


async def test_a_direct_write_to_a_client_that_stopped_reading_does_not_hold_shutdown() -> None:
    async def body(write: BodyWriter, send: Any) -> None:
        while True:
            await write(b"y" * 65536)

    async with serving(app_of(body), graceful_timeout=0.2) as served:
        stuck = await stuck_client(served.url)
        ended = await stopped_with_a_write_blocked(served, served.stop.set)
        assert ended, "shutdown waited for a direct write that never ends"
        await stuck.aclose()


async def test_a_cancelled_server_ends_with_a_direct_write_blocked_on_a_stuck_client() -> None:
    """Cancelled (not shut down), the server has no graceful wait, so it cuts open
    connections at once: a shielded write to a client that stopped reading ends too."""

    async def body(write: BodyWriter, send: Any) -> None:
        while True:
            await write(b"y" * 65536)

    async with serving(app_of(body)) as served:
        stuck = await stuck_client(served.url)
        ended = await stopped_with_a_write_blocked(served, served.scope.cancel)
        assert ended, "a cancelled server waited for a write that never ends"
        await stuck.aclose()


async def test_an_sse_response_writes_its_frames_directly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx
    from support.contract import QUICK_JOB
    from support.servers import run_server
    from support.streams import parse_sse_wire, raw_request

    written: list[bytes] = []

    def counting_writer(send: Any) -> BodyWriter:
        write = _hypercorn.body_writer(send)
        assert write is not None

        async def counted(data: bytes) -> None:
            written.append(data)
            await write(data)

        return counted

    monkeypatch.setattr(_sse, "body_writer", counting_writer)
    async with run_server(data_dir=tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
            job_id = (await client.post("/api/jobs", json=QUICK_JOB)).json()["id"]
        with trio.fail_after(10):
            answer = await raw_request(server.url, "GET", f"/api/jobs/{job_id}/events")
    assert answer.header("transfer-encoding") == "chunked"
    assert parse_sse_wire(answer.body).events[-1].event == "job-completed"
    # Every byte of the body went the direct way, and the body ended properly.
    assert b"".join(written) == answer.body
    assert answer.wire.endswith(b"\r\n0\r\n\r\n")


async def test_http2_gets_no_direct_writer_and_its_body_arrives_through_asgi() -> None:
    import h2.config
    import h2.connection
    import h2.events

    writers: list[BodyWriter | None] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        await send(START)
        writers.append(body_writer(send))
        await send({"type": "http.response.body", "body": b"over h2", "more_body": True})
        await send(END)

    async with serving(app) as served:
        host, port = served.url.removeprefix("http://").split(":")
        client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        client.initiate_connection()  # prior knowledge: HTTP/2 from the first byte
        headers = [(":method", "GET"), (":path", "/"), (":scheme", "http"), (":authority", "x")]
        client.send_headers(1, headers, end_stream=True)
        stream = await trio.open_tcp_stream(host, int(port))
        await stream.send_all(client.data_to_send())
        body, ended = b"", False
        with trio.fail_after(10):
            while not ended:
                for event in client.receive_data(await stream.receive_some(65536)):
                    if isinstance(event, h2.events.DataReceived):
                        body += event.data
                        client.acknowledge_received_data(len(event.data), 1)
                    ended = ended or isinstance(event, h2.events.StreamEnded)
                await stream.send_all(client.data_to_send())
        await stream.aclose()
    assert writers == [None]
    assert body == b"over h2"


class CountingLock:
    """The connection's write lock, counting how often it is taken."""

    def __init__(self) -> None:
        self.lock = trio.Lock()
        self.taken = 0

    def locked(self) -> bool:
        return self.lock.locked()

    def acquire_nowait(self) -> None:
        self.taken += 1
        self.lock.acquire_nowait()

    def release(self) -> None:
        self.lock.release()


async def test_a_direct_write_takes_the_lock_only_while_the_socket_makes_it_wait() -> None:
    left, right = trio.socket.socketpair()
    stream = trio.SocketStream(left)
    connection = _hypercorn._Connection(None, Config(), None, None, stream)  # type: ignore[arg-type]
    counting = CountingLock()
    connection.send_lock = counting  # type: ignore[assignment]
    await connection.write_raw(b"small")
    assert counting.taken == 0, "a write the socket took at once needs no lock"
    assert await right.recv(100) == b"small"
    received = bytearray()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.write_raw, BIG)  # more than the buffers hold
        await trio.testing.wait_all_tasks_blocked()
        assert counting.locked(), "the rest waits for the socket holding the lock"
        while len(received) < len(BIG):
            received.extend(await right.recv(65536))
    assert bytes(received) == BIG
    assert counting.taken == 1 and not counting.locked()
    left.close()
    right.close()
