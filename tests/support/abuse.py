"""Helpers of the abuse tests (tests/abuse/): raw sockets, a server's open descriptors."""

from __future__ import annotations

import contextlib
import json
import os
import struct
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request

from support.servers import ServerProcess, server_process, write_tokens

#: Two users of the token-auth server.
TOKENS = {"token-alice": "alice", "token-bob": "bob"}


def open_fds(pid: int) -> int:
    """How many file descriptors process ``pid`` holds open (Linux ``/proc``)."""
    return len(os.listdir(f"/proc/{pid}/fd"))


async def eventually_at_most(pid: int, limit: int, seconds: float = 15) -> int:
    """Wait (polling ``/proc``) until ``pid`` holds at most ``limit`` descriptors; the count.

    Fails with the last count if that does not happen within ``seconds``: a
    leak keeps its descriptors forever, a released connection lets go soon.
    """
    count = open_fds(pid)
    with trio.move_on_after(seconds):
        while (count := open_fds(pid)) > limit:  # noqa: ASYNC110 (another process: no event)
            await trio.sleep(0.05)
    assert count <= limit, f"server holds {count} descriptors, baseline {limit}"
    return count


def host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").split(":")
    return host, int(port)


async def raw_connection(url: str) -> trio.SocketStream:
    """A plain TCP connection to the server of ``url``."""
    host, port = host_port(url)
    return await trio.open_tcp_stream(host, port)


async def connection_from(url: str, source: str) -> trio.SocketStream:
    """A plain TCP connection to the server of ``url`` from the loopback address ``source``.

    All of 127.0.0.0/8 is loopback on Linux: each address is another client to the server.
    """
    host, port = host_port(url)
    return await trio.open_tcp_stream(host, port, local_address=source)


async def health_from(url: str, source: str) -> bytes:
    """``GET /api/health`` from ``source`` on a fresh connection: the raw answer, or ``b""``
    when the server closed (or reset) the connection without one."""
    try:
        stream = await connection_from(url, source)
    except OSError:
        return b""
    async with stream:
        try:
            await stream.send_all(
                b"GET /api/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
            )
        except trio.BrokenResourceError:
            return b""
        return await read_until_closed(stream)


async def oversized_frame_from(url: str, path: str, source: str, size: int = 100_000) -> int | None:
    """Open the WebSocket ``path`` from ``source``, send one masked text frame of ``size``
    bytes, and return the server's close code (``None``: no close frame)."""
    host, _port = host_port(url)
    stream = await connection_from(url, source)
    ws = WSConnection(ConnectionType.CLIENT)
    frame = b"\x81\xff" + struct.pack("!Q", size) + bytes(4) + b"x" * size  # mask 0: as is
    async with stream:
        await stream.send_all(ws.send(Request(host=host, target=path)))
        sent = False
        try:
            while chunk := await stream.receive_some(65536):
                ws.receive_data(chunk)
                for event in ws.events():
                    if isinstance(event, AcceptConnection) and not sent:
                        sent = True
                        with contextlib.suppress(trio.BrokenResourceError):
                            await stream.send_all(frame)
                    elif isinstance(event, CloseConnection):
                        return event.code
        except trio.BrokenResourceError:
            pass
    return None


def served(answer: bytes) -> bool:
    """Whether a raw answer is the health check's 200."""
    return answer.startswith(b"HTTP/1.1 200")


async def read_until_closed(stream: trio.SocketStream, limit: int = 1 << 20) -> bytes:
    """Everything the server sends until it closes (or resets) the connection."""
    received = bytearray()
    try:
        while len(received) < limit and (chunk := await stream.receive_some(65536)):
            received.extend(chunk)
    except trio.BrokenResourceError:
        pass
    return bytes(received)


def body_of(response: bytes) -> Any:
    """The JSON body of a raw HTTP/1.1 response with a Content-Length."""
    _head, _, body = response.partition(b"\r\n\r\n")
    return json.loads(body)


@asynccontextmanager
async def abuse_server(
    tmp_path: Path, *args: str, auth: bool = False
) -> AsyncIterator[tuple[ServerProcess, httpx.AsyncClient]]:
    """A server subprocess (with ``args``) and a client of it (alice's when ``auth``)."""
    extra: Sequence[str] = list(args)
    headers = {}
    if auth:
        extra = ["--auth-tokens", str(write_tokens(tmp_path / "tokens.json", TOKENS)), *extra]
        headers["Authorization"] = "Bearer token-alice"
    async with (
        server_process(tmp_path / "data", extra) as server,
        httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client,
    ):
        yield server, client


def as_user(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
