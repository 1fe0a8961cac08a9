"""Helpers of the abuse tests (tests/abuse/): raw sockets, a server's open descriptors."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import trio

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
