"""Abuse of the streams, from outside against a server subprocess (issue 11, findings 1, 3, 8).

Each test asserts what a client sees (status, close code, events) and what the
server holds afterwards (its open descriptors back to the baseline), never timings.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import httpx
import trio
from support.abuse import abuse_server, eventually_at_most, open_fds, raw_connection
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Request, TextMessage

from aura_actors.protocol import CloseCode

QUICK_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 20, "tickSeconds": 0.01}}
LONG_JOB = {"pipeline": "synthetic", "params": {"stages": 1, "ticks": 100000, "tickSeconds": 1}}


async def read_job_stream(client: httpx.AsyncClient, job_id: str) -> list[str]:
    """The event types of a job's whole SSE stream (it ends after the terminal event)."""
    types = []
    async with client.stream("GET", f"/api/jobs/{job_id}/events") as answer:
        assert answer.status_code == 200
        async for line in answer.aiter_lines():
            if line.startswith("event: "):
                types.append(line.removeprefix("event: "))
    return types


async def test_head_on_sse_routes_holds_nothing_once_the_client_is_gone(tmp_path: Path) -> None:
    """Finding 1: HEAD with a request pipelined behind it, then close: nothing stays."""
    async with abuse_server(tmp_path) as (server, client):
        job_id = (await client.post("/api/jobs", json=LONG_JOB)).json()["id"]
        assert (await client.get("/api/health")).json()["subscribers"] == 0
        baseline = open_fds(server.pid)
        for index in range(60):
            path = "/api/events" if index % 2 else f"/api/jobs/{job_id}/events"
            stream = await raw_connection(server.url)
            await stream.send_all(
                f"HEAD {path} HTTP/1.1\r\nHost: localhost\r\n\r\n"
                "GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n".encode()
            )
            await stream.aclose()
        await eventually_at_most(server.pid, baseline)
        health = (await client.get("/api/health")).json()
        assert health["subscribers"] == 0
        # The server still serves streams to the end.
        quick = (await client.post("/api/jobs", json=QUICK_JOB)).json()["id"]
        assert (await read_job_stream(client, quick))[-1] == "job-completed"


async def test_head_answers_the_stream_headers_and_ends(tmp_path: Path) -> None:
    async with abuse_server(tmp_path) as (_server, client):
        with trio.fail_after(10):
            answer = await client.head("/api/events")
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/event-stream")


async def _ws_connect(url: str, path: str) -> tuple[trio.SocketStream, WSConnection]:
    stream = await raw_connection(url)
    ws = WSConnection(ConnectionType.CLIENT)
    await stream.send_all(ws.send(Request(host="localhost", target=path)))
    while True:
        ws.receive_data(await stream.receive_some(65536))
        if any(isinstance(event, AcceptConnection) for event in ws.events()):
            return stream, ws


async def _close_code(stream: trio.SocketStream, ws: WSConnection) -> int | None:
    """Read until the server's close frame; its code (``None`` if it just hung up)."""
    while chunk := await stream.receive_some(65536):
        ws.receive_data(chunk)
        for event in ws.events():
            if isinstance(event, CloseConnection):
                return event.code
    return None


async def test_a_websocket_frame_over_64_kib_closes_with_1009(tmp_path: Path) -> None:
    """Finding 3: a 16 MiB client frame is refused (1009) as it arrives, never kept.

    One client sends several: no penalty box (see test_abuse_penalty for it)."""
    async with abuse_server(tmp_path, "--abuse-cooldown", "0") as (server, client):
        job_id = (await client.post("/api/jobs", json=LONG_JOB)).json()["id"]
        path = f"/api/jobs/{job_id}/ws"
        baseline = open_fds(server.pid)
        with trio.fail_after(60):
            # A frame of exactly 64 KiB is a message like any other (answered bad_message).
            stream, ws = await _ws_connect(server.url, path)
            await stream.send_all(ws.send(TextMessage(data="x" * (64 * 1024))))
            reply = b""
            while b"bad_message" not in reply:
                reply += await stream.receive_some(65536)
            await stream.aclose()
            for _ in range(4):
                stream, ws = await _ws_connect(server.url, path)
                big = ws.send(TextMessage(data="x" * (16 * 1024 * 1024)))

                async def send_all(data: bytes = big, stream: trio.SocketStream = stream) -> None:
                    # The server may close before it has all of it.
                    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                        await stream.send_all(data)

                async with trio.open_nursery() as nursery:
                    nursery.start_soon(send_all)
                    assert await _close_code(stream, ws) == CloseCode.MESSAGE_TOO_BIG
                    nursery.cancel_scope.cancel()
                await stream.aclose()
        await eventually_at_most(server.pid, baseline)
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        assert job["status"] == "Running", "an oversized frame must not be taken as a cancel"
        quick = (await client.post("/api/jobs", json=QUICK_JOB)).json()["id"]
        assert (await read_job_stream(client, quick))[-1] == "job-completed"


async def test_a_future_last_event_id_receives_nothing_at_or_below_it(tmp_path: Path) -> None:
    """Finding 8: a resume point ahead of the server gets no event with an id at or below it."""
    async with abuse_server(tmp_path) as (_server, client):
        job_id = (await client.post("/api/jobs", json=QUICK_JOB)).json()["id"]
        future = "99999999999999-0"
        received: list[str] = []
        with trio.move_on_after(5):
            async with client.stream(
                "GET", f"/api/jobs/{job_id}/events", headers={"Last-Event-ID": future}
            ) as answer:
                async for line in answer.aiter_lines():
                    if line.startswith("id: "):
                        received.append(line.removeprefix("id: "))
        job = (await client.get(f"/api/jobs/{job_id}")).json()
        assert job["status"] == "Done"
        assert received == []
